//! Where each assigned partition is in its life, as one map from partition
//! to one state: a partition cannot be restoring and ready at once, or
//! parked and awaiting, because there is one entry per partition. The
//! transitions are the methods below; they change the map and hand back
//! what the caller must do outside it (start a restore, join a thread,
//! close a store), so they are table-tested without Kafka or RocksDB.
//!
//! ```text
//!  assign ──► Awaiting ──store free──► Restoring ──done──► ToResume ──resumed──► Ready
//!    │  (store held by another thread)     ▲   │ revoke          │ revoke(eager)   │ revoke(eager)
//!    │                                     │   ▼                 ▼                 ▼
//!    └──────────── Parked ◄────────────────┼─ WindingDown      Parked            Parked
//!                    │ assign again        │   (assign: joined, then Awaiting)
//!                    └─────────────────────┘
//!  resync (a transaction's outcome is unknown): Ready, ToResume ──► Restoring, resuming at the committed offset
//! ```

use super::super::stage::Part;
use crate::store::{Store, StoreMeta};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

/// Where a partition's input resumes once its store is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seek {
    /// The first offset dropped while it restored.
    To(i64),
    /// The group's committed offset (after a resync: the consumer's own
    /// position may be past records whose transaction did not commit).
    Committed,
}

/// A partition assigned here whose store another processing thread of this
/// process still has open: that thread closes it when its own loop hears
/// of the revocation, which can take as long as a broker outage. Waiting on
/// the spot could deadlock two threads that swap partitions, so the store
/// is asked for again from the loop.
#[derive(Debug)]
pub struct Awaiting {
    pub since: Instant,
    pub next_try: Instant,
    /// Not a hand-over between threads (closed here long ago): a restore
    /// that makes the instance unready follows.
    pub unready: bool,
    /// Waited past its patience: said so, and blocks readiness.
    pub overdue: bool,
    pub seek: Option<Seek>,
}

/// A restore running on its own thread.
#[derive(Debug)]
pub struct Restore {
    pub cancel: Arc<AtomicBool>,
    pub thread: JoinHandle<()>,
}

/// The state of one assigned (or just revoked) partition.
pub enum PartState {
    /// Assigned; its store is still open in another thread of this process.
    Awaiting(Awaiting),
    /// Its store catches up with the changelog on a thread of its own.
    Restoring { restore: Restore, seek: Option<Seek> },
    /// Restored; its input is not resumed yet (that needs the broker), so
    /// nothing is taken from it before its seek.
    ToResume { store: Box<dyn Store>, meta: StoreMeta, seek: Option<Seek> },
    /// Consumed: its store holds every committed batch's state.
    Ready { store: Box<dyn Store>, meta: StoreMeta },
    /// Revoked by an eager rebalance, store kept open for the assignment
    /// that follows (closing flushes its memtable, and most come back).
    Parked(Box<dyn Store>),
    /// Revoked while restoring: the cancelled restore may still hold the
    /// store, in its thread and then in its report.
    WindingDown(JoinHandle<()>),
}

/// The states' names, for tests and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Awaiting,
    Restoring,
    ToResume,
    Ready,
    Parked,
    WindingDown,
}

impl PartState {
    pub fn phase(&self) -> Phase {
        match self {
            PartState::Awaiting(_) => Phase::Awaiting,
            PartState::Restoring { .. } => Phase::Restoring,
            PartState::ToResume { .. } => Phase::ToResume,
            PartState::Ready { .. } => Phase::Ready,
            PartState::Parked(_) => Phase::Parked,
            PartState::WindingDown(_) => Phase::WindingDown,
        }
    }
}

/// What an assignment asks of the caller.
pub enum Assigned {
    /// Already assigned here (a repeated assignment): nothing to do.
    Known,
    /// A parked store came back: restore it (a catch-up check) at once.
    Reopen(Box<dyn Store>),
    /// A store to open: first join the restore that was winding down, if
    /// any; the partition now awaits its store.
    Open { wound_down: Option<JoinHandle<()>> },
}

