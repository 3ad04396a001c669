//! The real broker for integration tests: `POSTBACK_TEST_BOOTSTRAP` when
//! `make test` started one, else this test binary starts its own with
//! `scripts/kafka` and stops it when the binary exits. Helpers to create
//! topics, produce, and read topics to their end.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

static BROKER: OnceLock<String> = OnceLock::new();
static OWN_DIR: OnceLock<PathBuf> = OnceLock::new();

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka")
}

extern "C" fn stop_own_broker() {
    if let Some(dir) = OWN_DIR.get() {
        let _ = Command::new(script()).arg("stop").arg("--dir").arg(dir).status();
    }
}

/// The data directory of the test broker (its `secure.json` among others):
/// `POSTBACK_TEST_KAFKA_DIR` when `make test` started it, else our own.
pub fn broker_dir() -> PathBuf {
    bootstrap();
    match std::env::var("POSTBACK_TEST_KAFKA_DIR") {
        Ok(d) => PathBuf::from(d),
        Err(_) => OWN_DIR.get().expect("a broker of our own").clone(),
    }
}

/// The bootstrap address of the test broker.
pub fn bootstrap() -> &'static str {
    BROKER.get_or_init(|| {
        if let Ok(b) = std::env::var("POSTBACK_TEST_BOOTSTRAP") {
            return b;
        }
        let dir = std::env::temp_dir().join(format!("postback-it-kafka-{}", std::process::id()));
        let out = Command::new(script())
            .arg("start")
            .arg("--dir")
            .arg(&dir)
            .arg("--secure")
            .output()
            .expect("run scripts/kafka");
        assert!(out.status.success(), "scripts/kafka start failed: {}", String::from_utf8_lossy(&out.stderr));
        OWN_DIR.set(dir).expect("once");
        // SAFETY: registering a plain extern "C" fn with no captured state
        unsafe { libc::atexit(stop_own_broker) };
        String::from_utf8(out.stdout).expect("utf-8").trim().to_owned()
    })
}

pub fn client_at(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c
}

pub fn create_topic(name: &str, partitions: i32) {
    create_topic_at(bootstrap(), name, partitions);
}

pub fn create_topic_at(bootstrap: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = client_at(bootstrap).create().expect("admin client");
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let res = futures::executor::block_on(admin.create_topics([&topic], &AdminOptions::new())).expect("create topics");
    for r in res {
        if let Err((name, code)) = r {
            panic!("create topic {name}: {code}");
        }
    }
}

/// A plain producer; `send` picks the partition explicitly.
pub struct TestProducer(BaseProducer);

impl TestProducer {
    pub fn new() -> TestProducer {
        TestProducer::at(bootstrap())
    }

    pub fn at(bootstrap: &str) -> TestProducer {
        TestProducer::compressed(bootstrap, "none")
    }

    /// A producer whose record batches are compressed with `codec`
    /// (none, gzip, snappy, lz4, zstd).
    pub fn compressed(bootstrap: &str, codec: &str) -> TestProducer {
        // as large as the broker takes (its default message.max.bytes), so
        // tests can send records librdkafka's own default would refuse
        let c = client_at(bootstrap)
            .set("linger.ms", "1")
            .set("message.max.bytes", "1048576")
            .set("compression.type", codec)
            .create();
        TestProducer(c.expect("producer"))
    }

    pub fn send(&self, topic: &str, partition: i32, key: &[u8], value: &[u8]) {
        let mut rec = BaseRecord::to(topic).partition(partition).key(key).payload(value);
        loop {
            match self.0.send(rec) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(_), back)) => {
                    rec = back;
                    self.0.poll(Duration::from_millis(10));
                }
                Err((e, _)) => panic!("produce: {e}"),
            }
        }
    }

    pub fn flush(&self) {
        self.0.flush(Duration::from_secs(30)).expect("flush");
    }
}

/// One record read back, with its headers.
#[derive(Debug, Clone)]
pub struct Read {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub headers: HashMap<String, String>,
}

/// Every committed record of `topic`, partition by partition to the end.
pub fn read_all(topic: &str) -> Vec<Read> {
    read_all_at(bootstrap(), topic)
}

pub fn read_all_at(bootstrap: &str, topic: &str) -> Vec<Read> {
    let (out, complete) = read_until_end(bootstrap, topic);
    assert!(complete, "reading {topic} did not reach the end of every partition");
    out
}

