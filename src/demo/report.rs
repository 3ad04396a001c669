//! The demo's closing table, built from what reached Kafka: the jobs topic
//! and the delivery log.

use crate::codec::decode_job;
use crate::domain::Job;
use crate::kafka::context::QuietContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::time::Duration;

/// Outcomes of one (partner, postback event).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Row {
    pub jobs: u64,
    pub delivered: u64,
    /// Jobs that needed at least one retry.
    pub retried: u64,
    pub dlq: u64,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub events: usize,
    pub rows: BTreeMap<(String, String), Row>,
    pub jobs: Vec<Job>,
    pub metrics_url: String,
}

fn read(client: &ClientConfig, topic: &str) -> Result<Vec<Vec<u8>>, KafkaError> {
    let consumer: BaseConsumer<QuietContext> = client
        .clone()
        .set("group.id", "postback-demo-report")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create_with_context(QuietContext)?;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let n = md.topics().first().map_or(0, |t| t.partitions().len() as i32);
    let mut tpl = TopicPartitionList::new();
    for p in 0..n {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let (mut eof, mut out) = (0, Vec::new());
    while eof < n {
        match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(m)) => out.push(m.payload().unwrap_or_default().to_vec()),
            Some(Err(KafkaError::PartitionEOF(_))) => eof += 1,
            Some(Err(e)) => return Err(e),
            None => break,
        }
    }
    Ok(out)
}

pub fn collect(
    client: &ClientConfig,
    topics: &crate::config::TopicsConfig,
    events: usize,
    metrics_url: String,
) -> Result<Report, KafkaError> {
    let jobs: Vec<Job> = read(client, &topics.jobs)?.iter().filter_map(|v| decode_job(v).ok()).collect();
    // per job: (saw a retry, final outcome)
    let mut fate: HashMap<String, (bool, String)> = HashMap::new();
    for v in read(client, &topics.deliveries)? {
        let Ok(d) = serde_json::from_slice::<serde_json::Value>(&v) else { continue };
        let id = d["job_id"].as_str().unwrap_or_default().to_owned();
        let outcome = d["outcome"].as_str().unwrap_or_default().to_owned();
        let entry = fate.entry(id).or_insert((false, String::new()));
        entry.0 |= outcome == "retry";
        entry.1 = outcome;
    }
    let mut rows: BTreeMap<(String, String), Row> = BTreeMap::new();
    for j in &jobs {
        let row = rows.entry((j.partner_id.clone(), j.event.clone())).or_default();
        row.jobs += 1;
        if let Some((retried, last)) = fate.get(&j.job_id) {
            row.retried += u64::from(*retried);
            match last.as_str() {
                "delivered" => row.delivered += 1,
                "dlq" | "blocked" => row.dlq += 1,
                _ => {}
            }
        }
    }
    Ok(Report { events, rows, jobs, metrics_url })
}

impl Report {
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<8} {:<22} {:>6} {:>10} {:>8} {:>5}",
            "partner", "event", "jobs", "delivered", "retried", "dlq"
        );
        let mut total = Row::default();
        for ((partner, event), r) in &self.rows {
            let _ = writeln!(
                out,
                "{partner:<8} {event:<22} {:>6} {:>10} {:>8} {:>5}",
                r.jobs, r.delivered, r.retried, r.dlq
            );
            total.jobs += r.jobs;
            total.delivered += r.delivered;
            total.retried += r.retried;
            total.dlq += r.dlq;
        }
        let _ = writeln!(
            out,
            "{:<8} {:<22} {:>6} {:>10} {:>8} {:>5}",
            "total", "", total.jobs, total.delivered, total.retried, total.dlq
        );
        let _ = write!(out, "{} events in, metrics at {}", self.events, self.metrics_url);
        out
    }
}
