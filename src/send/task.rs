//! One job's way through the sender: wait for the partner's rate limit and
//! a concurrency slot, attempt, log the attempt, then hand the job on —
//! delivered, to a retry tier, or to the DLQ — and only then report it
//! finished, so its offset may be committed.

use super::http::Http;
use super::lane::Lane;
use super::limits::Admission;
use super::outcome::{Verdict, class, judge};
use super::outputs::{DeliveryRecord, Outputs};
use super::retry::{Next, RetryPolicy};
use crate::domain::Job;
use crate::process::runner::now_ms;
use crate::telemetry::metrics;
use std::sync::Arc;

/// What a task needs from the sender.
pub struct Shared {
    pub http: Http,
    pub outputs: Outputs,
    pub policy: RetryPolicy,
}

/// Attempts `job` once (unless deferred) and records its outcome.
/// Where a job was read from, for log lines about it.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

pub async fn run(shared: Arc<Shared>, lane: Arc<Lane>, mut job: Job, key: Vec<u8>, at: At<'_>) {
    let _pending = lane.enter();
    if let Some(at) = lane.reserve() {
        // waiting for the rate limit is not an attempt
        tokio::time::sleep_until(at.into()).await;
    }
    let Ok(slot) = lane.slots.clone().acquire_owned().await else { return };
    if lane.admit() == Admission::Refuse {
        drop(slot);
        defer(&shared, &lane, &job, &key, "circuit open").await;
        return;
    }
    let partner = &lane.partner.id;
    let in_flight = metrics().in_flight.with_label_values(&[partner]);
    in_flight.inc();
    let report = shared.http.send(&job, &lane.partner).await;
    in_flight.dec();
    // the slot bounds requests to the partner, not our own bookkeeping
    drop(slot);
    metrics().http_duration.with_label_values(&[partner]).observe(report.latency.as_secs_f64());
    metrics().http_responses.with_label_values(&[partner, class(&report.attempt)]).inc();
    let verdict = judge(&report.attempt);
    // 4xx answers are the request's fault, not the partner's health
    lane.record(!matches!(verdict, Verdict::Retry { .. }));
    job.attempt += 1;
    let now = now_ms();
    let status = match report.attempt {
        super::outcome::Attempt::Status { code, .. } => Some(code),
        _ => None,
    };
    let (outcome, next, error) = match &verdict {
        Verdict::Delivered => ("delivered", None, None),
        Verdict::Retry { reason, retry_after } => {
            match shared.policy.after_failure(job.attempt, reason, *retry_after, now, job.expires_ms, rand::random()) {
                Next::Tier { tier, not_before_ms } => {
                    ("retry", Some((Some(tier), not_before_ms, reason.clone())), Some(reason.clone()))
                }
                Next::GiveUp { reason: why } => ("dlq", Some((None, 0, why)), Some(reason.clone())),
            }
        }
        Verdict::Dead { reason } => ("dlq", Some((None, 0, reason.clone())), Some(reason.clone())),
        Verdict::Blocked { reason } => ("blocked", Some((None, 0, reason.clone())), Some(reason.clone())),
    };
    let record = DeliveryRecord {
        job_id: &job.job_id,
        postback_id: &job.postback_id,
        partner_id: &job.partner_id,
        event: &job.event,
        attempt: job.attempt,
        outcome,
        status,
        error,
        latency_ms: report.latency.as_millis() as u64,
        response: &report.body,
        at_ms: now,
        next: next.as_ref().map(|(tier, _, _)| tier.map_or("dlq".to_owned(), |t| format!("retry-{t}"))),
    };
    shared.outputs.delivery(&record).await;
    match next {
        None => {
            metrics().deliveries.with_label_values(&[partner, "delivered"]).inc();
            metrics().job_age.with_label_values(&[partner]).observe((now - job.created_ms).max(0) as f64 / 1000.0);
        }
        Some((Some(tier), not_before_ms, _)) => {
            job.not_before_ms = not_before_ms;
            shared.outputs.retry(tier, &key, &job).await;
            metrics().deliveries.with_label_values(&[partner, "retried"]).inc();
        }
        Some((None, _, reason)) => {
            tracing::warn!(topic = at.topic, partition = at.partition, offset = at.offset, job_id = %job.job_id, partner = %partner, reason = %reason, "job given up to the dlq");
            shared.outputs.dead(&key, &job, &reason).await;
            let label = if outcome == "blocked" { "blocked" } else { "dlq" };
            metrics().deliveries.with_label_values(&[partner, label]).inc();
        }
    }
}

/// Hands a job to the first retry tier without an attempt (partner
/// saturated, circuit open), or to the DLQ if it would expire first.
pub async fn defer(shared: &Shared, lane: &Lane, job: &Job, key: &[u8], reason: &str) {
    let partner = &lane.partner.id;
    match shared.policy.deferral(reason, now_ms(), job.expires_ms, rand::random()) {
        Next::Tier { tier, not_before_ms } => {
            let mut j = job.clone();
            j.not_before_ms = not_before_ms;
            shared.outputs.retry(tier, key, &j).await;
            metrics().deliveries.with_label_values(&[partner, "deferred"]).inc();
        }
        Next::GiveUp { reason } => {
            shared.outputs.dead(key, job, &reason).await;
            metrics().deliveries.with_label_values(&[partner, "dlq"]).inc();
        }
    }
}
