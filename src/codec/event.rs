//! Input events: how a record is read ([`super::wire`] shapes, shared by
//! JSON and Avro, and `[input.mapping]`), and their checked conversion
//! into `domain::Event`.

use super::mapping::Mapping;
pub use super::wire::{WireAttribution, WireCustom, WireDevice, WireEvent, WireRevenue};
use super::{DecodeError, Framing, InputFormat, avro, framing, looks_like_json};
use crate::domain::privacy::{AttStatus, Privacy};
use crate::domain::{Attribution, Custom, DeviceInfo, Event, Kind, Revenue};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How records are read beyond the schema (`[input]`, `[schema_registry]`).
#[derive(Clone)]
pub struct DecodeOptions {
    pub format: InputFormat,
    /// Longest string value (and map key) accepted in any field.
    pub max_field_bytes: usize,
    /// `[input.mapping]`: the events are of another schema.
    pub mapping: Option<Arc<Mapping>>,
    /// Writer schemas of Confluent-framed records, by id (a schema
    /// registry). Without them the writer must use our schema.
    pub schemas: Option<Arc<dyn WriterSchemas>>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions { format: InputFormat::Auto, max_field_bytes: 8192, mapping: None, schemas: None }
    }
}

impl std::fmt::Debug for DecodeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodeOptions")
            .field("format", &self.format)
            .field("max_field_bytes", &self.max_field_bytes)
            .field("mapping", &self.mapping.is_some())
            .field("schemas", &self.schemas.is_some())
            .finish()
    }
}

/// A writer schema fetched from a schema registry.
#[derive(Debug)]
pub struct WriterSchema {
    pub id: u32,
    pub schema: apache_avro::Schema,
    /// Why `schemas/event.avsc` cannot read what it writes (None: it can).
    pub unreadable: Option<String>,
}

/// Writer schemas by id, fetched before a batch is decoded.
pub trait WriterSchemas: Send + Sync {
    /// The schema of `id`; `Err` says why there is none (unknown id, not
    /// Avro); `None`: it was not fetched.
    fn writer(&self, id: u32) -> Option<Result<Arc<WriterSchema>, String>>;
}

/// Decodes an input record with the default options.
pub fn decode_event(bytes: &[u8]) -> Result<Event, DecodeError> {
    decode_event_with(bytes, &DecodeOptions::default())
}

/// Decodes an input record: framing, format, schema, required fields, and
/// the length of every field.
pub fn decode_event_with(bytes: &[u8], opts: &DecodeOptions) -> Result<Event, DecodeError> {
    let wire = match (framing(bytes, opts.format)?, &opts.mapping) {
        (Framing::Confluent, _) if opts.schemas.is_some() => registered(bytes, opts)?,
        (Framing::Json | Framing::Unframed, Some(m)) => m.apply(&tree(bytes)?)?,
        (f @ (Framing::SingleObject | Framing::RawAvro | Framing::Confluent), Some(_)) => {
            return Err(DecodeError::Avro(format!(
                "{} record cannot be mapped: its writer schema is unknown (use the Confluent framing and [schema_registry])",
                if f == Framing::Confluent { "a Confluent-framed" } else { "a bare Avro" }
            )));
        }
        (Framing::Json, None) => json(bytes)?,
        (Framing::Unframed, None) => unframed(bytes)?,
        (f, None) => decode_avro(bytes, f)?.into(),
    };
    let event = wire.into_event()?;
    check_lengths(&event, opts.max_field_bytes)?;
    Ok(event)
}

/// A Confluent-framed record read with its writer schema from the
/// registry: resolved against ours, or as a tree for the mapping.
fn registered(bytes: &[u8], opts: &DecodeOptions) -> Result<WireEvent, DecodeError> {
    let (id, datum) = avro::confluent_datum(bytes)?;
    let writer = match opts.schemas.as_ref().and_then(|s| s.writer(id)) {
        Some(Ok(w)) => w,
        Some(Err(reason)) => return Err(DecodeError::Schema(reason)),
        None => return Err(DecodeError::Schema(format!("schema id {id} was not fetched from the registry"))),
    };
    if let Some(m) = &opts.mapping {
        return m.apply(&avro::decode_tree(datum, &writer.schema)?);
    }
    if let Some(why) = &writer.unreadable {
        return Err(DecodeError::Schema(format!("schema id {id} cannot be read as schemas/event.avsc: {why}")));
    }
    avro::decode_resolved::<AvroEvent>(datum, &writer.schema, &avro::EVENT_SCHEMA).map(WireEvent::from)
}

