//! RocksDB store: one database directory per stage partition
//! (`<state_dir>/device-3`, `<state_dir>/user-5`; the caller names it).

use super::lease::Lease;
use super::{Entry, META_CHANGELOG, META_INPUT, Store, StoreError, StoreMeta, StoreStats};
use rocksdb::{DB, Options, WriteBatch, WriteOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest an open waits for another thread of this process to close the
/// same store (a partition moving between processing threads: the old
/// owner closes it within one poll of its loop).
const OPEN_WAIT: Duration = Duration::from_secs(30);

pub struct RocksStore {
    db: DB,
    path: PathBuf,
    /// Declared after `db`, so the directory is released once it is closed.
    _lease: Option<Lease>,
}

impl RocksStore {
    /// Opens (creating if missing) the store in directory `path`.
    pub fn open(path: &Path) -> Result<RocksStore, StoreError> {
        let path = path.to_owned();
        let lease = Lease::take(&path, OPEN_WAIT)
            .ok_or_else(|| StoreError::InUse { path: path.display().to_string(), waited_s: OPEN_WAIT.as_secs() })?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        // many small stores share one process: keep each one's footprint small
        opts.set_write_buffer_size(16 << 20);
        opts.set_max_open_files(256);
        opts.set_keep_log_file_num(2);
        let db =
            DB::open(&opts, &path).map_err(|source| StoreError::Rocks { path: path.display().to_string(), source })?;
        Ok(RocksStore { db, path, _lease: Some(lease) })
    }

    /// Opens an existing store read-only (inspect of a stopped instance).
    pub fn open_read_only(path: &Path) -> Result<RocksStore, StoreError> {
        let opts = Options::default();
        let db = DB::open_for_read_only(&opts, path, false)
            .map_err(|source| StoreError::Rocks { path: path.display().to_string(), source })?;
        Ok(RocksStore { db, path: path.to_owned(), _lease: None })
    }

    fn err(&self, source: rocksdb::Error) -> StoreError {
        StoreError::Rocks { path: self.path.display().to_string(), source }
    }

    fn read_i64(&self, key: &[u8]) -> Result<Option<i64>, StoreError> {
        match self.db.get_pinned(key).map_err(|e| self.err(e))? {
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

impl RocksStore {
    fn write_batch(&mut self, puts: &[(&[u8], &[u8])], meta: StoreMeta, logged: bool) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        for (k, v) in puts {
            batch.put(k, v);
        }
        if let Some(input) = meta.input_offset {
            batch.put(META_INPUT, input.to_le_bytes());
        }
        batch.put(META_CHANGELOG, meta.changelog_offset.to_le_bytes());
        // no fsync per batch: the changelog is the source of truth, and a
        // store that loses its tail restores it from there
        let mut opts = WriteOptions::default();
        opts.set_sync(false);
        opts.disable_wal(!logged);
        self.db.write_opt(batch, &opts).map_err(|e| self.err(e))
    }
}

impl Store for RocksStore {
    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.db.multi_get(keys).into_iter().map(|r| r.map_err(|e| self.err(e))).collect()
    }

    fn write(&mut self, puts: &[(&[u8], &[u8])], meta: StoreMeta) -> Result<(), StoreError> {
        self.write_batch(puts, meta, true)
    }

    fn write_unlogged(&mut self, puts: &[(&[u8], &[u8])], meta: StoreMeta) -> Result<(), StoreError> {
        self.write_batch(puts, meta, false)
    }

    fn persist(&mut self) -> Result<(), StoreError> {
        self.db.flush().map_err(|e| self.err(e))
    }

    fn meta(&self) -> Result<StoreMeta, StoreError> {
        Ok(StoreMeta {
            input_offset: self.read_i64(META_INPUT)?,
            changelog_offset: self.read_i64(META_CHANGELOG)?.unwrap_or(0),
        })
    }

    fn stats(&self) -> StoreStats {
        let prop = |name: &str| self.db.property_int_value(name).ok().flatten().unwrap_or(0);
        StoreStats {
            keys: prop("rocksdb.estimate-num-keys"),
            bytes: prop("rocksdb.total-sst-files-size") + prop("rocksdb.cur-size-all-mem-tables"),
        }
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        for item in self.db.prefix_iterator(prefix) {
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

    #[test]
    fn unlogged_writes_are_durable_once_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let meta = StoreMeta { input_offset: None, changelog_offset: 10_000 };
        {
            let mut s = RocksStore::open(dir.path()).unwrap();
            let keys: Vec<Vec<u8>> = (0..10_000).map(|i| format!("a:{i}").into_bytes()).collect();
            let puts: Vec<(&[u8], &[u8])> = keys.iter().map(|k| (k.as_slice(), b"v".as_slice())).collect();
            s.write_unlogged(&puts, meta).unwrap();
            s.persist().unwrap();
            // no write-ahead log was written for them: the flush made them durable
            let wal: u64 = std::fs::read_dir(dir.path())
                .unwrap()
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
                .map(|e| e.metadata().unwrap().len())
                .sum();
            assert_eq!(wal, 0, "unlogged writes leave the WAL empty");
        }
        let s = RocksStore::open(dir.path()).unwrap();
        assert_eq!(s.meta().unwrap(), meta);
        assert_eq!(s.get_many(&[b"a:0", b"a:9999"]).unwrap(), vec![Some(b"v".to_vec()), Some(b"v".to_vec())]);
    }
}
