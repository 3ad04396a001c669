//! Routing (docs/design.md §1.5, §2): which configured postbacks a trigger fires,
//! in which attribution, and the rendered jobs.
//!
//! `decide` returns the reason a postback does not fire, so `inspect` can
//! explain a decision with the very code that made it.

use super::app::App;
use super::event::Event;
use super::job::{Job, job_id};
use super::postback::{Postback, PostbackEvent, Routing, Sending};
use super::privacy::{self, Applied, Limit, Privacy};
use super::rules::Rules;
use super::state::{Attributed, Occurrence};
use super::template::RenderCtx;
use super::trigger::Trigger;
use std::fmt;

/// The attributions and facts a routing decision reads.
#[derive(Debug, Clone, Copy)]
pub struct RouteInput<'a> {
    pub event: &'a Event,
    pub app: &'a App,
    /// Where lifetime triggers go: the device's first attribution, or for
    /// by-user triggers the first attribution of the user's first device.
    pub first: &'a Attributed,
    /// The device's current attribution after the event.
    pub current: &'a Attributed,
    pub install_ms: i64,
    pub now_ms: i64,
    /// Which one of its kind the event is on its device.
    pub occurrence: Occurrence,
    /// What the device allows (the latest it reported).
    pub privacy: &'a Privacy,
}

/// Why a postback does not fire for a trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// The postback is for another kind of event.
    OtherTrigger,
    /// Not a valid postback event for a web app (docs/design.md §1.6).
    WebRestriction,
    AppNotIncluded,
    NotVerified,
    OtherCustomEvent,
    /// `sending = attributed` and the attribution is organic.
    Organic,
    /// `sending = attributed` and the attribution belongs to another partner.
    OtherPartner(String),
    /// A campaign-only postback and the attribution is another campaign.
    CampaignNotIncluded(String),
    /// The event came later than the postback's window after the start of
    /// the attribution (ms after it, window ms).
    OutsideWindow {
        after_ms: i64,
        window_ms: i64,
    },
    /// A condition of `[postbacks.when]` does not hold (which, and why).
    Filtered(String),
    /// The postback fires on another occurrence (this one, wanted).
    OtherOccurrence {
        nth: u32,
        wanted: u32,
    },
    /// The partner's privacy policy suppresses it for this device.
    Privacy(Limit),
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::OtherTrigger => f.write_str("not this kind of event"),
            Skip::WebRestriction => f.write_str("not a valid postback event for a web app"),
            Skip::AppNotIncluded => f.write_str("the app is not in the postback's apps"),
            Skip::NotVerified => f.write_str("verified_only and the purchase is not store-verified"),
            Skip::OtherCustomEvent => f.write_str("another custom event name"),
            Skip::Organic => f.write_str("sending = attributed and the attribution is organic"),
            Skip::OtherPartner(p) => write!(f, "sending = attributed and the attribution belongs to partner '{p}'"),
            Skip::CampaignNotIncluded(c) => write!(f, "campaign '{c}' is not in the postback's campaigns"),
            Skip::OutsideWindow { after_ms, window_ms } => write!(
                f,
                "the event came {} after the attribution began, outside the postback's window of {}",
                super::time::human_ms(*after_ms),
                super::time::human_ms(*window_ms)
            ),
            Skip::Filtered(why) => f.write_str(why),
            Skip::OtherOccurrence { nth: 0, wanted } => write!(
                f,
                "a late event of an earlier attribution is not counted in it; the postback fires on the {}",
                ordinal(*wanted)
            ),
            Skip::OtherOccurrence { nth, wanted } => {
                write!(f, "this is the {} such event, the postback fires on the {}", ordinal(*nth), ordinal(*wanted))
            }
            Skip::Privacy(why) => write!(f, "suppressed by the partner's privacy policy: {why}"),
        }
    }
}

