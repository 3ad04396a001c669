//! Restoring a partition's store from its changelog, on its own thread so
//! the poll loop keeps serving the other partitions (this one stays paused).
//!
//! Reads `read_committed` from the offset the store says it reflects up to
//! the end of the partition, writing in batches that each record how far
//! they got, so an interrupted restore resumes where it stopped.

use crate::kafka::context::QuietContext;
use crate::store::{Store, StoreKind, StoreMeta};
use crate::telemetry::metrics;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::Duration;

const WRITE_EVERY: usize = 2000;

pub struct RestoreJob {
    pub kind: StoreKind,
    pub partition: i32,
    pub changelog: String,
    pub store: Box<dyn Store>,
    pub client: ClientConfig,
    pub cancel: Arc<AtomicBool>,
}

pub struct RestoreDone {
    pub kind: StoreKind,
    pub partition: i32,
    pub store: Box<dyn Store>,
    pub meta: StoreMeta,
    pub records: u64,
    /// The partition was revoked while restoring.
    pub cancelled: bool,
    pub result: Result<(), String>,
}

/// Runs a restore and reports on `done`.
pub fn spawn(job: RestoreJob, done: Sender<RestoreDone>) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name(format!("restore-{}-{}", job.kind, job.partition))
        .spawn(move || {
            let report = run(job);
            // the loop may have stopped meanwhile; then nobody needs the report
            let _ = done.send(report);
        })
        .expect("spawn restore thread")
}

fn run(mut job: RestoreJob) -> RestoreDone {
    let (kind, partition) = (job.kind, job.partition);
    let labels = [kind.as_str(), &partition.to_string()];
    let mut meta = match job.store.meta() {
        Ok(m) => m,
        Err(e) => {
            let cancelled = job.cancel.load(Ordering::Relaxed);
            return RestoreDone {
                kind,
                partition,
                store: job.store,
                meta: StoreMeta::default(),
                records: 0,
                cancelled,
                result: Err(e.to_string()),
            };
        }
    };
    let result = restore(&mut job, &mut meta, &labels);
    metrics().restore_remaining.with_label_values(&labels).set(0);
    let records = result.as_ref().copied().unwrap_or(0);
    let cancelled = job.cancel.load(Ordering::Relaxed);
    RestoreDone { kind, partition, store: job.store, meta, records, cancelled, result: result.map(|_| ()) }
}

fn restore(job: &mut RestoreJob, meta: &mut StoreMeta, labels: &[&str; 2]) -> Result<u64, String> {
    let consumer: BaseConsumer<QuietContext> =
        job.client.create_with_context(QuietContext).map_err(|e| e.to_string())?;
    let (low, high) =
        consumer.fetch_watermarks(&job.changelog, job.partition, Duration::from_secs(30)).map_err(|e| e.to_string())?;
    let start = meta.changelog_offset.max(low);
    if start >= high {
        tracing::info!(store = %job.kind, partition = job.partition, offset = start, "store is up to date with its changelog");
        return Ok(0);
    }
    tracing::info!(store = %job.kind, partition = job.partition, from = start, to = high, "restoring store from changelog");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&job.changelog, job.partition, Offset::Offset(start)).map_err(|e| e.to_string())?;
    consumer.assign(&tpl).map_err(|e| e.to_string())?;
    let remaining = metrics().restore_remaining.with_label_values(labels);
    let restored = metrics().restored_records.with_label_values(labels);
    let mut pending: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(WRITE_EVERY);
    let mut next = start;
    let mut total = 0u64;
    loop {
        if job.cancel.load(Ordering::Relaxed) {
            return Err("cancelled: partition revoked".into());
        }
        match consumer.poll(Duration::from_millis(500)) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(_))) => break,
            Some(Err(e)) => {
                tracing::warn!(topic = %job.changelog, partition = job.partition, error = %e, "restore consumer error");
                continue;
            }
            Some(Ok(m)) => {
                next = m.offset() + 1;
                if let (Some(k), Some(v)) = (m.key(), m.payload()) {
                    pending.push((k.to_vec(), v.to_vec()));
                }
            }
        }
        if pending.len() >= WRITE_EVERY {
            total += flush(job, meta, &mut pending, next)?;
            restored.inc_by(WRITE_EVERY as u64);
            remaining.set((high - next).max(0));
        }
    }
    // the end of a read_committed partition lies past its last commit marker
    if let Ok(pos) = consumer.position() {
        if let Some(Offset::Offset(o)) = pos.find_partition(&job.changelog, job.partition).map(|e| e.offset()) {
            next = next.max(o);
        }
    }
    let n = pending.len() as u64;
    total += flush(job, meta, &mut pending, next)?;
    restored.inc_by(n);
    tracing::info!(store = %job.kind, partition = job.partition, records = total, changelog_offset = next, "store restored");
    Ok(total)
}

fn flush(
    job: &mut RestoreJob,
    meta: &mut StoreMeta,
    pending: &mut Vec<(Vec<u8>, Vec<u8>)>,
    next: i64,
) -> Result<u64, String> {
    let n = pending.len() as u64;
    let puts: Vec<(&[u8], &[u8])> = pending.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
    meta.changelog_offset = next;
    job.store.write(&puts, *meta).map_err(|e| e.to_string())?;
    pending.clear();
    Ok(n)
}
