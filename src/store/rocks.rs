//! RocksDB store: one database directory per stage partition
//! (`<state_dir>/device-3`, `<state_dir>/user-5`; the caller names it).
//!
//! Writes skip RocksDB's write-ahead log: the changelog is the log. A store
//! killed before its memtable was flushed reopens at an older meta (the
//! flushed data and the meta covering it go together: one column family,
//! memtables flushed in order), and its restore catches up from the
//! changelog offset that meta names. A closing store flushes first.

use super::lease::Lease;
use super::{Entry, META_CHANGELOG, META_INPUT, Store, StoreError, StoreMeta, StoreStats};
use rocksdb::{DB, Options, WriteBatch, WriteOptions};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

/// An open database and, for a writable one, its directory's lease.
struct Open {
    db: DB,
    /// Declared after `db`, so the directory is released once it is closed.
    _lease: Option<Lease>,
    /// A writable store's registry key: its closing time is noted there.
    key: Option<PathBuf>,
}

impl Drop for Open {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            CLOSED.lock().expect("closed stores lock").insert(key, Instant::now());
        }
    }
}

/// The writable stores open in this process, by directory: what they hold
/// past their last flush is in memory only, so a reader in the same
/// process (the admin API's inspect) reads through them, not from disk.
static LIVE: LazyLock<Mutex<HashMap<PathBuf, Weak<Open>>>> = LazyLock::new(Mutex::default);

/// When each writable store of this process last closed, by directory.
static CLOSED: LazyLock<Mutex<HashMap<PathBuf, Instant>>> = LazyLock::new(Mutex::default);

/// Whether this process holds the store in `path` open right now (another
/// processing thread, about to hand it over) or closed it within `window`.
/// Such a store has its state on disk up to a moment ago: reopening it is a
/// hand-over between threads, with next to nothing to catch up.
pub fn held_here_lately(path: &Path, window: Duration) -> bool {
    let key = live_key(path);
    let open = LIVE.lock().expect("live stores lock").get(&key).is_some_and(|w| w.strong_count() > 0);
    open || CLOSED.lock().expect("closed stores lock").get(&key).is_some_and(|t| t.elapsed() <= window)
}

