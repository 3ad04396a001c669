//! Store directories open in this process. RocksDB refuses to open one
//! directory twice; with `process.threads`, a partition can move from one
//! processing thread to another of the same process, and its old owner
//! closes the store only when its own loop hears of the revocation — which
//! can be long after the new owner is assigned it (the old owner may be
//! waiting out a broker outage). The new owner asks again later instead of
//! failing (`process::partitions`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

static HELD: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// A directory held open; released when dropped.
#[derive(Debug)]
pub struct Lease {
    path: PathBuf,
}

impl Lease {
    /// Takes `path`, unless another holder in this process has it.
    pub fn take(path: &Path) -> Option<Lease> {
        let mut held = HELD.lock().expect("store lease lock");
        held.insert(path.to_owned()).then(|| Lease { path: path.to_owned() })
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        HELD.lock().expect("store lease lock").remove(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_directory_is_taken_once_its_holder_lets_it_go() {
        let path = std::env::temp_dir().join("postback-lease-test");
        let first = Lease::take(&path).expect("free");
        assert!(Lease::take(&path).is_none(), "held by the first lease");
        drop(first);
        assert!(Lease::take(&path).is_some(), "taken once the first was dropped");
    }
}
