//! One batch of the processing stage, without Kafka: decode, read state
//! (overlay over the stores, one multi_get per partition), apply the rules,
//! and produce the records to write in the transaction and the state to
//! write to the stores after it commits.
//!
//! Nothing here writes to a store: the caller does that after
//! `commit_transaction`, so a store never holds uncommitted state. While the
//! previous batch is still committing, its state is read through [`Prior`]
//! before the stores.

use super::records::{DlqInfo, InRecord, OutRecord, OutTopic, Source};
use super::stats::BatchStats;
use crate::codec::{self, JobFormat};
use crate::domain::binary::{self, BinaryError};
use crate::domain::check::check_event;
use crate::domain::engine::{device_step, state_key, user_step};
use crate::domain::{DeviceState, Event, Job, Rules, UserActivity, UserState};
use crate::kafka::admin::Layout;
use crate::kafka::partition_for;
use crate::store::{Entry, Store, StoreError, StoreKind};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Everything a committed batch changes.
#[derive(Debug, Default)]
pub struct BatchOutput {
    pub records: Vec<OutRecord>,
    /// Encoded state per store, last value per key: written to the store
    /// after the commit, and the same bytes as the changelog records.
    pub state: StateWrites,
    /// Next offset to consume, per source partition.
    pub positions: BTreeMap<(Source, i32), i64>,
    pub stats: BatchStats,
}

/// What the batch reads and how it encodes.
pub struct BatchEnv<'a> {
    pub rules: &'a Rules,
    pub layout: Layout,
    pub job_format: JobFormat,
    pub now_ms: i64,
    /// Topic names, for DLQ headers.
    pub events_topic: &'a str,
    pub user_activity_topic: &'a str,
}

pub type Stores = HashMap<(StoreKind, i32), Box<dyn Store>>;

/// Encoded state to write per store after the commit.
pub type StateWrites = BTreeMap<(StoreKind, i32), Vec<Entry>>;

/// The state written by a batch whose transaction is still committing:
/// newer than the stores, so the next batch reads it first. Should that
/// commit fail, both batches are rewound and this view is dropped with them.
#[derive(Default)]
pub struct Prior<'a> {
    values: HashMap<(StoreKind, i32), PriorValues<'a>>,
}

/// Key -> encoded state, of one store.
type PriorValues<'a> = HashMap<&'a [u8], &'a [u8]>;

impl<'a> Prior<'a> {
    pub fn new(state: &'a StateWrites) -> Prior<'a> {
        let values = state
            .iter()
            .map(|(store, entries)| (*store, entries.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect()))
            .collect();
        Prior { values }
    }

    fn get(&self, store: (StoreKind, i32), key: &[u8]) -> Option<&'a [u8]> {
        self.values.get(&store).and_then(|m| m.get(key)).copied()
    }
}

/// Reads the state a batch starts from: the committing batch's, then the
/// stores'.
#[derive(Clone, Copy)]
pub struct StateView<'a> {
    pub stores: &'a Stores,
    pub prior: &'a Prior<'a>,
}

pub fn process_batch(records: &[InRecord], view: StateView<'_>, env: &BatchEnv<'_>) -> Result<BatchOutput, StoreError> {
    let mut out = BatchOutput::default();
    for r in records {
        out.positions.insert((r.source, r.partition), r.offset + 1);
    }
    let device_records: Vec<&InRecord> = records.iter().filter(|r| r.source == Source::Events).collect();
    let user_records: Vec<&InRecord> = records.iter().filter(|r| r.source == Source::UserActivity).collect();
    device_phase(&device_records, view, env, &mut out)?;
    user_phase(&user_records, view, env, &mut out)?;
    Ok(out)
}

/// State of one partition's keys during a batch: `None` = never seen.
type Overlay<S> = HashMap<String, Option<S>>;

