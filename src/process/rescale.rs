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
use crate::kafka::layout::{self, StateLayout, UserKeys};
use crate::kafka::partition_for;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::Duration;

mod rekey;

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
    #[error("the state already has {device} device and {user} user partitions, keyed by project: nothing to do")]
    Unchanged { device: i32, user: i32 },
    #[error(
        "topic '{0}' of the next generation exists: a previous rescale was interrupted; run again with --resume \
         (its topics are deleted and the rescale starts over)"
    )]
    Interrupted(String),
    #[error(
        "input.partitioned_by = \"custom\": a device's state is where the producer put it, so the device state \
         cannot be re-split (the user state can: --user-partitions)"
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
    let members = admin::group_members(config, &config.kafka.group_id)?;
    if !members.is_empty() {
        return Err(RescaleError::GroupLive { group: config.kafka.group_id.clone(), members: members.join(", ") });
    }
    let from = current(config)?;
    let to = target(config, &from, req)?;
    let custom = config.input.partitioned_by == Partitioning::Custom;
    if custom && to.device_partitions != from.device_partitions {
        return Err(RescaleError::Custom);
    }
    // user state written before projects moves to `project:user` keys
    let rekey = (from.user_keys == UserKeys::App).then(|| to.projects.clone());
    let old = layout::topics_of(&config.topics, from.generation);
    let new = layout::topics_of(&config.topics, to.generation);
    prepare(config, &new, &to, req.resume)?;
    let mut moved = Vec::new();
    // changelogs: everything; repartition topics: what the group has not consumed
    let user_key = rekey.as_ref().map_or(KeyOf::Whole, KeyOf::UserByProject);
    // a custom partitioner put each device where it is: it stays there
    let (device_key, device_event_key) =
        if custom { (KeyOf::Same, KeyOf::Same) } else { (KeyOf::DeviceState, KeyOf::Whole) };
    let plan = [
        (&old.device_changelog, &new.device_changelog, to.device_partitions, device_key, false),
        (&old.user_changelog, &new.user_changelog, to.user_partitions, user_key, false),
        (&old.device_events, &new.device_events, to.device_partitions, device_event_key, true),
        (&old.user_activity, &new.user_activity, to.user_partitions, user_key, true),
    ];
    for (source, dest, partitions, key_of, unconsumed) in plan {
        let n = match (key_of, unconsumed) {
            (KeyOf::UserByProject(projects), false) => {
                rekey::user_changelog(config, (source, dest, partitions), projects, progress)?
            }
            _ => copy(config, source, dest, partitions, key_of, unconsumed, progress)?,
        };
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
    let users = match layout.user_keys {
        UserKeys::Project => format!("by project ({} apps recorded)", layout.projects.len()),
        UserKeys::App => "by app (written before projects: `state rescale` re-keys them)".to_owned(),
    };
    Ok(format!(
        "input:             {events} ({input} partitions, partitioned by {})\n\
         device state:      {} partitions ({})\n\
         user state:        {} partitions ({}), users keyed {users}\n\
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
        user_keys: UserKeys::App,
        projects: Default::default(),
    })
}

fn target(config: &Config, from: &StateLayout, req: Request) -> Result<StateLayout, RescaleError> {
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
    let rekey = from.user_keys == UserKeys::App;
    if device == from.device_partitions && user == from.user_partitions && !rekey {
        return Err(RescaleError::Unchanged { device, user });
    }
    // apps keep the project recorded for them; new ones take the configured
    let mut projects = layout::projects_of(config);
    projects.extend(from.projects.clone());
    Ok(StateLayout {
        generation: from.generation + 1,
        device_partitions: device,
        user_partitions: user,
        user_keys: UserKeys::Project,
        projects,
    })
}

