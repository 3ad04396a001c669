//! Topics: created at start when missing, with the right partition counts
//! and `cleanup.policy=compact` on changelogs.
//!
//! The device changelog's partition count is the number of device state
//! partitions `K` (chosen when it is created: `process.state_partitions`,
//! else the input's count), so every instance agrees on it without another
//! record of it. The input may have more partitions than `K` (it grew):
//! records not on their state partition go through the repartition topic.
//! The user stage's input is internal, so its changelog must match it.

use super::client;
use super::connect::{ConnectionKind, ProbeContext};
use super::context::QuietContext;
use crate::config::{Config, STATE_COPIES};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use std::time::Duration;

/// Partition counts of the topics the processor produces to, and the
/// largest record each takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Partitions of the input (`topics.events`).
    pub events: i32,
    /// Device state partitions `K`: the device changelog's and the
    /// repartition topic's partition count.
    pub device_state: i32,
    pub user_activity: i32,
    pub jobs: i32,
    pub jobs_dlq: i32,
    pub events_dlq: i32,
    pub limits: RecordLimits,
}

/// The largest record (key + value + headers) each output topic takes:
/// the smaller of the producer's `message.max.bytes` and the topic's
/// `max.message.bytes`, less room for the batch framing and for
/// compression that does not compress. A record over it would fail the
/// whole transaction, every time it is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLimits {
    pub jobs: usize,
    pub jobs_dlq: usize,
    pub events_dlq: usize,
    pub user_activity: usize,
    /// The smaller of the two changelogs'.
    pub changelog: usize,
}

impl RecordLimits {
    /// The limits with Kafka's defaults everywhere (tests, the mock cluster).
    pub fn defaults() -> RecordLimits {
        let n = fit(PRODUCER_DEFAULT_MAX, TOPIC_DEFAULT_MAX);
        RecordLimits { jobs: n, jobs_dlq: n, events_dlq: n, user_activity: n, changelog: n }
    }
}

/// librdkafka's default `message.max.bytes`.
const PRODUCER_DEFAULT_MAX: usize = 1_000_000;
/// The broker's default `message.max.bytes`, which topics inherit.
const TOPIC_DEFAULT_MAX: usize = 1_048_588;

fn fit(producer: usize, topic: usize) -> usize {
    let n = producer.min(topic);
    n.saturating_sub(n / 128 + 512)
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("cannot reach the Kafka brokers at {bootstrap} (kafka.bootstrap_servers): {cause}")]
    Unreachable { bootstrap: String, cause: String },
    #[error("topic '{0}' does not exist: run `postback topics create CONFIG`, or set topics.create = true")]
    Missing(String),
    #[error(
        "input topic '{0}' does not exist: create it with `postback topics create CONFIG --partitions N` \
         (it creates every topic postback uses) or with your own tooling"
    )]
    MissingInput(String),
    #[error("{0}")]
    Layout(String),
    #[error("creating topic '{topic}': {reason}")]
    Create { topic: String, reason: String },
    #[error(
        "input.max_record_bytes ({max_record}) is too large for topic '{topic}', which takes records of up to {limit} bytes: \
         its records carry up to {copies} copies of an event's attribution; lower input.max_record_bytes to {fits} or raise the topic's max.message.bytes"
    )]
    RecordLimit { max_record: usize, topic: String, limit: usize, copies: usize, fits: usize },
    #[error(
        "changelog '{changelog}' has {changelog_partitions} partitions but its source '{source_topic}' has {source_partitions}: \
         state would land in the wrong store. Delete the changelog (state is rebuilt from scratch, postbacks may repeat) \
         or give the source back its old partition count"
    )]
    Mismatch { changelog: String, changelog_partitions: i32, source_topic: String, source_partitions: i32 },
    #[error(
        "process.state_partitions is {wanted} but the device state has {have} partitions (topic '{changelog}'): \
         the setting applies only when that topic is created; remove it or set it to {have}"
    )]
    StatePartitions { wanted: i32, have: i32, changelog: String },
    #[error(
        "repartition topic '{topic}' has {partitions} partitions but the device state has {state} (topic '{changelog}'): \
         they must match; delete '{topic}' if the processors are stopped and it holds nothing unconsumed (it is recreated), \
         or give it {state} partitions"
    )]
    RepartitionMismatch { topic: String, partitions: i32, state: i32, changelog: String },
    #[error(
        "the device state has {state} partitions (topic '{changelog}') but the input '{events}' has only {events_partitions}: \
         add partitions to the input (kafka-topics --alter --partitions {state})"
    )]
    StateExceedsInput { state: i32, changelog: String, events: String, events_partitions: i32 },
    #[error(
        "the input '{events}' has {events_partitions} partitions but the device state has {state} (topic '{changelog}'), \
         and input.partitioned_by = \"custom\" finds a device's state only where its records arrive: \
         partition the input by device id (input.partitioned_by = \"device_id\") or see docs/operations/runbook.md"
    )]
    CustomGrew { state: i32, changelog: String, events: String, events_partitions: i32 },
}

