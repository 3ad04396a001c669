//! The processing loop on librdkafka's mock cluster: no broker to start, so
//! these run in a plain `cargo test` in seconds. (The mock does not show
//! transactional offset commits as committed, so restarts and exactly-once
//! under crashes are tested on the real broker, in `process.rs`.)

use crate::scenarios::scripted_events;
use crate::support::env::{generated, job_key, predict};
use crate::support::kafka::{TestProducer, read_all_at, wait_until};
use crate::support::rules;
use postback::codec::{decode_job, encode_event_json};
use postback::config;
use postback::kafka::partition_for;
use postback::process;
use postback::telemetry::Health;
use rdkafka::mocking::MockCluster;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[test]
fn the_processing_loop_runs_on_the_mock_cluster() {
    let mock = MockCluster::new(1).expect("mock cluster");
    let bootstrap = mock.bootstrap_servers();
    for (topic, partitions) in [
        ("events", 2),
        ("user-activity", 2),
        ("device-changelog", 2),
        ("user-changelog", 2),
        ("jobs", 3),
        ("events.dlq", 2),
    ] {
        mock.create_topic(&format!("m.{topic}"), partitions, 1).expect("create topic");
    }
    let state = tempfile::tempdir().unwrap();
    let text = format!(
        "[kafka]\nbootstrap_servers = \"{bootstrap}\"\ninstance_id = \"mock-1\"\ngroup_id = \"m.group\"\n\
         [topics]\nevents = \"m.events\"\nevents_dlq = \"m.events.dlq\"\nuser_activity = \"m.user-activity\"\n\
         device_changelog = \"m.device-changelog\"\nuser_changelog = \"m.user-changelog\"\njobs = \"m.jobs\"\njobs_partitions = 3\n\
         [process]\nstate_dir = \"{}\"\n\n{}",
        state.path().display(),
        rules::config_text("https://pb.example")
    );
    let config = config::load_str(&text, Path::new("mock.toml"), Vec::<(String, String)>::new()).unwrap();
    let shutdown = Arc::new(AtomicBool::new(false));
    let handle =
        process::start(Arc::new(RwLock::new(Arc::new(config))), Health::new(), Arc::clone(&shutdown)).expect("start");

    let mut events = scripted_events();
    events.extend(generated(50, 400, 9));
    let users: HashMap<&str, &str> =
        events.iter().filter(|e| !e.user_id.is_empty()).map(|e| (e.device_id.as_str(), e.user_id.as_str())).collect();
    let producer = TestProducer::at(&bootstrap);
    for e in &events {
        let group = users.get(e.device_id.as_str()).copied().unwrap_or(&e.device_id);
        producer.send("m.events", partition_for(group.as_bytes(), 2), e.device_id.as_bytes(), &encode_event_json(e));
    }
    producer.flush();

    let want = predict(&events);
    let mut got = BTreeSet::new();
    let mut ids = Vec::new();
    wait_until(Duration::from_secs(60), || {
        let jobs: Vec<_> = read_all_at(&bootstrap, "m.jobs").iter().map(|r| decode_job(&r.value).unwrap()).collect();
        ids = jobs.iter().map(|j| j.job_id.clone()).collect();
        got = jobs.iter().map(job_key).collect();
        got.len() >= want.len()
    });
    shutdown.store(true, Ordering::Relaxed);
    handle.join().expect("processor thread").expect("processor result");
    assert_eq!(ids.len(), got.len(), "no job id twice");
    assert_eq!(got, want);
    // the rejected steps of the scenario table are in the DLQ
    assert_eq!(read_all_at(&bootstrap, "m.events.dlq").len(), 3);
}
