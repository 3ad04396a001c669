//! `postback state rescale`: changes the number of state partitions while
//! the processing group is stopped.
//!
//! The state moves to topics of the next generation (`<name>.g<N>`): each
//! changelog is copied record by record to the partition its key belongs
//! to under the new count, and the records of the two repartition topics
//! that the group has not consumed yet are moved the same way (per key in
//! their original order: a key lives in one source partition, read in
//! order). The layout record is written last. A crash before it leaves the
//! old layout in force and the new topics unused; `--resume` deletes those
//! and starts over.

use crate::config::{Config, Partitioning, TopicsConfig};
use crate::kafka::admin::{self, AdminError};
use crate::kafka::client;
use crate::kafka::context::QuietContext;
use crate::kafka::layout::{self, StateLayout};
use crate::kafka::partition_for;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
pub struct Request {
    /// New device state partitions (default: unchanged).
    pub device: Option<i32>,
    /// New user state partitions (default: unchanged).
    pub user: Option<i32>,
    /// Start over after an interrupted rescale.
    pub resume: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RescaleError {
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("the processing group '{group}' has live members ({members}); stop every processor first")]
    GroupLive { group: String, members: String },
    #[error("--{flag} must be at least 1")]
    TooFew { flag: &'static str },
    #[error(
        "--partitions {wanted} is more than the input's {input} partitions: a state partition is fed by the input \
         partition of its number; add partitions to '{events}' first"
    )]
    ExceedsInput { wanted: i32, input: i32, events: String },
    #[error("the state already has {device} device and {user} user partitions: nothing to do")]
    Unchanged { device: i32, user: i32 },
    #[error(
        "topic '{0}' of the next generation exists: a previous rescale was interrupted; run again with --resume \
         (its topics are deleted and the rescale starts over)"
    )]
    Interrupted(String),
    #[error(
        "input.partitioned_by = \"custom\": a device's state is where the producer put it, so it cannot be re-split"
    )]
    Custom,
}

/// What a rescale did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub from: StateLayout,
    pub to: StateLayout,
    /// (topic copied from, records copied), in order.
    pub moved: Vec<(String, u64)>,
}

/// Runs a rescale; `progress` gets one line per partition copied.
pub fn run(config: &Config, req: Request, progress: &mut dyn FnMut(&str)) -> Result<Summary, RescaleError> {
    if config.input.partitioned_by == Partitioning::Custom {
        return Err(RescaleError::Custom);
    }
    let members = admin::group_members(config, &config.kafka.group_id)?;
    if !members.is_empty() {
        return Err(RescaleError::GroupLive { group: config.kafka.group_id.clone(), members: members.join(", ") });
    }
    let from = current(config)?;
    let to = target(config, from, req)?;
    let old = layout::topics_of(&config.topics, from.generation);
    let new = layout::topics_of(&config.topics, to.generation);
    prepare(config, &new, to, req.resume)?;
    let mut moved = Vec::new();
    // changelogs: everything; repartition topics: what the group has not consumed
    let plan = [
        (&old.device_changelog, &new.device_changelog, to.device_partitions, KeyOf::DeviceState, false),
        (&old.user_changelog, &new.user_changelog, to.user_partitions, KeyOf::Whole, false),
        (&old.device_events, &new.device_events, to.device_partitions, KeyOf::Whole, true),
        (&old.user_activity, &new.user_activity, to.user_partitions, KeyOf::Whole, true),
    ];
    for (source, dest, partitions, key_of, unconsumed) in plan {
        let n = copy(config, source, dest, partitions, key_of, unconsumed, progress)?;
        moved.push((source.clone(), n));
        failpoint(source);
    }
    layout::write(config, &to)?;
    Ok(Summary { from, to, moved })
}

