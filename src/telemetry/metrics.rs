//! Every Prometheus metric postback exports, registered once. Names and
//! labels are a contract (DESIGN §5.1); label values are bounded: apps,
//! kinds, partners, postback events, partitions — never device or job ids.
//!
//! Business code calls the typed methods below and never spells a metric
//! name, so a name can only be wrong in one place.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::LazyLock;

pub struct Metrics {
    registry: Registry,
    // processing stage
    pub events: IntCounterVec,
    pub dlq_records: IntCounterVec,
    pub triggers: IntCounterVec,
    pub jobs: IntCounterVec,
    pub batch_duration: HistogramVec,
    pub batch_records: HistogramVec,
    pub transactions: IntCounterVec,
    pub event_lag: HistogramVec,
    pub consumer_lag: IntGaugeVec,
    pub state_keys: IntGaugeVec,
    pub state_bytes: IntGaugeVec,
    pub restore_remaining: IntGaugeVec,
    pub restored_records: IntCounterVec,
    pub restores: IntCounterVec,
    pub rebalances: IntCounterVec,
    // sender stage
    pub deliveries: IntCounterVec,
    pub http_duration: HistogramVec,
    pub http_responses: IntCounterVec,
    pub in_flight: IntGaugeVec,
    pub circuit_state: IntGaugeVec,
    pub job_age: HistogramVec,
    // operations
    pub config_reloads: IntCounter,
    pub config_reload_failures: IntCounter,
    pub ready: IntGauge,
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("metric registered once");
    c
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(g.clone())).expect("metric registered once");
    g
}

fn histogram(r: &Registry, name: &str, help: &str, labels: &[&str], buckets: Vec<f64>) -> HistogramVec {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels).expect("valid metric");
    r.register(Box::new(h.clone())).expect("metric registered once");
    h
}

const SECONDS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
const LAG: &[f64] = &[0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 1800.0, 3600.0, 21600.0, 86400.0];

impl Metrics {
    fn new() -> Metrics {
        let r = Registry::new();
        let p = "postback_";
        let n = |s: &str| format!("{p}{s}");
        Metrics {
            events: counter(
                &r,
                &n("events_total"),
                "input events by app, kind and result (processed, duplicate, invalid)",
                &["app", "kind", "result"],
            ),
            dlq_records: counter(
                &r,
                &n("dlq_records_total"),
                "records written to a DLQ, by topic and reason",
                &["topic", "reason"],
            ),
            triggers: counter(&r, &n("triggers_total"), "triggers established by the rules", &["trigger"]),
            jobs: counter(
                &r,
                &n("jobs_total"),
                "postback jobs emitted, by partner, event and attribution",
                &["partner", "event", "attribution"],
            ),
            batch_duration: histogram(
                &r,
                &n("batch_duration_seconds"),
                "time to process and commit one batch",
                &["stage"],
                SECONDS.to_vec(),
            ),
            batch_records: histogram(
                &r,
                &n("batch_records"),
                "records per committed batch",
                &["stage"],
                vec![1.0, 10.0, 100.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0],
            ),
            transactions: counter(
                &r,
                &n("transactions_total"),
                "Kafka transactions by result (committed, aborted)",
                &["result"],
            ),
            event_lag: histogram(
                &r,
                &n("event_time_lag_seconds"),
                "processing time minus event time",
                &["app"],
                LAG.to_vec(),
            ),
            consumer_lag: gauge(
                &r,
                &n("consumer_lag"),
                "records behind the partition end, per consumed partition",
                &["group", "topic", "partition"],
            ),
            state_keys: gauge(&r, &n("state_keys"), "approximate keys per state store", &["store", "partition"]),
            state_bytes: gauge(&r, &n("state_bytes"), "approximate bytes per state store", &["store", "partition"]),
            restore_remaining: gauge(
                &r,
                &n("restore_remaining_records"),
                "changelog records left to restore (0 when done)",
                &["store", "partition"],
            ),
            restored_records: counter(
                &r,
                &n("restored_records_total"),
                "changelog records restored into state stores",
                &["store", "partition"],
            ),
            restores: counter(&r, &n("restores_total"), "completed store restores", &["store"]),
            rebalances: counter(
                &r,
                &n("rebalances_total"),
                "partition assignment changes by kind (assign, revoke)",
                &["group", "kind"],
            ),
            deliveries: counter(
                &r,
                &n("deliveries_total"),
                "job outcomes by partner (delivered, retried, deferred, dlq, blocked)",
                &["partner", "outcome"],
            ),
            http_duration: histogram(
                &r,
                &n("http_request_duration_seconds"),
                "partner request duration",
                &["partner"],
                SECONDS.to_vec(),
            ),
            http_responses: counter(
                &r,
                &n("http_responses_total"),
                "partner responses by status class (2xx..5xx, timeout, error)",
                &["partner", "class"],
            ),
            in_flight: gauge(&r, &n("http_in_flight"), "requests in flight per partner", &["partner"]),
            circuit_state: gauge(
                &r,
                &n("circuit_state"),
                "partner circuit: 0 closed, 1 half-open, 2 open",
                &["partner"],
            ),
            job_age: histogram(
                &r,
                &n("job_age_seconds"),
                "job age (now - created) when delivered",
                &["partner"],
                LAG.to_vec(),
            ),
            config_reloads: {
                let c = IntCounter::new(n("config_reloads_total"), "config reloads applied").expect("valid metric");
                r.register(Box::new(c.clone())).expect("metric registered once");
                c
            },
            config_reload_failures: {
                let c = IntCounter::new(n("config_reload_failures_total"), "config reloads refused (invalid config)")
                    .expect("valid metric");
                r.register(Box::new(c.clone())).expect("metric registered once");
                c
            },
            ready: {
                let g = IntGauge::new(
                    n("ready"),
                    "1 when every assigned partition is restored and the producer is initialised",
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("metric registered once");
                g
            },
            registry: r,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf).expect("text encoding never fails");
        String::from_utf8(buf).expect("prometheus text is utf-8")
    }
}

/// Sum of the samples of `name` whose labels include every `labels` pair,
/// read from the text exposition (the demo's progress line, tests).
pub fn sum(name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics()
        .render()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && matches!(l.as_bytes().get(name.len()), Some(b'{' | b' ')))
        .filter(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

pub fn metrics() -> &'static Metrics {
    &METRICS
}
