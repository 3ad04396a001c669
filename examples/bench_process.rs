//! End-to-end benchmark of the processing stage on a real broker (run by
//! `scripts/bench-process`, which starts the broker):
//!
//! 1. produce N generated events (realistic mix) to an 8-partition topic;
//! 2. baselines: a consumer that does nothing reads the whole topic, and an
//!    exactly-once copy (consume, produce one record per event, commit in a
//!    transaction; no state) — the floor of any transactional processor;
//! 3. the processor, from empty state, processes the same topic: events/s
//!    from ready to fully committed;
//! 4. latency: with the processor caught up, more events at a steady rate
//!    (5,000 events/s, then a half and a quarter of the rate of step 3);
//!    event → job latency is the time from an event's produce timestamp to
//!    its first job becoming visible to a read_committed consumer, for all
//!    events and for those produced after the phase's first 2 s;
//! 5. an exactly-once *volume* copy: the copy of step 2, writing instead the
//!    very records step 3 wrote (jobs, changelogs, forwarded activity,
//!    DLQ; same topics' partitions, keys and bytes), spread evenly over the
//!    events — the floor for postback's output, which is several records
//!    per event. It does not re-read the forwarded records, as the user
//!    stage does.
//!
//! With `BENCH_MODE=repartition` every event is produced one partition
//! off its device's (as a producer with another partitioner would), so all
//! of them go through the repartition topic before the device stage.
//!
//! Usage: bench_process BOOTSTRAP [EVENTS] [DEVICES]

mod common;
#[path = "bench/copy.rs"]
mod copy;

use common::{client, create_topic, send_waiting, thread_cpu_secs};
use postback::codec::encode_event_json;
use postback::config;
use postback::demo::generator::{Generator, Mix};
use postback::kafka::partition_for;
use postback::process;
use postback::telemetry::Health;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicI64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PARTITIONS: i32 = 8;

