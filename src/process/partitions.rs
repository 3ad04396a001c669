//! The stores of the assigned partitions and their lifecycle: opened and
//! restored on assignment (input paused meanwhile), resumed when restored,
//! closed on revocation.

use super::ProcessError;
use super::batch::Stores;
use super::restore::{self, RestoreDone, RestoreJob};
use super::stage::Part;
use crate::config::Config;
use crate::kafka::client;
use crate::kafka::context::GroupContext;
use crate::store::{RocksStore, Store, StoreMeta};
use crate::telemetry::{Health, metrics};
use rdkafka::consumer::{BaseConsumer, Consumer};
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

pub struct Partitions {
    config: Arc<Config>,
    state_dir: PathBuf,
    pub stores: Stores,
    pub metas: HashMap<Part, StoreMeta>,
    restoring: HashMap<Part, Restoring>,
    /// Restores cancelled by a revocation that may still hold their store.
    winding_down: HashMap<Part, JoinHandle<()>>,
    /// First offset dropped while a partition was not ready: where to seek
    /// when it becomes ready.
    pending_seek: HashMap<Part, i64>,
    done_tx: Sender<RestoreDone>,
    done_rx: Receiver<RestoreDone>,
    health: Health,
}

impl Partitions {
    pub fn new(config: Arc<Config>, health: Health) -> Partitions {
        let (done_tx, done_rx) = channel();
        Partitions {
            state_dir: config.process.state_dir.clone(),
            config,
            stores: HashMap::new(),
            metas: HashMap::new(),
            restoring: HashMap::new(),
            winding_down: HashMap::new(),
            pending_seek: HashMap::new(),
            done_tx,
            done_rx,
            health,
        }
    }

    pub fn is_ready(&self, key: Part) -> bool {
        self.stores.contains_key(&key)
    }

    /// Remembers the first record dropped for a partition still restoring.
    pub fn dropped(&mut self, key: Part, offset: i64) {
        self.pending_seek.entry(key).or_insert(offset);
    }

    fn reason(part: Part) -> String {
        format!("restoring {part}")
    }

    /// Opens the store of a newly assigned partition and starts its restore.
    pub fn assign(&mut self, key: Part) -> Result<(), ProcessError> {
        if self.stores.contains_key(&key) || self.restoring.contains_key(&key) {
            return Ok(());
        }
        if let Some(old) = self.winding_down.remove(&key) {
            // a cancelled restore still holds the database lock
            let _ = old.join();
        }
        self.health.block(Self::reason(key));
        let store: Box<dyn Store> = Box::new(RocksStore::open(&key.store_path(&self.state_dir))?);
        let cancel = Arc::new(AtomicBool::new(false));
        let job = RestoreJob {
            part: key,
            changelog: key.stage.changelog(&self.config.topics).to_owned(),
            store,
            client: client::restore_consumer(&self.config),
            cancel: Arc::clone(&cancel),
        };
        let thread = restore::spawn(job, self.done_tx.clone()).map_err(ProcessError::Thread)?;
        self.restoring.insert(key, Restoring { cancel, thread });
        Ok(())
    }

    /// Closes a revoked partition's store (or cancels its restore).
    pub fn revoke(&mut self, key: Part) {
        self.stores.remove(&key);
        self.metas.remove(&key);
        self.pending_seek.remove(&key);
        if let Some(r) = self.restoring.remove(&key) {
            r.cancel.store(true, Ordering::Relaxed);
            self.winding_down.insert(key, r.thread);
        }
        self.health.unblock(&Self::reason(key));
    }

    /// Takes in finished restores: ready stores are resumed (and rewound to
    /// the first record dropped while they restored). Returns how many
    /// partitions became ready.
    pub fn poll_restores(&mut self, consumer: &BaseConsumer<GroupContext>) -> Result<usize, ProcessError> {
        let mut ready = 0;
        while let Ok(done) = self.done_rx.try_recv() {
            let key = done.part;
            // the report of a restore cancelled by a revocation: its store is dropped here
            if done.cancelled {
                continue;
            }
            let Some(r) = self.restoring.remove(&key) else { continue };
            let _ = r.thread.join();
            done.result?;
            metrics().restore_completed(key.stage.name());
            self.metas.insert(key, done.meta);
            self.stores.insert(key, done.store);
            tracing::debug!(store = %key, records = done.records, "restore finished");
            resume(consumer, key.stage.input(&self.config.topics), key.partition, self.pending_seek.remove(&key));
            self.health.unblock(&Self::reason(key));
            ready += 1;
        }
        Ok(ready)
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

fn resume(consumer: &BaseConsumer<GroupContext>, topic: &str, partition: i32, seek: Option<i64>) {
    if let Some(offset) = seek {
        if let Err(e) = consumer.seek(topic, partition, Offset::Offset(offset), Duration::from_secs(10)) {
            tracing::error!(topic, partition, offset, error = %e, "could not rewind a restored partition");
        }
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    if let Err(e) = consumer.resume(&tpl) {
        tracing::error!(topic, partition, error = %e, "could not resume a restored partition");
    } else {
        tracing::info!(topic, partition, "partition restored and resumed");
    }
}
