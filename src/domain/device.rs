//! Device-level rules (docs/design.md §1.3): install, re-install, re-engagement by
//! device, and the first/any registration, login, payment, custom payment and
//! custom event triggers.
//!
//! `apply_device` is a pure function of (state, event, app): the processor,
//! the tests and `inspect` all call this one implementation.

use super::app::{App, Platform};
use super::event::{Event, Kind};
use super::hash::fnv1a64;
use super::state::{Attributed, DeviceState, Money, Occurrence, flags};
use super::trigger::{Trigger, Triggers};

/// What applying one event to a device did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceOutcome {
    /// The event id was seen recently on this device: nothing changed.
    pub duplicate: bool,
    /// The device state was created by this event.
    pub created: bool,
    /// The event moved the current attribution.
    pub reattributed: bool,
    /// Remembering the event's transaction id made the device forget its
    /// oldest one.
    pub transaction_forgotten: bool,
    /// A late event older than every attribution the device remembers.
    pub beyond_history: bool,
    /// Which one of its kind the event is (registrations, logins, payments,
    /// custom payments, custom events by name; zero for other kinds).
    pub occurrence: Occurrence,
    pub triggers: Triggers,
}

/// Fingerprint of an event id, as remembered in `DeviceState::recent`.
pub fn event_fingerprint(event_id: &str) -> u64 {
    fnv1a64(&[event_id.as_bytes()])
}

/// Fingerprint of a payment's transaction id (`None` without one), as
/// remembered in `DeviceState::transactions`.
pub fn transaction_fingerprint(event: &Event) -> Option<u64> {
    if money_streams(event).is_empty() {
        return None;
    }
    let id = &event.revenue.as_ref()?.transaction_id;
    (!id.is_empty()).then(|| fnv1a64(&[b"transaction", id.as_bytes()]))
}

/// Applies one event to a device's state. `state` is `None` for a device
/// never seen before and is always `Some` afterwards.
pub fn apply_device(state: &mut Option<DeviceState>, event: &Event, app: &App) -> DeviceOutcome {
    let fingerprint = event_fingerprint(&event.event_id);
    let transaction = transaction_fingerprint(event);
    let mut out = DeviceOutcome::default();
    let st = match state {
        // the same event again, or the same purchase reported again
        Some(st) if st.seen_event(fingerprint) || transaction.is_some_and(|t| st.seen_transaction(t)) => {
            out.duplicate = true;
            return out;
        }
        Some(st) => st,
        None => {
            out.created = true;
            state.insert(new_device(event))
        }
    };
    let t = event.timestamp_ms;
    let dormant = !out.created && is_dormant(st, event, app);

    if event.kind == Kind::Install && app.platform == Platform::Mobile {
        if !st.has(flags::INSTALLED) {
            // the first install is never a reattribution: it is sent in the
            // first attribution, whichever event gave it
            st.flags |= flags::INSTALLED;
            st.install_ms = t;
            out.triggers.push(Trigger::Install);
        } else if dormant {
            out.reattributed = reattribute(st, event, app);
            out.triggers.push(Trigger::Reinstall);
        }
        // an install inside the window is a duplicate install: no trigger
    } else if dormant {
        out.reattributed = reattribute(st, event, app);
        out.triggers.push(Trigger::Reengagement);
    } else if is_new_web_touch(st, event, app, out.created) {
        // sites attribute by the last visit: an attributed visit from another
        // source moves the current attribution, without a re-engagement
        out.reattributed = reattribute(st, event, app);
    }

    kind_triggers(st, event, &mut out.triggers);
    let (_, seq, beyond) = st.attribution_at(t);
    out.beyond_history = beyond;
    if let Some(key) = count_key(event) {
        out.occurrence = st.count(key, seq);
    }

    // what the device allows is what it said last; a late event's word is old
    if st.last_activity_ms.is_none_or(|last| t >= last) {
        st.privacy.update(&event.privacy);
    }
    if event.kind.is_activity() {
        // late events never move the clock backwards
        st.last_activity_ms = Some(st.last_activity_ms.map_or(t, |last| last.max(t)));
    }
    st.remember_event(fingerprint);
    if let Some(t) = transaction {
        out.transaction_forgotten = st.remember_transaction(t);
    }
    out
}