fn main() {
    // the processor's warnings (RUST_LOG, default warn) go to stderr
    postback::telemetry::logging::init(postback::telemetry::logging::LogFormat::Text, "warn");
    let args: Vec<String> = std::env::args().collect();
    let bootstrap = args.get(1).expect("usage: bench_process BOOTSTRAP [EVENTS] [DEVICES]").clone();
    let n: usize = args.get(2).map_or(1_000_000, |s| s.parse().expect("EVENTS"));
    let devices: usize = args.get(3).map_or(120_000, |s| s.parse().expect("DEVICES"));
    let topic = format!("bench-{}.events", std::process::id());
    create_topic(&bootstrap, &topic, PARTITIONS);

    let mut generator = Generator::new(&Mix { devices, seed: 42, ..Mix::default() });
    let t = Instant::now();
    let produced = produce(&bootstrap, &topic, (&mut generator).take(n));
    eprintln!("produced {produced} events in {:.1}s", t.elapsed().as_secs_f64());

    let raw = raw_consume_rate(&bootstrap, &topic, n);
    eprintln!("raw consume: {raw:.0} events/s");
    let floor = copy::eos_copy_rate(&bootstrap, &topic, PARTITIONS, n);
    eprintln!("exactly-once copy: {floor:.0} events/s");

    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    // thread scaling: one processing thread first, from empty state with
    // its own group and state topics, then the shipped default (one thread
    // per core)
    let single = (cores > 1 && std::env::var("BENCH_THREADS").is_err()).then(|| {
        let run = Processor::start(&bootstrap, &topic, n, "single", Some(1));
        let (rate, cpu) = (run.rate, run.cpu_us_per_event);
        run.stop();
        eprintln!("processor, 1 thread: {rate:.0} events/s");
        (rate, cpu)
    });
    let before = BatchMetrics::now();
    let threads = std::env::var("BENCH_THREADS").ok().and_then(|v| v.parse().ok());
    let run = Processor::start(&bootstrap, &topic, n, "", threads);
    let (rate, cpu) = (run.rate, run.cpu_us_per_event);
    let batches = BatchMetrics::now().minus(&before);
    let config_rules = Arc::clone(&run.rules);
    // what this run wrote for the n events: the volume copy writes the same
    let prefix = topic.trim_end_matches(".events");
    let written: Vec<String> = ["jobs", "device-changelog", "user-changelog", "user-activity", "device-events", "dlq"]
        .iter()
        .map(|t| format!("{prefix}.{t}"))
        .collect();
    let ends = copy::watermarks(&bootstrap, &written);

    // jobs of the user stage come through postback.user-activity: a second
    // transaction after the device stage's
    let user_postbacks: std::collections::HashSet<String> = config_rules
        .postbacks()
        .iter()
        .filter(|p| p.event.to_string().contains("(by user)") || p.event.name() == "new_user")
        .map(|p| p.id.clone())
        .collect();
    // BENCH_LATENCY=0: throughput only (A/B runs of a change)
    let latencies = std::env::var("BENCH_LATENCY").map_or(true, |v| v != "0").then(|| {
        let at_5k = latency(&bootstrap, &topic, &mut generator, &user_postbacks, 5_000.0);
        // half load: half the rate this configuration just sustained. On a
        // machine whose cores also run the broker and this bench's own
        // producer, that is close to what the processor sustains while the
        // events are being produced, so a quarter is measured too
        // BENCH_LOAD_BASE=RATE: halves and quarters of a given rate instead
        // (to compare thread counts at the same input rate)
        let base = std::env::var("BENCH_LOAD_BASE").ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or(rate);
        let loads = [2.0, 4.0].map(|div| {
            let at = (base / div).round();
            (at, latency(&bootstrap, &topic, &mut generator, &user_postbacks, at))
        });
        (at_5k, loads)
    });
    run.stop();
    let outputs = copy::read_outputs(&bootstrap, &ends);
    let volume = copy::eos_volume_copy_rate(&bootstrap, &topic, PARTITIONS, n, &outputs);
    eprintln!("exactly-once volume copy ({} records): {volume:.0} events/s", outputs.len());
    let mode = if repartition() { "repartition" } else { "co-partitioned" };
    let threads = threads.map_or_else(|| format!("{cores} (default: one per core)"), |t| t.to_string());
    println!("events={n} devices={devices} partitions={PARTITIONS} mode={mode} threads={threads} cores={cores}");
    println!("raw_consume_events_per_s={raw:.0}");
    println!("processor_events_per_s={rate:.0}");
    println!("eos_copy_events_per_s={floor:.0}");
    println!("ratio={:.2}", rate / raw);
    println!("ratio_to_eos_copy={:.2}", rate / floor);
    println!("processing_thread_cpu_us_per_event={cpu:.2}");
    println!(
        "output_records_per_event={:.2} output_bytes_per_event={:.0}",
        outputs.len() as f64 / n as f64,
        outputs.bytes as f64 / n as f64
    );
    println!("eos_volume_copy_events_per_s={volume:.0}");
    println!("ratio_to_volume_copy={:.2}", rate / volume);
    if let Some((one, one_cpu)) = single {
        println!("processor_1_thread_events_per_s={one:.0} ratio_to_eos_copy={:.2}", one / floor);
        println!("processor_1_thread_cpu_us_per_event={one_cpu:.2}");
        println!("thread_scaling={:.2}", rate / one);
    }
    if let Some(((p50, p99, samples, split), loads)) = latencies {
        println!("latency_samples={samples} p50_ms={p50:.1} p99_ms={p99:.1} (5000 events/s)");
        println!("{split}");
        for ((at, (l50, l99, l_samples, l_split)), name) in loads.into_iter().zip(["half", "quarter"]) {
            println!("{name}_load_events_per_s={at:.0} latency_samples={l_samples} p50_ms={l50:.1} p99_ms={l99:.1}");
            println!("{l_split}");
        }
    }
    batches.print();
}

/// A processor started from empty state on the bench topic, once it has
/// committed every event.
struct Processor {
    rate: f64,
    /// CPU time of the processing threads per input event (not the client
    /// library's threads, the commit threads or the broker).
    cpu_us_per_event: f64,
    rules: Arc<postback::domain::Rules>,
    shutdown: tokio_util::sync::CancellationToken,
    handle: std::thread::JoinHandle<Result<(), process::ProcessError>>,
    _state: tempfile::TempDir,
}

