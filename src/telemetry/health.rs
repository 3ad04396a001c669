//! Readiness: the reasons the instance is not ready ("restoring device-3",
//! "processor: cannot commit: broker down"). `/readyz` is 200 when there
//! are none, else 503 with the reasons. A reason is a fixed key, optionally
//! with a detail that can change while the reason holds.

use super::metrics::metrics;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Default, Clone)]
pub struct Health {
    /// Reason -> detail ("" for none).
    not_ready: Arc<Mutex<BTreeMap<String, String>>>,
    /// Appended to the reasons of this handle (`[processor-1]`), so that
    /// processing threads holding the same reason do not lift each other's.
    scope: Option<Arc<str>>,
}

impl Health {
    pub fn new() -> Health {
        Health::default()
    }

    /// The same readiness, with this handle's reasons told apart by `scope`.
    pub fn scoped(&self, scope: &str) -> Health {
        Health { not_ready: Arc::clone(&self.not_ready), scope: Some(scope.into()) }
    }

    fn key(&self, reason: String) -> String {
        match &self.scope {
            Some(scope) => format!("{reason} [{scope}]"),
            None => reason,
        }
    }

    pub fn block(&self, reason: impl Into<String>) {
        self.block_with(reason, "");
    }

    /// Holds `reason`, with `detail` (replacing an earlier one).
    pub fn block_with(&self, reason: impl Into<String>, detail: impl Into<String>) {
        let mut map = self.not_ready.lock().expect("health lock");
        map.insert(self.key(reason.into()), detail.into());
        metrics().set_ready(false);
    }

    pub fn unblock(&self, reason: &str) {
        let mut map = self.not_ready.lock().expect("health lock");
        map.remove(&self.key(reason.to_owned()));
        metrics().set_ready(map.is_empty());
    }

    /// Reasons the instance is not ready ("reason: detail"); empty when ready.
    pub fn reasons(&self) -> Vec<String> {
        let map = self.not_ready.lock().expect("health lock");
        map.iter().map(|(r, d)| if d.is_empty() { r.clone() } else { format!("{r}: {d}") }).collect()
    }

    pub fn is_ready(&self) -> bool {
        self.not_ready.lock().expect("health lock").is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_carry_their_latest_detail() {
        let h = Health::new();
        h.block("starting");
        h.block_with("processor: cannot commit", "broker down since 10:00");
        h.block_with("processor: cannot commit", "broker down since 10:01");
        assert_eq!(h.reasons(), vec!["processor: cannot commit: broker down since 10:01", "starting"]);
        h.unblock("starting");
        h.unblock("processor: cannot commit");
        assert!(h.is_ready());
    }

    #[test]
    fn scoped_handles_hold_the_same_reason_apart() {
        let h = Health::new();
        let (a, b) = (h.scoped("processor-0"), h.scoped("processor-1"));
        a.block("restoring device-3");
        b.block_with("restoring device-3", "12%");
        a.unblock("restoring device-3");
        assert_eq!(h.reasons(), vec!["restoring device-3 [processor-1]: 12%"]);
        b.unblock("restoring device-3");
        assert!(h.is_ready());
    }
}
