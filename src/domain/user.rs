//! User-level rules (DESIGN §1.4): new user, re-engagement by user, first
//! payment and first custom payment by user.
//!
//! The user stage sees each event that carries a user id, together with a
//! snapshot of its device's attribution taken right after the device rules
//! ran (a [`UserActivity`]), so it can route into the device's current
//! attribution without reading device state it does not own.

use super::app::App;
use super::device::money_streams;
use super::event::Event;
use super::hash::fnv1a64;
use super::state::{Attributed, UserState};
use super::trigger::{Trigger, Triggers};

/// One event with a user id, as carried by the user-activity topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserActivity {
    pub event: Event,
    /// The device's first attribution.
    pub device_first: Attributed,
    /// The device's current attribution after the event.
    pub device_current: Attributed,
    /// The device's attribution sequence after the event.
    pub device_seq: u32,
    /// The device's install time (0: none seen).
    pub install_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserOutcome {
    pub created: bool,
    pub triggers: Triggers,
}

/// Applies one user activity to the user's state; `state` is always `Some`
/// afterwards.
pub fn apply_user(state: &mut Option<UserState>, act: &UserActivity, app: &App) -> UserOutcome {
    let event = &act.event;
    let t = event.timestamp_ms;
    let mut out = UserOutcome::default();
    let st = match state {
        Some(st) => {
            if is_user_dormant(st, event, app) {
                out.triggers.push(Trigger::UserReengagement);
            }
            st
        }
        None => {
            out.created = true;
            out.triggers.push(Trigger::NewUser);
            state.insert(UserState {
                first_seen_ms: t,
                first_device_id: event.device_id.clone(),
                first: act.device_first.clone(),
                ..UserState::default()
            })
        }
    };

    let attribution_ref = (fnv1a64(&[event.device_id.as_bytes()]), act.device_seq);
    for &money in money_streams(event) {
        let flag = money.lifetime_flag();
        if !st.has(flag) {
            st.flags |= flag;
            out.triggers.push(Trigger::UserFirstMoney { money: money.into(), ca: false });
        }
        // once per attribution, also when the user pays on another device between
        if st.mark_ca(money.index(), attribution_ref) {
            out.triggers.push(Trigger::UserFirstMoney { money: money.into(), ca: true });
        }
    }

    if event.kind.is_activity() {
        st.last_activity_ms = Some(st.last_activity_ms.map_or(t, |last| last.max(t)));
    }
    out
}

/// Activity after at least the inactivity window without activity on any of
/// the user's devices.
pub fn is_user_dormant(st: &UserState, event: &Event, app: &App) -> bool {
    event.kind.is_activity()
        && st
            .last_activity_ms
            .is_some_and(|last| event.timestamp_ms >= last && event.timestamp_ms - last >= app.inactivity_window_ms)
}
