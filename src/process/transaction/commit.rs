//! The transaction commit, off the processing thread. `commit_transaction`
//! mostly waits for the broker; meanwhile the processing thread polls and
//! processes the next batch, reading the committing batch's state through
//! [`crate::process::batch::Prior`]. Only one transaction is ever open: the
//! next one begins after this one is settled (committed, or aborted and
//! rewound).

use super::calls::{self as txn, Stop};
use super::producer::TxnProducer;
use super::stall::StallHandle;
use crate::process::batch::{BatchOutput, StateWrites};
use crate::process::gate::Gate;
use crate::process::records::Offsets;
use crate::process::stage::Part;
use crate::process::stats::BatchStats;
use crate::telemetry::metrics::{BatchSpan, metrics};
use crate::telemetry::{Health, Reason};
use rdkafka::producer::Producer;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Stage partition -> highest changelog offset the transaction wrote.
pub type ChangelogOffsets = HashMap<Part, i64>;

/// How long a commit thread may go without a call returning before the
/// producer is taken for dead. Each call waits at most 2 × [`txn::CALL_WAIT`]
/// and a broker that is away only makes it return with a retriable error,
/// so a call that has not returned for this long is stuck inside the
/// client library: `send_offsets_to_transaction` was caught (gdb) waiting
/// for its answer without a limit after the broker came back from a pause.
/// The stage then replaces the producer, as it does after a fatal error;
/// the stuck thread is left behind, fenced.
pub const HUNG_AFTER: Duration = Duration::from_secs(60);

/// When the commit thread last heard back from a call (or started).
#[derive(Clone)]
struct Beat(Arc<Mutex<Instant>>);

impl Beat {
    fn new() -> Beat {
        Beat(Arc::new(Mutex::new(Instant::now())))
    }

    fn now(&self) {
        *self.0.lock().expect("beat lock") = Instant::now();
    }

    fn silent_for(&self) -> Duration {
        self.0.lock().expect("beat lock").elapsed()
    }
}

/// Longest the processing thread sleeps in [`InFlight::wait`] between two
/// looks at the commit thread when nothing wakes it.
const WAKE_AT_LEAST_EVERY: Duration = Duration::from_millis(50);

/// Set by the commit thread once its outcome is decided, waking the thread
/// that spawned it (the one that waits): the wait returns as soon as the
/// commit does, not at the next tick of a poll.
#[derive(Clone)]
struct Done {
    flag: Arc<AtomicBool>,
    waiter: std::thread::Thread,
}

impl Done {
    fn new() -> Done {
        Done { flag: Arc::new(AtomicBool::new(false)), waiter: std::thread::current() }
    }

    fn signal(&self) {
        self.flag.store(true, Ordering::Release);
        self.waiter.unpark();
    }

    fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
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

/// The input offsets a transaction commits, with the consumer group's
/// metadata (`send_offsets_to_transaction`).
pub struct TxnOffsets {
    pub offsets: rdkafka::TopicPartitionList,
    pub group: rdkafka::consumer::ConsumerGroupMetadata,
}

/// A batch whose records are produced into the open transaction.
pub struct Batch {
    pub out: BatchOutput,
    pub offsets: TxnOffsets,
    pub first: Offsets,
    pub started: Instant,
    pub records: usize,
}

/// What the commit thread needs besides the producer.
pub struct CommitEnv {
    pub gate: Arc<Gate>,
    pub shutdown: CancellationToken,
    pub health: Health,
    /// Readiness says so when `send_offsets_to_transaction` blocks.
    pub stall: StallHandle,
}

/// How a commit ended.
#[derive(Debug)]
pub enum Outcome {
    Committed(ChangelogOffsets),
    Failed(Stop),
    /// No call of the commit thread returned for this long (see [`HUNG_AFTER`]).
    Hung(Duration),
}

/// A batch whose transaction is committing on its own thread.
pub struct InFlight {
    pub batch: Committing,
    handle: JoinHandle<Result<ChangelogOffsets, Stop>>,
    done: Done,
    beat: Beat,
    /// Set when the thread is left behind: it no longer speaks for readiness.
    left: Arc<AtomicBool>,
    stall: StallHandle,
    gate: Arc<Gate>,
    ticket: u64,
}

impl InFlight {
    /// Adds the batch's input offsets to the open transaction and commits
    /// it, on a new thread, retrying the commit while the broker is away.
    /// Both calls were seen to hang inside the client library (the offsets
    /// call waits for its answer without a limit): on this thread, a hang
    /// is noticed by [`InFlight::wait`] instead of stopping the stage.
    pub fn spawn(producer: &Arc<TxnProducer>, env: &CommitEnv, batch: Batch) -> std::io::Result<InFlight> {
        let Batch { out, offsets, first, started, records } = batch;
        let producer = Arc::clone(producer);
        let (gate, shutdown, health) = (Arc::clone(&env.gate), env.shutdown.clone(), env.health.clone());
        let stall = env.stall.clone();
        let ticket = env.gate.enter();
        let beat = Beat::new();
        let heard = beat.clone();
        let left = Arc::new(AtomicBool::new(false));
        let left_behind = Arc::clone(&left);
        let done = Done::new();
        let finished = done.clone();
        let spawned = std::thread::Builder::new().name("txn-commit".into()).spawn(move || {
            let t = Instant::now();
            let sent = stall.during("send_offsets_to_transaction", || {
                producer.inner.send_offsets_to_transaction(&offsets.offsets, &offsets.group, txn::CALL_WAIT * 2)
            });
            heard.now();
            let result = sent.map_err(Stop::Failed).and_then(|()| {
                txn::commit(&producer, &shutdown, |waited, e| {
                    heard.now();
                    let detail = format!("commit waiting {}s for the broker: {e}", waited.as_secs());
                    tracing::warn!(waited_s = waited.as_secs(), error = %e, "commit_transaction not done yet; retrying");
                    if !left_behind.load(Ordering::Relaxed) {
                        health.block_with(Reason::CannotCommit, detail);
                    }
                })
            });
            metrics().batch_duration(BatchSpan::Commit, t.elapsed().as_secs_f64());
            tracing::debug!(records, commit_ms = t.elapsed().as_millis() as u64, ok = result.is_ok(), "transaction ended");
            gate.leave(ticket);
            let result = result.map(|()| producer.take_changelog_offsets());
            finished.signal();
            result
        });
        let handle = spawned.inspect_err(|_| env.gate.leave(ticket))?;
        let batch =
            Committing { first, state: out.state, positions: out.positions, stats: out.stats, records, started };
        Ok(InFlight { batch, handle, done, beat, left, stall: env.stall.clone(), gate: Arc::clone(&env.gate), ticket })
    }

    /// Whether the commit has an outcome (`wait` would not block for long:
    /// at most until the thread returns it).
    pub fn is_settled(&self) -> bool {
        self.done.is_set() || self.handle.is_finished()
    }

