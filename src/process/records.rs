//! Records in and out of a batch, independent of rdkafka types so the batch
//! logic is testable without a broker.

/// Which input a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// `topics.events`: device stage.
    Events,
    /// `topics.user_activity`: user stage.
    UserActivity,
}

/// A polled record, copied out of librdkafka's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InRecord {
    pub source: Source,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// Where an output record goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutTopic {
    Jobs,
    UserActivity,
    DeviceChangelog,
    UserChangelog,
    EventsDlq,
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
    pub topic: OutTopic,
    pub partition: i32,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub dlq: Option<DlqInfo>,
}
