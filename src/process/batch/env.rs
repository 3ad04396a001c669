//! What one batch reads: the rules and settings it runs with
//! ([`BatchEnv`]), and the state it starts from — the committing batch's
//! writes ([`Prior`]) over the stores ([`StoreLookup`]).

use crate::codec::{DecodeOptions, JobEncoding};
use crate::config::{Partitioning, TopicsConfig};
use crate::domain::Rules;
use crate::kafka::admin::Layout;
use crate::process::stage::Part;
use crate::store::{Entry, Store};
use std::collections::{BTreeMap, HashMap};

/// What the batch reads and how it encodes.
pub struct BatchEnv<'a> {
    pub rules: &'a Rules,
    pub topics: &'a TopicsConfig,
    pub layout: Layout,
    pub job_format: JobEncoding,
    /// `[input]`: how events decode, and the largest record read at all.
    pub decode: DecodeOptions,
    pub max_record_bytes: usize,
    /// `input.partitioned_by`: whether a record's key says its state partition.
    pub partitioning: Partitioning,
    pub now_ms: i64,
}

/// The stores a batch reads, by partition: the ready ones of this thread.
pub trait StoreLookup {
    fn store(&self, part: Part) -> Option<&dyn Store>;
}

/// Stores in a plain map (tests, benchmarks).
pub type Stores = HashMap<Part, Box<dyn Store>>;

impl StoreLookup for Stores {
    fn store(&self, part: Part) -> Option<&dyn Store> {
        self.get(&part).map(|s| s.as_ref())
    }
}

/// Encoded state to write per store after the commit.
pub type StateWrites = BTreeMap<Part, Vec<Entry>>;

/// The state written by a batch whose transaction is still committing:
/// newer than the stores, so the next batch reads it first. Should that
/// commit fail, both batches are rewound and this view is dropped with them.
#[derive(Default)]
pub struct Prior<'a> {
    values: HashMap<Part, foldhash::HashMap<&'a [u8], &'a [u8]>>,
}

impl<'a> Prior<'a> {
    pub fn new(state: &'a StateWrites) -> Prior<'a> {
        let values = state
            .iter()
            .map(|(part, entries)| (*part, entries.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect()))
            .collect();
        Prior { values }
    }

    pub fn get(&self, part: Part, key: &[u8]) -> Option<&'a [u8]> {
        self.values.get(&part).and_then(|m| m.get(key)).copied()
    }
}

/// Reads the state a batch starts from: the committing batch's, then the
/// stores'.
#[derive(Clone, Copy)]
pub struct StateView<'a> {
    pub stores: &'a dyn StoreLookup,
    pub prior: &'a Prior<'a>,
}
