//! A data platform's Avro events under a real schema registry (Apicurio
//! Registry's Confluent-compatible API, started by `scripts/registry`):
//! writer schemas fetched by id and resolved against ours, the ones that
//! cannot be read dead-lettered with the reason, and jobs written as Avro
//! that a consumer knowing only the registry can read.

use crate::support::env::{TestEnv, generated};
use crate::support::expect::{assert_exact, await_jobs};
use crate::support::kafka::{TestProducer, wait_until};
use crate::support::proc::http_full;
use crate::support::proc::tail;
use crate::support::registry::{Front, Mode, OwnRegistry};
use crate::support::secure::secure;
use apache_avro::Schema;
use postback::codec::confluent;
use postback::codec::event::encode_event_avro;
use postback::domain::Event;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

const SINK: &str = "https://pb.example";
const OURS: &str = include_str!("../../schemas/event.avsc");
const OURS_V1: &str = include_str!("../../schemas/event.v1.avsc");
const OURS_V2: &str = include_str!("../../schemas/event.v2.avsc");

/// Our event schema with `edit` applied to its field list.
fn variant(edit: impl FnOnce(&mut Vec<Value>)) -> String {
    let mut schema: Value = serde_json::from_str(OURS).expect("event.avsc is JSON");
    edit(schema["fields"].as_array_mut().expect("fields"));
    schema.to_string()
}

/// The encoding of an Avro string (or bytes): zigzag length, then the bytes.
fn avro_string(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut n = (s.len() as u64) << 1;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(s.as_bytes());
    out
}

#[test]
fn avro_events_under_a_schema_registry_are_resolved_and_jobs_are_avro() {
    let registry = OwnRegistry::start("events");
    let extra = format!("[schema_registry]\nurl = \"{}\"\ntimeout = \"10s\"\n", registry.url);
    let env = TestEnv::new("registry", 1, SINK, &extra);

    // four writers our schema can read: one more field at the end (skipped),
    // the first and second versions without the last five and three
    // optional fields (defaults), and event_id written as bytes (promoted
    // to string)
    let with_extra = variant(|f| f.push(json!({"name": "session_id", "type": "string"})));
    let with_bytes = variant(|f| f[0]["type"] = json!("bytes"));
    let id_extra = registry.register(&env.topic("extra-value"), &with_extra);
    let id_v1 = registry.register(&env.topic("v1-value"), OURS_V1);
    let id_v2 = registry.register(&env.topic("v2-value"), OURS_V2);
    let id_bytes = registry.register(&env.topic("bytes-value"), &with_bytes);
    // and two it cannot: a timestamp written as a string, and a record of another name
    let with_text_time = variant(|f| f[5]["type"] = json!("string"));
    let id_text_time = registry.register(&env.topic("text-time-value"), &with_text_time);
    let renamed = OURS.replacen("\"Event\"", "\"PlatformEvent\"", 1);
    let id_renamed = registry.register(&env.topic("renamed-value"), &renamed);

    let events = generated(40, 300, 71);
    let encode = |i: usize, e: &Event| -> Vec<u8> {
        let ours = encode_event_avro(e);
        match i % 4 {
            0 => confluent(id_extra, &[ours, avro_string(&format!("s-{i}"))].concat()),
            // an earlier version's record is the third's without its
            // trailing nulls (waid, medium; the three privacy fields)
            1 => confluent(id_v1, &ours[..ours.len() - 5]),
            2 => confluent(id_v2, &ours[..ours.len() - 3]),
            _ => confluent(id_bytes, &ours),
        }
    };
    let producer = TestProducer::at(&env.bootstrap);
    let topic = env.topic("events");
    for (i, e) in events.iter().enumerate() {
        producer.send(&topic, 0, e.device_id.as_bytes(), &encode(i, e));
    }
    let sample = encode_event_avro(&events[0]);
    producer.send(&topic, 0, b"text-time", &confluent(id_text_time, &sample));
    producer.send(&topic, 0, b"renamed", &confluent(id_renamed, &sample));
    producer.send(&topic, 0, b"unknown-id", &confluent(999_999, &sample));
    producer.flush();

    let p = env.start_cmd("process", "p1", &[("POSTBACK__TOPICS__JOBS_FORMAT", "avro".to_owned())]);
    let jobs = await_jobs(&env, &events, Duration::from_secs(120), &[&p]);
    assert_exact(&jobs, &events);

    // every unreadable record in the DLQ with its reason
    assert!(wait_until(Duration::from_secs(30), || env.read("events.dlq").len() >= 3), "three DLQ records");
    let dlq: BTreeMap<String, String> = env
        .read("events.dlq")
        .into_iter()
        .map(|r| (String::from_utf8_lossy(&r.key).into_owned(), r.headers["error"].clone()))
        .collect();
    assert_eq!(dlq.keys().collect::<Vec<_>>(), ["renamed", "text-time", "unknown-id"]);
    assert_eq!(
        dlq["text-time"],
        format!(
            "schema id {id_text_time} cannot be read as schemas/event.avsc: Incompatible schemata! Field 'timestamp_ms' in reader schema does not match the type in the writer schema"
        )
    );
    assert_eq!(
        dlq["renamed"],
        format!(
            "schema id {id_renamed} cannot be read as schemas/event.avsc: Incompatible schemata! The name must be the same for both schemas. Writer's name PlatformEvent and reader's name Event"
        )
    );
    assert_eq!(dlq["unknown-id"], "schema id 999999 is not in the registry");
    assert_eq!(p.metric("postback_dlq_records_total", &[("reason", "schema")]), 3.0);

    // the jobs: Confluent-framed Avro under the jobs topic's subject, read
    // here with nothing but the registry's schema
    let job_id = registry.latest_id(&env.topic("jobs-value"));
    let writer = Schema::parse_str(&registry.schema(job_id)).expect("the job schema parses");
    let records = env.read("jobs");
    assert_eq!(records.len(), jobs.len());
    let mut ids = Vec::new();
    for r in &records {
        assert_eq!(r.value[..5], [&[0u8][..], &job_id.to_be_bytes()].concat());
        let reader = apache_avro::reader::datum::GenericDatumReader::builder(&writer).build().expect("a reader");
        let value = reader.read_value(&mut &r.value[5..]).expect("a job datum");
        let apache_avro::types::Value::Record(fields) = value else { panic!("a job is a record") };
        let id = fields.iter().find(|(k, _)| k == "job_id").map(|(_, v)| v.clone());
        let Some(apache_avro::types::Value::String(id)) = id else { panic!("job_id is a string") };
        ids.push(id);
    }
    ids.sort();
    let mut want: Vec<String> = jobs.iter().map(|j| j.job_id.clone()).collect();
    want.sort();
    assert_eq!(ids, want);
}

