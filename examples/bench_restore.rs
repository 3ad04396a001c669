//! Restore benchmark (run by `scripts/bench-process` after the processing
//! benchmark, on the same broker):
//!
//! 1. produce a changelog partition of KEYS distinct keys (one record per
//!    key, values the size of a device state), transactionally, as the
//!    processor writes it;
//! 2. baseline: a `read_committed` consumer with the restore's own client
//!    settings reads the partition to its end and does nothing;
//! 3. the restore the processor runs when a partition is assigned to an
//!    empty state directory: the same partition into an empty RocksDB
//!    store, records/s from start to done.
//!
//! Usage: bench_restore BOOTSTRAP [KEYS]

mod common;

use common::{client, create_topic, send_waiting};
use postback::config;
use postback::kafka::client::restore_consumer;
use postback::process::restore::{self, RestoreJob};
use postback::process::{Part, Stage};
use postback::store::RocksStore;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// The size of a device state record with one attribution (measured on the
/// generator's stream: 150–260 bytes).
const VALUE_BYTES: usize = 200;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bootstrap = args.get(1).expect("usage: bench_restore BOOTSTRAP [KEYS]").clone();
    let keys: usize = args.get(2).map_or(1_000_000, |s| s.parse().expect("KEYS"));
    postback::telemetry::logging::init(postback::telemetry::logging::LogFormat::Text, "warn");
    let topic = format!("bench-restore-{}.device-changelog", std::process::id());
    create_topic(&bootstrap, &topic, 1);
    let t = Instant::now();
    produce(&bootstrap, &topic, keys);
    eprintln!("produced {keys} changelog records in {:.1}s", t.elapsed().as_secs_f64());

    let config = bench_config(&bootstrap);
    let raw = raw_rate(&restore_consumer(&config), &topic, keys);
    eprintln!("raw read_committed consume: {raw:.0} records/s");

    let dir = tempfile::tempdir().expect("tempdir");
    let store = RocksStore::open(&dir.path().join("device-0")).expect("store");
    let (tx, rx) = std::sync::mpsc::channel();
    let job = RestoreJob {
        part: Part::new(Stage::Device, 0),
        changelog: topic.clone(),
        store: Box::new(store),
        client: restore_consumer(&config),
        cancel: Arc::new(AtomicBool::new(false)),
    };
    let t = Instant::now();
    restore::spawn(job, tx).expect("restore thread");
    let done = rx.recv().expect("restore report");
    let secs = t.elapsed().as_secs_f64();
    done.result.expect("restore succeeds");
    assert_eq!(done.records, keys as u64, "every record restored");
    let check = done.store.get_many(&[key(0).as_slice(), key(keys - 1).as_slice()]).expect("read back");
    assert!(check.iter().all(Option::is_some), "first and last key in the store");
    let rate = keys as f64 / secs;
    println!("restore_keys={keys} value_bytes={VALUE_BYTES}");
    println!("raw_changelog_consume_records_per_s={raw:.0}");
    println!("restore_records_per_s={rate:.0}");
    println!("restore_ratio_to_raw={:.2}", rate / raw);
}

fn key(i: usize) -> Vec<u8> {
    format!("game-ios:dev-{i:09}").into_bytes()
}

/// One transactional producer writing every key once, in transactions of
/// 20,000 records (as the processor's batches do).
fn produce(bootstrap: &str, topic: &str, keys: usize) {
    let p: BaseProducer = client(bootstrap)
        .set("transactional.id", format!("{topic}-writer"))
        .set("linger.ms", "20")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    p.init_transactions(Duration::from_secs(30)).expect("init_transactions");
    let mut value = vec![0u8; VALUE_BYTES];
    for (chunk, start) in (0..keys).step_by(20_000).enumerate() {
        p.begin_transaction().expect("begin");
        for i in start..(start + 20_000).min(keys) {
            // bytes that differ per key, so lz4 cannot shrink the topic to nothing
            for (j, b) in value.iter_mut().enumerate() {
                *b = (i.wrapping_mul(31).wrapping_add(j * 7) % 251) as u8;
            }
            let k = key(i);
            send_waiting(&p, BaseRecord::to(topic).partition(0).key(&k).payload(&value));
        }
        p.commit_transaction(Duration::from_secs(60)).unwrap_or_else(|e| panic!("commit {chunk}: {e}"));
    }
}

/// Reads the partition to its end with `client`'s settings, doing nothing.
fn raw_rate(client: &rdkafka::ClientConfig, topic: &str, keys: usize) -> f64 {
    let consumer: BaseConsumer = client.create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let t = Instant::now();
    let mut count = 0usize;
    loop {
        match consumer.poll(Duration::from_secs(5)) {
            Some(Ok(m)) => {
                std::hint::black_box((m.key(), m.payload()));
                count += 1;
            }
            Some(Err(KafkaError::PartitionEOF(_))) if count >= keys => break,
            _ => {}
        }
    }
    count as f64 / t.elapsed().as_secs_f64()
}

fn bench_config(bootstrap: &str) -> config::Config {
    let text = format!(
        "[kafka]\nbootstrap_servers = \"{bootstrap}\"\ngroup_id = \"bench-restore\"\n\n[[apps]]\nid = \"game-ios\"\nplatform = \"mobile\"\n"
    );
    config::load_str(&text, Path::new("bench-restore.toml"), Vec::<(String, String)>::new()).expect("bench config")
}