/// `postback state show`: the layout in force, one fact per line.
pub fn show(config: &Config) -> Result<String, RescaleError> {
    let layout = current(config)?;
    let probe = admin::reach(config)?;
    let events = &config.topics.events;
    let input = admin::partitions(&probe, events)?.ok_or_else(|| AdminError::Missing(events.clone()))?;
    let topics = layout::topics_of(&config.topics, layout.generation);
    let mode = if input == layout.device_partitions { "co-partitioned" } else { "repartition" };
    Ok(format!(
        "input:             {events} ({input} partitions, partitioned by {})\n\
         device state:      {} partitions ({})\n\
         user state:        {} partitions ({})\n\
         mode:              {mode}\n\
         generation:        {}\n",
        match config.input.partitioned_by {
            Partitioning::DeviceId => "device id",
            Partitioning::Custom => "a custom partitioner",
        },
        layout.device_partitions,
        topics.device_changelog,
        layout.user_partitions,
        topics.user_changelog,
        layout.generation,
    ))
}

/// The layout in force: recorded, or generation 0 as the topics are.
fn current(config: &Config) -> Result<StateLayout, RescaleError> {
    if let Some(recorded) = layout::read(config)? {
        return Ok(recorded);
    }
    let probe = admin::reach(config)?;
    let t = &config.topics;
    let count = |topic: &str| -> Result<i32, RescaleError> {
        admin::partitions(&probe, topic)?.ok_or_else(|| RescaleError::Admin(AdminError::Missing(topic.to_owned())))
    };
    Ok(StateLayout {
        generation: 0,
        device_partitions: count(&t.device_changelog)?,
        user_partitions: count(&t.user_changelog)?,
    })
}

fn target(config: &Config, from: StateLayout, req: Request) -> Result<StateLayout, RescaleError> {
    let device = req.device.unwrap_or(from.device_partitions);
    let user = req.user.unwrap_or(from.user_partitions);
    if device < 1 {
        return Err(RescaleError::TooFew { flag: "partitions" });
    }
    if user < 1 {
        return Err(RescaleError::TooFew { flag: "user-partitions" });
    }
    let probe = admin::reach(config)?;
    let events = &config.topics.events;
    let input = admin::partitions(&probe, events)?.ok_or_else(|| AdminError::Missing(events.clone()))?;
    if device > input {
        return Err(RescaleError::ExceedsInput { wanted: device, input, events: events.clone() });
    }
    if device == from.device_partitions && user == from.user_partitions {
        return Err(RescaleError::Unchanged { device, user });
    }
    Ok(StateLayout { generation: from.generation + 1, device_partitions: device, user_partitions: user })
}

/// Creates the next generation's topics; with `resume`, first deletes
/// what an interrupted rescale left of them.
fn prepare(config: &Config, new: &TopicsConfig, to: StateLayout, resume: bool) -> Result<(), RescaleError> {
    let topics = [
        (&new.device_changelog, to.device_partitions, true),
        (&new.device_events, to.device_partitions, false),
        (&new.user_changelog, to.user_partitions, true),
        (&new.user_activity, to.user_partitions, false),
    ];
    let probe = admin::reach(config)?;
    let mut existing = Vec::new();
    for (topic, _, _) in &topics {
        if admin::partitions(&probe, topic)?.is_some() {
            existing.push(topic.as_str());
        }
    }
    if let Some(first) = existing.first() {
        if !resume {
            return Err(RescaleError::Interrupted((*first).to_owned()));
        }
        admin::delete_topics(config, &existing)?;
    }
    for (topic, n, compact) in topics {
        admin::create_topic(config, topic, n, compact)?;
    }
    Ok(())
}

/// How a record's partition under the new count is found.
#[derive(Clone, Copy)]
enum KeyOf {
    /// Device changelog keys are `app:device`; the device id is what the
    /// input is partitioned by.
    DeviceState,
    /// The record key as it is (`app:user`, the device id).
    Whole,
}

