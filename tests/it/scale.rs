//! SREs add partitions to the input while postback runs: the device state
//! keeps its partitions, records that arrive elsewhere go through the
//! repartition topic, and the committed job set stays exact.

use crate::support::env::{TestEnv, generated};
use crate::support::expect::{assert_exact, await_jobs};
use crate::support::kafka::{add_partitions_at, wait_until};
use crate::support::proc::Instance;
use crate::support::proc::tail;
use postback::domain::Event;
use std::time::Duration;

const SINK: &str = "https://pb.example";

/// Generated events, each user on one device: by-user postbacks then do
/// not depend on the order of two devices' partitions.
fn events(seed: u64) -> Vec<Event> {
    generated(400, 6000, seed)
        .into_iter()
        .map(|mut e| {
            if !e.user_id.is_empty() {
                e.user_id = format!("u-{}", e.device_id);
            }
            e
        })
        .collect()
}

/// Produces as Kafka's default partitioner does with `partitions` known.
fn produce_by_device(env: &TestEnv, events: &[Event], partitions: i32) {
    env.produce_by_device(events, partitions, "none");
}

/// Samples `/readyz` and the consumer lag every 200 ms until `done`;
/// returns how often it was not ready, and prints the lag seen.
fn not_ready_while(p: &Instance, mut done: impl FnMut() -> bool) -> usize {
    let (mut misses, mut samples, mut max_lag) = (0, 0, 0.0f64);
    let started = std::time::Instant::now();
    while !done() {
        samples += 1;
        if !p.ready() {
            misses += 1;
        }
        max_lag = max_lag.max(p.metric("postback_consumer_lag", &[]));
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "input change: {samples} samples over {:.1}s, {misses} not ready, largest consumer lag {max_lag} records",
        started.elapsed().as_secs_f64()
    );
    misses
}

fn grown_env(name: &str) -> (TestEnv, Vec<Event>) {
    let mut env = TestEnv::new(name, 8, SINK, "");
    env.partitioned_by = "device_id";
    (env, events(21))
}

#[test]
fn the_input_grows_from_8_to_12_partitions_while_running() {
    let (env, all) = grown_env("grow");
    let (phase1, phase2) = all.split_at(all.len() / 2);
    let mut p = env.start("p1");
    produce_by_device(&env, phase1, 8);
    await_jobs(&env, phase1, Duration::from_secs(120), &[&p]);
    assert_eq!(p.metric("postback_repartitioned_records_total", &[]), 0.0, "co-partitioned: no record forwarded");
    assert_eq!(p.metric("postback_layout_partitions", &[("of", "device_state")]), 8.0);
    assert!(p.ready(), "{}", tail(&p.log()));

    add_partitions_at(&env.bootstrap, &env.topic("events"), 12);
    produce_by_device(&env, phase2, 12);
    let mut jobs = Vec::new();
    let want = crate::support::env::predict(&all).len();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let misses = not_ready_while(&p, || {
        jobs = env.jobs();
        jobs.len() >= want || std::time::Instant::now() > deadline
    });
    let jobs = if jobs.len() >= want { jobs } else { await_jobs(&env, &all, Duration::from_secs(120), &[&p]) };
    assert_exact(&jobs, &all);
    assert_eq!(misses, 0, "/readyz stayed ready\n{}", tail(&p.log()));
    assert!(p.running(), "the same process went on");
    // records on their state partition by chance stay where they are
    let forwarded = p.metric("postback_repartitioned_records_total", &[]);
    assert!(forwarded > 0.0 && forwarded < phase2.len() as f64, "{forwarded} of {} forwarded", phase2.len());
    assert!(p.log().contains("partition restored and resumed"), "{}", tail(&p.log()));
    assert_eq!(p.terminate(), Some(0), "{}", tail(&p.log()));
}

#[test]
fn the_input_grows_and_the_processor_is_killed_right_after() {
    let (env, all) = grown_env("grow-kill");
    let (phase1, phase2) = all.split_at(all.len() / 2);
    let mut p = env.start("p1");
    produce_by_device(&env, phase1, 8);
    await_jobs(&env, phase1, Duration::from_secs(120), &[&p]);
    add_partitions_at(&env.bootstrap, &env.topic("events"), 12);
    let (early, late) = phase2.split_at(phase2.len() / 3);
    produce_by_device(&env, early, 12);
    // killed before its metadata refresh noticed the new partitions: the
    // next incarnation must not inherit an assignment without them
    std::thread::sleep(Duration::from_millis(1500));
    p.kill9();
    let mut p = env.start("p1");
    produce_by_device(&env, late, 12);
    let jobs = await_jobs(&env, &all, Duration::from_secs(180), &[&p]);
    assert_exact(&jobs, &all);
    assert_eq!(p.terminate(), Some(0), "{}", tail(&p.log()));

    // the state's partition count is recorded by its changelog: a config
    // that says otherwise is refused, naming both numbers
    let mut q = env.start_cmd("process", "p2", &[("POSTBACK__PROCESS__STATE_PARTITIONS", "5".to_owned())]);
    assert!(wait_until(Duration::from_secs(60), || !q.running()), "{}", tail(&q.log()));
    assert!(
        q.log().contains("process.state_partitions is 5 but the device state has 8 partitions"),
        "{}",
        tail(&q.log())
    );
}

