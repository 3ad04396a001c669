//! Postback jobs on `postback.jobs`, the retry tiers and the job DLQ.

use super::{DecodeError, Framing, InputFormat, avro, framing, looks_like_json};
use crate::domain::Job;

/// How jobs are written; reading accepts every format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobFormat {
    /// Readable with any console consumer.
    #[default]
    Json,
    /// Bare Avro datum of `schemas/postback_job.avsc`.
    Avro,
}

pub fn encode_job(job: &Job, format: JobFormat) -> Vec<u8> {
    match format {
        JobFormat::Json => serde_json::to_vec(job).expect("jobs always serialize"),
        JobFormat::Avro => avro::encode(job, &avro::JOB_SCHEMA).expect("jobs always fit their schema"),
    }
}

pub fn decode_job(bytes: &[u8]) -> Result<Job, DecodeError> {
    let json = || serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(e.to_string()));
    match framing(bytes, InputFormat::Auto)? {
        Framing::Json => json(),
        Framing::Unframed if looks_like_json(bytes) => json(),
        Framing::Unframed => avro::decode(bytes, Framing::RawAvro, &avro::JOB_SCHEMA),
        f => avro::decode(bytes, f, &avro::JOB_SCHEMA),
    }
}
