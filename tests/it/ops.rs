//! Operability on a real broker: exact metrics after a scripted run,
//! readiness during a restore, hot reload, and inspect.

use crate::support::env::{TestEnv, predict_with};
use crate::support::kafka::{TestProducer, create_topic, wait_until};
use crate::support::partner::Partner;
use crate::support::proc::http_get;
use crate::support::rules::{DAY, T0, config, ev};
use crate::support::scenarios::scripted_events;
use postback::domain::Kind::*;
use postback::domain::check::check_event;
use postback::domain::device::apply_device;
use postback::domain::engine::state_key;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

const SEND: &str = "[send]\nretry_delays = [\"1s\"]\nallow_networks = [\"127.0.0.0/8\"]\ncommit_interval = \"200ms\"\n";

#[test]
fn metrics_count_exactly_what_happened() {
    let partner = Partner::start();
    let sink = partner.url("/ok");
    let env = TestEnv::new("metrics", 2, &sink, SEND);
    let events = scripted_events();
    let mut run = env.start_cmd("run", "r1", &[]);
    env.produce(&events);
    let jobs = predict_with(&events, &sink);
    assert!(
        wait_until(Duration::from_secs(120), || run.metric("postback_deliveries_total", &[("outcome", "delivered")])
            == jobs.len() as f64),
        "{}",
        run.tail()
    );

    // expected counts, from the rules themselves
    let rules = config(&sink).rules;
    let (mut processed, mut duplicate, mut invalid) =
        (HashMap::<(String, &str), u64>::new(), HashMap::<(String, &str), u64>::new(), 0u64);
    let mut states = HashMap::new();
    for e in &events {
        match check_event(e, &rules, postback::clock::now_ms()) {
            Err(_) => invalid += 1,
            Ok(app) => {
                let st = states.entry(state_key(&e.app_id, &e.device_id)).or_insert(None);
                let out = apply_device(st, e, app);
                let map = if out.duplicate { &mut duplicate } else { &mut processed };
                *map.entry((e.app_id.clone(), e.kind.as_str())).or_default() += 1;
            }
        }
    }
    for ((app, kind), n) in &processed {
        assert_eq!(
            run.metric("postback_events_total", &[("app", app), ("kind", kind), ("result", "processed")]),
            *n as f64,
            "{app}/{kind}"
        );
    }
    for ((app, kind), n) in &duplicate {
        assert_eq!(
            run.metric("postback_events_total", &[("app", app), ("kind", kind), ("result", "duplicate")]),
            *n as f64,
            "{app}/{kind} duplicates"
        );
    }
    assert_eq!(run.metric("postback_events_total", &[("result", "invalid")]), invalid as f64);
    assert_eq!(run.metric("postback_dlq_records_total", &[]), invalid as f64);
    let mut per_job: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    let mut per_partner: BTreeMap<String, u64> = BTreeMap::new();
    for j in &jobs {
        *per_job.entry((j.partner_id.clone(), j.event.clone(), j.attribution.as_str().to_owned())).or_default() += 1;
        *per_partner.entry(j.partner_id.clone()).or_default() += 1;
    }
    for ((partner_id, event, attribution), n) in &per_job {
        assert_eq!(
            run.metric(
                "postback_jobs_total",
                &[("partner", partner_id), ("event", event), ("attribution", attribution)]
            ),
            *n as f64,
            "{partner_id}/{event}/{attribution}"
        );
    }
    assert_eq!(run.metric("postback_jobs_total", &[]), jobs.len() as f64);
    for (p, n) in &per_partner {
        assert_eq!(
            run.metric("postback_deliveries_total", &[("partner", p), ("outcome", "delivered")]),
            *n as f64,
            "{p}"
        );
        assert_eq!(run.metric("postback_http_responses_total", &[("partner", p), ("class", "2xx")]), *n as f64, "{p}");
    }
    assert_eq!(run.metric("postback_deliveries_total", &[("outcome", "dlq")]), 0.0);
    assert_eq!(partner.requests().len(), jobs.len());
    assert_eq!(run.terminate(), Some(0));
}