impl Processor {
    /// `run` names its group and state topics apart from other runs.
    fn start(bootstrap: &str, topic: &str, n: usize, run: &str, threads: Option<usize>) -> Processor {
        let state = tempfile::tempdir().expect("tempdir");
        let config = bench_config(bootstrap, topic, run, threads, state.path());
        let group = config.kafka.group_id.clone();
        let states = config.topics.device_events.clone();
        let rules = Arc::clone(&config.rules);
        let shutdown = tokio_util::sync::CancellationToken::new();
        let health = Health::new();
        let handle = process::start(Arc::new(RwLock::new(Arc::new(config))), health.clone(), shutdown.clone())
            .expect("start processor");
        // ready, every thread holding partitions and every input partition
        // held: readiness alone can come before the last thread has joined
        // or in the middle of a cooperative rebalance, between one thread
        // giving partitions up and another taking them
        let settled = Instant::now() + Duration::from_secs(120);
        // the processor's own default when not given: one per core
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let names: Vec<String> = match threads.unwrap_or(cores).min(PARTITIONS as usize) {
            1 => vec!["processor".to_owned()],
            many => (0..many).map(|i| format!("processor-{i}")).collect(),
        };
        let all_hold = || names.iter().all(|name| held(name, None) > 0.0);
        let input_held = || names.iter().map(|name| held(name, Some(topic))).sum::<f64>() == PARTITIONS as f64;
        while !(health.is_ready() && all_hold() && input_held()) && Instant::now() < settled {
            std::thread::sleep(Duration::from_millis(20));
        }
        // the clock starts once every thread has joined and restored, and
        // counts the events committed after that: the first thread to join
        // processes alone until the others' rebalance, which is not the
        // steady state being measured
        let (t, base) = (Instant::now(), committed_now(bootstrap, &group, topic));
        eprintln!("input partitions per thread when ready: {}", assignment(topic));
        wait_committed(bootstrap, &group, topic, n as i64);
        if repartition() {
            wait_committed(bootstrap, &group, &states, n as i64);
        }
        let secs = t.elapsed().as_secs_f64();
        let counted = n as f64 - base as f64;
        // the processing threads are still alive: their CPU so far is the run's
        let cpu = thread_cpu_secs("processor");
        eprintln!(
            "processor: {counted} events after all threads were ready, in {secs:.1}s, processing threads {cpu:.2} CPU-s"
        );
        Processor {
            rate: counted / secs,
            cpu_us_per_event: cpu * 1e6 / n as f64,
            rules,
            shutdown,
            handle,
            _state: state,
        }
    }

    fn stop(self) {
        self.shutdown.cancel();
        let _ = self.handle.join();
    }
}

/// Batch sizes and durations from the metrics, to print one run's means.
struct BatchMetrics([f64; 6]);

impl BatchMetrics {
    fn now() -> BatchMetrics {
        let m = |name: &str, stage: &str| postback::telemetry::metrics::sum(name, &[("stage", stage)]);
        BatchMetrics([
            m("postback_batch_duration_seconds_sum", "process"),
            m("postback_batch_duration_seconds_count", "process"),
            m("postback_batch_duration_seconds_sum", "commit"),
            m("postback_batch_duration_seconds_count", "commit"),
            m("postback_batch_records_sum", "process"),
            m("postback_batch_records_count", "process"),
        ])
    }

    fn minus(&self, before: &BatchMetrics) -> BatchMetrics {
        BatchMetrics(std::array::from_fn(|i| self.0[i] - before.0[i]))
    }

    fn print(&self) {
        let v = &self.0;
        println!("batch_process_seconds_mean={:.4} count={}", v[0] / v[1].max(1.0), v[1]);
        println!("batch_commit_seconds_mean={:.4} count={}", v[2] / v[3].max(1.0), v[3]);
        println!("batch_records_mean={:.0}", v[4] / v[5].max(1.0));
    }
}

/// Produces events keyed by device; `rate` limits events/s.
/// An event ready to produce: the load generator's own work (JSON
/// encoding) is done before a phase starts, so that it does not compete
/// with the processor for the two cores during the phase.
struct Encoded {
    event_id: String,
    key: Vec<u8>,
    partition: i32,
    value: Vec<u8>,
}

fn encode_all(events: impl Iterator<Item = postback::domain::Event>) -> Vec<Encoded> {
    events
        .map(|e| {
            let own = partition_for(e.device_id.as_bytes(), PARTITIONS);
            let partition = if repartition() { (own + 1) % PARTITIONS } else { own };
            let value = encode_event_json(&e);
            Encoded { event_id: e.event_id, key: e.device_id.into_bytes(), partition, value }
        })
        .collect()
}

fn produce(bootstrap: &str, topic: &str, events: impl Iterator<Item = postback::domain::Event>) -> usize {
    produce_encoded(bootstrap, topic, &encode_all(events), None, |_| {})
}

