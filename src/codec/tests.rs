use super::event::*;
use super::*;
use crate::domain::{Attribution, Custom, Event, Job, Kind, Method, Revenue, Routing};

fn full_event() -> Event {
    let mut e = Event::new("ev-1", "game-ios", "dev-1", Kind::Payment, 1_700_000_000_000);
    e.user_id = "user-1".into();
    let mut a = Attribution {
        partner_id: "acme".into(),
        campaign_id: "cmp-7".into(),
        click_id: "clk".into(),
        touch_ms: 1_699_000_000_000,
        ..Default::default()
    };
    a.subs[4] = "s5".into();
    a.click_params.insert("utm".into(), "x y".into());
    e.attribution = Some(a);
    e.device.idfa = "IDFA".into();
    e.device.model = "iPhone15,2".into();
    e.revenue =
        Some(Revenue { amount: "4.99".into(), currency: "USD".into(), transaction_id: "tx".into(), verified: true });
    e
}

#[test]
fn json_decodes_every_field() {
    let json = br#"{"event_id":"ev-1","app_id":"game-ios","device_id":"dev-1","user_id":"user-1","kind":"payment",
        "timestamp_ms":1700000000000,"attribution":{"partner_id":"acme","campaign_id":"cmp-7","click_id":"clk","sub5":"s5",
        "click_params":{"utm":"x y"},"touch_ms":1699000000000},"device":{"idfa":"IDFA","model":"iPhone15,2"},
        "revenue":{"amount":"4.99","currency":"USD","transaction_id":"tx","verified":true},"future_field":1}"#;
    assert_eq!(decode_event(json).unwrap(), full_event());
}

#[test]
fn every_framing_round_trips() {
    let mut custom = Event::new("ev-2", "game-ios", "dev-1", Kind::CustomEvent, 1_700_000_000_000);
    custom.custom = Some(Custom { name: "level_up".into(), params: [("level".to_owned(), "3".to_owned())].into() });
    for e in [full_event(), custom, Event::new("e", "a", "d", Kind::Launch, 1_700_000_000_000)] {
        assert_eq!(decode_event(&encode_event_json(&e)).unwrap(), e);
        assert_eq!(decode_event(&encode_event_avro(&e)).unwrap(), e);
        assert_eq!(decode_event(&encode_event_confluent(&e, 42)).unwrap(), e);
        assert_eq!(decode_event(&encode_event_single_object(&e)).unwrap(), e);
    }
}

fn err(bytes: &[u8]) -> String {
    decode_event(bytes).unwrap_err().to_string()
}

#[test]
fn malformed_records_are_typed_errors() {
    assert_eq!(err(b""), "empty record");
    assert!(err(b"{\"event_id\":").starts_with("invalid JSON: EOF while parsing"));
    assert!(err(b"\x02\xff\xff").starts_with("invalid Avro: "));
    assert_eq!(err(&[0, 0, 0]), "invalid Avro: Confluent header shorter than 5 bytes");
    assert_eq!(
        err(&[0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 2]),
        "invalid Avro: unknown schema fingerprint 0102030405060708"
    );
    // a cut between the versions' ends (five null unions trail: 3 + 2)
    let mut avro = encode_event_avro(&full_event());
    avro.truncate(avro.len() - 4);
    assert!(err(&avro).starts_with("invalid Avro: "), "{}", err(&avro));
    let mut trailing = encode_event_avro(&full_event());
    trailing.push(0);
    assert_eq!(err(&trailing), "invalid Avro: 1 trailing bytes after the record");
}

