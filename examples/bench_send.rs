//! End-to-end benchmark of the sender stage (run by `scripts/bench-send`,
//! which starts the broker and the sink):
//!
//! 1. a load tool (wrk) measures what the local sink answers at;
//! 2. N jobs over several partners go to the jobs topic;
//! 3. the HTTP path alone, no Kafka: the same requests at the same
//!    concurrency through postback's partner client (`send::http::Http`:
//!    URL check, headers, body prefix) and through a bare reqwest client —
//!    what the sender's HTTP side can reach at best;
//! 4. the sender delivers them all; postbacks/s from first to last delivery,
//!    p50/p99 request latency from the delivery log.
//!
//! Usage: bench_send sink PORT | bench_send BOOTSTRAP SINK_URL WRK_RATE [JOBS]

mod common;

use common::{client, create_topic, process_cpu_secs, send_waiting};
use postback::codec::{JobEncoding, encode_job};
use postback::config;
use postback::domain::{Job, Method, Routing};
use postback::kafka::partition_for;
use postback::send::http::Http;
use postback::send::outcome::Attempt;
use postback::telemetry::Health;
use postback::telemetry::metrics::sum;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

const PARTNERS: usize = 4;
const PARTITIONS: i32 = 8;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("sink") {
        return sink(args[2].parse().expect("port"));
    }
    let bootstrap = args.get(1).expect("usage").clone();
    let sink_url = args.get(2).expect("usage").clone();
    let wrk_rate: f64 = args.get(3).expect("usage").parse().expect("wrk rate");
    let n: usize = args.get(4).map_or(200_000, |s| s.parse().expect("JOBS"));
    let prefix = format!("bench-send-{}", std::process::id());
    let config = bench_config(&bootstrap, &prefix);
    create_topic(&bootstrap, &config.topics.jobs, PARTITIONS);
    let jobs = make_jobs(&sink_url, n);
    produce_jobs(&bootstrap, &config.topics.jobs, &jobs);
    eprintln!("produced {n} jobs");

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let jobs = Arc::new(jobs);
    let ours = rt.block_on(http_alone(&config, &jobs, Client::Ours));
    eprintln!("postback's http client alone: {:.0} requests/s", ours.0);
    let bare = rt.block_on(http_alone(&config, &jobs, Client::Bare));
    eprintln!("bare reqwest alone: {:.0} requests/s", bare.0);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (c, s) = (postback::config::reload::shared(config.clone()), shutdown.clone());
    let task = rt.spawn(async move { postback::send::run(c, Health::new(), s).await });
    let delivered = || sum("postback_deliveries_total", &[("outcome", "delivered")]) as u64;
    while delivered() == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    // reading the counters renders the registry: poll gently
    let t = Instant::now();
    let cpu = process_cpu_secs();
    let first = delivered();
    while delivered() < n as u64 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = t.elapsed().as_secs_f64();
    let cpu = process_cpu_secs() - cpu;
    let rate = (n as u64 - first) as f64 / secs;
    shutdown.cancel();
    let _ = rt.block_on(task);
    let mut lat = latencies(&bootstrap, &config.topics.deliveries, n);
    lat.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| lat.get(((lat.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(f64::NAN);
    println!("jobs={n} partners={PARTNERS} partitions={PARTITIONS}");
    println!("load_tool_requests_per_s={wrk_rate:.0}");
    println!(
        "bare_reqwest_requests_per_s={:.0} ratio={:.2} cpu_us_per_request={:.1}",
        bare.0,
        bare.0 / wrk_rate,
        bare.1
    );
    println!(
        "postback_http_requests_per_s={:.0} ratio={:.2} cpu_us_per_request={:.1}",
        ours.0,
        ours.0 / wrk_rate,
        ours.1
    );
    println!("sender_postbacks_per_s={rate:.0}");
    println!("ratio={:.2}", rate / wrk_rate);
    println!("ratio_to_postback_http={:.2}", rate / ours.0);
    // the whole sender process: HTTP client, Kafka clients, their share of the kernel
    println!("sender_cpu_us_per_postback={:.1}", cpu * 1e6 / (n as u64 - first) as f64);
    println!("request_latency_p50_ms={:.1} p99_ms={:.1}", q(0.5), q(0.99));
    let outcome = |o: &str| sum("postback_deliveries_total", &[("outcome", o)]) as u64;
    println!("deferred={} retried={} dlq={}", outcome("deferred"), outcome("retried"), outcome("dlq"));
}

/// A partner that answers 200 at once.
fn sink(port: u16) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        let app = axum::Router::new().fallback(|| async { "ok" });
        axum::serve(listener, app).await.expect("serve");
    });
}