/// Whether `pb` fires for `trigger`, and in which attribution.
pub fn decide<'a>(pb: &Postback, trigger: Trigger, input: &RouteInput<'a>) -> Result<&'a Attributed, Skip> {
    if pb.trigger() != trigger {
        return Err(Skip::OtherTrigger);
    }
    if !pb.event.valid_for(input.app.platform) {
        return Err(Skip::WebRestriction);
    }
    if !pb.apps.contains(&input.event.app_id) {
        return Err(Skip::AppNotIncluded);
    }
    if pb.verified_only && !input.event.is_verified() {
        return Err(Skip::NotVerified);
    }
    if let PostbackEvent::CustomEvent(name) = &pb.event {
        if name != input.event.custom_name() {
            return Err(Skip::OtherCustomEvent);
        }
    }
    let attributed = match pb.event.routing(pb.routing) {
        Routing::Lt => input.first,
        Routing::Ca => input.current,
    };
    if pb.sending == Sending::Attributed {
        match &attributed.source {
            None => return Err(Skip::Organic),
            Some(a) if a.partner_id != pb.partner_id => return Err(Skip::OtherPartner(a.partner_id.clone())),
            Some(_) => {}
        }
    }
    if !pb.campaigns.is_empty() && !pb.campaigns.iter().any(|c| c == attributed.campaign()) {
        return Err(Skip::CampaignNotIncluded(attributed.campaign().to_owned()));
    }
    if let Some(window_ms) = pb.window_ms {
        let after_ms = input.event.timestamp_ms.saturating_sub(attributed.at_ms);
        if after_ms > window_ms {
            return Err(Skip::OutsideWindow { after_ms, window_ms });
        }
    }
    pb.when.check(input.event, attributed).map_err(Skip::Filtered)?;
    if let Some(wanted) = pb.occurrence {
        let nth = match pb.event.routing(pb.routing) {
            Routing::Lt => input.occurrence.lifetime,
            Routing::Ca => input.occurrence.attribution,
        };
        if nth != wanted {
            return Err(Skip::OtherOccurrence { nth, wanted });
        }
    }
    Ok(attributed)
}

/// 1st, 2nd, 3rd, 4th, 11th, 21st, ...
fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// Whether `pb` fires for `trigger` once its partner's privacy policy has
/// had its say: the attribution it is sent in, and whether the device's
/// identifiers are stripped.
pub fn fire<'a>(
    rules: &Rules,
    pb: &Postback,
    trigger: Trigger,
    input: &RouteInput<'a>,
) -> Result<(&'a Attributed, Applied), Skip> {
    let attributed = decide(pb, trigger, input)?;
    match privacy::applied(input.privacy, rules.privacy_policy(&pb.partner_id)) {
        Applied::Suppress(why) => Err(Skip::Privacy(why)),
        applied => Ok((attributed, applied)),
    }
}

/// Appends the jobs the triggers fire to `jobs`.
pub fn route(rules: &Rules, triggers: &[Trigger], input: &RouteInput<'_>, jobs: &mut Vec<Job>) {
    for &trigger in triggers {
        for pb in rules.postbacks_for(trigger) {
            if let Ok((attributed, applied)) = fire(rules, pb, trigger, input) {
                let strip = matches!(applied, Applied::Strip(_));
                jobs.push(build_job(rules, pb, trigger, attributed, input, strip));
            }
        }
    }
}

/// Renders one job.
pub fn build_job(
    rules: &Rules,
    pb: &Postback,
    trigger: Trigger,
    attributed: &Attributed,
    input: &RouteInput<'_>,
    strip: bool,
) -> Job {
    let ev = input.event;
    let id = job_id(&ev.app_id, &ev.device_id, &ev.user_id, &ev.event_id, &pb.id, trigger.name());
    // a send-all postback does not leak another partner's click details
    let hidden;
    let attributed = if pb.hides(attributed) {
        hidden = attributed.without_details();
        &hidden
    } else {
        attributed
    };
    let ctx = RenderCtx {
        event: ev,
        attribution: attributed,
        install_ms: input.install_ms,
        platform: input.app.platform,
        postback_event: pb.event_name(),
        partner: rules.partner(&pb.partner_id),
        job_id: &id,
        usd_rates: rules.usd_rates(),
        privacy: input.privacy,
        strip,
    };
    Job {
        url: pb.url.render(&ctx),
        headers: pb.headers.iter().map(|(k, v)| (k.clone(), v.render(&ctx))).collect(),
        body: pb.body.as_ref().map(|b| b.render(&ctx)),
        postback_id: pb.id.clone(),
        postback_name: pb.name.clone(),
        partner_id: pb.partner_id.clone(),
        app_id: ev.app_id.clone(),
        event: pb.event_name().to_owned(),
        attribution: pb.event.routing(pb.routing),
        device_id: ev.device_id.clone(),
        user_id: ev.user_id.clone(),
        event_id: ev.event_id.clone(),
        event_ts_ms: ev.timestamp_ms,
        created_ms: input.now_ms,
        method: pb.method,
        attempt: 0,
        not_before_ms: 0,
        expires_ms: input.now_ms.saturating_add(pb.ttl_ms),
        job_id: id,
    }
}
