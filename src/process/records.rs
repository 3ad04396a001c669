//! Records in and out of a batch, independent of rdkafka types so the batch
//! logic is testable without a broker.

use super::stage::{Feed, Part, Stage, Via};
use std::collections::BTreeMap;

/// A polled record, copied out of librdkafka's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InRecord {
    /// The stage it feeds.
    pub stage: Stage,
    /// Read from the stage's input, or from the device repartition topic.
    pub via: Via,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

impl InRecord {
    /// The state partition of a record processed where it was read.
    pub fn part(&self) -> Part {
        Part::new(self.stage, self.partition)
    }

    /// Key and value bytes: what counts against `input.max_record_bytes`
    /// and `process.max_batch_bytes`.
    pub fn size(&self) -> usize {
        self.key.as_ref().map_or(0, Vec::len) + self.value.as_ref().map_or(0, Vec::len)
    }

    /// The partition it was read from (offsets and rewinds).
    pub fn feed(&self) -> Feed {
        Feed { stage: self.stage, via: self.via, partition: self.partition }
    }
}

/// Where an output record goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dest {
    /// `topics.jobs`.
    Jobs,
    /// A stage's input topic (the device stage feeds the user stage's).
    Input(Stage),
    /// `topics.device_events`: input records not on their state partition.
    Repartition,
    /// A stage's changelog.
    Changelog(Stage),
    /// `topics.events_dlq`: input records that could not be processed.
    Dlq,
    /// `topics.jobs_dlq`: jobs too large to produce.
    JobsDlq,
}

/// A record to produce in the batch's transaction, with its partition
/// already chosen (murmur2 of the key; changelogs: the source partition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRecord {
    pub dest: Dest,
    pub partition: i32,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// DLQ records say why and where from (`error`, `source-topic`, ...).
    pub headers: Vec<(&'static str, String)>,
}

impl OutRecord {
    /// What the record weighs against a topic's record size limit.
    pub fn size(&self) -> usize {
        self.key.len() + self.value.len() + self.headers.iter().map(|(k, v)| k.len() + v.len() + 8).sum::<usize>()
    }
}

/// Per partition read: an offset of a batch (its first, or the next).
pub type Offsets = BTreeMap<Feed, i64>;

/// The first offset of each source partition among `records`.
pub fn first_offsets<'a>(records: impl IntoIterator<Item = &'a InRecord>) -> Offsets {
    let mut first = Offsets::new();
    for r in records {
        let slot = first.entry(r.feed()).or_insert(r.offset);
        *slot = (*slot).min(r.offset);
    }
    first
}

/// Where to rewind when two batches are lost at once: per partition, the
/// earlier of their first offsets.
pub fn earliest(mut a: Offsets, b: &Offsets) -> Offsets {
    for (k, v) in b {
        let slot = a.entry(*k).or_insert(*v);
        *slot = (*slot).min(*v);
    }
    a
}
