//! User-level rules (docs/design.md §1.4): new user, re-engagement by user, first
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
use super::state::{Attributed, USER_CA_MARKS, UserState};
use super::trigger::{Trigger, Triggers};

/// One event with a user id, as carried by the user-activity topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserActivity {
    /// The event, its `privacy` what the device allows after it (the
    /// device's, not only what this event said).
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

/// A [`UserActivity`] borrowed from the event and the device state it was
/// taken from: the device stage encodes it straight to its record, without
/// copying the event and two attributions first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityRef<'a> {
    pub event: &'a Event,
    pub device_first: &'a Attributed,
    pub device_current: &'a Attributed,
    pub device_seq: u32,
    pub install_ms: i64,
    /// What the device allows after the event.
    pub privacy: &'a super::privacy::Privacy,
}

impl ActivityRef<'_> {
    pub fn to_activity(&self) -> UserActivity {
        // the event as the user stage sees it: with what the device allows
        let mut event = self.event.clone();
        event.privacy = self.privacy.clone();
        UserActivity {
            event,
            device_first: self.device_first.clone(),
            device_current: self.device_current.clone(),
            device_seq: self.device_seq,
            install_ms: self.install_ms,
        }
    }
}

impl UserActivity {
    pub fn borrowed(&self) -> ActivityRef<'_> {
        ActivityRef {
            event: &self.event,
            device_first: &self.device_first,
            device_current: &self.device_current,
            device_seq: self.device_seq,
            install_ms: self.install_ms,
            privacy: &self.event.privacy,
        }
    }
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

    let attribution_ref = (device_ref(&event.app_id, &event.device_id), act.device_seq);
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

/// A device of an app, as the by-user marks remember it. Two apps of a
/// project can see one device id (iOS gives a vendor's apps one IDFV), so
/// the app is part of it; it is mixed in by XOR so that marks stored
/// before projects (device only) can be moved over: `old ^ app_salt(app)`.
pub fn device_ref(app_id: &str, device_id: &str) -> u64 {
    fnv1a64(&[device_id.as_bytes()]) ^ app_salt(app_id)
}

/// The app's part of [`device_ref`].
pub fn app_salt(app_id: &str) -> u64 {
    fnv1a64(&[b"app", app_id.as_bytes()])
}

/// One user's states from several apps of a project as one: how `state
/// rescale` re-keys user state written before projects (`app:user`). The
/// earliest first appearance gives the user's first device and attribution;
/// the rest is the union (last activity: the latest; lifetime flags: any;
/// CA marks: all, moved to [`device_ref`]'s form, at most [`USER_CA_MARKS`]).
pub fn merge_users(mut parts: Vec<(String, UserState)>) -> Option<UserState> {
    parts.sort_by_key(|(_, st)| st.first_seen_ms);
    let mut merged = parts.first()?.1.clone();
    merged.ca_marks = Default::default();
    for (app, st) in &parts {
        merged.last_activity_ms = merged.last_activity_ms.max(st.last_activity_ms);
        merged.flags |= st.flags;
        for (stream, marks) in st.ca_marks.iter().enumerate() {
            for &(device, seq) in marks {
                let moved = (device ^ app_salt(app), seq);
                if !merged.ca_marks[stream].contains(&moved) {
                    merged.ca_marks[stream].push(moved);
                }
            }
        }
    }
    for marks in &mut merged.ca_marks {
        let extra = marks.len().saturating_sub(USER_CA_MARKS);
        marks.drain(..extra);
    }
    Some(merged)
}

/// Activity after at least the inactivity window without activity on any of
/// the user's devices.
pub fn is_user_dormant(st: &UserState, event: &Event, app: &App) -> bool {
    event.kind.is_activity()
        && st
            .last_activity_ms
            .is_some_and(|last| event.timestamp_ms >= last && event.timestamp_ms - last >= app.inactivity_window_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::app::{App, Platform};
    use crate::domain::event::{Event, Kind, Revenue};

    fn pay(app: &str, device: &str, seq: u32, t: i64) -> UserActivity {
        let mut event = Event::new(&format!("p-{app}-{t}"), app, device, Kind::Payment, t);
        event.user_id = "u1".into();
        event.revenue = Some(Revenue { amount: "1.00".into(), currency: "USD".into(), ..Default::default() });
        UserActivity {
            event,
            device_first: Attributed::new(None, t),
            device_current: Attributed::new(None, t),
            device_seq: seq,
            install_ms: t,
        }
    }

    /// The state a user had under the old keys: marks were the device
    /// hash alone.
    fn legacy(app: &str, device: &str, seq: u32, t: i64) -> UserState {
        let mut st = None;
        apply_user(&mut st, &pay(app, device, seq, t), &App::new(app, Platform::Mobile));
        let mut st = st.unwrap();
        for marks in &mut st.ca_marks {
            for m in marks.iter_mut() {
                m.0 ^= app_salt(app);
            }
        }
        st
    }

    #[test]
    fn merged_users_keep_the_earliest_start_and_every_mark() {
        let game = legacy("game", "d1", 1, 2_000);
        let shop = legacy("shop", "d1", 1, 1_000);
        let mut merged = Some(merge_users(vec![("game".into(), game), ("shop".into(), shop)]).unwrap());
        let st = merged.as_ref().unwrap();
        assert_eq!((st.first_seen_ms, st.last_activity_ms), (1_000, Some(2_000)));
        // paying again in either app's attribution fires no second CA
        for app in ["game", "shop"] {
            let out = apply_user(&mut merged, &pay(app, "d1", 1, 3_000), &App::new(app, Platform::Mobile));
            assert!(out.triggers.is_empty(), "{app}: {:?}", out.triggers);
        }
        // a new attribution does
        let out = apply_user(&mut merged, &pay("game", "d1", 2, 4_000), &App::new("game", Platform::Mobile));
        assert_eq!(out.triggers.len(), 1);
        assert_eq!(merge_users(Vec::new()), None);
    }
}
