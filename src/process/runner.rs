//! One processing thread's loop (docs/design.md §3.2): every call here
//! blocks (librdkafka transactions, RocksDB), none runs on an async worker.
//!
//! The loop is three owners and a pure step between them:
//!
//! ```text
//! source.poll_batch ──► process_batch (rules, no Kafka) ──► transaction.cycle
//!   (consumers, partitions)                                  (settle the previous batch, open this one)
//! ```
//!
//! The commit runs on its own thread while the next batch is polled and
//! processed (reading the committing batch's state first); the next
//! transaction begins only once the previous one is settled, and a
//! revocation waits for it.

use super::ProcessError;
use super::batch::{BatchEnv, BatchOutput, StateView, process_batch};
use super::gate::Gate;
use super::records::{InRecord, Offsets, first_offsets};
use super::source::BatchSource;
use super::transaction::{Processed, Transaction};
use crate::clock::now_ms;
use crate::codec::{self, JobEncoding, JobFormat};
use crate::config::Config;
use crate::kafka::admin::Layout;
use crate::registry::cache::confluent_ids;
use crate::registry::{Registry, RegistryError, SchemaCache};
use crate::telemetry::{Health, Reason};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub use crate::config::reload::SharedConfig;

const STATS_EVERY: Duration = Duration::from_secs(10);

pub struct Runner {
    config: SharedConfig,
    /// Settings that cannot change without a restart (topics, batching).
    fixed: Arc<Config>,
    layout: Layout,
    source: BatchSource,
    txn: Transaction,
    health: Health,
    shutdown: CancellationToken,
    /// Writer schemas from `[schema_registry]` (set up on this thread).
    schemas: Option<Arc<SchemaCache>>,
    /// How jobs are written (`topics.jobs_format`).
    job_encoding: JobEncoding,
}

impl Runner {
    /// `fixed` is the config at start with the layout's state topics.
    pub fn new(
        name: String,
        config: SharedConfig,
        fixed: Arc<Config>,
        layout: Layout,
        health: Health,
        shutdown: CancellationToken,
    ) -> Result<Runner, ProcessError> {
        // partitions leave only once their last transaction has an outcome
        let gate = Arc::new(Gate::default());
        let source = BatchSource::new(
            name,
            Arc::clone(&config),
            Arc::clone(&fixed),
            layout,
            &gate,
            health.clone(),
            shutdown.clone(),
        )?;
        let txn = Transaction::new(Arc::clone(&fixed), gate, health.clone(), shutdown.clone())?;
        Ok(Runner {
            config,
            fixed,
            layout,
            source,
            txn,
            health,
            shutdown,
            schemas: None,
            job_encoding: JobEncoding::Json,
        })
    }

    /// The schema registry's client and, for Avro jobs, the job schema's
    /// id; waits while the registry cannot be reached. False: shutdown.
    fn setup_registry(&mut self) -> Result<bool, ProcessError> {
        let avro_jobs = self.fixed.topics.jobs_format == JobFormat::Avro;
        let Some(config) = &self.fixed.schema_registry else {
            self.job_encoding = if avro_jobs { JobEncoding::Avro } else { JobEncoding::Json };
            return Ok(true);
        };
        let cache = Arc::new(SchemaCache::new(Registry::new(config)?, config.max_schemas));
        if avro_jobs {
            let subject = format!("{}-value", self.fixed.topics.jobs);
            let schema = codec::JOB_SCHEMA_TEXT;
            match cache.register(&subject, schema, &self.shutdown, &self.health) {
                None => return Ok(false),
                Some(Err(e)) => {
                    return Err(RegistryError::Refused(format!("the job schema under subject {subject}: {e}")).into());
                }
                Some(Ok(id)) => {
                    tracing::info!(subject, schema_id = id, "jobs are written as Avro with the registry's schema id");
                    self.job_encoding = JobEncoding::Confluent(id);
                }
            }
        }
        self.schemas = Some(cache);
        Ok(true)
    }

    pub fn run(mut self) -> Result<(), ProcessError> {
        if !self.txn.init()? || !self.setup_registry()? {
            return Ok(());
        }
        self.health.unblock(Reason::ProducerNotReady);
        self.source.subscribe()?;
        let (t, l) = (&self.fixed.topics, self.layout);
        tracing::info!(
            group = %self.fixed.kafka.group_id,
            events = %t.events,
            input_partitions = l.events,
            device_state_partitions = l.device_state,
            user_state_partitions = l.user_activity,
            mode = if l.events == l.device_state { "co-partitioned" } else { "repartition" },
            "processing stage started"
        );
        let result = self.run_loop();
        if let Err(e) = &result {
            // not ready from the moment it fails, not once it has left the group
            self.health.block_with(Reason::Stopped, e.to_string());
        }
        // the open batch finishes (or is rewound) before the group is left
        let settled =
            if result.is_ok() { self.txn.settle(&mut self.source, &Offsets::new()).map(|_| ()) } else { Ok(()) };
        self.source.leave();
        result.and(settled)
    }

    fn run_loop(&mut self) -> Result<(), ProcessError> {
        let mut last_stats = Instant::now();
        while !self.shutdown.is_cancelled() {
            let txn = &self.txn;
            let batch = self.source.poll_batch(|| txn.slot_free())?;
            if batch.is_empty() {
                self.idle()?;
            } else if let Some(processed) = self.process(batch) {
                self.txn.cycle(&mut self.source, processed)?;
            }
            if last_stats.elapsed() >= STATS_EVERY {
                self.source.publish_stats();
                last_stats = Instant::now();
            }
        }
        Ok(())
    }

    /// Nothing arrived: the batch in flight settles, and positions that
    /// moved past what was committed (commit markers) are committed alone.
    fn idle(&mut self) -> Result<(), ProcessError> {
        if !self.txn.settle(&mut self.source, &Offsets::new())? {
            return Ok(());
        }
        let Some(moved) = self.source.moved_positions() else { return Ok(()) };
        let out = BatchOutput { positions: moved.clone(), ..BatchOutput::default() };
        self.txn.open(&mut self.source, out, moved, Instant::now(), 0)
    }

    /// Runs the rules over `records` (while the previous batch may still be
    /// committing). None: shutting down before the registry answered; the
    /// batch was never begun, and is read again by the next incarnation.
    fn process(&self, records: Vec<InRecord>) -> Option<Processed> {
        let started = Instant::now();
        if let Some(schemas) = &self.schemas {
            let ids = confluent_ids(records.iter().filter_map(|r| r.value.as_deref()));
            if !schemas.prepare(&ids, &self.shutdown, &self.health) {
                return None;
            }
        }
        let config = Arc::clone(&self.config.read().expect("config lock"));
        let mut decode = config.decode_options();
        decode.schemas = self.schemas.clone().map(|s| s as Arc<dyn codec::WriterSchemas>);
        let env = BatchEnv {
            rules: &config.rules,
            topics: &self.fixed.topics,
            layout: self.layout,
            job_format: self.job_encoding,
            decode,
            max_record_bytes: self.fixed.input.max_record_bytes,
            partitioning: self.fixed.input.partitioned_by,
            now_ms: now_ms(),
        };
        let prior = self.txn.prior();
        let out = process_batch(&records, StateView { stores: self.source.parts(), prior: &prior }, &env);
        Some(Processed { out, first: first_offsets(&records), started, records: records.len() })
    }
}
