//! Hot reload: the config file is re-read when its contents change (checked
//! every second) or on SIGHUP. A valid new config replaces the running one
//! for the next batch; anything else is refused — every error logged,
//! `postback_config_reload_failures_total` incremented — and the running
//! config stays. Settings that only take effect at start (Kafka, topics,
//! state directory, admin address) are reported when they change.
//!
//! A file being rewritten in place is read in pieces: empty, then a prefix,
//! then whole. So a change is applied only once the file has stopped
//! changing for [`SETTLE`], it is parsed from the very bytes that were
//! compared (read once), and a config without apps or one that drops every
//! postback of the running config is refused as a partial write unless
//! `--allow-empty` was given.

use super::{Config, ConfigError, ConfigErrors, LoadOptions};
use crate::telemetry::metrics;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The config the stages read; reload swaps the `Arc` inside.
pub type SharedConfig = Arc<RwLock<Arc<Config>>>;

/// How long a changed file must stay unchanged before it is loaded.
pub const SETTLE: Duration = Duration::from_millis(500);

pub fn shared(config: Config) -> SharedConfig {
    Arc::new(RwLock::new(Arc::new(config)))
}

/// Watches the file until `shutdown`; call from a tokio runtime.
/// `loaded_from` is what the running config was loaded from: anything else
/// found in the file, however early, is a change.
pub async fn watch(path: PathBuf, loaded_from: Vec<u8>, config: SharedConfig, shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "no SIGHUP handler; reloading on file changes only");
            None
        }
    };
    let mut last = Some(loaded_from);
    let mut last_secrets = current(&config).secret_digest;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while !shutdown.is_cancelled() {
        let forced = tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => false,
            Some(_) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
        };
        // a rotated secret file is a change of the config, too
        let secrets_now = secret_files(&current(&config));
        let secrets_changed = secrets_now != last_secrets;
        if !forced && !secrets_changed && std::fs::read(&path).ok() == last {
            continue;
        }
        let read = settled(&path).await;
        if !forced && !secrets_changed && read.as_ref().ok() == last.as_ref() {
            continue;
        }
        last = read.as_ref().ok().cloned();
        let running = current(&config);
        let (p, opts) = (path.clone(), LoadOptions { allow_empty: running.allow_empty, needs: running.needs });
        let loaded = tokio::task::spawn_blocking(move || read.and_then(|bytes| super::load_bytes(&bytes, &p, opts)))
            .await
            .expect("config load task");
        apply(loaded, &config);
        // one try per change: a refused reload is not tried again every second
        last_secrets = secrets_now;
    }
}

/// The digest of what the files the config's `${file:…}` references name
/// hold now.
fn secret_files(config: &Config) -> u64 {
    let contents: Vec<Option<Vec<u8>>> = config.secret_files.iter().map(|f| std::fs::read(f).ok()).collect();
    super::secrets::digest(contents.iter().map(|c| c.as_deref()))
}

/// The file's bytes once two reads [`SETTLE`] apart agree (at most ten
/// tries: a file rewritten without pause is read as it is then).
async fn settled(path: &Path) -> Result<Vec<u8>, ConfigErrors> {
    let mut read = super::read(path);
    for _ in 0..10 {
        tokio::time::sleep(SETTLE).await;
        let again = super::read(path);
        if again.as_ref().ok() == read.as_ref().ok() && again.is_ok() == read.is_ok() {
            return again;
        }
        read = again;
    }
    read
}

fn current(config: &SharedConfig) -> Arc<Config> {
    Arc::clone(&config.read().expect("config lock"))
}

