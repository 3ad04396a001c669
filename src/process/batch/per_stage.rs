//! The per-stage batch step, written once: decode the stage's records (bad
//! ones to the DLQ), read the state of every key they touch, apply the
//! rules in record order, and hand back each changed state once. What
//! differs between the device and the user stage is the [`StageStep`]
//! implementation: how a record decodes, which key it touches, the state
//! codec, and the rules applied.

use super::env::{BatchEnv, StateView};
use super::output::BatchOutput;
use crate::codec;
use crate::domain::binary::{self, BinaryError};
use crate::domain::check::check_event;
use crate::domain::engine::{device_step, state_key, user_key, user_step};
use crate::domain::reject::{DlqReason, Rejected};
use crate::domain::{DeviceState, Event, Job, Rules, UserActivity, UserState};
use crate::process::records::InRecord;
use crate::process::stage::{Part, Stage};
use crate::store::StoreError;
use std::collections::BTreeMap;

/// What one stage does with one record.
pub trait StageStep {
    const STAGE: Stage;
    /// A decoded, checked input record.
    type Input;
    /// The state of one key.
    type State;

    /// Decodes and checks a record; a rejection sends it to the DLQ.
    fn decode(r: &InRecord, env: &BatchEnv<'_>) -> Result<Self::Input, Rejected>;
    /// The state key the input touches (`app:device`, `project:user`).
    fn key(input: &Self::Input, rules: &Rules) -> String;
    fn decode_state(bytes: &[u8]) -> Result<Self::State, BinaryError>;
    fn encode_state(state: &Self::State, out: &mut Vec<u8>);
    /// Applies the input to its key's state and emits what it fires (jobs,
    /// forwarded records, counts); `jobs` is scratch space. Returns whether
    /// the state changed.
    fn apply(
        input: &Self::Input,
        key: &str,
        state: &mut Option<Self::State>,
        env: &BatchEnv<'_>,
        jobs: &mut Vec<Job>,
        out: &mut BatchOutput,
    ) -> bool;
}

/// The device stage: events keyed by device.
pub struct DeviceRecords;

impl StageStep for DeviceRecords {
    const STAGE: Stage = Stage::Device;
    type Input = Event;
    type State = DeviceState;

    fn decode(r: &InRecord, env: &BatchEnv<'_>) -> Result<Event, Rejected> {
        let bytes =
            r.value.as_deref().ok_or_else(|| Rejected::new(DlqReason::Undecodable, "empty record (no value)"))?;
        let size = r.size();
        if size > env.max_record_bytes {
            let reason = format!("record of {size} bytes is over input.max_record_bytes ({})", env.max_record_bytes);
            return Err(Rejected::new(DlqReason::RecordTooLarge, reason));
        }
        let event =
            codec::decode_event_with(bytes, &env.decode).map_err(|e| Rejected::new(e.reason(), e.to_string()))?;
        check_event(&event, env.rules, env.now_ms).map_err(|e| Rejected::new(e.reason(), e.to_string()))?;
        check_key(r.key.as_deref(), &event)?;
        Ok(event)
    }

    fn key(event: &Event, _rules: &Rules) -> String {
        state_key(&event.app_id, &event.device_id)
    }

    fn decode_state(bytes: &[u8]) -> Result<DeviceState, BinaryError> {
        binary::decode_device(bytes)
    }

    fn encode_state(state: &DeviceState, out: &mut Vec<u8>) {
        binary::encode_device(state, out);
    }

