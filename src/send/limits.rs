//! Per-partner protection: a rate limiter (GCRA: requests are spaced at
//! least 1/rate apart, reservations are not attempts) and a circuit breaker
//! (open after N consecutive failures, one half-open probe after a pause).
//! Both are plain state machines over an explicit clock, so they are tested
//! without sleeping.

use std::time::{Duration, Instant};

/// Spaces requests `interval` apart.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    /// Theoretical arrival time of the next request.
    tat: Option<Instant>,
}

impl RateLimiter {
    pub fn new(per_second: f64) -> RateLimiter {
        RateLimiter { interval: interval(per_second), tat: None }
    }

    /// Changes the rate from the next reservation on (this instance's share
    /// of a fleet-wide limit changed).
    pub fn set_rate(&mut self, per_second: f64) {
        self.interval = interval(per_second);
    }

    /// Reserves the next slot; returns when it may start.
    pub fn reserve(&mut self, now: Instant) -> Instant {
        let slot = self.tat.map_or(now, |t| t.max(now));
        self.tat = Some(slot + self.interval);
        slot
    }

    /// Reserves the next slot only if it starts within `max_wait`.
    pub fn reserve_within(&mut self, now: Instant, max_wait: Duration) -> Option<Instant> {
        let slot = self.tat.map_or(now, |t| t.max(now));
        (slot.duration_since(now) <= max_wait).then(|| self.reserve(now))
    }
}

/// The spacing of `per_second` requests; a rate of (nearly) nothing spaces
/// them an hour apart rather than dividing by zero.
fn interval(per_second: f64) -> Duration {
    if per_second > 1.0 / 3600.0 { Duration::from_secs_f64(1.0 / per_second) } else { Duration::from_secs(3600) }
}

/// This sender's part of the group's partner limits: its share of the
/// partitions the group consumes (jobs and retry tiers). The shares of the
/// group's members add up to one, so `rate_limit` and `max_concurrency`
/// hold for the whole group; a member's share changes with each rebalance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share {
    pub mine: usize,
    pub total: usize,
}

impl Share {
    /// The whole limit (before the first assignment, and outside a group).
    pub const WHOLE: Share = Share { mine: 1, total: 1 };

    pub fn fraction(self) -> f64 {
        if self.total == 0 { 1.0 } else { self.mine as f64 / self.total as f64 }
    }

    /// This member's part of `rate` requests per second.
    pub fn rate(self, rate: f64) -> f64 {
        rate * self.fraction()
    }

    /// This member's part of `concurrency` requests at once: at least one,
    /// so a member with a single partition still sends.
    pub fn concurrency(self, concurrency: usize) -> usize {
        ((concurrency as f64 * self.fraction()).ceil() as usize).max(1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    /// Gauge value: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> i64 {
        match self {
            CircuitState::Closed => 0,
            CircuitState::HalfOpen => 1,
            CircuitState::Open => 2,
        }
    }
}

#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    open_for: Duration,
    failures: u32,
    opened_at: Option<Instant>,
    probing: bool,
}

/// What the breaker says about a request about to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Go,
    /// The one half-open probe.
    Probe,
    Refuse,
}

impl Breaker {
    pub fn new(threshold: u32, open_for: Duration) -> Breaker {
        Breaker { threshold: threshold.max(1), open_for, failures: 0, opened_at: None, probing: false }
    }

    pub fn state(&self, now: Instant) -> CircuitState {
        match self.opened_at {
            None => CircuitState::Closed,
            Some(t) if now.duration_since(t) >= self.open_for => CircuitState::HalfOpen,
            Some(_) => CircuitState::Open,
        }
    }

    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.state(now) {
            CircuitState::Closed => Admission::Go,
            CircuitState::Open => Admission::Refuse,
            CircuitState::HalfOpen if self.probing => Admission::Refuse,
            CircuitState::HalfOpen => {
                self.probing = true;
                Admission::Probe
            }
        }
    }

    /// Records a finished request: `ok` = delivered or a definite answer that
    /// is not the partner's failure (4xx); failures are timeouts, connection
    /// errors, 408/429/5xx.
    pub fn record(&mut self, ok: bool, now: Instant) {
        self.probing = false;
        if ok {
            self.failures = 0;
            self.opened_at = None;
        } else {
            self.failures += 1;
            if self.opened_at.is_some() || self.failures >= self.threshold {
                // a failed probe opens the circuit for another pause
                self.opened_at = Some(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_scales_rate_and_concurrency() {
        let half = Share { mine: 6, total: 12 };
        assert_eq!(half.rate(100.0), 50.0);
        assert_eq!(half.concurrency(64), 32);
        let third = Share { mine: 4, total: 12 };
        assert_eq!(third.concurrency(64), 22);
        assert_eq!(Share { mine: 1, total: 12 }.concurrency(4), 1);
        assert_eq!(Share { mine: 0, total: 0 }.fraction(), 1.0);
        let mut l = RateLimiter::new(10.0);
        l.set_rate(third.rate(30.0));
        let t0 = Instant::now();
        l.reserve(t0);
        assert_eq!(l.reserve(t0), t0 + Duration::from_millis(100));
        l.set_rate(0.0);
        l.reserve(t0);
        assert_eq!(l.reserve(t0), t0 + Duration::from_millis(200) + Duration::from_secs(3600));
    }

    #[test]
    fn the_limiter_spaces_requests() {
        let mut l = RateLimiter::new(10.0);
        let t0 = Instant::now();
        let slots: Vec<Duration> = (0..5).map(|_| l.reserve(t0).duration_since(t0)).collect();
        assert_eq!(slots, (0..5).map(|i| Duration::from_millis(100 * i)).collect::<Vec<_>>());
        // after an idle period it starts at once again
        assert_eq!(l.reserve(t0 + Duration::from_secs(5)), t0 + Duration::from_secs(5));
        // a slot further away than the caller will wait is not taken
        let t1 = t0 + Duration::from_secs(10);
        let mut l = RateLimiter::new(1.0);
        assert_eq!(l.reserve_within(t1, Duration::from_secs(2)), Some(t1));
        assert_eq!(l.reserve_within(t1, Duration::from_secs(2)), Some(t1 + Duration::from_secs(1)));
        assert_eq!(l.reserve_within(t1, Duration::from_secs(2)), Some(t1 + Duration::from_secs(2)));
        assert_eq!(l.reserve_within(t1, Duration::from_secs(2)), None);
        assert_eq!(l.reserve(t1), t1 + Duration::from_secs(3), "a refused reservation took no slot");
    }

    #[test]
    fn the_breaker_opens_probes_and_closes() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, Duration::from_secs(30));
        for _ in 0..2 {
            assert_eq!(b.admit(t0), Admission::Go);
            b.record(false, t0);
        }
        assert_eq!(b.state(t0), CircuitState::Closed);
        b.record(false, t0);
        assert_eq!(b.state(t0), CircuitState::Open);
        assert_eq!(b.admit(t0 + Duration::from_secs(29)), Admission::Refuse);
        let t1 = t0 + Duration::from_secs(30);
        assert_eq!(b.admit(t1), Admission::Probe);
        assert_eq!(b.admit(t1), Admission::Refuse, "one probe at a time");
        b.record(false, t1);
        assert_eq!(b.state(t1), CircuitState::Open, "a failed probe reopens");
        let t2 = t1 + Duration::from_secs(30);
        assert_eq!(b.admit(t2), Admission::Probe);
        b.record(true, t2);
        assert_eq!(b.state(t2), CircuitState::Closed);
        assert_eq!(b.admit(t2), Admission::Go);
    }
}