#[test]
fn a_registry_that_does_not_answer_is_waited_for_not_a_reason_to_drop_records() {
    registry_outage("paused", &[], None);
}

/// The outage outlasts `max.poll.interval.ms` (12 s here): the processing
/// thread, waiting for the registry, does not poll, so the group takes its
/// partitions away. Once the registry answers, the batch it held cannot
/// commit (its member left the group); it is rewound, the member rejoins and
/// processes it again — exactly once, in the same process.
#[test]
fn a_registry_outage_longer_than_the_poll_interval_loses_and_repeats_nothing() {
    let extra = [("POSTBACK__KAFKA__CONSUMER__MAX.POLL.INTERVAL.MS", "\"12000\"".to_owned())];
    registry_outage("paused-long", &extra, Some(Duration::from_secs(25)));
}

/// A registry of its own, an env with `partitions` input partitions that
/// uses it, and 60 Avro events (seeded by `seed`) produced to partition 0.
fn avro_events_on_partition_0(name: &str, partitions: i32, seed: u64) -> (OwnRegistry, TestEnv, Vec<Event>) {
    let registry = OwnRegistry::start(name);
    let extra = format!("[schema_registry]\nurl = \"{}\"\ntimeout = \"2s\"\n", registry.url);
    let env = TestEnv::new(&format!("registry-{name}"), partitions, SINK, &extra);
    let id = registry.register(&env.topic("events-value"), OURS);
    let events = generated(10, 60, seed);
    let producer = TestProducer::at(&env.bootstrap);
    for e in &events {
        producer.send(&env.topic("events"), 0, e.device_id.as_bytes(), &confluent(id, &encode_event_avro(e)));
    }
    producer.flush();
    (registry, env, events)
}

