//! Which offsets the sender may commit, and what a restart may skip (pure).
//!
//! Many jobs of a partition are in flight at once and finish in any order.
//! The committed offset is the lowest unfinished one, so one job held by a
//! slow or rate-limited partner would otherwise make a restart send again
//! every job finished after it. The commit therefore carries, in its
//! metadata, which offsets above it were still unfinished; every other
//! offset between it and the highest started one is finished, and the next
//! owner of the partition skips it (as Confluent's Parallel Consumer does).
//! After a crash only the jobs in flight, and those finished since the last
//! commit, are sent again.

use crate::kafka::TopicPartition;
use std::collections::{BTreeSet, HashMap};

/// Prefix of the metadata format, so a foreign or older format is ignored.
const FORMAT: &str = "pb1:";
/// Kafka's default `offset.metadata.max.bytes` is 4096; stay well inside.
const MAX_METADATA: usize = 3000;

/// What a commit of one partition says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub topic: String,
    pub partition: i32,
    /// The lowest unfinished offset (or one past the highest started).
    pub offset: i64,
    /// The offsets in `[offset, offset + span)` still unfinished, encoded.
    pub metadata: String,
}

/// Offsets a previous owner finished above its committed offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finished {
    from: i64,
    until: i64,
    unfinished: BTreeSet<i64>,
}

impl Finished {
    pub fn contains(&self, offset: i64) -> bool {
        (self.from..self.until).contains(&offset) && !self.unfinished.contains(&offset)
    }
}

/// What the sender knows of one partition's jobs.
#[derive(Debug, Default)]
struct Progress {
    pending: BTreeSet<i64>,
    /// One past the highest offset started.
    next: i64,
    /// What was last handed out for commit.
    last: Option<(i64, String)>,
    /// From the committed metadata, when the partition was assigned.
    finished_before: Finished,
}

#[derive(Debug, Default)]
pub struct OffsetTracker {
    parts: HashMap<TopicPartition, Progress>,
}

impl OffsetTracker {
    /// What the committed metadata of a newly assigned partition says.
    pub fn assigned(&mut self, topic: &str, partition: i32, committed: i64, metadata: &str) {
        let part = self.part(topic, partition);
        part.finished_before = decode(committed, metadata).unwrap_or_default();
    }

    /// Whether a previous owner already finished this offset (skip it).
    pub fn finished_before(&self, topic: &str, partition: i32, offset: i64) -> bool {
        self.parts.get(&TopicPartition::new(topic, partition)).is_some_and(|p| p.finished_before.contains(offset))
    }

    pub fn started(&mut self, topic: &str, partition: i32, offset: i64) {
        let p = self.part(topic, partition);
        p.pending.insert(offset);
        p.next = p.next.max(offset + 1);
    }

    /// A job reached its terminal outcome. Unknown partitions (revoked since)
    /// are ignored.
    pub fn finished(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(p) = self.parts.get_mut(&TopicPartition::new(topic, partition)) {
            p.pending.remove(&offset);
        }
    }

    fn part(&mut self, topic: &str, partition: i32) -> &mut Progress {
        self.parts.entry(TopicPartition::new(topic, partition)).or_default()
    }

    /// Commits whose offset or metadata changed since the last call.
    pub fn take_committable(&mut self) -> Vec<Commit> {
        let mut out = Vec::new();
        for (tp, p) in &mut self.parts {
            if let Some(c) = commit_of(p) {
                if p.last.as_ref() != Some(&(c.0, c.1.clone())) {
                    p.last = Some(c.clone());
                    out.push(Commit { topic: tp.topic.clone(), partition: tp.partition, offset: c.0, metadata: c.1 });
                }
            }
        }
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        out
    }

    /// The commits of `partitions` (on revocation), which are forgotten.
    pub fn take_for(&mut self, partitions: &[TopicPartition]) -> Vec<Commit> {
        let mut out = Vec::new();
        for key in partitions {
            if let Some(p) = self.parts.remove(key) {
                if let Some((offset, metadata)) = commit_of(&p).filter(|c| p.last.as_ref() != Some(c)) {
                    out.push(Commit { topic: key.topic.clone(), partition: key.partition, offset, metadata });
                }
            }
        }
        out
    }

    pub fn in_flight(&self) -> usize {
        self.parts.values().map(|p| p.pending.len()).sum()
    }
}

/// The commit a partition's state calls for, if it started anything. What
/// a previous owner finished beyond what this one has read again is kept
/// in the metadata, so a second crash does not forget it.
fn commit_of(p: &Progress) -> Option<(i64, String)> {
    if p.next == 0 && p.pending.is_empty() {
        return None;
    }
    let before = &p.finished_before;
    let mut unfinished = p.pending.clone();
    unfinished.extend(before.unfinished.range(p.next..).copied());
    let next = p.next.max(before.until);
    let offset = unfinished.first().copied().unwrap_or(next);
    Some((offset, encode(offset, next, &unfinished)))
}

