//! What the processing stage gives up on, and how it stays inside Kafka's
//! record size limit: an input record it cannot process goes to the input
//! DLQ as it came (cut to fit that topic, with its original size in a
//! header), and a job too large to produce goes to the job DLQ as a
//! truncated copy, so one oversized record can never fail the transaction
//! of every batch that retries it.

use super::batch::{BatchEnv, BatchOutput, Rejected};
use super::records::{Dest, InRecord, OutRecord};
use crate::codec;
use crate::domain::Job;
use crate::kafka::partition_for;

/// Reasons are ours, but may quote input (a key, a field name): bounded.
const MAX_REASON: usize = 1024;
/// What a truncated job keeps of each of its large fields.
const KEEP: usize = 2048;

impl BatchOutput {
    /// The record as it came, to the input DLQ, with the reason in its
    /// headers.
    pub(super) fn dead_letter(&mut self, r: &InRecord, (label, reason): Rejected, env: &BatchEnv<'_>) {
        let source_topic = r.feed().topic(env.topics);
        let reason = cut(&reason, MAX_REASON).to_owned();
        tracing::warn!(topic = source_topic, partition = r.partition, offset = r.offset, reason = %reason, "record sent to the dlq");
        self.stats.invalid(label);
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
    pub(super) fn oversized_job(&mut self, job: &Job, rec: OutRecord, env: &BatchEnv<'_>) {
        let (size, limit) = (rec.size(), env.layout.limits.jobs);
        let reason = format!(
            "job of {size} bytes is over the {limit} bytes the jobs topic takes: its rendered url, headers or body are too large"
        );
        tracing::warn!(job_id = %job.job_id, partner = %job.partner_id, size, limit, "oversized job sent to the job dlq");
        let mut copy = job.clone();
        copy.url = cut(&job.url, KEEP).to_owned();
        copy.body = job.body.as_deref().map(|b| cut(b, KEEP).to_owned());
        for v in copy.headers.values_mut() {
            *v = cut(v, KEEP / 8).to_owned();
        }
        self.stats.oversized_job();
        self.records.push(OutRecord {
            dest: Dest::JobsDlq,
            partition: partition_for(&rec.key, env.layout.jobs_dlq),
            key: rec.key,
            value: codec::encode_job(&copy, env.job_format),
            headers: vec![
                ("error", reason),
                ("partner", job.partner_id.clone()),
                ("attempts", "0".to_owned()),
                ("original-size", size.to_string()),
                ("truncated", "true".to_owned()),
            ],
        });
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
