//! What a hostile upstream or an operator's half-finished edit can do to
//! the processing stage, on a real broker: oversized and foreign records,
//! inconsistent keys, a config file truncated while events flow, lag on
//! transactional topics, durations that would overflow.

use crate::support::env::TestEnv;
use crate::support::expect::{assert_exact, await_jobs};
use crate::support::kafka::{client_at, wait_until};
use crate::support::proc::tail;
use crate::support::rules::ev;
use postback::codec::encode_event_json;
use postback::codec::event::encode_event_avro;
use postback::domain::Kind::*;
use postback::domain::job::job_id;
use postback::domain::{Event, Job};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::Duration;

const SINK: &str = "https://pb.example";

/// A postback whose URL carries the click id four times: a click id of
/// 100,000 `&` renders to 1.2 MB, more than any jobs topic takes.
const BIG: &str = "[input]\nmax_record_bytes = 131072\nmax_field_bytes = 131072\n\n\
    [[postbacks]]\nid = \"acme.big\"\nname = \"acme | big\"\npartner = \"acme\"\nevent = \"install\"\n\
    url = \"https://pb.example/big?a={click_id}&b={click_id}&c={click_id}&d={click_id}\"\n";

fn install(id: &str, device: &str) -> Event {
    ev(id, Install, 0.0).dev(device).from("acme").0
}

/// (key, error header, original-size header) of each DLQ record, by key.
fn dlq(env: &TestEnv, topic: &str) -> BTreeMap<String, (String, Option<String>, usize)> {
    env.read(topic)
        .into_iter()
        .map(|r| {
            let key = String::from_utf8_lossy(&r.key).into_owned();
            (key, (r.headers["error"].clone(), r.headers.get("original-size").cloned(), r.value.len()))
        })
        .collect()
}