const TIMEOUT: Duration = Duration::from_secs(15);

/// A client that has reached the brokers.
pub type Probe = BaseConsumer<ProbeContext>;

/// A client that has reached the brokers (a metadata request answered), or
/// an error that names the address it tried and why it failed (a refused
/// password, an untrusted certificate, nothing listening), as soon as
/// librdkafka has said so.
pub fn reach(config: &Config) -> Result<Probe, AdminError> {
    reach_within(config, TIMEOUT)
}

/// [`reach`], giving up after `patience`.
pub fn reach_within(config: &Config, patience: Duration) -> Result<Probe, AdminError> {
    let consumer: Probe = client::base(config).create_with_context(ProbeContext::default())?;
    let deadline = std::time::Instant::now() + patience;
    loop {
        // short requests: the error callback runs in between, and a refused
        // password ends the wait at once instead of at the deadline
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match consumer.fetch_metadata(None, left.min(Duration::from_secs(1))) {
            Ok(_) => return Ok(consumer),
            Err(source) => {
                // the error callback is served by polling the client
                let _ = consumer.poll(Duration::ZERO);
                let cause = consumer.context().log.latest(patience);
                let fatal = cause.as_ref().is_some_and(|c| {
                    matches!(c.kind, ConnectionKind::Authentication | ConnectionKind::Tls | ConnectionKind::Resolve)
                });
                if fatal || left.is_zero() {
                    let bootstrap = config.kafka.bootstrap_servers.clone();
                    let cause = cause.map_or_else(|| source.to_string(), |c| c.to_string());
                    return Err(AdminError::Unreachable { bootstrap, cause });
                }
            }
        }
    }
}

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
    let consumer = reach(config)?;
    let t = &config.topics;
    let events = partitions(&consumer, &t.events)?.ok_or_else(|| AdminError::MissingInput(t.events.clone()))?;
    let device_state = device_state(config, &consumer, events)?;
    let ua_wanted = t.user_activity_partitions.unwrap_or(events);
    let user_activity = ensure(config, &consumer, &t.user_activity, ua_wanted, false)?;
    let jobs = ensure(config, &consumer, &t.jobs, t.jobs_partitions, false)?;
    // oversized jobs go straight to the job DLQ
    let jobs_dlq = ensure(config, &consumer, &t.jobs_dlq, t.jobs_partitions, false)?;
    let events_dlq = ensure(config, &consumer, &t.events_dlq, events, false)?;
    let got = ensure(config, &consumer, &t.device_events, device_state, false)?;
    if got != device_state {
        return Err(AdminError::RepartitionMismatch {
            topic: t.device_events.clone(),
            partitions: got,
            state: device_state,
            changelog: t.device_changelog.clone(),
        });
    }
    let got = ensure(config, &consumer, &t.user_changelog, user_activity, true)?;
    if got != user_activity {
        return Err(AdminError::Mismatch {
            changelog: t.user_changelog.clone(),
            changelog_partitions: got,
            source_topic: t.user_activity.clone(),
            source_partitions: user_activity,
        });
    }
    // the state layout record: how users are keyed, each app's project
    ensure(config, &consumer, &t.layout, 1, true)?;
    let limits = record_limits(config)?;
    check_state_fits(config, &limits)?;
    Ok(Layout { events, device_state, user_activity, jobs, jobs_dlq, events_dlq, limits })
}

