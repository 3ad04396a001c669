//! An input event's shape as it travels, shared by every way of reading
//! one (JSON, Avro, `[input.mapping]`): everything optional, so that a
//! missing field becomes a precise error when it is converted into a
//! `domain::Event` (`event.rs`), not a generic parse failure.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An event as it travels. Everything is optional here so that a missing
/// field becomes a precise "missing required field" error, not a generic
/// parse failure. Unknown JSON fields are ignored: upstream may add fields.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WireEvent {
    pub event_id: Option<String>,
    pub app_id: Option<String>,
    pub device_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    pub kind: Option<String>,
    pub timestamp_ms: Option<i64>,
    #[serde(default)]
    pub attribution: Option<WireAttribution>,
    #[serde(default)]
    pub device: Option<WireDevice>,
    #[serde(default)]
    pub revenue: Option<WireRevenue>,
    #[serde(default)]
    pub custom: Option<WireCustom>,
    /// Consent by purpose (`{"ad_sharing": false}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<BTreeMap<String, bool>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WireAttribution {
    pub partner_id: Option<String>,
    #[serde(default)]
    pub campaign_id: Option<String>,
    #[serde(default)]
    pub click_id: Option<String>,
    #[serde(default)]
    pub adset: Option<String>,
    #[serde(default)]
    pub creative: Option<String>,
    #[serde(default)]
    pub sub1: Option<String>,
    #[serde(default)]
    pub sub2: Option<String>,
    #[serde(default)]
    pub sub3: Option<String>,
    #[serde(default)]
    pub sub4: Option<String>,
    #[serde(default)]
    pub sub5: Option<String>,
    #[serde(default)]
    pub click_params: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub touch_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WireDevice {
    #[serde(default)]
    pub idfa: Option<String>,
    #[serde(default)]
    pub idfv: Option<String>,
    #[serde(default)]
    pub gaid: Option<String>,
    #[serde(default)]
    pub android_id: Option<String>,
    #[serde(default)]
    pub oaid: Option<String>,
    #[serde(default)]
    pub app_set_id: Option<String>,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub os_version: Option<String>,
    #[serde(default)]
    pub app_version: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub lang: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    /// Not in the Avro device record (see `AvroEvent::device_waid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waid: Option<String>,
    /// Not in the Avro device record either (`privacy_limit_ad_tracking`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_ad_tracking: Option<bool>,
    /// `privacy_att_status` in Avro.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub att_status: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WireRevenue {
    pub amount: Option<String>,
    pub currency: Option<String>,
    #[serde(default)]
    pub transaction_id: Option<String>,
    #[serde(default)]
    pub verified: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WireCustom {
    pub name: Option<String>,
    #[serde(default)]
    pub params: Option<BTreeMap<String, String>>,
}
