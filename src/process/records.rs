//! Records in and out of a batch, independent of rdkafka types so the batch
//! logic is testable without a broker.

use super::stage::{Part, Stage};

/// A polled record, copied out of librdkafka's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InRecord {
    /// The stage whose input topic it came from.
    pub stage: Stage,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

impl InRecord {
    pub fn part(&self) -> Part {
        Part::new(self.stage, self.partition)
    }
}

/// Where an output record goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dest {
    /// `topics.jobs`.
    Jobs,
    /// A stage's input topic (the device stage feeds the user stage's).
    Input(Stage),
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
