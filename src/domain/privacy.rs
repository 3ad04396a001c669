//! What a person allowed, and what a partner gets when they did not: the
//! platform's ad-tracking limit (`device.limit_ad_tracking`, iOS's ATT
//! status) and consent by purpose (`consent`), as events report them.
//! A device keeps the latest it was told (a server-side payment says
//! nothing about consent, the last app event did), and each partner has a
//! policy for a limited device: send as usual, strip the device's
//! identifiers, IP and user agent, or suppress the postback.

use std::collections::BTreeMap;
use std::fmt;

/// Consent purposes an event may carry and a device keeps, at most: the
/// codecs refuse an event with more, and a device told more over several
/// events forgets some (`Privacy::update`), so its stored state always
/// reads back.
pub const MAX_PURPOSES: usize = 32;

/// iOS App Tracking Transparency status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttStatus {
    Authorized,
    Denied,
    Restricted,
    NotDetermined,
}

impl AttStatus {
    pub const ALL: [AttStatus; 4] =
        [AttStatus::Authorized, AttStatus::Denied, AttStatus::Restricted, AttStatus::NotDetermined];

    pub fn as_str(self) -> &'static str {
        match self {
            AttStatus::Authorized => "authorized",
            AttStatus::Denied => "denied",
            AttStatus::Restricted => "restricted",
            AttStatus::NotDetermined => "not_determined",
        }
    }

    pub fn parse(s: &str) -> Option<AttStatus> {
        AttStatus::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn code(self) -> u8 {
        self as u8 + 1
    }

    pub fn from_code(c: u8) -> Option<AttStatus> {
        c.checked_sub(1).and_then(|i| AttStatus::ALL.get(i as usize).copied())
    }
}

/// What the person allowed; absent fields are unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Privacy {
    /// The platform's limit on ad tracking (Android's "opt out of ads
    /// personalisation", iOS's LAT).
    pub limit_ad_tracking: Option<bool>,
    pub att_status: Option<AttStatus>,
    /// Consent by purpose (`ad_sharing`, `measurement`, …): true granted.
    pub consent: BTreeMap<String, bool>,
}

impl Privacy {
    pub fn is_empty(&self) -> bool {
        *self == Privacy::default()
    }

    /// What a device knows after an event: the event's fields over what it
    /// knew; a field the event does not have stays as it was.
    pub fn update(&mut self, newer: &Privacy) {
        if newer.limit_ad_tracking.is_some() {
            self.limit_ad_tracking = newer.limit_ad_tracking;
        }
        if newer.att_status.is_some() {
            self.att_status = newer.att_status;
        }
        for (purpose, granted) in &newer.consent {
            self.consent.insert(purpose.clone(), *granted);
        }
        self.forget_beyond_limit(newer);
    }

    /// Keeps at most MAX_PURPOSES: the newer event's purposes stay, and of
    /// the older ones grants go before refusals — a forgotten grant reads
    /// as unknown, a forgotten refusal could let a postback through.
    fn forget_beyond_limit(&mut self, newer: &Privacy) {
        let excess = self.consent.len().saturating_sub(MAX_PURPOSES);
        if excess == 0 {
            return;
        }
        let mut older: Vec<(String, bool)> = self
            .consent
            .iter()
            .filter(|(p, _)| !newer.consent.contains_key(*p))
            .map(|(p, g)| (p.clone(), *g))
            .collect();
        older.sort_by_key(|(_, granted)| !*granted);
        for (purpose, _) in older.into_iter().take(excess) {
            self.consent.remove(&purpose);
        }
    }

    /// Whether ad tracking is allowed, when known: not limited, and ATT
    /// not denied or restricted.
    pub fn tracking_enabled(&self) -> Option<bool> {
        let att = self.att_status.map(|a| matches!(a, AttStatus::Authorized | AttStatus::NotDetermined));
        match (self.limit_ad_tracking, att) {
            (None, None) => None,
            (lat, att) => Some(!lat.unwrap_or(false) && att.unwrap_or(true)),
        }
    }
}

/// What a partner gets from a limited device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Policy {
    /// Everything, as for any device (the default: a policy is a choice).
    #[default]
    Send,
    /// The postback, with device identifiers, IP and user agent empty.
    Strip,
    /// No postback.
    Suppress,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Send => "send",
            Policy::Strip => "strip",
            Policy::Suppress => "suppress",
        }
    }
}

/// A partner's privacy settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivacyPolicy {
    pub policy: Policy,
    /// The consent purpose the partner needs.
    pub purpose: String,
    /// An unknown consent counts as refused.
    pub require_consent: bool,
}

/// The purpose a partner needs when its config names none.
pub const DEFAULT_PURPOSE: &str = "ad_sharing";

impl Default for PrivacyPolicy {
    fn default() -> Self {
        PrivacyPolicy { policy: Policy::Send, purpose: DEFAULT_PURPOSE.to_owned(), require_consent: false }
    }
}

/// Why a device is limited for a partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Limit {
    LimitAdTracking,
    Att(AttStatus),
    ConsentRefused(String),
    NoConsent(String),
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::LimitAdTracking => f.write_str("the device limits ad tracking"),
            Limit::Att(a) => write!(f, "ATT status is {}", a.as_str()),
            Limit::ConsentRefused(p) => write!(f, "consent to '{p}' was refused"),
            Limit::NoConsent(p) => write!(f, "no consent to '{p}' is known and the partner requires it"),
        }
    }
}

