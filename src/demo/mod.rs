//! `postback demo`: the whole pipeline on one machine with nothing
//! installed — librdkafka's mock cluster as the broker, both stages in this
//! process, a partner endpoint on 127.0.0.1, and a synthetic event stream —
//! ending with a table of postbacks per partner and event.

pub mod generator;
pub mod partner;
mod report;

pub use report::{Report, Row};

use crate::config::reload::shared;
use crate::config::{self, Config};
use crate::supervisor::Supervisor;
use crate::telemetry::metrics::sum;
use crate::telemetry::{Health, admin};
use generator::{Generator, Mix};
use rdkafka::mocking::MockCluster;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Demo settings (the CLI flags).
#[derive(Debug, Clone)]
pub struct Options {
    pub devices: usize,
    /// Events to generate; with `duration`, the most.
    pub events: usize,
    /// Generate for this long instead of a fixed count.
    pub duration: Option<Duration>,
    pub keep_running: bool,
    /// Admin server (metrics) address; a free port if it is taken.
    pub admin: String,
    pub seed: u64,
    /// Print progress lines.
    pub progress: bool,
    /// A real broker instead of the embedded mock cluster: the demo's
    /// topics and groups get a fresh prefix there (`demo-<time>-<pid>.`).
    pub bootstrap: Option<String>,
    /// librdkafka settings for every client (`-X security.protocol=SASL_SSL`),
    /// as `[kafka.client]` takes them, references included.
    pub client: Vec<(String, String)>,
}

const TOPICS: &[(&str, i32)] = &[
    ("tracker.events", 4),
    ("tracker.events.dlq", 4),
    ("postback.user-activity", 4),
    ("postback.device-events", 4),
    ("postback.device-state-changelog", 4),
    ("postback.user-state-changelog", 4),
    ("postback.jobs", 4),
    ("postback.jobs.retry-1", 4),
    ("postback.jobs.retry-2", 4),
    ("postback.jobs.retry-3", 4),
    ("postback.jobs.dlq", 4),
    ("postback.deliveries", 4),
    // the mock cluster does not answer CreateTopics: every topic is made here
    ("postback.layout", 1),
];

/// The demo's config: the example config's apps, partners and postbacks,
/// with partner URLs pointing at the local endpoint and fast retry tiers.
pub fn config_text(bootstrap: &str, sink: &str, state_dir: &Path, admin: &str) -> String {
    config_text_with(bootstrap, sink, state_dir, admin, "", &[])
}

/// The demo config; with a `prefix`, every topic and group name carries it
/// (a run on a real broker must not meet an earlier run's records).
pub fn config_text_with(
    bootstrap: &str,
    sink: &str,
    state_dir: &Path,
    admin: &str,
    prefix: &str,
    client: &[(String, String)],
) -> String {
    let topics = if prefix.is_empty() {
        String::new()
    } else {
        let names = [
            ("events", "tracker.events"),
            ("events_dlq", "tracker.events.dlq"),
            ("user_activity", "postback.user-activity"),
            ("device_events", "postback.device-events"),
            ("device_changelog", "postback.device-state-changelog"),
            ("user_changelog", "postback.user-state-changelog"),
            ("jobs", "postback.jobs"),
            ("jobs_retry_prefix", "postback.jobs.retry"),
            ("jobs_dlq", "postback.jobs.dlq"),
            ("deliveries", "postback.deliveries"),
            ("layout", "postback.layout"),
        ];
        let lines: String = names.iter().map(|(k, v)| format!("{k} = \"{prefix}{v}\"\n")).collect();
        format!("[topics]\njobs_partitions = 4\n{lines}")
    };
    // librdkafka's mock cluster keeps no transactional offset commits: a
    // partition moving between processing threads would be read again from
    // its start, so on the mock one thread holds them all
    let threads = if prefix.is_empty() { "threads = 1\n" } else { "" };
    let groups = if prefix.is_empty() {
        String::new()
    } else {
        format!("group_id = \"{prefix}postback\"\nsender_group_id = \"{prefix}postback-sender\"\n")
    };
    let example = include_str!("../../examples/postback.toml");
    let rules = example.split("# ---- apps ----").nth(1).expect("the example config has an apps section");
    let rules = rules
        .replace("https://pb.acme.example", &format!("{sink}/acme"))
        .replace("https://api.zeta.example", &format!("{sink}/zeta"))
        .replace("https://orbit.example", &format!("{sink}/orbit"))
        .replace("rate_limit = \"3000/m\"", "rate_limit = \"2000/s\"");
    let client: String = client.iter().map(|(k, v)| format!("{} = {}\n", toml_str(k), toml_str(v))).collect();
    let client = if client.is_empty() { client } else { format!("[kafka.client]\n{client}") };
    format!(
        "[kafka]\nbootstrap_servers = \"{bootstrap}\"\ninstance_id = \"demo\"\n{groups}{client}{topics}\
         [input]\npartitioned_by = \"custom\"\n\
         [process]\nstate_dir = \"{}\"\ncommit_interval = \"50ms\"\n{threads}\
         [send]\nretry_delays = [\"1s\", \"2s\", \"4s\"]\nallow_networks = [\"127.0.0.0/8\"]\ncommit_interval = \"200ms\"\n\
         [admin]\nlisten = \"{admin}\"\n{rules}",
        state_dir.display()
    )
}

/// `s` as a TOML basic string.
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The events the demo produces for `opts`.
pub fn events(opts: &Options) -> Generator {
    Generator::new(&Mix { devices: opts.devices, seed: opts.seed, ..Mix::default() })
}

pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let state = tempfile::tempdir()?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    if let Some(bootstrap) = &opts.bootstrap {
        // two demos started in the same second must not share topics
        let prefix = format!("demo-{}-{}.", crate::clock::now_ms() / 1000, std::process::id());
        return rt.block_on(pipeline(opts, bootstrap, state.path(), &prefix));
    }
    let mock = MockCluster::new(1)?;
    for (topic, partitions) in TOPICS {
        mock.create_topic(topic, *partitions, 1)?;
    }
    let bootstrap = mock.bootstrap_servers();
    let report = rt.block_on(pipeline(opts, &bootstrap, state.path(), ""));
    drop(mock);
    report
}

async fn pipeline(opts: &Options, bootstrap: &str, state: &Path, prefix: &str) -> anyhow::Result<Report> {
    let sink = partner::start_demo().await?;
    let listener = match tokio::net::TcpListener::bind(&opts.admin).await {
        Ok(l) => l,
        Err(_) => tokio::net::TcpListener::bind("127.0.0.1:0").await?,
    };
    let admin_addr = listener.local_addr()?;
    drop(listener);
    let text = config_text_with(bootstrap, &sink, state, &admin_addr.to_string(), prefix, &opts.client);
    let config: Config = config::load_str(&text, Path::new("demo.toml"), Vec::<(String, String)>::new())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if !prefix.is_empty() {
        // a real broker: the demo's own topics, 4 partitions like the mock's
        let c = config.clone();
        tokio::task::spawn_blocking(move || crate::kafka::admin::create_all(&c, 4)).await??;
    }
    let topics = config.topics.clone();
    // the demo's own clients connect as the stages do
    let client = crate::kafka::client::base(&config);
    let shared = shared(config);
    let health = Health::new();
    let (addr, _admin) = admin::serve(&admin_addr.to_string(), admin::router(health.clone())).await?;
    let metrics_url = format!("http://{addr}/metrics");
    // the same supervision as the service: a stage that fails ends the demo
    let mut supervisor = Supervisor::new(health.clone());
    let token = supervisor.token();
    let (c, h, t) = (Arc::clone(&shared), health.clone(), token.clone());
    let processor = tokio::task::spawn_blocking(move || crate::process::start(c, h, t)).await??;
    supervisor.spawn_thread("processing", processor);
    supervisor.spawn("sender", crate::send::run(Arc::clone(&shared), health.clone(), token.clone()));
    let mut stages = tokio::spawn(supervisor.wait());
    let work = async {
        let produced = produce(opts, &client, &topics.events).await?;
        settle(opts, produced).await;
        let report = report::collect(&client, &topics, produced, metrics_url.clone())?;
        if opts.keep_running {
            println!("{}\nmetrics: {metrics_url}  (Ctrl-C to stop)", report.table());
            let _ = tokio::signal::ctrl_c().await;
        }
        anyhow::Ok(report)
    };
    let report = tokio::select! {
        report = work => report?,
        ended = &mut stages => {
            let failure = ended?.err().map_or_else(|| "a stage stopped".to_owned(), |e| e.to_string());
            anyhow::bail!("{failure}");
        }
    };
    token.cancel();
    stages.await??;
    Ok(report)
}

/// Produces the generated events; returns how many.
async fn produce(opts: &Options, client: &rdkafka::ClientConfig, topic: &str) -> anyhow::Result<usize> {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = client.clone().set("linger.ms", "5").create()?;
    let started = Instant::now();
    let mut stream = events(opts);
    let mut count = 0;
    let mut pending = Vec::new();
    while count < opts.events && opts.duration.is_none_or(|d| started.elapsed() < d) {
        let e = stream.next_event();
        let value = crate::codec::encode_event_json(&e);
        let partition = crate::kafka::partition_for(stream.partition_key(&e).as_bytes(), 4);
        let mut record = FutureRecord::to(topic).partition(partition).key(e.device_id.as_bytes()).payload(&value);
        // enqueue now (the future owns nothing borrowed); wait when the queue is full
        let delivery = loop {
            match producer.send_result(record) {
                Ok(d) => break d,
                Err((_, back)) => {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        };
        pending.push(delivery);
        count += 1;
        if pending.len() >= 500 {
            for f in pending.drain(..) {
                f.await?.map_err(|(e, _)| e)?;
            }
            if opts.duration.is_some() {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
    for f in pending {
        f.await?.map_err(|(e, _)| e)?;
    }
    Ok(count)
}

/// Waits until every event is processed and every job has a final outcome,
/// and that stays so for a second (user-stage jobs come a batch later).
async fn settle(opts: &Options, produced: usize) {
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut last_print = Instant::now();
    let mut quiet_since: Option<(Instant, u64)> = None;
    loop {
        let processed = sum("postback_events_total", &[]) as u64;
        let jobs = sum("postback_jobs_total", &[]) as u64;
        let outcome = |o: &str| sum("postback_deliveries_total", &[("outcome", o)]) as u64;
        let (delivered, retried, dlq) = (outcome("delivered"), outcome("retried"), outcome("dlq") + outcome("blocked"));
        if opts.progress && last_print.elapsed() >= Duration::from_secs(1) {
            println!("events {processed}/{produced}  jobs {jobs}  delivered {delivered}  retried {retried}  dlq {dlq}");
            last_print = Instant::now();
        }
        let done = processed as usize >= produced && jobs > 0 && delivered + dlq >= jobs;
        quiet_since = match quiet_since {
            Some((since, n)) if done && n == jobs => {
                if since.elapsed() >= Duration::from_secs(1) {
                    return;
                }
                Some((since, n))
            }
            _ if done => Some((Instant::now(), jobs)),
            _ => None,
        };
        if Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
