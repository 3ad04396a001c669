//! Running the stages as a service: load config, start the admin server,
//! run the processing stage, the sender, or both, and stop cleanly on
//! SIGTERM/SIGINT. `main` only parses arguments and calls in here.

use crate::config::reload::{self, SharedConfig};
use crate::config::{self, Config};
use crate::process;
use crate::telemetry::{Health, admin};
use anyhow::Context;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Which stages this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stages {
    pub process: bool,
    pub send: bool,
}

pub fn run(path: &Path, load: config::LoadOptions, stages: Stages) -> anyhow::Result<()> {
    let config = config::load_with(path, load).map_err(|e| anyhow::anyhow!("{e}"))?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(serve(config, stages))
}

async fn serve(config: Config, stages: Stages) -> anyhow::Result<()> {
    let health = Health::new();
    // not ready until each stage has registered what it waits for
    health.block("starting");
    if stages.send {
        health.block(crate::send::STARTING);
    }
    let path = config.path.clone();
    let shared: SharedConfig = reload::shared(config);
    let config: Arc<Config> = Arc::clone(&shared.read().expect("config lock"));
    let app = admin::router(health.clone()).merge(crate::inspect::router(Arc::clone(&shared)));
    let (addr, _admin) = admin::serve(&config.admin.listen, app)
        .await
        .with_context(|| format!("admin.listen {}", config.admin.listen))?;
    tracing::info!(%addr, "admin server listening");
    let shutdown = Arc::new(AtomicBool::new(false));
    let processor = if stages.process {
        let (c, h, s) = (Arc::clone(&shared), health.clone(), Arc::clone(&shutdown));
        Some(tokio::task::spawn_blocking(move || process::start(c, h, s)).await??)
    } else {
        None
    };
    let sender =
        stages.send.then(|| tokio::spawn(crate::send::run(Arc::clone(&shared), health.clone(), Arc::clone(&shutdown))));
    let watcher = tokio::spawn(reload::watch(path, Arc::clone(&shared), Arc::clone(&shutdown)));
    health.unblock("starting");
    let stop = Arc::clone(&shutdown);
    let deadline = config.process.shutdown_deadline.0.max(config.send.shutdown_deadline.0) + WATCHDOG_GRACE;
    let signals = tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!(deadline_s = deadline.as_secs(), "shutdown requested");
        stop.store(true, Ordering::Relaxed);
        watchdog(deadline);
    });
    let mut result = Ok(());
    if let Some(task) = sender {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(anyhow::anyhow!("sender stage failed: {e}")),
            Err(_) => result = Err(anyhow::anyhow!("sender stage panicked")),
        }
        // one stage failing stops the other
        shutdown.store(true, Ordering::Relaxed);
    }
    if let Some(handle) = processor {
        let outcome = tokio::task::spawn_blocking(move || handle.join()).await?;
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(anyhow::anyhow!("processing stage failed: {e}")),
            Err(_) => result = Err(anyhow::anyhow!("processing stage panicked")),
        }
    }
    signals.abort();
    watcher.abort();
    tracing::info!("stopped");
    result
}

/// Added to the longest stage deadline before the watchdog ends the process.
const WATCHDOG_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// A shutdown ends the process by `deadline`, whatever a stage waits for
/// (a broker that does not answer, a partner that hangs).
fn watchdog(deadline: std::time::Duration) {
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
