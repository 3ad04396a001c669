//! Store directories open in this process. RocksDB refuses to open one
//! directory twice; with `process.threads`, a partition can move from one
//! processing thread to another of the same process, and its old owner
//! closes the store a moment after the new owner is assigned it. The new
//! owner waits for that instead of failing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

static HELD: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
static RELEASED: Condvar = Condvar::new();

/// A directory held open; released when dropped.
#[derive(Debug)]
pub struct Lease {
    path: PathBuf,
}

impl Lease {
    /// Takes `path`, waiting up to `wait` for another holder in this
    /// process to let it go. `None`: still held after `wait`.
    pub fn take(path: &Path, wait: Duration) -> Option<Lease> {
        let deadline = Instant::now() + wait;
        let mut held = HELD.lock().expect("store lease lock");
        loop {
            if held.insert(path.to_owned()) {
                return Some(Lease { path: path.to_owned() });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            held = RELEASED.wait_timeout(held, left).expect("store lease lock").0;
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        HELD.lock().expect("store lease lock").remove(&self.path);
        RELEASED.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_directory_is_taken_once_its_holder_lets_it_go() {
        let path = std::env::temp_dir().join("postback-lease-test");
        let first = Lease::take(&path, Duration::ZERO).expect("free");
        assert!(Lease::take(&path, Duration::from_millis(20)).is_none(), "held by the first lease");
        let holder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(first);
        });
        let second = Lease::take(&path, Duration::from_secs(10));
        assert!(second.is_some(), "taken once the first was dropped");
        holder.join().unwrap();
    }
}
