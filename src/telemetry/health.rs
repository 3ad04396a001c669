//! Readiness: a set of reasons the instance is not ready yet ("restoring
//! device-3", "producer not initialised"). `/readyz` is 200 when the set is
//! empty, else 503 with the reasons.

use super::metrics::metrics;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

#[derive(Debug, Default, Clone)]
pub struct Health {
    not_ready: Arc<Mutex<BTreeSet<String>>>,
}

impl Health {
    pub fn new() -> Health {
        Health::default()
    }

    pub fn block(&self, reason: impl Into<String>) {
        let mut set = self.not_ready.lock().expect("health lock");
        set.insert(reason.into());
        metrics().set_ready(false);
    }

    pub fn unblock(&self, reason: &str) {
        let mut set = self.not_ready.lock().expect("health lock");
        set.remove(reason);
        metrics().set_ready(set.is_empty());
    }

    /// Reasons the instance is not ready; empty when ready.
    pub fn reasons(&self) -> Vec<String> {
        self.not_ready.lock().expect("health lock").iter().cloned().collect()
    }

    pub fn is_ready(&self) -> bool {
        self.not_ready.lock().expect("health lock").is_empty()
    }
}