/// Creates the next generation's topics; with `resume`, first deletes
/// what an interrupted rescale left of them.
fn prepare(config: &Config, new: &TopicsConfig, to: &StateLayout, resume: bool) -> Result<(), RescaleError> {
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

/// How a record's key and partition under the new count are found.
#[derive(Clone, Copy)]
enum KeyOf<'a> {
    /// Device changelog keys are `app:device`; the device id is what the
    /// input is partitioned by.
    DeviceState,
    /// The record key as it is (`project:user`, the device id).
    Whole,
    /// `app:user` becomes `project:user` (app → project).
    UserByProject(&'a BTreeMap<String, String>),
    /// The record stays in its partition (the count does not change).
    Same,
}

/// The record's key in the new generation and its partition there.
fn new_place(key: Option<&[u8]>, key_of: KeyOf<'_>, (partitions, from): (i32, i32)) -> (Option<Vec<u8>>, i32) {
    if let KeyOf::Same = key_of {
        return (key.map(<[u8]>::to_vec), from);
    }
    let Some(key) = key else { return (None, partition_for(b"", partitions)) };
    match key_of {
        KeyOf::Same => unreachable!("handled above"),
        KeyOf::DeviceState => {
            let device = key.iter().position(|b| *b == b':').map_or(key, |i| &key[i + 1..]);
            (Some(key.to_vec()), partition_for(device, partitions))
        }
        KeyOf::Whole => (Some(key.to_vec()), partition_for(key, partitions)),
        KeyOf::UserByProject(projects) => {
            let moved = rekey::user_key(key, projects);
            let p = partition_for(&moved, partitions);
            (Some(moved), p)
        }
    }
}

/// Copies every partition of `source` (from the group's committed offset
/// when `unconsumed`) to `dest`; returns the records copied.
fn copy(
    config: &Config,
    source: &str,
    dest: &str,
    partitions: i32,
    key_of: KeyOf<'_>,
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
    from: (&str, i32, Offset),
    dest: &str,
    partitions: i32,
    key_of: KeyOf<'_>,
) -> Result<u64, RescaleError> {
    let mut n = 0;
    let source_partition = from.1;
    for_each_record(config, from, &mut |key, value| {
        let (key, target) = new_place(key, key_of, (partitions, source_partition));
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(dest).partition(target);
        if let Some(k) = &key {
            record = record.key(k.as_slice());
        }
        if let Some(v) = value {
            record = record.payload(v);
        }
        send(producer, record)?;
        n += 1;
        Ok(())
    })?;
    Ok(n)
}

/// Called with a record's key and value.
pub(super) type OnRecord<'a> = dyn FnMut(Option<&[u8]>, Option<&[u8]>) -> Result<(), RescaleError> + 'a;

/// Calls `f` with the key and value of every record of one partition from
/// `start` up to its end as it was when the read began.
pub(super) fn for_each_record(
    config: &Config,
    (source, partition, start): (&str, i32, Offset),
    f: &mut OnRecord<'_>,
) -> Result<(), RescaleError> {
    let consumer: BaseConsumer<QuietContext> = client::restore_consumer(config).create_with_context(QuietContext)?;
    let (low, high) = consumer.fetch_watermarks(source, partition, TIMEOUT)?;
    if high <= low {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(source, partition, start)?;
    consumer.assign(&tpl)?;
    loop {
        match consumer.poll(TIMEOUT) {
            None => return Err(RescaleError::Kafka(KafkaError::Canceled)),
            Some(Err(KafkaError::PartitionEOF(_))) => return Ok(()),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(m)) => f(m.key(), m.payload())?,
        }
    }
}

/// Sends, waiting for room while librdkafka's queue is full.
pub(super) fn send<'a>(producer: &BaseProducer, mut record: BaseRecord<'a, [u8], [u8]>) -> Result<(), RescaleError> {
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
        let part = |key: Option<&[u8]>, key_of, n| new_place(key, key_of, (n, 0)).1;
        assert_eq!(part(Some(b"m:dev-1"), KeyOf::DeviceState, 16), partition_for(b"dev-1", 16));
        assert_eq!(part(Some(b"p:u1"), KeyOf::Whole, 16), partition_for(b"p:u1", 16));
        assert_eq!(part(None, KeyOf::Whole, 4), partition_for(b"", 4));
        let projects = BTreeMap::from([("m".to_owned(), "games".to_owned())]);
        let (key, p) = new_place(Some(b"m:u1"), KeyOf::UserByProject(&projects), (16, 0));
        assert_eq!((key.as_deref(), p), (Some(&b"games:u1"[..]), partition_for(b"games:u1", 16)));
        assert_eq!(new_place(Some(b"m:d1"), KeyOf::Same, (16, 5)), (Some(b"m:d1".to_vec()), 5));
    }
}
