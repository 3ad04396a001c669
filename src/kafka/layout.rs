//! The state layout: which generation of the processor's state topics is
//! in use and how many partitions each stage's state has. Generation 0 is
//! the configured topic names; `postback state rescale` writes the state
//! into topics of the next generation (`<name>.g<N>`) and then records the
//! new generation here — one record in a compacted topic, written last, so
//! an interrupted rescale leaves the previous layout in force.

use super::admin::{self, AdminError};
use super::client;
use super::context::QuietContext;
use crate::config::{Config, TopicsConfig};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

const KEY: &[u8] = b"layout";
const TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateLayout {
    pub generation: u32,
    pub device_partitions: i32,
    pub user_partitions: i32,
    /// How user state is keyed. Records written before projects existed
    /// have no such field: their users are keyed by app.
    #[serde(default)]
    pub user_keys: UserKeys,
    /// The project of every app whose users the state holds: moving an app
    /// to another project would orphan its users, so a start refuses it.
    #[serde(default)]
    pub projects: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserKeys {
    /// `app:user`, before projects; `state rescale` re-keys it.
    #[default]
    App,
    /// `project:user`.
    Project,
}

/// The configured app → project map.
pub fn projects_of(config: &Config) -> BTreeMap<String, String> {
    config.rules.apps().map(|a| (a.id.clone(), a.project.clone())).collect()
}

/// A state topic's name in `generation`.
pub fn topic_name(base: &str, generation: u32) -> String {
    if generation == 0 { base.to_owned() } else { format!("{base}.g{generation}") }
}

/// The configured topics with the state topics of `generation`: the two
/// changelogs and the two repartition topics.
pub fn topics_of(topics: &TopicsConfig, generation: u32) -> TopicsConfig {
    let mut t = topics.clone();
    for name in [&mut t.device_changelog, &mut t.device_events, &mut t.user_changelog, &mut t.user_activity] {
        *name = topic_name(name, generation);
    }
    t
}

/// The recorded layout, or `None` before the first rescale.
pub fn read(config: &Config) -> Result<Option<StateLayout>, AdminError> {
    let topic = &config.topics.layout;
    let consumer: BaseConsumer<QuietContext> =
        client::restore_consumer(config).create_with_context(QuietContext).map_err(AdminError::Kafka)?;
    let probe = admin::reach(config)?;
    if admin::partitions(&probe, topic)?.is_none() {
        return Ok(None);
    }
    let (low, high) = consumer.fetch_watermarks(topic, 0, TIMEOUT)?;
    if high <= low {
        return Ok(None);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(low))?;
    consumer.assign(&tpl)?;
    let mut last = None;
    loop {
        match consumer.poll(TIMEOUT) {
            None => return Err(AdminError::Kafka(KafkaError::Canceled)),
            Some(Err(KafkaError::PartitionEOF(_))) => break,
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(m)) if m.key() == Some(KEY) => last = m.payload().map(<[u8]>::to_vec),
            Some(Ok(_)) => {}
        }
    }
    let Some(bytes) = last else { return Ok(None) };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| AdminError::Layout(format!("topic '{topic}' holds a layout record that does not parse: {e}")))
}

/// Records `layout` (creating the layout topic when missing).
pub fn write(config: &Config, layout: &StateLayout) -> Result<(), AdminError> {
    admin::ensure_compacted(config, &config.topics.layout, 1)?;
    let producer: BaseProducer = client::producer(config).create()?;
    let value = serde_json::to_vec(layout).expect("a layout serialises");
    producer
        .send(BaseRecord::to(&config.topics.layout).partition(0).key(KEY).payload(&value))
        .map_err(|(e, _)| AdminError::Kafka(e))?;
    producer.flush(TIMEOUT)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_name_their_state_topics() {
        let t = TopicsConfig::default();
        assert_eq!(topics_of(&t, 0).device_changelog, "postback.device-state-changelog");
        let g2 = topics_of(&t, 2);
        assert_eq!(
            [g2.device_changelog, g2.device_events, g2.user_changelog, g2.user_activity],
            [
                "postback.device-state-changelog.g2",
                "postback.device-events.g2",
                "postback.user-state-changelog.g2",
                "postback.user-activity.g2"
            ]
        );
        assert_eq!(g2.events, "tracker.events", "the input and outputs keep their names");
    }
}