/// Produces `records`, at `rate` per second if given; `sending(i)` is
/// called as record `i` is handed to the producer.
fn produce_encoded(
    bootstrap: &str,
    topic: &str,
    records: &[Encoded],
    rate: Option<f64>,
    mut sending: impl FnMut(usize),
) -> usize {
    let p: BaseProducer = client(bootstrap)
        .set("linger.ms", "20")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    // connected, with the topic's leaders known, before the first event is
    // stamped: a new producer's first records wait for both, which would
    // show as event -> job latency of the processor
    p.client().fetch_metadata(Some(topic), Duration::from_secs(10)).expect("producer metadata");
    let start = Instant::now();
    for (i, r) in records.iter().enumerate() {
        if let Some(rate) = rate {
            let due = Duration::from_secs_f64(i as f64 / rate);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        sending(i);
        send_waiting(&p, BaseRecord::to(topic).partition(r.partition).key(&r.key).payload(&r.value));
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(120)).expect("flush");
    records.len()
}

fn repartition() -> bool {
    std::env::var("BENCH_MODE").is_ok_and(|m| m == "repartition")
}

fn assign_all(consumer: &BaseConsumer, topic: &str, offset: Offset) {
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, offset).expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
}

/// A consumer that reads every record and does nothing with it.
fn raw_consume_rate(bootstrap: &str, topic: &str, n: usize) -> f64 {
    let consumer: BaseConsumer =
        client(bootstrap).set("group.id", "bench-raw").set("enable.auto.commit", "false").create().expect("consumer");
    assign_all(&consumer, topic, Offset::Beginning);
    let mut count = 0usize;
    let mut started: Option<Instant> = None;
    while count < n {
        if let Some(Ok(m)) = consumer.poll(Duration::from_secs(5)) {
            started.get_or_insert_with(Instant::now);
            std::hint::black_box(m.payload());
            count += 1;
        }
    }
    count as f64 / started.expect("records").elapsed().as_secs_f64()
}

fn bench_config(bootstrap: &str, topic: &str, run: &str, threads: Option<usize>, state: &Path) -> config::Config {
    let prefix = format!("{}{run}", topic.trim_end_matches(".events"));
    let text = format!(
        "[kafka]\nbootstrap_servers = \"{bootstrap}\"\ninstance_id = \"bench{run}\"\ngroup_id = \"{prefix}.group\"\n\
         [topics]\nevents = \"{topic}\"\nevents_dlq = \"{prefix}.dlq\"\nuser_activity = \"{prefix}.user-activity\"\ndevice_events = \"{prefix}.device-events\"\nlayout = \"{prefix}.layout\"\n\
         device_changelog = \"{prefix}.device-changelog\"\nuser_changelog = \"{prefix}.user-changelog\"\njobs = \"{prefix}.jobs\"\n\
         [process]\nstate_dir = \"{}\"\n{}{}{}{}",
        state.display(),
        // the shipped defaults unless asked otherwise
        threads.map_or(String::new(), |t| format!("threads = {t}\n")),
        std::env::var("BENCH_MAX_BATCH").map_or(String::new(), |v| format!("max_batch = {v}\n")),
        std::env::var("BENCH_COMMIT_INTERVAL").map_or(String::new(), |v| format!("commit_interval = \"{v}\"\n")),
        std::env::var("BENCH_MAX_BATCH_BYTES").map_or(String::new(), |v| format!("max_batch_bytes = {v}\n")),
    );
    let example = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/postback.toml"))
        .expect("example config");
    // the example's own [kafka]/[topics]/[process]/[send]/[admin] give way to ours
    let rules: String = example.split("# ---- apps ----").nth(1).expect("apps section").to_owned();
    // BENCH_EXTRA: more config (e.g. a [kafka.consumer] setting to compare)
    let extra = std::env::var("BENCH_EXTRA").unwrap_or_default();
    let text = format!("{text}\n[admin]\nlisten = \"127.0.0.1:0\"\n{extra}\n{rules}");
    config::load_str(&text, Path::new("bench.toml"), Vec::<(String, String)>::new()).expect("bench config")
}

/// Input partitions per processing thread, from the metrics.
/// Partitions processing thread `name` holds (of `topic`, or of all), from
/// the metrics.
fn held(name: &str, topic: Option<&str>) -> f64 {
    let mut labels = vec![("thread", name)];
    labels.extend(topic.map(|t| ("topic", t)));
    postback::telemetry::metrics::sum("postback_processor_partitions", &labels)
}