fn device_phase(
    records: &[&InRecord],
    view: StateView<'_>,
    env: &BatchEnv<'_>,
    out: &mut BatchOutput,
) -> Result<(), StoreError> {
    let mut valid: Vec<(&InRecord, Event)> = Vec::with_capacity(records.len());
    for r in records {
        match decode_event(r, env) {
            Ok(e) => valid.push((r, e)),
            Err((label, reason)) => dead_letter(r, env.events_topic, label, reason, env, out),
        }
    }
    let mut overlays: HashMap<i32, Overlay<DeviceState>> = HashMap::new();
    load(
        &valid,
        StoreKind::Device,
        view,
        &mut overlays,
        |(_, e)| state_key(&e.app_id, &e.device_id),
        binary::decode_device,
    )?;
    let mut dirty: HashMap<i32, HashSet<String>> = HashMap::new();
    let mut jobs = Vec::new();
    for (r, event) in &valid {
        let app = env.rules.app(&event.app_id).expect("checked by decode_event");
        let key = state_key(&event.app_id, &event.device_id);
        let slot = overlays.get_mut(&r.partition).and_then(|o| o.get_mut(&key)).expect("loaded");
        jobs.clear();
        let step = device_step(env.rules, app, slot, event, env.now_ms, &mut jobs);
        out.stats.event(app, event, &step.outcome, env.now_ms);
        if step.outcome.duplicate {
            continue;
        }
        dirty.entry(r.partition).or_default().insert(key);
        emit_jobs(&jobs, &event.device_id, env, out);
        if let Some(act) = step.activity {
            emit_activity(&act, env, out);
        }
    }
    flush_state(StoreKind::Device, overlays, dirty, binary::encode_device, out);
    Ok(())
}

fn user_phase(
    records: &[&InRecord],
    view: StateView<'_>,
    env: &BatchEnv<'_>,
    out: &mut BatchOutput,
) -> Result<(), StoreError> {
    let mut valid: Vec<(&InRecord, UserActivity)> = Vec::with_capacity(records.len());
    for r in records {
        match decode_activity(r, env) {
            Ok(a) => valid.push((r, a)),
            Err((label, reason)) => dead_letter(r, env.user_activity_topic, label, reason, env, out),
        }
    }
    let mut overlays: HashMap<i32, Overlay<UserState>> = HashMap::new();
    load(
        &valid,
        StoreKind::User,
        view,
        &mut overlays,
        |(_, a)| state_key(&a.event.app_id, &a.event.user_id),
        binary::decode_user,
    )?;
    let mut dirty: HashMap<i32, HashSet<String>> = HashMap::new();
    let mut jobs = Vec::new();
    for (r, act) in &valid {
        let app = env.rules.app(&act.event.app_id).expect("checked by decode_activity");
        let key = state_key(&act.event.app_id, &act.event.user_id);
        let slot = overlays.get_mut(&r.partition).and_then(|o| o.get_mut(&key)).expect("loaded");
        jobs.clear();
        let outcome = user_step(env.rules, app, slot, act, env.now_ms, &mut jobs);
        out.stats.triggers(&outcome.triggers);
        dirty.entry(r.partition).or_default().insert(key.clone());
        emit_jobs(&jobs, &key, env, out);
    }
    flush_state(StoreKind::User, overlays, dirty, binary::encode_user, out);
    Ok(())
}

/// Reads the state of every key the batch touches: from the committing
/// batch when it wrote the key, else one multi_get per partition.
fn load<T, S>(
    items: &[(&InRecord, T)],
    kind: StoreKind,
    view: StateView<'_>,
    overlays: &mut HashMap<i32, Overlay<S>>,
    key_of: impl Fn(&(&InRecord, T)) -> String,
    decode: fn(&[u8]) -> Result<S, BinaryError>,
) -> Result<(), StoreError> {
    let mut wanted: HashMap<i32, Vec<String>> = HashMap::new();
    for item in items {
        let partition = item.0.partition;
        let overlay = overlays.entry(partition).or_default();
        let key = key_of(item);
        if overlay.contains_key(&key) {
            continue;
        }
        match view.prior.get((kind, partition), key.as_bytes()) {
            Some(bytes) => {
                let state = decode(bytes).map_err(|e| StoreError::Corrupt {
                    path: format!("{kind}-{partition} (committing batch)"),
                    reason: format!("key {key}: {e}"),
                })?;
                overlay.insert(key, Some(state));
            }
            None => {
                overlay.insert(key.clone(), None);
                wanted.entry(partition).or_default().push(key);
            }
        }
    }
    for (partition, keys) in wanted {
        let store = view.stores.get(&(kind, partition)).ok_or_else(|| StoreError::Corrupt {
            path: format!("{kind}-{partition}"),
            reason: "no store open for an assigned partition".into(),
        })?;
        let refs: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
        let values = store.get_many(&refs)?;
        let overlay = overlays.get_mut(&partition).expect("created above");
        for (key, value) in keys.into_iter().zip(values) {
            let state = match value {
                None => None,
                Some(bytes) => Some(decode(&bytes).map_err(|e| StoreError::Corrupt {
                    path: format!("{kind}-{partition}"),
                    reason: format!("key {key}: {e}"),
                })?),
            };
            overlay.insert(key, state);
        }
    }
    Ok(())
}

