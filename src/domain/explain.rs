//! Why a postback would or would not fire for a device's or user's next
//! event — the same `apply` and `decide` the processor runs, on a copy of
//! the stored state and a hypothetical event at `now`.

use super::app::App;
use super::device::{apply_device, is_dormant};
use super::event::{Attribution, Custom, Event, Kind, Revenue};
use super::postback::{Postback, PostbackEvent, Scope};
use super::privacy::Applied;
use super::routing::{RouteInput, fire};
use super::rules::Rules;
use super::state::{Attributed, DeviceState, Money, UserState, flags};
use super::time::format_ms;
use super::trigger::Trigger;
use super::user::{UserActivity, apply_user};

/// One postback's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub postback_id: String,
    pub postback_name: String,
    /// The hypothetical next event ("a launch via zeta").
    pub next_event: String,
    pub fires: bool,
    pub why: String,
}

/// The event kind that can fire `pb`.
fn kind_for(pb: &Postback) -> Kind {
    match &pb.event {
        PostbackEvent::Install | PostbackEvent::Reinstall => Kind::Install,
        PostbackEvent::Reengagement(_) | PostbackEvent::NewUser => Kind::Launch,
        PostbackEvent::FirstRegistration | PostbackEvent::Registration => Kind::Registration,
        PostbackEvent::FirstLogin | PostbackEvent::Login => Kind::Login,
        PostbackEvent::FirstPayment(_) | PostbackEvent::Payment => Kind::Payment,
        PostbackEvent::FirstCustomPayment(_) | PostbackEvent::CustomPayment => Kind::CustomPayment,
        PostbackEvent::CustomEvent(_) => Kind::CustomEvent,
    }
}

/// Reattributing events are imagined via the postback's own partner (the
/// return would be sent in the new attribution); others carry none.
fn hypothetical(pb: &Postback, app: &App, device: &str, user: &str, now_ms: i64) -> Event {
    let mut e = Event::new("inspect", &app.id, device, kind_for(pb), now_ms);
    e.user_id = user.to_owned();
    if matches!(pb.event, PostbackEvent::Reinstall | PostbackEvent::Reengagement(_)) {
        e.attribution = Some(Attribution {
            partner_id: pb.partner_id.clone(),
            campaign_id: pb.campaigns.first().cloned().unwrap_or_default(),
            ..Default::default()
        });
    }
    if matches!(e.kind, Kind::Payment | Kind::CustomPayment) {
        e.revenue = Some(Revenue {
            amount: "1.00".into(),
            currency: "USD".into(),
            transaction_id: String::new(),
            verified: true,
        });
    }
    if let PostbackEvent::CustomEvent(name) = &pb.event {
        e.custom = Some(Custom { name: name.clone(), params: Default::default() });
    }
    e
}

fn describe(e: &Event) -> String {
    let via = e.attribution.as_ref().map_or(String::new(), |a| format!(" via {}", a.partner_id));
    let what = match e.kind {
        Kind::CustomEvent => format!("custom event '{}'", e.custom_name()),
        k => format!("{k}"),
    };
    let article = if what.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} {what}{via} now")
}

fn is_user_level(pb: &Postback) -> bool {
    matches!(
        pb.event,
        PostbackEvent::NewUser
            | PostbackEvent::Reengagement(Scope::User)
            | PostbackEvent::FirstPayment(Scope::User)
            | PostbackEvent::FirstCustomPayment(Scope::User)
    )
}

fn verdict(rules: &Rules, pb: &Postback, trigger: Trigger, input: &RouteInput<'_>) -> (bool, String) {
    match fire(rules, pb, trigger, input) {
        Ok((a, applied)) => {
            let mut why = format!("fires, sent in {} ({})", input_label(a), pb.event.routing(pb.routing).as_str());
            if applied != Applied::Send {
                why.push_str(&format!("; {applied}"));
            }
            (true, why)
        }
        Err(skip) => (false, skip.to_string()),
    }
}

fn input_label(a: &Attributed) -> String {
    match &a.source {
        None => "the organic attribution".into(),
        Some(s) if s.campaign_id.is_empty() => format!("partner {}'s attribution", s.partner_id),
        Some(s) => format!("partner {}'s attribution, campaign {}", s.partner_id, s.campaign_id),
    }
}

/// Per device-level postback: would the next event fire it, and why not.
pub fn explain_device(rules: &Rules, app: &App, device: &str, state: Option<&DeviceState>, now_ms: i64) -> Vec<Line> {
    let mut out = Vec::new();
    for pb in rules.postbacks().iter().filter(|p| !is_user_level(p)) {
        let event = hypothetical(pb, app, device, "", now_ms);
        let mut st = state.cloned();
        let outcome = apply_device(&mut st, &event, app);
        let trigger = pb.trigger();
        let (fires, why) = if !pb.event.valid_for(app.platform) {
            (false, "not a valid postback event for a web app".to_owned())
        } else if !outcome.triggers.contains(&trigger) {
            (false, device_no_trigger(pb, trigger, state, &event, app))
        } else {
            let s = st.as_ref().expect("state after apply");
            let input = RouteInput {
                event: &event,
                app,
                first: &s.first,
                current: &s.current,
                install_ms: s.install_ms,
                now_ms,
                occurrence: outcome.occurrence,
                privacy: &s.privacy,
            };
            verdict(rules, pb, trigger, &input)
        };
        out.push(Line {
            postback_id: pb.id.clone(),
            postback_name: pb.name.clone(),
            next_event: describe(&event),
            fires,
            why,
        });
    }
    out
}