fn assignment(topic: &str) -> String {
    let names = std::iter::once("processor".to_owned()).chain((0..16).map(|i| format!("processor-{i}")));
    names
        .filter_map(|name| {
            let labels = [("thread", name.as_str()), ("topic", topic)];
            let n = postback::telemetry::metrics::sum("postback_processor_partitions", &labels);
            (n > 0.0).then(|| format!("{name}={n}"))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Events of `topic` the group has committed so far.
fn committed_now(bootstrap: &str, group: &str, topic: &str) -> i64 {
    let consumer: BaseConsumer = client(bootstrap).set("group.id", group).create().expect("consumer");
    committed_total(&consumer, topic)
}

fn committed_total(consumer: &BaseConsumer, topic: &str) -> i64 {
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(topic, p);
    }
    consumer
        .committed_offsets(tpl, Duration::from_secs(5))
        .map_or(0, |c| c.elements().iter().map(|e| if let Offset::Offset(o) = e.offset() { o } else { 0 }).sum())
}

fn wait_committed(bootstrap: &str, group: &str, topic: &str, n: i64) {
    let consumer: BaseConsumer = client(bootstrap).set("group.id", group).create().expect("consumer");
    while committed_total(&consumer, topic) < n {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as i64
}

/// Produces events at a steady `rate` for 4 s (at least 20,000) while a
/// read_committed consumer of the jobs topic notes when each event's first
/// job shows up.
/// How long into a latency phase its events count as settled.
const SETTLE: Duration = Duration::from_secs(2);

fn latency(
    bootstrap: &str,
    topic: &str,
    generator: &mut Generator,
    user_postbacks: &std::collections::HashSet<String>,
    rate: f64,
) -> (f64, f64, usize, String) {
    let prefix = topic.trim_end_matches(".events");
    let jobs_topic = format!("{prefix}.jobs");
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", "bench-latency")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .expect("consumer");
    let md = consumer.fetch_metadata(Some(&jobs_topic), Duration::from_secs(10)).expect("metadata");
    let mut tpl = TopicPartitionList::new();
    for p in 0..md.topics()[0].partitions().len() as i32 {
        tpl.add_partition_offset(&jobs_topic, p, Offset::End).expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let records = Arc::new(encode_all(generator.take(((rate * 4.0) as usize).max(20_000))));
    let index: HashMap<&str, usize> = records.iter().enumerate().map(|(i, r)| (r.event_id.as_str(), i)).collect();
    // when each record was handed to the producer (0: not yet)
    let sent_at: Arc<Vec<AtomicI64>> = Arc::new((0..records.len()).map(|_| AtomicI64::new(0)).collect());
    let (b, t, s, r) = (bootstrap.to_owned(), topic.to_owned(), Arc::clone(&sent_at), Arc::clone(&records));
    let producer =
        std::thread::spawn(move || produce_encoded(&b, &t, &r, Some(rate), |i| s[i].store(now_ms(), Relaxed)));
    let mut lat: Vec<f64> = Vec::new();
    // the same, for events produced after SETTLE: the throughput phase
    // leaves the broker (log cleaner) and the stores (compactions) busy on
    // the same two cores for a second or two
    let mut settled: Vec<f64> = Vec::new();
    let phase_start = now_ms();
    let mut by_stage: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut seen = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last_job = Instant::now();
    while Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let now = now_ms();
            last_job = Instant::now();
            let Ok(job) = postback::codec::decode_job(m.payload().unwrap_or_default()) else { continue };
            let at = index.get(job.event_id.as_str()).map(|i| sent_at[*i].load(Relaxed)).filter(|at| *at > 0);
            if let Some(at) = at {
                by_stage[usize::from(user_postbacks.contains(&job.postback_id))].push((now - at) as f64);
                if seen.insert(job.event_id.clone()) {
                    lat.push((now - at) as f64);
                    if at - phase_start >= SETTLE.as_millis() as i64 {
                        settled.push((now - at) as f64);
                    }
                }
            }
        } else if producer.is_finished() && last_job.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let _ = producer.join();
    let q = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(((v.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(f64::NAN)
    };
    let mut split = by_stage
        .iter_mut()
        .zip(["device_stage", "user_stage"])
        .map(|(v, name)| format!("{name}_jobs={} p50_ms={:.1} p99_ms={:.1}", v.len(), q(v, 0.5), q(v, 0.99)))
        .collect::<Vec<_>>()
        .join(" ");
    split.push_str(&format!(
        "\nafter_{}s: samples={} p50_ms={:.1} p99_ms={:.1}",
        SETTLE.as_secs(),
        settled.len(),
        q(&mut settled, 0.5),
        q(&mut settled, 0.99)
    ));
    (q(&mut lat, 0.5), q(&mut lat, 0.99), lat.len(), split)
}
