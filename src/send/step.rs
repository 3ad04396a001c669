//! What the sender does with a job next (pure): deliver it, hand it to a
//! retry tier, or give it up to the DLQ — before an attempt (unknown
//! partner, expired, partner refusing new work) and after one (the
//! verdict on the partner's answer). The async shell in [`super::task`]
//! only carries the step out and counts it, once, by [`Step::outcome`].

use super::outcome::Verdict;
use super::retry::{Next, RetryPolicy};
use crate::domain::Job;
use crate::telemetry::metrics::Delivery;

/// The next step for a job, after which it is finished for this stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Delivered,
    /// To retry tier `tier` (1-based), due at `not_before_ms`. `deferred`:
    /// without an attempt (partner saturated, circuit open).
    Retry {
        tier: usize,
        not_before_ms: i64,
        deferred: bool,
    },
    /// To the DLQ. `blocked`: the SSRF guard refused the partner's address.
    Dead {
        reason: String,
        blocked: bool,
    },
}

impl Step {
    /// The `deliveries_total` outcome.
    pub fn outcome(&self) -> Delivery {
        match self {
            Step::Delivered => Delivery::Delivered,
            Step::Retry { deferred: false, .. } => Delivery::Retried,
            Step::Retry { deferred: true, .. } => Delivery::Deferred,
            Step::Dead { blocked: false, .. } => Delivery::Dlq,
            Step::Dead { blocked: true, .. } => Delivery::Blocked,
        }
    }

    /// The delivery log's `outcome` of the attempt that led here.
    pub fn log_outcome(&self) -> &'static str {
        match self {
            Step::Delivered => "delivered",
            Step::Retry { .. } => "retry",
            Step::Dead { blocked: false, .. } => "dlq",
            Step::Dead { blocked: true, .. } => "blocked",
        }
    }

    /// Where the job goes: `retry-2`, `dlq`, or nowhere (delivered).
    pub fn next(&self) -> Option<String> {
        match self {
            Step::Delivered => None,
            Step::Retry { tier, .. } => Some(format!("retry-{tier}")),
            Step::Dead { .. } => Some("dlq".to_owned()),
        }
    }
}

/// Why a job is not attempted now, if it is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal<'a> {
    /// Its partner is not in `[[partners]]`.
    UnknownPartner,
    /// The partner's lane refuses new jobs ("partner saturated", "circuit open").
    Lane(&'a str),
}

/// Before an attempt: a job that must not be attempted, and where it goes.
/// `None`: attempt it.
pub fn before_attempt(
    job: &Job,
    refusal: Option<Refusal<'_>>,
    policy: &RetryPolicy,
    now_ms: i64,
    rand: f64,
) -> Option<Step> {
    if refusal == Some(Refusal::UnknownPartner) {
        let reason = format!("unknown partner '{}': not in [[partners]]", job.partner_id);
        return Some(Step::Dead { reason, blocked: false });
    }
    if now_ms >= job.expires_ms {
        return Some(Step::Dead { reason: "expired".to_owned(), blocked: false });
    }
    match refusal {
        Some(Refusal::Lane(why)) => Some(deferral(job, why, policy, now_ms, rand)),
        _ => None,
    }
}

/// A job put off without an attempt: to the first tier, or the DLQ if it
/// would expire first.
pub fn deferral(job: &Job, why: &str, policy: &RetryPolicy, now_ms: i64, rand: f64) -> Step {
    match policy.deferral(why, now_ms, job.expires_ms, rand) {
        Next::Tier { tier, not_before_ms } => Step::Retry { tier, not_before_ms, deferred: true },
        Next::GiveUp { reason } => Step::Dead { reason, blocked: false },
    }
}

