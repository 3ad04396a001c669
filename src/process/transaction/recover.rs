//! Recovering from a transaction that failed, so that no outage — a broker
//! paused for a second or for an hour — stops the stage or leaves its
//! state inconsistent:
//!
//! - the transaction is aborted (retried until the broker answers): nothing
//!   of it was written, its state is dropped, and the input is rewound to
//!   the first offset of every batch lost with it;
//! - when the producer cannot go on (a fatal error after the transaction
//!   outlived `transaction.timeout.ms`, or an abort that fails), it is
//!   replaced; the new one's `init_transactions` settles the old
//!   transaction one way or the other, so every store catches up with its
//!   changelog (a no-op unless that transaction committed) and its input
//!   resumes from the group's committed offset;
//! - a fatal error inside the transaction timeout means another instance
//!   took over this `transactional.id`: the stage stops.
//!
//! Meanwhile `/readyz` is 503 with the reason, until a commit succeeds or
//! the coordinator has answered the abort or the new producer.

use super::calls::{self, Stop, Verdict};
use super::{Transaction, new_producer};
use crate::kafka::client;
use crate::process::ProcessError;
use crate::process::records::Offsets;
use crate::process::source::BatchSource;
use crate::telemetry::{Reason, metrics};
use rdkafka::error::KafkaError;
use std::sync::Arc;
use std::time::Duration;

impl Transaction {
    /// Recovers from a failed transaction whose batches started at `first`.
    pub(super) fn recover(
        &mut self,
        source: &mut BatchSource,
        first: &Offsets,
        cause: Stop,
    ) -> Result<(), ProcessError> {
        metrics().transaction(false);
        // shutting down: the stores hold nothing of the open transaction and
        // the next incarnation's init_transactions aborts it
        let Stop::Failed(cause) = cause else { return Ok(()) };
        // an abort that succeeds (e.g. a rebalance bumped the group's
        // generation mid-transaction) is routine: readiness stays as it is
        let verdict = self.verdict(&cause);
        if verdict != Verdict::Abort {
            self.health.block_with(Reason::CannotCommit, format!("transaction failed: {cause}"));
        }
        match verdict {
            Verdict::Fenced => return Err(ProcessError::FatalTransaction(cause)),
            Verdict::Replace => {}
            Verdict::Abort => {
                match self.stall.during("abort_transaction", || calls::abort(&self.producer, &self.shutdown)) {
                    Ok(()) => {
                        // the coordinator answered: transactions work again (a
                        // thread whose partitions get no more input would
                        // otherwise stay unready until its next commit)
                        self.health.unblock(Reason::CannotCommit);
                        self.producer.report_undelivered();
                        tracing::info!(error = %cause, "transaction aborted; rewinding to the batch start");
                        let _ = self.producer.take_changelog_offsets();
                        return source.rewind(first);
                    }
                    Err(Stop::Shutdown) => return Ok(()),
                    Err(Stop::Failed(e)) if self.verdict(&e) == Verdict::Fenced => {
                        return Err(ProcessError::FatalTransaction(e));
                    }
                    Err(Stop::Failed(e)) => {
                        tracing::warn!(error = %e, "abort_transaction failed");
                        let detail = format!("transaction failed: {cause}; abort failed: {e}");
                        self.health.block_with(Reason::CannotCommit, detail);
                    }
                }
            }
        }
        self.replace_producer("fatal")?;
        source.resync()
    }

    /// The commit thread is stuck in a call to the client library: no
    /// abort (it would conflict with the call in progress); a new producer
    /// fences the stuck one, and every store catches up with its changelog
    /// (the stuck transaction may have committed or not).
    pub(super) fn recover_hung(&mut self, source: &mut BatchSource, silent: Duration) -> Result<(), ProcessError> {
        metrics().transaction(false);
        tracing::error!(
            silent_s = silent.as_secs(),
            "the transaction's offsets or commit call has not returned, far past its timeout; taking the producer for dead"
        );
        let detail = format!("a producer call has not returned for {}s; replacing the producer", silent.as_secs());
        self.health.block_with(Reason::CannotCommit, detail);
        self.replace_producer("hung")?;
        source.resync()
    }

    fn verdict(&self, e: &KafkaError) -> Verdict {
        calls::verdict(e, self.began.elapsed(), txn_timeout(&self.fixed))
    }

    /// A new transactional producer in place of one that cannot go on.
    fn replace_producer(&mut self, reason: &'static str) -> Result<(), ProcessError> {
        metrics().producer_replaced(reason);
        self.producer.report_undelivered();
        tracing::warn!("replacing the transactional producer; stores resync with their changelogs");
        // the old one goes first: two producers of one transactional.id fence each other
        self.producer = Arc::new(new_producer(&self.fixed)?);
        match self.stall.during("init_transactions", || calls::init(&self.producer, &self.shutdown)) {
            Ok(()) => {
                // the new producer was admitted by the coordinator
                self.health.unblock(Reason::CannotCommit);
                Ok(())
            }
            Err(Stop::Shutdown) => Ok(()),
            Err(Stop::Failed(e)) => Err(ProcessError::FatalTransaction(e)),
        }
    }
}

/// The producer's `transaction.timeout.ms`.
fn txn_timeout(config: &crate::config::Config) -> Duration {
    let ms = client::transactional_producer(config).get("transaction.timeout.ms").and_then(|v| v.parse().ok());
    Duration::from_millis(ms.unwrap_or(60_000))
}
