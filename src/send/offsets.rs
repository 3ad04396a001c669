//! Which offsets the sender may commit (pure). Many jobs of a partition are
//! in flight at once and finish in any order; an offset is committable only
//! when every job at or below it has a terminal outcome for this stage.

use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Default)]
struct Part {
    pending: BTreeSet<i64>,
    /// One past the highest offset started.
    next: i64,
    /// The offset last handed out for commit.
    committed: i64,
}

#[derive(Debug, Default)]
pub struct OffsetTracker {
    parts: HashMap<(String, i32), Part>,
}

impl OffsetTracker {
    pub fn started(&mut self, topic: &str, partition: i32, offset: i64) {
        let p = self.part(topic, partition);
        p.pending.insert(offset);
        p.next = p.next.max(offset + 1);
    }

    /// A job reached its terminal outcome. Unknown partitions (revoked since)
    /// are ignored.
    pub fn finished(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(p) = self.parts.get_mut(&(topic.to_owned(), partition)) {
            p.pending.remove(&offset);
        }
    }

    fn part(&mut self, topic: &str, partition: i32) -> &mut Part {
        self.parts.entry((topic.to_owned(), partition)).or_default()
    }

    /// Offsets to commit that moved since the last call, and marks them.
    pub fn take_committable(&mut self) -> Vec<(String, i32, i64)> {
        let mut out = Vec::new();
        for ((topic, partition), p) in &mut self.parts {
            let safe = p.pending.first().copied().unwrap_or(p.next);
            if safe > p.committed {
                p.committed = safe;
                out.push((topic.clone(), *partition, safe));
            }
        }
        out.sort();
        out
    }

    /// The committable offsets of `partitions` (on revocation), marked.
    pub fn take_for(&mut self, partitions: &[(String, i32)]) -> Vec<(String, i32, i64)> {
        let mut out = Vec::new();
        for key in partitions {
            if let Some(p) = self.parts.remove(key) {
                let safe = p.pending.first().copied().unwrap_or(p.next);
                if safe > p.committed {
                    out.push((key.0.clone(), key.1, safe));
                }
            }
        }
        out
    }

    pub fn in_flight(&self) -> usize {
        self.parts.values().map(|p| p.pending.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_below_the_lowest_unfinished_offset() {
        let mut t = OffsetTracker::default();
        for o in 10..15 {
            t.started("jobs", 0, o);
        }
        t.finished("jobs", 0, 12);
        t.finished("jobs", 0, 10);
        assert_eq!(t.take_committable(), vec![("jobs".to_string(), 0, 11)]);
        assert_eq!(t.take_committable(), vec![], "nothing moved");
        t.finished("jobs", 0, 11);
        t.finished("jobs", 0, 14);
        assert_eq!(t.take_committable(), vec![("jobs".to_string(), 0, 13)]);
        t.finished("jobs", 0, 13);
        assert_eq!(t.take_committable(), vec![("jobs".to_string(), 0, 15)]);
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn revocation_hands_out_and_forgets() {
        let mut t = OffsetTracker::default();
        t.started("jobs", 1, 5);
        t.started("jobs", 1, 6);
        t.finished("jobs", 1, 5);
        assert_eq!(t.take_for(&[("jobs".to_string(), 1)]), vec![("jobs".to_string(), 1, 6)]);
        t.finished("jobs", 1, 6);
        assert_eq!(t.take_committable(), vec![]);
    }
}
