//! The processor consumer's context: turns rebalance callbacks into events
//! the processing loop handles between polls, routes librdkafka logs into
//! `tracing`, and exports consumer lag from librdkafka's statistics.
//!
//! Callbacks run inside `poll()` on the polling thread. The processor's
//! revoke hook waits until its in-flight commit has an outcome, so no
//! transaction is open when partitions leave; records already polled for a
//! revoked partition are simply dropped (their offsets were never committed).

use crate::telemetry::metrics;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::TopicPartitionList;
use std::sync::Mutex;

/// A change of assignment, as (topic, partition) pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignment {
    Assigned(Vec<(String, i32)>),
    Revoked(Vec<(String, i32)>),
}

/// Called inside the revocation callback, before the partitions go: the
/// last chance to commit their offsets.
pub type RevokeHook = Box<dyn Fn(&BaseConsumer<GroupContext>, &[(String, i32)]) + Send + Sync>;

pub struct GroupContext {
    group: String,
    /// Newly assigned partitions are paused at once so nothing is fetched
    /// before their stores are restored.
    pause_on_assign: bool,
    events: Mutex<Vec<Assignment>>,
    on_revoke: Option<RevokeHook>,
}

impl GroupContext {
    pub fn new(group: &str, pause_on_assign: bool) -> GroupContext {
        GroupContext { group: group.to_owned(), pause_on_assign, events: Mutex::new(Vec::new()), on_revoke: None }
    }

    pub fn with_revoke_hook(mut self, hook: RevokeHook) -> GroupContext {
        self.on_revoke = Some(hook);
        self
    }

    /// Assignment changes since the last call, in order.
    pub fn take_events(&self) -> Vec<Assignment> {
        std::mem::take(&mut *self.events.lock().expect("context lock"))
    }

    fn push(&self, a: Assignment) {
        self.events.lock().expect("context lock").push(a);
    }
}

fn pairs(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect()
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        log_rdkafka(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(group = %self.group, error = %error, reason, "kafka client error");
    }

    fn stats(&self, stats: Statistics) {
        for (topic, t) in &stats.topics {
            for (partition, p) in &t.partitions {
                // -1 is librdkafka's "unknown" (internal partition, not consumed)
                if *partition >= 0 && p.consumer_lag >= 0 {
                    metrics().consumer_lag(&self.group, topic, *partition, p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                metrics().rebalance(&self.group, false);
                let lost = consumer.assignment_lost();
                tracing::info!(group = %self.group, partitions = ?pairs(tpl), lost, "partitions revoked");
                if let Some(hook) = &self.on_revoke {
                    hook(consumer, &pairs(tpl));
                }
                self.push(Assignment::Revoked(pairs(tpl)));
            }
            Rebalance::Error(e) => {
                tracing::warn!(group = %self.group, error = %e, "rebalance error");
            }
            Rebalance::Assign(_) => {}
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            metrics().rebalance(&self.group, true);
            tracing::info!(group = %self.group, partitions = ?pairs(tpl), "partitions assigned");
            if self.pause_on_assign && tpl.count() > 0 {
                if let Err(e) = consumer.pause(tpl) {
                    tracing::error!(group = %self.group, error = %e, "could not pause newly assigned partitions");
                }
            }
            self.push(Assignment::Assigned(pairs(tpl)));
        }
    }
}

/// librdkafka's own log lines, at the matching level.
pub fn log_rdkafka(level: RDKafkaLogLevel, fac: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", fac, "{message}")
        }
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", fac, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => tracing::info!(target: "librdkafka", fac, "{message}"),
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", fac, "{message}"),
    }
}

/// The context of helper clients (restore, DLQ replay, reports): librdkafka
/// logs through `tracing`, and reaching the end of a partition — which
/// these clients wait for — is not reported as an error.
pub struct QuietContext;

impl ClientContext for QuietContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        log_rdkafka(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if !matches!(error, KafkaError::PartitionEOF(_)) {
            tracing::warn!(error = %error, reason, "kafka client error");
        }
    }
}

impl ConsumerContext for QuietContext {}
