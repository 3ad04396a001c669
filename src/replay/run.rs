//! The replay loop: read a batch, write what matches inside a transaction
//! that also commits the group's offsets and cursors, repeat to the end.

use super::cursor::{self, Cursor};
use super::filter::{self, Dlq, Record, Verdict};
use super::{Counts, PartitionRun, ReplayError, Request, Summary};
use crate::clock::now_ms;
use crate::codec::{JobEncoding, encode_job};
use crate::config::Config;
use crate::kafka::context::QuietContext;
use crate::kafka::{admin, client, partition_for};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Longest wait for a record while a partition has not reached its end.
const STALL: Duration = Duration::from_secs(60);
const TIMEOUT: Duration = Duration::from_secs(30);

/// Told how far the replay got (a progress bar on a terminal).
pub trait Progress {
    /// Records the run will read in all.
    fn total(&mut self, records: u64);
    /// `records` more read, of which `replayed` committed so far in all.
    fn advance(&mut self, records: u64, replayed: u64);
}

/// Replays what `req` asks for; see the module's guarantee.
pub fn replay(config: &Config, req: &Request, progress: &mut dyn Progress) -> Result<Summary, ReplayError> {
    let (topic, target) = match req.dlq {
        Dlq::Jobs => (config.topics.jobs_dlq.clone(), config.topics.jobs.clone()),
        Dlq::Events => (config.topics.events_dlq.clone(), config.topics.events.clone()),
    };
    let group = req.name.clone().unwrap_or_else(|| default_group(config, req));
    let probe = admin::reach(config)?;
    let n = admin::partitions(&probe, &topic)?.ok_or_else(|| admin::AdminError::Missing(topic.clone()))?;
    let target_partitions =
        admin::partitions(&probe, &target)?.ok_or_else(|| admin::AdminError::Missing(target.clone()))?;
    let consumer: BaseConsumer<QuietContext> = client::base(config)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create_with_context(QuietContext)?;
    let mut parts = positions(&consumer, &topic, n, req.from_start)?;
    let resumed = parts.values().any(|p| p.resumed);
    let partitions = parts
        .iter()
        .map(|(&partition, p)| PartitionRun { partition, from: p.next, to: p.cursor.end, resumed: p.resumed })
        .collect();
    let mut summary = Summary {
        dlq: req.dlq,
        topic: topic.clone(),
        target: target.clone(),
        group: group.clone(),
        dry_run: req.dry_run,
        resumed,
        run: Counts::default(),
        total: Counts::default(),
        partitions,
    };
    progress.total(parts.values().map(|p| (p.cursor.end - p.next).max(0) as u64).sum());
    let mut tpl = TopicPartitionList::new();
    for (p, pos) in &parts {
        if pos.next < pos.cursor.end {
            tpl.add_partition_offset(&topic, *p, Offset::Offset(pos.next))?;
        }
    }
    consumer.assign(&tpl)?;
    let producer = if req.dry_run { None } else { Some(transactional(config, &group)?) };
    let decode = config.decode_options();
    let crash_after: Option<u64> = std::env::var("POSTBACK_REPLAY_CRASH_AFTER").ok().and_then(|v| v.parse().ok());
    let out = Out { dlq: req.dlq, target: &target, partitions: target_partitions, ttl_ms: config.process.job_ttl.ms() };
    let mut last_record = Instant::now();
    while parts.values().any(|p| !p.done()) {
        let mut batch = Vec::new();
        let mut run = Counts::default();
        if let Some(p) = &producer {
            p.begin_transaction().map_err(ReplayError::Transaction)?;
        }
        while batch.len() < req.batch.max(1) && parts.values().any(|p| !p.done()) {
            let Some(polled) = consumer.poll(Duration::from_millis(200)) else {
                if last_record.elapsed() > STALL {
                    let (&partition, p) = parts.iter().find(|(_, p)| !p.done()).expect("a partition not done");
                    let (seconds, end, at) = (STALL.as_secs(), p.cursor.end, p.next);
                    return Err(ReplayError::Stalled { topic, partition, seconds, end, at });
                }
                if !batch.is_empty() {
                    break;
                }
                continue;
            };
            last_record = Instant::now();
            let m = match polled {
                Ok(m) => m,
                Err(KafkaError::PartitionEOF(p)) => {
                    // everything before the end is read (transaction markers
                    // hold offsets no record has): the cursor is at the end
                    if let Some(pos) = parts.get_mut(&p) {
                        pos.finish();
                    }
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let Some(pos) = parts.get_mut(&m.partition()) else { continue };
            if m.offset() >= pos.cursor.end {
                pos.finish();
                continue;
            }
            pos.next = m.offset() + 1;
            pos.cursor.read += 1;
            run.read += 1;
            batch.push(m.partition());
            match filter::judge(req.dlq, &as_record(&m), &req.filter, &decode) {
                Verdict::Skip => {}
                Verdict::Unreplayable(why) => {
                    run.matched += 1;
                    pos.cursor.unreplayable += 1;
                    if why == "truncated" { run.truncated += 1 } else { run.undecodable += 1 }
                }
                Verdict::Replay(job) => {
                    run.matched += 1;
                    if let Some(producer) = &producer {
                        out.write(producer, &m, job)?;
                    }
                    pos.cursor.replayed += 1;
                    run.replayed += 1;
                }
            }
            if pos.next >= pos.cursor.end {
                pos.eof = true;
            }
        }
        if let Some(p) = &producer {
            if crash_after.is_some_and(|n| summary.run.replayed + run.replayed >= n) {
                // a test kills the replay here, with a transaction open
                eprintln!("postback: dlq replay: POSTBACK_REPLAY_CRASH_AFTER reached; exiting mid-transaction");
                std::process::exit(137);
            }
            commit(p, &consumer, &topic, &parts)?;
        }
        add(&mut summary.run, run);
        progress.advance(run.read, summary.run.replayed);
    }
    summary.total = totals(&summary.run, parts.values().map(|p| p.cursor), req.dry_run);
    Ok(summary)
}

/// `{kafka.group_id}.replay.{dlq}.{8 hex digits of the filter}`.
fn default_group(config: &Config, req: &Request) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(req.filter.key().as_bytes());
    format!("{}.replay.{}.{}", config.kafka.group_id, req.dlq.label(), hex::encode(&digest[..4]))
}

/// Where the run is in one partition.
struct Position {
    next: i64,
    cursor: Cursor,
    resumed: bool,
    eof: bool,
}

impl Position {
    fn done(&self) -> bool {
        self.eof || self.next >= self.cursor.end
    }

    /// Records arrive in order: at the partition's end, or at a record past
    /// the run's end, everything before the run's end has been read.
    fn finish(&mut self) {
        self.next = self.next.max(self.cursor.end);
        self.eof = true;
    }
}

/// Each partition's start, from its watermarks and the group's commits.
fn positions(
    consumer: &BaseConsumer<QuietContext>,
    topic: &str,
    n: i32,
    from_start: bool,
) -> Result<BTreeMap<i32, Position>, ReplayError> {
    let mut all = TopicPartitionList::new();
    for p in 0..n {
        all.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(all, TIMEOUT)?;
    let mut seen = Vec::with_capacity(n as usize);
    for p in 0..n {
        let (low, high) = consumer.fetch_watermarks(topic, p, TIMEOUT)?;
        let offset = committed.find_partition(topic, p).and_then(|e| match e.offset() {
            Offset::Offset(o) => Some((o, e.metadata().to_owned())),
            _ => None,
        });
        seen.push(cursor::Committed { low, high, offset });
    }
    let starts = cursor::starts(&seen, from_start, now_ms());
    Ok((0..n)
        .zip(starts)
        .map(|(p, s)| (p, Position { next: s.from, cursor: s.cursor, resumed: s.resumed, eof: s.from >= s.cursor.end }))
        .collect())
}

fn as_record<'a>(m: &'a BorrowedMessage<'a>) -> Record<'a> {
    Record {
        value: m.payload().unwrap_or_default(),
        timestamp_ms: m.timestamp().to_millis(),
        error: header(m, "error"),
        truncated: header(m, "truncated") == Some("true"),
    }
}

fn header<'a>(m: &'a BorrowedMessage<'_>, name: &str) -> Option<&'a str> {
    m.headers()?.iter().find(|h| h.key == name).and_then(|h| std::str::from_utf8(h.value?).ok())
}

/// The replay's producer: transactional, its id the replay's group, so two
/// runs of one replay at once fence each other instead of both writing.
fn transactional(config: &Config, group: &str) -> Result<BaseProducer<QuietContext>, ReplayError> {
    let producer: BaseProducer<QuietContext> = client::producer(config)
        .set("transactional.id", group)
        .set("transaction.timeout.ms", "60000")
        .create_with_context(QuietContext)?;
    producer.init_transactions(TIMEOUT).map_err(ReplayError::Transaction)?;
    Ok(producer)
}

/// Where replayed records go.
struct Out<'a> {
    dlq: Dlq,
    target: &'a str,
    partitions: i32,
    ttl_ms: i64,
}

impl Out<'_> {
    fn write(
        &self,
        producer: &BaseProducer<QuietContext>,
        m: &BorrowedMessage<'_>,
        job: Option<Box<crate::domain::Job>>,
    ) -> Result<(), ReplayError> {
        let from = format!("{}/{}/{}", m.topic(), m.partition(), m.offset());
        let headers = OwnedHeaders::new().insert(Header { key: "replayed-from", value: Some(&from) });
        let key = m.key().unwrap_or_default();
        let (value, partition) = match (self.dlq, job) {
            (Dlq::Jobs, Some(mut job)) => {
                // another round: attempt 0 and a fresh expiry
                let ttl = job.expires_ms - job.created_ms;
                job.attempt = 0;
                job.not_before_ms = 0;
                job.expires_ms = now_ms() + ttl.max(self.ttl_ms);
                let key = if key.is_empty() { job.job_id.as_bytes() } else { key };
                (encode_job(&job, JobEncoding::Json), partition_for(key, self.partitions))
            }
            _ => {
                // as it first came: its source partition when it still
                // exists (custom partitioning), else by its key
                let source: Option<i32> = header(m, "source-partition").and_then(|p| p.parse().ok());
                let p = source
                    .filter(|p| (0..self.partitions).contains(p))
                    .unwrap_or_else(|| partition_for(key, self.partitions));
                (m.payload().unwrap_or_default().to_vec(), p)
            }
        };
        let mut rec = BaseRecord::to(self.target).partition(partition).key(key).payload(&value).headers(headers);
        loop {
            match producer.send(rec) {
                Ok(()) => return Ok(()),
                // a full local queue waits for room: never an abort halfway
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    rec = back;
                    producer.poll(Duration::from_millis(50));
                }
                Err((e, _)) => return Err(ReplayError::Transaction(e)),
            }
        }
    }
}