/// What a revocation leaves for the caller.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Revoked {
    /// It was waiting for its store (the awaiting count goes down).
    pub was_awaiting: bool,
    /// Its restore was cancelled and winds down.
    pub cancelled_restore: bool,
}

/// Every partition's state.
#[derive(Default)]
pub struct PartitionMap {
    parts: HashMap<Part, PartState>,
}

impl PartitionMap {
    pub fn phase(&self, part: Part) -> Option<Phase> {
        self.parts.get(&part).map(PartState::phase)
    }

    pub fn is_ready(&self, part: Part) -> bool {
        self.phase(part) == Some(Phase::Ready)
    }

    /// A ready partition's store.
    pub fn store(&self, part: Part) -> Option<&dyn Store> {
        match self.parts.get(&part) {
            Some(PartState::Ready { store, .. }) => Some(store.as_ref()),
            _ => None,
        }
    }

    /// A ready partition's store and the offsets it reflects.
    pub fn ready_mut(&mut self, part: Part) -> Option<(&mut Box<dyn Store>, &mut StoreMeta)> {
        match self.parts.get_mut(&part) {
            Some(PartState::Ready { store, meta }) => Some((store, meta)),
            _ => None,
        }
    }

    /// The ready stores.
    pub fn ready(&self) -> impl Iterator<Item = (Part, &dyn Store)> {
        self.parts.iter().filter_map(|(p, s)| match s {
            PartState::Ready { store, .. } => Some((*p, store.as_ref())),
            _ => None,
        })
    }

    /// Partitions in `phase`.
    pub fn in_phase(&self, phase: Phase) -> Vec<Part> {
        let mut out: Vec<Part> = self.parts.iter().filter(|(_, s)| s.phase() == phase).map(|(p, _)| *p).collect();
        out.sort();
        out
    }

    /// Whether any partition is ready (consumed, its store open).
    pub fn has_ready(&self) -> bool {
        self.parts.values().any(|s| s.phase() == Phase::Ready)
    }

    /// A newly assigned partition.
    pub fn assign(&mut self, part: Part) -> Assigned {
        match self.parts.entry(part) {
            Entry::Occupied(e) => match e.get().phase() {
                Phase::Awaiting | Phase::Restoring | Phase::ToResume | Phase::Ready => Assigned::Known,
                Phase::Parked => match e.remove() {
                    PartState::Parked(store) => Assigned::Reopen(store),
                    _ => unreachable!("matched parked"),
                },
                Phase::WindingDown => match e.remove() {
                    PartState::WindingDown(thread) => Assigned::Open { wound_down: Some(thread) },
                    _ => unreachable!("matched winding down"),
                },
            },
            Entry::Vacant(_) => Assigned::Open { wound_down: None },
        }
    }

    /// The partition waits for its store (after [`Assigned::Open`]).
    pub fn await_store(&mut self, part: Part, unready: bool, now: Instant) {
        let w = Awaiting { since: now, next_try: now, unready, overdue: false, seek: None };
        self.parts.insert(part, PartState::Awaiting(w));
    }

    pub fn awaiting_mut(&mut self, part: Part) -> Option<&mut Awaiting> {
        match self.parts.get_mut(&part) {
            Some(PartState::Awaiting(w)) => Some(w),
            _ => None,
        }
    }

    /// Awaiting partitions due to ask for their store again.
    pub fn due(&self, now: Instant) -> Vec<Part> {
        let mut out: Vec<Part> = self
            .parts
            .iter()
            .filter(|(_, s)| matches!(s, PartState::Awaiting(w) if w.next_try <= now))
            .map(|(p, _)| *p)
            .collect();
        out.sort();
        out
    }

    /// Its store could be opened: it no longer awaits (the caller starts
    /// its restore with the returned wait's `unready` and `seek`).
    pub fn store_opened(&mut self, part: Part) -> Option<Awaiting> {
        match self.parts.remove(&part) {
            Some(PartState::Awaiting(w)) => Some(w),
            Some(other) => {
                self.parts.insert(part, other);
                None
            }
            None => None,
        }
    }