    fn apply(
        event: &Event,
        _key: &str,
        state: &mut Option<DeviceState>,
        env: &BatchEnv<'_>,
        jobs: &mut Vec<Job>,
        out: &mut BatchOutput,
    ) -> bool {
        let app = env.rules.app(&event.app_id).expect("checked by decode");
        let step = device_step(env.rules, app, state, event, env.now_ms, jobs);
        out.stats.event(app, event, &step.outcome, env.now_ms);
        if step.outcome.duplicate {
            return false;
        }
        out.jobs(jobs, &event.device_id, env);
        if let Some(act) = step.activity {
            let mut value = Vec::with_capacity(512);
            binary::encode_activity_ref(&act, &mut value);
            let key = user_key(app, &act.event.user_id).into_bytes();
            out.forward(Stage::User, key, value, env.layout.user_activity);
        }
        true
    }
}

/// A device's state lives in the partition its records arrive on, so every
/// record of a device must carry its device id as the key (the default
/// partitioner then sends them all to one partition). A record keyed
/// otherwise would create a second state for the device in another
/// partition — a second install — so it goes to the DLQ instead.
fn check_key(key: Option<&[u8]>, event: &Event) -> Result<(), Rejected> {
    if key == Some(event.device_id.as_bytes()) {
        return Ok(());
    }
    let shown = match key {
        None => "no key".to_owned(),
        Some(k) => format!("key '{}'", super::dlq::cut(&String::from_utf8_lossy(k), 128)),
    };
    Err(Rejected::new(
        DlqReason::KeyMismatch,
        format!(
            "record has {shown}, not the event's device_id '{}': every record of a device must be keyed by its device_id",
            event.device_id
        ),
    ))
}

/// The user stage: events with a user id, repartitioned by user, carrying
/// their device's attribution.
pub struct UserRecords;

impl StageStep for UserRecords {
    const STAGE: Stage = Stage::User;
    type Input = UserActivity;
    type State = UserState;

    fn decode(r: &InRecord, env: &BatchEnv<'_>) -> Result<UserActivity, Rejected> {
        let bytes =
            r.value.as_deref().ok_or_else(|| Rejected::new(DlqReason::Undecodable, "empty record (no value)"))?;
        let act = binary::decode_activity(bytes)
            .map_err(|e| Rejected::new(DlqReason::Undecodable, format!("user activity: {e}")))?;
        if env.rules.app(&act.event.app_id).is_none() {
            let detail = format!("unknown app '{}': not in the config's [[apps]]", act.event.app_id);
            return Err(Rejected::new(DlqReason::UnknownApp, detail));
        }
        Ok(act)
    }

    fn key(act: &UserActivity, rules: &Rules) -> String {
        let app = rules.app(&act.event.app_id).expect("checked by decode");
        user_key(app, &act.event.user_id)
    }

    fn decode_state(bytes: &[u8]) -> Result<UserState, BinaryError> {
        binary::decode_user(bytes)
    }

    fn encode_state(state: &UserState, out: &mut Vec<u8>) {
        binary::encode_user(state, out);
    }

    fn apply(
        act: &UserActivity,
        key: &str,
        state: &mut Option<UserState>,
        env: &BatchEnv<'_>,
        jobs: &mut Vec<Job>,
        out: &mut BatchOutput,
    ) -> bool {
        let app = env.rules.app(&act.event.app_id).expect("checked by decode");
        let outcome = user_step(env.rules, app, state, act, env.now_ms, jobs);
        out.stats.triggers(&outcome.triggers);
        out.jobs(jobs, key, env);
        true
    }
}

/// A key's state during a batch.
enum Slot<S> {
    /// `None`: never seen. `dirty`: changed by this batch.
    Loaded { state: Option<S>, dirty: bool },
    /// The stored bytes do not decode: the key's records go to the DLQ and
    /// the stored value stays as it is, for someone to look at.
    Corrupt(String),
}

/// The keys a batch touches, each once: a record finds its key's slot by
/// index, so each key is hashed once per record (and once more in the
/// committing batch's view when first seen). foldhash, not SipHash: its
/// per-process random seed still keeps crafted device ids from colliding.
struct Keys<'v, S> {
    /// Per key: its partition, the key, its state.
    slots: Vec<(i32, &'v str, Slot<S>)>,
    /// Per valid record: the index of its key's slot.
    of_record: Vec<usize>,
}

type Index<'v> = foldhash::HashMap<(i32, &'v str), usize>;

