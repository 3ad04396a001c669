//! The transactional producer's calls, made to survive a broker that is
//! away for any length of time: librdkafka reports a call that timed out
//! as retriable (the commit, abort or init goes on in the background), and
//! the right answer is to call it again, never to start another one — an
//! abort while a commit is still in progress fails with "Conflicting
//! commit_transaction API call is already in progress".
//!
//! Each call waits [`CALL_WAIT`] at a time and is retried until it
//! succeeds, fails for good, or the stage shuts down; the caller decides
//! what a failure means ([`Verdict`]).

use super::producer::TxnProducer;
use crate::kafka::deliver::deliver_all;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{Producer, PurgeConfig};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long one call waits before it is retried (and the shutdown flag
/// looked at again).
pub const CALL_WAIT: Duration = Duration::from_secs(5);

/// Why a retried call stopped without success.
#[derive(Debug)]
pub enum Stop {
    /// The call failed for good.
    Failed(KafkaError),
    /// The stage is shutting down.
    Shutdown,
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Failed(e) => write!(f, "{e}"),
            Stop::Shutdown => f.write_str("shutting down"),
        }
    }
}

fn retriable(e: &KafkaError) -> bool {
    matches!(e, KafkaError::Transaction(t) if t.is_retriable())
}

/// Calls `op` until it does not fail with a retriable error; `waiting` is
/// told how long it has been waiting after each retriable failure.
fn retry(
    shutdown: &CancellationToken,
    mut op: impl FnMut() -> Result<(), KafkaError>,
    mut waiting: impl FnMut(Duration, &KafkaError),
) -> Result<(), Stop> {
    let started = Instant::now();
    loop {
        match op() {
            Ok(()) => return Ok(()),
            Err(e) if retriable(&e) => {
                if shutdown.is_cancelled() {
                    return Err(Stop::Shutdown);
                }
                waiting(started.elapsed(), &e);
            }
            Err(e) => return Err(Stop::Failed(e)),
        }
    }
}

/// `init_transactions`: fences a previous incarnation with the same
/// `transactional.id` and settles what it left open.
pub fn init(p: &TxnProducer, shutdown: &CancellationToken) -> Result<(), Stop> {
    retry(
        shutdown,
        || p.inner.init_transactions(CALL_WAIT),
        |waited, e| tracing::warn!(waited_s = waited.as_secs(), error = %e, "init_transactions not done yet; retrying"),
    )
}

/// `commit_transaction`, retried while the broker is away; `stalled` hears
/// how long it has waited, for readiness.
pub fn commit(
    p: &TxnProducer,
    shutdown: &CancellationToken,
    stalled: impl FnMut(Duration, &KafkaError),
) -> Result<(), Stop> {
    retry(
        shutdown,
        || {
            // the records' acknowledgements first, without flush's 100 ms
            // steps; not delivered in time fails as flush's own timeout did
            deliver_all(&p.inner, CALL_WAIT).and_then(|()| p.inner.commit_transaction(CALL_WAIT))
        },
        stalled,
    )
}

/// `abort_transaction`. The abort purges queued records, whose delivery
/// reports the caller's thread must serve (librdkafka does not finish the
/// abort until they are). They are purged and served here first, in 1 ms
/// steps: left to the abort, its first try sat out all of [`CALL_WAIT`]
/// (5 s, after a registry outage had left a batch of 56 records) before
/// the retry's poll served them. The producer is polled between tries too.
pub fn abort(p: &TxnProducer, shutdown: &CancellationToken) -> Result<(), Stop> {
    p.inner.purge(PurgeConfig::default().queue().inflight());
    // not all served in time: the abort below waits for the rest, as before
    let _ = deliver_all(&p.inner, CALL_WAIT);
    retry(
        shutdown,
        || {
            p.inner.poll(Duration::ZERO);
            p.inner.abort_transaction(CALL_WAIT)
        },
        |waited, e| {
            tracing::warn!(waited_s = waited.as_secs(), error = %e, "abort_transaction not done yet; retrying");
            p.inner.poll(Duration::from_millis(100));
        },
    )
}

/// What a failed transaction calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Abort it; when the abort goes through, nothing of it was written.
    Abort,
    /// The producer is unusable (fatal error): replace it. Its last
    /// transaction may have committed or not.
    Replace,
    /// Another instance took over this `transactional.id`: stop.
    Fenced,
}

/// A fencing error within the transaction timeout can only come from
/// another producer with our `transactional.id` (the coordinator aborts a
/// transaction, and bumps the producer epoch, only once it is older than
/// `transaction.timeout.ms`): that is a second instance with the same
/// `instance_id`, and this one must stop. After the timeout — a broker that
/// was away — the same error means our transaction was timed out, and a
/// new producer takes over. Any other fatal error also calls for a new
/// producer: the outage test caught an abort answered with
/// `INVALID_TXN_STATE` seconds after the broker came back (the coordinator
/// was still completing the previous transaction), which librdkafka makes
/// fatal and which earlier versions took for fencing — the stage stopped.
/// If another instance does hold our id, the new producer's first
/// transaction is fenced in turn, and that stops the stage.
pub fn verdict(e: &KafkaError, txn_age: Duration, txn_timeout: Duration) -> Verdict {
    let (fatal, code) = match e {
        KafkaError::Transaction(t) => (t.is_fatal(), Some(t.code())),
        other => (other.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal), other.rdkafka_error_code()),
    };
    verdict_of(fatal, code, txn_age < txn_timeout)
}

fn verdict_of(fatal: bool, code: Option<RDKafkaErrorCode>, within_timeout: bool) -> Verdict {
    let fencing = matches!(
        code,
        Some(RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch | RDKafkaErrorCode::Fenced)
    );
    match (fatal, fencing && within_timeout) {
        (false, _) => Verdict::Abort,
        (true, true) => Verdict::Fenced,
        (true, false) => Verdict::Replace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RDKafkaErrorCode::*;

    #[test]
    fn only_fencing_within_the_timeout_stops_the_stage() {
        assert_eq!(verdict_of(true, Some(ProducerFenced), true), Verdict::Fenced);
        assert_eq!(verdict_of(true, Some(InvalidProducerEpoch), true), Verdict::Fenced);
        assert_eq!(verdict_of(true, Some(Fenced), true), Verdict::Fenced);
        // the same after the timeout: our own transaction was timed out
        assert_eq!(verdict_of(true, Some(ProducerFenced), false), Verdict::Replace);
        // what the outage test caught: an abort refused while the
        // coordinator still completed the previous transaction
        assert_eq!(verdict_of(true, Some(InvalidTransactionalState), true), Verdict::Replace);
        assert_eq!(verdict_of(true, Some(Fatal), true), Verdict::Replace);
        assert_eq!(verdict_of(false, Some(ConcurrentTransactions), true), Verdict::Abort);
        assert_eq!(verdict_of(false, None, false), Verdict::Abort);
    }
}