/// The device state partitions `K`: the device changelog's partition count,
/// creating it with `process.state_partitions` (default: the input's count).
fn device_state(config: &Config, consumer: &Probe, events: i32) -> Result<i32, AdminError> {
    let t = &config.topics;
    let wanted = config.process.state_partitions;
    let existing = partitions(consumer, &t.device_changelog)?;
    let have = existing.unwrap_or(wanted.unwrap_or(events));
    if let Some(wanted) = wanted.filter(|w| *w != have) {
        return Err(AdminError::StatePartitions { wanted, have, changelog: t.device_changelog.clone() });
    }
    // a state partition is fed by the input partition of its number
    if have > events {
        return Err(AdminError::StateExceedsInput {
            state: have,
            changelog: t.device_changelog.clone(),
            events: t.events.clone(),
            events_partitions: events,
        });
    }
    if have != events && config.input.partitioned_by == crate::config::Partitioning::Custom {
        return Err(AdminError::CustomGrew {
            state: have,
            changelog: t.device_changelog.clone(),
            events: t.events.clone(),
            events_partitions: events,
        });
    }
    if existing.is_none() {
        ensure(config, consumer, &t.device_changelog, have, true)?;
    }
    Ok(have)
}

/// A topic and how many partitions it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSize {
    pub topic: String,
    pub partitions: i32,
}

/// `postback topics create`: the input with `input_partitions` (when
/// missing) and every topic both stages use, whatever `topics.create`
/// says. Returns each topic with its partition count.
pub fn create_all(config: &Config, input_partitions: i32) -> Result<Vec<TopicSize>, AdminError> {
    let mut config = config.clone();
    config.topics.create = true;
    let consumer = reach(&config)?;
    ensure(&config, &consumer, &config.topics.events, input_partitions, false)?;
    ensure_processor_topics(&config)?;
    ensure_sender_topics(&config)?;
    let t = &config.topics;
    let mut names = vec![
        &t.events,
        &t.events_dlq,
        &t.user_activity,
        &t.device_events,
        &t.device_changelog,
        &t.user_changelog,
        &t.jobs,
        &t.jobs_dlq,
        &t.deliveries,
        &t.layout,
    ];
    let retries = config.retry_topics();
    names.extend(retries.iter());
    let size = |n: &String| Ok(TopicSize { topic: n.clone(), partitions: partitions(&consumer, n)?.unwrap_or(0) });
    names.into_iter().map(size).collect()
}