/// Runs `postback state <args>` to completion: (exit code, stdout, stderr).
pub fn state_cmd(env: &TestEnv, args: &[&str], extra: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_postback"));
    cmd.arg("state").arg(args[0]).arg(&env.config_path).args(&args[1..]);
    cmd.env("POSTBACK__INPUT__PARTITIONED_BY", env.partitioned_by).env("RUST_LOG", "warn");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run postback state");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// Phase 1 on 8 partitions, the input grown to 16, phase 2 through the
/// repartition path; returns the stopped processor's events so far.
fn grown_and_stopped(name: &str) -> (TestEnv, Vec<Event>, Vec<Event>) {
    let (env, all) = grown_env(name);
    let (done, phase3) = all.split_at(all.len() * 2 / 3);
    let (phase1, phase2) = done.split_at(done.len() / 2);
    let mut p = env.start("p1");
    produce_by_device(&env, phase1, 8);
    await_jobs(&env, phase1, Duration::from_secs(120), &[&p]);
    add_partitions_at(&env.bootstrap, &env.topic("events"), 16);
    produce_by_device(&env, phase2, 16);
    await_jobs(&env, done, Duration::from_secs(120), &[&p]);
    assert!(p.metric("postback_repartitioned_records_total", &[]) > 0.0);
    // refused while a processor is in the group, naming it
    let (code, _, err) = state_cmd(&env, &["rescale", "--partitions", "16"], &[]);
    assert_eq!(code, Some(1), "{err}");
    // every processing thread is a member: thread 0 under the instance id
    assert!(err.contains("has live members (") && err.contains("postback-p1@"), "{err}");
    assert_eq!(p.terminate(), Some(0), "{}", tail(&p.log()));
    (env, done.to_vec(), phase3.to_vec())
}

fn finish_after_rescale(env: &TestEnv, all: &[Event], phase3: &[Event]) {
    let (_, shown, _) = state_cmd(env, &["show"], &[]);
    assert!(shown.contains("mode:              co-partitioned") && shown.contains("generation:        1"), "{shown}");
    let mut p = env.start("p1");
    produce_by_device(env, phase3, 16);
    let jobs = await_jobs(env, all, Duration::from_secs(120), &[&p]);
    assert_exact(&jobs, all);
    assert_eq!(p.metric("postback_repartitioned_records_total", &[]), 0.0, "the fast path again");
    assert_eq!(p.metric("postback_layout_generation", &[]), 1.0);
    assert_eq!(p.metric("postback_layout_partitions", &[("of", "device_state")]), 16.0);
    assert_eq!(p.terminate(), Some(0), "{}", tail(&p.log()));
}

#[test]
fn state_rescale_moves_the_state_to_new_partitions() {
    let (env, done, phase3) = grown_and_stopped("rescale");
    for (args, reason) in [
        (&["rescale", "--partitions", "0"][..], "--partitions must be at least 1"),
        (&["rescale", "--partitions", "32"][..], "--partitions 32 is more than the input's 16 partitions"),
        (
            &["rescale", "--partitions", "8"][..],
            "already has 8 device and 8 user partitions, keyed by project: nothing to do",
        ),
    ] {
        let (code, _, err) = state_cmd(&env, args, &[]);
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains(reason), "{err}");
    }
    let (code, out, err) = state_cmd(&env, &["rescale", "--partitions", "16"], &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("generation 0 -> 1, device state 8 -> 16 partitions, user state 8 -> 8"), "{out}");
    let all: Vec<Event> = done.iter().chain(&phase3).cloned().collect();
    finish_after_rescale(&env, &all, &phase3);
}

#[test]
fn a_rescale_killed_midway_is_resumed_to_completion() {
    let (env, done, phase3) = grown_and_stopped("rescale-kill");
    // a point of the rescale picked at random: after one of the four copies
    let points = ["device-changelog", "user-changelog", "device-events", "user-activity"];
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let crash = env.topic(points[nanos as usize % points.len()]);
    eprintln!("rescale killed after copying {crash}");
    let (code, _, err) =
        state_cmd(&env, &["rescale", "--partitions", "16"], &[("POSTBACK_RESCALE_CRASH_AFTER", crash.as_str())]);
    assert_eq!(code, None, "killed by the failpoint: {err}");
    let (_, shown, _) = state_cmd(&env, &["show"], &[]);
    assert!(shown.contains("generation:        0") && shown.contains("mode:              repartition"), "{shown}");
    let (code, _, err) = state_cmd(&env, &["rescale", "--partitions", "16"], &[]);
    assert_eq!(code, Some(1));
    assert!(err.contains("a previous rescale was interrupted; run again with --resume"), "{err}");
    // the user state is re-split too this time
    let (code, out, err) =
        state_cmd(&env, &["rescale", "--partitions", "16", "--user-partitions", "12", "--resume"], &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("device state 8 -> 16 partitions, user state 8 -> 12"), "{out}");
    let all: Vec<Event> = done.iter().chain(&phase3).cloned().collect();
    finish_after_rescale(&env, &all, &phase3);
}
