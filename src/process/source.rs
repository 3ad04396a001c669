//! Where batches come from: the group's consumer (the input and the
//! user-activity topics) and the repartition topic's side consumer, polled
//! and drained into a batch that adapts to the commit in flight; the
//! rebalance events applied to the [`Partitions`] between polls; and the
//! consumer-side steps of the transaction cycle (its group metadata, the
//! offsets it committed, a rewind, a resync).

use super::ProcessError;
use super::gate::Gate;
use super::partitions::Partitions;
use super::records::{InRecord, Offsets};
use super::stage::{Feed, Part, Stage, Via};
use crate::config::reload::SharedConfig;
use crate::config::{Config, Partitioning, TopicsConfig};
use crate::kafka::TopicPartition;
use crate::kafka::admin::Layout;
use crate::kafka::client;
use crate::kafka::context::{Assignment, CommittedOffsets, GroupContext};
use crate::telemetry::metrics::metrics;
use crate::telemetry::{Health, Reason};
use rdkafka::Offset;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata, RebalanceProtocol};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Longest a revocation waits for the commit in flight.
const REVOKE_WAIT: Duration = Duration::from_secs(30);
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

pub struct BatchSource {
    /// The thread's name (`processor`, `processor-1`), in metrics.
    name: String,
    config: SharedConfig,
    /// Settings that cannot change without a restart (topics).
    fixed: Arc<Config>,
    layout: Layout,
    consumer: BaseConsumer<GroupContext>,
    parts: Partitions,
    /// The next offset committed per input partition, shared with the
    /// consumer's context, which reports lag against it.
    committed: CommittedOffsets,
    /// When ready partitions' positions were last compared with what was
    /// committed (see [`BatchSource::moved_positions`]).
    positions_checked: Instant,
    health: Health,
    shutdown: CancellationToken,
}

/// What one [`BatchSource::drain`] took: messages polled, and the records
/// and bytes it accepted of them.
#[derive(Default)]
struct Drained {
    polled: usize,
    records: usize,
    bytes: usize,
}

impl BatchSource {
    /// `gate`: a revocation waits until no commit is in flight.
    pub fn new(
        name: String,
        config: SharedConfig,
        fixed: Arc<Config>,
        layout: Layout,
        gate: &Arc<Gate>,
        health: Health,
        shutdown: CancellationToken,
    ) -> Result<BatchSource, ProcessError> {
        let committed = CommittedOffsets::default();
        let consumer = new_consumer(&fixed, layout, gate, &committed)?;
        let parts = Partitions::new(Arc::clone(&fixed), health.clone(), Arc::clone(&committed), layout.device_state)?;
        Ok(BatchSource {
            name,
            config,
            fixed,
            layout,
            consumer,
            parts,
            committed,
            positions_checked: Instant::now(),
            health,
            shutdown,
        })
    }

    /// Joins the group.
    pub fn subscribe(&self) -> Result<(), KafkaError> {
        self.consumer.subscribe(&self.group_topics())
    }

    pub fn parts(&self) -> &Partitions {
        &self.parts
    }

    pub fn parts_mut(&mut self) -> &mut Partitions {
        &mut self.parts
    }

    /// The group metadata a transaction commits offsets with (KIP-447).
    pub fn group_metadata(&self) -> Option<ConsumerGroupMetadata> {
        self.consumer.group_metadata()
    }

    /// Collects a batch that adapts to the commit in flight: it takes what
    /// arrives while the previous transaction commits and is cut as soon as
    /// that commit is settled (`slot_free`) and nothing more is waiting — so
    /// the next transaction starts at once, and batches grow with load by
    /// themselves. `max_batch` records, `max_batch_bytes` and
    /// `commit_interval` (since the batch's first record) bound it.
    pub fn poll_batch(&mut self, slot_free: impl Fn() -> bool) -> Result<Vec<InRecord>, ProcessError> {
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
            let slot_free = slot_free();
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
                    return Err(self.consumer_fenced(code, reason));
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
        self.health.block_with(Reason::NotJoined, how);
    }

