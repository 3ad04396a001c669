//! Where a replay is in one DLQ partition, kept in its consumer group's
//! committed offset and that offset's metadata, committed in the same
//! transaction as the records it replayed: a replay killed at any point
//! resumes exactly after the last records that were written, never before
//! (replayed twice) nor after (lost).
//!
//! A run reads each partition up to the end it had when the run began, so
//! records that fail again and come back to the DLQ meanwhile are not
//! replayed by the same run. That end is in the metadata too: a resumed run
//! stops where the interrupted one would have, and only a run after a
//! finished one takes the records that arrived since.

/// The state of a replay in one partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    /// When the run began (unix ms): the partitions of one run carry it,
    /// so a resumed run knows which finished partitions were its own.
    pub run: i64,
    /// The run's end offset (exclusive).
    pub end: i64,
    /// Records of the run so far: read, replayed, and matched but not
    /// replayable.
    pub read: u64,
    pub replayed: u64,
    pub unreplayable: u64,
}

impl Cursor {
    /// The metadata text committed with the offset.
    pub fn encode(&self) -> String {
        format!(
            "postback-replay/1 run={} end={} read={} replayed={} unreplayable={}",
            self.run, self.end, self.read, self.replayed, self.unreplayable
        )
    }

    /// A cursor from committed metadata; None for metadata not ours.
    pub fn decode(text: &str) -> Option<Cursor> {
        let rest = text.strip_prefix("postback-replay/1 ")?;
        let mut c = Cursor::default();
        for part in rest.split(' ') {
            let (k, v) = part.split_once('=')?;
            match k {
                "run" => c.run = v.parse().ok()?,
                "end" => c.end = v.parse().ok()?,
                "read" => c.read = v.parse().ok()?,
                "replayed" => c.replayed = v.parse().ok()?,
                "unreplayable" => c.unreplayable = v.parse().ok()?,
                _ => return None,
            }
        }
        Some(c)
    }
}

/// Where a run starts in a partition and what it carries over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    pub from: i64,
    pub cursor: Cursor,
    /// An interrupted run is being continued.
    pub resumed: bool,
}

/// What the group committed for one partition: its watermarks now, and
/// the committed offset with its metadata, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub low: i64,
    pub high: i64,
    pub offset: Option<(i64, String)>,
}

/// Where a new run (begun at `now_ms`) starts in each partition. A run
/// that did not reach its end in every partition is continued — each
/// partition from its offset, with its counts, up to its recorded end,
/// also the partitions it had finished; otherwise the run starts afresh
/// after what the last one read. `from_start` ignores every commit.
pub fn starts(partitions: &[Committed], from_start: bool, now_ms: i64) -> Vec<Start> {
    let cursors: Vec<Option<(i64, Cursor)>> =
        partitions.iter().map(|p| p.offset.as_ref().and_then(|(o, m)| Some((*o, Cursor::decode(m)?)))).collect();
    // the interrupted run: one whose cursor is short of its end somewhere
    let interrupted = cursors.iter().flatten().find(|(o, c)| o < &c.end).map(|(_, c)| c.run);
    partitions
        .iter()
        .zip(&cursors)
        .map(|(p, cursor)| {
            let fresh = |from: i64| Start {
                from: from.max(p.low),
                cursor: Cursor { run: now_ms, end: p.high, ..Cursor::default() },
                resumed: false,
            };
            match (from_start, interrupted, cursor) {
                (true, _, _) => fresh(p.low),
                (false, Some(run), Some((o, c))) if c.run == run => {
                    Start { from: (*o).max(p.low), cursor: *c, resumed: true }
                }
                _ => fresh(p.offset.as_ref().map_or(p.low, |(o, _)| *o)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_foreign_metadata() {
        let c = Cursor { run: 9, end: 120, read: 40, replayed: 35, unreplayable: 2 };
        assert_eq!(c.encode(), "postback-replay/1 run=9 end=120 read=40 replayed=35 unreplayable=2");
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        for foreign in ["", "end=5", "postback-replay/1 end=x", "postback-replay/1 end=1 other=2"] {
            assert_eq!(Cursor::decode(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn a_run_starts_fresh_resumes_or_takes_what_came_since() {
        let c = |run, end, read, replayed| Cursor { run, end, read, replayed, unreplayable: 0 };
        let p = |low, high, offset: Option<(i64, Cursor)>| Committed {
            low,
            high,
            offset: offset.map(|(o, c)| (o, c.encode())),
        };
        let fresh = |from, end| Start { from, cursor: c(500, end, 0, 0), resumed: false };
        // nothing committed yet
        assert_eq!(starts(&[p(0, 100, None)], false, 500), vec![fresh(0, 100)]);
        // run 7 was killed: partition 0 done, partition 1 not; both carry on
        let killed =
            [p(0, 150, Some((100, c(7, 100, 100, 90)))), p(0, 80, Some((30, c(7, 60, 30, 30)))), p(0, 40, None)];
        assert_eq!(
            starts(&killed, false, 500),
            vec![
                Start { from: 100, cursor: c(7, 100, 100, 90), resumed: true },
                Start { from: 30, cursor: c(7, 60, 30, 30), resumed: true },
                fresh(0, 40),
            ]
        );
        // --from-start forgets it
        assert_eq!(starts(&killed, true, 500), vec![fresh(0, 150), fresh(0, 80), fresh(0, 40)]);
        // run 7 finished: a new run takes what came since
        let done = [p(0, 150, Some((100, c(7, 100, 100, 90)))), p(0, 80, Some((60, c(7, 60, 60, 60))))];
        assert_eq!(starts(&done, false, 500), vec![fresh(100, 150), fresh(60, 80)]);
        // retention took records below the committed offset; foreign metadata
        let odd = [
            p(120, 150, Some((100, c(7, 100, 100, 90)))),
            Committed { low: 0, high: 9, offset: Some((4, "x".into())) },
        ];
        assert_eq!(starts(&odd, false, 500), vec![fresh(120, 150), fresh(4, 9)]);
    }
}
