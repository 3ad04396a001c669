//! What a newcomer meets on a real broker: a missing input topic is one
//! line that names the command creating it, and that command works; then
//! `postback run` on the topics it made turns events into delivered
//! postbacks (the README's three commands).

use crate::support::env::{JobKey, TestEnv, generated, job_key, predict_with};
use crate::support::expect::await_jobs;
use crate::support::kafka::{TestProducer, wait_until};
use crate::support::partner::Partner;
use crate::support::proc::tail;
use crate::support::sender::SEND;
use postback::codec::encode_event_json;
use std::collections::BTreeSet;
use std::time::Duration;

#[test]
fn a_missing_input_is_one_line_naming_topics_create_which_creates_everything() {
    let partner = Partner::start();
    let env = TestEnv::new("newcomer", 2, &partner.url("/ok"), SEND);
    let fresh = env.topic("fresh-events");
    let events = [("POSTBACK__TOPICS__EVENTS", fresh.clone())];

    let mut p = env.start_cmd("process", "p1", &events);
    assert!(wait_until(Duration::from_secs(60), || !p.running()), "{}", tail(&p.log()));
    let log = p.log();
    let said: Vec<&str> = log.lines().filter(|l| l.contains("does not exist")).collect();
    assert_eq!(
        said,
        vec![format!(
            "postback: input topic '{fresh}' does not exist: create it with `postback topics create CONFIG --partitions N` \
             (it creates every topic postback uses) or with your own tooling"
        )],
        "{log}"
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_postback"))
        .args(["topics", "create"])
        .arg(&env.config_path)
        .args(["--partitions", "3"])
        .env("POSTBACK__TOPICS__EVENTS", &fresh)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run topics create");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for (topic, n) in [
        (fresh.clone(), 3),
        (env.topic("device-changelog"), 3),
        (env.topic("device-events"), 3),
        (env.topic("jobs"), 3),
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == [topic.as_str(), &n.to_string(), "partitions"]),
            "{topic}: {stdout}"
        );
    }
    assert!(stdout.contains(&env.topic("jobs.retry-1")), "{stdout}");

    // the third command: both stages in one process, a handful of events in
    let mut p = env.start_cmd("run", "p2", &events);
    assert!(wait_until(Duration::from_secs(60), || p.ready()), "{}", tail(&p.log()));
    let sent = generated(6, 40, 91);
    let producer = TestProducer::at(&env.bootstrap);
    for e in &sent {
        producer.send(&fresh, 0, e.device_id.as_bytes(), &encode_event_json(e));
    }
    producer.flush();
    let jobs = await_jobs(&env, &sent, Duration::from_secs(90), &[&p]);
    let got: Vec<JobKey> = jobs.iter().map(job_key).collect();
    let predicted: BTreeSet<JobKey> = predict_with(&sent, &partner.url("/ok")).iter().map(job_key).collect();
    assert_eq!(got.len(), predicted.len(), "no job twice");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), predicted);
    let want: BTreeSet<String> = jobs.iter().map(|j| j.job_id.clone()).collect();
    let delivered = || partner.requests().iter().map(|r| r.id().to_owned()).collect::<BTreeSet<_>>();
    assert!(wait_until(Duration::from_secs(60), || delivered() == want), "{:?}\n{}", delivered(), tail(&p.log()));
    assert_eq!(p.terminate(), Some(0));
}
