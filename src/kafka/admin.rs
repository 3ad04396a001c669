//! Topics: created at start when missing, with the right partition counts
//! and `cleanup.policy=compact` on changelogs; a changelog whose partition
//! count differs from its source is refused with what to do about it.

use super::client;
use crate::config::Config;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use std::time::Duration;

/// Partition counts of the topics the processor produces to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub events: i32,
    pub user_activity: i32,
    pub jobs: i32,
    pub events_dlq: i32,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("topic '{0}' does not exist; create it, or set topics.create = true")]
    Missing(String),
    #[error("creating topic '{topic}': {reason}")]
    Create { topic: String, reason: String },
    #[error(
        "changelog '{changelog}' has {changelog_partitions} partitions but its source '{source_topic}' has {source_partitions}: \
         state would land in the wrong store. Delete the changelog (state is rebuilt from scratch, postbacks may repeat) \
         or give the source back its old partition count"
    )]
    Mismatch { changelog: String, changelog_partitions: i32, source_topic: String, source_partitions: i32 },
}

const TIMEOUT: Duration = Duration::from_secs(15);

/// Partitions of `topic`, or `None` when it does not exist.
pub fn partitions<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
) -> Result<Option<i32>, AdminError> {
    let md = consumer.fetch_metadata(Some(topic), TIMEOUT)?;
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else { return Ok(None) };
    match t.error() {
        None => Ok(Some(t.partitions().len() as i32)),
        Some(e) if RDKafkaErrorCode::from(e) == RDKafkaErrorCode::UnknownTopicOrPartition => Ok(None),
        Some(e) => Err(AdminError::Kafka(rdkafka::error::KafkaError::MetadataFetch(e.into()))),
    }
}

/// Creates missing topics and checks partition counts. Blocking: call it
/// off async worker threads.
pub fn ensure_processor_topics(config: &Config) -> Result<Layout, AdminError> {
    let consumer: BaseConsumer = client::base(config).create()?;
    let t = &config.topics;
    let events = partitions(&consumer, &t.events)?.ok_or_else(|| AdminError::Missing(t.events.clone()))?;
    let ua_wanted = t.user_activity_partitions.unwrap_or(events);
    let user_activity = ensure(config, &consumer, &t.user_activity, ua_wanted, false)?;
    let jobs = ensure(config, &consumer, &t.jobs, t.jobs_partitions, false)?;
    let events_dlq = ensure(config, &consumer, &t.events_dlq, events, false)?;
    for (changelog, source, n) in
        [(&t.device_changelog, &t.events, events), (&t.user_changelog, &t.user_activity, user_activity)]
    {
        let got = ensure(config, &consumer, changelog, n, true)?;
        if got != n {
            return Err(AdminError::Mismatch {
                changelog: changelog.clone(),
                changelog_partitions: got,
                source_topic: source.clone(),
                source_partitions: n,
            });
        }
    }
    Ok(Layout { events, user_activity, jobs, events_dlq })
}

/// Creates the sender's topics (retry tiers, DLQ, delivery log) when missing.
pub fn ensure_sender_topics(config: &Config) -> Result<(), AdminError> {
    let consumer: BaseConsumer = client::base(config).create()?;
    let t = &config.topics;
    ensure(config, &consumer, &t.jobs, t.jobs_partitions, false)?;
    for topic in config.retry_topics().iter().chain([&t.jobs_dlq, &t.deliveries]) {
        ensure(config, &consumer, topic, t.jobs_partitions, false)?;
    }
    Ok(())
}

/// The topic's partition count, creating it with `n` partitions if missing.
fn ensure(config: &Config, consumer: &BaseConsumer, topic: &str, n: i32, compact: bool) -> Result<i32, AdminError> {
    if let Some(existing) = partitions(consumer, topic)? {
        return Ok(existing);
    }
    if !config.topics.create {
        return Err(AdminError::Missing(topic.to_owned()));
    }
    create(config, topic, n, compact)?;
    tracing::info!(topic, partitions = n, compact, "created topic");
    Ok(n)
}

fn create(config: &Config, topic: &str, n: i32, compact: bool) -> Result<(), AdminError> {
    let admin: AdminClient<DefaultClientContext> = client::base(config).create()?;
    let mut new = NewTopic::new(topic, n, TopicReplication::Fixed(config.topics.replication_factor));
    if compact {
        new = new.set("cleanup.policy", "compact");
    }
    let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    // rdkafka's admin futures complete from librdkafka's own thread
    let results = futures::executor::block_on(admin.create_topics([&new], &opts))?;
    for r in results {
        match r {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(AdminError::Create { topic: name, reason: code.to_string() }),
        }
    }
    Ok(())
}