fn window_text(last: i64, app: &App) -> String {
    format!(
        "inside the inactivity window: last activity {}, a return from {} would count",
        format_ms(last),
        format_ms(last + app.inactivity_window_ms)
    )
}

fn device_no_trigger(pb: &Postback, trigger: Trigger, state: Option<&DeviceState>, event: &Event, app: &App) -> String {
    let Some(st) = state else {
        return "a new device: its first event gives it its first attribution; it is not a return".into();
    };
    match trigger {
        Trigger::Install => format!("already sent: the device installed at {}", format_ms(st.install_ms)),
        Trigger::Reinstall if !st.has(flags::INSTALLED) => {
            "no install yet: a device's first install fires install, not reinstall".into()
        }
        Trigger::Reinstall | Trigger::Reengagement => match st.last_activity_ms {
            Some(last) if !is_dormant(st, event, app) => window_text(last, app),
            _ => "no activity recorded yet".into(),
        },
        Trigger::FirstRegistration => "already sent: the device's first registration happened (once per device)".into(),
        Trigger::FirstLogin => "already sent: the device's first login happened (once per device)".into(),
        Trigger::FirstMoney { money, ca: false } => {
            format!("already sent: the device's first {} happened (once per device)", money_text(money.into()))
        }
        Trigger::FirstMoney { money, ca: true } => format!(
            "already sent in the current attribution (#{}, {}): the first {} of an attribution fires once; a reattribution starts a new one",
            st.current_seq,
            input_label(&st.current),
            money_text(money.into())
        ),
        _ => format!("{} does not trigger {}", describe(event), pb.event),
    }
}

fn money_text(m: Money) -> &'static str {
    match m {
        Money::Payment => "payment",
        Money::VerifiedPayment => "verified payment",
        Money::CustomPayment => "server-side payment",
        Money::VerifiedCustomPayment => "verified server-side payment",
    }
}

/// Per user-level postback: would the user's next event fire it. The
/// hypothetical event comes from a device in the user's first attribution
/// (a re-engagement: via the postback's partner).
pub fn explain_user(rules: &Rules, app: &App, user: &str, state: Option<&UserState>, now_ms: i64) -> Vec<Line> {
    let mut out = Vec::new();
    for pb in rules.postbacks().iter().filter(|p| is_user_level(p)) {
        let event = hypothetical(pb, app, state.map_or("", |s| s.first_device_id.as_str()), user, now_ms);
        let first = state.map_or_else(Attributed::default, |s| s.first.clone());
        let current = match &event.attribution {
            Some(a) => Attributed::new(Some(a.clone()), now_ms),
            None => first.clone(),
        };
        let act = UserActivity {
            event: event.clone(),
            device_first: first.clone(),
            device_current: current.clone(),
            device_seq: 0,
            install_ms: 0,
        };
        let mut st = state.cloned();
        let outcome = apply_user(&mut st, &act, app);
        let trigger = pb.trigger();
        let (fires, why) = if !pb.event.valid_for(app.platform) {
            (false, "not a valid postback event for a web app".to_owned())
        } else if !outcome.triggers.contains(&trigger) {
            (false, user_no_trigger(trigger, state, app))
        } else {
            let s = st.as_ref().expect("state after apply");
            let input = RouteInput {
                event: &event,
                app,
                first: &s.first,
                current: &current,
                install_ms: 0,
                now_ms,
                occurrence: Default::default(),
                privacy: &event.privacy,
            };
            verdict(rules, pb, trigger, &input)
        };
        out.push(Line {
            postback_id: pb.id.clone(),
            postback_name: pb.name.clone(),
            next_event: describe(&event),
            fires,
            why,
        });
    }
    out
}

fn user_no_trigger(trigger: Trigger, state: Option<&UserState>, app: &App) -> String {
    let Some(st) = state else { return "an unknown user".into() };
    match trigger {
        Trigger::NewUser => format!(
            "already sent: the user was first seen at {} on device {}",
            format_ms(st.first_seen_ms),
            st.first_device_id
        ),
        Trigger::UserReengagement => match st.last_activity_ms {
            Some(last) => window_text(last, app),
            None => "no activity recorded yet".into(),
        },
        Trigger::UserFirstMoney { money, ca: false } => {
            format!("already sent: the user's first {} happened (once per user)", money_text(money.into()))
        }
        Trigger::UserFirstMoney { money, ca: true } => format!(
            "already sent for this device attribution: the user's first {} in it happened",
            money_text(money.into())
        ),
        t => format!("not triggered ({t})"),
    }
}

/// The stored state in a few lines.
pub fn describe_device(st: &DeviceState) -> String {
    let last = st.last_activity_ms.map_or("none".to_owned(), format_ms);
    format!(
        "first seen {}; installed {}\nfirst attribution: {} at {}\ncurrent attribution #{}: {} at {}\nlast activity: {last}",
        format_ms(st.first_seen_ms),
        if st.has(flags::INSTALLED) { format_ms(st.install_ms) } else { "no".into() },
        input_label(&st.first),
        format_ms(st.first.at_ms),
        st.current_seq,
        input_label(&st.current),
        format_ms(st.current.at_ms),
    )
}

pub fn describe_user(st: &UserState) -> String {
    let last = st.last_activity_ms.map_or("none".to_owned(), format_ms);
    format!(
        "first seen {} on device {}\nfirst attribution: {}\nlast activity: {last}",
        format_ms(st.first_seen_ms),
        st.first_device_id,
        input_label(&st.first)
    )
}
