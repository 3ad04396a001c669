//! The processing stage (`postback process`, DESIGN §3): a consumer group
//! over the event and user-activity topics, one RocksDB store per assigned
//! partition restored from its changelog, and one transactional producer,
//! so that jobs, repartitioned user activity, changelog records and input
//! offsets commit together or not at all.

pub mod batch;
mod commit;
mod partitions;
mod producer;
pub mod records;
mod restore;
pub mod runner;
pub mod stats;

use crate::config::Config;
use crate::kafka::admin::{self, AdminError};
use crate::store::StoreError;
use crate::telemetry::Health;
use rdkafka::error::KafkaError;
use runner::{Runner, SharedConfig};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("{0}")]
    Admin(#[from] AdminError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Fatal(String),
}

/// Checks and creates topics, then runs the processing loop on its own
/// thread until `shutdown` is set. Blocking: call it off async workers.
pub fn start(
    config: SharedConfig,
    health: Health,
    shutdown: Arc<AtomicBool>,
) -> Result<JoinHandle<Result<(), ProcessError>>, ProcessError> {
    health.block(runner::PRODUCER_NOT_READY);
    health.block(runner::NOT_JOINED);
    let fixed: Arc<Config> = Arc::clone(&config.read().expect("config lock"));
    std::fs::create_dir_all(&fixed.process.state_dir).map_err(|e| {
        ProcessError::Fatal(format!("cannot create process.state_dir {}: {e}", fixed.process.state_dir.display()))
    })?;
    let layout = admin::ensure_processor_topics(&fixed)?;
    tracing::info!(?layout, "topics ready");
    let runner = Runner::new(config, layout, health, shutdown)?;
    Ok(std::thread::Builder::new()
        .name("processor".into())
        .spawn(move || runner.run())
        .expect("spawn processor thread"))
}
