//! The transaction commit, off the processing thread. `commit_transaction`
//! mostly waits for the broker; meanwhile the processing thread polls and
//! processes the next batch, reading the committing batch's state through
//! [`super::batch::Prior`]. Only one transaction is ever open: the next one
//! begins after this one is settled (committed, or aborted and rewound).

use super::batch::{BatchOutput, StateWrites};
use super::producer::TxnProducer;
use super::stage::Part;
use super::stats::BatchStats;
use crate::telemetry::metrics::{BatchSpan, metrics};
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Stage partition -> highest changelog offset the transaction wrote.
pub type ChangelogOffsets = HashMap<Part, i64>;

/// Per input partition: an offset of a batch (its first, or the next).
pub type Offsets = BTreeMap<Part, i64>;

/// Whether a commit is in flight. The revocation callback waits on it, so a
/// partition leaves only once its last transaction has an outcome.
#[derive(Default)]
pub struct Gate {
    busy: Mutex<bool>,
    idle: Condvar,
}

impl Gate {
    fn set(&self, busy: bool) {
        *self.busy.lock().expect("gate lock") = busy;
        if !busy {
            self.idle.notify_all();
        }
    }

    /// Blocks until no commit is in flight or `timeout` passed.
    pub fn wait_idle(&self, timeout: Duration) {
        let busy = self.busy.lock().expect("gate lock");
        let _ = self.idle.wait_timeout_while(busy, timeout, |b| *b).expect("gate lock");
    }
}

/// What a committed batch still has to do on the processing thread.
pub struct Committing {
    /// First offset per source partition: where a failed commit rewinds to.
    pub first: Offsets,
    pub state: StateWrites,
    pub positions: Offsets,
    pub stats: BatchStats,
    pub records: usize,
    pub started: Instant,
}

/// A batch whose transaction is committing on its own thread.
pub struct InFlight {
    pub batch: Committing,
    handle: JoinHandle<Result<ChangelogOffsets, KafkaError>>,
}

impl InFlight {
    /// Commits the open transaction (records produced, offsets sent) on a
    /// new thread.
    pub fn spawn(
        producer: &Arc<TxnProducer>,
        gate: &Arc<Gate>,
        timeout: Duration,
        out: BatchOutput,
        first: Offsets,
        started: Instant,
        records: usize,
    ) -> std::io::Result<InFlight> {
        let (producer, thread_gate) = (Arc::clone(producer), Arc::clone(gate));
        gate.set(true);
        let spawned = std::thread::Builder::new().name("txn-commit".into()).spawn(move || {
            let t = Instant::now();
            let result = producer.inner.commit_transaction(timeout).map(|()| producer.take_changelog_offsets());
            metrics().batch_duration(BatchSpan::Commit, t.elapsed().as_secs_f64());
            thread_gate.set(false);
            result
        });
        let handle = spawned.inspect_err(|_| gate.set(false))?;
        let batch =
            Committing { first, state: out.state, positions: out.positions, stats: out.stats, records, started };
        Ok(InFlight { batch, handle })
    }

    /// Waits for the commit's outcome.
    pub fn wait(self) -> (Committing, Result<ChangelogOffsets, KafkaError>) {
        let result = self.handle.join().unwrap_or(Err(KafkaError::Canceled));
        (self.batch, result)
    }
}

/// The first offset of each source partition among `records`.
pub fn first_offsets<'a>(records: impl IntoIterator<Item = &'a super::records::InRecord>) -> Offsets {
    let mut first = Offsets::new();
    for r in records {
        let slot = first.entry(r.part()).or_insert(r.offset);
        *slot = (*slot).min(r.offset);
    }
    first
}

/// Where to rewind when two batches are lost at once: per partition, the
/// earlier of their first offsets.
pub fn earliest(mut a: Offsets, b: &Offsets) -> Offsets {
    for (k, v) in b {
        let slot = a.entry(*k).or_insert(*v);
        *slot = (*slot).min(*v);
    }
    a
}
