//! A topic partition by name, as the stages keep them in maps and events
//! (rdkafka's `TopicPartitionList` is for calls into librdkafka).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition { topic: topic.into(), partition }
    }

    /// Every partition of `list`.
    pub fn all_of(list: &rdkafka::TopicPartitionList) -> Vec<TopicPartition> {
        list.elements().iter().map(|e| TopicPartition::new(e.topic(), e.partition())).collect()
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}
