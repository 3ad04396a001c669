//! `postback dlq replay`: puts jobs from the DLQ back on `postback.jobs` for
//! another round, all of them or those matching a partner, a reason and a
//! time range. Replayed jobs start over (attempt 0, a fresh expiry) and keep
//! their job id, so partners can still de-duplicate. Truncated copies of
//! jobs that were too large to produce (header `truncated: true`) are
//! counted and skipped: their URL is cut, and sending it would be wrong.

use crate::clock::now_ms;
use crate::codec::{JobEncoding, decode_job, encode_job};
use crate::config::Config;
use crate::kafka::context::QuietContext;
use crate::kafka::{admin, client, partition_for};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::time::Duration;

/// Which DLQ records to replay.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub partner: Option<String>,
    /// A substring of the `error` header.
    pub reason: Option<String>,
    /// Record timestamps (ms) from, inclusive.
    pub since_ms: Option<i64>,
    /// Record timestamps (ms) until, exclusive.
    pub until_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub read: u64,
    pub replayed: u64,
    pub undecodable: u64,
    /// Truncated copies of jobs too large to produce: never replayed.
    pub truncated: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Admin(#[from] admin::AdminError),
}

fn header<'a>(m: &'a BorrowedMessage<'_>, name: &str) -> Option<&'a str> {
    m.headers()?.iter().find(|h| h.key == name).and_then(|h| std::str::from_utf8(h.value?).ok())
}

fn matches(m: &BorrowedMessage<'_>, partner: &str, f: &Filter) -> bool {
    let ts = m.timestamp().to_millis().unwrap_or(0);
    f.partner.as_deref().is_none_or(|p| p == partner)
        && f.reason.as_deref().is_none_or(|r| header(m, "error").is_some_and(|e| e.contains(r)))
        && f.since_ms.is_none_or(|s| ts >= s)
        && f.until_ms.is_none_or(|u| ts < u)
}

/// Reads the DLQ from its start to its current end and re-queues matches.
pub fn replay(config: &Config, filter: &Filter) -> Result<Summary, ReplayError> {
    let dlq = &config.topics.jobs_dlq;
    let consumer: BaseConsumer<QuietContext> = client::restore_consumer(config).create_with_context(QuietContext)?;
    let n = admin::partitions(&consumer, dlq)?.ok_or_else(|| admin::AdminError::Missing(dlq.clone()))?;
    let jobs_partitions = admin::partitions(&consumer, &config.topics.jobs)?
        .ok_or_else(|| admin::AdminError::Missing(config.topics.jobs.clone()))?;
    // read up to the end as it is now: jobs replayed into the DLQ again
    // while this runs are not replayed a second time
    let mut ends = HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in 0..n {
        let (low, high) = consumer.fetch_watermarks(dlq, p, Duration::from_secs(10))?;
        if high > low {
            ends.insert(p, high);
            tpl.add_partition_offset(dlq, p, Offset::Offset(low))?;
        }
    }
    consumer.assign(&tpl)?;
    let producer: BaseProducer = client::producer(config).create()?;
    let mut summary = Summary::default();
    while !ends.is_empty() {
        match consumer.poll(Duration::from_secs(10)) {
            None => break,
            Some(Err(KafkaError::PartitionEOF(p))) => {
                ends.remove(&p);
            }
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(m)) => {
                let Some(end) = ends.get(&m.partition()).copied() else { continue };
                if m.offset() + 1 >= end {
                    ends.remove(&m.partition());
                }
                if m.offset() >= end {
                    continue;
                }
                summary.read += 1;
                if header(&m, "truncated") == Some("true") {
                    summary.truncated += 1;
                    continue;
                }
                let Ok(mut job) = decode_job(m.payload().unwrap_or_default()) else {
                    summary.undecodable += 1;
                    continue;
                };
                if !matches(&m, &job.partner_id, filter) {
                    continue;
                }
                let ttl = job.expires_ms - job.created_ms;
                job.attempt = 0;
                job.not_before_ms = 0;
                job.expires_ms = now_ms() + ttl.max(config.process.job_ttl.ms());
                let key = m.key().unwrap_or(job.job_id.as_bytes()).to_vec();
                let value = encode_job(&job, JobEncoding::Json);
                let rec = BaseRecord::to(&config.topics.jobs)
                    .partition(partition_for(&key, jobs_partitions))
                    .key(&key)
                    .payload(&value);
                producer.send(rec).map_err(|(e, _)| e)?;
                producer.poll(Duration::ZERO);
                summary.replayed += 1;
            }
        }
    }
    producer.flush(Duration::from_secs(60))?;
    Ok(summary)
}
