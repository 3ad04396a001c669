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
use super::batch::{BatchEnv, BatchOutput, Prior, StateView, StateWrites, process_batch};
use super::commit::{
    Batch, CANNOT_COMMIT, ChangelogOffsets, CommitEnv, Gate, HUNG_AFTER, InFlight, Offsets, Outcome, TxnOffsets,
    earliest, first_offsets,
};
use super::partitions::Partitions;
use super::producer::{Topics, TxnProducer};
use super::records::{InRecord, OutRecord};
use super::stage::{Feed, Part, Source, Stage};
use super::stall::StallWatch;
use super::txn::{self, Stop};
use crate::clock::now_ms;
use crate::codec::{self, JobEncoding, JobFormat};
use crate::config::{Config, Partitioning, TopicsConfig};
use crate::kafka::admin::Layout;
use crate::kafka::client;
use crate::kafka::context::{Assignment, CommittedOffsets, GroupContext};
use crate::registry::cache::confluent_ids;
use crate::registry::{Registry, RegistryError, SchemaCache};
use crate::store::StoreMeta;
use crate::telemetry::Health;
use crate::telemetry::metrics::{BatchSpan, metrics};
use rdkafka::consumer::{BaseConsumer, Consumer, RebalanceProtocol};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Longest a revocation waits for the commit in flight.
const REVOKE_WAIT: Duration = Duration::from_secs(30);
/// Readiness reasons the processor holds until they are resolved.
pub const PRODUCER_NOT_READY: &str = "processor: producer not initialised";
pub const NOT_JOINED: &str = "processor: waiting for a partition assignment";
pub const STOPPED: &str = "processor: stopped";
const STATS_EVERY: Duration = Duration::from_secs(10);
/// A fence this soon after our session expired is our own rejoin's.
const SELF_FENCE_WINDOW: Duration = Duration::from_secs(60);
/// How often an idle stage looks for positions to commit.
const POSITIONS_EVERY: Duration = Duration::from_secs(1);
/// Longest wait on the group's consumer while the repartition topic is
/// read too (its records wait at most this long to join a batch).
const SIDE_POLL: Duration = Duration::from_millis(10);
/// How often a batch being collected looks whether the commit in flight
/// has settled (then it is cut and the next transaction begins).
const COMMIT_CHECK: Duration = Duration::from_millis(2);
/// Records taken from the consumer's queue at a time before the loop's
/// housekeeping (rebalance events, restores, the repartition topic, the
/// batch's bounds) runs again: per record it cost a side poll and a few
/// clock reads, ~5% of the processing thread.
const DRAIN: usize = 256;

pub use crate::config::reload::SharedConfig;

pub struct Runner {
    /// The thread's name (`processor`, `processor-1`), in metrics.
    name: String,
    config: SharedConfig,
    /// Settings that cannot change without a restart (topics, batching).
    pub(super) fixed: Arc<Config>,
    layout: Layout,
    pub(super) consumer: BaseConsumer<GroupContext>,
    pub(super) producer: Arc<TxnProducer>,
    /// The batch whose transaction is committing, if any.
    in_flight: Option<InFlight>,
    /// When the open transaction began (how old it is decides what a fatal
    /// error means, see [`super::txn::verdict`]).
    pub(super) txn_began: Instant,
    commit_env: CommitEnv,
    /// Reports on readiness when a call to the broker blocks this thread.
    pub(super) stall: StallWatch,
    pub(super) parts: Partitions,
    /// The next offset committed per input partition, shared with the
    /// consumer's context, which reports lag against it.
    committed: CommittedOffsets,
    /// When ready partitions' positions were last compared with what was
    /// committed (see [`Runner::commit_positions`]).
    positions_checked: Instant,
    pub(super) health: Health,
    pub(super) shutdown: CancellationToken,
    /// Writer schemas from `[schema_registry]` (set up on this thread).
    schemas: Option<Arc<SchemaCache>>,
    /// How jobs are written (`topics.jobs_format`).
    job_encoding: JobEncoding,
}

