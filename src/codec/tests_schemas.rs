//! `[input.mapping]` and registry writer schemas: foreign shapes in, our
//! events out, and every way it can go wrong named.

use super::avro;
use super::event::*;
use super::mapping::*;
use super::*;
use crate::domain::{Attribution, Event, Kind, Revenue};
use apache_avro::Schema;
use std::collections::HashMap;
use std::sync::Arc;

/// The platform's JSON shape used below.
const MAPPING: &str = r#"
event_id = "/meta/id"
app_id = "meta.app"
device_id = "/ids/device"
user_id = "/user"
timestamp_ms = { field = "/meta/ts", unit = "s" }
kind = { field = "/type", values = { purchase = "payment", open = "launch" } }
[attribution]
partner_id = "/attr/network"
campaign_id = "/attr/campaign"
[device]
idfa = "/ids/idfa"
country = "/geo/country"
[revenue]
amount = "/purchase/price"
currency = "/purchase/currency"
"#;

fn mapping(text: &str) -> Arc<Mapping> {
    let raw: MappingConfig = toml::from_str(text).expect("mapping parses");
    Arc::new(Mapping::compile(&raw).expect("mapping compiles"))
}

fn mapped(text: &str) -> DecodeOptions {
    DecodeOptions { mapping: Some(mapping(text)), ..DecodeOptions::default() }
}

fn payment() -> Event {
    let mut e = Event::new("p-1", "shop", "d-9", Kind::Payment, 1_700_000_000_500);
    e.user_id = "u-1".into();
    e.attribution = Some(Attribution { partner_id: "acme".into(), campaign_id: "42".into(), ..Attribution::default() });
    e.device.idfa = "IDFA-1".into();
    e.device.country = "DE".into();
    e.revenue = Some(Revenue { amount: "4.99".into(), currency: "EUR".into(), ..Revenue::default() });
    e
}

#[test]
fn a_json_event_of_another_shape_is_mapped_field_by_field() {
    let json = br#"{"meta":{"id":"p-1","app":"shop","ts":1700000000.5},"ids":{"device":"d-9","idfa":"IDFA-1"},
        "user":"u-1","type":"purchase","attr":{"network":"acme","campaign":42},"geo":{"country":"DE"},
        "purchase":{"price":"4.99","currency":"EUR"},"extra":[1,2]}"#;
    assert_eq!(decode_event_with(json, &mapped(MAPPING)), Ok(payment()));
    // a kind not listed is taken as it is; no attribution network: organic
    let open = br#"{"meta":{"id":"o-1","app":"shop","ts":"1700000000"},"ids":{"device":"d-9"},"type":"launch"}"#;
    assert_eq!(
        decode_event_with(open, &mapped(MAPPING)),
        Ok(Event::new("o-1", "shop", "d-9", Kind::Launch, 1_700_000_000_000))
    );
}