fn registry_outage(name: &str, extra_env: &[(&str, String)], hold: Option<Duration>) {
    let (registry, env, events) = avro_events_on_partition_0(name, 1, 72);
    registry.pause();
    let mut p = env.start_cmd("process", "p1", extra_env);
    let paused_at = std::time::Instant::now();
    let waiting = wait_until(
        Duration::from_secs(60),
        || matches!(http_full(&p.admin, "/readyz"), Some((503, body)) if body.contains("processor: schema registry timed out")),
    );
    if let Some(hold) = hold {
        std::thread::sleep(hold.saturating_sub(paused_at.elapsed()));
    }
    let quiet = env.read("jobs").is_empty() && env.read("events.dlq").is_empty();
    registry.resume();
    assert!(waiting, "/readyz said why the stage waits: {:?}", http_full(&p.admin, "/readyz"));
    assert!(quiet, "nothing committed while it waited");

    let jobs = await_jobs(&env, &events, Duration::from_secs(120), &[&p]);
    assert_exact(&jobs, &events);
    assert!(env.read("events.dlq").is_empty(), "no record was dead-lettered for the outage");
    assert!(wait_until(Duration::from_secs(30), || p.ready()), "ready again: {:?}", http_full(&p.admin, "/readyz"));
    assert!(p.running(), "the same process went on\n{}", tail(&p.log()));
    if hold.is_some() {
        // the outage did outlast the poll interval: the group took the partitions
        let log = p.log();
        assert!(log.contains("maximum poll interval"), "{}", tail(&log));
        // the aborted batch's records were purged and their reports served
        // at once, not after a whole abort call's wait
        assert!(!log.contains("abort_transaction not done yet"), "{}", tail(&log));
    }
}

/// Two processing threads, and the one reading the Avro events waits for
/// the registry past the poll interval: the group gives its partitions to
/// the other thread, while the waiting one still has their stores open.
/// The other thread must not give up on them (it used to fail the stage
/// after 30 s: "still open elsewhere in this process"); it says why it is
/// not ready, and takes the stores once their old owner lets them go.
#[test]
fn a_store_held_by_a_thread_waiting_out_an_outage_is_taken_over_when_it_lets_go() {
    // all on partition 0: only the thread assigned it waits for the registry
    let (registry, env, events) = avro_events_on_partition_0("held-store", 2, 73);
    registry.pause();
    let extra_env = [
        ("POSTBACK__PROCESS__THREADS", "2".to_owned()),
        ("POSTBACK__KAFKA__CONSUMER__MAX.POLL.INTERVAL.MS", "\"10000\"".to_owned()),
        ("POSTBACK__KAFKA__CONSUMER__SESSION.TIMEOUT.MS", "\"10000\"".to_owned()),
    ];
    let mut p = env.start_cmd("process", "p1", &extra_env);
    let held = wait_until(
        Duration::from_secs(120),
        || matches!(http_full(&p.admin, "/readyz"), Some((503, body)) if body.contains("device-0 still open in another processing thread")),
    );
    let quiet = env.read("jobs").is_empty() && env.read("events.dlq").is_empty();
    // the stuck thread may hold its user store too: the metric counts every
    // store /readyz names (all were assigned in one rebalance, so all are
    // overdue a moment after the first)
    std::thread::sleep(Duration::from_secs(1));
    let named = http_full(&p.admin, "/readyz")
        .map_or(0, |(_, body)| body.matches("still open in another processing thread").count());
    let awaiting = p.metric("postback_processor_stores_awaiting", &[]);
    registry.resume();
    assert!(held, "/readyz said which store waits: {:?}\n{}", http_full(&p.admin, "/readyz"), tail(&p.log()));
    assert!(quiet, "nothing committed while it waited");
    assert!(named >= 1);
    assert_eq!(awaiting, named as f64, "the metric counts each store waited for");

    let jobs = await_jobs(&env, &events, Duration::from_secs(120), &[&p]);
    assert_exact(&jobs, &events);
    assert!(env.read("events.dlq").is_empty(), "no record was dead-lettered for the outage");
    assert!(wait_until(Duration::from_secs(30), || p.ready()), "ready again: {:?}", http_full(&p.admin, "/readyz"));
    assert!(p.running(), "the same process went on\n{}", tail(&p.log()));
    assert_eq!(p.metric("postback_processor_stores_awaiting", &[]), 0.0, "and none after the take-over");
    let log = p.log();
    assert!(log.contains("store still open in another processing thread; still waiting"), "{}", tail(&log));
    assert!(!log.contains("open elsewhere in this process"), "{}", tail(&log));
}

