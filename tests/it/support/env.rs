//! One isolated pipeline on the shared test broker: its own topic names,
//! consumer groups, state directories and config file, so tests run side
//! by side.

use super::kafka::{self, TestProducer};
use super::proc::Instance;
use super::rules;
use postback::codec::{decode_job, encode_event_json};
use postback::domain::{Event, Job};
use postback::kafka::partition_for;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

static NONCE: AtomicU32 = AtomicU32::new(0);

pub struct TestEnv {
    pub bootstrap: String,
    pub dir: tempfile::TempDir,
    pub prefix: String,
    pub config_path: PathBuf,
    pub partitions: i32,
    /// `input.partitioned_by` of the instances: `custom`, because
    /// [`TestEnv::produce`] puts a user's devices on one partition.
    pub partitioned_by: &'static str,
}

impl TestEnv {
    /// Creates the events topic with `partitions` partitions and writes a
    /// config whose partner URLs point at `sink`.
    pub fn new(name: &str, partitions: i32, sink: &str, extra: &str) -> TestEnv {
        TestEnv::on(kafka::bootstrap(), name, partitions, sink, extra)
    }

    /// The same on another broker (one the test pauses or stops).
    pub fn on(bootstrap: &str, name: &str, partitions: i32, sink: &str, extra: &str) -> TestEnv {
        let n = NONCE.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("{name}-{}-{n}.", std::process::id());
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("postback.toml");
        let text = format!(
            "[kafka]\nbootstrap_servers = \"{bootstrap}\"\ngroup_id = \"{prefix}group\"\nsender_group_id = \"{prefix}sender\"\n\
             [kafka.consumer]\n\"session.timeout.ms\" = \"10000\"\n\"heartbeat.interval.ms\" = \"1000\"\n\n\
             [topics]\nevents = \"{prefix}events\"\nevents_dlq = \"{prefix}events.dlq\"\nuser_activity = \"{prefix}user-activity\"\ndevice_events = \"{prefix}device-events\"\nlayout = \"{prefix}layout\"\n\
             device_changelog = \"{prefix}device-changelog\"\nuser_changelog = \"{prefix}user-changelog\"\njobs = \"{prefix}jobs\"\n\
             jobs_retry_prefix = \"{prefix}jobs.retry\"\njobs_dlq = \"{prefix}jobs.dlq\"\ndeliveries = \"{prefix}deliveries\"\n\
             jobs_partitions = 3\n\n[process]\nmax_batch = 500\ncommit_interval = \"100ms\"\n\n{extra}\n\n{rules}",
            rules = rules::config_text(sink),
        );
        std::fs::write(&config_path, text).expect("write config");
        kafka::create_topic_at(bootstrap, &format!("{prefix}events"), partitions);
        kafka::create_topic_at(bootstrap, &format!("{prefix}jobs"), 3);
        TestEnv { bootstrap: bootstrap.to_owned(), dir, prefix, config_path, partitions, partitioned_by: "custom" }
    }

    pub fn topic(&self, t: &str) -> String {
        format!("{}{t}", self.prefix)
    }

    pub fn state_dir(&self, instance: &str) -> PathBuf {
        self.dir.path().join(format!("state-{instance}"))
    }

    /// Starts `postback process` as instance `name`.
    pub fn start(&self, name: &str) -> Instance {
        self.start_cmd("process", name, &[])
    }

    /// Starts `postback <command>` as instance `name` with extra overrides.
    pub fn start_cmd(&self, command: &str, name: &str, extra: &[(&str, String)]) -> Instance {
        let mut env = vec![
            ("POSTBACK__PROCESS__STATE_DIR", self.state_dir(name).display().to_string()),
            ("POSTBACK__INPUT__PARTITIONED_BY", self.partitioned_by.to_owned()),
        ];
        env.extend(extra.iter().cloned());
        Instance::start(command, &self.config_path, name, &env, self.dir.path())
    }

    /// Produces jobs straight to the jobs topic (sender tests).
    pub fn produce_jobs(&self, jobs: &[Job]) {
        let p = TestProducer::at(&self.bootstrap);
        for j in jobs {
            let value = postback::codec::encode_job(j, postback::codec::JobEncoding::Json);
            p.send(&self.topic("jobs"), partition_for(j.device_id.as_bytes(), 3), j.device_id.as_bytes(), &value);
        }
        p.flush();
    }

    /// The delivery log, as JSON values.
    pub fn deliveries(&self) -> Vec<serde_json::Value> {
        kafka::read_all_at(&self.bootstrap, &self.topic("deliveries"))
            .iter()
            .map(|r| serde_json::from_slice(&r.value).expect("delivery json"))
            .collect()
    }

    /// Produces events in order, every event of a user (or, without a user,
    /// of a device) to one partition, so per-user order is the produce order.
    pub fn produce(&self, events: &[Event]) {
        self.produce_part(events, events);
    }

    /// Produces `part` of `all`, partitioning by what `all` says of each
    /// device (a device's user may only show in a later part).
    pub fn produce_part(&self, part: &[Event], all: &[Event]) {
        self.produce_with(part, all, "none");
    }

    /// [`TestEnv::produce_part`] in record batches compressed with `codec`.
    pub fn produce_with(&self, part: &[Event], all: &[Event], codec: &str) {
        let users = device_users(all);
        let events = part;
        let p = TestProducer::compressed(&self.bootstrap, codec);
        for e in events {
            let group = users.get(&e.device_id).unwrap_or(&e.device_id);
            let partition = partition_for(group.as_bytes(), self.partitions);
            p.send(&self.topic("events"), partition, e.device_id.as_bytes(), &encode_event_json(e));
        }
        p.flush();
    }

    /// Produces as Kafka's default partitioner does on the device id with
    /// `partitions` known, in record batches compressed with `codec`.
    pub fn produce_by_device(&self, events: &[Event], partitions: i32, codec: &str) {
        let p = TestProducer::compressed(&self.bootstrap, codec);
        for e in events {
            let key = e.device_id.as_bytes();
            p.send(&self.topic("events"), partition_for(key, partitions), key, &encode_event_json(e));
        }
        p.flush();
    }

    /// Raw records (bad input) to a partition.
    pub fn produce_raw(&self, partition: i32, key: &[u8], value: &[u8]) {
        let p = TestProducer::at(&self.bootstrap);
        p.send(&self.topic("events"), partition, key, value);
        p.flush();
    }

    /// Every committed job.
    pub fn jobs(&self) -> Vec<Job> {
        self.read("jobs").iter().map(|r| decode_job(&r.value).expect("job decodes")).collect()
    }

    /// The committed jobs, or `None` while a transaction still holds the
    /// reader short of the end of a partition.
    pub fn jobs_if_settled(&self) -> Option<Vec<Job>> {
        let (reads, complete) = kafka::read_until_end(&self.bootstrap, &self.topic("jobs"));
        complete.then(|| reads.iter().map(|r| decode_job(&r.value).expect("job decodes")).collect())
    }

    /// Every committed record of one of this env's topics (`jobs`, `events.dlq`, ...).
    pub fn read(&self, topic: &str) -> Vec<kafka::Read> {
        kafka::read_all_at(&self.bootstrap, &self.topic(topic))
    }
}

/// device -> user, for the partitioning above.
fn device_users(events: &[Event]) -> HashMap<String, String> {
    events.iter().filter(|e| !e.user_id.is_empty()).map(|e| (e.device_id.clone(), e.user_id.clone())).collect()
}

pub use super::predict::*;
