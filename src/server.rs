//! Running the stages as a service: load config, start the admin server,
//! run the processing stage, the sender, or both under one
//! [`Supervisor`], and stop cleanly on SIGTERM/SIGINT. `main` only parses
//! arguments and calls in here.

use crate::config::reload::{self, SharedConfig};
use crate::config::{self, Config};
use crate::process;
use crate::supervisor::Supervisor;
use crate::telemetry::{Health, Reason, admin};
use anyhow::Context;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Which stages this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stages {
    pub process: bool,
    pub send: bool,
}

pub fn run(path: &Path, load: config::LoadOptions, stages: Stages) -> anyhow::Result<()> {
    // the bytes the running config came from: a change written while the
    // stages start is a change the watcher must see
    let bytes = config::read(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let config = config::load_bytes(&bytes, path, load).map_err(|e| anyhow::anyhow!("{e}"))?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(serve(config, bytes, stages))
}

async fn serve(config: Config, loaded_from: Vec<u8>, stages: Stages) -> anyhow::Result<()> {
    let health = Health::new();
    // not ready until each stage has registered what it waits for
    health.block(Reason::Starting);
    if stages.send {
        health.block(Reason::SenderStarting);
    }
    let path = config.path.clone();
    let shared: SharedConfig = reload::shared(config);
    let config: Arc<Config> = Arc::clone(&shared.read().expect("config lock"));
    let listen = config.admin.listen_for(stages.process);
    let (addr, _admin) = admin::serve(&listen, admin_routes(&config, &shared, &health))
        .await
        .with_context(|| format!("admin.listen {listen}"))?;
    tracing::info!(%addr, inspect = config.admin.inspect, "admin server listening");
    let mut supervisor = Supervisor::new(health.clone());
    let token = supervisor.token();
    let signals = tokio::spawn(stop_on_signal(token.clone(), Arc::clone(&shared)));
    let (c, h, t) = (Arc::clone(&config), health.clone(), token.clone());
    if !tokio::task::spawn_blocking(move || wait_for_kafka(&c, &h, &t)).await? {
        return Ok(());
    }
    if stages.process {
        let (c, h, t) = (Arc::clone(&shared), health.clone(), token.clone());
        let thread = tokio::task::spawn_blocking(move || process::start(c, h, t)).await??;
        supervisor.spawn_thread("processing", thread);
    }
    if stages.send {
        supervisor.spawn("sender", crate::send::run(Arc::clone(&shared), health.clone(), token.clone()));
    }
    let watcher = tokio::spawn(reload::watch(path, loaded_from, Arc::clone(&shared), token.clone()));
    health.unblock(Reason::Starting);
    let result = supervisor.wait().await;
    signals.abort();
    watcher.abort();
    tracing::info!("stopped");
    result.map_err(Into::into)
}

/// Waits until the brokers answer, with the reason in `/readyz` meanwhile
/// (a refused password, an untrusted certificate, nothing listening) and
/// tries spaced out up to [`MAX_CONNECT_BACKOFF`]. False: shutdown came
/// first. Blocking.
fn wait_for_kafka(config: &Config, health: &Health, shutdown: &CancellationToken) -> bool {
    let mut backoff = Duration::from_secs(1);
    loop {
        match crate::kafka::admin::reach_within(config, Duration::from_secs(10)) {
            Ok(_) => {
                health.unblock(Reason::KafkaUnreachable);
                return true;
            }
            Err(e) => health.block_with(Reason::KafkaUnreachable, e.to_string()),
        }
        let until = std::time::Instant::now() + backoff;
        while std::time::Instant::now() < until {
            if shutdown.is_cancelled() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        backoff = (backoff * 2).min(MAX_CONNECT_BACKOFF);
    }
}

/// Longest pause between two tries to reach the brokers at start.
const MAX_CONNECT_BACKOFF: Duration = Duration::from_secs(30);

/// The admin routes: metrics and health, and `/inspect` when enabled.
fn admin_routes(config: &Config, shared: &SharedConfig, health: &Health) -> axum::Router {
    let routes = admin::router(health.clone());
    if config.admin.inspect { routes.merge(crate::inspect::router(Arc::clone(shared))) } else { routes }
}

/// Added to the longest stage deadline before the watchdog ends the process.
const WATCHDOG_GRACE: Duration = Duration::from_secs(5);

async fn stop_on_signal(token: CancellationToken, config: SharedConfig) {
    wait_for_signal().await;
    // the deadlines are hot: the config running when the signal comes
    let deadline = {
        let c = config.read().expect("config lock");
        c.process.shutdown_deadline.0.max(c.send.shutdown_deadline.0) + WATCHDOG_GRACE
    };
    tracing::info!(deadline_s = deadline.as_secs(), "shutdown requested");
    token.cancel();
    watchdog(deadline);
}

/// A shutdown ends the process by `deadline`, whatever a stage waits for
/// (a broker that does not answer, a partner that hangs).
fn watchdog(deadline: Duration) {
    let spawned = std::thread::Builder::new().name("shutdown-watchdog".into()).spawn(move || {
        std::thread::sleep(deadline);
        tracing::error!(deadline_s = deadline.as_secs(), "shutdown deadline passed; exiting now");
        eprintln!("postback: shutdown deadline of {}s passed; exiting", deadline.as_secs());
        std::process::exit(1);
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the shutdown watchdog");
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
