//! Hot reload: the config file is re-read when its contents change (checked
//! every second) or on SIGHUP. A valid new config replaces the running one
//! for the next batch; an invalid one is refused — every error logged,
//! `postback_config_reload_failures_total` incremented — and the running
//! config stays. Settings that only take effect at start (Kafka, topics,
//! state directory, admin address) are reported when they change.

use super::{Config, ConfigErrors};
use crate::telemetry::metrics;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The config the stages read; reload swaps the `Arc` inside.
pub type SharedConfig = Arc<RwLock<Arc<Config>>>;

pub fn shared(config: Config) -> SharedConfig {
    Arc::new(RwLock::new(Arc::new(config)))
}

/// Watches the file until `shutdown`; call from a tokio runtime.
pub async fn watch(path: PathBuf, config: SharedConfig, shutdown: Arc<AtomicBool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "no SIGHUP handler; reloading on file changes only");
            None
        }
    };
    let mut last = std::fs::read(&path).ok();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while !shutdown.load(Ordering::Relaxed) {
        let forced = tokio::select! {
            _ = tick.tick() => false,
            Some(_) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
        };
        let now = std::fs::read(&path).ok();
        if !forced && now == last {
            continue;
        }
        last = now;
        let p = path.clone();
        let loaded = tokio::task::spawn_blocking(move || super::load(&p)).await.expect("config load task");
        apply(loaded, &config);
    }
}

/// Swaps in a valid config, or keeps the running one and reports why not.
pub fn apply(loaded: Result<Config, ConfigErrors>, config: &SharedConfig) -> bool {
    match loaded {
        Ok(new) => {
            let old = Arc::clone(&config.read().expect("config lock"));
            for key in restart_only_changes(&old, &new) {
                tracing::warn!(key, "config change needs a restart to take effect");
            }
            tracing::info!(postbacks = new.rules.postbacks().len(), partners = new.partners.len(), "config reloaded");
            *config.write().expect("config lock") = Arc::new(new);
            metrics().config_reload(true);
            true
        }
        Err(errors) => {
            for e in &errors.0 {
                tracing::error!(file = %e.file, key = %e.key, reason = %e.reason, "config reload refused; the running config stays");
            }
            metrics().config_reload(false);
            false
        }
    }
}

fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut out = Vec::new();
    if format!("{:?}", old.kafka) != format!("{:?}", new.kafka) {
        out.push("kafka");
    }
    if format!("{:?}", old.topics) != format!("{:?}", new.topics) {
        out.push("topics");
    }
    if old.process.state_dir != new.process.state_dir || old.process.max_batch != new.process.max_batch {
        out.push("process");
    }
    if old.admin.listen != new.admin.listen {
        out.push("admin.listen");
    }
    if format!("{:?}", old.send) != format!("{:?}", new.send) {
        out.push("send");
    }
    out
}