/// Reads every output topic's `max.message.bytes`.
fn record_limits(config: &Config) -> Result<RecordLimits, AdminError> {
    let t = &config.topics;
    let producer = client::transactional_producer(config)
        .get("message.max.bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(PRODUCER_DEFAULT_MAX);
    let names = [&t.jobs, &t.jobs_dlq, &t.events_dlq, &t.user_activity, &t.device_changelog, &t.user_changelog];
    let admin: AdminClient<QuietContext> = client::base(config).create_with_context(QuietContext)?;
    let specs: Vec<ResourceSpecifier<'_>> = names.iter().map(|n| ResourceSpecifier::Topic(n.as_str())).collect();
    // brokers answer at once; one that cannot (the mock cluster) should not delay the start
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(3)));
    let mut max = [TOPIC_DEFAULT_MAX; 6];
    // a broker that refuses DescribeConfigs (ACLs, librdkafka's mock
    // cluster) leaves the defaults, with a warning
    match futures::executor::block_on(admin.describe_configs(&specs, &opts)) {
        Ok(results) => {
            for ((slot, result), name) in max.iter_mut().zip(results).zip(names) {
                match result {
                    Ok(resource) => {
                        if let Some(v) = resource.get("max.message.bytes").and_then(|e| e.value.as_deref()) {
                            *slot = v.parse().unwrap_or(TOPIC_DEFAULT_MAX);
                        }
                    }
                    Err(code) => {
                        tracing::warn!(topic = %name, error = %code, "cannot read max.message.bytes; assuming the default")
                    }
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the topics' max.message.bytes; assuming the default"),
    }
    Ok(RecordLimits {
        jobs: fit(producer, max[0]),
        jobs_dlq: fit(producer, max[1]),
        events_dlq: fit(producer, max[2]),
        user_activity: fit(producer, max[3]),
        changelog: fit(producer, max[4].min(max[5])),
    })
}

/// State and user-activity records are bounded by construction: at most
/// [`STATE_COPIES`] copies of an input record. Refuse to start when that
/// bound does not fit the topics, rather than fail a transaction later.
fn check_state_fits(config: &Config, limits: &RecordLimits) -> Result<(), AdminError> {
    let max_record = config.input.max_record_bytes;
    let need = max_record * STATE_COPIES + 4096;
    let t = &config.topics;
    for (topic, limit) in [(&t.user_activity, limits.user_activity), (&t.device_changelog, limits.changelog)] {
        if need > limit {
            return Err(AdminError::RecordLimit {
                max_record,
                topic: topic.clone(),
                limit,
                copies: STATE_COPIES,
                fits: limit.saturating_sub(4096) / STATE_COPIES,
            });
        }
    }
    Ok(())
}

/// Creates the sender's topics (retry tiers, DLQ, delivery log) when missing.
pub fn ensure_sender_topics(config: &Config) -> Result<(), AdminError> {
    let consumer = reach(config)?;
    let t = &config.topics;
    ensure(config, &consumer, &t.jobs, t.jobs_partitions, false)?;
    for topic in config.retry_topics().iter().chain([&t.jobs_dlq, &t.deliveries]) {
        ensure(config, &consumer, topic, t.jobs_partitions, false)?;
    }
    Ok(())
}

/// A compacted topic, created with `n` partitions when missing.
pub fn ensure_compacted(config: &Config, topic: &str, n: i32) -> Result<i32, AdminError> {
    let consumer = reach(config)?;
    ensure(config, &consumer, topic, n, true)
}

/// Creates `topic` (whatever `topics.create` says: an explicit command asks).
pub fn create_topic(config: &Config, topic: &str, n: i32, compact: bool) -> Result<(), AdminError> {
    create(config, topic, n, compact)
}

/// Deletes `topics` and waits until the brokers no longer list them.
pub fn delete_topics(config: &Config, topics: &[&str]) -> Result<(), AdminError> {
    let admin: AdminClient<QuietContext> = client::base(config).create_with_context(QuietContext)?;
    let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let results = futures::executor::block_on(admin.delete_topics(topics, &opts))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((name, code)) => return Err(AdminError::Create { topic: name, reason: format!("delete: {code}") }),
        }
    }
    let consumer = reach(config)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for topic in topics {
        while partitions(&consumer, topic)?.is_some() {
            if std::time::Instant::now() > deadline {
                return Err(AdminError::Create {
                    topic: (*topic).to_owned(),
                    reason: "still listed 60 s after its deletion".into(),
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(())
}

/// The members of consumer group `group` as `client.id@host`.
pub fn group_members(config: &Config, group: &str) -> Result<Vec<String>, AdminError> {
    let consumer = reach(config)?;
    let list = consumer.fetch_group_list(Some(group), TIMEOUT)?;
    Ok(list
        .groups()
        .iter()
        .filter(|g| g.name() == group)
        .flat_map(|g| g.members().iter().map(|m| format!("{}@{}", m.client_id(), m.client_host())))
        .collect())
}

/// The topic's partition count, creating it with `n` partitions if missing.
fn ensure(config: &Config, consumer: &Probe, topic: &str, n: i32, compact: bool) -> Result<i32, AdminError> {
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
    let admin: AdminClient<QuietContext> = client::base(config).create_with_context(QuietContext)?;
    let mut new = NewTopic::new(topic, n, TopicReplication::Fixed(config.topics.replication_factor));
    if compact {
        new = new.set("cleanup.policy", "compact");
    }
    // records kept for people (DLQs, the delivery log) keep for as long as
    // configured, not for whatever the broker's default is
    let retention = retention_of(config, topic).map(|d| d.as_millis().to_string());
    if let Some(ms) = &retention {
        new = new.set("retention.ms", ms);
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

/// The retention postback gives `topic` when it creates it, if any.
fn retention_of(config: &Config, topic: &str) -> Option<Duration> {
    let t = &config.topics;
    if topic == t.jobs_dlq || topic == t.events_dlq {
        Some(t.dlq_retention.0)
    } else if topic == t.deliveries {
        Some(t.deliveries_retention.0)
    } else {
        None
    }
}

/// Whether any partition of `topic` holds a record (false when the topic
/// does not exist).
pub fn holds_records(config: &Config, topic: &str) -> Result<bool, AdminError> {
    let consumer = reach(config)?;
    let Some(count) = partitions(&consumer, topic)? else { return Ok(false) };
    for p in 0..count {
        let (low, high) = consumer.fetch_watermarks(topic, p, TIMEOUT)?;
        if high > low {
            return Ok(true);
        }
    }
    Ok(false)
}
