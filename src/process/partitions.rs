//! The stores of the assigned partitions and their lifecycle: opened and
//! restored on assignment (input paused meanwhile), resumed when restored,
//! closed on revocation — and resynced with their changelogs after a
//! transaction whose outcome is unknown.

use super::ProcessError;
use super::batch::Stores;
use super::restore::{self, RestoreDone, RestoreJob};
use super::stage::Part;
use crate::config::Config;
use crate::kafka::client;
use crate::kafka::context::{CommittedOffsets, GroupContext};
use crate::store::{RocksStore, Store, StoreMeta};
use crate::telemetry::{Health, metrics};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

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
    /// Restores cancelled by a revocation that may still hold their store.
    winding_down: HashMap<Part, JoinHandle<()>>,
    pending_seek: HashMap<Part, Seek>,
    /// Restored partitions whose resume failed (broker away): retried.
    to_resume: Vec<Part>,
    /// What the group has committed, learned when a partition resumes.
    committed: CommittedOffsets,
    done_tx: Sender<RestoreDone>,
    done_rx: Receiver<RestoreDone>,
    health: Health,
}

impl Partitions {
    pub fn new(config: Arc<Config>, health: Health, committed: CommittedOffsets) -> Partitions {
        let (done_tx, done_rx) = channel();
        Partitions {
            state_dir: config.process.state_dir.clone(),
            config,
            stores: HashMap::new(),
            metas: HashMap::new(),
            restoring: HashMap::new(),
            winding_down: HashMap::new(),
            pending_seek: HashMap::new(),
            to_resume: Vec::new(),
            committed,
            done_tx,
            done_rx,
            health,
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

    /// Opens the store of a newly assigned partition and starts its restore.
    pub fn assign(&mut self, part: Part) -> Result<(), ProcessError> {
        if self.stores.contains_key(&part) || self.restoring.contains_key(&part) {
            return Ok(());
        }
        self.health.block(Self::reason(part));
        if let Some(old) = self.winding_down.remove(&part) {
            // a cancelled restore still holds the database lock
            let _ = old.join();
        }
        let store: Box<dyn Store> = Box::new(RocksStore::open(&part.store_path(&self.state_dir))?);
        self.start_restore(part, store)
    }

    fn start_restore(&mut self, part: Part, store: Box<dyn Store>) -> Result<(), ProcessError> {
        self.health.block(Self::reason(part));
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
        let parts: Vec<Part> = self.stores.keys().copied().collect();
        for part in parts {
            let store = self.stores.remove(&part).expect("listed above");
            self.metas.remove(&part);
            pause(consumer, part.stage.input(&self.config.topics), part.partition);
            self.pending_seek.insert(part, Seek::Committed);
            self.start_restore(part, store)?;
        }
        Ok(())
    }

    /// Closes a revoked partition's store (or cancels its restore).
    pub fn revoke(&mut self, part: Part) {
        self.stores.remove(&part);
        self.metas.remove(&part);
        self.pending_seek.remove(&part);
        self.to_resume.retain(|p| *p != part);
        if let Some(r) = self.restoring.remove(&part) {
            r.cancel.store(true, Ordering::Relaxed);
            self.winding_down.insert(part, r.thread);
        }
        self.health.unblock(&Self::reason(part));
    }

    /// Takes in finished restores and resumes their partitions (at the
    /// offset they must resume from). Returns how many became ready.
    pub fn poll_restores(&mut self, consumer: &BaseConsumer<GroupContext>) -> Result<usize, ProcessError> {
        while let Ok(done) = self.done_rx.try_recv() {
            let part = done.part;
            // the report of a restore cancelled by a revocation: its store is dropped here
            if done.cancelled {
                continue;
            }
            let Some(r) = self.restoring.remove(&part) else { continue };
            let _ = r.thread.join();
            done.result?;
            metrics().restore_completed(part.stage.name());
            self.metas.insert(part, done.meta);
            self.stores.insert(part, done.store);
            tracing::debug!(store = %part, records = done.records, "restore finished");
            self.to_resume.push(part);
        }
        let mut ready = 0;
        for part in std::mem::take(&mut self.to_resume) {
            match self.resume(consumer, part) {
                Ok(()) => {
                    self.health.unblock(&Self::reason(part));
                    ready += 1;
                }
                Err(e) => {
                    tracing::warn!(store = %part, error = %e, "cannot resume a restored partition yet; retrying");
                    self.to_resume.push(part);
                }
            }
        }
        Ok(ready)
    }

    /// Seeks a restored partition to where it must resume, and resumes it.
    fn resume(&mut self, consumer: &BaseConsumer<GroupContext>, part: Part) -> Result<(), KafkaError> {
        let topic = part.stage.input(&self.config.topics);
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
    }
}

/// The group's committed offset of a partition (where its input resumes
/// after a resync); the beginning when nothing was committed yet.
fn committed(consumer: &BaseConsumer<GroupContext>, topic: &str, partition: i32) -> Result<Offset, KafkaError> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let got = consumer.committed_offsets(tpl, Duration::from_secs(10))?;
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
