//! `[input.mapping]`: events of a platform's own schema. Each of our fields
//! is read from a path in the record — a JSON pointer (`/meta/id`) or a
//! dotted field path (`meta.id`), over a JSON record or over an Avro record
//! decoded with its writer schema — and kind names are translated. Fields
//! the mapping does not name are read where our own JSON schema has them.
//!
//! Compiled once at load (every path and kind name checked), applied per
//! record to a generic tree; pure.

use super::DecodeError;
use super::wire::{WireAttribution, WireCustom, WireDevice, WireEvent, WireRevenue};
use crate::domain::Kind;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// `[input.mapping]` as written.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    pub event_id: Option<String>,
    pub app_id: Option<String>,
    pub device_id: Option<String>,
    pub user_id: Option<String>,
    pub kind: Option<KindSource>,
    pub timestamp_ms: Option<TimeSource>,
    #[serde(default)]
    pub attribution: BTreeMap<String, String>,
    #[serde(default)]
    pub device: BTreeMap<String, String>,
    #[serde(default)]
    pub revenue: BTreeMap<String, String>,
    #[serde(default)]
    pub custom: BTreeMap<String, String>,
}

impl MappingConfig {
    /// How many of our fields it reads from elsewhere (the rest are read
    /// where our schema has them).
    pub fn mapped(&self) -> usize {
        let top = [&self.event_id, &self.app_id, &self.device_id, &self.user_id].iter().filter(|p| p.is_some()).count();
        let special = usize::from(self.kind.is_some()) + usize::from(self.timestamp_ms.is_some());
        top + special + self.attribution.len() + self.device.len() + self.revenue.len() + self.custom.len()
    }
}

/// `kind = "/type"` or `kind = { field = "/type", values = { purchase = "payment" } }`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum KindSource {
    Path(String),
    Table(KindTable),
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KindTable {
    pub field: String,
    /// The platform's kind name -> ours. Names not listed are taken as
    /// they are (an unknown one goes to the DLQ as `unknown kind`).
    #[serde(default)]
    pub values: BTreeMap<String, String>,
}

/// `timestamp_ms = "/ts"` or `timestamp_ms = { field = "/ts", unit = "s" }`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum TimeSource {
    Path(String),
    Table(TimeTable),
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TimeTable {
    pub field: String,
    #[serde(default)]
    pub unit: TimeUnit,
}

/// The unit of a mapped timestamp (a number, or a string of one).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    S,
    #[default]
    Ms,
    Us,
}

/// One step of a path: a field name (or an array index, when numeric).
type Path = Vec<String>;

/// A compiled mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// Our field (`device.idfa`) -> where it is read.
    paths: HashMap<&'static str, Path>,
    kinds: HashMap<String, String>,
    unit: TimeUnit,
}

const TOP: [&str; 6] = ["event_id", "app_id", "device_id", "user_id", "kind", "timestamp_ms"];
const ATTRIBUTION: [&str; 13] = [
    "attribution.partner_id",
    "attribution.campaign_id",
    "attribution.click_id",
    "attribution.adset",
    "attribution.creative",
    "attribution.sub1",
    "attribution.sub2",
    "attribution.sub3",
    "attribution.sub4",
    "attribution.sub5",
    "attribution.click_params",
    "attribution.touch_ms",
    "attribution.medium",
];
const DEVICE: [&str; 15] = [
    "device.idfa",
    "device.idfv",
    "device.gaid",
    "device.android_id",
    "device.oaid",
    "device.app_set_id",
    "device.ip",
    "device.user_agent",
    "device.os",
    "device.os_version",
    "device.app_version",
    "device.country",
    "device.lang",
    "device.model",
    "device.waid",
];
const REVENUE: [&str; 4] = ["revenue.amount", "revenue.currency", "revenue.transaction_id", "revenue.verified"];
const CUSTOM: [&str; 2] = ["custom.name", "custom.params"];

/// Every field a mapping can name.
fn targets() -> impl Iterator<Item = &'static str> {
    TOP.into_iter().chain(ATTRIBUTION).chain(DEVICE).chain(REVENUE).chain(CUSTOM)
}