/// Swaps in a valid, complete config, or keeps the running one and says why
/// not. Returns whether the new config was applied.
pub fn apply(loaded: Result<Config, ConfigErrors>, config: &SharedConfig) -> bool {
    let old = current(config);
    let checked = loaded.and_then(|new| complete(&old, new)).and_then(|new| hot_only(&old, new));
    match checked {
        Ok(new) => {
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

/// A reload may only change keys the stages read again; one that changes
/// a key fixed at start is refused whole, naming each such key.
fn hot_only(old: &Config, new: Config) -> Result<Config, ConfigErrors> {
    let changed = super::restart::changes(old, &new);
    if changed.is_empty() {
        return Ok(new);
    }
    let file = new.path.display().to_string();
    Err(ConfigErrors(
        changed
            .into_iter()
            .map(|key| ConfigError {
                file: file.clone(),
                key,
                reason: "changed, but it takes effect only at a restart: the reload is refused and the running config stays (restart to apply it, or put the old value back)".into(),
            })
            .collect(),
    ))
}

/// A reload that drops every postback of a running config is far likelier
/// a file caught mid-write than an intent; one that moves an app to another
/// project would count its users again.
fn complete(old: &Config, new: Config) -> Result<Config, ConfigErrors> {
    let (before, after) = (old.partners.len(), new.partners.len());
    if old.needs == super::Needs::Partners && before > 0 && after == 0 && !old.allow_empty {
        return Err(ConfigErrors(vec![ConfigError {
            file: new.path.display().to_string(),
            key: "partners".into(),
            reason: format!(
                "the new config has no partners (the running one has {before}): refused as a partial write (start with --allow-empty to allow it)"
            ),
        }]));
    }
    let (before, after) = (old.rules.postbacks().len(), new.rules.postbacks().len());
    if old.needs == super::Needs::Apps && before > 0 && after == 0 && !old.allow_empty {
        return Err(ConfigErrors(vec![ConfigError {
            file: new.path.display().to_string(),
            key: "postbacks".into(),
            reason: format!(
                "the new config has no postbacks (the running one has {before}): refused as a partial write (start with --allow-empty to allow it)"
            ),
        }]));
    }
    for app in new.rules.apps() {
        if let Some(was) = old.rules.app(&app.id).filter(|was| was.project != app.project) {
            return Err(ConfigErrors(vec![ConfigError {
                file: new.path.display().to_string(),
                key: format!("apps.{}.project", app.id),
                reason: format!(
                    "app '{}' cannot move from project '{}' to '{}': its users are counted in '{}'",
                    app.id, was.project, app.project, was.project
                ),
            }]));
        }
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    const BASE: &str = "[[apps]]\nid = \"game\"\nplatform = \"mobile\"\n[[partners]]\nid = \"acme\"\n";
    const POSTBACK: &str = "[[postbacks]]\nname = \"Acme | install\"\npartner = \"acme\"\nevent = \"install\"\nurl = \"https://pb.acme.example/i\"\n";

    fn config(text: &str) -> Config {
        load_str(text, Path::new("pb.toml"), Vec::<(String, String)>::new()).unwrap()
    }

    #[test]
    fn a_reload_that_drops_every_postback_is_refused_unless_allowed() {
        let running = shared(config(&format!("{BASE}{POSTBACK}")));
        assert!(!apply(Ok(config(BASE)), &running), "refused as a partial write");
        assert_eq!(running.read().unwrap().rules.postbacks().len(), 1, "the running config stays");
        let mut allowing = config(&format!("{BASE}{POSTBACK}"));
        allowing.allow_empty = true;
        let running = shared(allowing);
        assert!(apply(Ok(config(BASE)), &running));
        assert!(running.read().unwrap().rules.postbacks().is_empty());
    }

    #[test]
    fn a_reload_that_moves_an_app_to_another_project_is_refused() {
        let running = shared(config(&format!("{BASE}{POSTBACK}")));
        let moved = BASE.replace("platform = \"mobile\"\n", "platform = \"mobile\"\nproject = \"p2\"\n");
        assert!(!apply(Ok(config(&format!("{moved}{POSTBACK}"))), &running));
        assert_eq!(running.read().unwrap().rules.app("game").unwrap().project, "default");
        let refused = complete(&running.read().unwrap(), config(&format!("{moved}{POSTBACK}"))).unwrap_err();
        assert_eq!(refused.0[0].key, "apps.game.project");
        assert_eq!(
            refused.0[0].reason,
            "app 'game' cannot move from project 'default' to 'p2': its users are counted in 'default'"
        );
    }

    #[tokio::test]
    async fn a_file_is_read_once_it_stops_changing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pb.toml");
        std::fs::write(&path, "[[apps]]\n").unwrap();
        let writer = {
            let path = path.clone();
            tokio::spawn(async move {
                tokio::time::sleep(SETTLE / 2).await;
                std::fs::write(&path, format!("{BASE}{POSTBACK}")).unwrap();
            })
        };
        let bytes = settled(&path).await.unwrap();
        writer.await.unwrap();
        assert_eq!(String::from_utf8(bytes).unwrap(), format!("{BASE}{POSTBACK}"));
    }
}