    /// The consumer was fenced by a member with our `group.instance.id`:
    /// after our session expired (a broker away longer than
    /// `session.timeout.ms`), that member is our own rejoin racing a request
    /// made before it; otherwise another instance took our identity. Either
    /// way the stage stops: a consumer replaced in-process was seen to stall
    /// under load, while a restart rejoins as the same static member at once
    /// and resumes from the committed offsets.
    fn consumer_fenced(&self, code: RDKafkaErrorCode, reason: String) -> ProcessError {
        let why = if self.consumer.context().lost_within(SELF_FENCE_WINDOW) {
            "its session expired while the broker was away; a restart rejoins as the same static member"
        } else {
            "another instance joined with the same instance_id"
        };
        ProcessError::FatalConsumer(format!("{code:?}: {reason} ({why})"))
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

    /// Applies the rebalance events since the last poll: assigned
    /// partitions open and restore their stores, revoked ones close them
    /// (and their records still in `records` are dropped).
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
                Assignment::Assigned(list) => self.assigned(list)?,
                Assignment::Revoked(list) => self.revoked(list, records, eager),
            }
        }
        Ok(())
    }

    fn assigned(&mut self, list: Vec<TopicPartition>) -> Result<(), ProcessError> {
        let feeds: Vec<Feed> =
            list.iter().filter_map(|tp| Feed::of(&self.fixed.topics, &tp.topic, tp.partition)).collect();
        let stateful: HashSet<Part> =
            feeds.iter().filter(|f| !self.parts.has_no_state(**f)).map(|f| Part::new(f.stage, f.partition)).collect();
        self.parts.unpark_except(&stateful);
        for feed in feeds {
            if !self.parts.has_no_state(feed) {
                self.parts.assign(Part::new(feed.stage, feed.partition))?;
            } else if self.fixed.input.partitioned_by == Partitioning::Custom {
                return Err(ProcessError::InputGrew { partition: feed.partition, state: self.layout.device_state });
            } else {
                self.parts.assign_stateless(feed.partition);
            }
        }
        // after the restores are held, so readiness never blinks in between
        self.health.unblock(Reason::NotJoined);
        Ok(())
    }

    fn revoked(&mut self, list: Vec<TopicPartition>, records: &mut Vec<InRecord>, eager: bool) {
        for tp in list {
            let Some(feed) = Feed::of(&self.fixed.topics, &tp.topic, tp.partition) else { continue };
            if self.parts.has_no_state(feed) {
                records.retain(|r| r.feed() != feed);
                self.parts.revoke_stateless(feed.partition);
                continue;
            }
            // the store goes, and the repartition records it would have taken
            let part = Part::new(feed.stage, feed.partition);
            records.retain(|r| r.part() != part);
            self.parts.revoke(part, eager);
        }
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

    /// A transaction committed these positions.
    pub fn note_committed(&self, positions: &Offsets) {
        let mut committed = self.committed.lock().expect("committed offsets lock");
        for (feed, next) in positions {
            committed.insert(TopicPartition::new(feed.topic(&self.fixed.topics), feed.partition), *next);
        }
    }

    /// When idle: the positions of ready partitions that moved past what
    /// was committed without a record to process — past the commit marker
    /// that ends every transaction on a transactional topic — so that an
    /// offsets-only transaction takes the committed offset, and every
    /// tool's lag, to the end. At most once per [`POSITIONS_EVERY`].
    pub fn moved_positions(&mut self) -> Option<Offsets> {
        if self.positions_checked.elapsed() < POSITIONS_EVERY {
            return None;
        }
        self.positions_checked = Instant::now();
        let positions = self.consumer.position().ok()?;
        let committed = self.committed.lock().expect("committed offsets lock").clone();
        let mut moved = Offsets::new();
        for e in positions.elements() {
            let (Some(stage), Offset::Offset(pos)) = (Stage::of_input(&self.fixed.topics, e.topic()), e.offset())
            else {
                continue;
            };
            let feed = Feed::input(Part::new(stage, e.partition()));
            let done = committed.get(&TopicPartition::new(e.topic(), e.partition()));
            if self.parts.is_consuming(feed) && done.is_some_and(|c| pos > *c) {
                moved.insert(feed, pos);
            }
        }
        (!moved.is_empty()).then_some(moved)
    }

    /// Seeks every partition in `first` back to its offset there (after an
    /// abort, nothing of those batches was written); the repartition
    /// topic's partitions go back to the committed offsets.
    pub fn rewind(&mut self, first: &Offsets) -> Result<(), ProcessError> {
        for (feed, offset) in first {
            if feed.via == Via::Repartition || !self.parts.is_consuming(*feed) {
                continue;
            }
            let topic = feed.topic(&self.fixed.topics);
            let seek = self.consumer.seek(topic, feed.partition, Offset::Offset(*offset), Duration::from_secs(10));
            if let Err(source) = seek {
                return Err(ProcessError::Rewind {
                    topic: topic.to_owned(),
                    partition: feed.partition,
                    offset: *offset,
                    source,
                });
            }
        }
        self.parts.rewind_side(&self.consumer).map_err(|source| ProcessError::Rewind {
            topic: self.fixed.topics.device_events.clone(),
            partition: -1,
            offset: -1,
            source,
        })
    }

    /// Every store catches up with its changelog and its input resumes
    /// from the committed offset (a transaction's outcome is unknown).
    pub fn resync(&mut self) -> Result<(), ProcessError> {
        self.parts.resync(&self.consumer)
    }

    /// Exports store sizes.
    pub fn publish_stats(&self) {
        self.parts.publish_stats();
    }

    /// Leaves the group (the revocation closes every store) and closes.
    pub fn leave(&mut self) {
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
            if (assigned == 0 && !self.parts.has_ready_stores()) || Instant::now() >= deadline {
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

/// Copies a record out of librdkafka's buffer, unless its partition is not
/// ready (restoring): then it is dropped and re-read after the restore.
fn accept(parts: &mut Partitions, topics: &TopicsConfig, msg: &BorrowedMessage<'_>) -> Option<InRecord> {
    let feed = Feed::of(topics, msg.topic(), msg.partition())?;
    if !parts.is_consuming(feed) {
        if feed.via == Via::Input && !parts.has_no_state(feed) {
            parts.dropped(Part::new(feed.stage, feed.partition), msg.offset());
        }
        return None;
    }
    Some(copy(feed, msg))
}

fn copy(feed: Feed, msg: &BorrowedMessage<'_>) -> InRecord {
    InRecord {
        stage: feed.stage,
        via: feed.via,
        partition: feed.partition,
        offset: msg.offset(),
        key: msg.key().map(<[u8]>::to_vec),
        value: msg.payload().map(<[u8]>::to_vec),
    }
}