fn make_jobs(sink: &str, n: usize) -> Vec<Job> {
    let now = postback::clock::now_ms();
    (0..n)
        .map(|i| Job {
            job_id: format!("{i:032x}"),
            postback_id: "bench".into(),
            postback_name: "bench".into(),
            partner_id: format!("p{}", i % PARTNERS),
            app_id: "game-ios".into(),
            event: "install".into(),
            attribution: Routing::Lt,
            device_id: format!("dev-{i}"),
            user_id: String::new(),
            event_id: format!("ev-{i}"),
            event_ts_ms: now,
            created_ms: now,
            method: Method::Get,
            url: format!("{sink}/install?click=c{i}&ifa=IDFA-{i}"),
            headers: Default::default(),
            body: None,
            attempt: 0,
            not_before_ms: 0,
            expires_ms: now + 3_600_000,
        })
        .collect()
}

fn produce_jobs(bootstrap: &str, topic: &str, jobs: &[Job]) {
    let p: BaseProducer = client(bootstrap)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    for job in jobs {
        let value = encode_job(job, JobEncoding::Json);
        let key = job.device_id.as_bytes();
        send_waiting(&p, BaseRecord::to(topic).partition(partition_for(key, PARTITIONS)).key(key).payload(&value));
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(120)).expect("flush");
}

#[derive(Clone, Copy)]
enum Client {
    /// postback's partner client, as the sender calls it.
    Ours,
    /// reqwest with the same pool and socket settings, nothing else.
    Bare,
}

/// Every job's request, `PARTNERS` x 64 at a time as the sender's limits
/// allow, with no Kafka around it: requests/s and CPU µs per request.
async fn http_alone(config: &config::Config, jobs: &Arc<Vec<Job>>, which: Client) -> (f64, f64) {
    let http = Arc::new(Http::new());
    let pc = Arc::new(http.client(&config.partners[0], config));
    let bare = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(config.send.pool_max_idle_per_host)
        .tcp_nodelay(true)
        .build()
        .expect("reqwest client");
    let partner = Arc::new(config.partners[0].clone());
    let next = Arc::new(AtomicUsize::new(0));
    let (t, cpu) = (Instant::now(), process_cpu_secs());
    let tasks: Vec<_> = (0..PARTNERS * 64)
        .map(|_| {
            let (http, pc, bare, partner, next, jobs) = (
                Arc::clone(&http),
                Arc::clone(&pc),
                bare.clone(),
                Arc::clone(&partner),
                Arc::clone(&next),
                Arc::clone(jobs),
            );
            tokio::spawn(async move {
                loop {
                    let Some(job) = jobs.get(next.fetch_add(1, Relaxed)) else { return };
                    let ok = match which {
                        Client::Ours => {
                            matches!(http.send(&pc, job, &partner).await.attempt, Attempt::Status { code: 200, .. })
                        }
                        Client::Bare => match bare.get(&job.url).send().await {
                            Ok(resp) => resp.status() == 200 && resp.bytes().await.is_ok(),
                            Err(_) => false,
                        },
                    };
                    assert!(ok, "the sink answers 200");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("request task");
    }
    let secs = t.elapsed().as_secs_f64();
    (jobs.len() as f64 / secs, (process_cpu_secs() - cpu) * 1e6 / jobs.len() as f64)
}

fn bench_config(bootstrap: &str, prefix: &str) -> config::Config {
    let mut text = format!(
        "[kafka]\nbootstrap_servers = \"{bootstrap}\"\nsender_group_id = \"{prefix}.sender\"\n\
         [topics]\njobs = \"{prefix}.jobs\"\njobs_retry_prefix = \"{prefix}.retry\"\njobs_dlq = \"{prefix}.dlq\"\ndeliveries = \"{prefix}.deliveries\"\njobs_partitions = {PARTITIONS}\n\
         [send]\nallow_networks = [\"127.0.0.0/8\"]\npool_max_idle_per_host = 512\n[admin]\nlisten = \"127.0.0.1:0\"\n"
    );
    for i in 0..PARTNERS {
        text.push_str(&format!("[[partners]]\nid = \"p{i}\"\nmax_concurrency = 64\n"));
    }
    config::load_str(&text, Path::new("bench-send.toml"), Vec::<(String, String)>::new()).expect("bench config")
}

fn latencies(bootstrap: &str, topic: &str, n: usize) -> Vec<f64> {
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", "bench-latency")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
    let parts = md.topics()[0].partitions().len() as i32;
    let mut tpl = TopicPartitionList::new();
    for p in 0..parts {
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::with_capacity(n);
    let mut eof = 0;
    while eof < parts {
        match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(m)) => {
                let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap_or_default()).expect("json");
                out.push(v["latency_ms"].as_f64().unwrap_or(f64::NAN));
            }
            Some(Err(KafkaError::PartitionEOF(_))) => eof += 1,
            Some(Err(e)) => panic!("{e}"),
            None => break,
        }
    }
    out
}
