//! One job's way through the sender, as a thin async shell around the pure
//! decisions of [`super::step`]: wait for the partner's rate limit and a
//! concurrency slot, attempt, log the attempt, then carry the step out —
//! delivered, to a retry tier, or to the DLQ — and only then report the job
//! finished, so its offset may be committed.

use super::http::Http;
use super::lane::Lane;
use super::limits::Admission;
use super::outcome::{class, judge};
use super::outputs::{DeliveryRecord, Outputs};
use super::retry::RetryPolicy;
use super::step::{Step, deferral, next_step};
use crate::clock::now_ms;
use crate::config::reload::SharedConfig;
use crate::domain::Job;
use crate::telemetry::metrics;
use std::sync::Arc;

/// What a task needs from the sender.
pub struct Shared {
    pub http: Http,
    pub outputs: Outputs,
    /// The running config: `[send]` is read again per job, so a reload
    /// applies to the next one.
    pub config: SharedConfig,
}

impl Shared {
    fn current(&self) -> Arc<crate::config::Config> {
        Arc::clone(&self.config.read().expect("config lock"))
    }

    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy::of(&self.current().send)
    }

    /// `send.max_hold`: the longest a job waits for its partner's rate
    /// limit or a concurrency slot before it is deferred to the first tier.
    pub fn max_hold(&self) -> std::time::Duration {
        self.current().send.max_hold.0
    }
}

/// Where a job was read from, for log lines about it.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

/// Attempts `job` once (unless the partner's circuit refuses it) and
/// carries out the step that follows.
pub async fn attempt(shared: Arc<Shared>, lane: Arc<Lane>, mut job: Job, key: Vec<u8>, at: At<'_>) {
    let _pending = lane.enter();
    let max_hold = shared.max_hold();
    // a job held here holds its partition's commit: past max_hold it moves
    // on to the first tier (not an attempt), so a crash re-sends little
    match lane.reserve(max_hold) {
        // waiting for the rate limit is not an attempt
        Ok(Some(at)) => tokio::time::sleep_until(at.into()).await,
        Ok(None) => {}
        Err(()) => return defer(&shared, job, &key, at, "partner rate limit").await,
    }
    let acquired = tokio::time::timeout(max_hold, Arc::clone(&lane.slots).acquire_owned()).await;
    let Ok(slot) = acquired else { return defer(&shared, job, &key, at, "partner saturated").await };
    let slot = slot.expect("lane semaphores are never closed");
    if lane.admit() == Admission::Refuse {
        drop(slot);
        lane.settle_slots();
        return defer(&shared, job, &key, at, "circuit open").await;
    }
    let partner = lane.partner.id.as_str();
    let in_flight = metrics().in_flight(partner);
    in_flight.inc();
    let report = shared.http.send(&lane.client, &job, &lane.partner).await;
    in_flight.dec();
    // the slot bounds requests to the partner, not our own bookkeeping
    drop(slot);
    lane.settle_slots();
    metrics().http_response(partner, class(&report.attempt), report.latency.as_secs_f64());
    let verdict = judge(&report.attempt);
    // 4xx answers are the request's fault, not the partner's health
    lane.record(!matches!(verdict, super::outcome::Verdict::Retry { .. }));
    job.attempt += 1;
    let now = now_ms();
    let step = next_step(&verdict, &shared.policy(), &job, now, rand::random());
    shared.outputs.delivery(&DeliveryRecord::new(&job, &report, &verdict, &step, now)).await;
    carry_out(&shared, step, job, &key, at).await;
}

async fn defer(shared: &Shared, job: Job, key: &[u8], at: At<'_>, why: &str) {
    let step = deferral(&job, why, &shared.policy(), now_ms(), rand::random());
    carry_out(shared, step, job, key, at).await;
}

/// Hands the job on as `step` says, waits until that write is acknowledged,
/// and counts the outcome: the one place `deliveries_total` is counted.
pub async fn carry_out(shared: &Shared, step: Step, mut job: Job, key: &[u8], at: At<'_>) {
    match &step {
        Step::Delivered => {
            metrics().job_age(&job.partner_id, (now_ms() - job.created_ms).max(0) as f64 / 1000.0);
        }
        Step::Retry { tier, not_before_ms, .. } => {
            job.not_before_ms = *not_before_ms;
            shared.outputs.retry(*tier, key, &job).await;
        }
        Step::Dead { reason, .. } => {
            tracing::warn!(topic = at.topic, partition = at.partition, offset = at.offset, job_id = %job.job_id, partner = %job.partner_id, reason = %reason, "job given up to the dlq");
            shared.outputs.dead(key, &job, reason).await;
        }
    }
    metrics().delivery(&job.partner_id, step.outcome());
}
