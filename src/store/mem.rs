//! In-memory store: the same contract as RocksDB, for tests.

use super::{Entry, Store, StoreError, StoreMeta, StoreStats};
use std::collections::BTreeMap;

#[derive(Debug, Default, Clone)]
pub struct MemStore {
    data: BTreeMap<Vec<u8>, Vec<u8>>,
    meta: StoreMeta,
}

impl MemStore {
    pub fn new() -> MemStore {
        MemStore::default()
    }
}

impl Store for MemStore {
    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        Ok(keys.iter().map(|k| self.data.get(*k).cloned()).collect())
    }

    fn write(&mut self, puts: &[(&[u8], &[u8])], meta: StoreMeta) -> Result<(), StoreError> {
        for (k, v) in puts {
            self.data.insert(k.to_vec(), v.to_vec());
        }
        self.meta = meta;
        Ok(())
    }

    fn meta(&self) -> Result<StoreMeta, StoreError> {
        Ok(self.meta)
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            keys: self.data.len() as u64,
            bytes: self.data.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum(),
        }
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>, StoreError> {
        Ok(self
            .data
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}