#[test]
fn missing_and_invalid_fields_are_named() {
    let base = r#""event_id":"e","app_id":"a","device_id":"d","timestamp_ms":1700000000000"#;
    let cases = [
        (
            r#"{"app_id":"a","device_id":"d","kind":"launch","timestamp_ms":1}"#.to_string(),
            "missing required field 'event_id'",
        ),
        (
            r#"{"event_id":"","app_id":"a","device_id":"d","kind":"launch","timestamp_ms":1}"#.to_string(),
            "missing required field 'event_id'",
        ),
        (format!("{{{base}}}"), "missing required field 'kind'"),
        (
            r#"{"event_id":"e","app_id":"a","device_id":"d","kind":"launch"}"#.to_string(),
            "missing required field 'timestamp_ms'",
        ),
        (format!(r#"{{{base},"kind":"uninstall"}}"#), "unknown kind 'uninstall'"),
        (format!(r#"{{{base},"kind":"payment"}}"#), "missing required field 'revenue'"),
        (
            format!(r#"{{{base},"kind":"payment","revenue":{{"amount":"abc","currency":"USD"}}}}"#),
            "invalid field 'revenue.amount': 'abc' is not a decimal such as \"4.99\"",
        ),
        (
            format!(r#"{{{base},"kind":"payment","revenue":{{"amount":"-1","currency":"USD"}}}}"#),
            "invalid field 'revenue.amount': '-1' is not a decimal such as \"4.99\"",
        ),
        (
            format!(r#"{{{base},"kind":"payment","revenue":{{"amount":"1.","currency":"USD"}}}}"#),
            "invalid field 'revenue.amount': '1.' is not a decimal such as \"4.99\"",
        ),
        (
            format!(r#"{{{base},"kind":"payment","revenue":{{"amount":"1.5","currency":"usd"}}}}"#),
            "invalid field 'revenue.currency': 'usd' is not an ISO 4217 code such as \"USD\"",
        ),
        (
            format!(r#"{{{base},"kind":"payment","revenue":{{"currency":"USD"}}}}"#),
            "missing required field 'revenue.amount'",
        ),
        (format!(r#"{{{base},"kind":"custom_event"}}"#), "missing required field 'custom'"),
        (
            format!(r#"{{{base},"kind":"launch","attribution":{{"campaign_id":"c"}}}}"#),
            "missing required field 'attribution.partner_id'",
        ),
    ];
    for (json, want) in cases {
        assert_eq!(err(json.as_bytes()), want, "{json}");
    }
    // money is never a float
    let float = format!(r#"{{{base},"kind":"payment","revenue":{{"amount":4.99,"currency":"USD"}}}}"#);
    assert!(
        err(float.as_bytes()).starts_with("invalid JSON: invalid type: floating point `4.99`, expected a string"),
        "{}",
        err(float.as_bytes())
    );
}

#[test]
fn labels_are_bounded() {
    assert_eq!(DecodeError::Missing("x").reason().label(), "missing_field");
    assert_eq!(DecodeError::UnknownKind("x".into()).reason().label(), "unknown_kind");
    assert_eq!(DecodeError::Json("x".into()).reason().label(), "undecodable");
}

pub(super) fn job() -> Job {
    Job {
        job_id: "0123456789abcdef0123456789abcdef".into(),
        postback_id: "acme-install".into(),
        postback_name: "Acme | install".into(),
        partner_id: "acme".into(),
        app_id: "game-ios".into(),
        event: "install".into(),
        attribution: Routing::Ca,
        device_id: "dev-1".into(),
        user_id: String::new(),
        event_id: "ev-1".into(),
        event_ts_ms: 1,
        created_ms: 2,
        method: Method::Post,
        url: "https://x.example/?a=1".into(),
        headers: [("Content-Type".to_owned(), "application/json".to_owned())].into(),
        body: Some("{\"a\":1}".into()),
        attempt: 3,
        not_before_ms: 4,
        expires_ms: 5,
    }
}

#[test]
fn jobs_round_trip_in_both_formats() {
    let j = job();
    assert_eq!(decode_job(&encode_job(&j, JobEncoding::Json)).unwrap(), j);
    assert_eq!(decode_job(&encode_job(&j, JobEncoding::Avro)).unwrap(), j);
    let mut no_body = job();
    no_body.body = None;
    no_body.headers.clear();
    assert_eq!(decode_job(&encode_job(&no_body, JobEncoding::Avro)).unwrap(), no_body);
    let json = String::from_utf8(encode_job(&j, JobEncoding::Json)).unwrap();
    assert!(json.contains("\"attribution\":\"ca\"") && json.contains("\"method\":\"POST\""), "{json}");
}

#[test]
fn bad_jobs_are_errors() {
    assert_eq!(decode_job(b"").unwrap_err(), DecodeError::Empty);
    assert!(decode_job(b"{\"job_id\":1}").unwrap_err().to_string().starts_with("invalid JSON"));
}

#[test]
fn bare_avro_is_never_taken_for_json_whatever_its_first_byte() {
    // the datum starts with the zigzag length of event_id: 5 → 0x0A, 6 → 0x0C, 16 → 0x20, all JSON whitespace
    for id in ["e-123", "e-1234", "e-12345678901234", "{-json-like-id}", "\"quoted\""] {
        let e = Event::new(id, "game-ios", "dev-1", Kind::Launch, 1_700_000_000_000);
        let avro = encode_event_avro(&e);
        assert_eq!(decode_event(&avro).unwrap(), e, "{id}: first byte {:#04x}", avro[0]);
        let avro_only = DecodeOptions { format: InputFormat::Avro, ..DecodeOptions::default() };
        assert_eq!(decode_event_with(&avro, &avro_only).unwrap(), e);
    }
    let e = Event::new("e-123", "game-ios", "dev-1", Kind::Launch, 1_700_000_000_000);
    let json_only = DecodeOptions { format: InputFormat::Json, ..DecodeOptions::default() };
    let err = decode_event_with(&encode_event_avro(&e), &json_only).unwrap_err().to_string();
    assert!(err.starts_with("invalid JSON: "), "{err}");
}

#[test]
fn non_events_are_labelled_by_what_they_look_like() {
    assert!(err(b"[1,2,3]").starts_with("invalid JSON: "), "{}", err(b"[1,2,3]"));
    assert!(
        err(b"  {\"event_id\": 1}").starts_with("invalid JSON: invalid type: integer"),
        "{}",
        err(b"  {\"event_id\": 1}")
    );
    assert!(err(b"hello world").starts_with("invalid Avro: "), "{}", err(b"hello world"));
}

#[test]
fn waid_and_medium_travel_in_json_and_in_the_second_avro_version() {
    let mut e = full_event();
    e.device.waid = "W-1".into();
    e.attribution.as_mut().unwrap().medium = "cpc".into();
    let json = encode_event_json(&e);
    let text = String::from_utf8_lossy(&json);
    assert!(text.contains("\"waid\":\"W-1\"") && text.contains("\"medium\":\"cpc\""), "{text}");
    assert_eq!(decode_event(&json), Ok(e.clone()));
    for framed in [encode_event_avro(&e), encode_event_confluent(&e, 7), encode_event_single_object(&e)] {
        assert_eq!(decode_event(&framed), Ok(e.clone()));
    }
    // records of earlier versions (producers on older schemas) still read:
    // the third adds three null unions at the end, the second two more
    let v3 = encode_event_avro(&full_event());
    assert_eq!(&v3[v3.len() - 5..], &[0, 0, 0, 0, 0], "five null unions at the end");
    let (v2, v1) = (&v3[..v3.len() - 3], &v3[..v3.len() - 5]);
    assert_eq!(decode_event(v2), Ok(full_event()));
    assert_eq!(decode_event(v1), Ok(full_event()));
    let v2_framed = crate::codec::avro::single_object(&crate::codec::avro::EVENT_SCHEMA_V2, v2);
    assert_eq!(decode_event(&v2_framed), Ok(full_event()));
    let v1_framed = crate::codec::avro::single_object(&crate::codec::avro::EVENT_SCHEMA_V1, v1);
    assert_eq!(decode_event(&v1_framed), Ok(full_event()));
}

#[test]
fn privacy_travels_in_json_and_in_the_third_avro_version() {
    use crate::domain::privacy::{AttStatus, Privacy};
    let mut e = full_event();
    e.privacy = Privacy {
        limit_ad_tracking: Some(true),
        att_status: Some(AttStatus::Denied),
        consent: [("ad_sharing".to_owned(), false), ("measurement".to_owned(), true)].into(),
    };
    let json = encode_event_json(&e);
    let text = String::from_utf8_lossy(&json);
    assert!(
        text.contains("\"limit_ad_tracking\":true")
            && text.contains("\"att_status\":\"denied\"")
            && text.contains("\"consent\":{\"ad_sharing\":false,\"measurement\":true}"),
        "{text}"
    );
    for framed in [json, encode_event_avro(&e), encode_event_confluent(&e, 7), encode_event_single_object(&e)] {
        assert_eq!(decode_event(&framed), Ok(e.clone()));
    }
    let bad = br#"{"event_id":"e","app_id":"a","device_id":"d","kind":"launch","timestamp_ms":1,"device":{"att_status":"maybe"}}"#;
    assert_eq!(
        err(bad),
        "invalid field 'device.att_status': 'maybe' is not one of authorized, denied, restricted, not_determined"
    );
}

#[test]
fn every_truncation_of_an_avro_event_is_an_error() {
    for (framed, v1_end) in [
        (encode_event_avro(&full_event()), None),
        (encode_event_confluent(&full_event(), 7), None),
        (encode_event_single_object(&full_event()), Some(0)),
    ] {
        // the earlier schema versions end three and five bytes (null unions)
        // early: those cuts are whole earlier records, the same event
        let ends = match v1_end {
            Some(_) => vec![],
            None => vec![framed.len() - 3, framed.len() - 5],
        };
        for cut in 1..framed.len() {
            let result = decode_event(&framed[..cut]);
            if ends.contains(&cut) {
                assert_eq!(result, Ok(full_event()));
            } else {
                assert!(result.is_err(), "cut at {cut} of {} decoded: {result:?}", framed.len());
            }
        }
    }
    // cut inside click_id: apache-avro alone would read the rest as nulls
    let avro = encode_event_avro(&full_event());
    let at = avro.windows(3).position(|w| w == b"clk").expect("click_id in the datum") + 1;
    assert_eq!(err(&avro[..at]), "invalid Avro: the record ends inside a value (truncated)");
}

#[test]
fn fields_longer_than_the_cap_are_refused_by_name() {
    let opts = DecodeOptions { max_field_bytes: 16, ..DecodeOptions::default() };
    let mut e = full_event();
    e.attribution.as_mut().unwrap().click_id = "&".repeat(17);
    assert_eq!(
        decode_event_with(&encode_event_json(&e), &opts).unwrap_err().to_string(),
        "field 'attribution.click_id' is 17 bytes, over input.max_field_bytes (16)"
    );
    let mut e = full_event();
    e.device.user_agent = "x".repeat(100);
    let err = decode_event_with(&encode_event_avro(&e), &opts).unwrap_err();
    assert_eq!(err.to_string(), "field 'device.user_agent' is 100 bytes, over input.max_field_bytes (16)");
    assert_eq!(err.reason().label(), "field_too_long");
    let mut e = full_event();
    e.attribution.as_mut().unwrap().click_params.insert("k".repeat(20), "v".into());
    assert_eq!(
        decode_event_with(&encode_event_json(&e), &opts).unwrap_err().to_string(),
        format!("field 'attribution.click_params key' is 20 bytes, over input.max_field_bytes (16)")
    );
    // every kind of name: top level, numbered, map value, nested
    let mut e = full_event();
    e.attribution.as_mut().unwrap().subs[2] = "s".repeat(17);
    e.attribution.as_mut().unwrap().click_params.insert("gclid".into(), "v".repeat(18));
    let err = decode_event_with(&encode_event_json(&e), &opts).unwrap_err().to_string();
    assert_eq!(err, "field 'attribution.sub3' is 17 bytes, over input.max_field_bytes (16)");
    e.attribution.as_mut().unwrap().subs[2] = String::new();
    let err = decode_event_with(&encode_event_json(&e), &opts).unwrap_err().to_string();
    assert_eq!(err, "field 'attribution.click_params.gclid' is 18 bytes, over input.max_field_bytes (16)");
    let mut e = full_event();
    e.event_id = "e".repeat(19);
    let err = decode_event_with(&encode_event_json(&e), &opts).unwrap_err().to_string();
    assert_eq!(err, "field 'event_id' is 19 bytes, over input.max_field_bytes (16)");
    assert!(decode_event_with(&encode_event_json(&full_event()), &opts).is_ok());
}
