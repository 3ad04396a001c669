//! The sender stage (`postback send`, docs/design.md §4): drains `postback.jobs` and
//! the retry tiers over HTTP, with per-partner concurrency, rate limits and
//! circuit breakers, non-blocking retry tiers, a DLQ and a delivery log.
//!
//! Guarantee: at least once. An offset is committed only when every job at
//! or below it has a terminal outcome for this stage (delivered, handed to a
//! retry tier, or in the DLQ, each write acknowledged). After a crash the
//! jobs in flight are sent again, with the same `X-Postback-Id`.

mod consumers;
pub mod http;
mod lane;
pub mod limits;
pub mod offsets;
pub mod outcome;
mod outputs;
pub mod redact;
pub mod retry;
pub mod signature;
pub mod ssrf;
pub mod step;
mod task;
mod worker;

use crate::config::Config;
use crate::config::reload::SharedConfig;
use crate::kafka::admin::{self, AdminError};
use crate::kafka::client;
use crate::kafka::context::QuietContext;
use crate::telemetry::{Health, Reason};
use offsets::OffsetTracker;
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Creates missing topics, then runs the sender until `shutdown` is cancelled.
/// Partner settings follow config reloads; topics and Kafka settings are
/// read once.
pub async fn run(shared_config: SharedConfig, health: Health, shutdown: CancellationToken) -> Result<(), SendError> {
    let config: Arc<Config> = Arc::clone(&shared_config.read().expect("config lock"));
    health.block(Reason::SenderStarting);
    crate::memory::keep_freed_memory();
    let c = Arc::clone(&config);
    let partitions = tokio::task::spawn_blocking(move || -> Result<HashMap<String, i32>, AdminError> {
        admin::ensure_sender_topics(&c)?;
        let probe: BaseConsumer = client::base(&c).create().map_err(AdminError::Kafka)?;
        let mut map = HashMap::new();
        for t in c.retry_topics().into_iter().chain([
            c.topics.jobs.clone(),
            c.topics.jobs_dlq.clone(),
            c.topics.deliveries.clone(),
        ]) {
            let n = admin::partitions(&probe, &t)?.unwrap_or(1);
            map.insert(t, n);
        }
        Ok(map)
    })
    .await
    .expect("topic check task")?;

    let producer: FutureProducer<QuietContext> = client::producer(&config).create_with_context(QuietContext)?;
    let t = &config.topics;
    // the group's partitions, of which each sender's share of partner limits is a part
    let total_partitions = config.retry_topics().iter().chain([&t.jobs]).map(|t| partitions[t].max(0) as usize).sum();
    let outputs =
        outputs::Outputs::new(producer, t.deliveries.clone(), t.jobs_dlq.clone(), config.retry_topics(), partitions);
    let shared = Arc::new(task::Shared { http: http::Http::new(), outputs, config: Arc::clone(&shared_config) });

    let tracker = Arc::new(Mutex::new(OffsetTracker::default()));
    let mut topics = vec![t.jobs.clone()];
    topics.extend(config.retry_topics());
    let consumers = consumers::Consumers::subscribe(&config, &topics, &tracker)?;
    tracing::info!(group = %config.kafka.sender_group_id, topics = ?topics, "sender stage started");
    health.unblock(Reason::SenderStarting);

    let w = worker::Worker::new(
        Arc::new(consumers),
        shared,
        shared_config,
        tracker,
        config.send.max_in_flight,
        total_partitions,
        shutdown,
    );
    w.run().await;
    Ok(())
}
