//! Every Prometheus metric postback exports, registered once. Names and
//! labels are a contract (docs/design.md §5.1; docs/operations/metrics.md is generated from this registry); label
//! values are bounded: apps, kinds, partners, postback events, partitions —
//! never device or job ids.
//!
//! The fields are private: business code records a fact through one typed
//! method per fact (`metrics().delivery(partner, Delivery::Retried)`), which
//! names its label values, so a metric name or a label order can only be
//! wrong in one place.

use crate::domain::reject::DlqReason;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::sync::LazyLock;

/// What happened to an input record (`events_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventResult {
    Processed,
    Duplicate,
    Invalid,
}

impl EventResult {
    fn label(self) -> &'static str {
        match self {
            EventResult::Processed => "processed",
            EventResult::Duplicate => "duplicate",
            EventResult::Invalid => "invalid",
        }
    }
}

/// Which span `batch_duration_seconds{stage}` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSpan {
    /// From the start of a batch's processing until it is committed and in
    /// the stores.
    Process,
    /// `commit_transaction` alone.
    Commit,
}

/// The outcome of a job in the sender (`deliveries_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// Failed an attempt, handed to a retry tier.
    Retried,
    /// Handed to the first retry tier without an attempt (partner saturated,
    /// circuit open).
    Deferred,
    /// Given up: to the job DLQ.
    Dlq,
    /// Refused by the SSRF guard: to the job DLQ.
    Blocked,
}

impl Delivery {
    pub fn label(self) -> &'static str {
        match self {
            Delivery::Delivered => "delivered",
            Delivery::Retried => "retried",
            Delivery::Deferred => "deferred",
            Delivery::Dlq => "dlq",
            Delivery::Blocked => "blocked",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    /// Every metric above, as registered.
    catalogue: Vec<MetricInfo>,
    // processing stage
    events: IntCounterVec,
    dlq_records: IntCounterVec,
    triggers: IntCounterVec,
    jobs: IntCounterVec,
    batch_duration: HistogramVec,
    batch_records: HistogramVec,
    transactions: IntCounterVec,
    producer_replacements: IntCounterVec,
    event_lag: HistogramVec,
    consumer_lag: IntGaugeVec,
    state_keys: IntGaugeVec,
    state_bytes: IntGaugeVec,
    restore_remaining: IntGaugeVec,
    restored_records: IntCounterVec,
    restores: IntCounterVec,
    stores_awaiting: IntGauge,
    rebalances: IntCounterVec,
    repartitioned: IntCounter,
    transactions_forgotten: IntCounter,
    late_beyond_history: IntCounter,
    layout_generation: IntGauge,
    layout_partitions: IntGaugeVec,
    thread_partitions: IntGaugeVec,
    // sender stage
    deliveries: IntCounterVec,
    http_duration: HistogramVec,
    http_responses: IntCounterVec,
    in_flight: IntGaugeVec,
    sender_partitions: IntGaugeVec,
    circuit_state: IntGaugeVec,
    sender_share: prometheus::Gauge,
    job_age: HistogramVec,
    // operations
    registry_failures: IntCounterVec,
    kafka_connection_errors: IntCounterVec,
    config_reloads: IntCounter,
    config_reload_failures: IntCounter,
    ready: IntGauge,
}

impl Metrics {
    // ---- processing stage ----

    /// `n` input records of `app`/`kind` ended as `result`.
    pub fn events(&self, app: &str, kind: &str, result: EventResult, n: u64) {
        self.events.with_label_values(&[app, kind, result.label()]).inc_by(n);
    }

    /// `n` records written to the DLQ `topic` for `reason`.
    pub fn dlq_records(&self, topic: &str, reason: DlqReason, n: u64) {
        self.dlq_records.with_label_values(&[topic, reason.label()]).inc_by(n);
    }

    pub fn triggers(&self, trigger: &str, n: u64) {
        self.triggers.with_label_values(&[trigger]).inc_by(n);
    }

    pub fn jobs(&self, partner: &str, event: &str, attribution: &str, n: u64) {
        self.jobs.with_label_values(&[partner, event, attribution]).inc_by(n);
    }

