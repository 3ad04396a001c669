//! Readiness while the processing thread is stuck in a call to the broker.
//!
//! librdkafka's transactional calls can block far longer than the timeout
//! they are given (`send_offsets_to_transaction` waits for its request's
//! own 60 s socket timeout when the broker hangs). A blocked thread cannot
//! report itself, so a small watcher thread does: once a watched call has
//! run for [`REPORT_AFTER`], `/readyz` turns 503 with what it waits for.
//! The reason is cleared by the next successful commit, or by the
//! coordinator answering the recovery's abort or new producer — not by the
//! call returning (a call that returns an error has not recovered anything).

use crate::telemetry::{Health, Reason};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// How long a call may take before readiness says so.
pub const REPORT_AFTER: Duration = Duration::from_secs(5);

/// The watched call of each thread (the processing and the commit thread).
type Current = Arc<Mutex<HashMap<ThreadId, (Instant, &'static str)>>>;

pub struct StallWatch {
    current: Current,
    stop: Arc<AtomicBool>,
}

/// Watches calls on another thread (the commit thread) for the same watcher.
#[derive(Clone)]
pub struct StallHandle {
    current: Current,
}

impl StallHandle {
    /// Runs `f`, a call that may block on the broker, under watch.
    pub fn during<T>(&self, what: &'static str, f: impl FnOnce() -> T) -> T {
        watched(&self.current, what, f)
    }

    /// Stops watching `thread`'s call: a thread left behind stuck in a call
    /// (its producer replaced) no longer says anything about readiness.
    pub fn forget(&self, thread: ThreadId) {
        self.current.lock().expect("stall lock").remove(&thread);
    }

    /// Calls under watch now.
    #[cfg(test)]
    pub fn watched_calls(&self) -> usize {
        self.current.lock().expect("stall lock").len()
    }
}

fn watched<T>(current: &Current, what: &'static str, f: impl FnOnce() -> T) -> T {
    let me = std::thread::current().id();
    current.lock().expect("stall lock").insert(me, (Instant::now(), what));
    let result = f();
    current.lock().expect("stall lock").remove(&me);
    result
}

impl StallWatch {
    /// Starts the watcher thread; it ends when the watch is dropped.
    pub fn spawn(health: Health) -> std::io::Result<StallWatch> {
        let (current, stop) = (Current::default(), Arc::new(AtomicBool::new(false)));
        let (watched, stopped) = (Arc::clone(&current), Arc::clone(&stop));
        std::thread::Builder::new().name("stall-watch".into()).spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(500));
                // the longest-running watched call
                let call = watched.lock().expect("stall lock").values().min_by_key(|(since, _)| *since).copied();
                if let Some((since, what)) = call.filter(|(since, _)| since.elapsed() >= REPORT_AFTER) {
                    let waited = since.elapsed().as_secs();
                    health.block_with(Reason::CannotCommit, format!("{what} waiting {waited}s for the broker"));
                }
            }
        })?;
        Ok(StallWatch { current, stop })
    }

    /// Runs `f`, a call that may block on the broker, under watch.
    pub fn during<T>(&self, what: &'static str, f: impl FnOnce() -> T) -> T {
        watched(&self.current, what, f)
    }

    /// A handle for another thread's calls.
    pub fn handle(&self) -> StallHandle {
        StallHandle { current: Arc::clone(&self.current) }
    }
}

impl Drop for StallWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_call_is_reported_and_a_short_one_is_not() {
        let health = Health::new();
        let watch = StallWatch::spawn(health.clone()).unwrap();
        watch.during("quick", || std::thread::sleep(Duration::from_millis(100)));
        assert!(health.is_ready());
        watch.during("send_offsets_to_transaction", || std::thread::sleep(REPORT_AFTER + Duration::from_millis(700)));
        assert_eq!(
            health.reasons(),
            vec!["processor: cannot commit: send_offsets_to_transaction waiting 5s for the broker"]
        );
    }

    #[test]
    fn a_call_on_another_thread_is_reported_through_a_handle() {
        let health = Health::new();
        let watch = StallWatch::spawn(health.clone()).unwrap();
        let handle = watch.handle();
        let other = std::thread::spawn(move || {
            handle
                .during("send_offsets_to_transaction", || std::thread::sleep(REPORT_AFTER + Duration::from_millis(700)))
        });
        // a quick call of this thread meanwhile does not hide the other one's
        watch.during("quick", || std::thread::sleep(Duration::from_millis(100)));
        other.join().unwrap();
        assert_eq!(
            health.reasons(),
            vec!["processor: cannot commit: send_offsets_to_transaction waiting 5s for the broker"]
        );
    }
}
