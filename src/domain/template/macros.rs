//! The macro catalogue: every `{name}` a template may use, and where its
//! value comes from. The names are a contract with the people writing
//! partner URLs; docs/templates.md lists every one of `CATALOGUE` (a test checks).

use super::RenderCtx;
use crate::domain::decimal::Decimal;
use crate::domain::event::DeviceInfo;
use crate::domain::when::Rates;
use std::borrow::Cow;

/// A value a template can refer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Macro {
    DeviceId,
    UserId,
    /// Index into `DeviceInfo::FIELDS`.
    Device(usize),
    Platform,
    AppId,
    Partner,
    CampaignId,
    ClickId,
    Adset,
    Creative,
    /// sub1..sub5 as 0..4.
    Sub(usize),
    ClickParam(String),
    PartnerParam(String),
    AttributionTs,
    ClickTs,
    InstallTs,
    Event,
    EventName,
    EventParam(String),
    EventId,
    EventTs,
    EventTsMs,
    Revenue,
    Currency,
    TransactionId,
    PostbackId,
    /// The advertising id of the device's platform.
    IdfaOrGaid,
    /// The revenue in USD by `[currency_rates]`.
    RevenueUsd,
    /// Windows advertising id.
    Waid,
    /// The tracking link's medium.
    Medium,
    /// The partner's name for the postback event (`[partners.event_names]`).
    PartnerEvent,
    /// IDFA upper case on iOS, GAID lower case on Android.
    IdfaUpperOrGaidLower,
    /// `1`, `0`, or empty when unknown.
    LimitAdTracking,
    AttStatus,
    /// `1` when ad tracking is allowed, `0` when limited, empty when unknown.
    TrackingEnabled,
    /// `1`/`0` for a consent purpose, empty when unknown.
    Consent(String),
}

/// (name, description) of every macro, checked against docs/templates.md.
pub const CATALOGUE: &[(&str, &str)] = &[
    ("device_id", "tracker's device id (web: visitor id)"),
    ("user_id", "the app's customer user id"),
    ("idfa", "iOS advertising id"),
    ("idfv", "iOS vendor id"),
    ("gaid", "Google advertising id"),
    ("android_id", "Android id"),
    (
        "idfa_or_gaid",
        "the advertising id of the device's platform: idfa on iOS, gaid on Android, else whichever is set",
    ),
    ("oaid", "Open Anonymous Device Identifier"),
    ("waid", "Windows advertising id"),
    ("app_set_id", "Android app set id"),
    ("ip", "device IP address"),
    ("user_agent", "device user agent"),
    ("os", "operating system"),
    ("os_version", "operating system version"),
    ("app_version", "app version"),
    ("country", "country code"),
    ("lang", "language"),
    ("model", "device model"),
    ("platform", "mobile or web"),
    ("app_id", "the tracked app or site"),
    ("partner", "partner id of the attribution the postback is sent in"),
    ("campaign_id", "campaign of that attribution"),
    ("click_id", "click id of that attribution"),
    ("adset", "ad set of that attribution"),
    ("creative", "creative of that attribution"),
    ("medium", "medium of that attribution's tracking link"),
    ("sub1 .. sub5", "sub-ids of the tracking link"),
    ("click_param:NAME", "any GET parameter of the partner's tracking link"),
    ("partner_param:NAME", "per-campaign partner parameter from [partners.campaign_params]"),
    ("attribution_ts", "unix seconds of the attribution (install, re-install, re-engagement, first visit)"),
    ("click_ts", "unix seconds of the touch (click or impression), when known"),
    ("install_ts", "unix seconds of the device's first install"),
    ("event", "the postback event name (install, payment, ...)"),
    ("event_name", "custom event name"),
    ("event_param:NAME", "custom event parameter"),
    ("event_id", "tracker's event id"),
    ("event_ts", "unix seconds of the event"),
    ("event_ts_ms", "unix milliseconds of the event"),
    ("revenue", "payment amount, as sent (decimal string)"),
    ("revenue_usd", "payment amount in USD by [currency_rates], exact (empty for a currency without a rate)"),
    ("currency", "ISO 4217 currency code"),
    ("transaction_id", "store transaction id"),
    ("postback_id", "the job id: stable across retries, for de-duplication"),
    (
        "partner_event",
        "the partner's name for the postback event ([partners.event_names]; default: the event's own name, for custom events the app's event name)",
    ),
    (
        "idfa_upper_or_gaid_lower",
        "IDFA in upper case on iOS, GAID in lower case on Android (by os), else whichever is set",
    ),
    ("limit_ad_tracking", "1 when the device limits ad tracking, 0 when it does not, empty when unknown"),
    ("att_status", "iOS ATT status: authorized, denied, restricted or not_determined; empty when unknown"),
    ("tracking_enabled", "1 when ad tracking is allowed (no limit, ATT not denied), 0 when not, empty when unknown"),
    ("consent:PURPOSE", "1 when consent to PURPOSE was given, 0 when refused, empty when unknown"),
];

