//! The processor consumer's context: turns rebalance callbacks into events
//! the processing loop handles between polls, routes librdkafka logs into
//! `tracing`, and exports consumer lag from librdkafka's statistics: the
//! last stable offset minus the committed offset (for the processor, the
//! offset its transactions committed, which librdkafka does not see).
//!
//! Callbacks run inside `poll()` on the polling thread. The processor's
//! revoke hook waits until its in-flight commit has an outcome, so no
//! transaction is open when partitions leave; records already polled for a
//! revoked partition are simply dropped (their offsets were never committed).

use super::TopicPartition;
use super::connect::{self, is_partition_eof, log_rdkafka};
use crate::telemetry::metrics;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::TopicPartitionList;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A change of assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignment {
    Assigned(Vec<TopicPartition>),
    Revoked(Vec<TopicPartition>),
}

/// Called inside the revocation callback, before the partitions go: the
/// last chance to commit their offsets.
pub type RevokeHook = Box<dyn Fn(&BaseConsumer<GroupContext>, &[TopicPartition]) + Send + Sync>;

/// Per partition: the next offset committed through the producer's
/// transactions, which librdkafka's statistics do not see.
pub type CommittedOffsets = Arc<Mutex<HashMap<TopicPartition, i64>>>;

pub struct GroupContext {
    group: String,
    /// Offsets committed outside the consumer (the processor's
    /// transactions): lag is computed against these.
    committed: Option<CommittedOffsets>,
    /// Newly assigned partitions are paused at once so nothing is fetched
    /// before their stores are restored.
    pause_on_assign: bool,
    events: Mutex<Vec<Assignment>>,
    on_revoke: Option<RevokeHook>,
    /// When the group last took our partitions away (session expired).
    lost_at: Mutex<Option<std::time::Instant>>,
}

impl GroupContext {
    pub fn new(group: &str, pause_on_assign: bool) -> GroupContext {
        GroupContext {
            group: group.to_owned(),
            committed: None,
            pause_on_assign,
            events: Mutex::new(Vec::new()),
            on_revoke: None,
            lost_at: Mutex::new(None),
        }
    }

    /// Lag is the last stable offset minus these offsets, not librdkafka's
    /// own idea of the committed offset.
    pub fn with_committed(mut self, committed: CommittedOffsets) -> GroupContext {
        self.committed = Some(committed);
        self
    }

    pub fn with_revoke_hook(mut self, hook: RevokeHook) -> GroupContext {
        self.on_revoke = Some(hook);
        self
    }

    /// Whether the group took our partitions away (our session expired)
    /// within `window`.
    pub fn lost_within(&self, window: std::time::Duration) -> bool {
        self.lost_at.lock().expect("context lock").is_some_and(|t| t.elapsed() <= window)
    }

    /// Assignment changes since the last call, in order.
    pub fn take_events(&self) -> Vec<Assignment> {
        std::mem::take(&mut *self.events.lock().expect("context lock"))
    }

    /// Whether a rebalance left events for [`GroupContext::take_events`].
    pub fn has_events(&self) -> bool {
        !self.events.lock().expect("context lock").is_empty()
    }

    fn push(&self, a: Assignment) {
        self.events.lock().expect("context lock").push(a);
    }
}

fn pairs(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    TopicPartition::all_of(tpl)
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        log_rdkafka(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if is_partition_eof(&error) || connect::shared().record(&self.group, &error, reason).is_some() {
            return;
        }
        tracing::warn!(group = %self.group, error = %error, reason, "kafka client error");
    }

    fn stats(&self, stats: Statistics) {
        let committed = self.committed.as_ref().map(|c| c.lock().expect("committed offsets lock").clone());
        for (topic, t) in &stats.topics {
            for (partition, p) in &t.partitions {
                // -1 is librdkafka's "unknown" (internal partition, not consumed)
                if *partition < 0 {
                    continue;
                }
                let lag = match &committed {
                    // ls_offset: the last stable offset (read_committed)
                    Some(c) => c
                        .get(&TopicPartition::new(topic.as_str(), *partition))
                        .filter(|_| p.ls_offset >= 0)
                        .map(|o| p.ls_offset - o),
                    None => (p.consumer_lag >= 0).then_some(p.consumer_lag),
                };
                if let Some(lag) = lag {
                    metrics().consumer_lag(&self.group, topic, *partition, lag.max(0));
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
                if lost {
                    *self.lost_at.lock().expect("context lock") = Some(std::time::Instant::now());
                }
                if let Some(hook) = &self.on_revoke {
                    hook(consumer, &pairs(tpl));
                }
                for tp in pairs(tpl) {
                    // another instance reports this partition's lag now
                    metrics().forget_consumer_lag(&self.group, &tp.topic, tp.partition);
                    if let Some(c) = &self.committed {
                        c.lock().expect("committed offsets lock").remove(&tp);
                    }
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

/// The context of helper clients (restore, DLQ replay, reports): librdkafka
/// logs through `tracing`, and reaching the end of a partition — which
/// these clients wait for — is not reported as an error.
pub struct QuietContext;

impl ClientContext for QuietContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        log_rdkafka(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if is_partition_eof(&error) || connect::shared().record("client", &error, reason).is_some() {
            return;
        }
        tracing::warn!(error = %error, reason, "kafka client error");
    }
}

impl ConsumerContext for QuietContext {}

/// Helper producers (DLQ replay) wait for their transaction's commit, not
/// for each record's report.
impl rdkafka::producer::ProducerContext for QuietContext {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &rdkafka::producer::DeliveryResult<'_>, _: ()) {}
}
