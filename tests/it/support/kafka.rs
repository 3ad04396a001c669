//! The real broker for integration tests: `POSTBACK_TEST_BOOTSTRAP` when
//! `make test` started one, else this test binary starts its own with
//! `scripts/kafka` and stops it when the binary exits; and the clients of
//! `tests/support/clients.rs` pointed at it.

pub use super::clients::*;
use rdkafka::admin::AdminClient;
use rdkafka::admin::AdminOptions;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

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

impl TestProducer {
    pub fn new() -> TestProducer {
        TestProducer::at(bootstrap())
    }
}

pub fn create_topic(name: &str, partitions: i32) {
    create_topic_at(bootstrap(), name, partitions);
}

/// Every committed record of `topic`, partition by partition to the end.
pub fn read_all(topic: &str) -> Vec<Read> {
    read_all_at(bootstrap(), topic)
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
