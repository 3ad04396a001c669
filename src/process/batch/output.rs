//! What a batch produces: the records of its transaction (jobs, forwarded
//! records, changelog records, DLQ records) and the state to write to the
//! stores once it commits; and how each record is built.

use super::dlq::{self, KEEP, MAX_REASON};
use super::env::{BatchEnv, StateWrites};
use crate::codec;
use crate::domain::Job;
use crate::domain::reject::{DlqReason, Rejected};
use crate::kafka::partition_for;
use crate::process::records::{Dest, InRecord, OutRecord};
use crate::process::stage::{Feed, Part, Stage};
use crate::process::stats::BatchStats;
use std::collections::BTreeMap;

/// Everything a committed batch changes.
#[derive(Debug, Default)]
pub struct BatchOutput {
    pub records: Vec<OutRecord>,
    /// Encoded state per store, last value per key: written to the store
    /// after the commit, and the same bytes as the changelog records.
    pub state: StateWrites,
    /// Next offset to consume, per partition read.
    pub positions: BTreeMap<Feed, i64>,
    pub stats: BatchStats,
}

impl BatchOutput {
    pub fn jobs(&mut self, jobs: &[Job], key: &str, env: &BatchEnv<'_>) {
        for job in jobs {
            let rec = OutRecord {
                dest: Dest::Jobs,
                partition: partition_for(key.as_bytes(), env.layout.jobs),
                key: key.as_bytes().to_vec(),
                value: codec::encode_job(job, env.job_format),
                headers: Vec::new(),
            };
            if rec.size() > env.layout.limits.jobs {
                self.oversized_job(job, rec, env);
                continue;
            }
            self.stats.job(job);
            self.records.push(rec);
        }
    }

    /// An input record, unchanged, to the device repartition topic.
    pub fn repartition(&mut self, r: &InRecord, partition: i32) {
        self.stats.repartitioned();
        self.records.push(OutRecord {
            dest: Dest::Repartition,
            partition,
            key: r.key.clone().unwrap_or_default(),
            value: r.value.clone().unwrap_or_default(),
            headers: Vec::new(),
        });
    }

    /// A record for the input of `stage`, keyed and partitioned by `key`.
    pub fn forward(&mut self, stage: Stage, key: Vec<u8>, value: Vec<u8>, partitions: i32) {
        let partition = partition_for(&key, partitions);
        self.records.push(OutRecord { dest: Dest::Input(stage), partition, key, value, headers: Vec::new() });
    }

    /// A changed state: its changelog record, and the store write after the
    /// commit, with the same bytes.
    pub fn state(&mut self, part: Part, key: Vec<u8>, value: Vec<u8>) {
        self.records.push(OutRecord {
            dest: Dest::Changelog(part.stage),
            partition: part.partition,
            key: key.clone(),
            value: value.clone(),
            headers: Vec::new(),
        });
        self.state.entry(part).or_default().push((key, value));
    }

    /// The record as it came, to the input DLQ, with the reason in its
    /// headers.
    pub fn dead_letter(&mut self, r: &InRecord, rejected: Rejected, env: &BatchEnv<'_>) {
        let source_topic = r.feed().topic(env.topics);
        let reason = dlq::cut(&rejected.detail, MAX_REASON).to_owned();
        tracing::warn!(topic = source_topic, partition = r.partition, offset = r.offset, reason = %reason, "record sent to the dlq");
        self.stats.invalid(rejected.reason);
        let key = r.key.as_deref().unwrap_or_default();
        let value = r.value.as_deref().unwrap_or_default();
        let mut rec = OutRecord {
            dest: Dest::Dlq,
            partition: match &r.key {
                Some(k) => partition_for(k, env.layout.events_dlq),
                None => r.partition % env.layout.events_dlq,
            },
            key: key.to_vec(),
            value: Vec::new(),
            headers: vec![
                ("reason", rejected.reason.label().to_owned()),
                ("error", reason),
                ("source-topic", source_topic.to_owned()),
                ("source-partition", r.partition.to_string()),
                ("source-offset", r.offset.to_string()),
            ],
        };
        let room = env.layout.limits.events_dlq.saturating_sub(rec.size() + 64);
        if key.len() + value.len() > room {
            rec.key.truncate(room / 4);
            rec.value = value[..room.saturating_sub(rec.key.len()).min(value.len())].to_vec();
            rec.headers.push(("original-size", (key.len() + value.len()).to_string()));
            rec.headers.push(("truncated", "true".to_owned()));
        } else {
            rec.value = value.to_vec();
        }
        self.records.push(rec);
    }

    /// A job whose record would exceed the jobs topic's limit: a truncated
    /// copy to the job DLQ, which the sender never attempts and `dlq replay`
    /// skips.
    pub fn oversized_job(&mut self, job: &Job, rec: OutRecord, env: &BatchEnv<'_>) {
        let (size, limit) = (rec.size(), env.layout.limits.jobs);
        let reason = format!(
            "job of {size} bytes is over the {limit} bytes the jobs topic takes: its rendered url, headers or body are too large"
        );
        tracing::warn!(job_id = %job.job_id, partner = %job.partner_id, size, limit, "oversized job sent to the job dlq");
        let mut copy = job.clone();
        copy.url = dlq::cut(&job.url, KEEP).to_owned();
        copy.body = job.body.as_deref().map(|b| dlq::cut(b, KEEP).to_owned());
        for v in copy.headers.values_mut() {
            *v = dlq::cut(v, KEEP / 8).to_owned();
        }
        self.stats.oversized_job();
        self.records.push(OutRecord {
            dest: Dest::JobsDlq,
            partition: partition_for(&rec.key, env.layout.jobs_dlq),
            key: rec.key,
            value: codec::encode_job(&copy, env.job_format),
            headers: vec![
                ("reason", DlqReason::JobTooLarge.label().to_owned()),
                ("error", reason),
                ("partner", job.partner_id.clone()),
                ("attempts", "0".to_owned()),
                ("original-size", size.to_string()),
                ("truncated", "true".to_owned()),
            ],
        });
    }
}