impl Macro {
    /// Parses a macro name (`idfa`, `click_param:utm_source`, ...).
    pub fn parse(name: &str) -> Result<Macro, String> {
        if let Some((prefix, arg)) = name.split_once(':') {
            if arg.is_empty() {
                return Err(format!("macro '{prefix}:' needs a parameter name"));
            }
            return match prefix {
                "click_param" => Ok(Macro::ClickParam(arg.to_owned())),
                "partner_param" => Ok(Macro::PartnerParam(arg.to_owned())),
                "event_param" => Ok(Macro::EventParam(arg.to_owned())),
                "consent" => Ok(Macro::Consent(arg.to_owned())),
                _ => Err(format!("unknown macro '{name}'")),
            };
        }
        if let Some(i) = DeviceInfo::FIELDS.iter().position(|f| *f == name) {
            return Ok(Macro::Device(i));
        }
        let m = match name {
            "device_id" => Macro::DeviceId,
            "user_id" => Macro::UserId,
            "platform" => Macro::Platform,
            "app_id" => Macro::AppId,
            "partner" => Macro::Partner,
            "campaign_id" => Macro::CampaignId,
            "click_id" => Macro::ClickId,
            "adset" => Macro::Adset,
            "creative" => Macro::Creative,
            "sub1" => Macro::Sub(0),
            "sub2" => Macro::Sub(1),
            "sub3" => Macro::Sub(2),
            "sub4" => Macro::Sub(3),
            "sub5" => Macro::Sub(4),
            "attribution_ts" => Macro::AttributionTs,
            "click_ts" => Macro::ClickTs,
            "install_ts" => Macro::InstallTs,
            "event" => Macro::Event,
            "event_name" => Macro::EventName,
            "event_id" => Macro::EventId,
            "event_ts" => Macro::EventTs,
            "event_ts_ms" => Macro::EventTsMs,
            "revenue" => Macro::Revenue,
            "currency" => Macro::Currency,
            "transaction_id" => Macro::TransactionId,
            "postback_id" => Macro::PostbackId,
            "idfa_or_gaid" => Macro::IdfaOrGaid,
            "revenue_usd" => Macro::RevenueUsd,
            "waid" => Macro::Waid,
            "medium" => Macro::Medium,
            "partner_event" => Macro::PartnerEvent,
            "idfa_upper_or_gaid_lower" => Macro::IdfaUpperOrGaidLower,
            "limit_ad_tracking" => Macro::LimitAdTracking,
            "att_status" => Macro::AttStatus,
            "tracking_enabled" => Macro::TrackingEnabled,
            _ => return Err(format!("unknown macro '{name}'")),
        };
        Ok(m)
    }

    /// Device identifiers, IP and user agent: what a partner's privacy
    /// policy strips.
    pub fn identifies(&self) -> bool {
        match self {
            Macro::Device(i) => STRIPPED.contains(&DeviceInfo::FIELDS[*i]),
            Macro::Waid | Macro::IdfaOrGaid | Macro::IdfaUpperOrGaidLower => true,
            _ => false,
        }
    }