/// Encodes each changed state once: the changelog record and the store write
/// carry the same bytes.
fn flush_state<S>(
    kind: StoreKind,
    mut overlays: HashMap<i32, Overlay<S>>,
    dirty: HashMap<i32, HashSet<String>>,
    encode: fn(&S, &mut Vec<u8>),
    out: &mut BatchOutput,
) {
    let topic = match kind {
        StoreKind::Device => OutTopic::DeviceChangelog,
        StoreKind::User => OutTopic::UserChangelog,
    };
    for (partition, keys) in dirty {
        let overlay = overlays.get_mut(&partition).expect("dirty keys were loaded");
        let writes = out.state.entry((kind, partition)).or_default();
        for key in keys {
            let Some(Some(state)) = overlay.remove(&key) else { continue };
            let mut value = Vec::with_capacity(256);
            encode(&state, &mut value);
            let key = key.into_bytes();
            out.records.push(OutRecord { topic, partition, key: key.clone(), value: value.clone(), dlq: None });
            writes.push((key, value));
        }
    }
}

fn emit_jobs(jobs: &[Job], key: &str, env: &BatchEnv<'_>, out: &mut BatchOutput) {
    for job in jobs {
        out.stats.job(job);
        let partition = partition_for(key.as_bytes(), env.layout.jobs);
        let value = codec::encode_job(job, env.job_format);
        out.records.push(OutRecord {
            topic: OutTopic::Jobs,
            partition,
            key: key.as_bytes().to_vec(),
            value,
            dlq: None,
        });
    }
}

fn emit_activity(act: &UserActivity, env: &BatchEnv<'_>, out: &mut BatchOutput) {
    let key = state_key(&act.event.app_id, &act.event.user_id).into_bytes();
    let partition = partition_for(&key, env.layout.user_activity);
    let mut value = Vec::with_capacity(512);
    binary::encode_activity(act, &mut value);
    out.records.push(OutRecord { topic: OutTopic::UserActivity, partition, key, value, dlq: None });
}

type Rejected = (&'static str, String);

fn decode_event(r: &InRecord, env: &BatchEnv<'_>) -> Result<Event, Rejected> {
    let bytes = r.value.as_deref().ok_or(("undecodable", "empty record (no value)".to_owned()))?;
    let event = codec::decode_event(bytes).map_err(|e| (e.label(), e.to_string()))?;
    check_event(&event, env.rules, env.now_ms).map_err(|e| (e.label(), e.to_string()))?;
    Ok(event)
}

fn decode_activity(r: &InRecord, env: &BatchEnv<'_>) -> Result<UserActivity, Rejected> {
    let bytes = r.value.as_deref().ok_or(("undecodable", "empty record (no value)".to_owned()))?;
    let act = binary::decode_activity(bytes).map_err(|e| ("undecodable", format!("user activity: {e}")))?;
    if env.rules.app(&act.event.app_id).is_none() {
        return Err(("unknown_app", format!("unknown app '{}': not in the config's [[apps]]", act.event.app_id)));
    }
    Ok(act)
}

fn dead_letter(
    r: &InRecord,
    source_topic: &str,
    label: &'static str,
    reason: String,
    env: &BatchEnv<'_>,
    out: &mut BatchOutput,
) {
    tracing::warn!(topic = source_topic, partition = r.partition, offset = r.offset, reason = %reason, "record sent to the dlq");
    out.stats.invalid(label);
    let partition = match &r.key {
        Some(k) => partition_for(k, env.layout.events_dlq),
        None => r.partition % env.layout.events_dlq,
    };
    out.records.push(OutRecord {
        topic: OutTopic::EventsDlq,
        partition,
        key: r.key.clone().unwrap_or_default(),
        value: r.value.clone().unwrap_or_default(),
        dlq: Some(DlqInfo {
            error: reason,
            source_topic: source_topic.to_owned(),
            source_partition: r.partition,
            source_offset: r.offset,
        }),
    });
}