impl Runner {
    /// `fixed` is the config at start with the layout's state topics.
    pub fn new(
        name: String,
        config: SharedConfig,
        fixed: Arc<Config>,
        layout: Layout,
        health: Health,
        shutdown: CancellationToken,
    ) -> Result<Runner, ProcessError> {
        let gate = Arc::new(Gate::default());
        // partitions leave only once their last transaction has an outcome
        let committed = CommittedOffsets::default();
        let consumer = new_consumer(&fixed, layout, &gate, &committed)?;
        let producer = Arc::new(new_producer(&fixed)?);
        let parts = Partitions::new(Arc::clone(&fixed), health.clone(), Arc::clone(&committed), layout.device_state)?;
        let stall = StallWatch::spawn(health.clone()).map_err(ProcessError::Thread)?;
        let commit_env = CommitEnv { gate, shutdown: shutdown.clone(), health: health.clone(), stall: stall.handle() };
        Ok(Runner {
            name,
            config,
            fixed,
            layout,
            consumer,
            producer,
            in_flight: None,
            txn_began: Instant::now(),
            commit_env,
            stall,
            parts,
            committed,
            positions_checked: Instant::now(),
            health,
            shutdown,
            schemas: None,
            job_encoding: JobEncoding::Json,
        })
    }

    /// The schema registry's client and, for Avro jobs, the job schema's
    /// id; waits while the registry cannot be reached. False: shutdown.
    fn setup_registry(&mut self) -> Result<bool, ProcessError> {
        let avro_jobs = self.fixed.topics.jobs_format == JobFormat::Avro;
        let Some(config) = &self.fixed.schema_registry else {
            self.job_encoding = if avro_jobs { JobEncoding::Avro } else { JobEncoding::Json };
            return Ok(true);
        };
        let cache = Arc::new(SchemaCache::new(Registry::new(config)?, config.max_schemas));
        if avro_jobs {
            let subject = format!("{}-value", self.fixed.topics.jobs);
            let schema = codec::JOB_SCHEMA_TEXT;
            match cache.register(&subject, schema, &self.shutdown, &self.health) {
                None => return Ok(false),
                Some(Err(e)) => {
                    return Err(RegistryError::Refused(format!("the job schema under subject {subject}: {e}")).into());
                }
                Some(Ok(id)) => {
                    tracing::info!(subject, schema_id = id, "jobs are written as Avro with the registry's schema id");
                    self.job_encoding = JobEncoding::Confluent(id);
                }
            }
        }
        self.schemas = Some(cache);
        Ok(true)
    }

    pub fn run(mut self) -> Result<(), ProcessError> {
        // fences a previous incarnation with this transactional.id and
        // settles what it left open; waits for a broker that is not there yet
        match self.stall.during("init_transactions", || txn::init(&self.producer, &self.shutdown)) {
            Ok(()) => {}
            Err(Stop::Shutdown) => return Ok(()),
            Err(Stop::Failed(e)) => return Err(e.into()),
        }
        if !self.setup_registry()? {
            return Ok(());
        }
        self.health.unblock(PRODUCER_NOT_READY);
        let t = &self.fixed.topics;
        self.consumer.subscribe(&self.group_topics())?;
        let l = self.layout;
        tracing::info!(
            group = %self.fixed.kafka.group_id,
            events = %t.events,
            input_partitions = l.events,
            device_state_partitions = l.device_state,
            user_state_partitions = l.user_activity,
            mode = if l.events == l.device_state { "co-partitioned" } else { "repartition" },
            "processing stage started"
        );
        let mut last_stats = Instant::now();
        let result = self.run_loop(&mut last_stats);
        if let Err(e) = &result {
            // not ready from the moment it fails, not once it has left the group
            self.health.block_with(STOPPED, e.to_string());
        }
        // the open batch finishes (or is rewound) before the group is left
        let settled = if result.is_ok() { self.settle(&Offsets::new()).map(|_| ()) } else { Ok(()) };
        self.stop();
        result.and(settled)
    }

