//! librdkafka settings for every client postback creates. Each setting is
//! commented where it is set; `[kafka.client]` from the config goes last so
//! an operator can override any of them.

use crate::config::Config;
use rdkafka::ClientConfig;

/// Settings shared by every client.
pub fn base(config: &Config) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.kafka.bootstrap_servers);
    c.set("client.id", format!("postback-{}", config.instance_id()));
    for (k, v) in &config.kafka.client {
        c.set(k, v);
    }
    c
}

/// The processing stage's consumer (docs/design.md §3.2): a group consumer whose
/// offsets are committed through the producer's transaction.
/// `static_ok` is false where a static member's cached assignment could
/// miss partitions (see the processor's runner).
pub fn processor_consumer(config: &Config, static_ok: bool) -> ClientConfig {
    let mut c = group_settings(base(config), &config.kafka.group_id);
    // per topic: each member gets its share of the input *and* of the user
    // activity. cooperative-sticky balances only the count over both
    // topics, and measured a second instance taking all 8 user-activity
    // partitions and none of the input: no device-stage work to share.
    // range is eager (every rebalance revokes everything); stores that
    // stay with the member are kept open across it (see `Partitions`)
    c.set("partition.assignment.strategy", "range");
    if config.kafka.static_membership && static_ok {
        // a restarted pod rejoins as itself: no rebalance on rolling restarts
        c.set("group.instance.id", config.instance_id());
    }
    // an input that grows is noticed (and its new partitions assigned)
    // within seconds, not librdkafka's default 5 minutes
    c.set("topic.metadata.refresh.interval.ms", "10000");
    override_client(&mut c, config, Role::Consumer);
    c
}

/// The processor's reader of the device repartition topic: partitions are
/// assigned by the processor itself (the owner of a device state partition
/// reads its repartition partition), offsets go through the transaction
/// under the group's metadata, so this client never joins or commits.
pub fn repartition_consumer(config: &Config) -> ClientConfig {
    let mut c = base(config);
    c.set("group.id", format!("{}-repartition", config.kafka.group_id))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest");
    override_client(&mut c, config, Role::Consumer);
    c
}

/// What every group consumer of postback sets.
fn group_settings(mut c: ClientConfig, group: &str) -> ClientConfig {
    c.set("group.id", group)
        // only committed records: jobs, user activity and changelogs are
        // written transactionally, and an aborted batch must never be seen
        .set("isolation.level", "read_committed")
        // offsets are committed by postback (transaction or explicit commit)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // incremental rebalances: partitions that stay are not interrupted
        // (the processor sets its own, below)
        .set("partition.assignment.strategy", "cooperative-sticky")
        // consumer lag per partition arrives through the statistics callback
        .set("statistics.interval.ms", "5000");
    c
}

/// The processing stage's transactional producer (one per process).
pub fn transactional_producer(config: &Config) -> ClientConfig {
    let mut c = base(config);
    // stable across restarts: init_transactions of the new incarnation aborts
    // what the old one left open instead of waiting for the timeout
    c.set("transactional.id", format!("{}-{}", config.kafka.group_id, config.instance_id()))
        .set("enable.idempotence", "true")
        .set("transaction.timeout.ms", "60000")
        // batching: one transaction carries thousands of small records
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .set("compression.type", "lz4");
    override_client(&mut c, config, Role::Producer);
    c
}

/// A consumer that reads one changelog partition from an offset to its end.
pub fn restore_consumer(config: &Config) -> ClientConfig {
    let mut c = base(config);
    // assign() only, never commits: the group id is required but unused
    c.set("group.id", format!("{}-restore", config.kafka.group_id))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        // the end of the partition tells the restore it is done
        .set("enable.partition.eof", "true")
        // a restore reads one partition as fast as the store takes it: when
        // its local queue is full, fetch again soon rather than after the
        // default 1 s back-off (restore of 1M records: 140-190k -> 550-700k/s)
        .set("fetch.queue.backoff.ms", "20");
    override_client(&mut c, config, Role::Consumer);
    c
}

/// A plain idempotent producer (sender outcomes, DLQ replay, tests).
pub fn producer(config: &Config) -> ClientConfig {
    let mut c = base(config);
    c.set("enable.idempotence", "true").set("linger.ms", "5").set("compression.type", "lz4");
    override_client(&mut c, config, Role::Producer);
    c
}

/// A consumer in `group` (the sender stage), committing explicitly.
pub fn consumer(config: &Config, group: &str) -> ClientConfig {
    let mut c = group_settings(base(config), group);
    override_client(&mut c, config, Role::Consumer);
    c
}

enum Role {
    Consumer,
    Producer,
}

/// The operator's `[kafka.client]` and per-role settings win over ours.
fn override_client(c: &mut ClientConfig, config: &Config, role: Role) {
    let specific = match role {
        Role::Consumer => &config.kafka.consumer,
        Role::Producer => &config.kafka.producer,
    };
    for (k, v) in config.kafka.client.iter().chain(specific) {
        c.set(k, v);
    }
}
