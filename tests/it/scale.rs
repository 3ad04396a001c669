//! SREs add partitions to the input while postback runs: the device state
//! keeps its partitions, records that arrive elsewhere go through the
//! repartition topic, and the committed job set stays exact.

use crate::process::{assert_exact, await_jobs, tail};
use crate::support::env::{TestEnv, generated};
use crate::support::kafka::{TestProducer, add_partitions_at, wait_until};
use crate::support::proc::Instance;
use postback::codec::encode_event_json;
use postback::domain::Event;
use postback::kafka::partition_for;
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
    let p = TestProducer::at(&env.bootstrap);
    for e in events {
        let key = e.device_id.as_bytes();
        p.send(&env.topic("events"), partition_for(key, partitions), key, &encode_event_json(e));
    }
    p.flush();
}

/// Samples `/readyz` every 200 ms until `done`; returns how often it was not ready.
fn not_ready_while(p: &Instance, mut done: impl FnMut() -> bool) -> usize {
    let mut misses = 0;
    while !done() {
        if !p.ready() {
            misses += 1;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
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
