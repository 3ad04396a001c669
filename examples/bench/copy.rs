//! The floor of any exactly-once processor on this broker: consume the
//! topic and, per batch, produce records and commit the consumed offsets in
//! a Kafka transaction — no decoding, no state, no rules. Batches are cut
//! like the processor's (whatever arrived, up to 20,000 records), so the
//! ratio to it is what postback's own work costs.
//!
//! Two copies: one record out per event (the cost of transactions alone),
//! and a *volume* copy that writes, spread evenly over the events, the very
//! records (topics, partitions, keys, bytes) a processor run wrote — the
//! floor for postback's output, which is several records per event.

use crate::common::{client, create_topic};
use postback::kafka::deliver::deliver_all;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const MAX_BATCH: usize = 20_000;

/// Copies `n` records of `topic` (8 partitions) transactionally, one record
/// out per record in; events/s.
pub fn eos_copy_rate(bootstrap: &str, topic: &str, partitions: i32, n: usize) -> f64 {
    let out = format!("{topic}.copy");
    create_topic(bootstrap, &out, partitions);
    transactional_copy(bootstrap, topic, partitions, n, "copy", |m, producer| {
        let mut rec = BaseRecord::to(&out).partition(m.partition()).payload(m.payload().unwrap_or_default());
        if let Some(k) = m.key() {
            rec = rec.key(k);
        }
        send(producer, rec);
    })
}

/// One record read: the index of its topic, its partition, key, value.
type Written = (usize, i32, Option<Vec<u8>>, Vec<u8>);

/// Records a processor run wrote, in the order they were read.
pub struct Outputs {
    /// Source topics, with their partition counts.
    topics: Vec<(String, i32)>,
    records: Vec<Written>,
    pub bytes: usize,
}

impl Outputs {
    pub fn len(&self) -> usize {
        self.records.len()
    }
}

/// The high watermark of every partition of `topics`: where a later
/// [`read_outputs`] stops (records written after it are not the run's).
pub fn watermarks(bootstrap: &str, topics: &[String]) -> HashMap<(String, i32), i64> {
    let consumer: BaseConsumer = client(bootstrap).set("group.id", "bench-watermarks").create().expect("consumer");
    let mut ends = HashMap::new();
    for topic in topics {
        for p in 0..partitions_of(&consumer, topic) {
            let (_, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).expect("watermarks");
            ends.insert((topic.clone(), p), high);
        }
    }
    ends
}

/// Reads the committed records of every partition in `ends` from its start
/// up to its end there.
pub fn read_outputs(bootstrap: &str, ends: &HashMap<(String, i32), i64>) -> Outputs {
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", "bench-outputs")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut topics: Vec<(String, i32)> = Vec::new();
    let mut tpl = TopicPartitionList::new();
    for (topic, p) in ends.keys() {
        if !topics.iter().any(|(t, _)| t == topic) {
            topics.push((topic.clone(), partitions_of(&consumer, topic)));
        }
        tpl.add_partition_offset(topic, *p, Offset::Beginning).expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut open: Vec<(String, i32)> = ends.iter().filter(|(_, end)| **end > 0).map(|(k, _)| k.clone()).collect();
    let mut out = Outputs { topics, records: Vec::new(), bytes: 0 };
    let mut idle_since = Instant::now();
    while !open.is_empty() {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let (topic, p) = (m.topic(), m.partition());
                if m.offset() < ends[&(topic.to_owned(), p)] {
                    let index = out.topics.iter().position(|(t, _)| t == topic).expect("a read topic");
                    let (key, value) = (m.key().map(<[u8]>::to_vec), m.payload().unwrap_or_default().to_vec());
                    out.bytes += key.as_ref().map_or(0, Vec::len) + value.len();
                    out.records.push((index, p, key, value));
                }
                idle_since = Instant::now();
                continue;
            }
            None => {}
            Some(Err(e)) => panic!("reading outputs: {e}"),
        }
        // nothing more for now: every partition whose fetch position has
        // reached its end is done (its last offsets can be commit markers,
        // which are never delivered as records)
        let positions = consumer.position().expect("position");
        open.retain(|(t, p)| {
            let at = positions.find_partition(t, *p).map(|e| e.offset());
            !matches!(at, Some(Offset::Offset(o)) if o >= ends[&(t.clone(), *p)])
        });
        assert!(idle_since.elapsed() < Duration::from_secs(30), "reading outputs: {} partitions stuck", open.len());
    }
    out
}

