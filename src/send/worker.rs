//! The sender's consumer loop: takes jobs from `postback.jobs` and the retry
//! tiers, holds a tier partition's head job (partition paused) until it is
//! due, dispatches due jobs to their partner's lane as tasks, and commits
//! each partition up to its lowest unfinished job.

use super::consumers::Consumers;
use super::lane::Lane;
use super::limits::Share;
use super::offsets::OffsetTracker;
use super::step::{Refusal, before_attempt};
use super::task::{self, At, Shared};
use crate::clock::now_ms;
use crate::codec::decode_job;
use crate::config::Config;
use crate::config::reload::SharedConfig;
use crate::domain::Job;
use crate::kafka::TopicPartition;
use crate::kafka::context::Assignment;
use crate::kafka::patience::{self, COMMITTED_PATIENCE};
use futures::StreamExt;
use rdkafka::consumer::CommitMode;
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

/// Where a job came from: its offset is finished when the job is.
#[derive(Debug, Clone)]
struct Origin {
    topic: String,
    partition: i32,
    offset: i64,
}

/// A tier's head job, waiting for its due time with its partition paused.
struct Held {
    job: Job,
    key: Vec<u8>,
    origin: Origin,
    permit: OwnedSemaphorePermit,
}

/// Newly assigned partitions and what their previous owners committed.
type Loaded = (Vec<TopicPartition>, KafkaResult<TopicPartitionList>);

/// The partitions of `list` to resume: all but those paused on a held job
/// (they resume when it is due).
fn resumable(list: Vec<TopicPartition>, held: &HashMap<TopicPartition, Held>) -> Vec<TopicPartition> {
    list.into_iter().filter(|k| !held.contains_key(k)).collect()
}