    /// Its restore started.
    pub fn restoring(&mut self, part: Part, restore: Restore, seek: Option<Seek>) {
        self.parts.insert(part, PartState::Restoring { restore, seek });
    }

    /// Its restore finished: the thread to join, and the partition now
    /// waits for its resume. None when it is not restoring any more (a
    /// revocation cancelled it): the report's store is dropped.
    pub fn restored(&mut self, part: Part, store: Box<dyn Store>, meta: StoreMeta) -> Option<JoinHandle<()>> {
        match self.parts.remove(&part) {
            Some(PartState::Restoring { restore, seek }) => {
                self.parts.insert(part, PartState::ToResume { store, meta, seek });
                Some(restore.thread)
            }
            Some(other) => {
                self.parts.insert(part, other);
                None
            }
            None => None,
        }
    }

    /// A record of a partition not consumed yet was dropped: its input
    /// resumes from the first such offset.
    pub fn dropped(&mut self, part: Part, offset: i64) {
        let seek = match self.parts.get_mut(&part) {
            Some(PartState::Awaiting(w)) => &mut w.seek,
            Some(PartState::Restoring { seek, .. } | PartState::ToResume { seek, .. }) => seek,
            _ => return,
        };
        seek.get_or_insert(Seek::To(offset));
    }

    /// Where a restored partition resumes, while it waits for its resume.
    pub fn seek_of(&self, part: Part) -> Option<Seek> {
        match self.parts.get(&part) {
            Some(PartState::ToResume { seek, .. }) => *seek,
            _ => None,
        }
    }

    /// Its input resumed: it is consumed from now on.
    pub fn resumed(&mut self, part: Part) -> bool {
        match self.parts.remove(&part) {
            Some(PartState::ToResume { store, meta, .. }) => {
                self.parts.insert(part, PartState::Ready { store, meta });
                true
            }
            Some(other) => {
                self.parts.insert(part, other);
                false
            }
            None => false,
        }
    }

    /// The stores to restore again after a transaction whose outcome is
    /// unknown (ready or waiting for their resume); they leave the map
    /// until their restores start.
    pub fn take_for_resync(&mut self) -> Vec<(Part, Box<dyn Store>)> {
        let parts: Vec<Part> = self.in_phase(Phase::Ready).into_iter().chain(self.in_phase(Phase::ToResume)).collect();
        parts
            .into_iter()
            .map(|part| match self.parts.remove(&part) {
                Some(PartState::Ready { store, .. } | PartState::ToResume { store, .. }) => (part, store),
                _ => unreachable!("listed as ready or to resume"),
            })
            .collect()
    }

    /// A revoked partition: an open store is parked (`park`: an eager
    /// rebalance, the partition likely comes back) or closed; a restore is
    /// cancelled and winds down; a wait for the store ends.
    pub fn revoke(&mut self, part: Part, park: bool) -> Revoked {
        let mut out = Revoked::default();
        let Some(state) = self.parts.remove(&part) else { return out };
        match state {
            PartState::Ready { store, .. } | PartState::ToResume { store, .. } if park => {
                self.parts.insert(part, PartState::Parked(store));
            }
            PartState::Ready { .. } | PartState::ToResume { .. } => {}
            PartState::Awaiting(_) => out.was_awaiting = true,
            PartState::Restoring { restore, .. } => {
                restore.cancel.store(true, Ordering::Relaxed);
                self.parts.insert(part, PartState::WindingDown(restore.thread));
                out.cancelled_restore = true;
            }
            // revoked again before the next assignment: as it was
            kept @ (PartState::Parked(_) | PartState::WindingDown(_)) => {
                self.parts.insert(part, kept);
            }
        }
        out
    }

    /// An assignment arrived: the parked stores it does not bring back
    /// close now, before any store is opened (another thread of this
    /// process may be waiting to open one of them).
    pub fn unpark_except(&mut self, assigned: &std::collections::HashSet<Part>) {
        self.parts.retain(|part, s| !matches!(s, PartState::Parked(_)) || assigned.contains(part));
    }

