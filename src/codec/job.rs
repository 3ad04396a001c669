//! Postback jobs on `postback.jobs`, the retry tiers and the job DLQ.

use super::{DecodeError, Framing, InputFormat, avro, framing, looks_like_json};
use crate::domain::Job;

/// `topics.jobs_format`: how the processor writes jobs; reading accepts
/// every format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobFormat {
    /// Readable with any console consumer.
    #[default]
    Json,
    /// Avro of `schemas/postback_job.avsc`: in the Confluent framing with
    /// the id the schema registry gave it, or single-object encoded when no
    /// registry is configured.
    Avro,
}

/// How one job is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEncoding {
    Json,
    /// Avro single-object encoding (the schema's fingerprint in front).
    Avro,
    /// Avro in the Confluent framing, with the job schema's registry id.
    Confluent(u32),
}

pub fn encode_job(job: &Job, encoding: JobEncoding) -> Vec<u8> {
    let avro = || avro::encode(job, &avro::JOB_SCHEMA).expect("jobs always fit their schema");
    match encoding {
        JobEncoding::Json => serde_json::to_vec(job).expect("jobs always serialize"),
        JobEncoding::Avro => avro::single_object(&avro::JOB_SCHEMA, &avro()),
        JobEncoding::Confluent(id) => avro::confluent(id, &avro()),
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