    /// The value for one rendering; empty when the event does not have it,
    /// or when the partner's privacy policy strips it.
    pub fn resolve<'a>(&self, ctx: &RenderCtx<'a>) -> Cow<'a, str> {
        if ctx.strip && self.identifies() {
            return Cow::Borrowed("");
        }
        self.value(ctx)
    }

    fn value<'a>(&self, ctx: &RenderCtx<'a>) -> Cow<'a, str> {
        let ev = ctx.event;
        let attr = ctx.attribution.source.as_ref();
        let from_attr = |f: fn(&'a crate::domain::event::Attribution) -> &'a str| -> Cow<'a, str> {
            Cow::Borrowed(attr.map_or("", f))
        };
        match self {
            Macro::DeviceId => Cow::Borrowed(&ev.device_id),
            Macro::UserId => Cow::Borrowed(&ev.user_id),
            Macro::Device(i) => Cow::Borrowed(ev.device.fields()[*i].as_str()),
            Macro::Platform => Cow::Borrowed(ctx.platform.as_str()),
            Macro::AppId => Cow::Borrowed(&ev.app_id),
            Macro::Partner => from_attr(|a| &a.partner_id),
            Macro::CampaignId => from_attr(|a| &a.campaign_id),
            Macro::ClickId => from_attr(|a| &a.click_id),
            Macro::Adset => from_attr(|a| &a.adset),
            Macro::Creative => from_attr(|a| &a.creative),
            Macro::Sub(i) => Cow::Borrowed(attr.map_or("", |a| a.subs[*i].as_str())),
            Macro::ClickParam(name) => {
                Cow::Borrowed(attr.and_then(|a| a.click_params.get(name)).map_or("", |v| v.as_str()))
            }
            Macro::PartnerParam(name) => {
                Cow::Borrowed(ctx.partner.and_then(|p| p.param(ctx.attribution.campaign(), name)).unwrap_or(""))
            }
            Macro::AttributionTs => seconds(ctx.attribution.at_ms),
            Macro::ClickTs => seconds(attr.map_or(0, |a| a.touch_ms)),
            Macro::InstallTs => seconds(ctx.install_ms),
            Macro::Event => Cow::Borrowed(ctx.postback_event),
            Macro::EventName => Cow::Borrowed(ev.custom_name()),
            Macro::EventParam(name) => {
                Cow::Borrowed(ev.custom.as_ref().and_then(|c| c.params.get(name)).map_or("", |v| v.as_str()))
            }
            Macro::EventId => Cow::Borrowed(&ev.event_id),
            Macro::EventTs => seconds(ev.timestamp_ms),
            Macro::EventTsMs => Cow::Owned(ev.timestamp_ms.to_string()),
            Macro::Revenue => Cow::Borrowed(ev.revenue.as_ref().map_or("", |r| r.amount.as_str())),
            Macro::Currency => Cow::Borrowed(ev.revenue.as_ref().map_or("", |r| r.currency.as_str())),
            Macro::TransactionId => Cow::Borrowed(ev.revenue.as_ref().map_or("", |r| r.transaction_id.as_str())),
            Macro::PostbackId => Cow::Borrowed(ctx.job_id),
            Macro::IdfaOrGaid => Cow::Borrowed(advertising_id(&ev.device)),
            Macro::RevenueUsd => Cow::Owned(revenue_usd(ev, ctx.usd_rates)),
            Macro::Waid => Cow::Borrowed(&ev.device.waid),
            Macro::Medium => from_attr(|a| &a.medium),
            Macro::PartnerEvent => match ctx.partner {
                Some(p) => Cow::Owned(p.event_name(ctx.postback_event, ev.custom_name()).to_owned()),
                None if ctx.postback_event == "custom_event" => Cow::Borrowed(ev.custom_name()),
                None => Cow::Borrowed(ctx.postback_event),
            },
            Macro::IdfaUpperOrGaidLower => idfa_upper_or_gaid_lower(&ev.device),
            Macro::LimitAdTracking => flag(ctx.privacy.limit_ad_tracking),
            Macro::AttStatus => Cow::Borrowed(ctx.privacy.att_status.map_or("", |a| a.as_str())),
            Macro::TrackingEnabled => flag(ctx.privacy.tracking_enabled()),
            Macro::Consent(purpose) => flag(ctx.privacy.consent.get(purpose).copied()),
        }
    }
}

/// The device fields a privacy policy strips (the identifiers, IP and
/// user agent; not os, country, language or model).
const STRIPPED: [&str; 8] = ["idfa", "idfv", "gaid", "android_id", "oaid", "app_set_id", "ip", "user_agent"];

fn flag(v: Option<bool>) -> Cow<'static, str> {
    Cow::Borrowed(match v {
        Some(true) => "1",
        Some(false) => "0",
        None => "",
    })
}

/// IDFA upper case on iOS, GAID lower case on Android (by `os`); without a
/// known os, whichever is set (IDFA first), cased the same way.
fn idfa_upper_or_gaid_lower(d: &DeviceInfo) -> Cow<'_, str> {
    let id = advertising_id(d);
    if std::ptr::eq(id, d.idfa.as_str()) {
        Cow::Owned(id.to_ascii_uppercase())
    } else {
        Cow::Owned(id.to_ascii_lowercase())
    }
}

/// idfa on iOS, gaid on Android (by `os`); without a known os, whichever
/// is set (idfa first).
fn advertising_id(d: &DeviceInfo) -> &str {
    let os = d.os.to_ascii_lowercase();
    let ios = os.starts_with("ios") || os.starts_with("ipados");
    if !ios && (os.starts_with("android") || d.idfa.is_empty()) { &d.gaid } else { &d.idfa }
}

fn revenue_usd(ev: &crate::domain::event::Event, rates: &Rates) -> String {
    let Some(r) = &ev.revenue else { return String::new() };
    Decimal::parse(&r.amount).and_then(|a| rates.to_usd(&a, &r.currency)).map_or_else(String::new, |v| v.to_string())
}

/// Unix seconds; a zero time (unknown) renders empty rather than 1970.
fn seconds(ms: i64) -> Cow<'static, str> {
    if ms == 0 { Cow::Borrowed("") } else { Cow::Owned(ms.div_euclid(1000).to_string()) }
}
