//! The transaction commit, off the processing thread. `commit_transaction`
//! mostly waits for the broker; meanwhile the processing thread polls and
//! processes the next batch, reading the committing batch's state through
//! [`super::batch::Prior`]. Only one transaction is ever open: the next one
//! begins after this one is settled (committed, or aborted and rewound).

use super::batch::{BatchOutput, StateWrites};
use super::producer::TxnProducer;
use super::stage::{Feed, Part};
use super::stats::BatchStats;
use super::txn::{self, Stop};
use crate::telemetry::Health;
use crate::telemetry::metrics::{BatchSpan, metrics};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Readiness reason while a commit waits for the broker or has failed.
pub const CANNOT_COMMIT: &str = "processor: cannot commit";

/// Stage partition -> highest changelog offset the transaction wrote.
pub type ChangelogOffsets = HashMap<Part, i64>;

/// Per input partition: an offset of a batch (its first, or the next).
pub type Offsets = BTreeMap<Feed, i64>;

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

/// What the commit thread needs besides the producer.
pub struct CommitEnv {
    pub gate: Arc<Gate>,
    pub shutdown: CancellationToken,
    pub health: Health,
}

/// A batch whose transaction is committing on its own thread.
pub struct InFlight {
    pub batch: Committing,
    handle: JoinHandle<Result<ChangelogOffsets, Stop>>,
}

impl InFlight {
    /// Commits the open transaction (records produced, offsets sent) on a
    /// new thread, retrying while the broker is away.
    pub fn spawn(
        producer: &Arc<TxnProducer>,
        env: &CommitEnv,
        out: BatchOutput,
        first: Offsets,
        started: Instant,
        records: usize,
    ) -> std::io::Result<InFlight> {
        let producer = Arc::clone(producer);
        let (gate, shutdown, health) = (Arc::clone(&env.gate), env.shutdown.clone(), env.health.clone());
        env.gate.set(true);
        let spawned = std::thread::Builder::new().name("txn-commit".into()).spawn(move || {
            let t = Instant::now();
            let result = txn::commit(&producer, &shutdown, |waited, e| {
                let detail = format!("commit waiting {}s for the broker: {e}", waited.as_secs());
                tracing::warn!(waited_s = waited.as_secs(), error = %e, "commit_transaction not done yet; retrying");
                health.block_with(CANNOT_COMMIT, detail);
            });
            metrics().batch_duration(BatchSpan::Commit, t.elapsed().as_secs_f64());
            gate.set(false);
            result.map(|()| producer.take_changelog_offsets())
        });
        let handle = spawned.inspect_err(|_| env.gate.set(false))?;
        let batch =
            Committing { first, state: out.state, positions: out.positions, stats: out.stats, records, started };
        Ok(InFlight { batch, handle })
    }

    /// Whether the commit has an outcome (`wait` would not block).
    pub fn is_settled(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits for the commit's outcome.
    pub fn wait(self) -> (Committing, Result<ChangelogOffsets, Stop>) {
        let result = self.handle.join().unwrap_or(Err(Stop::Failed(rdkafka::error::KafkaError::Canceled)));
        (self.batch, result)
    }
}

/// The first offset of each source partition among `records`.
pub fn first_offsets<'a>(records: impl IntoIterator<Item = &'a super::records::InRecord>) -> Offsets {
    let mut first = Offsets::new();
    for r in records {
        let slot = first.entry(r.feed()).or_insert(r.offset);
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
