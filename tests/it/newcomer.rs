//! What a newcomer meets on a real broker: a missing input topic is one
//! line that names the command creating it, and that command works.

use crate::process::tail;
use crate::support::env::TestEnv;
use crate::support::kafka::wait_until;
use std::time::Duration;

#[test]
fn a_missing_input_is_one_line_naming_topics_create_which_creates_everything() {
    let env = TestEnv::new("newcomer", 2, "https://pb.example", "");
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

    let mut p = env.start_cmd("process", "p2", &events);
    assert!(wait_until(Duration::from_secs(60), || p.ready()), "{}", tail(&p.log()));
    assert_eq!(p.terminate(), Some(0));
}
