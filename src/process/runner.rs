//! The exactly-once loop (DESIGN §3.2), on its own thread: every call here
//! blocks (librdkafka transactions, RocksDB), none runs on an async worker.
//!
//! Per batch: poll → process → begin → produce → send offsets with the
//! group metadata → commit → only then write the stores. The commit runs on
//! its own thread while the next batch is polled and processed (reading the
//! committing batch's state first); the next transaction begins only once
//! the previous one is settled, and a revocation waits for it. A failure
//! before the commit completes aborts, drops the state of the batches not
//! committed and rewinds to their first offsets.

use super::ProcessError;
use super::batch::{BatchEnv, Prior, StateView, StateWrites, process_batch};
use super::commit::{ChangelogOffsets, Gate, InFlight, Offsets, earliest, first_offsets};
use super::partitions::Partitions;
use super::producer::{Topics, TxnProducer};
use super::records::{InRecord, OutRecord};
use super::stage::{Part, Stage};
use crate::clock::now_ms;
use crate::codec::JobFormat;
use crate::config::{Config, TopicsConfig};
use crate::kafka::admin::Layout;
use crate::kafka::client;
use crate::kafka::context::{Assignment, GroupContext};
use crate::store::StoreMeta;
use crate::telemetry::Health;
use crate::telemetry::metrics::{BatchSpan, metrics};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const TXN_TIMEOUT: Duration = Duration::from_secs(30);
/// Readiness reasons the processor holds until they are resolved.
pub const PRODUCER_NOT_READY: &str = "processor: producer not initialised";
pub const NOT_JOINED: &str = "processor: waiting for a partition assignment";
const STATS_EVERY: Duration = Duration::from_secs(10);

pub use crate::config::reload::SharedConfig;

pub struct Runner {
    config: SharedConfig,
    /// Settings that cannot change without a restart (topics, batching).
    fixed: Arc<Config>,
    layout: Layout,
    consumer: BaseConsumer<GroupContext>,
    producer: Arc<TxnProducer>,
    /// The batch whose transaction is committing, if any.
    in_flight: Option<InFlight>,
    gate: Arc<Gate>,
    parts: Partitions,
    health: Health,
    shutdown: Arc<AtomicBool>,
}

impl Runner {
    pub fn new(
        config: SharedConfig,
        layout: Layout,
        health: Health,
        shutdown: Arc<AtomicBool>,
    ) -> Result<Runner, ProcessError> {
        let fixed = Arc::clone(&config.read().expect("config lock"));
        let gate = Arc::new(Gate::default());
        let hook_gate = Arc::clone(&gate);
        // partitions leave only once their last transaction has an outcome
        let context = GroupContext::new(&fixed.kafka.group_id, true)
            .with_revoke_hook(Box::new(move |_, _| hook_gate.wait_idle(TXN_TIMEOUT)));
        let consumer: BaseConsumer<GroupContext> = client::processor_consumer(&fixed).create_with_context(context)?;
        let producer = Arc::new(TxnProducer::new(&client::transactional_producer(&fixed), Topics::new(&fixed))?);
        let parts = Partitions::new(Arc::clone(&fixed), health.clone());
        Ok(Runner { config, fixed, layout, consumer, producer, in_flight: None, gate, parts, health, shutdown })
    }

    pub fn run(mut self) -> Result<(), ProcessError> {
        // aborts whatever a previous incarnation with this transactional.id left open
        self.producer.inner.init_transactions(TXN_TIMEOUT)?;
        self.health.unblock(PRODUCER_NOT_READY);
        let t = &self.fixed.topics;
        self.consumer.subscribe(&[&t.events, &t.user_activity])?;
        tracing::info!(group = %self.fixed.kafka.group_id, events = %t.events, user_activity = %t.user_activity, "processing stage started");
        let mut last_stats = Instant::now();
        let result = self.run_loop(&mut last_stats);
        // the open batch finishes (or is rewound) before the group is left
        let settled = self.settle(&Offsets::new());
        self.stop();
        result.and(settled.map(|_| ()))
    }

    fn run_loop(&mut self, last_stats: &mut Instant) -> Result<(), ProcessError> {
        while !self.shutdown.load(Ordering::Relaxed) {
            let batch = self.poll_batch()?;
            if batch.is_empty() {
                self.settle(&Offsets::new())?;
            } else {
                self.commit_batch(batch)?;
            }
            if last_stats.elapsed() >= STATS_EVERY {
                self.parts.publish_stats();
                *last_stats = Instant::now();
            }
        }
        Ok(())
    }

