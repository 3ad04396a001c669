//! What the sender writes: one delivery-log record per attempt, jobs handed
//! to a retry tier, and jobs given up to the DLQ. A job's outcome counts as
//! terminal only once these writes are acknowledged.

use super::http::Report;
use super::outcome::{Attempt, Verdict};
use super::step::Step;
use crate::codec::{JobEncoding, encode_job};
use crate::domain::Job;
use crate::domain::reject::DlqReason;
use crate::kafka::context::QuietContext;
use crate::kafka::partition_for;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;

/// One attempt, as `postback.deliveries` records it.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRecord<'a> {
    pub job_id: &'a str,
    pub postback_id: &'a str,
    pub partner_id: &'a str,
    pub event: &'a str,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// delivered, retry, dlq or blocked
    pub outcome: &'a str,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub latency_ms: u64,
    /// The first 1 KiB of the response body.
    pub response: &'a str,
    pub at_ms: i64,
    /// Where the job goes next: "retry-2", "dlq", or none.
    pub next: Option<String>,
}

impl<'a> DeliveryRecord<'a> {
    /// The record of one attempt of `job` (its `attempt` already counts it).
    pub fn new(job: &'a Job, report: &'a Report, verdict: &Verdict, step: &Step, at_ms: i64) -> DeliveryRecord<'a> {
        let error = match verdict {
            Verdict::Delivered => None,
            Verdict::Retry { reason, .. } | Verdict::Dead { reason } | Verdict::Blocked { reason } => {
                Some(reason.clone())
            }
        };
        DeliveryRecord {
            job_id: &job.job_id,
            postback_id: &job.postback_id,
            partner_id: &job.partner_id,
            event: &job.event,
            attempt: job.attempt,
            outcome: step.log_outcome(),
            status: match report.attempt {
                Attempt::Status { code, .. } => Some(code),
                _ => None,
            },
            error,
            latency_ms: report.latency.as_millis() as u64,
            response: &report.body,
            at_ms,
            next: step.next(),
        }
    }
}

pub struct Outputs {
    producer: FutureProducer<QuietContext>,
    pub deliveries: String,
    pub dlq: String,
    pub retry: Vec<String>,
    partitions: HashMap<String, i32>,
}

const SEND_TIMEOUT: Duration = Duration::from_secs(30);

impl Outputs {
    pub fn new(
        producer: FutureProducer<QuietContext>,
        deliveries: String,
        dlq: String,
        retry: Vec<String>,
        partitions: HashMap<String, i32>,
    ) -> Outputs {
        Outputs { producer, deliveries, dlq, retry, partitions }
    }

    async fn write(
        &self,
        topic: &str,
        key: &[u8],
        value: &[u8],
        headers: Option<OwnedHeaders>,
    ) -> Result<(), KafkaError> {
        let n = self.partitions.get(topic).copied().unwrap_or(1);
        let mut rec = FutureRecord::to(topic).partition(partition_for(key, n)).key(key).payload(value);
        if let Some(h) = headers {
            rec = rec.headers(h);
        }
        self.producer.send(rec, SEND_TIMEOUT).await.map(|_| ()).map_err(|(e, _)| e)
    }

    /// Writes until acknowledged: a job whose outcome cannot be recorded
    /// must not be committed, and the broker being away is temporary.
    async fn write_durably(&self, topic: &str, key: &[u8], value: &[u8], headers: Option<OwnedHeaders>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.write(topic, key, value, headers.clone()).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(topic, error = %e, "write failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    pub async fn delivery(&self, rec: &DeliveryRecord<'_>) {
        let value = serde_json::to_vec(rec).expect("delivery records serialize");
        self.write_durably(&self.deliveries, rec.job_id.as_bytes(), &value, None).await;
    }

    /// Hands a job to retry tier `tier` (1-based).
    pub async fn retry(&self, tier: usize, key: &[u8], job: &Job) {
        let topic = &self.retry[tier - 1];
        self.write_durably(topic, key, &encode_job(job, JobEncoding::Json), None).await;
    }

    pub async fn dead(&self, key: &[u8], job: &Job, reason: &str) {
        let headers = OwnedHeaders::new()
            .insert(Header { key: "error", value: Some(reason.as_bytes()) })
            .insert(Header { key: "partner", value: Some(job.partner_id.as_bytes()) })
            .insert(Header { key: "attempts", value: Some(job.attempt.to_string().as_bytes()) });
        self.write_durably(&self.dlq, key, &encode_job(job, JobEncoding::Json), Some(headers)).await;
    }

    /// A record that is not a job at all: to the DLQ as it came, counted
    /// in `dlq_records_total` (it has no partner to count it under).
    pub async fn dead_raw(&self, key: &[u8], value: &[u8], reason: &str) {
        let headers = OwnedHeaders::new()
            .insert(Header { key: "reason", value: Some(DlqReason::Undecodable.label().as_bytes()) })
            .insert(Header { key: "error", value: Some(reason.as_bytes()) });
        self.write_durably(&self.dlq, key, value, Some(headers)).await;
        crate::telemetry::metrics().dlq_records(&self.dlq, DlqReason::Undecodable, 1);
    }
}