    pub fn batch_duration(&self, span: BatchSpan, seconds: f64) {
        let label = match span {
            BatchSpan::Process => "process",
            BatchSpan::Commit => "commit",
        };
        self.batch_duration.with_label_values(&[label]).observe(seconds);
    }

    pub fn batch_records(&self, records: usize) {
        self.batch_records.with_label_values(&["process"]).observe(records as f64);
    }

    /// `n` input records forwarded to the device repartition topic (not on
    /// their state partition), counted when their transaction commits.
    pub fn repartitioned(&self, n: u64) {
        self.repartitioned.inc_by(n);
    }

    /// `n` devices forgot their oldest remembered transaction id (a repeat
    /// of it would no longer be recognised as a duplicate).
    pub fn transactions_forgotten(&self, n: u64) {
        self.transactions_forgotten.inc_by(n);
    }

    /// `n` late events older than every attribution their device remembers
    /// (routed to the oldest one kept).
    pub fn late_beyond_history(&self, n: u64) {
        self.late_beyond_history.inc_by(n);
    }

    /// The state layout in use: its generation, and the partition counts
    /// of the input and of each stage's state.
    pub fn layout(&self, generation: i64, input: i32, device: i32, user: i32) {
        self.layout_generation.set(generation);
        for (what, n) in [("input", input), ("device_state", device), ("user_state", user)] {
            self.layout_partitions.with_label_values(&[what]).set(i64::from(n));
        }
    }

    /// The processor replaced its transactional producer: `fatal` (a
    /// transaction timed out during an outage, or an abort failed) or
    /// `hung` (a call never returned).
    pub fn producer_replaced(&self, reason: &'static str) {
        self.producer_replacements.with_label_values(&[reason]).inc();
    }

    pub fn transaction(&self, committed: bool) {
        self.transactions.with_label_values(&[if committed { "committed" } else { "aborted" }]).inc();
    }

    /// The event-time lag histogram of `app` (observed once per event).
    pub fn event_lag(&self, app: &str) -> Histogram {
        self.event_lag.with_label_values(&[app])
    }

    pub fn consumer_lag(&self, group: &str, topic: &str, partition: i32, lag: i64) {
        self.consumer_lag.with_label_values(&[group, topic, &partition.to_string()]).set(lag);
    }

    /// The partition left this instance: its lag is reported elsewhere.
    pub fn forget_consumer_lag(&self, group: &str, topic: &str, partition: i32) {
        let _ = self.consumer_lag.remove_label_values(&[group, topic, &partition.to_string()]);
    }

    pub fn state_size(&self, store: &str, partition: i32, keys: u64, bytes: u64) {
        let partition = partition.to_string();
        self.state_keys.with_label_values(&[store, &partition]).set(keys as i64);
        self.state_bytes.with_label_values(&[store, &partition]).set(bytes as i64);
    }

    /// Restore progress of one store: records left, and records restored so far.
    pub fn restore_progress(&self, store: &str, partition: i32) -> (IntGauge, IntCounter) {
        let partition = partition.to_string();
        (
            self.restore_remaining.with_label_values(&[store, &partition]),
            self.restored_records.with_label_values(&[store, &partition]),
        )
    }

    pub fn restore_completed(&self, store: &str) {
        self.restores.with_label_values(&[store]).inc();
    }

    /// Stores of newly assigned partitions that another processing thread
    /// of this process still holds: `delta` is +1 when one starts waiting,
    /// -1 when it is taken over or its partition goes away.
    pub fn stores_awaiting(&self, delta: i64) {
        self.stores_awaiting.add(delta);
    }

