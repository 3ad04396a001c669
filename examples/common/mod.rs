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

/// CPU seconds (user + system) of this process's threads whose name starts
/// with `prefix`, from `/proc/self/task/*/stat` (Linux; 0 elsewhere).
#[allow(dead_code)] // not every benchmark reports it
pub fn thread_cpu_secs(prefix: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    tasks
        .filter_map(Result::ok)
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with(prefix)))
        .map(|t| cpu_secs(&t.path().join("stat")))
        .sum()
}

/// CPU seconds (user + system) of the whole process so far.
#[allow(dead_code)] // not every benchmark reports it
pub fn process_cpu_secs() -> f64 {
    cpu_secs(std::path::Path::new("/proc/self/stat"))
}

/// utime + stime of a `/proc/.../stat` file, in seconds.
#[allow(dead_code)] // used through the two above
fn cpu_secs(stat: &std::path::Path) -> f64 {
    let stat = std::fs::read_to_string(stat).unwrap_or_default();
    // fields after the parenthesised name: state is field 3, utime 14, stime 15
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // USER_HZ is 100 on Linux
    (field(14) + field(15)) as f64 / 100.0
}