pub struct Worker {
    pub consumers: Arc<Consumers>,
    pub shared: Arc<Shared>,
    config: SharedConfig,
    /// The config the lanes were built from (reload builds new ones).
    lanes_from: Arc<Config>,
    lanes: HashMap<String, Arc<Lane>>,
    /// Partitions of every topic the group consumes (jobs, retry tiers):
    /// the denominator of this sender's share of partner limits.
    total_partitions: usize,
    share: Share,
    pub tracker: Arc<Mutex<OffsetTracker>>,
    /// Bounds the jobs held in memory (`send.max_in_flight`).
    pub capacity: Arc<Semaphore>,
    pub shutdown: CancellationToken,
    pub max_in_flight: usize,
    held: HashMap<TopicPartition, Held>,
    due: BTreeSet<(i64, String, i32)>,
    /// Committed offsets (with metadata) of newly assigned partitions, read
    /// off the async threads; the partitions stay paused until they arrive.
    loaded_tx: mpsc::UnboundedSender<Loaded>,
    loaded_rx: mpsc::UnboundedReceiver<Loaded>,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        consumers: Arc<Consumers>,
        shared: Arc<Shared>,
        config: SharedConfig,
        tracker: Arc<Mutex<OffsetTracker>>,
        max_in_flight: usize,
        total_partitions: usize,
        shutdown: CancellationToken,
    ) -> Worker {
        let lanes_from = Arc::clone(&config.read().expect("config lock"));
        // nothing is sent before the first assignment, which sets the share
        let share = Share::WHOLE;
        let lanes = lanes_from
            .partners
            .iter()
            .map(|p| (p.id.clone(), Arc::new(Lane::new(p, &lanes_from, &shared.http, share))))
            .collect();
        let (loaded_tx, loaded_rx) = mpsc::unbounded_channel();
        Worker {
            consumers,
            shared,
            config,
            lanes_from,
            lanes,
            total_partitions,
            share,
            tracker,
            capacity: Arc::new(Semaphore::new(max_in_flight)),
            shutdown,
            max_in_flight,
            held: HashMap::new(),
            due: BTreeSet::new(),
            loaded_tx,
            loaded_rx,
        }
    }

    pub async fn run(mut self) {
        let consumers = Arc::clone(&self.consumers);
        let mut messages = consumers.messages();
        let mut every = self.lanes_from.send.commit_interval.0;
        let mut commit = tokio::time::interval(every);
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let mut permit: Option<OwnedSemaphorePermit> = None;
        while !self.shutdown.is_cancelled() {
            self.handle_assignments();
            self.refresh_lanes();
            // send.commit_interval is hot: a reload that changes it takes
            // effect at the next tick
            if self.lanes_from.send.commit_interval.0 != every {
                every = self.lanes_from.send.commit_interval.0;
                commit = tokio::time::interval(every);
            }
            let next_due = self.due.first().map(|(at, _, _)| *at);
            let wake = tokio::time::Instant::now()
                + Duration::from_millis(next_due.map_or(3_600_000, |at| (at - now_ms()).max(0) as u64));
            if permit.is_none() {
                tokio::select! {
                    p = Arc::clone(&self.capacity).acquire_owned() => permit = p.ok(),
                    _ = tokio::time::sleep_until(wake), if next_due.is_some() => self.release_due(),
                    _ = commit.tick() => self.commit(CommitMode::Async),
                    Some((list, loaded)) = self.loaded_rx.recv() => self.resume_assigned(list, loaded),
                    _ = tick.tick() => {}
                    _ = self.shutdown.cancelled() => {}
                }
                continue;
            }
            tokio::select! {
                msg = messages.next() => match msg {
                    Some(Ok(m)) => self.take(&m, permit.take().expect("permit held")),
                    Some(Err(e)) => tracing::warn!(error = %e, "sender consumer error"),
                    None => unreachable!("kafka message streams never end"),
                },
                _ = tokio::time::sleep_until(wake), if next_due.is_some() => self.release_due(),
                _ = commit.tick() => self.commit(CommitMode::Async),
                Some((list, loaded)) = self.loaded_rx.recv() => self.resume_assigned(list, loaded),
                _ = tick.tick() => {}
                _ = self.shutdown.cancelled() => {}
            }
        }
        drop(permit);
        self.drain().await;
    }

    fn take(&mut self, msg: &BorrowedMessage<'_>, permit: OwnedSemaphorePermit) {
        let origin = Origin { topic: msg.topic().to_owned(), partition: msg.partition(), offset: msg.offset() };
        let key = msg.key().unwrap_or_default().to_vec();
        {
            let mut tracker = self.tracker.lock().expect("tracker");
            tracker.started(&origin.topic, origin.partition, origin.offset);
            // finished by this partition's previous owner after its committed offset
            if tracker.finished_before(&origin.topic, origin.partition, origin.offset) {
                tracker.finished(&origin.topic, origin.partition, origin.offset);
                return;
            }
        }
        let job = match decode_job(msg.payload().unwrap_or_default()) {
            Ok(job) => job,
            Err(e) => {
                let (shared, tracker, value) =
                    (Arc::clone(&self.shared), Arc::clone(&self.tracker), msg.payload().unwrap_or_default().to_vec());
                tracing::warn!(topic = %origin.topic, partition = origin.partition, offset = origin.offset, error = %e, "undecodable job sent to the dlq");
                tokio::spawn(async move {
                    shared.outputs.dead_raw(&key, &value, &format!("undecodable job: {e}")).await;
                    finish(&tracker, &origin, permit);
                });
                return;
            }
        };
        if job.not_before_ms > now_ms() {
            self.hold(job, key, origin, permit);
        } else {
            self.dispatch(job, key, origin, permit);
        }
    }

    /// Pauses the partition until its head job is due: never a sleep in the
    /// poll loop, and the other partitions keep flowing.
    fn hold(&mut self, job: Job, key: Vec<u8>, origin: Origin, permit: OwnedSemaphorePermit) {
        if let Err(e) = self.consumers.pause(&origin.topic, origin.partition) {
            tracing::error!(topic = %origin.topic, partition = origin.partition, error = %e, "could not pause a retry tier partition");
        }
        self.due.insert((job.not_before_ms, origin.topic.clone(), origin.partition));
        let slot = TopicPartition::new(origin.topic.as_str(), origin.partition);
        if let Some(earlier) = self.held.insert(slot, Held { job, key, origin, permit }) {
            // the partition was not paused after all: the earlier job goes
            // now (a retry sent early) rather than be forgotten
            tracing::error!(topic = %earlier.origin.topic, partition = earlier.origin.partition, offset = earlier.origin.offset, "a held job's partition delivered another; sending the held one now");
            self.dispatch(earlier.job, earlier.key, earlier.origin, earlier.permit);
        }
    }

    fn release_due(&mut self) {
        let now = now_ms();
        while let Some((at, topic, partition)) = self.due.first().cloned() {
            if at > now {
                break;
            }
            self.due.pop_first();
            let Some(h) = self.held.remove(&TopicPartition::new(topic.as_str(), partition)) else { continue };
            if let Err(e) = self.consumers.resume(&topic, partition) {
                tracing::error!(topic, partition, error = %e, "could not resume a retry tier partition");
            }
            self.dispatch(h.job, h.key, h.origin, h.permit);
        }
    }

    /// Starts the job's task: an attempt, or at once the step that replaces
    /// it (unknown partner, expired, partner refusing new jobs).
    fn dispatch(&mut self, job: Job, key: Vec<u8>, origin: Origin, permit: OwnedSemaphorePermit) {
        // a job taken after a reload goes by the new config, even when it
        // arrived while the loop was waiting
        self.refresh_lanes();
        let (shared, tracker) = (Arc::clone(&self.shared), Arc::clone(&self.tracker));
        let lane = self.lanes.get(&job.partner_id).cloned();
        let refusal = match &lane {
            None => Some(Refusal::UnknownPartner),
            Some(l) => l.refuses().map(Refusal::Lane),
        };
        let skip = before_attempt(&job, refusal, &shared.policy(), now_ms(), rand::random());
        tokio::spawn(async move {
            let at = At { topic: &origin.topic, partition: origin.partition, offset: origin.offset };
            match (skip, lane) {
                (Some(step), _) => task::carry_out(&shared, step, job, &key, at).await,
                (None, Some(lane)) => task::attempt(Arc::clone(&shared), lane, job, key, at).await,
                (None, None) => unreachable!("a job without a lane is refused"),
            }
            finish(&tracker, &origin, permit);
        });
    }

    /// After a config reload: new partners get a lane, changed ones a new
    /// lane (jobs already in the old one finish there), unchanged ones keep
    /// theirs with its breaker and limiter state.
    fn refresh_lanes(&mut self) {
        let current = Arc::clone(&self.config.read().expect("config lock"));
        if Arc::ptr_eq(&current, &self.lanes_from) {
            return;
        }
        let mut lanes = HashMap::new();
        for p in &current.partners {
            let lane = match self.lanes.get(&p.id) {
                Some(l) if l.same_settings(p, &current) => Arc::clone(l),
                _ => Arc::new(Lane::new(p, &current, &self.shared.http, self.share)),
            };
            lanes.insert(p.id.clone(), lane);
        }
        self.lanes = lanes;
        self.lanes_from = current;
    }

    fn handle_assignments(&mut self) {
        let events = self.consumers.take_events();
        if events.is_empty() {
            return;
        }
        for event in events {
            match event {
                Assignment::Revoked(list) => {
                    for tp in list {
                        // its offset was not committed: the next owner sends it
                        if self.held.remove(&tp).is_some() {
                            self.due.retain(|(_, t, p)| !(*t == tp.topic && *p == tp.partition));
                        }
                    }
                }
                Assignment::Assigned(list) => self.load_committed(list),
            }
        }
        self.report_partitions();
        self.take_share();
    }

    /// This sender's share of every partner's limits: the part of the
    /// group's partitions it holds now.
    fn take_share(&mut self) {
        let mine = self.consumers.partition_counts().iter().map(|(_, n)| n).sum();
        let share = Share { mine, total: self.total_partitions };
        if share == self.share {
            return;
        }
        tracing::info!(
            partitions = mine,
            of = self.total_partitions,
            share = share.fraction(),
            "share of partner limits changed"
        );
        crate::telemetry::metrics::metrics().sender_share(share.fraction());
        self.share = share;
        for lane in self.lanes.values() {
            lane.apply_share(share);
        }
    }

    /// How many partitions of each subscribed topic this instance holds
    /// (0 included: a sender with no jobs partition only sends retries).
    fn report_partitions(&self) {
        for (topic, n) in self.consumers.partition_counts() {
            crate::telemetry::metrics::metrics().sender_partitions(topic, n);
        }
    }

    /// Reads, off the async threads, what the new partitions' previous
    /// owner committed: the offset and which offsets above it it finished.
    /// Asked again for a while when the coordinator cannot answer yet (a
    /// broker just back): without the answer the partitions resume at the
    /// offset alone, and every job finished above it is sent again.
    fn load_committed(&self, list: Vec<TopicPartition>) {
        let (consumers, tx) = (Arc::clone(&self.consumers), self.loaded_tx.clone());
        tokio::task::spawn_blocking(move || {
            let read = || consumers.committed(&list, Duration::from_secs(10));
            let step = Duration::from_millis(500);
            let loaded = patience::ask_again("committed_offsets", COMMITTED_PATIENCE, step, || tx.is_closed(), read);
            let _ = tx.send((list, loaded));
        });
    }

    /// Takes in what a previous owner committed and resumes the partitions
    /// `list` (paused since their assignment). Without it (the broker did
    /// not answer), they resume anyway: jobs are then sent again, never
    /// lost. Only these partitions: one paused on a held retry job stays
    /// paused until that job is due.
    fn resume_assigned(&mut self, list: Vec<TopicPartition>, loaded: KafkaResult<TopicPartitionList>) {
        match loaded {
            Ok(tpl) => {
                let mut tracker = self.tracker.lock().expect("tracker");
                for e in tpl.elements() {
                    if let Offset::Offset(o) = e.offset() {
                        tracker.assigned(e.topic(), e.partition(), o, e.metadata());
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read committed offsets; resuming without skipping finished jobs");
            }
        }
        let list = resumable(list, &self.held);
        if let Err(e) = self.consumers.resume_list(&list) {
            tracing::error!(error = %e, "could not resume newly assigned partitions");
        }
    }

    fn commit(&self, mode: CommitMode) {
        let offsets = self.tracker.lock().expect("tracker").take_committable();
        self.consumers.commit(&offsets, mode);
    }

    /// Shutdown: no new jobs; in-flight ones get `shutdown_deadline` to
    /// finish; what finished is committed.
    async fn drain(&mut self) {
        let held: Vec<_> = self.held.drain().collect();
        let held_count = held.len();
        let deadline =
            tokio::time::Instant::now() + self.shared.config.read().expect("config lock").send.shutdown_deadline.0;
        while tokio::time::Instant::now() < deadline {
            let in_flight = self.tracker.lock().expect("tracker").in_flight();
            if in_flight <= held_count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(held);
        self.commit(CommitMode::Sync);
        tracing::info!(max_in_flight = self.max_in_flight, "sender drained and committed");
    }
}

fn finish(tracker: &Mutex<OffsetTracker>, origin: &Origin, permit: OwnedSemaphorePermit) {
    tracker.lock().expect("tracker").finished(&origin.topic, origin.partition, origin.offset);
    drop(permit);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_paused_on_a_held_job_is_not_resumed_with_the_others() {
        let permit = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
        let origin = Origin { topic: "jobs.retry-1".into(), partition: 2, offset: 7 };
        let held = HashMap::from([(
            TopicPartition::new("jobs.retry-1", 2),
            Held { job: crate::send::step::tests::job(0, 0), key: Vec::new(), origin, permit },
        )]);
        let tp = TopicPartition::new;
        let list = vec![tp("jobs", 2), tp("jobs.retry-1", 2), tp("jobs.retry-1", 3)];
        assert_eq!(resumable(list, &held), vec![tp("jobs", 2), tp("jobs.retry-1", 3)]);
    }
}
