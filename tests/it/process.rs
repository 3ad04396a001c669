//! The processing stage on a real broker: exact job sets under normal
//! operation, kill -9, rebalances and a lost disk; bad input to the DLQ.

use crate::support::env::{TestEnv, generated};
use crate::support::expect::{assert_exact, await_jobs};
use crate::support::kafka::{read_all, wait_until};
use crate::support::proc::{Instance, tail};
use crate::support::rules::{DAY, T0, ev};
use crate::support::scenarios::scripted_events;
use postback::domain::Event;
use postback::domain::Kind::*;
use std::collections::BTreeSet;
use std::time::Duration;

const SINK: &str = "https://pb.example";

#[test]
fn every_trigger_kind_end_to_end() {
    let env = TestEnv::new("e2e", 4, SINK, "");
    let mut events = scripted_events();
    events.extend(generated(200, 2000, 1));
    env.produce(&events);
    let mut p = env.start("p1");
    assert!(wait_until(Duration::from_secs(60), || p.ready()), "ready once restored\n{}", tail(&p.log()));
    let jobs = await_jobs(&env, &events, Duration::from_secs(120), &[&p]);
    assert_exact(&jobs, &events);
    let kinds: BTreeSet<&str> = jobs.iter().map(|j| j.event.as_str()).collect();
    assert_eq!(kinds.len(), 13, "every postback event kind fired: {kinds:?}");
    assert_eq!(p.terminate(), Some(0), "clean exit on SIGTERM\n{}", tail(&p.log()));
}

#[test]
fn kill_9_mid_stream_loses_and_duplicates_nothing() {
    kill_9_mid_stream("crash", 1);
}

/// Two processing threads: a kill between the two rounds of their
/// cooperative rebalance once left the input partitions to no one when
/// every thread rejoined as a static member.
#[test]
fn kill_9_with_two_processing_threads_loses_and_duplicates_nothing() {
    kill_9_mid_stream("crash2t", 2);
}

fn kill_9_mid_stream(name: &str, threads: usize) {
    let env = TestEnv::new(name, 4, SINK, "");
    let mut events = scripted_events();
    events.extend(generated(300, 6000, 2));
    let chunks: Vec<&[Event]> = events.chunks(events.len() / 4 + 1).collect();
    let pauses = [150u64, 400, 20, 250];
    let mut kills = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        let mut p = env.start_cmd("process", "p1", &[("POSTBACK__PROCESS__THREADS", threads.to_string())]);
        env.produce_part(chunk, &events);
        // kill while the instance is busy: after it has started committing
        assert!(
            wait_until(Duration::from_secs(60), || p.metric("postback_transactions_total", &[]) > 0.0),
            "{}",
            tail(&p.log())
        );
        std::thread::sleep(Duration::from_millis(pauses[i % pauses.len()]));
        if i + 1 < chunks.len() {
            p.kill9();
            kills += 1;
        } else {
            let jobs = await_jobs(&env, &events, Duration::from_secs(180), &[&p]);
            assert_exact(&jobs, &events);
            assert_eq!(p.terminate(), Some(0));
        }
    }
    assert!(kills >= 3);
}