/// The counter an event adds to, for postbacks on the nth event.
fn count_key(event: &Event) -> Option<u64> {
    matches!(event.kind, Kind::Registration | Kind::Login | Kind::Payment | Kind::CustomPayment | Kind::CustomEvent)
        .then(|| fnv1a64(&[b"count", event.kind.as_str().as_bytes(), event.custom_name().as_bytes()]))
}

fn new_device(event: &Event) -> DeviceState {
    let first = Attributed::new(event.attribution.clone(), event.timestamp_ms);
    DeviceState { first_seen_ms: event.timestamp_ms, current: first.clone(), first, ..DeviceState::default() }
}

/// An activity event after at least the inactivity window without activity.
/// Late events (before the last activity) never count.
pub fn is_dormant(st: &DeviceState, event: &Event, app: &App) -> bool {
    event.kind.is_activity()
        && st
            .last_activity_ms
            .is_some_and(|last| event.timestamp_ms >= last && event.timestamp_ms - last >= app.inactivity_window_ms)
}

/// A visit to a web app that carries an attribution other than the current
/// one (last-visit model). Late visits never move it.
fn is_new_web_touch(st: &DeviceState, event: &Event, app: &App, created: bool) -> bool {
    app.platform == Platform::Web
        && event.kind == Kind::Visit
        && !created
        && event.attribution.is_some()
        && event.attribution != st.current.source
        && st.last_activity_ms.is_none_or(|last| event.timestamp_ms >= last)
}

/// Moves the current attribution to the event's source. An organic return
/// starts an organic attribution only when the app asks for it. Returns
/// whether the attribution moved.
fn reattribute(st: &mut DeviceState, event: &Event, app: &App) -> bool {
    if event.attribution.is_none() && !app.reattribute_to_organic {
        return false;
    }
    st.push_earlier();
    st.current = Attributed::new(event.attribution.clone(), event.timestamp_ms);
    st.current_seq += 1;
    true
}

fn kind_triggers(st: &mut DeviceState, event: &Event, triggers: &mut Triggers) {
    match event.kind {
        Kind::Registration => {
            if first_time(st, flags::FIRST_REGISTRATION) {
                triggers.push(Trigger::FirstRegistration);
            }
            triggers.push(Trigger::Registration);
        }
        Kind::Login => {
            if first_time(st, flags::FIRST_LOGIN) {
                triggers.push(Trigger::FirstLogin);
            }
            triggers.push(Trigger::Login);
        }
        Kind::Payment | Kind::CustomPayment => money_triggers(st, event, triggers),
        Kind::CustomEvent => triggers.push(Trigger::CustomEvent),
        Kind::Install | Kind::Launch | Kind::Visit | Kind::Impression => {}
    }
}

/// Sets a lifetime flag; true when it was not set before.
fn first_time(st: &mut DeviceState, flag: u8) -> bool {
    let first = !st.has(flag);
    st.flags |= flag;
    first
}

/// The revenue streams an event counts in: every payment counts in its own
/// stream, a store-verified one also in the verified stream.
pub fn money_streams(event: &Event) -> &'static [Money] {
    match (event.kind, event.is_verified()) {
        (Kind::Payment, false) => &[Money::Payment],
        (Kind::Payment, true) => &[Money::Payment, Money::VerifiedPayment],
        (Kind::CustomPayment, false) => &[Money::CustomPayment],
        (Kind::CustomPayment, true) => &[Money::CustomPayment, Money::VerifiedCustomPayment],
        _ => &[],
    }
}

fn money_triggers(st: &mut DeviceState, event: &Event, triggers: &mut Triggers) {
    // a late payment counts in the attribution current at its timestamp
    let (_, seq, _) = st.attribution_at(event.timestamp_ms);
    for &money in money_streams(event) {
        if first_time(st, money.lifetime_flag()) {
            triggers.push(Trigger::FirstMoney { money: money.into(), ca: false });
        }
        if st.mark_ca(money, seq) {
            triggers.push(Trigger::FirstMoney { money: money.into(), ca: true });
        }
    }
    triggers.push(Trigger::AnyMoney { custom: event.kind == Kind::CustomPayment });
}
