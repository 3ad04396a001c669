//! Partition state stores: one per assigned partition of a stage, keyed by
//! `app:device` or `project:user`, holding `domain::binary` values. RocksDB in
//! production; [`MemStore`], with the same contract, in tests.
//!
//! Guarantee: a store only ever holds state whose Kafka transaction has
//! committed (the processor writes after `commit_transaction`), together
//! with the changelog offset it reflects, so restoring from the changelog
//! starts exactly where the store stops.

mod lease;
mod mem;
mod rocks;

pub use mem::MemStore;
pub use rocks::{RocksStore, held_here_lately};

/// Offsets a store's contents reflect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreMeta {
    /// Next input offset after the last batch written (informational:
    /// the consumer group's committed offset is the truth).
    pub input_offset: Option<i64>,
    /// Next changelog offset to restore from; 0 for an empty store.
    pub changelog_offset: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store {path}: {source}")]
    Rocks { path: String, source: rocksdb::Error },
    #[error("state store {path}: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("state store {path}: open elsewhere in this process")]
    InUse { path: String },
    #[error("no state store open for {0}, an assigned partition")]
    Missing(String),
}

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Approximate size of a store, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub keys: u64,
    pub bytes: u64,
}

/// A key-value store for one partition's state.
pub trait Store: Send {
    /// Values of `keys`, in order; `None` for a key never written.
    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StoreError>;
    /// Writes `puts` and `meta` atomically. Not necessarily durable at once:
    /// after a crash a store may hold an earlier write's state and meta,
    /// never one without the other, and restoring from the changelog offset
    /// in that meta brings it up to date.
    fn write(&mut self, puts: &[(&[u8], &[u8])], meta: StoreMeta) -> Result<(), StoreError>;
    fn meta(&self) -> Result<StoreMeta, StoreError>;
    fn stats(&self) -> StoreStats;
    /// Every (key, value) whose key starts with `prefix` (inspect, tests).
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>, StoreError>;
}

/// Meta keys start with a byte no state key has (keys start with an app id).
pub(crate) const META_INPUT: &[u8] = b"\x00meta/input_offset";
pub(crate) const META_CHANGELOG: &[u8] = b"\x00meta/changelog_offset";