/// Parses a JSON pointer (`/a/b`, with `~1` for `/` and `~0` for `~`) or a
/// dotted path (`a.b`).
pub fn parse_path(text: &str) -> Result<Path, String> {
    let steps: Vec<String> = if let Some(rest) = text.strip_prefix('/') {
        rest.split('/').map(|s| s.replace("~1", "/").replace("~0", "~")).collect()
    } else {
        text.split('.').map(str::to_owned).collect()
    };
    if text.is_empty() || steps.iter().any(String::is_empty) {
        return Err(format!(
            "'{text}' is not a path: write a JSON pointer such as \"/meta/id\" or a field path such as \"meta.id\""
        ));
    }
    Ok(steps)
}

impl Mapping {
    /// Checks and compiles `[input.mapping]`; errors are (key, reason) with
    /// keys relative to `input.mapping`.
    pub fn compile(raw: &MappingConfig) -> Result<Mapping, Vec<(String, String)>> {
        let mut errors = Vec::new();
        let mut given: Vec<(String, &str)> = Vec::new();
        for (name, path) in [
            ("event_id", &raw.event_id),
            ("app_id", &raw.app_id),
            ("device_id", &raw.device_id),
            ("user_id", &raw.user_id),
        ] {
            if let Some(p) = path {
                given.push((name.to_owned(), p));
            }
        }
        let mut kinds = HashMap::new();
        match &raw.kind {
            Some(KindSource::Path(p)) => given.push(("kind".into(), p)),
            Some(KindSource::Table(t)) => {
                given.push(("kind".into(), &t.field));
                for (theirs, ours) in &t.values {
                    if Kind::parse(ours).is_none() {
                        let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                        errors.push((
                            format!("kind.values.{theirs}"),
                            format!("'{ours}' is not an event kind: one of {}", known.join(", ")),
                        ));
                    }
                    kinds.insert(theirs.clone(), ours.clone());
                }
            }
            None => {}
        }
        let unit = match &raw.timestamp_ms {
            Some(TimeSource::Path(p)) => {
                given.push(("timestamp_ms".into(), p));
                TimeUnit::Ms
            }
            Some(TimeSource::Table(t)) => {
                given.push(("timestamp_ms".into(), &t.field));
                t.unit
            }
            None => TimeUnit::Ms,
        };
        for (section, map) in [
            ("attribution", &raw.attribution),
            ("device", &raw.device),
            ("revenue", &raw.revenue),
            ("custom", &raw.custom),
        ] {
            for (field, path) in map {
                given.push((format!("{section}.{field}"), path));
            }
        }
        let mut paths = HashMap::new();
        for target in targets() {
            paths.insert(target, target.split('.').map(str::to_owned).collect());
        }
        for (key, text) in given {
            let Some(target) = targets().find(|t| *t == key) else {
                let section = key.split('.').next().unwrap_or_default().to_owned();
                let fields: Vec<&str> = targets()
                    .filter_map(|t| t.strip_prefix(section.as_str()).and_then(|r| r.strip_prefix('.')))
                    .collect();
                errors.push((key, format!("not a field of ours; {section} has {}", fields.join(", "))));
                continue;
            };
            match parse_path(text) {
                Ok(path) => {
                    paths.insert(target, path);
                }
                Err(reason) => errors.push((key, reason)),
            }
        }
        if errors.is_empty() { Ok(Mapping { paths, kinds, unit }) } else { Err(errors) }
    }

    /// Reads an event out of a decoded record.
    pub fn apply(&self, tree: &Value) -> Result<WireEvent, DecodeError> {
        let s = |field: &'static str| self.string(tree, field);
        let kind = s("kind")?.map(|k| self.kinds.get(&k).cloned().unwrap_or(k));
        let partner = s("attribution.partner_id")?;
        let attribution = match partner {
            None => None,
            Some(partner_id) => Some(WireAttribution {
                partner_id: Some(partner_id),
                campaign_id: s("attribution.campaign_id")?,
                click_id: s("attribution.click_id")?,
                adset: s("attribution.adset")?,
                creative: s("attribution.creative")?,
                sub1: s("attribution.sub1")?,
                sub2: s("attribution.sub2")?,
                sub3: s("attribution.sub3")?,
                sub4: s("attribution.sub4")?,
                sub5: s("attribution.sub5")?,
                click_params: self.map(tree, "attribution.click_params")?,
                touch_ms: self.time(tree, "attribution.touch_ms", TimeUnit::Ms)?,
                medium: s("attribution.medium")?,
            }),
        };
        let (amount, currency) = (s("revenue.amount")?, s("revenue.currency")?);
        let revenue = match (amount.is_some() || currency.is_some(), self.lookup(tree, "revenue.verified")) {
            (false, _) => None,
            (true, verified) => Some(WireRevenue {
                amount,
                currency,
                transaction_id: s("revenue.transaction_id")?,
                verified: flag(verified, "revenue.verified")?,
            }),
        };
        let custom = s("custom.name")?
            .map(|name| Ok::<_, DecodeError>(WireCustom { name: Some(name), params: self.map(tree, "custom.params")? }))
            .transpose()?;
        Ok(WireEvent {
            event_id: s("event_id")?,
            app_id: s("app_id")?,
            device_id: s("device_id")?,
            user_id: s("user_id")?,
            kind,
            timestamp_ms: self.time(tree, "timestamp_ms", self.unit)?,
            attribution,
            device: Some(self.device(tree)?),
            revenue,
            custom,
            // not mapped: events of another schema carry no consent here
            consent: None,
        })
    }