#[test]
fn a_second_instance_takes_over_with_restored_state() {
    let env = TestEnv::new("rebalance", 6, SINK, "");
    let events = generated(300, 5000, 3);
    let (first, second) = events.split_at(events.len() / 2);
    // one member per instance: the split between instances is what this
    // checks (with two threads each, 6 partitions over 4 members are 2 2 1 1)
    let one = [("POSTBACK__PROCESS__THREADS", "1".to_owned())];
    let mut p1 = env.start_cmd("process", "p1", &one);
    env.produce_part(first, &events);
    assert!(
        wait_until(Duration::from_secs(60), || p1.metric("postback_events_total", &[]) > 500.0),
        "p1 processes\n{}",
        tail(&p1.log())
    );
    let mut p2 = env.start_cmd("process", "p2", &one);
    // each instance gets half of each topic: half the input to process,
    // not (as cooperative-sticky did) all 6 user-activity partitions and
    // none of the input
    let halves = || [&p1, &p2].map(|p| topic_partitions(&env, p));
    assert!(
        wait_until(Duration::from_secs(60), || halves() == [[3.0, 3.0], [3.0, 3.0]]),
        "p1 and p2 hold 3 input and 3 user-activity partitions each: {:?}\n{}",
        halves(),
        tail(&p2.log())
    );
    env.produce_part(second, &events);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(p1.terminate(), Some(0), "{}", tail(&p1.log()));
    let jobs = await_jobs(&env, &events, Duration::from_secs(120), &[&p1, &p2]);
    assert_exact(&jobs, &events);
    // the partitions that moved were rebuilt from their changelogs
    assert!(p2.metric("postback_restored_records_total", &[("store", "device")]) > 0.0);
    assert!(p2.metric("postback_restored_records_total", &[("store", "user")]) > 0.0);
    assert_eq!(topic_partitions(&env, &p2), [6.0, 6.0], "all 6 + 6 partitions end up on p2");
    assert_eq!(p2.terminate(), Some(0));
}

/// Input and user-activity partitions an instance holds.
fn topic_partitions(env: &TestEnv, p: &Instance) -> [f64; 2] {
    ["events", "user-activity"].map(|t| p.metric("postback_processor_partitions", &[("topic", &env.topic(t))]))
}

/// Partitions (input and user activity) each of `threads` reports.
fn thread_partitions(p: &Instance, threads: &[&str]) -> Vec<f64> {
    threads.iter().map(|t| p.metric("postback_processor_partitions", &[("thread", t)])).collect()
}

#[test]
fn processing_threads_split_the_partitions_and_take_them_back() {
    let env = TestEnv::new("threads", 6, SINK, "");
    let events = generated(300, 5000, 4);
    let (first, rest) = events.split_at(events.len() / 3);
    let (second, third) = rest.split_at(rest.len() / 2);
    let three = ["processor-0", "processor-1", "processor-2"];
    let mut p1 = env.start_cmd("process", "p1", &[("POSTBACK__PROCESS__THREADS", "3".into())]);
    // 6 input + 6 user-activity partitions over three members of the
    // group: 2 + 2 each (range assigns each topic on its own)
    let split = wait_until(Duration::from_secs(60), || thread_partitions(&p1, &three) == [4.0, 4.0, 4.0]);
    assert!(split, "each thread has 4 partitions: {:?}\n{}", thread_partitions(&p1, &three), tail(&p1.log()));
    assert_eq!(topic_partitions(&env, &p1), [6.0, 6.0]);
    for t in three {
        let input = p1.metric("postback_processor_partitions", &[("thread", t), ("topic", &env.topic("events"))]);
        assert_eq!(input, 2.0, "{t} holds 2 input partitions");
    }
    env.produce_part(first, &events);
    await_jobs(&env, first, Duration::from_secs(120), &[&p1]);
    // a second instance with one thread takes its share, then leaves
    let mut p2 = env.start_cmd("process", "p2", &[("POSTBACK__PROCESS__THREADS", "1".into())]);
    assert!(
        wait_until(Duration::from_secs(60), || thread_partitions(&p2, &["processor"])[0] >= 1.0),
        "p2 gets partitions\n{}",
        tail(&p2.log())
    );
    env.produce_part(second, &events);
    let done: Vec<Event> = first.iter().chain(second).cloned().collect();
    await_jobs(&env, &done, Duration::from_secs(120), &[&p1, &p2]);
    assert_eq!(p2.terminate(), Some(0), "{}", tail(&p2.log()));
    assert!(
        wait_until(Duration::from_secs(60), || thread_partitions(&p1, &three).iter().sum::<f64>() == 12.0),
        "p1's threads take every partition back: {:?}",
        thread_partitions(&p1, &three)
    );
    env.produce_part(third, &events);
    let jobs = await_jobs(&env, &events, Duration::from_secs(120), &[&p1]);
    assert_exact(&jobs, &events);
    assert_eq!(p1.terminate(), Some(0), "{}", tail(&p1.log()));
}

