//! Why a record goes to a dead-letter topic: one list, with the label the
//! metric `postback_dlq_records_total{reason}` carries and what it means.
//! The record's `error` header says the particular case in words
//! ("field 'device_id' is missing"); the label is the bounded kind, and
//! docs/operations/metrics.md lists every one from [`DlqReason::ALL`].

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DlqReason {
    Undecodable,
    Schema,
    MissingField,
    InvalidField,
    FieldTooLong,
    UnknownKind,
    RecordTooLarge,
    KeyMismatch,
    CorruptState,
    UnknownApp,
    TimestampOutOfRange,
    KindNotForPlatform,
    JobTooLarge,
}

impl DlqReason {
    pub const ALL: [DlqReason; 13] = [
        DlqReason::Undecodable,
        DlqReason::Schema,
        DlqReason::MissingField,
        DlqReason::InvalidField,
        DlqReason::FieldTooLong,
        DlqReason::UnknownKind,
        DlqReason::RecordTooLarge,
        DlqReason::KeyMismatch,
        DlqReason::CorruptState,
        DlqReason::UnknownApp,
        DlqReason::TimestampOutOfRange,
        DlqReason::KindNotForPlatform,
        DlqReason::JobTooLarge,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            DlqReason::Undecodable => "undecodable",
            DlqReason::Schema => "schema",
            DlqReason::MissingField => "missing_field",
            DlqReason::InvalidField => "invalid_field",
            DlqReason::FieldTooLong => "field_too_long",
            DlqReason::UnknownKind => "unknown_kind",
            DlqReason::RecordTooLarge => "record_too_large",
            DlqReason::KeyMismatch => "key_mismatch",
            DlqReason::CorruptState => "corrupt_state",
            DlqReason::UnknownApp => "unknown_app",
            DlqReason::TimestampOutOfRange => "timestamp_out_of_range",
            DlqReason::KindNotForPlatform => "kind_not_for_platform",
            DlqReason::JobTooLarge => "job_too_large",
        }
    }

    /// What it means, for the docs.
    pub fn about(self) -> &'static str {
        match self {
            DlqReason::Undecodable => {
                "neither JSON nor Avro of a known schema, an empty record, an unreadable user-activity record; on the job DLQ: a job the sender cannot decode"
            }
            DlqReason::Schema => "its writer schema is unknown to the registry, or cannot be read as ours",
            DlqReason::MissingField => "a required field is absent",
            DlqReason::InvalidField => "a field has the wrong type or an impossible value",
            DlqReason::FieldTooLong => "a string field is over `input.max_field_bytes`",
            DlqReason::UnknownKind => "`kind` is not an event kind postback knows",
            DlqReason::RecordTooLarge => "the record is over `input.max_record_bytes` (to the DLQ unread)",
            DlqReason::KeyMismatch => "the record's key is not the event's `device_id`",
            DlqReason::CorruptState => "the stored state of the record's key does not decode",
            DlqReason::UnknownApp => "`app_id` is not an app of the config",
            DlqReason::TimestampOutOfRange => "`timestamp_ms` is before 2010 or too far in the future",
            DlqReason::KindNotForPlatform => {
                "the event kind cannot happen on the app's platform (an install on a site)"
            }
            DlqReason::JobTooLarge => "a rendered job is over the jobs topic's record limit (job DLQ, truncated copy)",
        }
    }
}

impl fmt::Display for DlqReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A record refused: the kind, and the case in words (the `error` header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub reason: DlqReason,
    pub detail: String,
}

impl Rejected {
    pub fn new(reason: DlqReason, detail: impl Into<String>) -> Rejected {
        Rejected { reason, detail: detail.into() }
    }
}
