//! The processing stage (`postback process`, DESIGN §3): a consumer group
//! over the event and user-activity topics, one RocksDB store per assigned
//! partition restored from its changelog, and one transactional producer,
//! so that jobs, repartitioned user activity, changelog records and input
//! offsets commit together or not at all.

pub mod batch;
mod commit;
mod dlq;
mod partitions;
mod producer;
pub mod records;
mod recover;
mod restore;
pub mod runner;
pub mod stage;
mod stall;
pub mod stats;
pub mod step;
mod txn;

pub use restore::RestoreError;
pub use stage::{Part, Stage};

use crate::config::Config;
use crate::kafka::admin::{self, AdminError};
use crate::store::StoreError;
use crate::telemetry::Health;
use crate::telemetry::metrics::metrics;
use rdkafka::error::KafkaError;
use runner::{Runner, SharedConfig};
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Why the processing stage stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("{0}")]
    Admin(#[from] AdminError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Restore(#[from] RestoreError),
    #[error("cannot create process.state_dir {path}: {source}")]
    StateDir { path: String, source: std::io::Error },
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    /// The producer cannot go on (fenced by another instance with the same
    /// `instance_id`, or an unrecoverable broker answer).
    #[error("fatal transaction error: {0}")]
    FatalTransaction(KafkaError),
    /// The consumer cannot go on: another instance joined the group with
    /// the same `group.instance.id` (static membership).
    #[error("fatal consumer error: {0}")]
    FatalConsumer(String),
    #[error("abort_transaction failed: {source} (aborting after: {cause})")]
    Abort { source: KafkaError, cause: Box<KafkaError> },
    #[error(
        "the input grew: partition {partition} was assigned but the device state has {state} partitions, \
         and with input.partitioned_by = \"custom\" a device's state is only found where its records arrived; \
         see the README's runbook (add partitions to the input)"
    )]
    InputGrew { partition: i32, state: i32 },
    #[error("cannot rewind {topic}/{partition} to offset {offset}: {source}")]
    Rewind { topic: String, partition: i32, offset: i64, source: KafkaError },
}

/// Checks and creates topics, then runs the processing loop on its own
/// thread until `shutdown` is set. Blocking: call it off async workers.
pub fn start(
    config: SharedConfig,
    health: Health,
    shutdown: CancellationToken,
) -> Result<JoinHandle<Result<(), ProcessError>>, ProcessError> {
    health.block(runner::PRODUCER_NOT_READY);
    health.block(runner::NOT_JOINED);
    let fixed: Arc<Config> = Arc::clone(&config.read().expect("config lock"));
    std::fs::create_dir_all(&fixed.process.state_dir)
        .map_err(|source| ProcessError::StateDir { path: fixed.process.state_dir.display().to_string(), source })?;
    let layout = admin::ensure_processor_topics(&fixed)?;
    tracing::info!(?layout, "topics ready");
    metrics().layout(0, layout.events, layout.device_state, layout.user_activity);
    let runner = Runner::new(config, layout, health, shutdown)?;
    std::thread::Builder::new().name("processor".into()).spawn(move || runner.run()).map_err(ProcessError::Thread)
}