#[test]
fn readyz_is_false_while_restoring() {
    let env = TestEnv::new("ready", 1, "https://pb.example", "");
    create_topic(&env.topic("device-changelog"), 1);
    let mut state = Vec::new();
    let st = postback::domain::DeviceState { first_seen_ms: T0, ..Default::default() };
    postback::domain::binary::encode_device(&st, &mut state);
    let p = TestProducer::new();
    for i in 0..150_000 {
        p.send(&env.topic("device-changelog"), 0, format!("m:dev-{i}").as_bytes(), &state);
    }
    p.flush();
    let mut i = env.start("p1");
    let (mut saw_restoring, mut ready) = (false, false);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while std::time::Instant::now() < deadline && !ready {
        match crate::support::proc::http_full(&i.admin, "/readyz") {
            Some((503, body)) => saw_restoring |= body.contains("restoring device-0"),
            Some((200, _)) => ready = true,
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(saw_restoring, "/readyz answered 503 'restoring device-0' during the restore\n{}", i.tail());
    assert!(ready, "/readyz answered 200 after it\n{}", i.tail());
    assert_eq!(i.metric("postback_restored_records_total", &[("store", "device")]), 150_000.0);
    assert_eq!(i.metric("postback_restore_remaining_records", &[("store", "device")]), 0.0);
    assert_eq!(http_get(&i.admin, "/healthz").as_deref(), Some("ok\n"));
    assert_eq!(i.terminate(), Some(0));
}

#[test]
fn config_reloads_apply_to_later_events_and_bad_ones_are_refused() {
    let env = TestEnv::new("reload", 1, "https://pb.example", "");
    let mut p = env.start("p1");
    let ids = |env: &TestEnv, event: &str| {
        let mut v: Vec<String> =
            env.jobs().into_iter().filter(|j| j.event_id == event).map(|j| j.postback_id).collect();
        v.sort();
        v
    };
    env.produce(&[ev("e1", Install, 0.0).from("acme").0]);
    assert!(wait_until(Duration::from_secs(60), || ids(&env, "e1").len() == 2), "{}", p.tail());
    let original = std::fs::read_to_string(&env.config_path).unwrap();
    let added = format!(
        "{original}\n[[postbacks]]\nid = \"acme.install-extra\"\nname = \"acme | install extra\"\npartner = \"acme\"\nevent = \"install\"\nurl = \"https://pb.example/extra?c={{click_id}}\"\n"
    );
    std::fs::write(&env.config_path, &added).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || p.metric("postback_config_reloads_total", &[]) == 1.0),
        "{}",
        p.tail()
    );
    env.produce(&[ev("e2", Install, 0.0).dev("d2").from("acme").0]);
    assert!(wait_until(Duration::from_secs(60), || ids(&env, "e2").len() == 3), "{}", p.tail());
    assert_eq!(ids(&env, "e2"), vec!["acme.install", "acme.install-extra", "orbit.all-install"]);
    assert_eq!(ids(&env, "e1"), vec!["acme.install", "orbit.all-install"], "earlier events are not re-sent");

    // an invalid edit is refused; the running config keeps working
    std::fs::write(&env.config_path, format!("{added}\n[[postbacks]]\nname = \"broken\"\npartner = \"nobody\"\n"))
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || p.metric("postback_config_reload_failures_total", &[]) == 1.0),
        "{}",
        p.tail()
    );
    assert!(p.log().contains("config reload refused"), "{}", p.tail());
    env.produce(&[ev("e3", Install, 0.0).dev("d3").from("acme").0]);
    assert!(wait_until(Duration::from_secs(60), || ids(&env, "e3").len() == 3), "{}", p.tail());

    // batching is hot; the group id is fixed at start: that reload is
    // refused by key and the running config stays
    let hot = added
        .replace("max_batch = 500", "max_batch = 50")
        .replace("commit_interval = \"100ms\"", "commit_interval = \"250ms\"");
    std::fs::write(&env.config_path, &hot).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || p.metric("postback_config_reloads_total", &[]) == 2.0),
        "{}",
        p.tail()
    );
    let fixed = hot.replace(&format!("group_id = \"{}group\"", env.prefix), "group_id = \"another\"");
    std::fs::write(&env.config_path, &fixed).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || p.metric("postback_config_reload_failures_total", &[]) == 2.0),
        "{}",
        p.tail()
    );
    assert!(
        p.log().lines().any(|l| l.contains("config reload refused")
            && l.contains("key=kafka.group_id")
            && l.contains("takes effect only at a restart")),
        "{}",
        p.tail()
    );
    env.produce(&[ev("e4", Install, 0.0).dev("d4").from("acme").0]);
    assert!(wait_until(Duration::from_secs(60), || ids(&env, "e4").len() == 3), "{}", p.tail());
    assert_eq!(p.terminate(), Some(0));
}

