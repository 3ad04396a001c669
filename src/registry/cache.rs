//! Writer schemas by id, fetched once per id before a batch is decoded and
//! kept up to `max_schemas` (the oldest fetched goes first). An id the
//! registry does not know is remembered for [`FORGET_MISSING`], so a
//! stream of such records does not become a stream of requests, while a
//! schema registered late is still found.

use super::{Registry, RegistryError, Unavailable};
use crate::codec::{EVENT_SCHEMA, WriterSchema, WriterSchemas, incompatibility};
use crate::telemetry::metrics::metrics;
use crate::telemetry::{Health, Reason};
use apache_avro::Schema;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long an unknown id is answered from memory.
pub const FORGET_MISSING: Duration = Duration::from_secs(60);
/// Longest pause between tries while the registry cannot be reached.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

enum Entry {
    Found(Arc<WriterSchema>),
    Missing { reason: String, at: Instant },
}

#[derive(Default)]
struct Entries {
    by_id: HashMap<u32, Entry>,
    order: VecDeque<u32>,
}

pub struct SchemaCache {
    registry: Registry,
    entries: RwLock<Entries>,
    max: usize,
}

/// The schema id of every Confluent-framed value among `values`.
pub fn confluent_ids<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Vec<u32> {
    let mut ids: Vec<u32> = values
        .into_iter()
        .filter_map(|v| match v {
            [0, a, b, c, d, ..] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
            _ => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

impl SchemaCache {
    pub fn new(registry: Registry, max: usize) -> SchemaCache {
        SchemaCache { registry, entries: RwLock::new(Entries::default()), max: max.max(1) }
    }

    fn needs_fetch(&self, id: u32) -> bool {
        match self.entries.read().expect("schema cache lock").by_id.get(&id) {
            None => true,
            Some(Entry::Found(_)) => false,
            Some(Entry::Missing { at, .. }) => at.elapsed() >= FORGET_MISSING,
        }
    }

    /// Makes sure every id of `ids` has an answer, waiting for the registry
    /// while it cannot be reached (readiness says so). False: shutdown came
    /// first.
    pub fn prepare(&self, ids: &[u32], shutdown: &CancellationToken, health: &Health) -> bool {
        for &id in ids {
            if !self.needs_fetch(id) {
                continue;
            }
            let mut backoff = Duration::from_millis(200);
            let entry = loop {
                match self.fetch(id) {
                    Ok(entry) => break entry,
                    Err(e) => {
                        waiting(&e, health, &format!("schema id {id}"));
                        if wait(shutdown, backoff) {
                            return false;
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            };
            available(health);
            self.insert(id, entry);
        }
        true
    }

    /// The registry's answer for `id`; `Err` only when there was none.
    fn fetch(&self, id: u32) -> Result<Entry, RegistryError> {
        let text = match self.registry.schema(id) {
            Ok(text) => text,
            Err(RegistryError::Refused(reason)) => return Ok(Entry::Missing { reason, at: Instant::now() }),
            Err(e) => return Err(e),
        };
        let schema = match Schema::parse_str(&text) {
            Ok(s) => s,
            Err(e) => {
                let reason = format!("schema id {id} is not a valid Avro schema: {e}");
                return Ok(Entry::Missing { reason, at: Instant::now() });
            }
        };
        let unreadable = incompatibility(&schema, &EVENT_SCHEMA);
        tracing::info!(schema_id = id, readable = unreadable.is_none(), "writer schema fetched");
        Ok(Entry::Found(Arc::new(WriterSchema { id, schema, unreadable })))
    }

    fn insert(&self, id: u32, entry: Entry) {
        let mut e = self.entries.write().expect("schema cache lock");
        if e.by_id.insert(id, entry).is_none() {
            e.order.push_back(id);
        }
        while e.order.len() > self.max {
            let Some(oldest) = e.order.pop_front() else { break };
            e.by_id.remove(&oldest);
        }
    }

    /// The job schema's id under `subject`, registering it if needed;
    /// waits while the registry cannot be reached. None: shutdown came
    /// first; `Err`: the registry refused it (e.g. incompatible with the
    /// subject's earlier versions).
    pub fn register(
        &self,
        subject: &str,
        schema: &str,
        shutdown: &CancellationToken,
        health: &Health,
    ) -> Option<Result<u32, RegistryError>> {
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.registry.register(subject, schema) {
                Err(e @ RegistryError::Unavailable { .. }) => {
                    waiting(&e, health, &format!("subject {subject}"));
                    if wait(shutdown, backoff) {
                        return None;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                other => {
                    available(health);
                    return Some(other);
                }
            }
        }
    }
}

/// The registry gave no usable answer: readiness holds this reason alone,
/// and the failure is counted by kind.
fn waiting(e: &RegistryError, health: &Health, what: &str) {
    let RegistryError::Unavailable { kind, detail } = e else { return };
    tracing::warn!(what, kind = kind.label(), error = %detail, "schema registry gave no usable answer; the batch waits");
    metrics().registry_failure(kind.label());
    for other in Unavailable::ALL.iter().filter(|k| *k != kind) {
        health.unblock(Reason::Registry(other.reason()));
    }
    health.block_with(Reason::Registry(kind.reason()), detail.clone());
}

fn available(health: &Health) {
    for kind in Unavailable::ALL {
        health.unblock(Reason::Registry(kind.reason()));
    }
}

/// Sleeps `d` unless shutdown comes first (then true).
fn wait(shutdown: &CancellationToken, d: Duration) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if shutdown.is_cancelled() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50).min(until.saturating_duration_since(Instant::now())));
    }
    shutdown.is_cancelled()
}

impl WriterSchemas for SchemaCache {
    fn writer(&self, id: u32) -> Option<Result<Arc<WriterSchema>, String>> {
        match self.entries.read().expect("schema cache lock").by_id.get(&id)? {
            Entry::Found(w) => Some(Ok(Arc::clone(w))),
            Entry::Missing { reason, .. } => Some(Err(reason.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_from_confluent_framing_only() {
        let values: [&[u8]; 5] = [&[0, 0, 0, 0, 7, 1], &[0, 0, 0, 1, 0], b"{\"a\":1}", &[0, 0, 0], &[0, 0, 0, 0, 7]];
        assert_eq!(confluent_ids(values), vec![7, 256]);
    }
}