    /// Partitions of `topic` (input or user activity) assigned to a processing thread.
    pub fn thread_partitions(&self, thread: &str, topic: &str, n: usize) {
        self.thread_partitions.with_label_values(&[thread, topic]).set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// `assigned`: partitions came in; else they were revoked.
    pub fn rebalance(&self, group: &str, assigned: bool) {
        self.rebalances.with_label_values(&[group, if assigned { "assign" } else { "revoke" }]).inc();
    }

    // ---- sender stage ----

    pub fn delivery(&self, partner: &str, outcome: Delivery) {
        self.deliveries.with_label_values(&[partner, outcome.label()]).inc();
    }

    /// One finished request: its status class (`2xx`…, `timeout`, `error`,
    /// `blocked`) and duration.
    pub fn http_response(&self, partner: &str, class: &str, seconds: f64) {
        self.http_duration.with_label_values(&[partner]).observe(seconds);
        self.http_responses.with_label_values(&[partner, class]).inc();
    }

    /// Partitions of `topic` (jobs or a retry tier) this sender holds.
    pub fn sender_partitions(&self, topic: &str, n: usize) {
        self.sender_partitions.with_label_values(&[topic]).set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The in-flight gauge of a partner.
    /// This sender's share of every partner's limits (0..1).
    pub fn sender_share(&self, share: f64) {
        self.sender_share.set(share);
    }

    pub fn in_flight(&self, partner: &str) -> IntGauge {
        self.in_flight.with_label_values(&[partner])
    }

    /// 0 closed, 1 half-open, 2 open.
    pub fn circuit_state(&self, partner: &str, state: i64) {
        self.circuit_state.with_label_values(&[partner]).set(state);
    }

    pub fn job_age(&self, partner: &str, seconds: f64) {
        self.job_age.with_label_values(&[partner]).observe(seconds);
    }

    // ---- operations ----

    /// A schema registry call gave no usable answer (`kind`: a bounded label).
    pub fn registry_failure(&self, kind: &str) {
        self.registry_failures.with_label_values(&[kind]).inc();
    }

    /// librdkafka reported a connection error of `kind` (authentication,
    /// tls, transport, resolve, all_brokers_down).
    pub fn kafka_connection_error(&self, kind: &str) {
        self.kafka_connection_errors.with_label_values(&[kind]).inc();
    }

    pub fn config_reload(&self, applied: bool) {
        if applied { self.config_reloads.inc() } else { self.config_reload_failures.inc() }
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    /// Every postback metric: name, kind, labels, help.
    pub fn catalogue(&self) -> &[MetricInfo] {
        &self.catalogue
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf).expect("text encoding never fails");
        String::from_utf8(buf).expect("prometheus text is utf-8")
    }
}

/// One metric as the reference lists it (docs/operations/metrics.md is
/// generated from these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricInfo {
    /// Without the `postback_` prefix.
    pub name: String,
    pub kind: &'static str,
    pub labels: Vec<String>,
    pub help: String,
}

/// The registry, and every metric registered in it, in order.
struct Reg {
    registry: Registry,
    list: std::cell::RefCell<Vec<MetricInfo>>,
}

impl Reg {
    fn add<C: prometheus::core::Collector + Clone + 'static>(
        &self,
        c: &C,
        kind: &'static str,
        name: &str,
        help: &str,
        labels: &[&str],
    ) {
        self.registry.register(Box::new(c.clone())).expect("metric registered once");
        let labels = labels.iter().map(|l| (*l).to_owned()).collect();
        self.list.borrow_mut().push(MetricInfo { name: name.to_owned(), kind, labels, help: help.to_owned() });
    }
}

fn counter(r: &Reg, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(format!("postback_{name}"), help), labels).expect("valid metric");
    r.add(&c, "counter", name, help, labels);
    c
}

fn gauge(r: &Reg, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(format!("postback_{name}"), help), labels).expect("valid metric");
    r.add(&g, "gauge", name, help, labels);
    g
}

fn histogram(r: &Reg, name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
    let opts = HistogramOpts::new(format!("postback_{name}"), help).buckets(buckets.to_vec());
    let h = HistogramVec::new(opts, labels).expect("valid metric");
    r.add(&h, "histogram", name, help, labels);
    h
}

fn single_counter(r: &Reg, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(format!("postback_{name}"), help).expect("valid metric");
    r.add(&c, "counter", name, help, &[]);
    c
}

fn single_gauge(r: &Reg, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(format!("postback_{name}"), help).expect("valid metric");
    r.add(&g, "gauge", name, help, &[]);
    g
}

fn float_gauge(r: &Reg, name: &str, help: &str) -> prometheus::Gauge {
    let g = prometheus::Gauge::new(format!("postback_{name}"), help).expect("valid metric");
    r.add(&g, "gauge", name, help, &[]);
    g
}