/// Runs one stage's records of a batch. Fails only when a store cannot be
/// read.
pub fn run<S: StageStep>(
    records: &[&InRecord],
    view: StateView<'_>,
    env: &BatchEnv<'_>,
    out: &mut BatchOutput,
) -> Result<(), StoreError> {
    // each record's state key, derived once
    let mut valid: Vec<(&InRecord, S::Input, String)> = Vec::with_capacity(records.len());
    for r in records {
        match S::decode(r, env) {
            Ok(input) => {
                let key = S::key(&input, env.rules);
                valid.push((r, input, key));
            }
            Err(rejected) => out.dead_letter(r, rejected, env),
        }
    }
    let mut keys = load::<S>(&valid, view)?;
    let mut jobs = Vec::new();
    for ((r, input, key), &slot) in valid.iter().zip(&keys.of_record) {
        match &mut keys.slots[slot].2 {
            Slot::Corrupt(detail) => out.dead_letter(r, Rejected::new(DlqReason::CorruptState, detail.clone()), env),
            Slot::Loaded { state, dirty } => {
                jobs.clear();
                if S::apply(input, key, state, env, &mut jobs, out) {
                    *dirty = true;
                }
            }
        }
    }
    for (partition, key, slot) in keys.slots {
        if let Slot::Loaded { state: Some(state), dirty: true } = slot {
            let mut value = Vec::with_capacity(256);
            S::encode_state(&state, &mut value);
            out.state(Part::new(S::STAGE, partition), key.as_bytes().to_vec(), value);
        }
    }
    Ok(())
}

/// Reads the state of every key the records touch: from the committing
/// batch when it wrote the key, else with one multi_get per partition.
fn load<'v, S: StageStep>(
    items: &'v [(&InRecord, S::Input, String)],
    view: StateView<'_>,
) -> Result<Keys<'v, S::State>, StoreError> {
    // sized for one key per record: a state is large, and growing the
    // vector by doubling copied each one several times
    let mut keys = Keys { slots: Vec::with_capacity(items.len()), of_record: Vec::with_capacity(items.len()) };
    let mut index = Index::with_capacity_and_hasher(items.len(), Default::default());
    // per partition: the slots to read from its store
    let mut wanted: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for (r, _, key) in items {
        let next = keys.slots.len();
        let slot = *index.entry((r.partition, key.as_str())).or_insert(next);
        keys.of_record.push(slot);
        if slot != next {
            continue;
        }
        let part = Part::new(S::STAGE, r.partition);
        match view.prior.get(part, key.as_bytes()) {
            Some(bytes) => keys.slots.push((r.partition, key, decoded::<S>(bytes, key, part))),
            None => {
                keys.slots.push((r.partition, key, Slot::Loaded { state: None, dirty: false }));
                wanted.entry(r.partition).or_default().push(slot);
            }
        }
    }
    for (partition, slots) in wanted {
        let part = Part::new(S::STAGE, partition);
        let store = view.stores.store(part).ok_or_else(|| StoreError::Missing(part.to_string()))?;
        let refs: Vec<&[u8]> = slots.iter().map(|&i| keys.slots[i].1.as_bytes()).collect();
        let values = store.get_many(&refs)?;
        for (i, value) in slots.into_iter().zip(values) {
            if let Some(bytes) = value {
                let key = keys.slots[i].1;
                keys.slots[i].2 = decoded::<S>(&bytes, key, part);
            }
        }
    }
    Ok(keys)
}

fn decoded<S: StageStep>(bytes: &[u8], key: &str, part: Part) -> Slot<S::State> {
    match S::decode_state(bytes) {
        Ok(state) => Slot::Loaded { state: Some(state), dirty: false },
        Err(e) => {
            tracing::error!(store = %part, key, error = %e, "stored state does not decode; the key's records go to the dlq");
            Slot::Corrupt(format!("stored state of '{key}' in store {part} does not decode: {e}"))
        }
    }
}