    /// Empties the map (shutdown): restores are cancelled, every thread is
    /// returned to be joined, every store closed; the partitions that were
    /// awaiting their stores are returned too.
    pub fn close(&mut self) -> (Vec<JoinHandle<()>>, Vec<Part>) {
        let (mut threads, mut awaiting) = (Vec::new(), Vec::new());
        for (part, state) in self.parts.drain() {
            match state {
                PartState::Restoring { restore, .. } => {
                    restore.cancel.store(true, Ordering::Relaxed);
                    threads.push(restore.thread);
                }
                PartState::WindingDown(thread) => threads.push(thread),
                PartState::Awaiting(_) => awaiting.push(part),
                PartState::ToResume { .. } | PartState::Ready { .. } | PartState::Parked(_) => {}
            }
        }
        (threads, awaiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::stage::Stage;
    use crate::store::MemStore;

    fn store() -> Box<dyn Store> {
        Box::new(MemStore::default())
    }

    fn restore() -> Restore {
        Restore { cancel: Arc::new(AtomicBool::new(false)), thread: std::thread::spawn(|| ()) }
    }

    /// One step of a partition's life.
    #[derive(Debug, Clone, Copy)]
    enum Op {
        Assign,
        StoreOpened,
        Restored,
        Dropped(i64),
        Resumed,
        Revoke { park: bool },
        Resync,
    }

    /// Applies `op` as the shell does (starting restores, joining threads).
    fn apply(m: &mut PartitionMap, part: Part, op: Op) {
        match op {
            Op::Assign => match m.assign(part) {
                Assigned::Known => {}
                Assigned::Reopen(_) => m.restoring(part, restore(), None),
                Assigned::Open { wound_down } => {
                    if let Some(t) = wound_down {
                        t.join().unwrap();
                    }
                    m.await_store(part, true, Instant::now());
                }
            },
            Op::StoreOpened => {
                if let Some(w) = m.store_opened(part) {
                    m.restoring(part, restore(), w.seek);
                }
            }
            Op::Restored => {
                if let Some(t) = m.restored(part, store(), StoreMeta::default()) {
                    t.join().unwrap();
                }
            }
            Op::Dropped(o) => m.dropped(part, o),
            Op::Resumed => {
                m.resumed(part);
            }
            Op::Revoke { park } => {
                m.revoke(part, park);
            }
            Op::Resync => {
                for (p, _) in m.take_for_resync() {
                    m.restoring(p, restore(), Some(Seek::Committed));
                }
            }
        }
    }

    #[test]
    fn every_transition_leads_where_the_table_says() {
        use Op::*;
        use Phase as P;
        let eager = Revoke { park: true };
        let coop = Revoke { park: false };
        // (the steps from nothing, the phase after each)
        let table: &[(&[Op], &[Option<Phase>])] = &[
            (
                &[Assign, StoreOpened, Restored, Resumed],
                &[Some(P::Awaiting), Some(P::Restoring), Some(P::ToResume), Some(P::Ready)],
            ),
            // assigned twice: nothing changes
            (
                &[Assign, Assign, StoreOpened, Assign],
                &[Some(P::Awaiting), Some(P::Awaiting), Some(P::Restoring), Some(P::Restoring)],
            ),
            // eager rebalance: parked, then reopened and checked
            (
                &[Assign, StoreOpened, Restored, Resumed, eager, Assign, Restored, Resumed],
                &[
                    Some(P::Awaiting),
                    Some(P::Restoring),
                    Some(P::ToResume),
                    Some(P::Ready),
                    Some(P::Parked),
                    Some(P::Restoring),
                    Some(P::ToResume),
                    Some(P::Ready),
                ],
            ),
            // a parked store revoked again stays parked; a cooperative revoke closes
            (
                &[Assign, StoreOpened, Restored, Resumed, eager, eager, Assign, Restored, Resumed, coop],
                &[
                    Some(P::Awaiting),
                    Some(P::Restoring),
                    Some(P::ToResume),
                    Some(P::Ready),
                    Some(P::Parked),
                    Some(P::Parked),
                    Some(P::Restoring),
                    Some(P::ToResume),
                    Some(P::Ready),
                    None,
                ],
            ),
            // revoked while restoring: winds down; assigned again: awaits its store
            (
                &[Assign, StoreOpened, eager, eager, Assign, StoreOpened],
                &[
                    Some(P::Awaiting),
                    Some(P::Restoring),
                    Some(P::WindingDown),
                    Some(P::WindingDown),
                    Some(P::Awaiting),
                    Some(P::Restoring),
                ],
            ),
            // a finished restore whose partition was revoked is not taken
            (
                &[Assign, StoreOpened, coop, Restored],
                &[Some(P::Awaiting), Some(P::Restoring), Some(P::WindingDown), Some(P::WindingDown)],
            ),
            // revoked while awaiting its store: gone
            (&[Assign, eager], &[Some(P::Awaiting), None]),
            // restored but not resumed, revoked by an eager rebalance: parked
            (
                &[Assign, StoreOpened, Restored, eager],
                &[Some(P::Awaiting), Some(P::Restoring), Some(P::ToResume), Some(P::Parked)],
            ),
            // resync: ready and to-resume partitions restore again
            (
                &[Assign, StoreOpened, Restored, Resumed, Resync, Restored, Resync],
                &[
                    Some(P::Awaiting),
                    Some(P::Restoring),
                    Some(P::ToResume),
                    Some(P::Ready),
                    Some(P::Restoring),
                    Some(P::ToResume),
                    Some(P::Restoring),
                ],
            ),
            // operations that do not apply to a state change nothing
            (&[Resumed, Restored, StoreOpened, Dropped(3), coop], &[None, None, None, None, None]),
        ];
        let part = Part::new(Stage::Device, 3);
        for (i, (ops, phases)) in table.iter().enumerate() {
            let mut m = PartitionMap::default();
            let got: Vec<Option<Phase>> = ops
                .iter()
                .map(|op| {
                    apply(&mut m, part, *op);
                    m.phase(part)
                })
                .collect();
            assert_eq!(got, phases.to_vec(), "row {i}: {ops:?}");
            m.close().0.into_iter().for_each(|t| t.join().unwrap());
        }
    }

    #[test]
    fn the_first_dropped_offset_is_where_the_input_resumes_unless_a_resync_says_committed() {
        let part = Part::new(Stage::User, 1);
        let mut m = PartitionMap::default();
        for op in [Op::Assign, Op::Dropped(7), Op::StoreOpened, Op::Dropped(9), Op::Restored] {
            apply(&mut m, part, op);
        }
        assert_eq!(m.seek_of(part), Some(Seek::To(7)));
        apply(&mut m, part, Op::Resync);
        apply(&mut m, part, Op::Restored);
        assert_eq!(m.seek_of(part), Some(Seek::Committed));
        apply(&mut m, part, Op::Resumed);
        assert!(m.is_ready(part));
        assert!(m.store(part).is_some());
        // a ready partition drops nothing
        m.dropped(part, 12);
        assert_eq!(m.seek_of(part), None);
    }

    #[test]
    fn an_assignment_closes_the_parked_stores_it_does_not_bring_back() {
        let (a, b) = (Part::new(Stage::Device, 0), Part::new(Stage::Device, 1));
        let mut m = PartitionMap::default();
        for part in [a, b] {
            for op in [Op::Assign, Op::StoreOpened, Op::Restored, Op::Resumed, Op::Revoke { park: true }] {
                apply(&mut m, part, op);
            }
        }
        m.unpark_except(&[a].into_iter().collect());
        assert_eq!((m.phase(a), m.phase(b)), (Some(Phase::Parked), None));
        assert!(!m.has_ready(), "parked stores are not ready");
    }
}
