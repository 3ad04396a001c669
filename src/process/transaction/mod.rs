//! The transaction of each batch (docs/design.md §3.2): this module owns
//! the transactional producer, the batch whose transaction is committing,
//! the commit thread, recovery and stall detection. One cycle, for one
//! batch (the next batch is polled and processed while this one commits):
//!
//! ```text
//!   settle the batch in flight ──committed──► write its state to the stores
//!        │ failed: abort, drop both batches' state, rewind to their first offsets
//!        │ the producer cannot go on: replace it, resync every store
//!        ▼
//!   begin ─► produce jobs, forwarded records, changelog records ─► (commit thread)
//!        send the input offsets with the group metadata ─► commit
//!        │ begin or produce failed: the same recovery as a failed commit
//! ```
//!
//! [`Transaction::cycle`] is that, in code; the files below are its steps:
//! [`calls`] (librdkafka's transactional calls, retried while the broker is
//! away), [`commit`] (the commit thread), [`recover`] (the ways back),
//! [`stall`] (readiness while a call blocks), [`producer`] (the producer).

pub mod calls;
pub mod commit;
pub mod producer;
mod recover;
pub mod stall;

use super::ProcessError;
use super::batch::{BatchOutput, Prior, StateWrites};
use super::records::{Offsets, OutRecord, earliest};
use super::source::BatchSource;
use super::stage::Feed;
use crate::config::Config;
use crate::kafka::client;
use crate::process::gate::Gate;
use crate::store::{StoreError, StoreMeta};
use crate::telemetry::metrics::{BatchSpan, metrics};
use crate::telemetry::{Health, Reason};
use calls::Stop;
use commit::{Batch, ChangelogOffsets, CommitEnv, HUNG_AFTER, InFlight, Outcome, TxnOffsets};
use producer::{Topics, TxnProducer};
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};
use stall::StallWatch;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// A processed batch, ready for its transaction.
pub struct Processed {
    /// The batch's output; an error when a store could not be read.
    pub out: Result<BatchOutput, StoreError>,
    /// First offset per partition read: where a failure rewinds to.
    pub first: Offsets,
    pub started: Instant,
    pub records: usize,
}

pub struct Transaction {
    /// Settings that cannot change without a restart.
    fixed: Arc<Config>,
    producer: Arc<TxnProducer>,
    /// When the open transaction began (how old it is decides what a
    /// fatal error means, see [`calls::verdict`]).
    began: Instant,
    /// The batch whose transaction is committing, if any.
    in_flight: Option<InFlight>,
    env: CommitEnv,
    /// Reports on readiness when a call to the broker blocks this thread.
    stall: StallWatch,
    health: Health,
    shutdown: CancellationToken,
}

impl Transaction {
    /// `gate` is the consumer's: a revocation waits for the commit in flight.
    pub fn new(
        fixed: Arc<Config>,
        gate: Arc<Gate>,
        health: Health,
        shutdown: CancellationToken,
    ) -> Result<Transaction, ProcessError> {
        let producer = Arc::new(new_producer(&fixed)?);
        let stall = StallWatch::spawn(health.clone()).map_err(ProcessError::Thread)?;
        let env = CommitEnv { gate, shutdown: shutdown.clone(), health: health.clone(), stall: stall.handle() };
        Ok(Transaction { fixed, producer, began: Instant::now(), in_flight: None, env, stall, health, shutdown })
    }

    /// `init_transactions`: fences a previous incarnation with this
    /// transactional.id and settles what it left open; waits for a broker
    /// that is not there yet. False: shutting down.
    pub fn init(&self) -> Result<bool, ProcessError> {
        match self.stall.during("init_transactions", || calls::init(&self.producer, &self.shutdown)) {
            Ok(()) => Ok(true),
            Err(Stop::Shutdown) => Ok(false),
            Err(Stop::Failed(e)) => Err(e.into()),
        }
    }

