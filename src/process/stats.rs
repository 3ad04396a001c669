//! Counts of one batch, applied to the metrics only after the batch
//! commits: an aborted and replayed batch is not counted twice.

use crate::config::TopicsConfig;
use crate::domain::device::DeviceOutcome;
use crate::domain::reject::DlqReason;
use crate::domain::{App, Event, Job, Routing, Trigger};
use crate::telemetry::metrics::{EventResult, metrics};
// counted per record: foldhash, not SipHash (which was 2% of the
// processing thread); the keys are config names and labels, not input
use foldhash::HashMap;

#[derive(Debug, Default)]
pub struct BatchStats {
    /// app -> (kind, result) -> count; nested so that lookups by `&str`
    /// allocate nothing on the hot path
    events: HashMap<String, HashMap<(&'static str, EventResult), u64>>,
    /// DLQ reason label -> count
    invalid: HashMap<DlqReason, u64>,
    triggers: HashMap<&'static str, u64>,
    /// partner -> event -> [lt, ca] counts
    jobs: HashMap<String, HashMap<String, [u64; 2]>>,
    /// app -> event time lag samples (seconds)
    lag: HashMap<String, Vec<f64>>,
    /// Jobs too large to produce, sent to the job DLQ.
    oversized_jobs: u64,
    /// Input records forwarded to the device repartition topic.
    repartitioned: u64,
    /// Payments whose transaction id made their device forget its oldest.
    transactions_forgotten: u64,
    /// Late events older than every attribution their device remembers.
    beyond_history: u64,
    pub records: u64,
}

fn bump<K: std::hash::Hash + Eq>(map: &mut HashMap<K, u64>, key: K) {
    *map.entry(key).or_default() += 1;
}

impl BatchStats {
    pub fn event(&mut self, app: &App, event: &Event, outcome: &DeviceOutcome, now_ms: i64) {
        let result = if outcome.duplicate { EventResult::Duplicate } else { EventResult::Processed };
        self.transactions_forgotten += u64::from(outcome.transaction_forgotten);
        self.beyond_history += u64::from(outcome.beyond_history);
        self.count_event(&app.id, event.kind.as_str(), result);
        self.triggers(&outcome.triggers);
        let lag = (now_ms - event.timestamp_ms) as f64 / 1000.0;
        match self.lag.get_mut(&app.id) {
            Some(v) => v.push(lag),
            None => {
                self.lag.insert(app.id.clone(), vec![lag]);
            }
        }
    }

    fn count_event(&mut self, app: &str, kind: &'static str, result: EventResult) {
        self.records += 1;
        if !self.events.contains_key(app) {
            self.events.insert(app.to_owned(), HashMap::default());
        }
        bump(self.events.get_mut(app).expect("inserted"), (kind, result));
    }

    pub fn invalid(&mut self, reason: DlqReason) {
        self.records += 1;
        bump(&mut self.invalid, reason);
    }

    pub fn repartitioned(&mut self) {
        self.repartitioned += 1;
    }

    pub fn oversized_job(&mut self) {
        self.oversized_jobs += 1;
    }

    pub fn triggers(&mut self, triggers: &[Trigger]) {
        for t in triggers {
            bump(&mut self.triggers, t.name());
        }
    }

    pub fn job(&mut self, job: &Job) {
        if !self.jobs.contains_key(&job.partner_id) {
            self.jobs.insert(job.partner_id.clone(), HashMap::default());
        }
        let by_event = self.jobs.get_mut(&job.partner_id).expect("inserted");
        if !by_event.contains_key(&job.event) {
            by_event.insert(job.event.clone(), [0; 2]);
        }
        let counts = by_event.get_mut(&job.event).expect("inserted");
        counts[usize::from(job.attribution == Routing::Ca)] += 1;
    }

    /// Records rejected to the DLQ for `reason`.
    #[cfg(test)]
    pub fn rejected(&self, reason: DlqReason) -> u64 {
        self.invalid.get(&reason).copied().unwrap_or(0)
    }

    /// Adds this batch to the process metrics.
    pub fn publish(&self, topics: &TopicsConfig) {
        let m = metrics();
        if self.oversized_jobs > 0 {
            m.dlq_records(&topics.jobs_dlq, DlqReason::JobTooLarge, self.oversized_jobs);
        }
        if self.repartitioned > 0 {
            m.repartitioned(self.repartitioned);
        }
        if self.transactions_forgotten > 0 {
            m.transactions_forgotten(self.transactions_forgotten);
        }
        if self.beyond_history > 0 {
            m.late_beyond_history(self.beyond_history);
        }
        for (app, counts) in &self.events {
            for ((kind, result), n) in counts {
                m.events(app, kind, *result, *n);
            }
        }
        for (reason, n) in &self.invalid {
            m.events("unknown", "unknown", EventResult::Invalid, *n);
            m.dlq_records(&topics.events_dlq, *reason, *n);
        }
        for (trigger, n) in &self.triggers {
            m.triggers(trigger, *n);
        }
        for (partner, by_event) in &self.jobs {
            for (event, counts) in by_event {
                for (routing, n) in [(Routing::Lt, counts[0]), (Routing::Ca, counts[1])] {
                    if n > 0 {
                        m.jobs(partner, event, routing.as_str(), n);
                    }
                }
            }
        }
        for (app, samples) in &self.lag {
            let h = m.event_lag(app);
            for s in samples {
                h.observe(*s);
            }
        }
    }
}