#[test]
fn mapped_records_fail_with_the_field_and_the_reason() {
    let opts = mapped(MAPPING);
    let err = |json: &[u8]| decode_event_with(json, &opts).unwrap_err().to_string();
    let base = r#""meta":{"id":"x","app":"shop","ts":1},"ids":{"device":"d"}"#;
    assert_eq!(err(format!(r#"{{{base},"type":"page_view"}}"#).as_bytes()), "unknown kind 'page_view'");
    assert_eq!(
        err(br#"{"meta":{"id":"x","app":"shop"},"ids":{"device":"d"},"type":"open"}"#),
        "missing required field 'timestamp_ms'"
    );
    assert_eq!(
        err(br#"{"meta":{"id":"x","app":"shop","ts":"soon"},"ids":{"device":"d"},"type":"open"}"#),
        "invalid field 'timestamp_ms': \"soon\" is not a timestamp"
    );
    assert_eq!(
        err(format!(r#"{{{base},"type":"open","user":{{"id":1}}}}"#).as_bytes()),
        "invalid field 'user_id': is an object, not a value"
    );
    assert_eq!(err(format!(r#"{{{base},"type":"purchase"}}"#).as_bytes()), "missing required field 'revenue'");
    assert!(err(b"{\"meta\":").starts_with("invalid JSON: "));
    // a bare Avro datum has no writer schema to map from
    let bare = encode_event_avro(&payment());
    let avro_opts = DecodeOptions { format: InputFormat::Avro, ..opts.clone() };
    assert_eq!(
        decode_event_with(&bare, &avro_opts).unwrap_err().to_string(),
        "invalid Avro: a bare Avro record cannot be mapped: its writer schema is unknown (use the Confluent framing and [schema_registry])"
    );
}

#[test]
fn fields_the_mapping_does_not_name_are_read_where_ours_are() {
    let opts = mapped("event_id = \"/id\"");
    let mut ours: serde_json::Value = serde_json::from_slice(&encode_event_json(&payment())).unwrap();
    let id = ours.as_object_mut().unwrap().remove("event_id").unwrap();
    ours["id"] = id;
    assert_eq!(decode_event_with(ours.to_string().as_bytes(), &opts), Ok(payment()));
}

#[test]
fn a_mapping_is_checked_at_load() {
    let errors = |text: &str| {
        let raw: MappingConfig = toml::from_str(text).expect("parses");
        Mapping::compile(&raw).unwrap_err()
    };
    assert_eq!(
        errors("kind = { field = \"/t\", values = { buy = \"purchase\" } }"),
        vec![(
            "kind.values.buy".to_owned(),
            "'purchase' is not an event kind: one of install, launch, visit, impression, registration, login, payment, custom_payment, custom_event".to_owned()
        )]
    );
    assert_eq!(
        errors("event_id = \"/a//b\"\n[device]\nimei = \"/x\""),
        vec![
            ("event_id".to_owned(), "'/a//b' is not a path: write a JSON pointer such as \"/meta/id\" or a field path such as \"meta.id\"".to_owned()),
            ("device.imei".to_owned(), "not a field of ours; device has idfa, idfv, gaid, android_id, oaid, app_set_id, ip, user_agent, os, os_version, app_version, country, lang, model, waid".to_owned()),
        ]
    );
    assert!(toml::from_str::<MappingConfig>("timestamp_ms = { field = \"/t\", unit = \"h\" }").is_err());
    assert_eq!(parse_path("/a~1b/c~0d").unwrap(), vec!["a/b".to_owned(), "c~d".to_owned()]);
    assert_eq!(parse_path("meta.id").unwrap(), vec!["meta".to_owned(), "id".to_owned()]);
}

/// Writer schemas held in memory, as a registry would have answered.
struct Fetched(HashMap<u32, Result<Arc<WriterSchema>, String>>);

impl WriterSchemas for Fetched {
    fn writer(&self, id: u32) -> Option<Result<Arc<WriterSchema>, String>> {
        self.0.get(&id).cloned()
    }
}

fn writer(id: u32, text: &str) -> (u32, Result<Arc<WriterSchema>, String>) {
    let schema = Schema::parse_str(text).expect("test schema parses");
    let unreadable = incompatibility(&schema, &EVENT_SCHEMA);
    (id, Ok(Arc::new(WriterSchema { id, schema, unreadable })))
}

fn datum(text: &str, value: apache_avro::types::Value) -> Vec<u8> {
    let schema = Schema::parse_str(text).unwrap();
    let writer = apache_avro::writer::datum::GenericDatumWriter::builder(&schema).build().unwrap();
    let mut out = Vec::new();
    writer.write_value(&mut out, value).unwrap();
    out
}

/// A platform's own Avro event: other fields, one of ours (`event_id`) as
/// bytes, a nested record. Resolution needs the record's unqualified name
/// to be ours (`Event`); a mapping reads any name.
const FOREIGN: &str = r#"{"type":"record","name":"Event","namespace":"acme.platform","fields":[
  {"name":"event_id","type":"bytes"},
  {"name":"app_id","type":"string"},
  {"name":"device_id","type":"string"},
  {"name":"kind","type":"string"},
  {"name":"timestamp_ms","type":"int"},
  {"name":"session","type":"string"},
  {"name":"geo","type":{"type":"record","name":"Geo","fields":[{"name":"cc","type":["null","string"]}]}}]}"#;

fn foreign_value() -> apache_avro::types::Value {
    use apache_avro::types::Value as V;
    V::Record(vec![
        ("event_id".into(), V::Bytes(b"f-1".to_vec())),
        ("app_id".into(), V::String("shop".into())),
        ("device_id".into(), V::String("d-1".into())),
        ("kind".into(), V::String("launch".into())),
        ("timestamp_ms".into(), V::Int(1_000_000)),
        ("session".into(), V::String("s".into())),
        ("geo".into(), V::Record(vec![("cc".into(), V::Union(1, Box::new(V::String("FR".into()))))])),
    ])
}

#[test]
fn a_registered_writer_schema_is_resolved_against_ours() {
    // extra fields skipped, missing optional ones defaulted, bytes promoted to string, int to long
    let schemas = Fetched([writer(3, FOREIGN)].into());
    let opts = DecodeOptions { schemas: Some(Arc::new(schemas)), ..DecodeOptions::default() };
    let framed = confluent(3, &datum(FOREIGN, foreign_value()));
    assert_eq!(decode_event_with(&framed, &opts), Ok(Event::new("f-1", "shop", "d-1", Kind::Launch, 1_000_000)));
    // another record name cannot be resolved, but it can be mapped (the nested country too)
    let renamed = FOREIGN.replace("\"name\":\"Event\"", "\"name\":\"PlatformEvent\"");
    let schemas = Fetched([writer(4, &renamed)].into());
    let opts = DecodeOptions { schemas: Some(Arc::new(schemas)), ..DecodeOptions::default() };
    let framed = confluent(4, &datum(&renamed, foreign_value()));
    let err = decode_event_with(&framed, &opts).unwrap_err().to_string();
    assert!(err.contains("Writer's name PlatformEvent and reader's name Event"), "{err}");
    let opts = DecodeOptions { mapping: Some(mapping("[device]\ncountry = \"geo.cc\"")), ..opts };
    let mut e = Event::new("f-1", "shop", "d-1", Kind::Launch, 1_000_000);
    e.device.country = "FR".into();
    assert_eq!(decode_event_with(&framed, &opts), Ok(e));
}

#[test]
fn unknown_ids_and_unreadable_schemas_are_schema_errors() {
    let incompatible = r#"{"type":"record","name":"E","fields":[{"name":"event_id","type":"long"}]}"#;
    let schemas = Fetched([writer(5, incompatible), (6, Err("schema id 6 is not in the registry".into()))].into());
    let opts = DecodeOptions { schemas: Some(Arc::new(schemas)), ..DecodeOptions::default() };
    let err = |id: u32| decode_event_with(&confluent(id, &[2]), &opts).unwrap_err();
    let e5 = err(5);
    assert_eq!(e5.reason().label(), "schema");
    assert!(e5.to_string().starts_with("schema id 5 cannot be read as schemas/event.avsc: "), "{e5}");
    assert_eq!(err(6).to_string(), "schema id 6 is not in the registry");
    assert_eq!(err(7).to_string(), "schema id 7 was not fetched from the registry");
    // a record cut short is still an error, with the writer schema too
    let schemas = Fetched([writer(3, FOREIGN)].into());
    let opts = DecodeOptions { schemas: Some(Arc::new(schemas)), ..DecodeOptions::default() };
    let framed = confluent(3, &datum(FOREIGN, foreign_value()));
    for cut in 5..framed.len() {
        assert!(decode_event_with(&framed[..cut], &opts).is_err(), "cut at {cut}");
    }
}

#[test]
fn avro_jobs_carry_their_framing() {
    let job = super::tests::job();
    let confluent_job = encode_job(&job, JobEncoding::Confluent(12));
    assert_eq!(&confluent_job[..5], &[0, 0, 0, 0, 12]);
    assert_eq!(decode_job(&confluent_job).unwrap(), job);
    let single = encode_job(&job, JobEncoding::Avro);
    assert_eq!(&single[..2], &[0xC3, 0x01]);
    assert_eq!(&single[2..10], &avro::fingerprint(&JOB_SCHEMA));
    assert_eq!(decode_job(&single).unwrap(), job);
}