    fn run_loop(&mut self, last_stats: &mut Instant) -> Result<(), ProcessError> {
        while !self.shutdown.is_cancelled() {
            let batch = self.poll_batch()?;
            if batch.is_empty() {
                if self.settle(&Offsets::new())? {
                    self.commit_positions()?;
                }
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

    /// When idle: commits the positions of ready partitions that moved past
    /// what was committed without a record to process — past the commit
    /// marker that ends every transaction on a transactional topic — so
    /// that the committed offset, and every tool's lag, reach the end.
    fn commit_positions(&mut self) -> Result<(), ProcessError> {
        if self.positions_checked.elapsed() < POSITIONS_EVERY {
            return Ok(());
        }
        self.positions_checked = Instant::now();
        let Ok(positions) = self.consumer.position() else { return Ok(()) };
        let committed = self.committed.lock().expect("committed offsets lock").clone();
        let mut moved = Offsets::new();
        for e in positions.elements() {
            let (Some(stage), Offset::Offset(pos)) = (Stage::of_input(&self.fixed.topics, e.topic()), e.offset())
            else {
                continue;
            };
            let feed = Feed::input(Part::new(stage, e.partition()));
            let done = committed.get(&(e.topic().to_owned(), e.partition()));
            if self.parts.is_consuming(feed) && done.is_some_and(|c| pos > *c) {
                moved.insert(feed, pos);
            }
        }
        if moved.is_empty() {
            return Ok(());
        }
        let out = BatchOutput { positions: moved.clone(), ..BatchOutput::default() };
        self.open_transaction(out, moved, Instant::now(), 0)
    }

    /// The consumer was fenced by a member with our `group.instance.id`:
    /// after our session expired (a broker away longer than
    /// `session.timeout.ms`), that member is our own rejoin racing a request
    /// made before it; otherwise another instance took our identity. Either
    /// way the stage stops: a consumer replaced in-process was seen to stall
    /// under load, while a restart rejoins as the same static member at once
    /// and resumes from the committed offsets.
    fn consumer_fenced(&mut self, code: RDKafkaErrorCode, reason: String) -> Result<(), ProcessError> {
        let why = if self.consumer.context().lost_within(SELF_FENCE_WINDOW) {
            "its session expired while the broker was away; a restart rejoins as the same static member"
        } else {
            "another instance joined with the same instance_id"
        };
        Err(ProcessError::FatalConsumer(format!("{code:?}: {reason} ({why})")))
    }

    /// Leaves the group (the revocation closes every store) and closes.
    fn stop(&mut self) {
        tracing::info!("processing stage stopping: leaving the group");
        self.consumer.unsubscribe();
        // serve the revocation callback: only once it has unassigned does
        // librdkafka send the LeaveGroup of an unsubscribing static member
        // (a static member closed before that stays in the group until its
        // session expires, and `postback state rescale` refused to run
        // after a clean stop, naming thread 1's member). Polled at least
        // once, until nothing is assigned and every store is closed.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let _ = self.consumer.poll(Duration::from_millis(100));
            let _ = self.handle_assignments(&mut Vec::new());
            let assigned = self.consumer.assignment().map_or(0, |a| a.count());
            if (assigned == 0 && self.parts.stores.is_empty()) || Instant::now() >= deadline {
                break;
            }
        }
        // librdkafka's main thread sends the leave once the unassign is
        // done: give it that moment before the consumer closes
        let _ = self.consumer.poll(Duration::from_millis(100));
        self.parts.close();
        for topic in self.group_topics() {
            metrics().thread_partitions(&self.name, topic, 0);
        }
    }

    /// Collects a batch that adapts to the commit in flight: it takes what
    /// arrives while the previous transaction commits and is cut as soon as
    /// that commit is settled and nothing more is waiting — so the next
    /// transaction starts at once, and batches grow with load by
    /// themselves. `max_batch` records, `max_batch_bytes` and
    /// `commit_interval` (since the batch's first record) bound it.
    fn poll_batch(&mut self) -> Result<Vec<InRecord>, ProcessError> {
        // hot keys: a reload applies to the next batch
        let (max, max_bytes, interval) = {
            let p = &self.config.read().expect("config lock").process;
            (p.max_batch, p.max_batch_bytes, p.commit_interval.0)
        };
        let mut records = Vec::with_capacity(max.min(4096));
        let mut bytes = 0usize;
        let mut first_at: Option<Instant> = None;
        loop {
            let mut timeout = first_at.map_or(interval, |t| interval.saturating_sub(t.elapsed()));
            if self.parts.reads_side() {
                // the repartition topic is read between the group's polls
                self.poll_side(&mut records, max);
                timeout = timeout.min(SIDE_POLL);
            }
            let slot_free = self.in_flight.as_ref().is_none_or(InFlight::is_settled);
            if !records.is_empty() {
                // with a batch in hand: look again soon whether the commit slot freed
                timeout = timeout.min(if slot_free { Duration::ZERO } else { COMMIT_CHECK });
            }
            let room = (max.saturating_sub(records.len()), max_bytes.saturating_sub(bytes));
            let (got, error) = self.drain(timeout, room, &mut records);
            bytes += got.bytes;
            // the batch's clock starts with its first record (from either consumer)
            if first_at.is_none() && !records.is_empty() {
                first_at = Some(Instant::now());
            }
            if let Some(e) = error {
                if let Some((code, reason)) = self.consumer.client().fatal_error() {
                    self.consumer_fenced(code, reason)?;
                    return Ok(Vec::new());
                }
                if e.rdkafka_error_code() == Some(RDKafkaErrorCode::InconsistentGroupProtocol) {
                    self.mixed_assignors();
                } else {
                    tracing::warn!(error = %e, "consumer error");
                }
            }
            let got = got.polled > 0;
            self.handle_assignments(&mut records)?;
            self.parts.poll_restores(&self.consumer)?;
            let full = records.len() >= max || bytes >= max_bytes;
            let due = first_at.is_some_and(|t| t.elapsed() >= interval);
            let drained = !got && (records.is_empty() || slot_free);
            if full || due || drained || self.shutdown.is_cancelled() {
                return Ok(records);
            }
        }
    }

    /// Polls once (waiting up to `timeout`), then takes what else is already
    /// queued without waiting: up to [`DRAIN`] messages and the batch's
    /// `room` (records, bytes), stopping at a rebalance event, so the loop
    /// sees every assignment change before the next record. Accepted
    /// records go to `records`; a consumer error ends the drain.
    fn drain(
        &mut self,
        timeout: Duration,
        room: (usize, usize),
        records: &mut Vec<InRecord>,
    ) -> (Drained, Option<KafkaError>) {
        let mut got = Drained::default();
        let mut wait = timeout;
        while got.polled < DRAIN && got.records < room.0 && got.bytes < room.1 {
            match self.consumer.poll(wait) {
                None => break,
                Some(Err(e)) => return (got, Some(e)),
                Some(Ok(msg)) => {
                    got.polled += 1;
                    if let Some(rec) = accept(&mut self.parts, &self.fixed.topics, &msg) {
                        got.bytes += rec.size();
                        got.records += 1;
                        records.push(rec);
                    }
                }
            }
            if self.consumer.context().has_events() {
                break;
            }
            wait = Duration::ZERO;
        }
        (got, None)
    }

    /// The group refuses to let this member join: its members name another
    /// partition assignor (earlier versions' `cooperative-sticky`). The
    /// member retries on its own; the others keep every partition
    /// meanwhile, so nothing is lost, but this one stays unready until an
    /// operator acts — say how.
    fn mixed_assignors(&self) {
        let how = "the group's running members use another partition assignor (earlier versions used \
                   cooperative-sticky, the processor uses range now): stop every processor of the group, then \
                   start them, or set [kafka.consumer] \"partition.assignment.strategy\" to the old one until you can";
        tracing::error!(group = %self.fixed.kafka.group_id, "cannot join the consumer group: {how}");
        self.health.block_with(NOT_JOINED, how);
    }

    /// Takes what the repartition topic's consumer has buffered.
    fn poll_side(&mut self, records: &mut Vec<InRecord>, max: usize) {
        while records.len() < max {
            match self.parts.side().poll(Duration::ZERO) {
                None => return,
                Some(Ok(msg)) => {
                    let feed = Feed::repartition(msg.partition());
                    // a record of a partition unassigned since: re-read by its next owner
                    if self.parts.is_consuming(feed) {
                        records.push(copy(feed, &msg));
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "repartition consumer error");
                    return;
                }
            }
        }
    }

    fn handle_assignments(&mut self, records: &mut Vec<InRecord>) -> Result<(), ProcessError> {
        let events = self.consumer.context().take_events();
        if events.is_empty() {
            return Ok(());
        }
        self.publish_assignment();
        // an eager rebalance revokes everything, then assigns again. Asked
        // only when there is a change: it is a round trip to librdkafka's
        // main thread, and this runs after every poll (asked every time, it
        // cut the processor from ~70,000 to ~21,000 events/s)
        let eager = matches!(self.consumer.rebalance_protocol(), RebalanceProtocol::Eager);
        for event in events {
            match event {
                Assignment::Assigned(list) => {
                    let parts = list.iter().filter_map(|(t, p)| Feed::of(&self.fixed.topics, t, *p));
                    let parts = parts.filter(|f| !self.parts.has_no_state(*f)).map(|f| Part::new(f.stage, f.partition));
                    let parts: HashSet<Part> = parts.collect();
                    self.parts.unpark_except(&parts);
                    for (topic, partition) in list {
                        let Some(feed) = Feed::of(&self.fixed.topics, &topic, partition) else { continue };
                        if self.parts.has_no_state(feed) {
                            if self.fixed.input.partitioned_by == Partitioning::Custom {
                                return Err(ProcessError::InputGrew { partition, state: self.layout.device_state });
                            }
                            self.parts.assign_stateless(partition);
                        } else {
                            self.parts.assign(Part::new(feed.stage, partition))?;
                        }
                    }
                    // after the restores are held, so readiness never blinks in between
                    self.health.unblock(NOT_JOINED);
                }
                Assignment::Revoked(list) => {
                    for (topic, partition) in list {
                        let Some(feed) = Feed::of(&self.fixed.topics, &topic, partition) else { continue };
                        if self.parts.has_no_state(feed) {
                            records.retain(|r| r.feed() != feed);
                            self.parts.revoke_stateless(partition);
                            continue;
                        }
                        // the store goes, and the repartition records it would have taken
                        let part = Part::new(feed.stage, partition);
                        records.retain(|r| r.part() != part);
                        self.parts.revoke(part, eager);
                    }
                }
            }
        }
        Ok(())
    }

    /// This thread's partitions per topic, as a metric.
    fn publish_assignment(&self) {
        let assigned = self.consumer.assignment().unwrap_or_default();
        for topic in self.group_topics() {
            let n = assigned.elements().iter().filter(|e| e.topic() == topic).count();
            metrics().thread_partitions(&self.name, topic, n);
        }
    }

    /// The topics this thread's group consumer subscribes to.
    fn group_topics(&self) -> [&str; 2] {
        [&self.fixed.topics.events, &self.fixed.topics.user_activity]
    }

    /// Processes `records` (while the previous batch may still be
    /// committing), settles the previous batch, then opens this batch's
    /// transaction and hands its commit to the committer thread.
    fn commit_batch(&mut self, records: Vec<InRecord>) -> Result<(), ProcessError> {
        let started = Instant::now();
        if let Some(schemas) = &self.schemas {
            let ids = confluent_ids(records.iter().filter_map(|r| r.value.as_deref()));
            if !schemas.prepare(&ids, &self.shutdown, &self.health) {
                // shutting down: the batch was never begun; it is read again
                return Ok(());
            }
        }
        let config = Arc::clone(&self.config.read().expect("config lock"));
        let mut decode = config.decode_options();
        decode.schemas = self.schemas.clone().map(|s| s as Arc<dyn codec::WriterSchemas>);
        let env = BatchEnv {
            rules: &config.rules,
            topics: &self.fixed.topics,
            layout: self.layout,
            job_format: self.job_encoding,
            decode,
            max_record_bytes: self.fixed.input.max_record_bytes,
            partitioning: self.fixed.input.partitioned_by,
            now_ms: now_ms(),
        };
        let processed = {
            let prior = self.in_flight.as_ref().map_or_else(Prior::default, |f| Prior::new(&f.batch.state));
            process_batch(&records, StateView { stores: &self.parts.stores, prior: &prior }, &env)
        };
        let first = first_offsets(&records);
        let processed_at = Instant::now();
        if !self.settle(&first)? {
            // the previous batch was rewound, and this one with it
            return Ok(());
        }
        tracing::debug!(
            records = records.len(),
            process_ms = processed_at.duration_since(started).as_millis() as u64,
            settle_ms = processed_at.elapsed().as_millis() as u64,
            "batch processed"
        );
        let out = processed?;
        self.open_transaction(out, first, started, records.len())
    }

    /// Begins a transaction with `out`'s records and positions and hands
    /// its commit to the committer thread.
    fn open_transaction(
        &mut self,
        out: BatchOutput,
        first: Offsets,
        started: Instant,
        records: usize,
    ) -> Result<(), ProcessError> {
        self.txn_began = Instant::now();
        let produced = self.stall.during("begin_transaction and produce", || {
            self.producer.inner.begin_transaction().and_then(|()| self.produce(&out.records, &out.positions))
        });
        let offsets = match produced {
            Ok(offsets) => offsets,
            Err(e) => {
                tracing::warn!(error = %e, records, "transaction failed before its commit");
                return self.recover(&first, Stop::Failed(e));
            }
        };
        let batch = Batch { out, offsets, first, started, records };
        let in_flight = InFlight::spawn(&self.producer, &self.commit_env, batch).map_err(ProcessError::Thread)?;
        self.in_flight = Some(in_flight);
        Ok(())
    }

    /// Waits for the committing batch, if any. Committed: its state goes to
    /// the stores. Failed: the transaction is aborted and the consumer
    /// rewound to the first offsets of that batch and of `next` (the batch
    /// processed meanwhile, now void); returns false.
    fn settle(&mut self, next: &Offsets) -> Result<bool, ProcessError> {
        let Some(in_flight) = self.in_flight.take() else { return Ok(true) };
        let (batch, outcome) = in_flight.wait(HUNG_AFTER);
        match outcome {
            Outcome::Committed(changelog) => {
                metrics().transaction(true);
                self.health.unblock(CANNOT_COMMIT);
                self.note_committed(&batch.positions);
                self.write_stores(batch.state, &batch.positions, &changelog)?;
                batch.stats.publish(&self.fixed.topics);
                metrics().batch_duration(BatchSpan::Process, batch.started.elapsed().as_secs_f64());
                metrics().batch_records(batch.records);
                Ok(true)
            }
            Outcome::Failed(e) => {
                tracing::warn!(error = %e, records = batch.records, "commit failed");
                self.recover(&earliest(batch.first, next), e)?;
                Ok(false)
            }
            Outcome::Hung(silent) => {
                self.recover_hung(silent)?;
                Ok(false)
            }
        }
    }

    /// Queues the batch's records and adds its input offsets, with the
    /// group metadata, to the open transaction.
    /// The input offsets are returned with the group metadata, for the
    /// commit thread to add to the transaction.
    fn produce(&self, out: &[OutRecord], positions: &Offsets) -> Result<TxnOffsets, KafkaError> {
        for rec in out {
            self.producer.send(rec)?;
        }
        let mut tpl = TopicPartitionList::new();
        for (feed, next) in positions {
            tpl.add_partition_offset(feed.topic(&self.fixed.topics), feed.partition, Offset::Offset(*next))?;
        }
        let group = self.consumer.group_metadata().ok_or(KafkaError::Canceled)?;
        Ok(TxnOffsets { offsets: tpl, group })
    }

    fn note_committed(&self, positions: &Offsets) {
        let mut committed = self.committed.lock().expect("committed offsets lock");
        for (feed, next) in positions {
            committed.insert((feed.topic(&self.fixed.topics).to_owned(), feed.partition), *next);
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
                input_offset: positions.get(&Feed::input(key)).copied().or(old.input_offset),
                changelog_offset: changelog.get(&key).map_or(old.changelog_offset, |o| o + 1),
            };
            let mut puts: Vec<(&[u8], &[u8])> = writes.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
            // in key order, each memtable insert starts its skip-list search
            // where the previous one ended instead of at the top
            puts.sort_unstable_by_key(|(k, _)| *k);
            store.write(&puts, meta)?;
            self.parts.metas.insert(key, meta);
        }
        Ok(())
    }
}

/// The processor's group consumer: new partitions paused until restored,
/// lag against the offsets its transactions commit, and a revocation that
/// waits for the commit in flight.
fn new_consumer(
    config: &Config,
    layout: Layout,
    gate: &Arc<Gate>,
    committed: &CommittedOffsets,
) -> Result<BaseConsumer<GroupContext>, KafkaError> {
    let gate = Arc::clone(gate);
    // partitions leave only once their last transaction has an outcome
    let context = GroupContext::new(&config.kafka.group_id, true)
        .with_committed(Arc::clone(committed))
        .with_revoke_hook(Box::new(move |_, _| gate.wait_idle(REVOKE_WAIT)));
    // A static member that rejoins gets its cached assignment without a
    // rebalance: partitions added to the input while it was away would stay
    // unassigned. While the input has more partitions than the state, every
    // join is a rebalance computed on the current partition count.
    let grown = layout.events != layout.device_state;
    if grown && config.kafka.static_membership {
        tracing::info!(
            input_partitions = layout.events,
            state_partitions = layout.device_state,
            "the input has more partitions than the device state: joining without static membership"
        );
    }
    client::processor_consumer(config, !grown).create_with_context(context)
}

/// A transactional producer for this instance (`transactional.id` =
/// `<group_id>-<instance_id>`), not yet initialised.
pub(super) fn new_producer(config: &Config) -> Result<TxnProducer, KafkaError> {
    TxnProducer::new(&client::transactional_producer(config), Topics::new(config))
}

/// What one [`Runner::drain`] took: messages polled, and the records and
/// bytes it accepted of them.
#[derive(Default)]
struct Drained {
    polled: usize,
    records: usize,
    bytes: usize,
}

/// Copies a record out of librdkafka's buffer, unless its partition is not
/// ready (restoring): then it is dropped and re-read after the restore.
fn accept(parts: &mut Partitions, topics: &TopicsConfig, msg: &BorrowedMessage<'_>) -> Option<InRecord> {
    let feed = Feed::of(topics, msg.topic(), msg.partition())?;
    if !parts.is_consuming(feed) {
        if feed.source == Source::Input && !parts.has_no_state(feed) {
            parts.dropped(Part::new(feed.stage, feed.partition), msg.offset());
        }
        return None;
    }
    Some(copy(feed, msg))
}

fn copy(feed: Feed, msg: &BorrowedMessage<'_>) -> InRecord {
    InRecord {
        stage: feed.stage,
        source: feed.source,
        partition: feed.partition,
        offset: msg.offset(),
        key: msg.key().map(<[u8]>::to_vec),
        value: msg.payload().map(<[u8]>::to_vec),
    }
}
