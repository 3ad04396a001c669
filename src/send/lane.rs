//! One partner's lane: its concurrency limit, rate limiter, circuit breaker
//! and count of waiting jobs. Lanes are independent, so a slow or failing
//! partner only ever fills its own.

use super::http::{ClientKey, Http, PartnerClient};
use super::limits::{Admission, Breaker, RateLimiter, Share};
use crate::config::{Config, PartnerConfig};
use crate::telemetry::metrics;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

pub struct Lane {
    pub partner: PartnerConfig,
    /// The partner's HTTP client, built with the lane.
    pub client: PartnerClient,
    /// This sender's part of the partner's `max_concurrency` (see [`Share`]).
    pub slots: Arc<Semaphore>,
    /// Permits `slots` should have for the current share; permits still
    /// in use when the share shrank are forgotten as they come back.
    target: AtomicUsize,
    /// Permits given to `slots` so far; changed only under `adjusting`.
    granted: Mutex<usize>,
    limiter: Option<Mutex<RateLimiter>>,
    breaker: Mutex<Breaker>,
    /// Jobs taken for this partner and not finished.
    pending: AtomicUsize,
    max_pending: usize,
    /// The breaker's settings, to tell whether a reload changed them.
    threshold: u32,
    open_for: Duration,
}

impl Lane {
    pub fn new(partner: &PartnerConfig, config: &Config, http: &Http, share: Share) -> Lane {
        let client = http.client(partner, config);
        let slots = share.concurrency(partner.max_concurrency);
        let threshold = partner.circuit_failures.unwrap_or(config.send.circuit_failures);
        let open_for = partner.circuit_open_for.unwrap_or(config.send.circuit_open_for).0;
        metrics().circuit_state(&partner.id, 0);
        metrics().in_flight(&partner.id).set(0);
        Lane {
            client,
            slots: Arc::new(Semaphore::new(slots)),
            target: AtomicUsize::new(slots),
            granted: Mutex::new(slots),
            limiter: partner.rate_limit.map(|r| Mutex::new(RateLimiter::new(share.rate(r.per_second)))),
            breaker: Mutex::new(Breaker::new(threshold, open_for)),
            pending: AtomicUsize::new(0),
            max_pending: config.send.max_pending_per_partner,
            threshold,
            open_for,
            partner: partner.clone(),
        }
    }

    /// Whether a reload left everything this lane was built from as it was:
    /// the partner's keys, the `[send]` defaults it takes, and its client's
    /// settings and certificate files. Otherwise the partner gets a new
    /// lane (jobs already in this one finish here).
    pub fn same_settings(&self, partner: &PartnerConfig, config: &Config) -> bool {
        self.partner == *partner
            && self.threshold == partner.circuit_failures.unwrap_or(config.send.circuit_failures)
            && self.open_for == partner.circuit_open_for.unwrap_or(config.send.circuit_open_for).0
            && self.max_pending == config.send.max_pending_per_partner
            && ClientKey::read(partner, config).is_ok_and(|k| k == self.client.key)
    }

    /// Takes this sender's new share of the partner's limits (after a
    /// rebalance): the rate at once, the concurrency as permits allow.
    pub fn apply_share(&self, share: Share) {
        if let (Some(l), Some(r)) = (&self.limiter, self.partner.rate_limit) {
            l.lock().expect("limiter lock").set_rate(share.rate(r.per_second));
        }
        self.target.store(share.concurrency(self.partner.max_concurrency), Ordering::Relaxed);
        self.settle_slots();
    }

    /// Brings `slots` toward the target: adds permits at once, forgets idle
    /// ones (a request that ends gives its permit back, then this runs again).
    pub fn settle_slots(&self) {
        let target = self.target.load(Ordering::Relaxed);
        let mut granted = self.granted.lock().expect("slots lock");
        if target > *granted {
            self.slots.add_permits(target - *granted);
            *granted = target;
        } else if *granted > target {
            *granted -= self.slots.forget_permits(*granted - target);
        }
    }

    /// Why a new job should be deferred instead of queued here, if it should.
    pub fn refuses(&self) -> Option<&'static str> {
        if self.pending.load(Ordering::Relaxed) >= self.max_pending {
            return Some("partner saturated");
        }
        let state = self.breaker.lock().expect("breaker lock").state(Instant::now());
        (state == super::limits::CircuitState::Open).then_some("circuit open")
    }

    pub fn enter(&self) -> PendingGuard<'_> {
        self.pending.fetch_add(1, Ordering::Relaxed);
        PendingGuard(self)
    }

    /// When the next request may start under the rate limit: `Ok(None)`
    /// at once, `Err(())` not within `max_wait`.
    pub fn reserve(&self, max_wait: Duration) -> Result<Option<Instant>, ()> {
        match &self.limiter {
            None => Ok(None),
            Some(l) => l.lock().expect("limiter lock").reserve_within(Instant::now(), max_wait).map(Some).ok_or(()),
        }
    }

    pub fn admit(&self) -> Admission {
        let mut b = self.breaker.lock().expect("breaker lock");
        let a = b.admit(Instant::now());
        self.publish(&b);
        a
    }

    pub fn record(&self, ok: bool) {
        let mut b = self.breaker.lock().expect("breaker lock");
        b.record(ok, Instant::now());
        self.publish(&b);
    }

    fn publish(&self, b: &Breaker) {
        metrics().circuit_state(&self.partner.id, b.state(Instant::now()).gauge());
    }
}

pub struct PendingGuard<'a>(&'a Lane);

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::Relaxed);
    }
}
