//! The processor's transactional producer. Its delivery callback records
//! the offset of every changelog record, so after a commit the stores can
//! note which changelog offset they reflect (where a restore starts).

use crate::config::Config;
use crate::kafka::connect::log_rdkafka;
use crate::process::records::{Dest, OutRecord};
use crate::process::stage::{Part, Stage};
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
    /// Stage partition -> highest changelog offset delivered.
    changelog_offsets: Mutex<HashMap<Part, i64>>,
    /// Records not delivered since the last report: an aborted
    /// transaction purges thousands at once, so they are logged as one line.
    undelivered: Mutex<Option<Undelivered>>,
}

/// The first failed delivery and how many followed it.
struct Undelivered {
    topic: String,
    partition: i32,
    error: KafkaError,
    count: u64,
}

impl ClientContext for TxnContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        log_rdkafka(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if crate::kafka::connect::shared().record("producer", &error, reason).is_none() {
            tracing::error!(error = %error, reason, "kafka producer error");
        }
    }
}

/// Delivery opaque: 0 for records that are not changelog records, else
/// 1 + the index of the stage whose changelog it is.
fn opaque(dest: Dest) -> usize {
    match dest {
        Dest::Changelog(stage) => 1 + stage.index(),
        _ => 0,
    }
}

impl ProducerContext for TxnContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let changelog = opaque.checked_sub(1).and_then(|i| Stage::ALL.get(i).copied());
        match (result, changelog) {
            (Ok(msg), Some(stage)) => {
                let mut offsets = self.changelog_offsets.lock().expect("offsets lock");
                let slot = offsets.entry(Part::new(stage, msg.partition())).or_insert(-1);
                *slot = (*slot).max(msg.offset());
            }
            (Ok(_), None) => {}
            // the transaction's commit fails for it; this is for the log
            (Err((e, msg)), _) => {
                let mut slot = self.undelivered.lock().expect("undelivered lock");
                let first = slot.get_or_insert_with(|| Undelivered {
                    topic: msg.topic().to_owned(),
                    partition: msg.partition(),
                    error: e.clone(),
                    count: 0,
                });
                first.count += 1;
            }
        }
    }
}

/// Output topic names, resolved once.
pub struct Topics {
    jobs: String,
    jobs_dlq: String,
    dlq: String,
    inputs: [String; 2],
    repartition: String,
    changelogs: [String; 2],
}

impl Topics {
    pub fn new(config: &Config) -> Topics {
        let t = &config.topics;
        Topics {
            jobs: t.jobs.clone(),
            jobs_dlq: t.jobs_dlq.clone(),
            dlq: t.events_dlq.clone(),
            inputs: Stage::ALL.map(|s| s.input(t).to_owned()),
            repartition: t.device_events.clone(),
            changelogs: Stage::ALL.map(|s| s.changelog(t).to_owned()),
        }
    }

    fn name(&self, dest: Dest) -> &str {
        match dest {
            Dest::Jobs => &self.jobs,
            Dest::Dlq => &self.dlq,
            Dest::JobsDlq => &self.jobs_dlq,
            Dest::Input(stage) => &self.inputs[stage.index()],
            Dest::Repartition => &self.repartition,
            Dest::Changelog(stage) => &self.changelogs[stage.index()],
        }
    }
}

/// Longest a record waits for room in librdkafka's queue.
const QUEUE_FULL_WAIT: Duration = Duration::from_secs(30);

pub struct TxnProducer {
    pub inner: BaseProducer<TxnContext>,
    topics: Topics,
}

impl TxnProducer {
    pub fn new(client: &ClientConfig, topics: Topics) -> KafkaResult<TxnProducer> {
        let inner = client.create_with_context(TxnContext {
            changelog_offsets: Mutex::new(HashMap::new()),
            undelivered: Mutex::new(None),
        })?;
        Ok(TxnProducer { inner, topics })
    }

    /// Queues one record; waits for room when librdkafka's queue is full.
    pub fn send(&self, rec: &OutRecord) -> KafkaResult<()> {
        let topic = self.topics.name(rec.dest);
        let headers = (!rec.headers.is_empty()).then(|| {
            rec.headers.iter().fold(OwnedHeaders::new_with_capacity(rec.headers.len()), |h, (key, value)| {
                h.insert(Header { key, value: Some(value.as_bytes()) })
            })
        });
        let mut record =
            BaseRecord::with_opaque_to(topic, opaque(rec.dest)).partition(rec.partition).payload(&rec.value);
        if !rec.key.is_empty() {
            record = record.key(&rec.key);
        }
        if let Some(h) = headers {
            record = record.headers(h);
        }
        // a queue that stays full means the broker is not taking records:
        // fail the transaction rather than wait forever
        let deadline = std::time::Instant::now() + QUEUE_FULL_WAIT;
        loop {
            match self.inner.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if std::time::Instant::now() < deadline =>
                {
                    record = back;
                    self.inner.poll(Duration::from_millis(50));
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// Logs, as one line, the records not delivered since the last call
    /// (the failed transaction they belonged to is aborted and replayed).
    pub fn report_undelivered(&self) {
        let Some(u) = self.inner.context().undelivered.lock().expect("undelivered lock").take() else { return };
        tracing::warn!(
            records = u.count,
            first_topic = %u.topic,
            first_partition = u.partition,
            error = %u.error,
            "records of a failed transaction not delivered"
        );
    }

    /// Changelog offsets delivered since the last call: stage partition ->
    /// highest offset.
    pub fn take_changelog_offsets(&self) -> HashMap<Part, i64> {
        std::mem::take(&mut *self.inner.context().changelog_offsets.lock().expect("offsets lock"))
    }
}
