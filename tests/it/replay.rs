//! `postback dlq replay` for both DLQs on a real broker: a dry run first,
//! then a replay killed halfway (mid-transaction) and run again — each
//! matching record is replayed exactly once, the summaries say so exactly,
//! and a third run finds nothing left. Input records go back to the input
//! topic as they came, and the processor makes exactly the jobs the rules
//! say once their app is configured.

use crate::support::env::{TestEnv, generated};
use crate::support::kafka::{read_all, wait_until};
use crate::support::partner::Partner;
use crate::support::proc::cli;
use crate::support::proc::tail;
use crate::support::sender::{SEND, by_id, job, sender};
use postback::domain::Event;
use postback::domain::engine::Engine;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Runs `postback dlq replay CONFIG args…`: (exit code, the JSON summary).
fn replay(env: &TestEnv, args: &[&str], extra: &[(&str, String)]) -> (Option<i32>, Value) {
    let config = env.config_path.display().to_string();
    let mut all = vec!["dlq", "replay", config.as_str()];
    all.extend(args);
    let (code, out, err) = cli(&all, extra);
    let summary = serde_json::from_str(out.trim()).unwrap_or_else(|_| Value::String(format!("{out}{err}")));
    (code, summary)
}

fn counts(v: &Value) -> [u64; 5] {
    ["read", "matched", "replayed", "truncated", "undecodable"].map(|k| v[k].as_u64().unwrap_or(u64::MAX))
}

/// Records of `topic` that a replay wrote, by the DLQ record they came from.
fn replayed_from(env: &TestEnv, topic: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in read_all(&env.topic(topic)) {
        if let Some(from) = r.headers.get("replayed-from") {
            *out.entry(from.clone()).or_default() += 1;
        }
    }
    out
}

#[test]
fn the_job_dlq_is_replayed_exactly_once_across_a_kill() {
    let partner = Partner::start();
    let env = TestEnv::new("replay-jobs", 1, "https://pb.example", SEND);
    let jobs: Vec<_> = (0..40).map(|i| job(&format!("r-{i}"), "acme", partner.url(&format!("/bad/{i}")))).collect();
    env.produce_jobs(&jobs);
    let mut s = sender(&env, "s1", &[]);
    assert!(wait_until(Duration::from_secs(60), || read_all(&env.topic("jobs.dlq")).len() == 40), "{}", tail(&s.log()));
    assert_eq!(s.terminate(), Some(0));
    // the DLQs and the delivery log keep records as configured, not as the broker's default
    let retention = |t: &str| crate::support::kafka::topic_config(&env.topic(t), "retention.ms");
    assert_eq!(retention("jobs.dlq").as_deref(), Some("2592000000"), "30 days");
    assert_eq!(retention("deliveries").as_deref(), Some("604800000"), "7 days");

    let filter = ["--partner", "acme", "--reason", "http 400"];
    let (code, dry) = replay(&env, &[&filter[..], &["--dry-run"]].concat(), &[]);
    assert_eq!(code, Some(0), "{dry}");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(counts(&dry["run"]), [40, 40, 40, 0, 0], "{dry}");
    assert!(replayed_from(&env, "jobs").is_empty(), "a dry run writes nothing");
    // a filter that takes nothing
    let (code, none) = replay(&env, &[&filter[..], &["--since", "2999-01-01", "--dry-run"]].concat(), &[]);
    assert_eq!((code, counts(&none["run"])), (Some(0), [40, 0, 0, 0, 0]), "{none}");

    // killed with its third transaction open (10 records a transaction)
    let crash = [("POSTBACK_REPLAY_CRASH_AFTER", "25".to_owned())];
    let (code, _) = replay(&env, &[&filter[..], &["--batch", "10"]].concat(), &crash);
    assert_eq!(code, Some(137));
    let (code, second) = replay(&env, &[&filter[..], &["--batch", "10"]].concat(), &[]);
    assert_eq!(code, Some(0), "{second}");
    assert_eq!(second["resumed"], true);
    assert_eq!(counts(&second["run"]), [20, 20, 20, 0, 0], "{second}");
    assert_eq!(counts(&second["total"]), [40, 40, 40, 0, 0], "{second}");
    // each DLQ record went back once: the open transaction was aborted
    let back = replayed_from(&env, "jobs");
    assert_eq!(back.len(), 40);
    assert!(back.values().all(|n| *n == 1), "{back:?}");
    let (code, third) = replay(&env, &filter, &[]);
    assert_eq!((code, counts(&third["run"])), (Some(0), [0, 0, 0, 0, 0]), "{third}");

    // the sender takes the replayed jobs: each attempted once more
    let mut s = sender(&env, "s2", &[]);
    let twice = || by_id(&partner.requests()).values().filter(|r| r.len() == 2).count();
    assert!(wait_until(Duration::from_secs(60), || twice() == 40), "{} of 40\n{}", twice(), tail(&s.log()));
    std::thread::sleep(Duration::from_secs(2));
    assert!(by_id(&partner.requests()).values().all(|r| r.len() == 2));
    assert_eq!(s.terminate(), Some(0));
}

