//! Helpers both end-to-end benchmarks use (not an example of its own).

use rdkafka::ClientConfig;

/// A client of the benchmark's broker, with nothing else set.
pub fn client(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c
}

/// Creates `topic` with `partitions` partitions (replication 1).
pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<_> = client(bootstrap).create().expect("admin");
    let t = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    futures::executor::block_on(admin.create_topics([&t], &AdminOptions::new())).expect("create topic");
}

/// Queues `rec`, waiting while the producer's queue is full.
pub fn send_waiting<K, P>(p: &rdkafka::producer::BaseProducer, mut rec: rdkafka::producer::BaseRecord<'_, K, P>)
where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    use rdkafka::error::KafkaError;
    loop {
        match p.send(rec) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(_), back)) => {
                rec = back;
                p.poll(std::time::Duration::from_millis(5));
            }
            Err((e, _)) => panic!("produce: {e}"),
        }
    }
}
