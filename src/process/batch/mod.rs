//! One batch of the processing stage, without Kafka: each stage's records
//! are decoded, their state read (overlay over the stores, one multi_get per
//! partition), the rules applied, and the output collected: the records to
//! produce in the transaction and the state to write to the stores after it
//! commits. [`per_stage`] holds the per-stage step, [`env`] what a batch reads,
//! [`output`] what it produces.
//!
//! Nothing here writes to a store: the caller does that after
//! `commit_transaction`, so a store never holds uncommitted state. While the
//! previous batch is still committing, its state is read through [`Prior`]
//! before the stores.

mod dlq;
pub mod env;
pub mod output;
mod per_stage;

#[cfg(test)]
pub use env::Stores;
pub use env::{BatchEnv, Prior, StateView, StateWrites, StoreLookup};
pub use output::BatchOutput;

use crate::config::Partitioning;
use crate::kafka::partition_for;
use crate::process::records::InRecord;
use crate::process::stage::{Stage, Via};
use crate::store::StoreError;
use per_stage::{DeviceRecords, UserRecords};

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
            Stage::Device => per_stage::run::<DeviceRecords>(&of_stage, view, env, &mut out)?,
            Stage::User => per_stage::run::<UserRecords>(&of_stage, view, env, &mut out)?,
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
    if r.stage != Stage::Device || r.via != Via::Input || size > env.max_record_bytes || !keyed_by_device {
        return None;
    }
    let target = match &r.key {
        Some(key) => partition_for(key, state_partitions),
        None => r.partition % state_partitions,
    };
    (target != r.partition).then_some(target)
}

#[cfg(test)]
mod tests;