fn live_key(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

pub struct RocksStore {
    open: Arc<Open>,
    path: PathBuf,
}

impl RocksStore {
    /// Opens (creating if missing) the store in directory `path`; fails if
    /// another thread of this process has it open.
    pub fn open(path: &Path) -> Result<RocksStore, StoreError> {
        RocksStore::open_if_free(path)?.ok_or_else(|| StoreError::InUse { path: path.display().to_string() })
    }

    /// Opens (creating if missing) the store in directory `path`, unless
    /// another thread of this process has it open (`None`: a partition
    /// moving between processing threads whose old owner has not let it go
    /// yet; it is asked again later, never waited for — the old owner may
    /// be waiting for the broker, or for a store this thread holds).
    pub fn open_if_free(path: &Path) -> Result<Option<RocksStore>, StoreError> {
        let path = path.to_owned();
        let Some(lease) = Lease::take(&path) else { return Ok(None) };
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        // many small stores share one process: keep each one's footprint small
        opts.set_write_buffer_size(16 << 20);
        opts.set_max_open_files(256);
        opts.set_keep_log_file_num(2);
        let db =
            DB::open(&opts, &path).map_err(|source| StoreError::Rocks { path: path.display().to_string(), source })?;
        let key = live_key(&path);
        let open = Arc::new(Open { db, _lease: Some(lease), key: Some(key.clone()) });
        let mut live = LIVE.lock().expect("live stores lock");
        live.retain(|_, w| w.strong_count() > 0);
        live.insert(key, Arc::downgrade(&open));
        Ok(Some(RocksStore { open, path }))
    }

    /// Opens an existing store read-only (inspect of a stopped instance).
    /// It holds what was flushed: a store killed mid-run lacks its last
    /// writes, which its next owner restores from the changelog.
    pub fn open_read_only(path: &Path) -> Result<RocksStore, StoreError> {
        let opts = Options::default();
        let db = DB::open_for_read_only(&opts, path, false)
            .map_err(|source| StoreError::Rocks { path: path.display().to_string(), source })?;
        Ok(RocksStore { open: Arc::new(Open { db, _lease: None, key: None }), path: path.to_owned() })
    }

    /// The store in `path` for reading: through its writer when this
    /// process has it open (it holds unflushed writes), else read-only.
    pub fn open_for_reading(path: &Path) -> Result<RocksStore, StoreError> {
        let live = LIVE.lock().expect("live stores lock").get(&live_key(path)).and_then(Weak::upgrade);
        match live {
            Some(open) => Ok(RocksStore { open, path: path.to_owned() }),
            None => RocksStore::open_read_only(path),
        }
    }

    fn db(&self) -> &DB {
        &self.open.db
    }

    fn err(&self, source: rocksdb::Error) -> StoreError {
        StoreError::Rocks { path: self.path.display().to_string(), source }
    }

    fn read_i64(&self, key: &[u8]) -> Result<Option<i64>, StoreError> {
        match self.db().get_pinned(key).map_err(|e| self.err(e))? {
            None => Ok(None),
            Some(v) => {
                v.as_ref().try_into().map(|b: [u8; 8]| Some(i64::from_le_bytes(b))).map_err(|_| StoreError::Corrupt {
                    path: self.path.display().to_string(),
                    reason: format!("meta value of {} bytes", v.len()),
                })
            }
        }
    }
}

impl Store for RocksStore {
    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.db().multi_get(keys).into_iter().map(|r| r.map_err(|e| self.err(e))).collect()
    }

    fn write(&mut self, puts: &[(&[u8], &[u8])], meta: StoreMeta) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        for (k, v) in puts {
            batch.put(k, v);
        }
        if let Some(input) = meta.input_offset {
            batch.put(META_INPUT, input.to_le_bytes());
        }
        batch.put(META_CHANGELOG, meta.changelog_offset.to_le_bytes());
        // no write-ahead log (see the module's doc): it was ~6% of the
        // processing thread's time, and its file switches fsync'd there
        let mut opts = WriteOptions::default();
        opts.disable_wal(true);
        self.db().write_opt(batch, &opts).map_err(|e| self.err(e))
    }

    fn meta(&self) -> Result<StoreMeta, StoreError> {
        Ok(StoreMeta {
            input_offset: self.read_i64(META_INPUT)?,
            changelog_offset: self.read_i64(META_CHANGELOG)?.unwrap_or(0),
        })
    }

    fn stats(&self) -> StoreStats {
        let prop = |name: &str| self.db().property_int_value(name).ok().flatten().unwrap_or(0);
        StoreStats {
            keys: prop("rocksdb.estimate-num-keys"),
            bytes: prop("rocksdb.total-sst-files-size") + prop("rocksdb.cur-size-all-mem-tables"),
        }
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        for item in self.db().prefix_iterator(prefix) {
            let (k, v) = item.map_err(|e| self.err(e))?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_held_here_a_moment_ago_counts_as_handed_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device-1");
        let long = Duration::from_secs(60);
        assert!(!held_here_lately(&path, long), "never opened in this process");
        let s = RocksStore::open(&path).unwrap();
        assert!(held_here_lately(&path, Duration::ZERO), "open here right now");
        drop(s);
        assert!(held_here_lately(&path, long), "closed a moment ago");
        std::thread::sleep(Duration::from_millis(20));
        assert!(!held_here_lately(&path, Duration::from_millis(10)), "closed longer ago than the window");
        let read_only = RocksStore::open_read_only(&path).unwrap();
        drop(read_only);
        assert!(!held_here_lately(&path, Duration::from_millis(10)), "a reader is no hand-over");
    }

    #[test]
    fn writes_are_atomic_with_meta_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = RocksStore::open(&dir.path().join("device-3")).unwrap();
            assert_eq!(s.meta().unwrap(), StoreMeta { input_offset: None, changelog_offset: 0 });
            s.write(&[(b"a:1", b"x"), (b"a:2", b"y")], StoreMeta { input_offset: Some(10), changelog_offset: 7 })
                .unwrap();
        }
        let s = RocksStore::open(&dir.path().join("device-3")).unwrap();
        assert_eq!(
            s.get_many(&[b"a:1", b"a:3", b"a:2"]).unwrap(),
            vec![Some(b"x".to_vec()), None, Some(b"y".to_vec())]
        );
        assert_eq!(s.meta().unwrap(), StoreMeta { input_offset: Some(10), changelog_offset: 7 });
        assert_eq!(s.scan_prefix(b"a:").unwrap().len(), 2);
        assert!(dir.path().join("device-3").is_dir());
    }

    fn wal_bytes(dir: &Path) -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
            .map(|e| e.metadata().unwrap().len())
            .sum()
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap().filter_map(Result::ok) {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }

    /// A copy of a live store's directory is what a `kill -9` leaves: the
    /// flushed state with the meta that covers it, not the writes after it.
    #[test]
    fn a_crash_keeps_state_and_meta_together_and_readers_in_process_see_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device-0");
        let flushed = StoreMeta { input_offset: Some(3), changelog_offset: 5 };
        RocksStore::open(&path).unwrap().write(&[(b"a:1", b"old")], flushed).unwrap();
        // closed: flushed on close
        let mut s = RocksStore::open(&path).unwrap();
        let later = StoreMeta { input_offset: Some(4), changelog_offset: 9 };
        s.write(&[(b"a:1", b"new"), (b"a:2", b"y")], later).unwrap();
        assert_eq!(wal_bytes(&path), 0, "no write-ahead log");

        let image = dir.path().join("crashed");
        copy_dir(&path, &image);
        let crashed = RocksStore::open(&image).unwrap();
        assert_eq!(crashed.meta().unwrap(), flushed);
        assert_eq!(crashed.get_many(&[b"a:1", b"a:2"]).unwrap(), vec![Some(b"old".to_vec()), None]);

        // in this process, a reader goes through the writer
        let reader = RocksStore::open_for_reading(&path).unwrap();
        assert_eq!(reader.meta().unwrap(), later);
        assert_eq!(reader.get_many(&[b"a:1", b"a:2"]).unwrap(), vec![Some(b"new".to_vec()), Some(b"y".to_vec())]);
        // from disk alone the writes are not there yet
        let on_disk = RocksStore::open_read_only(&path).unwrap();
        assert_eq!(on_disk.meta().unwrap(), flushed);
        drop((reader, on_disk, s));

        // closed: the writer's last writes were flushed, and the next reader reads the disk
        let reader = RocksStore::open_for_reading(&path).unwrap();
        assert_eq!(reader.meta().unwrap(), later);
        assert_eq!(reader.get_many(&[b"a:1"]).unwrap(), vec![Some(b"new".to_vec())]);
    }
}