/// Consumes `n` events of `topic` and writes `outputs`' records, spread
/// evenly (after the k-th event, k/n of them), to copies of their topics;
/// events/s.
pub fn eos_volume_copy_rate(bootstrap: &str, topic: &str, partitions: i32, n: usize, outputs: &Outputs) -> f64 {
    let names: Vec<String> = outputs.topics.iter().map(|(t, _)| format!("{t}.volume")).collect();
    for (name, (_, count)) in names.iter().zip(&outputs.topics) {
        create_topic(bootstrap, name, *count);
    }
    let (mut consumed, mut written) = (0usize, 0usize);
    transactional_copy(bootstrap, topic, partitions, n, "volume", |_, producer| {
        consumed += 1;
        // the topic can hold more than n events (the latency phases'): the
        // rate counts them, the outputs are all written by the n-th
        let due = (outputs.len() * consumed / n).min(outputs.len());
        for (index, partition, key, value) in &outputs.records[written..due] {
            let mut rec = BaseRecord::to(&names[*index]).partition(*partition).payload(value.as_slice());
            if let Some(k) = key {
                rec = rec.key(k.as_slice());
            }
            send(producer, rec);
        }
        written = due;
    })
}

/// The copy loop: poll what arrived (up to `MAX_BATCH`), `each` produces
/// for every consumed record, then the offsets and the commit.
fn transactional_copy(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    n: usize,
    name: &str,
    mut each: impl FnMut(&BorrowedMessage<'_>, &BaseProducer),
) -> f64 {
    let group = format!("{topic}.{name}-group");
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("copy consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let producer: BaseProducer = client(bootstrap)
        .set("transactional.id", format!("{topic}.{name}"))
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .create()
        .expect("copy producer");
    producer.init_transactions(Duration::from_secs(30)).expect("init_transactions");
    let mut copied = 0;
    let mut started: Option<Instant> = None;
    while copied < n {
        let Some(first) = consumer.poll(Duration::from_millis(100)) else { continue };
        started.get_or_insert_with(Instant::now);
        producer.begin_transaction().expect("begin");
        let mut next: HashMap<i32, i64> = HashMap::new();
        let mut batch = 0;
        let mut record = Some(first);
        while let Some(Ok(m)) = record {
            each(&m, &producer);
            next.insert(m.partition(), m.offset() + 1);
            batch += 1;
            record = if batch < MAX_BATCH { consumer.poll(Duration::ZERO) } else { None };
        }
        let mut offsets = TopicPartitionList::new();
        for (p, o) in &next {
            offsets.add_partition_offset(topic, *p, Offset::Offset(*o)).expect("offsets");
        }
        let meta = consumer.group_metadata().expect("group metadata");
        producer.send_offsets_to_transaction(&offsets, &meta, Duration::from_secs(30)).expect("send offsets");
        // as the processor does: acknowledgements served in 1 ms steps, not
        // in flush's 100 ms ones, so the floor is not a commit's fixed wait
        deliver_all(&producer, Duration::from_secs(60)).expect("deliver");
        producer.commit_transaction(Duration::from_secs(60)).expect("commit");
        copied += batch;
    }
    copied as f64 / started.expect("records").elapsed().as_secs_f64()
}

/// Queues `rec`, serving acknowledgements while the queue is full.
fn send(producer: &BaseProducer, mut rec: BaseRecord<'_, [u8], [u8]>) {
    while let Err((_, back)) = producer.send(rec) {
        rec = back;
        producer.poll(Duration::from_millis(5));
    }
}

fn partitions_of(consumer: &BaseConsumer, topic: &str) -> i32 {
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
    md.topics()[0].partitions().len() as i32
}
