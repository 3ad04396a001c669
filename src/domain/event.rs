//! Input events as the rules see them: already decoded and structurally valid.
//!
//! Strings that are absent on the wire are empty here; the rules and the
//! templates treat "empty" and "absent" alike, which keeps every lookup a
//! plain `&str` on the hot path.

use std::collections::BTreeMap;
use std::fmt;

/// What happened on the device. The set is closed: an unknown kind is bad input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Install,
    Launch,
    Visit,
    Impression,
    Registration,
    Login,
    Payment,
    CustomPayment,
    CustomEvent,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Install,
        Kind::Launch,
        Kind::Visit,
        Kind::Impression,
        Kind::Registration,
        Kind::Login,
        Kind::Payment,
        Kind::CustomPayment,
        Kind::CustomEvent,
    ];

    /// Activity resets the inactivity clock and may cause a re-engagement.
    /// Server-side revenue and custom events say nothing about the person
    /// opening the app, so they are not activity.
    pub fn is_activity(self) -> bool {
        !matches!(self, Kind::CustomPayment | Kind::CustomEvent)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Install => "install",
            Kind::Launch => "launch",
            Kind::Visit => "visit",
            Kind::Impression => "impression",
            Kind::Registration => "registration",
            Kind::Login => "login",
            Kind::Payment => "payment",
            Kind::CustomPayment => "custom_payment",
            Kind::CustomEvent => "custom_event",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Stable small code for the binary encodings.
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Kind> {
        Kind::ALL.get(code as usize).copied()
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The upstream attribution decision for one touch. `None` where an
/// `Option<Attribution>` is expected means organic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attribution {
    pub partner_id: String,
    pub campaign_id: String,
    pub click_id: String,
    pub adset: String,
    pub creative: String,
    /// sub1..sub5 of the tracking link.
    pub subs: [String; 5],
    /// The tracking link's medium (a sub-id beside campaign, adset, creative).
    pub medium: String,
    /// Every GET parameter of the partner's tracking link, for `{click_param:NAME}`.
    pub click_params: BTreeMap<String, String>,
    /// When the touch (click or impression) happened; 0 when unknown.
    pub touch_ms: i64,
}

/// Device identifiers and context, all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    pub idfa: String,
    pub idfv: String,
    pub gaid: String,
    pub android_id: String,
    pub oaid: String,
    pub app_set_id: String,
    pub ip: String,
    pub user_agent: String,
    pub os: String,
    pub os_version: String,
    pub app_version: String,
    pub country: String,
    pub lang: String,
    pub model: String,
    /// Windows advertising id. Not in [`DeviceInfo::FIELDS`]: that order is
    /// the first schema's, and `waid` came later (see the codecs).
    pub waid: String,
}

impl DeviceInfo {
    /// Field names in wire order; the codecs and the macro catalogue share it.
    pub const FIELDS: [&'static str; 14] = [
        "idfa",
        "idfv",
        "gaid",
        "android_id",
        "oaid",
        "app_set_id",
        "ip",
        "user_agent",
        "os",
        "os_version",
        "app_version",
        "country",
        "lang",
        "model",
    ];

    pub fn get(&self, field: &str) -> &str {
        self.fields()
            .into_iter()
            .zip(Self::FIELDS)
            .find(|(_, name)| *name == field)
            .map(|(v, _)| v.as_str())
            .unwrap_or("")
    }

    pub fn fields(&self) -> [&String; 14] {
        [
            &self.idfa,
            &self.idfv,
            &self.gaid,
            &self.android_id,
            &self.oaid,
            &self.app_set_id,
            &self.ip,
            &self.user_agent,
            &self.os,
            &self.os_version,
            &self.app_version,
            &self.country,
            &self.lang,
            &self.model,
        ]
    }

    pub fn fields_mut(&mut self) -> [&mut String; 14] {
        [
            &mut self.idfa,
            &mut self.idfv,
            &mut self.gaid,
            &mut self.android_id,
            &mut self.oaid,
            &mut self.app_set_id,
            &mut self.ip,
            &mut self.user_agent,
            &mut self.os,
            &mut self.os_version,
            &mut self.app_version,
            &mut self.country,
            &mut self.lang,
            &mut self.model,
        ]
    }
}

/// Revenue of a payment. The amount stays a decimal string: money is never
/// a float anywhere in postback.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revenue {
    pub amount: String,
    pub currency: String,
    pub transaction_id: String,
    /// A store-verified purchase.
    pub verified: bool,
}

/// Name and parameters of a custom event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Custom {
    pub name: String,
    pub params: BTreeMap<String, String>,
}

/// One tracked event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub event_id: String,
    pub app_id: String,
    pub device_id: String,
    /// The app's customer user id; empty when the SDK sent none.
    pub user_id: String,
    pub kind: Kind,
    pub timestamp_ms: i64,
    pub attribution: Option<Attribution>,
    pub device: DeviceInfo,
    pub revenue: Option<Revenue>,
    pub custom: Option<Custom>,
    /// Ad-tracking limits and consent the event reports.
    pub privacy: super::privacy::Privacy,
}

impl Event {
    /// A minimal event; tests and the generator fill in the rest.
    pub fn new(event_id: &str, app_id: &str, device_id: &str, kind: Kind, ts: i64) -> Event {
        Event {
            event_id: event_id.to_owned(),
            app_id: app_id.to_owned(),
            device_id: device_id.to_owned(),
            user_id: String::new(),
            kind,
            timestamp_ms: ts,
            attribution: None,
            device: DeviceInfo::default(),
            revenue: None,
            custom: None,
            privacy: super::privacy::Privacy::default(),
        }
    }

    pub fn is_verified(&self) -> bool {
        self.revenue.as_ref().is_some_and(|r| r.verified)
    }

    pub fn custom_name(&self) -> &str {
        self.custom.as_ref().map_or("", |c| c.name.as_str())
    }
}
