//! Kafka plumbing: client settings, topic administration, the consumer
//! group context, and the murmur2 partitioner.

pub mod admin;
pub mod client;
pub mod connect;
pub mod context;
pub mod deliver;
pub mod layout;
pub mod murmur2;
pub mod partition;
pub mod patience;

pub use murmur2::partition_for;
pub use partition::TopicPartition;