/// A JSON record as a tree, for the mapping.
fn tree(bytes: &[u8]) -> Result<serde_json::Value, DecodeError> {
    serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(e.to_string()))
}

fn json(bytes: &[u8]) -> Result<WireEvent, DecodeError> {
    // one UTF-8 check of the whole record is cheaper than serde_json's
    // check of every string in it; bytes that are not UTF-8 still get
    // serde_json's error, which says where
    let parsed = match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    };
    parsed.map_err(|e| DecodeError::Json(e.to_string()))
}

fn raw_avro(bytes: &[u8]) -> Result<WireEvent, DecodeError> {
    decode_avro(bytes, Framing::RawAvro).map(WireEvent::from)
}

/// `input.format = "auto"`. Text that opens a JSON value is read as JSON,
/// and only when that fails as a bare Avro datum (whose first bytes can be
/// whitespace and `{`); anything else is read as Avro. When neither
/// reading works, the likelier one's error is the one reported.
fn unframed(bytes: &[u8]) -> Result<WireEvent, DecodeError> {
    if looks_like_json(bytes) { json(bytes).or_else(|e| raw_avro(bytes).map_err(|_| e)) } else { raw_avro(bytes) }
}

/// Every string of the event, and every map key and value, against the cap.
fn check_lengths(e: &Event, max: usize) -> Result<(), DecodeError> {
    // a field's name is only spelled out for the error: building it for
    // every field of every event was ~20 allocations per record
    let too_long = |field: String, len: usize| DecodeError::TooLong { field, len, max };
    let check = |group: &str, name: &dyn std::fmt::Display, value: &str| {
        if value.len() > max { Err(too_long(format!("{group}{name}"), value.len())) } else { Ok(()) }
    };
    let check_map = |field: &str, map: &BTreeMap<String, String>| {
        for (k, v) in map {
            if k.len() > max {
                return Err(too_long(format!("{field} key"), k.len()));
            }
            check(field, &format_args!(".{k}"), v)?;
        }
        Ok(())
    };
    for (field, value) in
        [("event_id", &e.event_id), ("app_id", &e.app_id), ("device_id", &e.device_id), ("user_id", &e.user_id)]
    {
        check("", &field, value)?;
    }
    if let Some(a) = &e.attribution {
        let named = [
            ("partner_id", &a.partner_id),
            ("campaign_id", &a.campaign_id),
            ("click_id", &a.click_id),
            ("adset", &a.adset),
            ("creative", &a.creative),
        ];
        for (field, value) in named {
            check("attribution.", &field, value)?;
        }
        for (i, sub) in a.subs.iter().enumerate() {
            check("attribution.sub", &(i + 1), sub)?;
        }
        check("attribution.", &"medium", &a.medium)?;
        check_map("attribution.click_params", &a.click_params)?;
    }
    for (name, value) in DeviceInfo::FIELDS.iter().zip(e.device.fields()) {
        check("device.", name, value)?;
    }
    check("device.", &"waid", &e.device.waid)?;
    for purpose in e.privacy.consent.keys() {
        if purpose.len() > max {
            return Err(too_long("consent key".into(), purpose.len()));
        }
    }
    if let Some(r) = &e.revenue {
        check("revenue.", &"transaction_id", &r.transaction_id)?;
    }
    if let Some(c) = &e.custom {
        check("custom.", &"name", &c.name)?;
        check_map("custom.params", &c.params)?;
    }
    Ok(())
}

/// Encodes an event as JSON (tests, generators, the demo).
pub fn encode_event_json(event: &Event) -> Vec<u8> {
    serde_json::to_vec(&WireEvent::from(event)).expect("events always serialize")
}

/// Encodes an event as a bare Avro datum of `schemas/event.avsc`.
pub fn encode_event_avro(event: &Event) -> Vec<u8> {
    avro::encode(&AvroEvent::from(WireEvent::from(event)), &avro::EVENT_SCHEMA).expect("events always fit their schema")
}

/// The same, with Confluent framing.
pub fn encode_event_confluent(event: &Event, schema_id: u32) -> Vec<u8> {
    avro::confluent(schema_id, &encode_event_avro(event))
}

/// The same, with single-object framing.
pub fn encode_event_single_object(event: &Event) -> Vec<u8> {
    avro::single_object(&avro::EVENT_SCHEMA, &encode_event_avro(event))
}

