//! The stores of the assigned partitions and their lifecycle: opened and
//! restored on assignment (input paused meanwhile), resumed when restored,
//! closed on revocation — and resynced with their changelogs after a
//! transaction whose outcome is unknown.
//!
//! Device state partition `q` is owned by whoever is assigned input
//! partition `q`; that owner also reads partition `q` of the repartition
//! topic (input records that arrived on another partition), through a
//! consumer of its own that it assigns while the store is ready. Input
//! partitions numbered `K` and above (the input grew) hold no state: their
//! records are all forwarded, so they are consumed as soon as assigned.

use super::ProcessError;
use super::batch::Stores;
use super::restore::{self, RestoreDone, RestoreJob};
use super::stage::{Feed, Part, Source, Stage};
use crate::config::Config;
use crate::kafka::client;
use crate::kafka::context::{CommittedOffsets, GroupContext};
use crate::kafka::patience::{self, COMMITTED_PATIENCE};
use crate::store::{RocksStore, Store, StoreMeta, held_here_lately};
use crate::telemetry::{Health, metrics};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
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

/// A partition assigned here whose store another processing thread of this
/// process still has open: that thread closes it when its own loop hears
/// of the revocation, which can take as long as a broker outage (it may be
/// recovering from one). Waiting for it on the spot could deadlock two
/// threads that swap partitions, and giving up after a while failed the
/// stage in the outage test; so the store is asked for again from the loop.
struct Awaiting {
    since: Instant,
    next_try: Instant,
    /// Not a hand-over (closed here long ago): a restore that makes the
    /// instance unready follows.
    unready: bool,
    /// Past [`HANDOVER_PATIENCE`]: said so, and blocks readiness.
    overdue: bool,
}

struct Restoring {
    cancel: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// Where a partition's input resumes once its store is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seek {
    /// The first offset dropped while it restored.
    To(i64),
    /// The group's committed offset (after a resync: the consumer's own
    /// position may be past records whose transaction did not commit).
    Committed,
}

