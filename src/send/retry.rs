//! Where a failed or deferred job goes next (pure): the retry tier for its
//! attempt count with a jittered due time, or the DLQ when the tiers are
//! used up or the job would expire first.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delay of tier 1, 2, ...
    pub delays: Vec<Duration>,
    /// ±fraction of each delay.
    pub jitter: f64,
    /// `Retry-After` may lengthen a wait up to this many tier delays.
    pub retry_after_factor: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// To retry tier `tier` (1-based), due at `not_before_ms`.
    Tier {
        tier: usize,
        not_before_ms: i64,
    },
    GiveUp {
        reason: String,
    },
}

impl RetryPolicy {
    /// The policy `[send]` describes (read again per job: a reload applies
    /// to the next failure).
    pub fn of(send: &crate::config::SendConfig) -> RetryPolicy {
        RetryPolicy {
            delays: send.retry_delays.iter().map(|d| d.0).collect(),
            jitter: send.retry_jitter,
            retry_after_factor: send.retry_after_factor,
        }
    }

    /// After a failed attempt; `attempts` counts it. `rand` is uniform in [0, 1).
    pub fn after_failure(
        &self,
        attempts: u32,
        reason: &str,
        retry_after: Option<Duration>,
        now_ms: i64,
        expires_ms: i64,
        rand: f64,
    ) -> Next {
        let tier = attempts as usize;
        if tier > self.delays.len() {
            return Next::GiveUp { reason: format!("gave up after {attempts} attempts: {reason}") };
        }
        let base = self.delays[tier - 1];
        let mut wait = self.jittered(base, rand);
        if let Some(ra) = retry_after {
            wait = wait.max(ra.min(base * self.retry_after_factor));
        }
        self.schedule(tier, wait, now_ms, expires_ms, reason)
    }

    /// A deferral (partner saturated, circuit open): not an attempt, so it
    /// goes to the first tier whatever the job's attempt count.
    pub fn deferral(&self, reason: &str, now_ms: i64, expires_ms: i64, rand: f64) -> Next {
        let wait = self.jittered(self.delays[0], rand);
        self.schedule(1, wait, now_ms, expires_ms, reason)
    }

    fn jittered(&self, base: Duration, rand: f64) -> Duration {
        base.mul_f64((1.0 + self.jitter * (2.0 * rand - 1.0)).max(0.0))
    }

    fn schedule(&self, tier: usize, wait: Duration, now_ms: i64, expires_ms: i64, reason: &str) -> Next {
        let not_before_ms = now_ms.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
        if not_before_ms >= expires_ms {
            return Next::GiveUp { reason: format!("expired before the next attempt: {reason}") };
        }
        Next::Tier { tier, not_before_ms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            delays: vec![Duration::from_secs(10), Duration::from_secs(60)],
            jitter: 0.2,
            retry_after_factor: 2,
        }
    }

    #[test]
    fn tiers_follow_the_attempt_count_with_jitter() {
        let p = policy();
        assert_eq!(
            p.after_failure(1, "http 500", None, 0, 1_000_000, 0.5),
            Next::Tier { tier: 1, not_before_ms: 10_000 }
        );
        assert_eq!(
            p.after_failure(1, "http 500", None, 0, 1_000_000, 0.0),
            Next::Tier { tier: 1, not_before_ms: 8_000 }
        );
        assert_eq!(
            p.after_failure(2, "http 500", None, 0, 1_000_000, 0.999_999),
            Next::Tier { tier: 2, not_before_ms: 71_999 }
        );
        assert_eq!(
            p.after_failure(3, "http 500", None, 0, 1_000_000, 0.5),
            Next::GiveUp { reason: "gave up after 3 attempts: http 500".into() }
        );
    }

    #[test]
    fn retry_after_lengthens_but_is_clamped() {
        let p = policy();
        let ra = |s| Some(Duration::from_secs(s));
        assert_eq!(
            p.after_failure(1, "http 429", ra(15), 0, 1_000_000, 0.5),
            Next::Tier { tier: 1, not_before_ms: 15_000 }
        );
        assert_eq!(
            p.after_failure(1, "http 429", ra(3600), 0, 1_000_000, 0.5),
            Next::Tier { tier: 1, not_before_ms: 20_000 }
        );
        assert_eq!(
            p.after_failure(1, "http 429", ra(1), 0, 1_000_000, 0.5),
            Next::Tier { tier: 1, not_before_ms: 10_000 }
        );
    }

    #[test]
    fn expiry_and_deferral() {
        let p = policy();
        assert_eq!(
            p.after_failure(1, "timeout", None, 0, 5_000, 0.5),
            Next::GiveUp { reason: "expired before the next attempt: timeout".into() }
        );
        assert_eq!(p.deferral("circuit open", 100, 1_000_000, 0.5), Next::Tier { tier: 1, not_before_ms: 10_100 });
    }
}
