//! Kafka clients for tests, at any bootstrap address: librdkafka's mock
//! cluster or a real broker. Nothing here finds or starts a broker (that
//! is `tests/it/support/kafka.rs`), so the tests that need none cannot
//! reach one by accident.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub fn client_at(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c
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