    /// Waits for the commit's outcome — or until no call of the commit
    /// thread has returned for `hung_after`: then the thread is left behind
    /// and the outcome is [`Outcome::Hung`].
    pub fn wait(self, hung_after: Duration) -> (Committing, Outcome) {
        while !self.is_settled() {
            let silent = self.beat.silent_for();
            if silent >= hung_after {
                // the stuck call must not hold readiness once a new producer
                // has taken over (its thread may never return)
                self.left.store(true, Ordering::Relaxed);
                self.stall.forget(self.handle.thread().id());
                self.gate.leave(self.ticket);
                return (self.batch, Outcome::Hung(silent));
            }
            // woken by the commit thread's signal; the timeout only bounds
            // how late a hang (or a panic, which signals nothing) is seen
            std::thread::park_timeout((hung_after - silent).min(WAKE_AT_LEAST_EVERY));
        }
        let outcome = match self.handle.join() {
            Ok(Ok(changelog)) => Outcome::Committed(changelog),
            Ok(Err(stop)) => Outcome::Failed(stop),
            Err(_) => Outcome::Failed(Stop::Failed(rdkafka::error::KafkaError::Canceled)),
        };
        (self.batch, outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committing() -> Committing {
        Committing {
            first: Offsets::new(),
            state: StateWrites::default(),
            positions: Offsets::new(),
            stats: BatchStats::default(),
            records: 0,
            started: Instant::now(),
        }
    }

    #[test]
    fn a_commit_thread_that_stops_hearing_back_is_left_behind_and_the_gate_opens() {
        let gate = Arc::new(Gate::default());
        let ticket = gate.enter();
        let (release, stuck) = std::sync::mpsc::channel::<()>();
        let thread_gate = Arc::clone(&gate);
        let watch = super::super::stall::StallWatch::spawn(Health::new()).unwrap();
        let stall = watch.handle();
        let thread_stall = stall.clone();
        // a call that never returns until released, as the stuck one did
        let handle = std::thread::spawn(move || {
            let _ = thread_stall.during("send_offsets_to_transaction", || stuck.recv());
            thread_gate.leave(ticket);
            Ok(ChangelogOffsets::new())
        });
        let left = Arc::new(AtomicBool::new(false));
        let f = InFlight {
            batch: committing(),
            handle,
            done: Done::new(),
            beat: Beat::new(),
            left: Arc::clone(&left),
            stall: stall.clone(),
            gate: Arc::clone(&gate),
            ticket,
        };
        let t = Instant::now();
        let (_, result) = f.wait(Duration::from_millis(200));
        assert!(matches!(result, Outcome::Hung(d) if d >= Duration::from_millis(200)), "{result:?}");
        assert!(t.elapsed() < Duration::from_secs(5));
        // the stuck call no longer holds readiness, nor will its thread
        assert_eq!(stall.watched_calls(), 0);
        assert!(left.load(Ordering::Relaxed));
        // the gate is open for the next commit, and the late thread cannot close the newer one's
        let next = gate.enter();
        release.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(gate.busy.lock().unwrap().0, next, "a late leave does not settle a newer commit");
        gate.leave(next);
        gate.wait_idle(Duration::from_millis(10));
        assert_eq!(gate.busy.lock().unwrap().0, 0);
    }

    #[test]
    fn a_commit_that_keeps_hearing_back_is_waited_for() {
        let gate = Arc::new(Gate::default());
        let ticket = gate.enter();
        let beat = Beat::new();
        let (heard, thread_gate) = (beat.clone(), Arc::clone(&gate));
        let done = Done::new();
        let finished = done.clone();
        // a broker away for longer than the hang limit: every call returns, retriable
        let handle = std::thread::spawn(move || {
            for _ in 0..6 {
                std::thread::sleep(Duration::from_millis(50));
                heard.now();
            }
            thread_gate.leave(ticket);
            finished.signal();
            Ok(ChangelogOffsets::new())
        });
        let watch = super::super::stall::StallWatch::spawn(Health::new()).unwrap();
        let left = Arc::new(AtomicBool::new(false));
        let f = InFlight { batch: committing(), handle, done, beat, left, stall: watch.handle(), gate, ticket };
        let (_, result) = f.wait(Duration::from_millis(150));
        assert!(matches!(result, Outcome::Committed(_)), "{result:?}");
    }

    #[test]
    fn a_commit_thread_that_panics_before_its_signal_still_settles_as_failed() {
        let gate = Arc::new(Gate::default());
        let ticket = gate.enter();
        let handle = std::thread::spawn(|| -> Result<ChangelogOffsets, Stop> { panic!("commit thread panics") });
        let watch = super::super::stall::StallWatch::spawn(Health::new()).unwrap();
        let left = Arc::new(AtomicBool::new(false));
        let beat = Beat::new();
        let f = InFlight {
            batch: committing(),
            handle,
            done: Done::new(),
            beat,
            left,
            stall: watch.handle(),
            gate,
            ticket,
        };
        let (_, result) = f.wait(Duration::from_secs(60));
        assert!(matches!(result, Outcome::Failed(Stop::Failed(rdkafka::error::KafkaError::Canceled))), "{result:?}");
    }
}
