//! One event through the rules and routing, as the processing stage runs it.
//!
//! `device_step` and `user_step` are what the Kafka stage calls per record;
//! [`Engine`] strings them together over in-memory maps, which makes it the
//! reference model the tests, the demo and the benchmark predict jobs with.

use super::app::App;
use super::check::{Rejection, check_event};
use super::device::{DeviceOutcome, apply_device};
use super::event::Event;
use super::job::Job;
use super::routing::{RouteInput, route};
use super::rules::Rules;
use super::state::{DeviceState, UserState};
use super::user::{ActivityRef, UserActivity, UserOutcome, apply_user};
use std::collections::HashMap;
use std::sync::Arc;

/// What the device stage did with one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceStep<'a> {
    pub outcome: DeviceOutcome,
    /// The record to forward to the user stage (events with a user id).
    pub activity: Option<ActivityRef<'a>>,
}

/// Device rules and routing for one event; jobs are appended to `jobs`.
pub fn device_step<'a>(
    rules: &Rules,
    app: &App,
    state: &'a mut Option<DeviceState>,
    event: &'a Event,
    now_ms: i64,
    jobs: &mut Vec<Job>,
) -> DeviceStep<'a> {
    let outcome = apply_device(state, event, app);
    if outcome.duplicate {
        return DeviceStep { outcome, activity: None };
    }
    let st: &DeviceState = state.as_ref().expect("apply_device leaves a state");
    // CA postbacks of a late event go to the attribution of its time
    let (current, seq, _) = st.attribution_at(event.timestamp_ms);
    let input = RouteInput {
        event,
        app,
        first: &st.first,
        current,
        install_ms: st.install_ms,
        now_ms,
        occurrence: outcome.occurrence,
        privacy: &st.privacy,
    };
    route(rules, &outcome.triggers, &input, jobs);
    let activity = (!event.user_id.is_empty()).then_some(ActivityRef {
        event,
        device_first: &st.first,
        device_current: current,
        device_seq: seq,
        install_ms: st.install_ms,
        privacy: &st.privacy,
    });
    DeviceStep { outcome, activity }
}

/// User rules and routing for one forwarded event.
pub fn user_step(
    rules: &Rules,
    app: &App,
    state: &mut Option<UserState>,
    act: &UserActivity,
    now_ms: i64,
    jobs: &mut Vec<Job>,
) -> UserOutcome {
    let outcome = apply_user(state, act, app);
    let st = state.as_ref().expect("apply_user leaves a state");
    let input = RouteInput {
        event: &act.event,
        app,
        first: &st.first,
        current: &act.device_current,
        install_ms: act.install_ms,
        now_ms,
        occurrence: Default::default(),
        privacy: &act.event.privacy,
    };
    route(rules, &outcome.triggers, &input, jobs);
    outcome
}

/// State key of a device or user: `app_id:id`. App ids never contain ':'
/// (config validation), so the key is unambiguous.
pub fn state_key(app_id: &str, id: &str) -> String {
    let mut key = String::with_capacity(app_id.len() + 1 + id.len());
    key.push_str(app_id);
    key.push(':');
    key.push_str(id);
    key
}

/// State key of a user: `project:user` — a user is one user across the
/// apps of a project (docs/design.md §1.4; the seed counts new users per project).
pub fn user_key(app: &App, user_id: &str) -> String {
    state_key(&app.project, user_id)
}

/// The whole processing stage in memory: the reference model.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    pub rules: Arc<Rules>,
    pub devices: HashMap<String, DeviceState>,
    pub users: HashMap<String, UserState>,
}

impl Engine {
    pub fn new(rules: Arc<Rules>) -> Engine {
        Engine { rules, devices: HashMap::new(), users: HashMap::new() }
    }

    /// Processes one event through both stages, like the Kafka pipeline does
    /// when the user stage keeps up; returns the jobs it fires.
    pub fn process(&mut self, event: &Event, now_ms: i64) -> Result<Vec<Job>, Rejection> {
        let rules = Arc::clone(&self.rules);
        let app = check_event(event, &rules, now_ms)?;
        let mut jobs = Vec::new();
        let key = state_key(&event.app_id, &event.device_id);
        let mut state = self.devices.remove(&key);
        let activity = device_step(&rules, app, &mut state, event, now_ms, &mut jobs).activity.map(|a| a.to_activity());
        self.devices.insert(key, state.expect("device state"));
        if let Some(act) = activity {
            let key = user_key(app, &event.user_id);
            let mut user = self.users.remove(&key);
            user_step(&rules, app, &mut user, &act, now_ms, &mut jobs);
            self.users.insert(key, user.expect("user state"));
        }
        Ok(jobs)
    }
}
