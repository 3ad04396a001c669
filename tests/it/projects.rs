//! Users are counted per project. State written before projects (users
//! keyed by app) is refused at start and re-keyed by `state rescale`; an app
//! moved to another project is refused at start.

use crate::scale::state_cmd;
use crate::support::env::TestEnv;
use crate::support::kafka::{TestProducer, wait_until};
use crate::support::proc::tail;
use crate::support::rules::{DAY, T0, ev};
use postback::domain::binary::encode_user;
use postback::domain::{Attributed, Attribution, Kind, UserState};
use postback::kafka::partition_for;
use std::collections::BTreeSet;
use std::time::Duration;

const SINK: &str = "https://pb.example";

fn legacy_user(partner: &str, day: i64) -> Vec<u8> {
    let source = Attribution { partner_id: partner.into(), campaign_id: "c".into(), ..Default::default() };
    let st = UserState {
        first_seen_ms: T0 + day * DAY,
        first_device_id: format!("d-{partner}"),
        first: Attributed::new(Some(source), T0 + day * DAY),
        last_activity_ms: Some(T0 + day * DAY),
        ..UserState::default()
    };
    let mut value = Vec::new();
    encode_user(&st, &mut value);
    value
}

fn exits_with(p: &mut crate::support::proc::Instance, reason: &str) {
    assert!(wait_until(Duration::from_secs(60), || !p.running()), "still running: {}", tail(&p.log()));
    assert_eq!(p.terminate(), Some(1));
    assert!(p.log().contains(reason), "{}", tail(&p.log()));
}

#[test]
fn user_state_keyed_by_app_is_rekeyed_by_project_once() {
    let env = TestEnv::new("rekey", 4, SINK, "");
    // a first run creates the topics; its layout goes elsewhere, so that
    // the state looks as a version before projects left it
    let before = [("POSTBACK__TOPICS__LAYOUT", env.topic("layout-before-projects"))];
    let mut p0 = env.start_cmd("process", "p0", &before);
    assert!(wait_until(Duration::from_secs(60), || p0.ready()), "{}", tail(&p0.log()));
    assert_eq!(p0.terminate(), Some(0));
    // u1 seen on app m (via acme, day 0) and on site w (via zeta, day 1)
    let producer = TestProducer::at(&env.bootstrap);
    for (key, value) in [("m:u1", legacy_user("acme", 0)), ("w:u1", legacy_user("zeta", 1))] {
        producer.send(&env.topic("user-changelog"), partition_for(key.as_bytes(), 4), key.as_bytes(), &value);
    }
    producer.flush();

    let mut p1 = env.start("p1");
    exits_with(
        &mut p1,
        "is keyed by app (written before projects): stop every processor and run `postback state rescale",
    );
    let (code, out, err) = state_cmd(&env, &["rescale"], &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("generation 0 -> 1, device state 4 -> 4 partitions, user state 4 -> 4"), "{out}");
    let line = format!("{} -> {}: 1 users", env.topic("user-changelog"), env.topic("user-changelog.g1"));
    assert!(err.contains(&line), "{err}");
    let (code, _, err) = state_cmd(&env, &["rescale"], &[]);
    assert_eq!(code, Some(1));
    assert!(err.contains("keyed by project: nothing to do"), "{err}");

    let p2 = env.start("p2");
    let events = [
        // a known user on a new device of the project: no new user
        ev("i1", Kind::Install, 2.0).dev("d9").user("u1").from("zeta").0,
        ev("i2", Kind::Install, 2.0).dev("d8").user("u2").from("acme").0,
    ];
    env.produce(&events);
    let want: BTreeSet<(String, String)> = [
        ("zeta.install", "i1"),
        ("orbit.all-install", "i1"),
        ("acme.install", "i2"),
        ("acme.new-user", "i2"),
        ("orbit.all-install", "i2"),
    ]
    .iter()
    .map(|(p, e)| (p.to_string(), e.to_string()))
    .collect();
    let got = || env.jobs().into_iter().map(|j| (j.postback_id, j.event_id)).collect::<BTreeSet<_>>();
    assert!(wait_until(Duration::from_secs(60), || got().len() >= want.len()), "{}", tail(&p2.log()));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(got(), want);
    drop(p2);

    // moving an app to another project is refused, naming both
    let text = std::fs::read_to_string(&env.config_path).unwrap();
    let moved = text.replacen("id = \"w\"\n", "id = \"w\"\nproject = \"web-only\"\n", 1);
    assert_ne!(text, moved);
    std::fs::write(&env.config_path, moved).unwrap();
    let mut p3 = env.start("p3");
    exits_with(&mut p3, "app 'w' moved from project 'default' to 'web-only'");
}
