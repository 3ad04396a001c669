//! Restoring a partition's store from its changelog, on its own thread so
//! the poll loop keeps serving the other partitions (this one stays paused).
//!
//! Reads `read_committed` from the offset the store says it reflects up to
//! the end of the partition, writing in batches that each record how far
//! they got, so an interrupted restore resumes where it stopped — which is
//! also what it does, after a pause, when the broker does not answer.

use super::stage::Part;
use crate::kafka::context::QuietContext;
use crate::store::{Store, StoreError, StoreMeta};
use crate::telemetry::metrics;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::Duration;

/// Records per store write: large batches (each with the changelog offset
/// it reaches, so a crash mid-restore resumes from the last one flushed).
const WRITE_EVERY: usize = 10_000;

/// Why a restore did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("restore of {part}: changelog {changelog}: {source}")]
    Kafka { part: Part, changelog: String, source: KafkaError },
    #[error("restore of {part}: {source}")]
    Store { part: Part, source: StoreError },
    #[error("restore of {0} cancelled: partition revoked")]
    Cancelled(Part),
    /// The store reflects changelog offsets the changelog never reached:
    /// the changelog was deleted and recreated under the store.
    #[error(
        "store {part} reflects changelog '{changelog}' up to offset {store_offset}, but that changelog ends at {end}: \
         it was recreated, and the store is not its state. Either put the old changelog back, or delete this store's \
         directory so it is rebuilt from the new changelog (postbacks of its devices may then repeat); see the runbook \
         (docs/operations/runbook.md, \"A changelog was recreated\")"
    )]
    AheadOfChangelog { part: Part, changelog: String, store_offset: i64, end: i64 },
}

pub struct RestoreJob {
    pub part: Part,
    pub changelog: String,
    pub store: Box<dyn Store>,
    pub client: ClientConfig,
    pub cancel: Arc<AtomicBool>,
}

pub struct RestoreDone {
    pub part: Part,
    pub store: Box<dyn Store>,
    pub meta: StoreMeta,
    pub records: u64,
    /// The partition was revoked while restoring.
    pub cancelled: bool,
    pub result: Result<(), RestoreError>,
}

/// Runs a restore and reports on `done`.
pub fn spawn(job: RestoreJob, done: Sender<RestoreDone>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name(format!("restore-{}", job.part)).spawn(move || {
        let report = run(job);
        // the loop may have stopped meanwhile; then nobody needs the report
        let _ = done.send(report);
    })
}

fn run(mut job: RestoreJob) -> RestoreDone {
    let part = job.part;
    let (result, meta) = match job.store.meta() {
        Err(source) => (Err(RestoreError::Store { part, source }), StoreMeta::default()),
        Ok(mut meta) => {
            let result = restore_retrying(&mut job, &mut meta);
            (result, meta)
        }
    };
    metrics().restore_progress(part.stage.name(), part.partition).0.set(0);
    let records = result.as_ref().copied().unwrap_or(0);
    let cancelled = job.cancel.load(Ordering::Relaxed);
    RestoreDone { part, store: job.store, meta, records, cancelled, result: result.map(|_| ()) }
}

/// A broker that does not answer only delays a restore: it goes on from
/// where it got to once it does.
fn restore_retrying(job: &mut RestoreJob, meta: &mut StoreMeta) -> Result<u64, RestoreError> {
    loop {
        match restore(job, meta) {
            Err(RestoreError::Kafka { source, .. }) if !job.cancel.load(Ordering::Relaxed) => {
                tracing::warn!(store = %job.part, error = %source, "restore interrupted; retrying in 1s");
                for _ in 0..10 {
                    if job.cancel.load(Ordering::Relaxed) {
                        return Err(RestoreError::Cancelled(job.part));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            other => return other,
        }
    }
}

fn restore(job: &mut RestoreJob, meta: &mut StoreMeta) -> Result<u64, RestoreError> {
    let (part, changelog) = (job.part, job.changelog.clone());
    let kafka = |source| RestoreError::Kafka { part, changelog: changelog.clone(), source };
    let consumer: BaseConsumer<QuietContext> = job.client.create_with_context(QuietContext).map_err(kafka)?;
    let (low, high) =
        consumer.fetch_watermarks(&job.changelog, part.partition, Duration::from_secs(30)).map_err(kafka)?;
    if meta.changelog_offset > high {
        // never "up to date": the next changelog records would be skipped
        let (store_offset, end) = (meta.changelog_offset, high);
        return Err(RestoreError::AheadOfChangelog { part, changelog, store_offset, end });
    }
    let start = meta.changelog_offset.max(low);
    if start >= high {
        tracing::info!(store = %part, offset = start, "store is up to date with its changelog");
        return Ok(0);
    }
    tracing::info!(store = %part, from = start, to = high, "restoring store from changelog");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&job.changelog, part.partition, Offset::Offset(start)).map_err(kafka)?;
    consumer.assign(&tpl).map_err(kafka)?;
    let (remaining, restored) = metrics().restore_progress(part.stage.name(), part.partition);
    let mut pending: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(WRITE_EVERY);
    let mut next = start;
    let mut total = 0u64;
    let began = std::time::Instant::now();
    let mut writing = Duration::ZERO;
    loop {
        if job.cancel.load(Ordering::Relaxed) {
            return Err(RestoreError::Cancelled(part));
        }
        match consumer.poll(Duration::from_millis(500)) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(_))) => break,
            Some(Err(e)) => {
                tracing::warn!(topic = %job.changelog, partition = part.partition, error = %e, "restore consumer error");
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
            let t = std::time::Instant::now();
            total += flush(job, meta, &mut pending, next)?;
            writing += t.elapsed();
            restored.inc_by(WRITE_EVERY as u64);
            remaining.set((high - next).max(0));
        }
    }
    // the end of a read_committed partition lies past its last commit marker
    if let Ok(pos) = consumer.position() {
        if let Some(Offset::Offset(o)) = pos.find_partition(&job.changelog, part.partition).map(|e| e.offset()) {
            next = next.max(o);
        }
    }
    let n = pending.len() as u64;
    let t = std::time::Instant::now();
    total += flush(job, meta, &mut pending, next)?;
    writing += t.elapsed();
    restored.inc_by(n);
    tracing::info!(
        store = %part,
        records = total,
        changelog_offset = next,
        seconds = format!("{:.2}", began.elapsed().as_secs_f64()),
        writing_seconds = format!("{:.2}", writing.as_secs_f64()),
        "store restored"
    );
    Ok(total)
}

fn flush(
    job: &mut RestoreJob,
    meta: &mut StoreMeta,
    pending: &mut Vec<(Vec<u8>, Vec<u8>)>,
    next: i64,
) -> Result<u64, RestoreError> {
    let n = pending.len() as u64;
    let puts: Vec<(&[u8], &[u8])> = pending.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
    meta.changelog_offset = next;
    job.store.write(&puts, *meta).map_err(|source| RestoreError::Store { part: job.part, source })?;
    pending.clear();
    Ok(n)
}