/// Why `p` limits what `policy`'s partner may get; None when it does not.
pub fn limit(p: &Privacy, policy: &PrivacyPolicy) -> Option<Limit> {
    if p.limit_ad_tracking == Some(true) {
        return Some(Limit::LimitAdTracking);
    }
    if let Some(a @ (AttStatus::Denied | AttStatus::Restricted)) = p.att_status {
        return Some(Limit::Att(a));
    }
    match p.consent.get(&policy.purpose) {
        Some(false) => Some(Limit::ConsentRefused(policy.purpose.clone())),
        None if policy.require_consent => Some(Limit::NoConsent(policy.purpose.clone())),
        _ => None,
    }
}

/// What applies to one postback of a partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Nothing limited, or the partner's policy is to send.
    Send,
    /// Sent with identifiers, IP and user agent empty, because…
    Strip(Limit),
    /// Not sent, because…
    Suppress(Limit),
}

/// The policy's verdict for a device's `privacy`.
pub fn applied(p: &Privacy, policy: &PrivacyPolicy) -> Applied {
    match (policy.policy, limit(p, policy)) {
        (Policy::Send, _) | (_, None) => Applied::Send,
        (Policy::Strip, Some(why)) => Applied::Strip(why),
        (Policy::Suppress, Some(why)) => Applied::Suppress(why),
    }
}

impl fmt::Display for Applied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Applied::Send => f.write_str("sent as is"),
            Applied::Strip(why) => write!(f, "device identifiers, IP and user agent stripped: {why}"),
            Applied::Suppress(why) => write!(f, "suppressed by the partner's privacy policy: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn privacy(lat: Option<bool>, att: Option<AttStatus>, consent: &[(&str, bool)]) -> Privacy {
        Privacy {
            limit_ad_tracking: lat,
            att_status: att,
            consent: consent.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn a_device_told_many_purposes_keeps_the_newest_and_the_refusals() {
        let many = |prefix: &str, n: usize, granted: bool| {
            let list: Vec<(String, bool)> = (0..n).map(|i| (format!("{prefix}{i:02}"), granted)).collect();
            Privacy { consent: list.into_iter().collect(), ..Privacy::default() }
        };
        let mut p = many("refused-", 4, false);
        p.update(&many("granted-", 20, true));
        p.update(&many("new-", 20, true));
        assert_eq!(p.consent.len(), MAX_PURPOSES);
        assert!((0..20).all(|i| p.consent[&format!("new-{i:02}")]));
        assert!((0..4).all(|i| !p.consent[&format!("refused-{i:02}")]));
        assert_eq!(p.consent.keys().filter(|k| k.starts_with("granted-")).count(), 8);
    }

    #[test]
    fn each_policy_applies_to_each_limit() {
        let strip = PrivacyPolicy { policy: Policy::Strip, ..PrivacyPolicy::default() };
        let suppress = PrivacyPolicy { policy: Policy::Suppress, ..PrivacyPolicy::default() };
        let opt_in = PrivacyPolicy { require_consent: true, ..suppress.clone() };
        let cases = [
            (privacy(None, None, &[]), &strip, "sent as is"),
            (privacy(Some(false), Some(AttStatus::Authorized), &[("ad_sharing", true)]), &suppress, "sent as is"),
            (
                privacy(Some(true), None, &[]),
                &strip,
                "device identifiers, IP and user agent stripped: the device limits ad tracking",
            ),
            (
                privacy(None, Some(AttStatus::Denied), &[]),
                &suppress,
                "suppressed by the partner's privacy policy: ATT status is denied",
            ),
            (privacy(None, Some(AttStatus::NotDetermined), &[]), &suppress, "sent as is"),
            (
                privacy(None, None, &[("ad_sharing", false)]),
                &strip,
                "device identifiers, IP and user agent stripped: consent to 'ad_sharing' was refused",
            ),
            (privacy(None, None, &[("measurement", false)]), &strip, "sent as is"),
            (
                privacy(None, None, &[]),
                &opt_in,
                "suppressed by the partner's privacy policy: no consent to 'ad_sharing' is known and the partner requires it",
            ),
            (privacy(Some(true), None, &[]), &PrivacyPolicy::default(), "sent as is"),
        ];
        for (p, policy, want) in cases {
            assert_eq!(applied(&p, policy).to_string(), want, "{p:?} {policy:?}");
        }
    }

    #[test]
    fn a_device_keeps_what_it_was_told_last() {
        let mut d = privacy(Some(true), None, &[("ad_sharing", false)]);
        d.update(&privacy(None, Some(AttStatus::Authorized), &[]));
        assert_eq!(d, privacy(Some(true), Some(AttStatus::Authorized), &[("ad_sharing", false)]));
        d.update(&privacy(Some(false), None, &[("ad_sharing", true), ("measurement", true)]));
        assert_eq!(
            d,
            privacy(Some(false), Some(AttStatus::Authorized), &[("ad_sharing", true), ("measurement", true)])
        );
        assert_eq!(d.tracking_enabled(), Some(true));
        assert_eq!(privacy(None, None, &[]).tracking_enabled(), None);
        assert_eq!(privacy(None, Some(AttStatus::Restricted), &[]).tracking_enabled(), Some(false));
    }
}
