//! The sender's consumers: one per topic it reads (`jobs`, then each retry
//! tier), all members of the sender's group.
//!
//! Why not one consumer subscribed to every topic: librdkafka's
//! cooperative-sticky assignor balances the *number* of partitions per
//! member, not per topic. With one member per instance, a second sender
//! took all 3 `jobs` partitions and the first kept only retry tiers
//! (`send::a_second_sender_takes_part_of_the_jobs_topic`): scaling out added
//! nothing to the main flow. A member per topic makes the assignor balance
//! each topic over the instances on its own, and keeps incremental
//! rebalances — partitions that stay are not interrupted, so their jobs in
//! flight are not sent twice, which an eager assignor (`range`) would do on
//! every rebalance. Senders of the older kind (one member for all topics)
//! can share the group during a rolling upgrade: members may subscribe to
//! different topics, and the committed offsets belong to the group.

use super::offsets::{Commit, OffsetTracker};
use crate::config::Config;
use crate::kafka::context::{Assignment, GroupContext};
use crate::kafka::{TopicPartition, client};
use futures::stream::SelectAll;
use rdkafka::consumer::{CommitMode, Consumer, MessageStream, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Member = StreamConsumer<GroupContext>;

pub struct Consumers {
    members: Vec<Member>,
    topics: Vec<String>,
}

impl Consumers {
    /// One member per topic of `topics`, subscribed. Partitions are paused
    /// when assigned (resumed once what their previous owner finished is
    /// known), and a member commits what is finished of partitions that
    /// leave it before they go.
    pub fn subscribe(config: &Config, topics: &[String], tracker: &Arc<Mutex<OffsetTracker>>) -> KafkaResult<Self> {
        let group = &config.kafka.sender_group_id;
        let mut members = Vec::with_capacity(topics.len());
        for topic in topics {
            let hook_tracker = Arc::clone(tracker);
            let context = GroupContext::new(group, true).with_revoke_hook(Box::new(move |consumer, partitions| {
                let offsets = hook_tracker.lock().expect("tracker").take_for(partitions);
                commit_with(consumer, &offsets, CommitMode::Sync);
            }));
            let member: Member = client::consumer(config, group).create_with_context(context)?;
            member.subscribe(&[topic.as_str()])?;
            members.push(member);
        }
        Ok(Consumers { members, topics: topics.to_vec() })
    }

    /// The messages of every member as one stream. Made once per run: each
    /// member's stream keeps its waker slot, and only members woken by a
    /// new message are polled (a fresh set of recv futures per message, one
    /// per member, cost the sender ~15% more CPU per postback in
    /// `bench_send`). Members that have messages take turns. Cancellation
    /// safe.
    pub fn messages(&self) -> SelectAll<MessageStream<'_, GroupContext>> {
        futures::stream::select_all(self.members.iter().map(Member::stream))
    }

    pub fn pause(&self, topic: &str, partition: i32) -> KafkaResult<()> {
        self.on_each(&[TopicPartition::new(topic, partition)], |m, tpl| m.pause(tpl))
    }

    pub fn resume(&self, topic: &str, partition: i32) -> KafkaResult<()> {
        self.on_each(&[TopicPartition::new(topic, partition)], |m, tpl| m.resume(tpl))
    }

    /// Resumes the partitions of `list`, each through its own member.
    pub fn resume_list(&self, list: &[TopicPartition]) -> KafkaResult<()> {
        self.on_each(list, |m, tpl| m.resume(tpl))
    }

    /// Assignment changes of every member since the last call.
    pub fn take_events(&self) -> Vec<Assignment> {
        self.members.iter().flat_map(|m| m.context().take_events()).collect()
    }

    /// Partitions held per topic (0 for a topic with none).
    pub fn partition_counts(&self) -> Vec<(&str, usize)> {
        let held = |m: &Member| m.assignment().map(|tpl| tpl.count()).unwrap_or(0);
        self.topics.iter().zip(&self.members).map(|(t, m)| (t.as_str(), held(m))).collect()
    }

    /// The committed offsets (with metadata) of `list`, read through the
    /// members that hold them. Blocks: call it off the async threads.
    pub fn committed(&self, list: &[TopicPartition], timeout: Duration) -> KafkaResult<TopicPartitionList> {
        let mut all = TopicPartitionList::new();
        for (member, tpl) in self.split(list) {
            for e in member.committed_offsets(tpl, timeout)?.elements() {
                let mut out = all.add_partition(e.topic(), e.partition());
                out.set_offset(e.offset())?;
                out.set_metadata(e.metadata());
            }
        }
        Ok(all)
    }

    /// Commits offsets with their metadata, each through its own member.
    pub fn commit(&self, commits: &[Commit], mode: CommitMode) {
        for (i, m) in self.members.iter().enumerate() {
            let mine: Vec<Commit> = commits.iter().filter(|c| c.topic == self.topics[i]).cloned().collect();
            commit_with(m, &mine, mode);
        }
    }

    fn split(&self, list: &[TopicPartition]) -> Vec<(&Member, TopicPartitionList)> {
        let mut by: HashMap<usize, TopicPartitionList> = HashMap::new();
        for tp in list {
            match self.topics.iter().position(|t| *t == tp.topic) {
                Some(i) => {
                    by.entry(i).or_default().add_partition(&tp.topic, tp.partition);
                }
                None => {
                    tracing::error!(topic = %tp.topic, partition = tp.partition, "no sender consumer reads this topic")
                }
            }
        }
        by.into_iter().map(|(i, tpl)| (&self.members[i], tpl)).collect()
    }

    fn on_each(
        &self,
        list: &[TopicPartition],
        f: impl Fn(&Member, &TopicPartitionList) -> KafkaResult<()>,
    ) -> KafkaResult<()> {
        let mut result = Ok(());
        for (member, tpl) in self.split(list) {
            if let Err(e) = f(member, &tpl) {
                result = Err(e);
            }
        }
        result
    }
}

/// Commits offsets with their metadata (which finished offsets lie above).
pub fn commit_with<C: Consumer<GroupContext>>(consumer: &C, commits: &[Commit], mode: CommitMode) {
    if commits.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for c in commits {
        let mut e = tpl.add_partition(&c.topic, c.partition);
        if e.set_offset(Offset::Offset(c.offset)).is_err() {
            return;
        }
        e.set_metadata(c.metadata.as_str());
    }
    if let Err(e) = consumer.commit(&tpl, mode) {
        tracing::warn!(error = %e, "offset commit failed; retried at the next interval");
    }
}