fn required(v: Option<String>, field: &'static str) -> Result<String, DecodeError> {
    v.filter(|s| !s.is_empty()).ok_or(DecodeError::Missing(field))
}

impl WireEvent {
    pub fn into_event(self) -> Result<Event, DecodeError> {
        let kind_text = required(self.kind, "kind")?;
        let kind = Kind::parse(&kind_text).ok_or(DecodeError::UnknownKind(kind_text))?;
        let event = Event {
            event_id: required(self.event_id, "event_id")?,
            app_id: required(self.app_id, "app_id")?,
            device_id: required(self.device_id, "device_id")?,
            user_id: self.user_id.unwrap_or_default(),
            kind,
            timestamp_ms: self.timestamp_ms.ok_or(DecodeError::Missing("timestamp_ms"))?,
            attribution: self.attribution.map(WireAttribution::into_domain).transpose()?,
            privacy: privacy(self.device.as_ref(), self.consent)?,
            device: self.device.map(WireDevice::into_domain).unwrap_or_default(),
            revenue: self.revenue.map(WireRevenue::into_domain).transpose()?,
            custom: self.custom.map(WireCustom::into_domain).transpose()?,
        };
        check_kind_fields(&event)?;
        Ok(event)
    }
}

/// What the event says the device allows.
fn privacy(device: Option<&WireDevice>, consent: Option<BTreeMap<String, bool>>) -> Result<Privacy, DecodeError> {
    let att_status = match device.and_then(|d| d.att_status.as_deref()) {
        None => None,
        Some(s) => Some(AttStatus::parse(s).ok_or_else(|| DecodeError::Invalid {
            field: "device.att_status",
            reason: format!("'{s}' is not one of authorized, denied, restricted, not_determined"),
        })?),
    };
    let consent = consent.unwrap_or_default();
    if consent.len() > crate::domain::privacy::MAX_PURPOSES {
        return Err(DecodeError::Invalid {
            field: "consent",
            reason: format!("{} purposes, more than {}", consent.len(), crate::domain::privacy::MAX_PURPOSES),
        });
    }
    Ok(Privacy { limit_ad_tracking: device.and_then(|d| d.limit_ad_tracking), att_status, consent })
}

/// Payments need revenue; custom events need a name.
fn check_kind_fields(event: &Event) -> Result<(), DecodeError> {
    match event.kind {
        Kind::Payment | Kind::CustomPayment if event.revenue.is_none() => Err(DecodeError::Missing("revenue")),
        Kind::CustomEvent if event.custom.is_none() => Err(DecodeError::Missing("custom")),
        _ => Ok(()),
    }
}

impl WireAttribution {
    fn into_domain(self) -> Result<Attribution, DecodeError> {
        Ok(Attribution {
            partner_id: required(self.partner_id, "attribution.partner_id")?,
            campaign_id: self.campaign_id.unwrap_or_default(),
            click_id: self.click_id.unwrap_or_default(),
            adset: self.adset.unwrap_or_default(),
            creative: self.creative.unwrap_or_default(),
            subs: [self.sub1, self.sub2, self.sub3, self.sub4, self.sub5].map(Option::unwrap_or_default),
            click_params: self.click_params.unwrap_or_default(),
            touch_ms: self.touch_ms.unwrap_or(0),
            medium: self.medium.unwrap_or_default(),
        })
    }
}

impl WireDevice {
    fn into_domain(self) -> DeviceInfo {
        let values = [
            self.idfa,
            self.idfv,
            self.gaid,
            self.android_id,
            self.oaid,
            self.app_set_id,
            self.ip,
            self.user_agent,
            self.os,
            self.os_version,
            self.app_version,
            self.country,
            self.lang,
            self.model,
        ];
        let mut info = DeviceInfo { waid: self.waid.unwrap_or_default(), ..DeviceInfo::default() };
        for (slot, v) in info.fields_mut().into_iter().zip(values) {
            *slot = v.unwrap_or_default();
        }
        info
    }
}

impl WireRevenue {
    fn into_domain(self) -> Result<Revenue, DecodeError> {
        let amount = required(self.amount, "revenue.amount")?;
        if !is_decimal(&amount) {
            return Err(DecodeError::Invalid {
                field: "revenue.amount",
                reason: format!("'{amount}' is not a decimal such as \"4.99\""),
            });
        }
        let currency = required(self.currency, "revenue.currency")?;
        if !(currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err(DecodeError::Invalid {
                field: "revenue.currency",
                reason: format!("'{currency}' is not an ISO 4217 code such as \"USD\""),
            });
        }
        Ok(Revenue {
            amount,
            currency,
            transaction_id: self.transaction_id.unwrap_or_default(),
            verified: self.verified,
        })
    }
}

