//! The processing loop on librdkafka's mock cluster: no broker to start, so
//! these run in a plain `cargo test` in seconds. (The mock does not show
//! transactional offset commits as committed, so restarts and exactly-once
//! under crashes are tested on the real broker, in `process.rs`. For the
//! same reason the loop runs one processing thread here: a partition that
//! moves between threads would be read again from its start, and its
//! stateless output — the DLQ records — written twice.)

use crate::support::clients::{TestProducer, read_all_at, wait_until};
use crate::support::predict::{generated, job_key, predict};
use crate::support::rules;
use crate::support::scenarios::{scripted_events, scripted_rejections};
use postback::codec::{decode_job, encode_event_json};
use postback::config;
use postback::kafka::partition_for;
use postback::process;
use postback::telemetry::Health;
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[test]
fn the_processing_loop_runs_on_the_mock_cluster() {
    let mock = MockCluster::new(1).expect("mock cluster");
    let bootstrap = mock.bootstrap_servers();
    for (topic, partitions) in [
        ("events", 2),
        ("user-activity", 2),
        ("device-events", 2),
        ("device-changelog", 2),
        ("user-changelog", 2),
        ("jobs", 3),
        ("jobs.dlq", 3),
        ("events.dlq", 2),
        ("layout", 1),
    ] {
        mock.create_topic(&format!("m.{topic}"), partitions, 1).expect("create topic");
    }
    let state = tempfile::tempdir().unwrap();
    let text = format!(
        "[kafka]\nbootstrap_servers = \"{bootstrap}\"\ninstance_id = \"mock-1\"\ngroup_id = \"m.group\"\n\
         [topics]\nevents = \"m.events\"\nevents_dlq = \"m.events.dlq\"\nuser_activity = \"m.user-activity\"\ndevice_events = \"m.device-events\"\n\
         device_changelog = \"m.device-changelog\"\nuser_changelog = \"m.user-changelog\"\njobs = \"m.jobs\"\njobs_dlq = \"m.jobs.dlq\"\nlayout = \"m.layout\"\njobs_partitions = 3\n\
         [input]\npartitioned_by = \"custom\"\n[process]\nstate_dir = \"{}\"\nthreads = 1\n\n{}",
        state.path().display(),
        rules::config_text("https://pb.example")
    );
    let config = config::load_str(&text, Path::new("mock.toml"), Vec::<(String, String)>::new()).unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let handle =
        process::start(Arc::new(RwLock::new(Arc::new(config))), Health::new(), shutdown.clone()).expect("start");

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

    // committed jobs: (ids in order, set of job keys)
    let collect = |want: usize| {
        let (mut ids, mut got) = (Vec::new(), BTreeSet::new());
        wait_until(Duration::from_secs(60), || {
            let jobs: Vec<_> =
                read_all_at(&bootstrap, "m.jobs").iter().map(|r| decode_job(&r.value).unwrap()).collect();
            ids = jobs.iter().map(|j| j.job_id.clone()).collect::<Vec<_>>();
            got = jobs.iter().map(job_key).collect();
            got.len() >= want
        });
        (ids, got)
    };
    let (ids, got) = collect(predict(&events).len());
    assert_eq!(got, predict(&events));
    assert_eq!(ids.len(), got.len(), "no job id twice before any abort");

    // a failed transaction: the broker refuses the offset commit once; the
    // batch is aborted, rewound and processed again — no loss, no duplicate
    let aborted = || postback::telemetry::metrics::sum("postback_transactions_total", &[("result", "aborted")]);
    let before = aborted();
    mock.request_errors(RDKafkaApiKey::TxnOffsetCommit, &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION]);
    let more = generated(50, 300, 10);
    let more_users: HashMap<&str, &str> =
        more.iter().filter(|e| !e.user_id.is_empty()).map(|e| (e.device_id.as_str(), e.user_id.as_str())).collect();
    for e in &more {
        let group = more_users.get(e.device_id.as_str()).copied().unwrap_or(&e.device_id);
        producer.send("m.events", partition_for(group.as_bytes(), 2), e.device_id.as_bytes(), &encode_event_json(e));
    }
    producer.flush();
    events.extend(more);
    let want = predict(&events);
    let (_, got) = collect(want.len());
    assert!(aborted() > before, "the injected error aborted a transaction");
    shutdown.cancel();
    let result = handle.join().expect("processor thread");
    let missing: Vec<_> = want.difference(&got).map(|k| &k.1).take(5).collect();
    let extra: Vec<_> = got.difference(&want).map(|k| &k.1).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} jobs, {} predicted; missing {missing:?}; extra {extra:?}; processor: {result:?}",
        got.len(),
        want.len()
    );
    result.expect("processor result");
    // No duplicate check after the abort: librdkafka's mock broker answers
    // every fetch with no aborted transactions and the end offset as the
    // last stable offset (rdkafka_mock_handlers.c, Fetch), so a batch that
    // reached it before its abort stays visible to read_committed readers.
    // That the aborted batch is never seen twice is the real broker's test
    // (tests/it/process.rs: kill -9 leaves transactions to be aborted;
    // tests/it/outage.rs: a broker paused mid-commit).
    assert_eq!(got, want);
    // the rejected steps of the scenario table are in the DLQ, once each
    let mut dlq: Vec<(String, String)> = read_all_at(&bootstrap, "m.events.dlq")
        .iter()
        .map(|r| (String::from_utf8_lossy(&r.key).into_owned(), r.headers["error"].clone()))
        .collect();
    dlq.sort();
    let mut rejected = scripted_rejections();
    rejected.sort();
    assert_eq!(dlq, rejected);
}