    fn device(&self, tree: &Value) -> Result<WireDevice, DecodeError> {
        let mut values = DEVICE.into_iter().map(|f| self.string(tree, f)).collect::<Result<Vec<_>, _>>()?.into_iter();
        let mut next = || values.next().flatten();
        Ok(WireDevice {
            idfa: next(),
            idfv: next(),
            gaid: next(),
            android_id: next(),
            oaid: next(),
            app_set_id: next(),
            ip: next(),
            user_agent: next(),
            os: next(),
            os_version: next(),
            app_version: next(),
            country: next(),
            lang: next(),
            model: next(),
            waid: next(),
            limit_ad_tracking: None,
            att_status: None,
        })
    }

    fn lookup<'a>(&self, tree: &'a Value, field: &'static str) -> Option<&'a Value> {
        let mut at = tree;
        for step in &self.paths[field] {
            at = match at {
                Value::Object(m) => m.get(step)?,
                Value::Array(a) => a.get(step.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        (!at.is_null()).then_some(at)
    }

    /// A text field: strings as they are, numbers and booleans as written.
    fn string(&self, tree: &Value, field: &'static str) -> Result<Option<String>, DecodeError> {
        self.lookup(tree, field).map(|v| scalar(v, field)).transpose()
    }

    fn map(&self, tree: &Value, field: &'static str) -> Result<Option<BTreeMap<String, String>>, DecodeError> {
        let Some(v) = self.lookup(tree, field) else { return Ok(None) };
        let Value::Object(m) = v else {
            return Err(DecodeError::Invalid { field, reason: format!("is {}, not a map", describe(v)) });
        };
        m.iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| scalar(v, field).map(|s| (k.clone(), s)))
            .collect::<Result<_, _>>()
            .map(Some)
    }

    fn time(&self, tree: &Value, field: &'static str, unit: TimeUnit) -> Result<Option<i64>, DecodeError> {
        let Some(v) = self.lookup(tree, field) else { return Ok(None) };
        let invalid = || DecodeError::Invalid { field, reason: format!("{} is not a timestamp", short(v)) };
        let n: f64 = match v {
            Value::Number(n) => n.as_i64().map(|i| i as f64).or(n.as_f64()).ok_or_else(invalid)?,
            Value::String(s) => s.trim().parse().map_err(|_| invalid())?,
            _ => return Err(invalid()),
        };
        let ms = match unit {
            TimeUnit::S => n * 1000.0,
            TimeUnit::Ms => n,
            TimeUnit::Us => n / 1000.0,
        };
        if !ms.is_finite() || ms.abs() > 1e16 {
            return Err(invalid());
        }
        Ok(Some(ms.round() as i64))
    }
}

fn scalar(v: &Value, field: &'static str) -> Result<String, DecodeError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(DecodeError::Invalid { field, reason: format!("is {}, not a value", describe(other)) }),
    }
}

fn flag(v: Option<&Value>, field: &'static str) -> Result<bool, DecodeError> {
    match v {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
        Some(other) => Err(DecodeError::Invalid { field, reason: format!("{} is not true or false", short(other)) }),
    }
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "an object",
        Value::Array(_) => "a list",
        Value::Null => "null",
        _ => "a value",
    }
}

/// A value as shown in an error: at most 40 characters of it.
fn short(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}