fn inspect(env: &TestEnv, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_postback"))
        .arg("inspect")
        .args(args)
        .arg("--config")
        .arg(&env.config_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn line<'a>(report: &'a str, postback: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.starts_with(&format!("{postback} ")))
        .unwrap_or_else(|| panic!("no line for {postback}:\n{report}"))
}

#[test]
fn inspect_explains_why_postbacks_fire_or_not() {
    let env = TestEnv::new("inspect", 1, "https://pb.example", "");
    let mut p = env.start("p1");
    // relative to now, so that "now" is inside the inactivity window
    let now = postback::clock::now_ms() / 1000 * 1000;
    let (installed, returned) = (now - 60 * DAY, now - DAY);
    let events = vec![
        ev("i1", Install, 0.0).at_ms(installed).from("acme").0,
        ev("l1", Launch, 0.0).at_ms(returned).from("zeta").0,
        ev("v1", Visit, 0.0).at_ms(returned).app("w").dev("w1").from("acme").0,
    ];
    let ts = postback::domain::time::format_ms;
    env.produce(&events);
    assert!(wait_until(Duration::from_secs(60), || env.jobs().len() == 3), "{}", p.tail());
    assert_eq!(p.terminate(), Some(0));
    let dir = env.state_dir("p1").display().to_string();

    let report = inspect(&env, &["device", "m", "d1", "--state-dir", &dir]);
    assert!(
        report.starts_with(&format!(
            "device d1 of app m (mobile)\nfirst seen {}; installed {}",
            ts(installed),
            ts(installed)
        )),
        "{report}"
    );
    assert!(
        line(&report, "acme | install").contains(&format!("already sent: the device installed at {}", ts(installed))),
        "{report}"
    );
    assert!(
        line(&report, "acme | payment-ca")
            .contains("sending = attributed and the attribution belongs to partner 'zeta'"),
        "{report}"
    );
    assert!(line(&report, "zeta | payment-ca").contains("yes"), "{report}");
    assert!(line(&report, "acme | payment ").contains("yes"), "lifetime payments stay with acme\n{report}");
    assert!(
        line(&report, "zeta | reengagement").contains(&format!(
            "inside the inactivity window: last activity {}, a return from {} would count",
            ts(returned),
            ts(returned + 30 * DAY)
        )),
        "{report}"
    );

    let web = inspect(&env, &["device", "w", "w1", "--state-dir", &dir]);
    assert!(line(&web, "acme | payment ").contains("not a valid postback event for a web app"), "{web}");
    assert!(line(&web, "acme | registration ").contains("yes"), "{web}");

    // the same through a running instance's admin API (off by default)
    let p = env.start_cmd("process", "p1", &[("POSTBACK__ADMIN__INSPECT", "true".to_owned())]);
    assert!(wait_until(Duration::from_secs(60), || p.ready()));
    let remote = inspect(&env, &["device", "m", "d1", "--admin", &p.admin]);
    assert_eq!(line(&remote, "acme | install"), line(&report, "acme | install"));
    // a device first seen by the running instance: its state is not on disk
    // yet (no write-ahead log, not flushed), so the admin API reads through
    // the open store
    env.produce(&[ev("i2", Install, 0.0).at_ms(returned).dev("d2").from("acme").0]);
    let of_i2 = || env.jobs().into_iter().filter(|j| j.event_id == "i2").map(|j| j.postback_id).collect::<Vec<_>>();
    assert!(wait_until(Duration::from_secs(60), || of_i2().len() == 2), "{:?}\n{}", of_i2(), p.tail());
    let mut fired = of_i2();
    fired.sort();
    assert_eq!(fired, ["acme.install", "orbit.all-install"]);
    let fresh = inspect(&env, &["device", "m", "d2", "--admin", &p.admin]);
    assert!(fresh.starts_with(&format!("device d2 of app m (mobile)\nfirst seen {}", ts(returned))), "{fresh}");
    assert!(
        line(&fresh, "acme | install").contains(&format!("already sent: the device installed at {}", ts(returned))),
        "{fresh}"
    );
}