#[test]
fn oversized_and_foreign_records_go_to_a_dlq_and_the_partition_moves_on() {
    let env = TestEnv::new("poison", 1, SINK, BIG);
    let mut p = env.start("p1");
    let mut big = install("e-big", "big1");
    big.attribution.as_mut().unwrap().click_id = "&".repeat(100_000);
    let mut long_reg = ev("e-reg", Registration, 1.0).dev("reg1").user("u1").0;
    long_reg.device.user_agent = "x".repeat(350_000);
    let avro_ids = ["a-123", "a-1234", "a-12345678901234"]; // 5, 6 and 16 bytes: 0x0A, 0x0C, 0x20 first
    let avro: Vec<Event> = avro_ids.iter().map(|id| install(id, &format!("dev-{id}"))).collect();
    let mut truncated = encode_event_avro(&install("e-cut", "cut1"));
    let at = truncated.windows(3).position(|w| w == b"clk").unwrap() + 2;
    truncated.truncate(at);
    let giant = vec![b'{'; 1_040_001];
    let k1 = install("e-k1", "k1");
    let valid: Vec<Event> = vec![install("g1", "d1"), big.clone(), install("g2", "d2"), install("g3", "d3")]
        .into_iter()
        .chain(avro.iter().cloned())
        .chain([k1.clone(), install("g5", "d5")])
        .collect();

    let send = |key: &str, value: &[u8]| env.produce_raw(0, key.as_bytes(), value);
    send("d1", &encode_event_json(&valid[0]));
    send("big1", &encode_event_json(&big));
    send("d2", &encode_event_json(&valid[2]));
    send("reg1", &encode_event_json(&long_reg));
    send("d3", &encode_event_json(&valid[3]));
    send("giant", &giant);
    for e in &avro {
        send(&e.device_id, &encode_event_avro(e));
    }
    send("cut1", &truncated);
    send("not-k1", &encode_event_json(&install("e-k1-mis", "k1")));
    send("k1", &encode_event_json(&k1));
    send("d5", &encode_event_json(&valid[valid.len() - 1]));

    let want = crate::support::env::predict(&valid).len();
    let split = || -> (Vec<Job>, Vec<Job>) { env.jobs().into_iter().partition(|j| j.postback_id == "acme.big") };
    let arrived = wait_until(Duration::from_secs(90), || split().1.len() >= want && split().0.len() >= valid.len() - 1);
    assert!(arrived, "jobs: {:?}\n{}", split().1.len(), tail(&p.log()));
    std::thread::sleep(Duration::from_secs(2));
    let (big_jobs, jobs) = split();
    assert_exact(&jobs, &valid);
    let mut big_devices: Vec<&str> = big_jobs.iter().map(|j| j.device_id.as_str()).collect();
    big_devices.sort();
    let mut want_devices: Vec<&str> = valid.iter().map(|e| e.device_id.as_str()).filter(|d| *d != "big1").collect();
    want_devices.sort();
    assert_eq!(big_devices, want_devices, "acme.big fired for every install but the oversized one");
    assert_eq!(jobs.iter().filter(|j| j.device_id == "k1" && j.postback_id == "acme.install").count(), 1);

    let events_dlq = dlq(&env, "events.dlq");
    let reg_size = encode_event_json(&long_reg).len() + "reg1".len();
    let want: BTreeMap<String, (String, Option<String>, usize)> = [
        ("reg1", format!("record of {reg_size} bytes is over input.max_record_bytes (131072)"), None, 0),
        ("giant", "record of 1040006 bytes is over input.max_record_bytes (131072)".to_owned(), Some("1040006"), 0),
        ("cut1", "invalid Avro: the record ends inside a value (truncated)".to_owned(), None, truncated.len()),
        (
            "not-k1",
            "record has key 'not-k1', not the event's device_id 'k1': every record of a device must be keyed by its device_id"
                .to_owned(),
            None,
            0,
        ),
    ]
    .into_iter()
    .map(|(k, e, o, n)| (k.to_owned(), (e, o.map(str::to_owned), n)))
    .collect();
    let reasons: BTreeMap<&String, (&String, &Option<String>)> =
        events_dlq.iter().map(|(k, (e, o, _))| (k, (e, o))).collect();
    let want_reasons: BTreeMap<&String, (&String, &Option<String>)> =
        want.iter().map(|(k, (e, o, _))| (k, (e, o))).collect();
    assert_eq!(reasons, want_reasons, "{}", tail(&p.log()));
    assert_eq!(events_dlq["cut1"].2, truncated.len(), "a record that fits is copied whole");
    assert!(events_dlq["giant"].2 < 1_000_000, "the giant's copy is cut to fit the DLQ topic");

    let jobs_dlq = env.read("jobs.dlq");
    assert_eq!(jobs_dlq.len(), 1);
    let copy: Job = postback::codec::decode_job(&jobs_dlq[0].value).unwrap();
    assert_eq!(copy.job_id, job_id("m", "big1", "", "e-big", "acme.big", "install"));
    assert_eq!(copy.url.len(), 2048, "a truncated copy");
    assert_eq!(jobs_dlq[0].headers["truncated"], "true");
    assert_eq!(jobs_dlq[0].headers["reason"], "job_too_large");
    let size: usize = jobs_dlq[0].headers["original-size"].parse().unwrap();
    assert!(size > 1_200_000, "{size}");
    assert_eq!(
        jobs_dlq[0].headers["error"],
        format!(
            "job of {size} bytes is over the 991676 bytes the jobs topic takes: its rendered url, headers or body are too large"
        )
    );
    let replay = std::process::Command::new(env!("CARGO_BIN_EXE_postback"))
        .args(["dlq", "replay"])
        .arg(&env.config_path)
        .output()
        .unwrap();
    // a truncated copy is never sent, and the exit code says one was asked for
    assert_eq!(replay.status.code(), Some(3));
    let summary: serde_json::Value = serde_json::from_slice(&replay.stdout).unwrap();
    assert_eq!(summary["run"]["read"], 1);
    assert_eq!(summary["run"]["matched"], 1);
    assert_eq!(summary["run"]["replayed"], 0);
    assert_eq!(summary["run"]["truncated"], 1);
    assert_eq!(p.metric("postback_dlq_records_total", &[("reason", "record_too_large")]), 2.0);
    assert_eq!(p.metric("postback_dlq_records_total", &[("reason", "key_mismatch")]), 1.0);
    assert_eq!(p.metric("postback_dlq_records_total", &[("reason", "job_too_large")]), 1.0);
    assert_eq!(p.metric("postback_transactions_total", &[("result", "aborted")]), 0.0, "no transaction ever failed");
    assert!(p.ready());
    assert_eq!(p.terminate(), Some(0));
}

