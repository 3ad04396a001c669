//! One batch of the processing stage, without Kafka: each stage's records
//! are decoded, their state read (overlay over the stores, one multi_get per
//! partition), the rules applied, and the output collected: the records to
//! produce in the transaction and the state to write to the stores after it
//! commits. [`super::step`] holds the per-stage step; this module the types
//! it works on.
//!
//! Nothing here writes to a store: the caller does that after
//! `commit_transaction`, so a store never holds uncommitted state. While the
//! previous batch is still committing, its state is read through [`Prior`]
//! before the stores.

use super::records::{Dest, InRecord, OutRecord};
use super::stage::{Feed, Part, Source, Stage};
use super::stats::BatchStats;
use super::step::{self, DeviceStep, UserStep};
use crate::codec::{self, DecodeOptions, JobEncoding};
use crate::config::{Partitioning, TopicsConfig};
use crate::domain::{Job, Rules};
use crate::kafka::admin::Layout;
use crate::kafka::partition_for;
use crate::store::{Entry, Store, StoreError};
use std::collections::{BTreeMap, HashMap};

/// Everything a committed batch changes.
#[derive(Debug, Default)]
pub struct BatchOutput {
    pub records: Vec<OutRecord>,
    /// Encoded state per store, last value per key: written to the store
    /// after the commit, and the same bytes as the changelog records.
    pub state: StateWrites,
    /// Next offset to consume, per partition read.
    pub positions: BTreeMap<Feed, i64>,
    pub stats: BatchStats,
}

/// What the batch reads and how it encodes.
pub struct BatchEnv<'a> {
    pub rules: &'a Rules,
    pub topics: &'a TopicsConfig,
    pub layout: Layout,
    pub job_format: JobEncoding,
    /// `[input]`: how events decode, and the largest record read at all.
    pub decode: DecodeOptions,
    pub max_record_bytes: usize,
    /// `input.partitioned_by`: whether a record's key says its state partition.
    pub partitioning: Partitioning,
    pub now_ms: i64,
}

pub type Stores = HashMap<Part, Box<dyn Store>>;

/// Encoded state to write per store after the commit.
pub type StateWrites = BTreeMap<Part, Vec<Entry>>;

/// The state written by a batch whose transaction is still committing:
/// newer than the stores, so the next batch reads it first. Should that
/// commit fail, both batches are rewound and this view is dropped with them.
#[derive(Default)]
pub struct Prior<'a> {
    values: HashMap<Part, foldhash::HashMap<&'a [u8], &'a [u8]>>,
}

impl<'a> Prior<'a> {
    pub fn new(state: &'a StateWrites) -> Prior<'a> {
        let values = state
            .iter()
            .map(|(part, entries)| (*part, entries.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect()))
            .collect();
        Prior { values }
    }

    pub(super) fn get(&self, part: Part, key: &[u8]) -> Option<&'a [u8]> {
        self.values.get(&part).and_then(|m| m.get(key)).copied()
    }
}

/// Reads the state a batch starts from: the committing batch's, then the
/// stores'.
#[derive(Clone, Copy)]
pub struct StateView<'a> {
    pub stores: &'a Stores,
    pub prior: &'a Prior<'a>,
}

/// Processes one batch: the device stage's records, then the user stage's.
/// Fails only when a store cannot be read.
pub fn process_batch(records: &[InRecord], view: StateView<'_>, env: &BatchEnv<'_>) -> Result<BatchOutput, StoreError> {
    let mut out = BatchOutput::default();
    let mut here = Vec::with_capacity(records.len());
    for r in records {
        out.positions.insert(r.feed(), r.offset + 1);
        match repartition_target(r, env) {
            Some(partition) => out.repartition(r, partition),
            None => here.push(r),
        }
    }
    for stage in Stage::ALL {
        let of_stage: Vec<&InRecord> = here.iter().copied().filter(|r| r.stage == stage).collect();
        if of_stage.is_empty() {
            continue;
        }
        match stage {
            Stage::Device => step::run::<DeviceStep>(&of_stage, view, env, &mut out)?,
            Stage::User => step::run::<UserStep>(&of_stage, view, env, &mut out)?,
        }
    }
    Ok(out)
}

/// The device state partition an input record belongs to, when it is not
/// the partition it was read from: `murmur2(key) % K`, as the producer's
/// default partitioner places it while the input has `K` partitions (with
/// `input.partitioned_by = "custom"`, where it arrives). A
/// record without a key is processed where it is (or, on an input
/// partition without state, in `partition % K`): its key check sends it to
/// the DLQ either way. So is a record over `input.max_record_bytes`, which
/// the repartition topic might not take.
pub fn repartition_target(r: &InRecord, env: &BatchEnv<'_>) -> Option<i32> {
    let state_partitions = env.layout.device_state;
    let size = r.size();
    let keyed_by_device = env.partitioning == Partitioning::DeviceId;
    if r.stage != Stage::Device || r.source != Source::Input || size > env.max_record_bytes || !keyed_by_device {
        return None;
    }
    let target = match &r.key {
        Some(key) => partition_for(key, state_partitions),
        None => r.partition % state_partitions,
    };
    (target != r.partition).then_some(target)
}

/// Why a record cannot be processed: a bounded label for metrics, and the
/// reason for the DLQ header.
pub type Rejected = (&'static str, String);

impl BatchOutput {
    pub(super) fn jobs(&mut self, jobs: &[Job], key: &str, env: &BatchEnv<'_>) {
        for job in jobs {
            let rec = OutRecord {
                dest: Dest::Jobs,
                partition: partition_for(key.as_bytes(), env.layout.jobs),
                key: key.as_bytes().to_vec(),
                value: codec::encode_job(job, env.job_format),
                headers: Vec::new(),
            };
            if rec.size() > env.layout.limits.jobs {
                self.oversized_job(job, rec, env);
                continue;
            }
            self.stats.job(job);
            self.records.push(rec);
        }
    }

    /// An input record, unchanged, to the device repartition topic.
    fn repartition(&mut self, r: &InRecord, partition: i32) {
        self.stats.repartitioned();
        self.records.push(OutRecord {
            dest: Dest::Repartition,
            partition,
            key: r.key.clone().unwrap_or_default(),
            value: r.value.clone().unwrap_or_default(),
            headers: Vec::new(),
        });
    }

    /// A record for the input of `stage`, keyed and partitioned by `key`.
    pub(super) fn forward(&mut self, stage: Stage, key: Vec<u8>, value: Vec<u8>, partitions: i32) {
        let partition = partition_for(&key, partitions);
        self.records.push(OutRecord { dest: Dest::Input(stage), partition, key, value, headers: Vec::new() });
    }

    /// A changed state: its changelog record, and the store write after the
    /// commit, with the same bytes.
    pub(super) fn state(&mut self, part: Part, key: Vec<u8>, value: Vec<u8>) {
        self.records.push(OutRecord {
            dest: Dest::Changelog(part.stage),
            partition: part.partition,
            key: key.clone(),
            value: value.clone(),
            headers: Vec::new(),
        });
        self.state.entry(part).or_default().push((key, value));
    }
}

#[cfg(test)]
mod tests;
