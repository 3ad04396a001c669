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
}

/// Why a record went to the DLQ, and where it came from: the DLQ headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlqInfo {
    pub error: String,
    pub source_topic: String,
    pub source_partition: i32,
    pub source_offset: i64,
}

/// A record to produce in the batch's transaction, with its partition
/// already chosen (murmur2 of the key; changelogs: the source partition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRecord {
    pub dest: Dest,
    pub partition: i32,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub dlq: Option<DlqInfo>,
}
