//! Wire formats: input events and postback jobs as JSON or Avro (plain
//! datum, single-object encoding, or the Confluent framing of magic byte 0 +
//! 4-byte schema id). Pure functions, table-tested; malformed input is a
//! typed error whose text becomes the DLQ `error` header, never a panic.
//!
//! How a record is read is decided so that it cannot misread: the
//! Confluent magic byte (0x00) and the single-object marker (C3 01) are
//! recognised first; anything else is read as the configured
//! `input.format` — `json`, `avro`, or `auto`, which tries both strictly
//! (a JSON object parsed to its end, an Avro datum consumed to its last
//! byte, never past it) and reports the likelier one's error when neither
//! fits. A bare Avro event can start with any byte, whitespace included
//! (an `event_id` of 5 bytes starts with 0x0A), so no first byte alone can
//! tell it from JSON.

mod avro;
pub mod event;
pub mod job;
pub mod mapping;
mod wire;

pub use avro::{EVENT_SCHEMA, JOB_SCHEMA, JOB_SCHEMA_TEXT, confluent, incompatibility};
pub use event::{DecodeOptions, WriterSchema, WriterSchemas, decode_event, decode_event_with, encode_event_json};
pub use job::{JobEncoding, JobFormat, decode_job, encode_job};
pub use mapping::{Mapping, MappingConfig};

use crate::domain::reject::DlqReason;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_schemas;

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty record")]
    Empty,
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("invalid Avro: {0}")]
    Avro(String),
    #[error("missing required field '{0}'")]
    Missing(&'static str),
    #[error("invalid field '{field}': {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("unknown kind '{0}'")]
    UnknownKind(String),
    #[error("field '{field}' is {len} bytes, over input.max_field_bytes ({max})")]
    TooLong { field: String, len: usize, max: usize },
    /// The record's writer schema is unknown or cannot be read as ours.
    #[error("{0}")]
    Schema(String),
}

impl DecodeError {
    /// Short, bounded label for metrics.
    pub fn reason(&self) -> DlqReason {
        match self {
            DecodeError::Empty | DecodeError::Json(_) | DecodeError::Avro(_) => DlqReason::Undecodable,
            DecodeError::Missing(_) => DlqReason::MissingField,
            DecodeError::Invalid { .. } => DlqReason::InvalidField,
            DecodeError::UnknownKind(_) => DlqReason::UnknownKind,
            DecodeError::TooLong { .. } => DlqReason::FieldTooLong,
            DecodeError::Schema(_) => DlqReason::Schema,
        }
    }
}

/// How records without a magic byte are read (`input.format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    /// JSON or a bare Avro datum, whichever reads the whole record.
    #[default]
    Auto,
    Json,
    /// A bare Avro datum of `schemas/event.avsc`.
    Avro,
}

/// How a record's bytes are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Json,
    /// Magic byte 0 and a 4-byte schema registry id, then the datum.
    Confluent,
    /// Avro single-object encoding: C3 01, 8-byte schema fingerprint, datum.
    SingleObject,
    /// A bare Avro datum.
    RawAvro,
    /// No magic byte and `input.format = "auto"`: JSON or a bare datum.
    Unframed,
}

pub fn framing(bytes: &[u8], format: InputFormat) -> Result<Framing, DecodeError> {
    Ok(match (bytes, format) {
        ([], _) => return Err(DecodeError::Empty),
        ([0, ..], _) => Framing::Confluent,
        ([0xC3, 0x01, ..], _) => Framing::SingleObject,
        (_, InputFormat::Json) => Framing::Json,
        (_, InputFormat::Avro) => Framing::RawAvro,
        (_, InputFormat::Auto) => Framing::Unframed,
    })
}

/// Whether unframed bytes look like JSON text rather than binary: the first
/// byte that is not whitespace opens a JSON value.
pub fn looks_like_json(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| matches!(b, b'{' | b'[' | b'"'))
}
