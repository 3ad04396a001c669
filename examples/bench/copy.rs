//! The floor of any exactly-once processor on this broker: consume the
//! topic and, per batch, produce one record per event and commit the
//! consumed offsets in a Kafka transaction — no decoding, no state, no
//! rules. Batches are cut like the processor's (whatever arrived, up to
//! 20,000 records), so the ratio to it is what postback's own work costs.

use crate::common::{client, create_topic};
use postback::kafka::deliver::deliver_all;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const MAX_BATCH: usize = 20_000;

/// Copies `n` records of `topic` (8 partitions) transactionally; events/s.
pub fn eos_copy_rate(bootstrap: &str, topic: &str, partitions: i32, n: usize) -> f64 {
    let out = format!("{topic}.copy");
    create_topic(bootstrap, &out, partitions);
    let group = format!("{topic}.copy-group");
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
        .set("transactional.id", format!("{topic}.copy"))
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
            let mut rec = BaseRecord::to(&out).partition(m.partition()).payload(m.payload().unwrap_or_default());
            if let Some(k) = m.key() {
                rec = rec.key(k);
            }
            while let Err((_, back)) = producer.send(rec) {
                rec = back;
                producer.poll(Duration::from_millis(5));
            }
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
