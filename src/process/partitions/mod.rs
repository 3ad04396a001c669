//! The stores of the assigned partitions and what it takes to move them
//! through their states ([`state`]): opening and restoring them on
//! assignment (input paused meanwhile), resuming them once restored,
//! closing them on revocation, and resyncing them with their changelogs
//! after a transaction whose outcome is unknown. The state machine itself
//! is pure ([`state::PartitionMap`]); this module does the Kafka and
//! RocksDB calls each transition asks for.
//!
//! Device state partition `q` is owned by whoever is assigned input
//! partition `q`; that owner also reads partition `q` of the repartition
//! topic (input records that arrived on another partition), through a
//! consumer of its own that it assigns while the store is ready. Input
//! partitions numbered `K` and above (the input grew) hold no state: their
//! records are all forwarded, so they are consumed as soon as assigned.

pub mod state;

use super::ProcessError;
use super::batch::StoreLookup;
use super::restore::{self, RestoreDone, RestoreJob};
use super::stage::{Feed, Part, Stage, Via};
use crate::config::Config;
use crate::kafka::TopicPartition;
use crate::kafka::client;
use crate::kafka::context::{CommittedOffsets, GroupContext};
use crate::kafka::patience::{self, COMMITTED_PATIENCE};
use crate::store::{RocksStore, Store, StoreMeta, held_here_lately};
use crate::telemetry::{Health, Reason, metrics};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use state::{Assigned, PartitionMap, Phase, Restore, Seek};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

/// How recently another processing thread of this process must have held a
/// store for its reopening to count as a hand-over between threads.
const HANDOVER: Duration = Duration::from_secs(60);

/// How long a partition may wait for its store, still open in another
/// processing thread of this process, before the instance says it is not
/// ready because of it.
const HANDOVER_PATIENCE: Duration = Duration::from_secs(30);

/// How often a store held by another thread is asked for again (this runs
/// after every poll of the loop).
const HANDOVER_RETRY: Duration = Duration::from_millis(50);

/// An input partition without state (numbered `K` and above): consumed
/// from the committed offset once that can be looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stateless {
    /// Assigned, or paused by a resync: resumes at the committed offset.
    Waiting,
    Consuming,
}

pub struct Partitions {
    config: Arc<Config>,
    state_dir: PathBuf,
    map: PartitionMap,
    /// What the group has committed, learned when a partition resumes.
    committed: CommittedOffsets,
    done_tx: Sender<RestoreDone>,
    done_rx: Receiver<RestoreDone>,
    /// Reports taken off the channel early (see [`Partitions::assign`]).
    reports: Vec<RestoreDone>,
    health: Health,
    /// Device state partitions `K`.
    state_partitions: i32,
    /// Reads the repartition topic's partitions of the ready device stores.
    side: BaseConsumer,
    side_assigned: HashSet<i32>,
    stateless: BTreeMap<i32, Stateless>,
}

impl StoreLookup for Partitions {
    fn store(&self, part: Part) -> Option<&dyn Store> {
        self.map.store(part)
    }
}

impl Partitions {
    pub fn new(
        config: Arc<Config>,
        health: Health,
        committed: CommittedOffsets,
        state_partitions: i32,
    ) -> Result<Partitions, KafkaError> {
        let (done_tx, done_rx) = channel();
        let side = client::repartition_consumer(&config).create()?;
        Ok(Partitions {
            state_dir: config.process.state_dir.clone(),
            config,
            map: PartitionMap::default(),
            committed,
            done_tx,
            done_rx,
            reports: Vec::new(),
            health,
            state_partitions,
            side,
            side_assigned: HashSet::new(),
            stateless: BTreeMap::new(),
        })
    }

    /// The consumer of the repartition topic (polled with the group's).
    pub fn side(&self) -> &BaseConsumer {
        &self.side
    }

    /// Whether the repartition topic has partitions to read.
    pub fn reads_side(&self) -> bool {
        !self.side_assigned.is_empty()
    }