/// What the registry answers when the fault is ours — a rotated password
/// (401), a user without rights (403), a URL without the API (a 404 that is
/// not error 40403) — holds the batch with the reason in `/readyz`, and
/// nothing is dead-lettered for it; once the registry answers properly,
/// every event is processed exactly, and only the id the registry says does
/// not exist (40403) goes to the DLQ. The registry is reached over HTTPS
/// with a client certificate (mutual TLS).
#[test]
fn registry_faults_that_are_ours_hold_the_batch_and_only_an_unknown_id_is_dead_lettered() {
    let s = secure();
    let registry = OwnRegistry::start("front");
    let tls = crate::support::tls::server_config(&s.server_cert, &s.server_key, Some(&s.ca));
    let front = Front::start_tls(&registry, tls);
    let faults = [
        (
            401,
            r#"{"error_code":40101,"message":"Unauthorized"}"#,
            "processor: schema registry refused our credentials (check schema_registry.username and password): HTTP 401 (error code 40101): Unauthorized",
        ),
        (
            403,
            r#"{"error_code":40301,"message":"User cannot access the resource."}"#,
            "processor: schema registry forbids our user to read schemas: HTTP 403 (error code 40301): User cannot access the resource.",
        ),
        (
            404,
            "<html><body>Not Found</body></html>",
            "processor: schema registry URL has no Confluent-compatible API (check schema_registry.url): HTTP 404: <html><body>Not Found</body></html>",
        ),
    ];
    front.set(Mode::Answer(faults[0].0, faults[0].1.to_owned()));
    let extra = format!(
        "[schema_registry]\nurl = \"{}\"\ntimeout = \"2s\"\nusername = \"postback\"\npassword = \"${{env:PB_IT_REGISTRY_PASSWORD}}\"\n\
         ca_file = \"{}\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        front.url,
        s.ca.display(),
        s.client_cert.display(),
        s.client_key.display()
    );
    let env = TestEnv::new("registry-faults", 1, SINK, &extra);
    let id = registry.register(&env.topic("events-value"), OURS);
    let events = generated(10, 60, 74);
    let producer = TestProducer::at(&env.bootstrap);
    for e in &events {
        producer.send(&env.topic("events"), 0, e.device_id.as_bytes(), &confluent(id, &encode_event_avro(e)));
    }
    producer.send(&env.topic("events"), 0, b"unknown-id", &confluent(999_999, &encode_event_avro(&events[0])));
    producer.flush();
    let mut p = env.start_cmd("process", "p1", &[("PB_IT_REGISTRY_PASSWORD", "rotated-away".to_owned())]);
    for (status, body, reason) in faults {
        front.set(Mode::Answer(status, body.to_owned()));
        let mut last = String::new();
        let said = wait_until(Duration::from_secs(60), || {
            last = http_full(&p.admin, "/readyz").map(|(_, b)| b).unwrap_or_default();
            last.lines().any(|l| l == reason)
        });
        assert!(said, "HTTP {status}: /readyz said\n{last}\n{}", tail(&p.log()));
        // one reason at a time: the earlier fault's is gone
        assert_eq!(last.matches("processor: schema registry").count(), 1, "{last}");
        assert!(env.read("jobs").is_empty() && env.read("events.dlq").is_empty(), "HTTP {status}: nothing committed");
    }
    for kind in ["unauthorized", "forbidden", "wrong_path"] {
        assert!(p.metric("postback_schema_registry_failures_total", &[("kind", kind)]) >= 1.0, "{kind}");
    }
    front.set(Mode::Pass);
    let jobs = await_jobs(&env, &events, Duration::from_secs(120), &[&p]);
    assert_exact(&jobs, &events);
    assert!(wait_until(Duration::from_secs(30), || env.read("events.dlq").len() == 1));
    let dlq = env.read("events.dlq");
    assert_eq!(dlq[0].key, b"unknown-id");
    assert_eq!(dlq[0].headers["error"], "schema id 999999 is not in the registry");
    assert_eq!(dlq[0].headers["reason"], "schema", "the header carries the metric's label");
    assert_eq!(p.metric("postback_dlq_records_total", &[("reason", "schema")]), 1.0);
    assert!(wait_until(Duration::from_secs(30), || p.ready()), "ready again: {:?}", http_full(&p.admin, "/readyz"));
    assert!(!p.log().contains("rotated-away"), "the password is never printed");
    assert_eq!(p.terminate(), Some(0), "{}", tail(&p.log()));
}
