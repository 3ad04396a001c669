//! The processor's transactional producer. Its delivery callback records
//! the offset of every changelog record, so after a commit the stores can
//! note which changelog offset they reflect (where a restore starts).

use super::records::{OutRecord, OutTopic};
use crate::config::Config;
use crate::kafka::context::log_rdkafka;
use crate::store::StoreKind;
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

pub struct TxnContext {
    /// (store, partition) -> highest changelog offset delivered.
    changelog_offsets: Mutex<HashMap<(StoreKind, i32), i64>>,
}

impl ClientContext for TxnContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        log_rdkafka(level, fac, message);
    }
}

/// Delivery opaque: which changelog a record belongs to (0: none).
const NOT_CHANGELOG: usize = 0;
const DEVICE_CHANGELOG: usize = 1;
const USER_CHANGELOG: usize = 2;

impl ProducerContext for TxnContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, which: usize) {
        match result {
            Ok(msg) if which != NOT_CHANGELOG => {
                let kind = if which == DEVICE_CHANGELOG { StoreKind::Device } else { StoreKind::User };
                let mut offsets = self.changelog_offsets.lock().expect("offsets lock");
                let slot = offsets.entry((kind, msg.partition())).or_insert(-1);
                *slot = (*slot).max(msg.offset());
            }
            Ok(_) => {}
            // the transaction's commit fails for it; this is for the log
            Err((e, msg)) => {
                tracing::warn!(topic = msg.topic(), partition = msg.partition(), error = %e, "delivery failed")
            }
        }
    }
}

/// Output topic names, resolved once.
pub struct Topics {
    pub jobs: String,
    pub user_activity: String,
    pub device_changelog: String,
    pub user_changelog: String,
    pub events_dlq: String,
}

impl Topics {
    pub fn new(config: &Config) -> Topics {
        let t = &config.topics;
        Topics {
            jobs: t.jobs.clone(),
            user_activity: t.user_activity.clone(),
            device_changelog: t.device_changelog.clone(),
            user_changelog: t.user_changelog.clone(),
            events_dlq: t.events_dlq.clone(),
        }
    }

    fn name(&self, topic: OutTopic) -> (&str, usize) {
        match topic {
            OutTopic::Jobs => (&self.jobs, NOT_CHANGELOG),
            OutTopic::UserActivity => (&self.user_activity, NOT_CHANGELOG),
            OutTopic::DeviceChangelog => (&self.device_changelog, DEVICE_CHANGELOG),
            OutTopic::UserChangelog => (&self.user_changelog, USER_CHANGELOG),
            OutTopic::EventsDlq => (&self.events_dlq, NOT_CHANGELOG),
        }
    }
}

pub struct TxnProducer {
    pub inner: BaseProducer<TxnContext>,
    topics: Topics,
}

impl TxnProducer {
    pub fn new(client: &ClientConfig, topics: Topics) -> KafkaResult<TxnProducer> {
        let inner = client.create_with_context(TxnContext { changelog_offsets: Mutex::new(HashMap::new()) })?;
        Ok(TxnProducer { inner, topics })
    }

    /// Queues one record; waits for room when librdkafka's queue is full.
    pub fn send(&self, rec: &OutRecord) -> KafkaResult<()> {
        let (topic, which) = self.topics.name(rec.topic);
        let headers = rec.dlq.as_ref().map(|d| {
            let partition = d.source_partition.to_string();
            let offset = d.source_offset.to_string();
            OwnedHeaders::new()
                .insert(Header { key: "error", value: Some(d.error.as_bytes()) })
                .insert(Header { key: "source-topic", value: Some(d.source_topic.as_bytes()) })
                .insert(Header { key: "source-partition", value: Some(partition.as_bytes()) })
                .insert(Header { key: "source-offset", value: Some(offset.as_bytes()) })
        });
        let mut record = BaseRecord::with_opaque_to(topic, which).partition(rec.partition).payload(&rec.value);
        if !rec.key.is_empty() {
            record = record.key(&rec.key);
        }
        if let Some(h) = headers {
            record = record.headers(h);
        }
        loop {
            match self.inner.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.inner.poll(Duration::from_millis(50));
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// Changelog offsets delivered since the last call: (store, partition)
    /// -> highest offset.
    pub fn take_changelog_offsets(&self) -> HashMap<(StoreKind, i32), i64> {
        std::mem::take(&mut *self.inner.context().changelog_offsets.lock().expect("offsets lock"))
    }
}