/// After an attempt (`job.attempt` already counts it).
pub fn next_step(verdict: &Verdict, policy: &RetryPolicy, job: &Job, now_ms: i64, rand: f64) -> Step {
    match verdict {
        Verdict::Delivered => Step::Delivered,
        Verdict::Retry { reason, retry_after } => {
            match policy.after_failure(job.attempt, reason, *retry_after, now_ms, job.expires_ms, rand) {
                Next::Tier { tier, not_before_ms } => Step::Retry { tier, not_before_ms, deferred: false },
                Next::GiveUp { reason } => Step::Dead { reason, blocked: false },
            }
        }
        Verdict::Dead { reason } => Step::Dead { reason: reason.clone(), blocked: false },
        Verdict::Blocked { reason } => Step::Dead { reason: reason.clone(), blocked: true },
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::{Method, Routing};
    use std::time::Duration;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            delays: vec![Duration::from_secs(10), Duration::from_secs(60)],
            jitter: 0.2,
            retry_after_factor: 2,
        }
    }

    /// A job to Acme (the partner request tests borrow it too).
    pub(crate) fn job(attempt: u32, expires_ms: i64) -> Job {
        Job {
            job_id: "j1".into(),
            postback_id: "acme-install".into(),
            postback_name: "Acme | install".into(),
            partner_id: "acme".into(),
            app_id: "game".into(),
            event: "install".into(),
            attribution: Routing::Lt,
            device_id: "d1".into(),
            user_id: String::new(),
            event_id: "e1".into(),
            event_ts_ms: 0,
            created_ms: 0,
            method: Method::Get,
            url: "https://pb.acme.example/i".into(),
            headers: Default::default(),
            body: None,
            attempt,
            not_before_ms: 0,
            expires_ms,
        }
    }

    #[test]
    fn before_an_attempt() {
        let p = policy();
        let j = job(0, 100_000);
        assert_eq!(before_attempt(&j, None, &p, 0, 0.5), None);
        assert_eq!(
            before_attempt(&j, Some(Refusal::UnknownPartner), &p, 0, 0.5),
            Some(Step::Dead { reason: "unknown partner 'acme': not in [[partners]]".into(), blocked: false })
        );
        assert_eq!(
            before_attempt(&j, None, &p, 100_000, 0.5),
            Some(Step::Dead { reason: "expired".into(), blocked: false })
        );
        let deferred = before_attempt(&j, Some(Refusal::Lane("circuit open")), &p, 0, 0.5);
        assert_eq!(deferred, Some(Step::Retry { tier: 1, not_before_ms: 10_000, deferred: true }));
        assert_eq!(deferred.unwrap().outcome(), Delivery::Deferred);
        assert_eq!(
            before_attempt(&job(3, 5_000), Some(Refusal::Lane("partner saturated")), &p, 0, 0.5),
            Some(Step::Dead { reason: "expired before the next attempt: partner saturated".into(), blocked: false })
        );
    }

    #[test]
    fn after_an_attempt() {
        let p = policy();
        let retry = Verdict::Retry { reason: "http 503".into(), retry_after: None };
        let s = next_step(&retry, &p, &job(1, 1_000_000), 0, 0.5);
        assert_eq!(s, Step::Retry { tier: 1, not_before_ms: 10_000, deferred: false });
        assert_eq!((s.outcome(), s.log_outcome(), s.next()), (Delivery::Retried, "retry", Some("retry-1".into())));
        let s = next_step(&retry, &p, &job(3, 1_000_000), 0, 0.5);
        assert_eq!(s, Step::Dead { reason: "gave up after 3 attempts: http 503".into(), blocked: false });
        assert_eq!((s.outcome(), s.log_outcome(), s.next()), (Delivery::Dlq, "dlq", Some("dlq".into())));
        let s = next_step(&Verdict::Delivered, &p, &job(1, 0), 0, 0.5);
        assert_eq!((s.outcome(), s.log_outcome(), s.next()), (Delivery::Delivered, "delivered", None));
        let s = next_step(&Verdict::Dead { reason: "http 400".into() }, &p, &job(1, 1_000_000), 0, 0.5);
        assert_eq!(s, Step::Dead { reason: "http 400".into(), blocked: false });
        let blocked = Verdict::Blocked { reason: "blocked address: 10.0.0.1 (private)".into() };
        let s = next_step(&blocked, &p, &job(1, 1_000_000), 0, 0.5);
        assert_eq!((s.outcome(), s.log_outcome()), (Delivery::Blocked, "blocked"));
    }
}
