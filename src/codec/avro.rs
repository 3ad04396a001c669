//! Avro schemas (compiled in from `schemas/`) and the two framings.

use super::DecodeError;
use apache_avro::Schema;
use apache_avro::rabin::Rabin;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::LazyLock;

pub static EVENT_SCHEMA: LazyLock<Schema> =
    LazyLock::new(|| Schema::parse_str(include_str!("../../schemas/event.avsc")).expect("schemas/event.avsc is valid"));
/// The event schema's first version: records written with it are read too.
pub static EVENT_SCHEMA_V1: LazyLock<Schema> = LazyLock::new(|| {
    Schema::parse_str(include_str!("../../schemas/event.v1.avsc")).expect("schemas/event.v1.avsc is valid")
});
pub static JOB_SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::parse_str(include_str!("../../schemas/postback_job.avsc")).expect("schemas/postback_job.avsc is valid")
});

/// The 8-byte Rabin fingerprint that single-object encoding carries.
pub fn fingerprint(schema: &Schema) -> [u8; 8] {
    let fp = schema.fingerprint::<Rabin>();
    fp.bytes.as_slice().try_into().expect("rabin fingerprints have 8 bytes")
}

/// Strips the framing and decodes the datum with `schema`. The Confluent
/// schema id is not looked up: the writer must use our schema (or one with
/// the same binary layout). The datum must be read to its last byte and not
/// beyond: apache-avro reads the end of its input as null for a union or a
/// string, so a record cut short would otherwise decode with empty fields.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], framing: super::Framing, schema: &Schema) -> Result<T, DecodeError> {
    limit_allocations();
    let datum = match framing {
        super::Framing::Confluent => {
            bytes.get(5..).ok_or_else(|| DecodeError::Avro("Confluent header shorter than 5 bytes".into()))?
        }
        super::Framing::SingleObject => {
            let fp = bytes
                .get(2..10)
                .ok_or_else(|| DecodeError::Avro("single-object header shorter than 10 bytes".into()))?;
            if fp != fingerprint(schema) {
                return Err(DecodeError::Avro(format!("unknown schema fingerprint {}", hex::encode(fp))));
            }
            &bytes[10..]
        }
        _ => bytes,
    };
    let reader = apache_avro::reader::datum::GenericDatumReader::builder(schema)
        .build()
        .map_err(|e| DecodeError::Avro(short(&e)))?;
    let mut cursor = Strict(datum);
    let value = reader.read_value(&mut cursor).map_err(|e| match cursor.0.is_empty() {
        true if e.to_string().contains(TRUNCATED) => {
            DecodeError::Avro(format!("the record ends inside a value ({TRUNCATED})"))
        }
        _ => DecodeError::Avro(short(&e)),
    })?;
    if !cursor.0.is_empty() {
        return Err(DecodeError::Avro(format!("{} trailing bytes after the record", cursor.0.len())));
    }
    apache_avro::from_value(&value).map_err(|e| DecodeError::Avro(short(&e)))
}

const TRUNCATED: &str = "truncated";

/// A reader over a datum that fails, instead of reporting the end of input,
/// when asked for bytes it does not have: apache-avro turns the end of input
/// into null values, and a truncated record must be an error.
struct Strict<'a>(&'a [u8]);

impl std::io::Read for Strict<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0.is_empty() && !buf.is_empty() {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, TRUNCATED));
        }
        let n = buf.len().min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// A length prefix in hostile bytes must not allocate more than any Kafka
/// record can hold (apache-avro's default allows 512 MiB).
fn limit_allocations() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        apache_avro::util::max_allocation_bytes(16 << 20);
    });
}

/// Encodes a bare datum.
pub fn encode<T: Serialize>(value: &T, schema: &Schema) -> Result<Vec<u8>, String> {
    let value = apache_avro::to_value(value).and_then(|v| v.resolve(schema)).map_err(|e| short(&e))?;
    let writer = apache_avro::writer::datum::GenericDatumWriter::builder(schema).build().map_err(|e| short(&e))?;
    let mut out = Vec::with_capacity(256);
    writer.write_value_ref(&mut out, &value).map_err(|e| short(&e))?;
    Ok(out)
}

/// apache-avro errors can embed a whole schema dump; a DLQ header wants
/// the first line of what went wrong.
fn short(e: &apache_avro::Error) -> String {
    let text = e.to_string();
    let cut = ["RecordSchema {", "Record(RecordSchema", " using schema"]
        .iter()
        .filter_map(|m| text.find(m))
        .min()
        .unwrap_or(text.len());
    let mut s: String =
        text[..cut].lines().next().unwrap_or("").trim_end_matches([' ', ':', ',']).chars().take(200).collect();
    if s.is_empty() {
        s = "malformed datum".into();
    }
    s
}

/// Confluent framing around a datum.
pub fn confluent(schema_id: u32, datum: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + datum.len());
    out.push(0);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out.extend_from_slice(datum);
    out
}

/// Single-object framing around a datum.
pub fn single_object(schema: &Schema, datum: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(10 + datum.len());
    out.extend_from_slice(&[0xC3, 0x01]);
    out.extend_from_slice(&fingerprint(schema));
    out.extend_from_slice(datum);
    out
}