    /// The state the committing batch wrote: newer than the stores.
    pub fn prior(&self) -> Prior<'_> {
        self.in_flight.as_ref().map_or_else(Prior::default, |f| Prior::new(&f.batch.state))
    }

    /// Whether a new transaction could begin now (no commit in flight, or
    /// it has its outcome).
    pub fn slot_free(&self) -> bool {
        self.in_flight.as_ref().is_none_or(InFlight::is_settled)
    }

    /// One batch's turn: settles the batch in flight, then opens this
    /// batch's transaction and hands its commit to the commit thread.
    pub fn cycle(&mut self, source: &mut BatchSource, batch: Processed) -> Result<(), ProcessError> {
        let settling = Instant::now();
        if !self.settle(source, &batch.first)? {
            // the previous batch was rewound, and this one with it
            return Ok(());
        }
        tracing::debug!(
            records = batch.records,
            process_ms = settling.duration_since(batch.started).as_millis() as u64,
            settle_ms = settling.elapsed().as_millis() as u64,
            "batch processed"
        );
        let out = batch.out?;
        self.open(source, out, batch.first, batch.started, batch.records)
    }

    /// Begins a transaction with `out`'s records and positions and hands
    /// its commit to the commit thread.
    pub fn open(
        &mut self,
        source: &mut BatchSource,
        out: BatchOutput,
        first: Offsets,
        started: Instant,
        records: usize,
    ) -> Result<(), ProcessError> {
        self.began = Instant::now();
        let produced = self.stall.during("begin_transaction and produce", || {
            self.producer.inner.begin_transaction().and_then(|()| self.produce(source, &out.records, &out.positions))
        });
        let offsets = match produced {
            Ok(offsets) => offsets,
            Err(e) => {
                tracing::warn!(error = %e, records, "transaction failed before its commit");
                return self.recover(source, &first, Stop::Failed(e));
            }
        };
        let batch = Batch { out, offsets, first, started, records };
        self.in_flight = Some(InFlight::spawn(&self.producer, &self.env, batch).map_err(ProcessError::Thread)?);
        Ok(())
    }

    /// Waits for the committing batch, if any. Committed: its state goes to
    /// the stores. Failed: the transaction is aborted and the consumer
    /// rewound to the first offsets of that batch and of `next` (the batch
    /// processed meanwhile, now void); returns false.
    pub fn settle(&mut self, source: &mut BatchSource, next: &Offsets) -> Result<bool, ProcessError> {
        let Some(in_flight) = self.in_flight.take() else { return Ok(true) };
        let (batch, outcome) = in_flight.wait(HUNG_AFTER);
        match outcome {
            Outcome::Committed(changelog) => {
                metrics().transaction(true);
                self.health.unblock(Reason::CannotCommit);
                source.note_committed(&batch.positions);
                write_stores(source, batch.state, &batch.positions, &changelog)?;
                batch.stats.publish(&self.fixed.topics);
                metrics().batch_duration(BatchSpan::Process, batch.started.elapsed().as_secs_f64());
                metrics().batch_records(batch.records);
                Ok(true)
            }
            Outcome::Failed(e) => {
                tracing::warn!(error = %e, records = batch.records, "commit failed");
                self.recover(source, &earliest(batch.first, next), e)?;
                Ok(false)
            }
            Outcome::Hung(silent) => {
                self.recover_hung(source, silent)?;
                Ok(false)
            }
        }
    }

    /// Queues the batch's records; returns its input offsets with the
    /// group metadata, for the commit thread to add to the transaction.
    fn produce(&self, source: &BatchSource, out: &[OutRecord], positions: &Offsets) -> Result<TxnOffsets, KafkaError> {
        for rec in out {
            self.producer.send(rec)?;
        }
        let mut tpl = TopicPartitionList::new();
        for (feed, next) in positions {
            tpl.add_partition_offset(feed.topic(&self.fixed.topics), feed.partition, Offset::Offset(*next))?;
        }
        let group = source.group_metadata().ok_or(KafkaError::Canceled)?;
        Ok(TxnOffsets { offsets: tpl, group })
    }
}

/// After the commit: each store gets its batch's state and the offsets it
/// now reflects, atomically. Stores revoked meanwhile are skipped: their
/// next owner restores the state from the changelog.
fn write_stores(
    source: &mut BatchSource,
    state: StateWrites,
    positions: &Offsets,
    changelog: &ChangelogOffsets,
) -> Result<(), ProcessError> {
    for (key, writes) in state {
        let Some((store, meta)) = source.parts_mut().ready_mut(key) else { continue };
        let next = StoreMeta {
            input_offset: positions.get(&Feed::input(key)).copied().or(meta.input_offset),
            changelog_offset: changelog.get(&key).map_or(meta.changelog_offset, |o| o + 1),
        };
        let mut puts: Vec<(&[u8], &[u8])> = writes.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
        // in key order, each memtable insert starts its skip-list search
        // where the previous one ended instead of at the top
        puts.sort_unstable_by_key(|(k, _)| *k);
        store.write(&puts, next)?;
        *meta = next;
    }
    Ok(())
}

/// A transactional producer for this instance (`transactional.id` =
/// `<group_id>-<instance_id>`), not yet initialised.
fn new_producer(config: &Config) -> Result<TxnProducer, KafkaError> {
    TxnProducer::new(&client::transactional_producer(config), Topics::new(config))
}
