//! Wire formats: input events and postback jobs as JSON or Avro (plain
//! datum, single-object encoding, or the Confluent framing of magic byte 0 +
//! 4-byte schema id). Pure functions, table-tested; malformed input is a
//! typed error whose text becomes the DLQ `error` header, never a panic.
//!
//! The format of a record is told by its first byte, which is unambiguous
//! because both schemas start with a non-empty string: a raw Avro datum then
//! starts with an even varint ≥ 2, never `{` (0x7B), 0x00 or 0xC3.

mod avro;
pub mod event;
pub mod job;

pub use event::{decode_event, encode_event_json};
pub use job::{JobFormat, decode_job, encode_job};

#[cfg(test)]
mod tests;

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
}

impl DecodeError {
    /// Short, bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            DecodeError::Empty | DecodeError::Json(_) | DecodeError::Avro(_) => "undecodable",
            DecodeError::Missing(_) => "missing_field",
            DecodeError::Invalid { .. } => "invalid_field",
            DecodeError::UnknownKind(_) => "unknown_kind",
        }
    }
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
}

pub fn framing(bytes: &[u8]) -> Result<Framing, DecodeError> {
    match bytes {
        [] => Err(DecodeError::Empty),
        [b'{', ..] => Ok(Framing::Json),
        [b, ..] if b.is_ascii_whitespace() => Ok(Framing::Json),
        [0, ..] => Ok(Framing::Confluent),
        [0xC3, 0x01, ..] => Ok(Framing::SingleObject),
        _ => Ok(Framing::RawAvro),
    }
}