fn new_partition(key: Option<&[u8]>, key_of: KeyOf, partitions: i32) -> i32 {
    let key = key.unwrap_or_default();
    let hashed = match key_of {
        KeyOf::DeviceState => key.iter().position(|b| *b == b':').map_or(key, |i| &key[i + 1..]),
        KeyOf::Whole => key,
    };
    partition_for(hashed, partitions)
}

/// Copies every partition of `source` (from the group's committed offset
/// when `unconsumed`) to `dest`; returns the records copied.
fn copy(
    config: &Config,
    source: &str,
    dest: &str,
    partitions: i32,
    key_of: KeyOf,
    unconsumed: bool,
    progress: &mut dyn FnMut(&str),
) -> Result<u64, RescaleError> {
    let probe = admin::reach(config)?;
    let Some(count) = admin::partitions(&probe, source)? else { return Ok(0) };
    let producer: BaseProducer = client::producer(config).create()?;
    let mut total = 0;
    for p in 0..count {
        let start = if unconsumed { committed(config, source, p)? } else { Offset::Beginning };
        let n = copy_partition(config, &producer, (source, p, start), dest, partitions, key_of)?;
        total += n;
        progress(&format!("{source} [{}/{count}] -> {dest}: {n} records", p + 1));
    }
    producer.flush(TIMEOUT)?;
    Ok(total)
}

fn committed(config: &Config, topic: &str, partition: i32) -> Result<Offset, RescaleError> {
    let consumer: BaseConsumer = client::consumer(config, &config.kafka.group_id).create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let got = consumer.committed_offsets(tpl, TIMEOUT)?;
    Ok(match got.find_partition(topic, partition).map(|e| e.offset()) {
        Some(Offset::Offset(o)) => Offset::Offset(o),
        _ => Offset::Beginning,
    })
}

fn copy_partition(
    config: &Config,
    producer: &BaseProducer,
    (source, partition, start): (&str, i32, Offset),
    dest: &str,
    partitions: i32,
    key_of: KeyOf,
) -> Result<u64, RescaleError> {
    let consumer: BaseConsumer<QuietContext> = client::restore_consumer(config).create_with_context(QuietContext)?;
    let (low, high) = consumer.fetch_watermarks(source, partition, TIMEOUT)?;
    if high <= low {
        return Ok(0);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(source, partition, start)?;
    consumer.assign(&tpl)?;
    let mut n = 0;
    loop {
        match consumer.poll(TIMEOUT) {
            None => return Err(RescaleError::Kafka(KafkaError::Canceled)),
            Some(Err(KafkaError::PartitionEOF(_))) => return Ok(n),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(m)) => {
                let target = new_partition(m.key(), key_of, partitions);
                let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(dest).partition(target);
                if let Some(k) = m.key() {
                    record = record.key(k);
                }
                if let Some(v) = m.payload() {
                    record = record.payload(v);
                }
                send(producer, record)?;
                n += 1;
            }
        }
    }
}

/// Sends, waiting for room while librdkafka's queue is full.
fn send<'a>(producer: &BaseProducer, mut record: BaseRecord<'a, [u8], [u8]>) -> Result<(), RescaleError> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(50));
            }
            Err((e, _)) => return Err(e.into()),
        }
    }
}

/// Test hook: `POSTBACK_RESCALE_CRASH_AFTER=<topic>` aborts the process
/// right after that topic was copied, as a `kill -9` would.
fn failpoint(copied: &str) {
    if std::env::var("POSTBACK_RESCALE_CRASH_AFTER").is_ok_and(|t| t == copied) {
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_state_moves_by_its_device_id_and_the_rest_by_its_key() {
        assert_eq!(new_partition(Some(b"m:dev-1"), KeyOf::DeviceState, 16), partition_for(b"dev-1", 16));
        assert_eq!(new_partition(Some(b"m:u1"), KeyOf::Whole, 16), partition_for(b"m:u1", 16));
        assert_eq!(new_partition(None, KeyOf::Whole, 4), partition_for(b"", 4));
    }
}