/// Commits the batch: the group's offsets and cursors with the records.
fn commit(
    producer: &BaseProducer<QuietContext>,
    consumer: &BaseConsumer<QuietContext>,
    topic: &str,
    parts: &BTreeMap<i32, Position>,
) -> Result<(), ReplayError> {
    let mut tpl = TopicPartitionList::new();
    for (p, pos) in parts {
        let mut e = tpl.add_partition(topic, *p);
        e.set_offset(Offset::Offset(pos.next))?;
        e.set_metadata(pos.cursor.encode());
    }
    let group = consumer.group_metadata().expect("a consumer with a group id has group metadata");
    let done =
        producer.send_offsets_to_transaction(&tpl, &group, TIMEOUT).and_then(|()| producer.commit_transaction(TIMEOUT));
    if let Err(e) = done {
        let _ = producer.abort_transaction(TIMEOUT);
        return Err(ReplayError::Transaction(e));
    }
    Ok(())
}

fn add(to: &mut Counts, c: Counts) {
    to.read += c.read;
    to.matched += c.matched;
    to.replayed += c.replayed;
    to.truncated += c.truncated;
    to.undecodable += c.undecodable;
}

/// The whole replay's counts: the cursors carry what interrupted runs did.
fn totals(run: &Counts, cursors: impl Iterator<Item = Cursor>, dry_run: bool) -> Counts {
    if dry_run {
        return *run;
    }
    let mut t = Counts { truncated: run.truncated, undecodable: run.undecodable, ..Counts::default() };
    let mut unreplayable = 0;
    for c in cursors {
        t.read += c.read;
        t.replayed += c.replayed;
        unreplayable += c.unreplayable;
    }
    // earlier runs' unreplayable records are counted, not told apart
    t.undecodable += unreplayable.saturating_sub(run.truncated + run.undecodable);
    t.matched = t.replayed + t.truncated + t.undecodable;
    t
}