const SECONDS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
const LAG: &[f64] = &[0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 1800.0, 3600.0, 21600.0, 86400.0];
const RECORDS: &[f64] = &[1.0, 10.0, 100.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 25000.0, 50000.0];

impl Metrics {
    fn new() -> Metrics {
        let r = Reg { registry: Registry::new(), list: Default::default() };
        let ready = single_gauge(&r, "ready", "1 when every assigned partition is restored and the stages run");
        register_build_info(&r);
        // CPU, memory, file descriptors and start time of this process
        r.registry
            .register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
            .expect("process collector registered once");
        Metrics {
            events: counter(
                &r,
                "events_total",
                "input events: `processed`, `duplicate`, `invalid` (invalid ones carry `app`/`kind` `unknown`)",
                &["app", "kind", "result"],
            ),
            dlq_records: counter(
                &r,
                "dlq_records_total",
                "records written to a DLQ, by topic and reason (the reasons: the table below); the sender counts jobs it cannot decode as `undecodable` on the job DLQ",
                &["topic", "reason"],
            ),
            triggers: counter(
                &r,
                "triggers_total",
                "facts the rules established (`install`, `first_payment_ca`, `user_reengagement`, …)",
                &["trigger"],
            ),
            jobs: counter(
                &r,
                "jobs_total",
                "postback jobs emitted (`lt` / `ca`)",
                &["partner", "event", "attribution"],
            ),
            batch_duration: histogram(
                &r,
                "batch_duration_seconds",
                "`process`: a batch from the start of its processing until it is committed and in the stores (overlaps the next batch's processing); `commit`: `commit_transaction`",
                &["stage"],
                SECONDS,
            ),
            batch_records: histogram(&r, "batch_records", "records per committed batch", &["stage"], RECORDS),
            transactions: counter(&r, "transactions_total", "`committed`, `aborted`", &["result"]),
            producer_replacements: counter(
                &r,
                "producer_replacements_total",
                "the processor replaced its transactional producer: `fatal` (its transaction timed out during an outage, an abort failed, or a fatal error other than fencing), `hung` (a call never returned; [troubleshooting](troubleshooting.md))",
                &["reason"],
            ),
            repartitioned: single_counter(
                &r,
                "repartitioned_records_total",
                "input records forwarded to the device repartition topic because they were not on their state partition",
            ),
            transactions_forgotten: single_counter(
                &r,
                "transaction_ids_forgotten_total",
                "payments whose transaction id made their device forget its oldest remembered one",
            ),
            late_beyond_history: single_counter(
                &r,
                "late_events_beyond_history_total",
                "late events older than every attribution their device remembers, routed to the oldest kept",
            ),
            layout_generation: single_gauge(&r, "layout_generation", "generation of the state layout in use"),
            layout_partitions: gauge(
                &r,
                "layout_partitions",
                "`input`, `device_state`, `user_state` partition counts in use",
                &["of"],
            ),
            thread_partitions: gauge(
                &r,
                "processor_partitions",
                "partitions of the input and of `postback.user-activity` assigned to each processing thread (`processor`, or `processor-0`… with `process.threads` > 1)",
                &["thread", "topic"],
            ),
            event_lag: histogram(&r, "event_time_lag_seconds", "processing time minus event time", &["app"], LAG),
            consumer_lag: gauge(
                &r,
                "consumer_lag",
                "the partition's last stable offset minus the group's committed offset, every 5 s; for the processor the offset its transactions committed ([observability](observability.md#lag-on-transactional-topics))",
                &["group", "topic", "partition"],
            ),
            state_keys: gauge(
                &r,
                "state_keys",
                "approximate keys of each RocksDB store (`device`, `user`), every 10 s",
                &["store", "partition"],
            ),
            state_bytes: gauge(
                &r,
                "state_bytes",
                "approximate bytes of each RocksDB store (`device`, `user`), every 10 s",
                &["store", "partition"],
            ),
            restore_remaining: gauge(
                &r,
                "restore_remaining_records",
                "changelog records left to restore; 0 when done",
                &["store", "partition"],
            ),
            stores_awaiting: single_gauge(
                &r,
                "processor_stores_awaiting",
                "assigned state stores still open in another processing thread of this process",
            ),
            restored_records: counter(
                &r,
                "restored_records_total",
                "changelog records restored",
                &["store", "partition"],
            ),
            restores: counter(&r, "restores_total", "completed restores (one per assigned partition)", &["store"]),
            rebalances: counter(&r, "rebalances_total", "`assign`, `revoke`", &["group", "kind"]),
            deliveries: counter(
                &r,
                "deliveries_total",
                "`delivered`, `retried`, `deferred` (not an attempt), `dlq`, `blocked`",
                &["partner", "outcome"],
            ),
            http_duration: histogram(&r, "http_request_duration_seconds", "request duration", &["partner"], SECONDS),
            http_responses: counter(
                &r,
                "http_responses_total",
                "`2xx` … `5xx`, `timeout`, `error`, `blocked`",
                &["partner", "class"],
            ),
            in_flight: gauge(&r, "http_in_flight", "requests in flight", &["partner"]),
            sender_partitions: gauge(
                &r,
                "sender_partitions",
                "partitions of `postback.jobs` and of each retry tier assigned to this sender",
                &["topic"],
            ),
            circuit_state: gauge(&r, "circuit_state", "0 closed, 1 half-open, 2 open", &["partner"]),
            sender_share: float_gauge(
                &r,
                "sender_limit_share",
                "this sender's share of every partner's rate_limit and max_concurrency: its part of the group's partitions",
            ),
            job_age: histogram(&r, "job_age_seconds", "job age (now − created) at delivery", &["partner"], LAG),
            registry_failures: counter(
                &r,
                "schema_registry_failures_total",
                "schema registry calls without a usable answer, by kind; the batch waits (unreachable, timeout, unauthorized, forbidden, proxy_auth, wrong_path, throttled, server_error, unexpected)",
                &["kind"],
            ),
            kafka_connection_errors: counter(
                &r,
                "kafka_connection_errors_total",
                "connection errors librdkafka reported, by kind (authentication, tls, transport, resolve, all_brokers_down)",
                &["kind"],
            ),
            config_reloads: single_counter(&r, "config_reloads_total", "config reloads applied"),
            config_reload_failures: single_counter(
                &r,
                "config_reload_failures_total",
                "config reloads refused (invalid or incomplete config)",
            ),
            ready,
            catalogue: r.list.take(),
            registry: r.registry,
        }
    }
}