#[test]
fn a_lost_disk_is_rebuilt_from_the_changelogs() {
    let env = TestEnv::new("lostdisk", 2, SINK, "");
    let phase1 = vec![
        ev("i1", Install, 0.0).from("acme").user("u1").0,
        ev("p1", Payment, 1.0).pay("1.00", false).user("u1").0,
        ev("r1", Registration, 2.0).user("u1").0,
    ];
    let mut p = env.start("p1");
    env.produce(&phase1);
    await_jobs(&env, &phase1, Duration::from_secs(60), &[&p]);
    assert_eq!(p.terminate(), Some(0));
    std::fs::remove_dir_all(env.state_dir("p1")).expect("delete the state directory");

    let mut p = env.start("p1");
    let phase2 = vec![
        // replays and inside-window installs must see the restored state
        ev("p1", Payment, 1.0).pay("1.00", false).user("u1").0,
        ev("i2", Install, 5.0).from("zeta").user("u1").0,
        ev("r2", Registration, 6.0).user("u1").0,
        ev("i3", Install, 0.0).at_ms(T0 + 50 * DAY).from("zeta").user("u1").0,
        ev("p2", Payment, 51.0).pay("2.00", false).user("u1").0,
        ev("p3", Payment, 52.0).pay("3.00", false).user("u1").0,
    ];
    env.produce(&phase2);
    let all: Vec<Event> = phase1.iter().chain(&phase2).cloned().collect();
    let jobs = await_jobs(&env, &all, Duration::from_secs(60), &[&p]);
    assert_exact(&jobs, &all);
    let ids: BTreeSet<&str> = jobs
        .iter()
        .filter(|j| j.event_id != "i1" && j.event_id != "p1" && j.event_id != "r1")
        .map(|j| j.postback_id.as_str())
        .collect();
    // no second install or first registration; first payment CA again for the new attribution
    assert!(!ids.contains("acme.install") && !ids.contains("acme.first-registration"), "{ids:?}");
    assert!(ids.contains("zeta.reinstall") && ids.contains("zeta.first-payment-ca"), "{ids:?}");
    assert!(p.metric("postback_restored_records_total", &[]) > 0.0);
    assert_eq!(p.terminate(), Some(0));
}

/// A changelog deleted and recreated under a store: the store reflects
/// offsets the new changelog never reached. It is never taken for up to
/// date (the next changelog records would be skipped); the processor stops
/// and says which store, both offsets, and the ways out.
#[test]
fn a_store_ahead_of_a_recreated_changelog_stops_the_processor_with_what_to_do() {
    let env = TestEnv::new("recreated", 1, SINK, "");
    let events = vec![ev("i1", Install, 0.0).from("acme").0, ev("r1", Registration, 1.0).0];
    let mut p = env.start("p1");
    env.produce(&events);
    await_jobs(&env, &events, Duration::from_secs(60), &[&p]);
    assert_eq!(p.terminate(), Some(0));
    let changelog = env.topic("device-changelog");
    crate::support::kafka::delete_topic(&changelog);
    crate::support::kafka::create_topic(&changelog, 1);

    let mut p = env.start("p1");
    assert!(wait_until(Duration::from_secs(60), || !p.running()), "it stops\n{}", tail(&p.log()));
    let log = p.log();
    let line = log
        .lines()
        .find(|l| l.contains("store device-0 reflects changelog"))
        .unwrap_or_else(|| panic!("{}", tail(&log)));
    // the offset reached depends on how the two events were batched
    let said = line.split(&format!("store device-0 reflects changelog '{changelog}' up to offset ")).nth(1);
    let rest = said
        .and_then(|r| r.split_once(", but that changelog ends at 0: it was recreated, and the store is not its state"));
    assert!(rest.is_some_and(|(offset, _)| offset.parse::<i64>().is_ok_and(|o| o > 0)), "{line}");
    assert!(line.contains("docs/operations/runbook.md"), "{line}");
}