/// A non-negative decimal: digits, optionally a dot and more digits.
fn is_decimal(s: &str) -> bool {
    let (int, frac) = s.split_once('.').unwrap_or((s, "0"));
    !int.is_empty()
        && !frac.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && s.len() <= 40
}

impl WireCustom {
    fn into_domain(self) -> Result<Custom, DecodeError> {
        Ok(Custom { name: required(self.name, "custom.name")?, params: self.params.unwrap_or_default() })
    }
}

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// Reads a datum of the event schema, or of an earlier version: each only
/// adds fields at the end, so an earlier record is exactly a later one's
/// prefix, fails it at its end, and then reads as what it is.
fn decode_avro(bytes: &[u8], f: Framing) -> Result<AvroEvent, DecodeError> {
    avro::decode::<AvroEvent>(bytes, f, &avro::EVENT_SCHEMA)
        .or_else(|current| avro::decode::<AvroEvent>(bytes, f, &avro::EVENT_SCHEMA_V2).map_err(|_| current))
        .or_else(|current| avro::decode::<AvroEvent>(bytes, f, &avro::EVENT_SCHEMA_V1).map_err(|_| current))
}

impl From<&Event> for WireEvent {
    fn from(e: &Event) -> WireEvent {
        WireEvent {
            event_id: Some(e.event_id.clone()),
            app_id: Some(e.app_id.clone()),
            device_id: Some(e.device_id.clone()),
            user_id: opt(&e.user_id),
            kind: Some(e.kind.as_str().to_owned()),
            timestamp_ms: Some(e.timestamp_ms),
            attribution: e.attribution.as_ref().map(|a| WireAttribution {
                partner_id: Some(a.partner_id.clone()),
                campaign_id: opt(&a.campaign_id),
                click_id: opt(&a.click_id),
                adset: opt(&a.adset),
                creative: opt(&a.creative),
                sub1: opt(&a.subs[0]),
                sub2: opt(&a.subs[1]),
                sub3: opt(&a.subs[2]),
                sub4: opt(&a.subs[3]),
                sub5: opt(&a.subs[4]),
                click_params: (!a.click_params.is_empty()).then(|| a.click_params.clone()),
                touch_ms: (a.touch_ms != 0).then_some(a.touch_ms),
                medium: opt(&a.medium),
            }),
            device: (e.device != DeviceInfo::default()
                || e.privacy.limit_ad_tracking.is_some()
                || e.privacy.att_status.is_some())
            .then(|| {
                let f = e.device.fields();
                WireDevice {
                    idfa: opt(f[0]),
                    idfv: opt(f[1]),
                    gaid: opt(f[2]),
                    android_id: opt(f[3]),
                    oaid: opt(f[4]),
                    app_set_id: opt(f[5]),
                    ip: opt(f[6]),
                    user_agent: opt(f[7]),
                    os: opt(f[8]),
                    os_version: opt(f[9]),
                    app_version: opt(f[10]),
                    country: opt(f[11]),
                    lang: opt(f[12]),
                    model: opt(f[13]),
                    waid: opt(&e.device.waid),
                    limit_ad_tracking: e.privacy.limit_ad_tracking,
                    att_status: e.privacy.att_status.map(|a| a.as_str().to_owned()),
                }
            }),
            revenue: e.revenue.as_ref().map(|r| WireRevenue {
                amount: Some(r.amount.clone()),
                currency: Some(r.currency.clone()),
                transaction_id: opt(&r.transaction_id),
                verified: r.verified,
            }),
            custom: e.custom.as_ref().map(|c| WireCustom {
                name: Some(c.name.clone()),
                params: (!c.params.is_empty()).then(|| c.params.clone()),
            }),
            consent: (!e.privacy.consent.is_empty()).then(|| e.privacy.consent.clone()),
        }
    }
}