/// `postback_build_info{version, librdkafka} 1`: which build each pod runs
/// (a fleet mid-upgrade shows two versions).
fn register_build_info(r: &Reg) {
    let info =
        gauge(r, "build_info", "the running build: postback's version and librdkafka's", &["version", "librdkafka"]);
    let (_, librdkafka) = rdkafka::util::get_rdkafka_version();
    info.with_label_values(&[env!("CARGO_PKG_VERSION"), librdkafka.as_str()]).set(1);
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

/// docs/operations/metrics.md, generated from the registry (a test keeps
/// the file equal to it: `POSTBACK_UPDATE_DOCS=1 make unit` rewrites it).
pub fn reference() -> String {
    let mut out = String::from(
        "# Metrics reference\n\n<!-- generated from src/telemetry/metrics.rs by `reference()`; \
         POSTBACK_UPDATE_DOCS=1 make unit rewrites it -->\n\n\
         Every metric postback exports on `/metrics`, prefixed `postback_`. Label values are \
         bounded — apps, kinds, partners, postback events, partitions — never device or job ids. \
         Besides these, the standard `process_*` metrics (CPU seconds, resident memory, open file \
         descriptors, start time) of the process.\n\n\
         | metric | type | labels | meaning |\n|---|---|---|---|\n",
    );
    for m in metrics().catalogue() {
        let labels: Vec<String> = m.labels.iter().map(|l| format!("`{l}`")).collect();
        out.push_str(&format!("| `postback_{}` | {} | {} | {} |\n", m.name, m.kind, labels.join(", "), m.help));
    }
    out.push_str(
        "\n## DLQ reasons\n\n`postback_dlq_records_total{reason}` counts records written to a dead-letter \
         topic by these reasons; the record's `error` header says the particular case.\n\n\
         | reason | the record |\n|---|---|\n",
    );
    for r in DlqReason::ALL {
        out.push_str(&format!("| `{}` | {} |\n", r.label(), r.about()));
    }
    out
}