    /// Whether records of `feed` are taken now.
    pub fn is_consuming(&self, feed: Feed) -> bool {
        match feed.via {
            Via::Repartition => self.side_assigned.contains(&feed.partition),
            Via::Input if self.has_no_state(feed) => self.stateless.get(&feed.partition) == Some(&Stateless::Consuming),
            Via::Input => self.map.is_ready(Part::new(feed.stage, feed.partition)),
        }
    }

    /// An input partition that no state partition is numbered after.
    pub fn has_no_state(&self, feed: Feed) -> bool {
        feed.stage == Stage::Device && feed.via == Via::Input && feed.partition >= self.state_partitions
    }

    /// A newly assigned input partition without state.
    pub fn assign_stateless(&mut self, partition: i32) {
        self.stateless.insert(partition, Stateless::Waiting);
    }

    pub fn revoke_stateless(&mut self, partition: i32) {
        self.stateless.remove(&partition);
    }

    /// A ready partition's store and the offsets it reflects.
    pub fn ready_mut(&mut self, part: Part) -> Option<(&mut Box<dyn Store>, &mut StoreMeta)> {
        self.map.ready_mut(part)
    }

    /// Whether any partition is ready (shutdown waits until none is).
    pub fn has_ready_stores(&self) -> bool {
        self.map.has_ready()
    }

    /// Seeks the repartition topic's partitions back to the group's
    /// committed offsets (after an abort: nothing since was written).
    pub fn rewind_side(&mut self, consumer: &BaseConsumer<GroupContext>) -> Result<(), KafkaError> {
        let topic = self.config.topics.device_events.clone();
        for q in self.side_assigned.clone() {
            let offset = committed(consumer, &topic, q)?;
            self.side.seek(&topic, q, offset, Duration::from_secs(10))?;
        }
        Ok(())
    }