/// Events of an app the config does not know yet: they go to the input DLQ.
fn late_events() -> Vec<Event> {
    generated(20, 200, 81)
        .into_iter()
        .filter(|e| e.app_id == "m")
        .take(60)
        .map(|mut e| {
            e.app_id = "late".into();
            e
        })
        .collect()
}

#[test]
fn the_input_dlq_is_replayed_exactly_once_and_processed_once_its_app_exists() {
    let env = TestEnv::new("replay-events", 2, "https://pb.example", "");
    let events = late_events();
    let mut p = env.start("p1");
    env.produce(&events);
    let n = events.len();
    assert!(wait_until(Duration::from_secs(60), || env.read("events.dlq").len() == n), "{}", tail(&p.log()));
    assert!(env.jobs().is_empty());

    // the app is added by a reload; the events wait in the DLQ until replayed
    let text = std::fs::read_to_string(&env.config_path).unwrap();
    let with_app = format!("{text}\n[[apps]]\nid = \"late\"\nplatform = \"mobile\"\n");
    std::fs::write(&env.config_path, &with_app).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || p.metric("postback_config_reloads_total", &[]) == 1.0),
        "{}",
        tail(&p.log())
    );

    let filter = ["--dlq", "events", "--app", "late", "--reason", "unknown app"];
    let (code, dry) = replay(&env, &[&filter[..], &["--dry-run"]].concat(), &[]);
    let n64 = n as u64;
    assert_eq!((code, counts(&dry["run"])), (Some(0), [n64, n64, n64, 0, 0]), "{dry}");
    let crash = [("POSTBACK_REPLAY_CRASH_AFTER", "25".to_owned())];
    let (code, _) = replay(&env, &[&filter[..], &["--batch", "10"]].concat(), &crash);
    assert_eq!(code, Some(137));
    let (code, second) = replay(&env, &[&filter[..], &["--batch", "10"]].concat(), &[]);
    assert_eq!(code, Some(0), "{second}");
    assert_eq!(second["resumed"], true);
    assert_eq!(second["target"], env.topic("events"));
    assert_eq!(counts(&second["total"]), [n64, n64, n64, 0, 0], "{second}");
    assert_eq!(
        counts(&second["run"]),
        [n64 - 20, n64 - 20, n64 - 20, 0, 0],
        "two transactions of 10 committed before the kill"
    );
    let back = replayed_from(&env, "events");
    assert_eq!(back.len(), n);
    assert!(back.values().all(|c| *c == 1), "{back:?}");

    // the processor makes exactly the jobs the rules say for those events
    let config = postback::config::load_str(&with_app, &env.config_path, Vec::<(String, String)>::new())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut engine = Engine::new(Arc::clone(&config.rules));
    let now = postback::clock::now_ms();
    let want: BTreeSet<_> = events
        .iter()
        .filter_map(|e| engine.process(e, now).ok())
        .flatten()
        .map(|j| crate::support::env::job_key(&j))
        .collect();
    assert!(!want.is_empty());
    assert!(wait_until(Duration::from_secs(60), || env.jobs().len() >= want.len()), "{}", tail(&p.log()));
    std::thread::sleep(Duration::from_secs(2));
    let got: Vec<_> = env.jobs().iter().map(crate::support::env::job_key).collect();
    assert_eq!(got.len(), want.len(), "no job twice");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), want);
    assert_eq!(p.terminate(), Some(0));
}
