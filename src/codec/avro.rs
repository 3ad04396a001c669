//! Avro schemas (compiled in from `schemas/`) and the two framings.

use super::DecodeError;
use apache_avro::Schema;
use apache_avro::rabin::Rabin;
use apache_avro::types::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::LazyLock;

pub static EVENT_SCHEMA: LazyLock<Schema> =
    LazyLock::new(|| Schema::parse_str(include_str!("../../schemas/event.avsc")).expect("schemas/event.avsc is valid"));
/// The event schema's second version: records written with it are read too.
pub static EVENT_SCHEMA_V2: LazyLock<Schema> = LazyLock::new(|| {
    Schema::parse_str(include_str!("../../schemas/event.v2.avsc")).expect("schemas/event.v2.avsc is valid")
});
/// The event schema's first version: records written with it are read too.
pub static EVENT_SCHEMA_V1: LazyLock<Schema> = LazyLock::new(|| {
    Schema::parse_str(include_str!("../../schemas/event.v1.avsc")).expect("schemas/event.v1.avsc is valid")
});
/// The job schema as written (docs and defaults kept), for the registry.
pub const JOB_SCHEMA_TEXT: &str = include_str!("../../schemas/postback_job.avsc");
pub static JOB_SCHEMA: LazyLock<Schema> =
    LazyLock::new(|| Schema::parse_str(JOB_SCHEMA_TEXT).expect("schemas/postback_job.avsc is valid"));

/// The 8-byte Rabin fingerprint that single-object encoding carries.
pub fn fingerprint(schema: &Schema) -> [u8; 8] {
    let fp = schema.fingerprint::<Rabin>();
    fp.bytes.as_slice().try_into().expect("rabin fingerprints have 8 bytes")
}

/// Strips the framing and decodes the datum with `schema`. A Confluent
/// schema id is not looked up here (see [`decode_resolved`]): the writer
/// must use our schema (or one with the same binary layout).
pub fn decode<T: DeserializeOwned>(bytes: &[u8], framing: super::Framing, schema: &Schema) -> Result<T, DecodeError> {
    let datum = match framing {
        super::Framing::Confluent => confluent_datum(bytes)?.1,
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
    let value = read_datum(datum, schema, None)?;
    apache_avro::from_value(&value).map_err(|e| DecodeError::Avro(short(&e)))
}

/// The schema id and the datum of a Confluent-framed record.
pub fn confluent_datum(bytes: &[u8]) -> Result<(u32, &[u8]), DecodeError> {
    match bytes {
        [0, a, b, c, d, datum @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), datum)),
        _ => Err(DecodeError::Avro("Confluent header shorter than 5 bytes".into())),
    }
}

/// A datum written with `writer`, resolved against `reader` (Avro schema
/// resolution: defaults for fields the writer lacks, promotions, fields the
/// reader lacks skipped) and deserialized.
pub fn decode_resolved<T: DeserializeOwned>(datum: &[u8], writer: &Schema, reader: &Schema) -> Result<T, DecodeError> {
    let value = read_datum(datum, writer, Some(reader))?;
    apache_avro::from_value(&value).map_err(|e| DecodeError::Avro(short(&e)))
}

/// A datum written with `writer`, as a generic tree (for `[input.mapping]`).
pub fn decode_tree(datum: &[u8], writer: &Schema) -> Result<serde_json::Value, DecodeError> {
    read_datum(datum, writer, None).map(tree)
}

/// Reads one datum, to its last byte and not beyond: apache-avro reads the
/// end of its input as null for a union or a string, so a record cut short
/// would otherwise decode with empty fields.
fn read_datum(datum: &[u8], writer: &Schema, reader: Option<&Schema>) -> Result<Value, DecodeError> {
    limit_allocations();
    let reader = apache_avro::reader::datum::GenericDatumReader::builder(writer)
        .maybe_reader_schema(reader)
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
    Ok(value)
}

/// An Avro value as JSON: unions unwrapped, records and maps as objects,
/// bytes and fixed as (lossy) text, logical types as their plain value.
fn tree(v: Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null => J::Null,
        Value::Boolean(b) => J::Bool(b),
        Value::Int(i) | Value::Date(i) | Value::TimeMillis(i) => J::from(i),
        Value::Long(i)
        | Value::TimeMicros(i)
        | Value::TimestampMillis(i)
        | Value::TimestampMicros(i)
        | Value::TimestampNanos(i)
        | Value::LocalTimestampMillis(i)
        | Value::LocalTimestampMicros(i)
        | Value::LocalTimestampNanos(i) => J::from(i),
        Value::Float(f) => serde_json::Number::from_f64(f64::from(f)).map_or(J::Null, J::Number),
        Value::Double(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
        Value::Bytes(b) | Value::Fixed(_, b) => J::String(String::from_utf8_lossy(&b).into_owned()),
        Value::String(s) | Value::Enum(_, s) => J::String(s),
        Value::Union(_, inner) => tree(*inner),
        Value::Array(items) => J::Array(items.into_iter().map(tree).collect()),
        Value::Map(m) => J::Object(m.into_iter().map(|(k, v)| (k, tree(v))).collect()),
        Value::Record(fields) => J::Object(fields.into_iter().map(|(k, v)| (k, tree(v))).collect()),
        Value::BigDecimal(d) => J::String(d.to_string()),
        Value::Uuid(u) => J::String(u.to_string()),
        Value::Decimal(_) | Value::Duration(_) => J::Null,
    }
}

/// Why `reader` cannot read what `writer` wrote, if it cannot.
pub fn incompatibility(writer: &Schema, reader: &Schema) -> Option<String> {
    apache_avro::schema_compatibility::SchemaCompatibility::can_read(writer, reader).err().map(|e| e.to_string())
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
