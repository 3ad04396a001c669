//! The gate between the commit thread and the thread that polls: whether a
//! transaction's commit is in flight. Its own module because both sides
//! hold it — the transaction enters and leaves it, the batch source waits on
//! it when a partition is revoked — and neither should depend on the other.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Whether a commit is in flight. The revocation callback waits on it, so a
/// partition leaves only once its last transaction has an outcome. Each
/// commit holds a ticket, so a commit thread abandoned as hung that returns
/// later cannot mark a newer commit as settled.
#[derive(Default)]
pub struct Gate {
    /// The ticket of the commit in flight (0: none) and the last issued.
    pub(super) busy: Mutex<(u64, u64)>,
    idle: Condvar,
}

impl Gate {
    pub(super) fn enter(&self) -> u64 {
        let mut g = self.busy.lock().expect("gate lock");
        g.1 += 1;
        g.0 = g.1;
        g.1
    }

    pub(super) fn leave(&self, ticket: u64) {
        let mut g = self.busy.lock().expect("gate lock");
        if g.0 == ticket {
            g.0 = 0;
            self.idle.notify_all();
        }
    }

    /// Blocks until no commit is in flight or `timeout` passed.
    pub fn wait_idle(&self, timeout: Duration) {
        let busy = self.busy.lock().expect("gate lock");
        let _ = self.idle.wait_timeout_while(busy, timeout, |b| b.0 != 0).expect("gate lock");
    }
}
