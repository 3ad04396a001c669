//! The processing stage (`postback process`, docs/design.md §3): a consumer group
//! over the event and user-activity topics, one RocksDB store per assigned
//! partition restored from its changelog, and one transactional producer,
//! so that jobs, repartitioned user activity, changelog records and input
//! offsets commit together or not at all.

mod batch;
mod gate;
mod partitions;
mod records;
pub mod rescale;
pub mod restore;
mod runner;
mod source;
pub mod stage;
mod stats;
mod threads;
mod transaction;
mod users;

pub use restore::RestoreError;
pub use stage::{Part, Stage};

use crate::config::Config;
use crate::kafka::admin::{self, AdminError};
use crate::kafka::layout::{self, StateLayout};
use crate::store::StoreError;
use crate::telemetry::Health;
use crate::telemetry::Reason;
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
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
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
         see docs/operations/runbook.md (add partitions to the input)"
    )]
    InputGrew { partition: i32, state: i32 },
    #[error(
        "the user state in '{topic}' is keyed by app (written before projects): stop every processor and run \
         `postback state rescale CONFIG` once to re-key it by project (docs/design.md §1.4)"
    )]
    UsersKeyedByApp { topic: String },
    #[error(
        "app '{app}' moved from project '{from}' to '{to}': its users are counted in '{from}', and moving them \
         would count each one again; set its project back to '{from}' (apps cannot change project)"
    )]
    ProjectMoved { app: String, from: String, to: String },
    #[error("{0}")]
    Registry(#[from] crate::registry::RegistryError),
    #[error("cannot rewind {topic}/{partition} to offset {offset}: {source}")]
    Rewind { topic: String, partition: i32, offset: i64, source: KafkaError },
}

/// The config with the state topics and state directory of the recorded
/// layout's generation (generation 0: as configured). Stores of another
/// generation live in their own directory, so none is mistaken for the
/// state of a changelog it was not restored from.
fn with_layout(configured: &Config) -> Result<(Config, Option<StateLayout>), ProcessError> {
    let mut fixed = configured.clone();
    let Some(recorded) = layout::read(configured)? else { return Ok((fixed, None)) };
    let g = recorded.generation;
    fixed.topics = layout::topics_of(&configured.topics, g);
    if g > 0 {
        fixed.process.state_dir = configured.process.state_dir.join(format!("g{g}"));
        // the recorded layout says how many partitions the state has
        fixed.process.state_partitions = None;
    }
    Ok((fixed, Some(recorded)))
}

/// Checks and creates topics, then runs the processing loops on their own
/// threads until `shutdown` is set; the handle returned ends when they all
/// have, with the first error. Blocking: call it off async workers.
pub fn start(
    config: SharedConfig,
    health: Health,
    shutdown: CancellationToken,
) -> Result<JoinHandle<Result<(), ProcessError>>, ProcessError> {
    health.block(Reason::ProducerNotReady);
    crate::memory::keep_freed_memory();
    let configured: Arc<Config> = Arc::clone(&config.read().expect("config lock"));
    let (fixed, recorded) = with_layout(&configured)?;
    let generation = recorded.as_ref().map_or(0, |l| l.generation);
    std::fs::create_dir_all(&fixed.process.state_dir)
        .map_err(|source| ProcessError::StateDir { path: fixed.process.state_dir.display().to_string(), source })?;
    let layout = admin::ensure_processor_topics(&fixed)?;
    users::check(&configured, &fixed, recorded, generation, &layout)?;
    let threads = threads::effective(fixed.process_threads(), &layout);
    tracing::info!(?layout, generation, threads, "topics ready");
    metrics().layout(i64::from(generation), layout.events, layout.device_state, layout.user_activity);
    // one stop for every thread: when one fails, the others leave the group too
    let stop = shutdown.child_token();
    let mut runners = Vec::with_capacity(threads);
    for t in threads::members(&fixed, threads) {
        let health = if threads > 1 { health.scoped(&t.name) } else { health.clone() };
        health.block(Reason::ProducerNotReady);
        health.block(Reason::NotJoined);
        let runner =
            Runner::new(t.name.clone(), Arc::clone(&config), Arc::new(t.config), layout, health, stop.clone())?;
        runners.push((t.name, runner));
    }
    if threads > 1 {
        // each thread holds its own (scoped) reason from here on
        health.unblock(Reason::ProducerNotReady);
    }
    threads::spawn(runners, stop)
}