/// The Avro shape of an event: fields the schema makes required are plain
/// values here, because apache-avro maps `Option` to a union only.
/// Converted to and from `WireEvent`, which does the checking.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct AvroEvent {
    event_id: String,
    app_id: String,
    device_id: String,
    user_id: Option<String>,
    kind: String,
    timestamp_ms: i64,
    attribution: Option<AvroAttribution>,
    device: Option<WireDevice>,
    revenue: Option<AvroRevenue>,
    custom: Option<AvroCustom>,
    /// The schema's second version: at the end, so that first-version
    /// records read unchanged (absent there: `None`).
    #[serde(default)]
    device_waid: Option<String>,
    #[serde(default)]
    attribution_medium: Option<String>,
    /// The schema's third version.
    #[serde(default)]
    privacy_limit_ad_tracking: Option<bool>,
    #[serde(default)]
    privacy_att_status: Option<String>,
    #[serde(default)]
    consent: Option<BTreeMap<String, bool>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct AvroAttribution {
    partner_id: String,
    campaign_id: Option<String>,
    click_id: Option<String>,
    adset: Option<String>,
    creative: Option<String>,
    sub1: Option<String>,
    sub2: Option<String>,
    sub3: Option<String>,
    sub4: Option<String>,
    sub5: Option<String>,
    click_params: Option<BTreeMap<String, String>>,
    touch_ms: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct AvroRevenue {
    amount: String,
    currency: String,
    transaction_id: Option<String>,
    verified: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct AvroCustom {
    name: String,
    params: Option<BTreeMap<String, String>>,
}

impl From<AvroEvent> for WireEvent {
    fn from(a: AvroEvent) -> WireEvent {
        WireEvent {
            event_id: Some(a.event_id),
            app_id: Some(a.app_id),
            device_id: Some(a.device_id),
            user_id: a.user_id,
            kind: Some(a.kind),
            timestamp_ms: Some(a.timestamp_ms),
            attribution: a.attribution.map(|x| WireAttribution {
                partner_id: Some(x.partner_id),
                campaign_id: x.campaign_id,
                click_id: x.click_id,
                adset: x.adset,
                creative: x.creative,
                sub1: x.sub1,
                sub2: x.sub2,
                sub3: x.sub3,
                sub4: x.sub4,
                sub5: x.sub5,
                click_params: x.click_params,
                touch_ms: x.touch_ms,
                medium: a.attribution_medium,
            }),
            device: match (a.device, a.device_waid, a.privacy_limit_ad_tracking, a.privacy_att_status) {
                (None, None, None, None) => None,
                (d, waid, limit_ad_tracking, att_status) => {
                    Some(WireDevice { waid, limit_ad_tracking, att_status, ..d.unwrap_or_default() })
                }
            },
            consent: a.consent,
            revenue: a.revenue.map(|r| WireRevenue {
                amount: Some(r.amount),
                currency: Some(r.currency),
                transaction_id: r.transaction_id,
                verified: r.verified,
            }),
            custom: a.custom.map(|c| WireCustom { name: Some(c.name), params: c.params }),
        }
    }
}

impl From<WireEvent> for AvroEvent {
    fn from(mut w: WireEvent) -> AvroEvent {
        let device_waid = w.device.as_mut().and_then(|d| d.waid.take());
        let attribution_medium = w.attribution.as_mut().and_then(|a| a.medium.take());
        let privacy_limit_ad_tracking = w.device.as_mut().and_then(|d| d.limit_ad_tracking.take());
        let privacy_att_status = w.device.as_mut().and_then(|d| d.att_status.take());
        AvroEvent {
            device_waid,
            attribution_medium,
            privacy_limit_ad_tracking,
            privacy_att_status,
            consent: w.consent.take(),
            event_id: w.event_id.unwrap_or_default(),
            app_id: w.app_id.unwrap_or_default(),
            device_id: w.device_id.unwrap_or_default(),
            user_id: w.user_id,
            kind: w.kind.unwrap_or_default(),
            timestamp_ms: w.timestamp_ms.unwrap_or_default(),
            attribution: w.attribution.map(|x| AvroAttribution {
                partner_id: x.partner_id.unwrap_or_default(),
                campaign_id: x.campaign_id,
                click_id: x.click_id,
                adset: x.adset,
                creative: x.creative,
                sub1: x.sub1,
                sub2: x.sub2,
                sub3: x.sub3,
                sub4: x.sub4,
                sub5: x.sub5,
                click_params: x.click_params,
                touch_ms: x.touch_ms,
            }),
            device: w.device,
            revenue: w.revenue.map(|r| AvroRevenue {
                amount: r.amount.unwrap_or_default(),
                currency: r.currency.unwrap_or_default(),
                transaction_id: r.transaction_id,
                verified: r.verified,
            }),
            custom: w.custom.map(|c| AvroCustom { name: c.name.unwrap_or_default(), params: c.params }),
        }
    }
}
