//! `postback dlq replay`: records from a dead-letter queue back where they
//! came from — jobs onto `topics.jobs` for another round of attempts, input
//! records onto `topics.events`, keyed and partitioned as they first came.
//!
//! Guarantee: each matching record is replayed exactly once, however often
//! the command is interrupted and run again. A replay is a consumer group
//! of its own (named after the DLQ and the filter) and a transactional
//! producer: each batch of replayed records commits in one transaction
//! with the group's offsets and a [`cursor::Cursor`], so a second run
//! continues where the first one's last commit left it. Only records a
//! transaction committed count as replayed. A run reads up to the end each
//! partition had when the run began (a record that fails again is not
//! replayed again by the same run).
//!
//! Jobs start over (attempt 0, a fresh expiry) and keep their job id, so
//! partners can still de-duplicate; input records keep their bytes, and the
//! processor's event-id de-duplication holds for them. Truncated copies
//! (too large to write whole) and undecodable jobs are never replayed:
//! they are counted, and the command exits 3 when any matched.

pub mod cursor;
pub mod filter;
mod run;

pub use filter::{Dlq, Filter};
pub use run::{Progress, replay};

use serde::Serialize;

/// What to replay and how.
#[derive(Debug, Clone)]
pub struct Request {
    pub dlq: Dlq,
    pub filter: Filter,
    /// Read and count, write nothing, commit nothing.
    pub dry_run: bool,
    /// Ignore where earlier runs of this replay got to.
    pub from_start: bool,
    /// The replay's consumer group (default: named after DLQ and filter).
    pub name: Option<String>,
    /// Records per transaction: what a kill can cost in work done again.
    pub batch: usize,
}

/// Counts of records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Records read from the DLQ.
    pub read: u64,
    /// Records the filter took.
    pub matched: u64,
    /// Matched records written back and committed.
    pub replayed: u64,
    /// Matched records that cannot be replayed: truncated copies.
    pub truncated: u64,
    /// Matched records that cannot be replayed: jobs that do not decode.
    pub undecodable: u64,
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub dlq: Dlq,
    /// The DLQ topic read.
    pub topic: String,
    /// Where replayed records went.
    pub target: String,
    /// The replay's consumer group (its cursor).
    pub group: String,
    pub dry_run: bool,
    /// This run continued an interrupted one.
    pub resumed: bool,
    /// This run.
    pub run: Counts,
    /// This run and the interrupted ones it continued (read, replayed and
    /// unreplayable only: what the cursors keep).
    pub total: Counts,
    /// Where the run read each partition.
    pub partitions: Vec<PartitionRun>,
}

/// The offsets a run read in one DLQ partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PartitionRun {
    pub partition: i32,
    /// First offset read (or where reading would have started).
    pub from: i64,
    /// The run's end offset, exclusive.
    pub to: i64,
    /// Continued from an interrupted run.
    pub resumed: bool,
}

impl Summary {
    /// Matched records that were not replayed.
    pub fn not_replayed(&self) -> u64 {
        self.total.truncated + self.total.undecodable
    }

    /// The lines printed for a person.
    pub fn human(&self) -> String {
        let verb = if self.dry_run { "would replay" } else { "replayed" };
        let mut out = format!(
            "{}: read {} records of {}, {} matched, {verb} {} to {}",
            self.dlq.label(),
            self.run.read,
            self.topic,
            self.run.matched,
            self.run.replayed,
            self.target
        );
        if self.run.truncated + self.run.undecodable > 0 {
            out.push_str(&format!(
                "; not replayable: {} truncated, {} undecodable",
                self.run.truncated, self.run.undecodable
            ));
        }
        if self.resumed {
            out.push_str(&format!(
                "\nresumed an interrupted replay: {} replayed in all ({} read)",
                self.total.replayed, self.total.read
            ));
        }
        out.push_str(&format!("\ncursor: consumer group {}", self.group));
        out
    }
}

/// Why a replay stopped before its end (run it again: it resumes).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Admin(#[from] crate::kafka::admin::AdminError),
    #[error(
        "{topic} partition {partition}: no record for {seconds} s before its end offset {end} (at {at}); nothing after the last commit was lost: run the replay again to resume"
    )]
    Stalled { topic: String, partition: i32, seconds: u64, end: i64, at: i64 },
    #[error("a replay's transaction failed: {0}; nothing of that batch was written: run the replay again to resume")]
    Transaction(rdkafka::error::KafkaError),
}