    /// Leaves the group (the revocation closes every store) and closes.
    fn stop(&mut self) {
        tracing::info!("processing stage stopping: leaving the group");
        self.consumer.unsubscribe();
        // serve the revocation callback
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && !self.parts.stores.is_empty() {
            let _ = self.consumer.poll(Duration::from_millis(100));
            self.handle_assignments(&mut Vec::new());
        }
        self.parts.close();
    }

    /// Collects up to `max_batch` records or `commit_interval` worth.
    fn poll_batch(&mut self) -> Result<Vec<InRecord>, ProcessError> {
        let max = self.fixed.process.max_batch;
        let interval = self.fixed.process.commit_interval.0;
        let mut records = Vec::with_capacity(max.min(4096));
        let mut first_at: Option<Instant> = None;
        loop {
            let timeout = first_at.map_or(interval, |t| interval.saturating_sub(t.elapsed()));
            let polled = self.consumer.poll(timeout);
            let got = match polled {
                None => false,
                Some(Ok(msg)) => {
                    let rec = accept(&mut self.parts, &self.fixed.topics, &msg);
                    drop(msg);
                    if let Some(rec) = rec {
                        records.push(rec);
                        first_at.get_or_insert_with(Instant::now);
                    }
                    true
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "consumer error");
                    false
                }
            };
            self.handle_assignments(&mut records);
            self.parts.poll_restores(&self.consumer)?;
            let full = records.len() >= max;
            let due = first_at.is_some_and(|t| t.elapsed() >= interval);
            if full || due || (!got && records.is_empty()) || self.shutdown.load(Ordering::Relaxed) {
                return Ok(records);
            }
        }
    }

    fn handle_assignments(&mut self, records: &mut Vec<InRecord>) {
        for event in self.consumer.context().take_events() {
            match event {
                Assignment::Assigned(list) => {
                    self.health.unblock(NOT_JOINED);
                    for (topic, partition) in list {
                        let Some(stage) = Stage::of_input(&self.fixed.topics, &topic) else { continue };
                        if let Err(e) = self.parts.assign(Part::new(stage, partition)) {
                            tracing::error!(topic, partition, error = %e, "cannot open the state store; stopping");
                            self.shutdown.store(true, Ordering::Relaxed);
                        }
                    }
                }
                Assignment::Revoked(list) => {
                    for (topic, partition) in list {
                        let Some(stage) = Stage::of_input(&self.fixed.topics, &topic) else { continue };
                        let part = Part::new(stage, partition);
                        records.retain(|r| r.part() != part);
                        self.parts.revoke(part);
                    }
                }
            }
        }
    }

    /// Processes `records` (while the previous batch may still be
    /// committing), settles the previous batch, then opens this batch's
    /// transaction and hands its commit to the committer thread.
    fn commit_batch(&mut self, records: Vec<InRecord>) -> Result<(), ProcessError> {
        let started = Instant::now();
        let config = Arc::clone(&self.config.read().expect("config lock"));
        let env = BatchEnv {
            rules: &config.rules,
            topics: &self.fixed.topics,
            layout: self.layout,
            job_format: JobFormat::Json,
            now_ms: now_ms(),
        };
        let processed = {
            let prior = self.in_flight.as_ref().map_or_else(Prior::default, |f| Prior::new(&f.batch.state));
            process_batch(&records, StateView { stores: &self.parts.stores, prior: &prior }, &env)
        };
        let first = first_offsets(&records);
        if !self.settle(&first)? {
            // the previous batch was rewound, and this one with it
            return Ok(());
        }
        let out = processed?;
        self.producer.inner.begin_transaction()?;
        if let Err(e) = self.produce(&out.records, &out.positions) {
            tracing::warn!(error = %e, records = records.len(), "transaction failed; aborting and rewinding");
            self.abort_and_rewind(&first, e)?;
            metrics().transaction(false);
            return Ok(());
        }
        let in_flight = InFlight::spawn(&self.producer, &self.gate, TXN_TIMEOUT, out, first, started, records.len())
            .map_err(ProcessError::Thread)?;
        self.in_flight = Some(in_flight);
        Ok(())
    }

    /// Waits for the committing batch, if any. Committed: its state goes to
    /// the stores. Failed: the transaction is aborted and the consumer
    /// rewound to the first offsets of that batch and of `next` (the batch
    /// processed meanwhile, now void); returns false.
    fn settle(&mut self, next: &Offsets) -> Result<bool, ProcessError> {
        let Some(in_flight) = self.in_flight.take() else { return Ok(true) };
        let (batch, result) = in_flight.wait();
        match result {
            Ok(changelog) => {
                metrics().transaction(true);
                self.write_stores(batch.state, &batch.positions, &changelog)?;
                batch.stats.publish(&self.fixed.topics.events_dlq);
                metrics().batch_duration(BatchSpan::Process, batch.started.elapsed().as_secs_f64());
                metrics().batch_records(batch.records);
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(error = %e, records = batch.records, "commit failed; aborting and rewinding");
                self.abort_and_rewind(&earliest(batch.first, next), e)?;
                metrics().transaction(false);
                Ok(false)
            }
        }
    }

    /// Queues the batch's records and adds its input offsets, with the
    /// group metadata, to the open transaction.
    fn produce(&self, out: &[OutRecord], positions: &Offsets) -> Result<(), KafkaError> {
        for rec in out {
            self.producer.send(rec)?;
        }
        let mut tpl = TopicPartitionList::new();
        for (part, next) in positions {
            tpl.add_partition_offset(part.stage.input(&self.fixed.topics), part.partition, Offset::Offset(*next))?;
        }
        let group = self.consumer.group_metadata().ok_or(KafkaError::Canceled)?;
        self.producer.inner.send_offsets_to_transaction(&tpl, &group, TXN_TIMEOUT)
    }

    /// Aborts the open transaction and seeks every partition in `first`
    /// back to its offset there. A fatal producer error ends the stage.
    fn abort_and_rewind(&self, first: &Offsets, cause: KafkaError) -> Result<(), ProcessError> {
        if let KafkaError::Transaction(e) = &cause {
            if e.is_fatal() {
                return Err(ProcessError::FatalTransaction(cause));
            }
        }
        self.abort(cause)?;
        let _ = self.producer.take_changelog_offsets();
        for (part, offset) in first {
            if !self.parts.is_ready(*part) {
                continue;
            }
            let topic = part.stage.input(&self.fixed.topics);
            if let Err(source) =
                self.consumer.seek(topic, part.partition, Offset::Offset(*offset), Duration::from_secs(10))
            {
                return Err(ProcessError::Rewind {
                    topic: topic.to_owned(),
                    partition: part.partition,
                    offset: *offset,
                    source,
                });
            }
        }
        Ok(())
    }

    /// Aborts the open transaction. The abort purges queued records, whose
    /// delivery reports this thread must serve (librdkafka refuses to finish
    /// the abort until they are), so it polls the producer between tries.
    fn abort(&self, cause: KafkaError) -> Result<(), ProcessError> {
        let mut attempts = 0;
        loop {
            self.producer.inner.poll(Duration::ZERO);
            match self.producer.inner.abort_transaction(Duration::from_secs(5)) {
                Ok(()) => return Ok(()),
                Err(KafkaError::Transaction(e)) if !e.is_fatal() && attempts < 30 => {
                    attempts += 1;
                    tracing::warn!(error = %e, attempts, "abort_transaction not done yet; serving delivery reports and retrying");
                    self.producer.inner.poll(Duration::from_millis(200));
                }
                Err(source) => return Err(ProcessError::Abort { source, cause: Box::new(cause) }),
            }
        }
    }

    /// After the commit: each store gets its batch's state and the offsets
    /// it now reflects, atomically. Stores revoked meanwhile are skipped:
    /// their next owner restores the state from the changelog.
    fn write_stores(
        &mut self,
        state: StateWrites,
        positions: &Offsets,
        changelog: &ChangelogOffsets,
    ) -> Result<(), ProcessError> {
        for (key, writes) in state {
            let Some(store) = self.parts.stores.get_mut(&key) else { continue };
            let old = self.parts.metas.get(&key).copied().unwrap_or_default();
            let meta = StoreMeta {
                input_offset: positions.get(&key).copied().or(old.input_offset),
                changelog_offset: changelog.get(&key).map_or(old.changelog_offset, |o| o + 1),
            };
            let puts: Vec<(&[u8], &[u8])> = writes.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
            store.write(&puts, meta)?;
            self.parts.metas.insert(key, meta);
        }
        Ok(())
    }
}

/// Copies a record out of librdkafka's buffer, unless its partition is not
/// ready (restoring): then it is dropped and re-read after the restore.
fn accept(parts: &mut Partitions, topics: &TopicsConfig, msg: &BorrowedMessage<'_>) -> Option<InRecord> {
    let stage = Stage::of_input(topics, msg.topic())?;
    let part = Part::new(stage, msg.partition());
    if !parts.is_ready(part) {
        parts.dropped(part, msg.offset());
        return None;
    }
    Some(InRecord {
        stage,
        partition: msg.partition(),
        offset: msg.offset(),
        key: msg.key().map(<[u8]>::to_vec),
        value: msg.payload().map(<[u8]>::to_vec),
    })
}