/// Every committed record of `topic`, and whether the read reached the end
/// of every partition within its deadline: a transaction left open (the
/// broker just came back from an outage) holds a read_committed reader
/// short of the end until it is aborted or committed.
pub fn read_until_end(bootstrap: &str, topic: &str) -> (Vec<Read>, bool) {
    let consumer: BaseConsumer = client_at(bootstrap)
        .set("group.id", "postback-it-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
    let partitions = md.topics()[0].partitions().len() as i32;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut eof = 0;
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while eof < partitions && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|x| {
                                (x.key.to_owned(), String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Read {
                    key: m.key().unwrap_or_default().to_vec(),
                    value: m.payload().unwrap_or_default().to_vec(),
                    headers,
                });
            }
            Some(Err(KafkaError::PartitionEOF(_))) => eof += 1,
            // a broker that was just paused shows as transient errors: the deadline bounds them
            Some(Err(e)) => eprintln!("read {topic}: {e}"),
            None => {}
        }
    }
    (out, eof == partitions)
}

/// A broker of the test's own, for tests that pause or stop it (the shared
/// one serves every other test at the same time). Stopped on drop.
pub struct OwnBroker {
    pub bootstrap: String,
    dir: PathBuf,
}

impl OwnBroker {
    pub fn start(name: &str) -> OwnBroker {
        let dir = std::env::temp_dir().join(format!("postback-it-{name}-{}", std::process::id()));
        let out = Command::new(script()).arg("start").arg("--dir").arg(&dir).output().expect("run scripts/kafka");
        assert!(out.status.success(), "scripts/kafka start failed: {}", String::from_utf8_lossy(&out.stderr));
        OwnBroker { bootstrap: String::from_utf8(out.stdout).expect("utf-8").trim().to_owned(), dir }
    }

    /// SIGSTOP: the broker is there but answers nothing, like a machine
    /// that hangs or a network that drops everything.
    pub fn pause(&self) {
        super::proc::signal_pid_file(&self.dir, libc::SIGSTOP);
    }

    pub fn resume(&self) {
        super::proc::signal_pid_file(&self.dir, libc::SIGCONT);
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| self.resume());
        let _ = Command::new(script()).arg("stop").arg("--dir").arg(&self.dir).status();
    }
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    false
}

/// Grows `topic` to `partitions` partitions (`kafka-topics --alter`).
pub fn add_partitions_at(bootstrap: &str, name: &str, partitions: usize) {
    let admin: AdminClient<DefaultClientContext> = client_at(bootstrap).create().expect("admin client");
    let grow = rdkafka::admin::NewPartitions::new(name, partitions);
    let res = futures::executor::block_on(admin.create_partitions([&grow], &AdminOptions::new())).expect("alter");
    for r in res {
        if let Err((name, code)) = r {
            panic!("add partitions to {name}: {code}");
        }
    }
}

/// One setting of a topic as the broker describes it (`retention.ms`).
pub fn topic_config(topic: &str, key: &str) -> Option<String> {
    let admin: AdminClient<DefaultClientContext> = client_at(bootstrap()).create().expect("admin client");
    let spec = rdkafka::admin::ResourceSpecifier::Topic(topic);
    let res = futures::executor::block_on(admin.describe_configs([&spec], &AdminOptions::new())).expect("describe");
    let resource = res.into_iter().next()?.ok()?;
    resource.get(key).and_then(|e| e.value.clone())
}

/// Deletes `topic` and waits until the broker no longer lists it.
pub fn delete_topic(topic: &str) {
    let admin: AdminClient<DefaultClientContext> = client_at(bootstrap()).create().expect("admin client");
    let res = futures::executor::block_on(admin.delete_topics(&[topic], &AdminOptions::new())).expect("delete topics");
    for r in res {
        if let Err((name, code)) = r {
            panic!("delete topic {name}: {code}");
        }
    }
    let consumer: BaseConsumer = client_at(bootstrap()).create().expect("consumer");
    let gone = wait_until(Duration::from_secs(30), || {
        consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .is_ok_and(|md| md.topics().first().is_none_or(|t| t.error().is_some() || t.partitions().is_empty()))
    });
    assert!(gone, "{topic} still listed after its deletion");
}