pub struct Partitions {
    config: Arc<Config>,
    state_dir: PathBuf,
    pub stores: Stores,
    pub metas: HashMap<Part, StoreMeta>,
    restoring: HashMap<Part, Restoring>,
    awaiting: HashMap<Part, Awaiting>,
    /// Restores cancelled by a revocation that may still hold their store.
    winding_down: HashMap<Part, JoinHandle<()>>,
    pending_seek: HashMap<Part, Seek>,
    /// Restored partitions not resumed yet (their resume needs the broker):
    /// not ready until they are, so no record is taken from them before
    /// their seek.
    to_resume: HashMap<Part, (Box<dyn Store>, StoreMeta)>,
    /// Stores of partitions an eager rebalance revoked, kept open until the
    /// assignment that follows says whether they come back: closing one
    /// flushes its memtable, and most come back.
    parked: HashMap<Part, Box<dyn Store>>,
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
    /// Input partitions without state (numbered `K` and above), and those
    /// of them that still wait for their resume at the committed offset.
    stateless: HashSet<i32>,
    stateless_waiting: HashSet<i32>,
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
            stores: HashMap::new(),
            metas: HashMap::new(),
            restoring: HashMap::new(),
            awaiting: HashMap::new(),
            winding_down: HashMap::new(),
            pending_seek: HashMap::new(),
            to_resume: HashMap::new(),
            parked: HashMap::new(),
            committed,
            done_tx,
            done_rx,
            reports: Vec::new(),
            health,
            state_partitions,
            side,
            side_assigned: HashSet::new(),
            stateless: HashSet::new(),
            stateless_waiting: HashSet::new(),
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
        match feed.source {
            Source::Repartition => self.side_assigned.contains(&feed.partition),
            Source::Input if self.has_no_state(feed) => {
                self.stateless.contains(&feed.partition) && !self.stateless_waiting.contains(&feed.partition)
            }
            Source::Input => self.is_ready(Part::new(feed.stage, feed.partition)),
        }
    }

    /// An input partition that no state partition is numbered after.
    pub fn has_no_state(&self, feed: Feed) -> bool {
        feed.stage == Stage::Device && feed.source == Source::Input && feed.partition >= self.state_partitions
    }

    /// A newly assigned input partition without state: consumed from the
    /// committed offset once it can be looked up.
    pub fn assign_stateless(&mut self, partition: i32) {
        self.stateless.insert(partition);
        self.stateless_waiting.insert(partition);
    }

    pub fn revoke_stateless(&mut self, partition: i32) {
        self.stateless.remove(&partition);
        self.stateless_waiting.remove(&partition);
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

    pub fn is_ready(&self, part: Part) -> bool {
        self.stores.contains_key(&part)
    }

    /// Remembers the first record dropped for a partition still restoring.
    pub fn dropped(&mut self, part: Part, offset: i64) {
        self.pending_seek.entry(part).or_insert(Seek::To(offset));
    }

    fn reason(part: Part) -> String {
        format!("restoring {part}")
    }

    fn held_reason(part: Part) -> String {
        format!("store {part} still open in another processing thread")
    }

    /// Opens the store of a newly assigned partition and starts its restore
    /// (or, when another thread still has it open, asks for it again later).
    pub fn assign(&mut self, part: Part) -> Result<(), ProcessError> {
        let known = self.stores.contains_key(&part) || self.restoring.contains_key(&part);
        if known || self.awaiting.contains_key(&part) {
            return Ok(());
        }
        if let Some(store) = self.parked.remove(&part) {
            // still open from the revocation: it only checks the changelog
            // for what others may have committed meanwhile (usually nothing:
            // the partition stayed here), and the instance stays ready
            return self.start_restore(part, store, false);
        }
        let path = part.store_path(&self.state_dir);
        // from another processing thread of this process (the assignment
        // moved it between threads): on disk up to a moment ago, so its
        // catch-up does not make the instance unready
        let handed_over = held_here_lately(&path, HANDOVER);
        if !handed_over {
            self.health.block(Self::reason(part));
        }
        if let Some(old) = self.winding_down.remove(&part) {
            // a restore cancelled by a revocation still holds the database
            // lock, in its thread and then in its report: let both go
            let _ = old.join();
            self.reports.extend(self.done_rx.try_iter());
            self.reports.retain(|d| d.part != part);
        }
        let now = Instant::now();
        self.awaiting.insert(part, Awaiting { since: now, next_try: now, unready: !handed_over, overdue: false });
        metrics().stores_awaiting(1);
        self.open_awaiting(part)
    }

    /// Tries to open an awaiting partition's store, and starts its restore
    /// if it could.
    fn open_awaiting(&mut self, part: Part) -> Result<(), ProcessError> {
        let path = part.store_path(&self.state_dir);
        let Some(store) = RocksStore::open_if_free(&path)? else {
            let w = self.awaiting.get_mut(&part).expect("awaiting");
            if w.next_try == w.since {
                tracing::info!(store = %part, "store still open in another processing thread; asking again until it lets go");
            }
            w.next_try = Instant::now() + HANDOVER_RETRY;
            if !w.overdue && w.since.elapsed() >= HANDOVER_PATIENCE {
                w.overdue = true;
                let waited_s = w.since.elapsed().as_secs();
                tracing::warn!(store = %part, waited_s, "store still open in another processing thread; still waiting");
                self.health.block(Self::held_reason(part));
            }
            return Ok(());
        };
        let w = self.stop_awaiting(part).expect("awaiting");
        self.start_restore(part, Box::new(store), w.unready)
    }

    /// Forgets a partition's wait for its store (taken over, or revoked).
    fn stop_awaiting(&mut self, part: Part) -> Option<Awaiting> {
        let w = self.awaiting.remove(&part)?;
        metrics().stores_awaiting(-1);
        self.health.unblock(&Self::held_reason(part));
        Some(w)
    }

    /// Asks again for the stores other threads held (see [`Awaiting`]).
    fn retry_awaiting(&mut self) -> Result<(), ProcessError> {
        let now = Instant::now();
        let due: Vec<Part> = self.awaiting.iter().filter(|(_, w)| w.next_try <= now).map(|(p, _)| *p).collect();
        for part in due {
            self.open_awaiting(part)?;
        }
        Ok(())
    }

    /// An assignment arrived: the parked stores it does not bring back
    /// close now, before any store is opened — another thread of this
    /// process may be waiting to open one of them.
    pub fn unpark_except(&mut self, assigned: &HashSet<Part>) {
        self.parked.retain(|part, _| assigned.contains(part));
    }

    /// `unready`: `/readyz` says `restoring <part>` until it is done.
    fn start_restore(&mut self, part: Part, store: Box<dyn Store>, unready: bool) -> Result<(), ProcessError> {
        if unready {
            self.health.block(Self::reason(part));
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
        self.restoring.insert(part, Restoring { cancel, thread });
        Ok(())
    }

    /// After a transaction whose outcome is unknown: every ready store
    /// catches up with its changelog (the transaction may have committed)
    /// and its input resumes from the committed offset. The partitions are
    /// paused meanwhile, as on assignment.
    pub fn resync(&mut self, consumer: &BaseConsumer<GroupContext>) -> Result<(), ProcessError> {
        let parts: Vec<Part> = self.stores.keys().chain(self.to_resume.keys()).copied().collect();
        for q in self.side_assigned.clone() {
            self.side_unassign(q);
        }
        for partition in self.stateless.clone() {
            pause(consumer, &self.config.topics.events, partition);
            self.stateless_waiting.insert(partition);
        }
        for part in parts {
            self.metas.remove(&part);
            let store = match self.stores.remove(&part) {
                Some(store) => store,
                None => self.to_resume.remove(&part).expect("listed above").0,
            };
            pause(consumer, part.stage.input(&self.config.topics), part.partition);
            self.pending_seek.insert(part, Seek::Committed);
            self.start_restore(part, store, true)?;
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
        let open = self.stores.remove(&part).or_else(|| self.to_resume.remove(&part).map(|(store, _)| store));
        if let (true, Some(store)) = (park, open) {
            self.parked.insert(part, store);
        }
        self.metas.remove(&part);
        self.pending_seek.remove(&part);
        self.stop_awaiting(part);
        if let Some(r) = self.restoring.remove(&part) {
            r.cancel.store(true, Ordering::Relaxed);
            self.winding_down.insert(part, r.thread);
        }
        self.health.unblock(&Self::reason(part));
    }

    /// Takes in finished restores and resumes their partitions (at the
    /// offset they must resume from). Returns how many became ready.
    pub fn poll_restores(&mut self, consumer: &BaseConsumer<GroupContext>) -> Result<usize, ProcessError> {
        if !self.awaiting.is_empty() {
            self.retry_awaiting()?;
        }
        self.reports.extend(self.done_rx.try_iter());
        for done in std::mem::take(&mut self.reports) {
            let part = done.part;
            // the report of a restore cancelled by a revocation: its store is dropped here
            if done.cancelled {
                continue;
            }
            let Some(r) = self.restoring.remove(&part) else { continue };
            let _ = r.thread.join();
            done.result?;
            metrics().restore_completed(part.stage.name());
            tracing::debug!(store = %part, records = done.records, "restore finished");
            self.to_resume.insert(part, (done.store, done.meta));
        }
        let mut ready = 0;
        let parts: Vec<Part> = self.to_resume.keys().copied().collect();
        for part in parts {
            match self.resume(consumer, part) {
                Ok(()) => {
                    let (store, meta) = self.to_resume.remove(&part).expect("listed above");
                    self.stores.insert(part, store);
                    self.metas.insert(part, meta);
                    self.health.unblock(&Self::reason(part));
                    ready += 1;
                }
                Err(e) => tracing::warn!(store = %part, error = %e, "cannot resume a restored partition yet; retrying"),
            }
        }
        for partition in self.stateless_waiting.clone() {
            let part = Part::new(Stage::Device, partition);
            self.pending_seek.insert(part, Seek::Committed);
            match self.resume(consumer, part) {
                Ok(()) => {
                    self.stateless_waiting.remove(&partition);
                }
                Err(e) => tracing::warn!(partition, error = %e, "cannot resume an input partition yet; retrying"),
            }
        }
        Ok(ready)
    }

    /// Seeks a restored partition to where it must resume, and resumes it.
    fn resume(&mut self, consumer: &BaseConsumer<GroupContext>, part: Part) -> Result<(), KafkaError> {
        let config = Arc::clone(&self.config);
        let topic = part.stage.input(&config.topics);
        let committed = committed(consumer, topic, part.partition)?;
        if let Offset::Offset(o) = committed {
            self.committed.lock().expect("committed offsets lock").insert((topic.to_owned(), part.partition), o);
        }
        let offset = match self.pending_seek.get(&part) {
            None => None,
            Some(Seek::To(o)) => Some(Offset::Offset(*o)),
            Some(Seek::Committed) => Some(committed),
        };
        if let Some(offset) = offset {
            consumer.seek(topic, part.partition, offset, Duration::from_secs(10))?;
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, part.partition);
        consumer.resume(&tpl)?;
        self.pending_seek.remove(&part);
        if part.stage == Stage::Device && part.partition < self.state_partitions {
            self.side_assign(consumer, part.partition)?;
        }
        tracing::info!(topic, partition = part.partition, ?offset, "partition restored and resumed");
        Ok(())
    }

    /// Exports store sizes.
    pub fn publish_stats(&self) {
        for (part, store) in &self.stores {
            let s = store.stats();
            metrics().state_size(part.stage.name(), part.partition, s.keys, s.bytes);
        }
    }

    /// Cancels restores and closes every store (shutdown).
    pub fn close(&mut self) {
        for (_, r) in self.restoring.drain() {
            r.cancel.store(true, Ordering::Relaxed);
            let _ = r.thread.join();
        }
        for (_, t) in self.winding_down.drain() {
            let _ = t.join();
        }
        self.stores.clear();
        self.to_resume.clear();
        self.parked.clear();
        for part in self.awaiting.keys().copied().collect::<Vec<_>>() {
            self.stop_awaiting(part);
        }
        for q in self.side_assigned.clone() {
            self.side_unassign(q);
        }
        self.stateless.clear();
        self.stateless_waiting.clear();
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