/// `pb1:<span>:<gaps>`: the span of offsets above `committed` it covers,
/// and the unfinished ones in it as gaps between them (the first is the
/// committed offset itself). Cut short, with a shorter span, when it would
/// outgrow the broker's metadata limit: what it no longer covers is sent
/// again after a crash, never lost.
fn encode(committed: i64, next: i64, pending: &BTreeSet<i64>) -> String {
    if next <= committed {
        return String::new();
    }
    let mut gaps = String::new();
    let mut previous = committed;
    let mut span = next - committed;
    for (i, &o) in pending.iter().enumerate() {
        let piece = if i == 0 { String::new() } else { format!(",{}", o - previous) };
        if FORMAT.len() + 24 + gaps.len() + piece.len() > MAX_METADATA {
            span = o - committed;
            break;
        }
        gaps.push_str(&piece);
        previous = o;
    }
    format!("{FORMAT}{span}:{gaps}")
}

fn decode(committed: i64, metadata: &str) -> Option<Finished> {
    let rest = metadata.strip_prefix(FORMAT)?;
    let (span, gaps) = rest.split_once(':')?;
    let span: i64 = span.parse().ok().filter(|s| *s > 0)?;
    let mut unfinished = BTreeSet::from([committed]);
    let mut at = committed;
    for gap in gaps.split(',').filter(|g| !g.is_empty()) {
        at += gap.parse::<i64>().ok().filter(|g| *g > 0)?;
        unfinished.insert(at);
    }
    Some(Finished { from: committed, until: committed + span, unfinished })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(c: &[Commit]) -> Vec<(i32, i64)> {
        c.iter().map(|c| (c.partition, c.offset)).collect()
    }

    #[test]
    fn commits_only_below_the_lowest_unfinished_offset() {
        let mut t = OffsetTracker::default();
        for o in 10..15 {
            t.started("jobs", 0, o);
        }
        t.finished("jobs", 0, 12);
        t.finished("jobs", 0, 10);
        assert_eq!(offsets(&t.take_committable()), vec![(0, 11)]);
        assert_eq!(t.take_committable(), vec![], "nothing moved");
        t.finished("jobs", 0, 11);
        t.finished("jobs", 0, 14);
        assert_eq!(offsets(&t.take_committable()), vec![(0, 13)]);
        t.finished("jobs", 0, 13);
        assert_eq!(offsets(&t.take_committable()), vec![(0, 15)]);
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn a_held_job_does_not_make_a_restart_resend_what_finished_after_it() {
        let mut t = OffsetTracker::default();
        for o in 0..1000 {
            t.started("jobs", 0, o);
        }
        // 3 held (a slow partner), everything else finished
        for o in (0..1000).filter(|o| ![3, 500, 998].contains(o)) {
            t.finished("jobs", 0, o);
        }
        let c = t.take_committable().pop().unwrap();
        assert_eq!((c.offset, c.metadata.as_str()), (3, "pb1:997:,497,498"));
        // a new owner of the partition
        let mut next = OffsetTracker::default();
        next.assigned("jobs", 0, c.offset, &c.metadata);
        let resent: Vec<i64> = (3..1200).filter(|o| !next.finished_before("jobs", 0, *o)).take(10).collect();
        assert_eq!(resent, vec![3, 500, 998, 1000, 1001, 1002, 1003, 1004, 1005, 1006]);
        // the metadata changes while the offset stays: it is committed again
        t.finished("jobs", 0, 500);
        assert_eq!(t.take_committable().pop().unwrap().metadata, "pb1:997:,995");
    }

    #[test]
    fn metadata_stays_within_the_broker_limit() {
        let mut t = OffsetTracker::default();
        for o in 0..100_000 {
            t.started("jobs", 0, o);
        }
        for o in (0..100_000).filter(|o| o % 2 == 1) {
            t.finished("jobs", 0, o);
        }
        let c = t.take_committable().pop().unwrap();
        assert!(c.metadata.len() <= MAX_METADATA, "{}", c.metadata.len());
        let mut next = OffsetTracker::default();
        next.assigned("jobs", 0, c.offset, &c.metadata);
        assert!(next.finished_before("jobs", 0, 1) && next.finished_before("jobs", 0, 999));
        assert!(!next.finished_before("jobs", 0, 2), "unfinished");
        assert!(!next.finished_before("jobs", 0, 99_999), "past the covered span: sent again, never lost");
    }

    #[test]
    fn what_a_previous_owner_finished_survives_a_second_crash() {
        let mut t = OffsetTracker::default();
        t.assigned("jobs", 0, 3, "pb1:997:,497,498");
        // the new owner has read offsets 3..10 again (4..9 skipped as finished)
        t.started("jobs", 0, 3);
        for o in 4..10 {
            t.started("jobs", 0, o);
            t.finished("jobs", 0, o);
        }
        let c = t.take_committable().pop().unwrap();
        assert_eq!((c.offset, c.metadata.as_str()), (3, "pb1:997:,497,498"));
    }

    #[test]
    fn foreign_or_broken_metadata_skips_nothing() {
        for m in ["", "other", "pb1:", "pb1:x:", "pb1:5:,0", "pb1:-3:"] {
            let mut t = OffsetTracker::default();
            t.assigned("jobs", 0, 10, m);
            assert!(!(10..20).any(|o| t.finished_before("jobs", 0, o)), "{m}");
        }
    }

    #[test]
    fn revocation_hands_out_and_forgets() {
        let mut t = OffsetTracker::default();
        t.started("jobs", 1, 5);
        t.started("jobs", 1, 6);
        t.finished("jobs", 1, 5);
        assert_eq!(offsets(&t.take_for(&[TopicPartition::new("jobs", 1)])), vec![(1, 6)]);
        t.finished("jobs", 1, 6);
        assert_eq!(t.take_committable(), vec![]);
    }
}