    fn side_assign(&mut self, consumer: &BaseConsumer<GroupContext>, q: i32) -> Result<(), KafkaError> {
        let topic = &self.config.topics.device_events;
        let offset = committed(consumer, topic, q)?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, q, offset)?;
        self.side.incremental_assign(&tpl)?;
        self.side_assigned.insert(q);
        Ok(())
    }

    fn side_unassign(&mut self, q: i32) {
        if !self.side_assigned.remove(&q) {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.config.topics.device_events, q);
        if let Err(e) = self.side.incremental_unassign(&tpl) {
            tracing::error!(partition = q, error = %e, "could not unassign a repartition partition");
        }
    }

    /// Remembers the first record dropped for a partition still restoring.
    pub fn dropped(&mut self, part: Part, offset: i64) {
        self.map.dropped(part, offset);
    }

    /// Opens the store of a newly assigned partition and starts its restore
    /// (or, when another thread still has it open, asks for it again later).
    pub fn assign(&mut self, part: Part) -> Result<(), ProcessError> {
        let wound_down = match self.map.assign(part) {
            Assigned::Known => return Ok(()),
            // still open from the revocation: it only checks the changelog
            // for what others may have committed meanwhile (usually
            // nothing: the partition stayed here), and the instance stays ready
            Assigned::Reopen(store) => return self.start_restore(part, store, false, None),
            Assigned::Open { wound_down } => wound_down,
        };
        // from another processing thread of this process (the assignment
        // moved it between threads): on disk up to a moment ago, so its
        // catch-up does not make the instance unready
        let handed_over = held_here_lately(&part.store_path(&self.state_dir), HANDOVER);
        if !handed_over {
            self.health.block(Reason::Restoring(part.store_name()));
        }
        if let Some(old) = wound_down {
            // a restore cancelled by a revocation still holds the database
            // lock, in its thread and then in its report: let both go
            let _ = old.join();
            self.reports.extend(self.done_rx.try_iter());
            self.reports.retain(|d| d.part != part);
        }
        self.map.await_store(part, !handed_over, Instant::now());
        metrics().stores_awaiting(1);
        self.open_awaiting(part)
    }

    /// Tries to open an awaiting partition's store, and starts its restore
    /// if it could.
    fn open_awaiting(&mut self, part: Part) -> Result<(), ProcessError> {
        let Some(store) = RocksStore::open_if_free(&part.store_path(&self.state_dir))? else {
            self.store_still_held(part);
            return Ok(());
        };
        let w = self.map.store_opened(part).expect("awaiting");
        self.stopped_awaiting(part);
        self.start_restore(part, Box::new(store), w.unready, w.seek)
    }

    fn store_still_held(&mut self, part: Part) {
        let w = self.map.awaiting_mut(part).expect("awaiting");
        if w.next_try == w.since {
            tracing::info!(store = %part, "store still open in another processing thread; asking again until it lets go");
        }
        w.next_try = Instant::now() + HANDOVER_RETRY;
        if !w.overdue && w.since.elapsed() >= HANDOVER_PATIENCE {
            w.overdue = true;
            let waited_s = w.since.elapsed().as_secs();
            tracing::warn!(store = %part, waited_s, "store still open in another processing thread; still waiting");
            self.health.block(Reason::StoreHeld(part.store_name()));
        }
    }

    /// A partition's wait for its store ended (taken over, or revoked).
    fn stopped_awaiting(&mut self, part: Part) {
        metrics().stores_awaiting(-1);
        self.health.unblock(Reason::StoreHeld(part.store_name()));
    }

    /// An assignment arrived: the parked stores it does not bring back
    /// close now, before any store is opened.
    pub fn unpark_except(&mut self, assigned: &HashSet<Part>) {
        self.map.unpark_except(assigned);
    }

    /// `unready`: `/readyz` says `restoring <part>` until it is done.
    fn start_restore(
        &mut self,
        part: Part,
        store: Box<dyn Store>,
        unready: bool,
        seek: Option<Seek>,
    ) -> Result<(), ProcessError> {
        if unready {
            self.health.block(Reason::Restoring(part.store_name()));
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let job = RestoreJob {
            part,
            changelog: part.stage.changelog(&self.config.topics).to_owned(),
            store,
            client: client::restore_consumer(&self.config),
            cancel: Arc::clone(&cancel),
        };
        let thread = restore::spawn(job, self.done_tx.clone()).map_err(ProcessError::Thread)?;
        self.map.restoring(part, Restore { cancel, thread }, seek);
        Ok(())
    }

    /// After a transaction whose outcome is unknown: every ready store
    /// catches up with its changelog (the transaction may have committed)
    /// and its input resumes from the committed offset. The partitions are
    /// paused meanwhile, as on assignment.
    pub fn resync(&mut self, consumer: &BaseConsumer<GroupContext>) -> Result<(), ProcessError> {
        for q in self.side_assigned.clone() {
            self.side_unassign(q);
        }
        for (partition, state) in self.stateless.iter_mut() {
            pause(consumer, &self.config.topics.events, *partition);
            *state = Stateless::Waiting;
        }
        for (part, store) in self.map.take_for_resync() {
            pause(consumer, part.stage.input(&self.config.topics), part.partition);
            self.start_restore(part, store, true, Some(Seek::Committed))?;
        }
        Ok(())
    }

    /// Closes a revoked partition's store (or cancels its restore); with
    /// `park` (an eager rebalance) an open store is kept for the assignment
    /// that follows.
    pub fn revoke(&mut self, part: Part, park: bool) {
        if part.stage == Stage::Device {
            self.side_unassign(part.partition);
        }
        if self.map.revoke(part, park).was_awaiting {
            self.stopped_awaiting(part);
        }
        self.health.unblock(Reason::Restoring(part.store_name()));
    }

    /// Takes in finished restores and resumes their partitions (at the
    /// offset they must resume from). Returns how many became ready.
    pub fn poll_restores(&mut self, consumer: &BaseConsumer<GroupContext>) -> Result<usize, ProcessError> {
        for part in self.map.due(Instant::now()) {
            self.open_awaiting(part)?;
        }
        self.reports.extend(self.done_rx.try_iter());
        for done in std::mem::take(&mut self.reports) {
            // the report of a restore cancelled by a revocation: its store is dropped here
            if done.cancelled {
                continue;
            }
            let part = done.part;
            let Some(thread) = self.map.restored(part, done.store, done.meta) else { continue };
            let _ = thread.join();
            done.result?;
            metrics().restore_completed(part.stage.name());
            tracing::debug!(store = %part, records = done.records, "restore finished");
        }
        let mut ready = 0;
        for part in self.map.in_phase(Phase::ToResume) {
            match self.resume(consumer, part, self.map.seek_of(part)) {
                Ok(()) => {
                    self.map.resumed(part);
                    self.health.unblock(Reason::Restoring(part.store_name()));
                    ready += 1;
                }
                Err(e) => tracing::warn!(store = %part, error = %e, "cannot resume a restored partition yet; retrying"),
            }
        }
        let waiting: Vec<i32> =
            self.stateless.iter().filter(|(_, s)| **s == Stateless::Waiting).map(|(p, _)| *p).collect();
        for partition in waiting {
            match self.resume(consumer, Part::new(Stage::Device, partition), Some(Seek::Committed)) {
                Ok(()) => {
                    self.stateless.insert(partition, Stateless::Consuming);
                }
                Err(e) => tracing::warn!(partition, error = %e, "cannot resume an input partition yet; retrying"),
            }
        }
        Ok(ready)
    }

    /// Seeks a partition to where it must resume (`seek`; none: where the
    /// consumer is), and resumes it.
    fn resume(
        &mut self,
        consumer: &BaseConsumer<GroupContext>,
        part: Part,
        seek: Option<Seek>,
    ) -> Result<(), KafkaError> {
        let config = Arc::clone(&self.config);
        let topic = part.stage.input(&config.topics);
        let committed = committed(consumer, topic, part.partition)?;
        if let Offset::Offset(o) = committed {
            let tp = TopicPartition::new(topic, part.partition);
            self.committed.lock().expect("committed offsets lock").insert(tp, o);
        }
        let offset = match seek {
            None => None,
            Some(Seek::To(o)) => Some(Offset::Offset(o)),
            Some(Seek::Committed) => Some(committed),
        };
        if let Some(offset) = offset {
            consumer.seek(topic, part.partition, offset, Duration::from_secs(10))?;
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, part.partition);
        consumer.resume(&tpl)?;
        if part.stage == Stage::Device && part.partition < self.state_partitions {
            self.side_assign(consumer, part.partition)?;
        }
        tracing::info!(topic, partition = part.partition, ?offset, "partition restored and resumed");
        Ok(())
    }

    /// Exports store sizes.
    pub fn publish_stats(&self) {
        for (part, store) in self.map.ready() {
            let s = store.stats();
            metrics().state_size(part.stage.name(), part.partition, s.keys, s.bytes);
        }
    }

    /// Cancels restores and closes every store (shutdown).
    pub fn close(&mut self) {
        let (threads, awaiting) = self.map.close();
        for t in threads {
            let _ = t.join();
        }
        for part in awaiting {
            self.stopped_awaiting(part);
        }
        for q in self.side_assigned.clone() {
            self.side_unassign(q);
        }
        self.stateless.clear();
    }
}

/// The group's committed offset of a partition (where its input resumes
/// after a resync); the beginning when nothing was committed yet.
/// Asked again for up to [`COMMITTED_PATIENCE`]: right after a broker
/// comes back its group coordinator answers `NotCoordinator` or "loading"
/// for a while, and the outage test caught an abort's rewind that failed
/// the stage on the first such answer.
fn committed(consumer: &BaseConsumer<GroupContext>, topic: &str, partition: i32) -> Result<Offset, KafkaError> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let read = || consumer.committed_offsets(tpl.clone(), Duration::from_secs(10));
    let what = format!("committed offset of {topic}/{partition}");
    let got = patience::ask_again(&what, COMMITTED_PATIENCE, Duration::from_millis(500), || false, read)?;
    let offset = got.find_partition(topic, partition).map(|e| e.offset());
    Ok(match offset {
        Some(Offset::Offset(o)) => Offset::Offset(o),
        _ => Offset::Beginning,
    })
}

fn pause(consumer: &BaseConsumer<GroupContext>, topic: &str, partition: i32) {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    if let Err(e) = consumer.pause(&tpl) {
        tracing::error!(topic, partition, error = %e, "could not pause a partition for its resync");
    }
}