#[test]
fn bad_input_goes_to_the_dlq_with_its_reason() {
    let env = TestEnv::new("dlq", 1, SINK, "");
    let mut p = env.start("p1");
    let good1 = ev("g1", Install, 0.0).from("acme").0;
    let good2 = ev("g2", Install, 0.0).dev("d2").from("acme").0;
    let now = postback::clock::now_ms();
    let raw: Vec<(&str, Vec<u8>)> = vec![
        ("d1", postback::codec::encode_event_json(&good1)),
        ("x1", b"\x02not avro at all \xff".to_vec()),
        ("x2", br#"{"event_id":"e","app_id":"m","kind":"launch","timestamp_ms":1735689600000}"#.to_vec()),
        ("x3", br#"{"event_id":"e","app_id":"nope","device_id":"x3","kind":"launch","timestamp_ms":1735689600000}"#.to_vec()),
        ("x4", br#"{"event_id":"e","app_id":"m","device_id":"x4","kind":"uninstall","timestamp_ms":1735689600000}"#.to_vec()),
        ("x5", format!(r#"{{"event_id":"e","app_id":"m","device_id":"x5","kind":"launch","timestamp_ms":{}}}"#, now + 3 * DAY).into_bytes()),
        ("x6", br#"{"event_id":"e","app_id":"m","device_id":"x6","kind":"payment","timestamp_ms":1735689600000,"revenue":{"amount":"1,99","currency":"USD"}}"#.to_vec()),
        ("x7", br#"{"event_id":"e","app_id":"m","device_id":"x7","kind":"payment","timestamp_ms":1735689600000,"revenue":{"amount":"1.99","currency":"dollars"}}"#.to_vec()),
        ("d2", postback::codec::encode_event_json(&good2)),
    ];
    for (key, value) in &raw {
        env.produce_raw(0, key.as_bytes(), value);
    }
    let good = [good1.clone(), good2.clone()];
    let jobs = await_jobs(&env, &good, Duration::from_secs(60), &[&p]);
    let mut got: Vec<(String, String)> = jobs.iter().map(|j| (j.event_id.clone(), j.postback_id.clone())).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("g1".into(), "acme.install".into()),
            ("g1".into(), "orbit.all-install".into()),
            ("g2".into(), "acme.install".into()),
            ("g2".into(), "orbit.all-install".into())
        ]
    );
    let dlq = read_all(&env.topic("events.dlq"));
    let mut reasons: Vec<(String, String, String, String)> = dlq
        .iter()
        .map(|r| {
            (
                String::from_utf8_lossy(&r.key).into_owned(),
                r.headers["error"].clone(),
                r.headers["source-topic"].clone(),
                r.headers["source-offset"].clone(),
            )
        })
        .collect();
    reasons.sort();
    let topic = env.topic("events");
    let want: Vec<(String, String, String, String)> = vec![
        ("x1", "invalid Avro: Cannot convert i64 to usize: -56".to_owned(), 1),
        ("x2", "missing required field 'device_id'".to_owned(), 2),
        ("x3", "unknown app 'nope': not in the config's [[apps]]".to_owned(), 3),
        ("x4", "unknown kind 'uninstall'".to_owned(), 4),
        ("x5", format!("timestamp_ms {} is more than 24h in the future", now + 3 * DAY), 5),
        ("x6", "invalid field 'revenue.amount': '1,99' is not a decimal such as \"4.99\"".to_owned(), 6),
        ("x7", "invalid field 'revenue.currency': 'dollars' is not an ISO 4217 code such as \"USD\"".to_owned(), 7),
    ]
    .into_iter()
    .map(|(k, e, o)| (k.to_owned(), e, topic.clone(), o.to_string()))
    .collect();
    assert_eq!(reasons, want);
    // the original bytes, untouched
    assert_eq!(dlq.iter().find(|r| r.key == b"x1").unwrap().value, raw[1].1);
    assert_eq!(p.metric("postback_dlq_records_total", &[("reason", "unknown_kind")]), 1.0);
    assert_eq!(p.metric("postback_dlq_records_total", &[]), 7.0);
    assert_eq!(p.terminate(), Some(0));
}