#[test]
fn a_config_truncated_mid_write_is_refused_and_no_event_is_lost() {
    let env = TestEnv::new("truncate", 1, SINK, "");
    let mut p = env.start("p1");
    // the rewrites are of a running processor's file
    assert!(wait_until(Duration::from_secs(60), || p.ready()), "{}", tail(&p.log()));
    let original = std::fs::read(&env.config_path).unwrap();
    let events: Vec<Event> = (0..600).map(|i| install(&format!("t{i}"), &format!("td{i}"))).collect();
    let path = env.config_path.clone();
    std::thread::scope(|s| {
        s.spawn(|| {
            for chunk in events.chunks(20) {
                env.produce(chunk);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        // an in-place rewrite: truncated, then written in pieces
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(500));
            std::fs::write(&path, b"").unwrap();
            for piece in original.chunks(original.len() / 8 + 1) {
                std::thread::sleep(Duration::from_millis(20));
                let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
                std::io::Write::write_all(&mut f, piece).unwrap();
            }
        }
        // a truncation that stays, then the file back
        std::fs::write(&path, b"").unwrap();
        std::thread::sleep(Duration::from_secs(3));
        std::fs::write(&path, &original).unwrap();
    });
    let jobs = await_jobs(&env, &events, Duration::from_secs(90), &[&p]);
    assert_exact(&jobs, &events);
    assert!(env.read("events.dlq").is_empty(), "no event was dead-lettered for an unknown app");
    assert!(p.metric("postback_config_reload_failures_total", &[]) >= 1.0, "{}", tail(&p.log()));
    assert!(p.log().contains("no [[apps]]"), "the refusal says why\n{}", tail(&p.log()));
    assert_eq!(p.terminate(), Some(0));
}

#[test]
fn lag_reaches_exactly_zero_on_plain_and_transactional_topics() {
    let env = TestEnv::new("lag", 2, SINK, "");
    let events = crate::support::env::generated(100, 1500, 21);
    env.produce(&events);
    let mut p = env.start("p1");
    await_jobs(&env, &events, Duration::from_secs(90), &[&p]);
    let series = |p: &crate::support::proc::Instance| {
        let text = p.metrics().unwrap_or_default();
        text.lines().filter(|l| l.starts_with("postback_consumer_lag{")).map(str::to_owned).collect::<Vec<_>>()
    };
    let zero = wait_until(Duration::from_secs(30), || {
        let s = series(&p);
        s.len() == 4 && s.iter().all(|l| l.ends_with(" 0"))
    });
    assert!(zero, "lag of both topics' partitions: {:#?}\n{}", series(&p), tail(&p.log()));
    // what any tool computes: high watermark minus the group's committed offset
    let consumer: BaseConsumer =
        client_at(&env.bootstrap).set("group.id", format!("{}group", env.prefix)).create().unwrap();
    for topic in [env.topic("events"), env.topic("user-activity")] {
        let mut tpl = TopicPartitionList::new();
        for partition in 0..2 {
            tpl.add_partition(&topic, partition);
        }
        let committed = consumer.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
        for e in committed.elements() {
            let (_, high) = consumer.fetch_watermarks(&topic, e.partition(), Duration::from_secs(10)).unwrap();
            assert_eq!(e.offset(), Offset::Offset(high), "{topic}/{}", e.partition());
        }
    }
    assert_eq!(p.terminate(), Some(0));
}

#[test]
fn a_duration_that_would_overflow_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pb.toml");
    let text = format!("[process]\njob_ttl = \"106751991160d\"\n{}", crate::support::rules::config_text(SINK));
    std::fs::write(&path, text).unwrap();
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_postback")).arg("check-config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}: process.job_ttl: 106751991160d is out of range: must be between 1s and 30d",
            path.display()
        )),
        "{stderr}"
    );
}
