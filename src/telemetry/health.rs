//! Readiness: the reasons the instance is not ready. `/readyz` is 200 when
//! there are none, else 503 with the reasons ("restoring device-3",
//! "processor: cannot commit: broker down"). Every reason is a [`Reason`],
//! so the texts an operator reads are written once, here, and
//! docs/operations/observability.md lists each (a test checks); a reason
//! may carry a detail that changes while it holds.

use super::metrics::metrics;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// A state store named in a reason: `device-3`, `user-0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreName {
    pub stage: &'static str,
    pub partition: i32,
}

impl fmt::Display for StoreName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.stage, self.partition)
    }
}

/// Why an instance is not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The service has not started its stages yet.
    Starting,
    /// No broker answers (the detail says why: refused credentials, an
    /// untrusted certificate, nothing listening).
    KafkaUnreachable,
    /// A stage of the process failed; the others are stopping.
    StageFailed,
    /// The sender has not joined its group yet.
    SenderStarting,
    /// The processor's transactional producer is not initialised yet.
    ProducerNotReady,
    /// The processor waits for a partition assignment (or cannot join).
    NotJoined,
    /// The processing stage stopped with an error.
    Stopped,
    /// A transaction cannot commit (the broker is away, or recovering).
    CannotCommit,
    /// A store restores from its changelog.
    Restoring(StoreName),
    /// A store is still open in another processing thread of this process.
    StoreHeld(StoreName),
    /// The schema registry gives no usable answer; the text says which.
    Registry(&'static str),
}

impl Reason {
    /// One of each kind, for the docs' table and its test.
    pub const EXAMPLES: [Reason; 11] = [
        Reason::Starting,
        Reason::KafkaUnreachable,
        Reason::StageFailed,
        Reason::SenderStarting,
        Reason::ProducerNotReady,
        Reason::NotJoined,
        Reason::Stopped,
        Reason::CannotCommit,
        Reason::Restoring(StoreName { stage: "device", partition: 3 }),
        Reason::StoreHeld(StoreName { stage: "device", partition: 0 }),
        Reason::Registry("processor: schema registry unreachable"),
    ];
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Starting => f.write_str("starting"),
            Reason::KafkaUnreachable => f.write_str("kafka unreachable"),
            Reason::StageFailed => f.write_str("stage failed"),
            Reason::SenderStarting => f.write_str("sender: starting"),
            Reason::ProducerNotReady => f.write_str("processor: producer not initialised"),
            Reason::NotJoined => f.write_str("processor: waiting for a partition assignment"),
            Reason::Stopped => f.write_str("processor: stopped"),
            Reason::CannotCommit => f.write_str("processor: cannot commit"),
            Reason::Restoring(store) => write!(f, "restoring {store}"),
            Reason::StoreHeld(store) => write!(f, "store {store} still open in another processing thread"),
            Reason::Registry(text) => f.write_str(text),
        }
    }
}

/// A reason as held: the reason, and the scope of the handle that holds it.
type Held = (Reason, Option<Arc<str>>);

#[derive(Debug, Default, Clone)]
pub struct Health {
    /// Reason -> detail ("" for none).
    not_ready: Arc<Mutex<BTreeMap<Held, String>>>,
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

    pub fn block(&self, reason: Reason) {
        self.block_with(reason, "");
    }

    /// Holds `reason`, with `detail` (replacing an earlier one).
    pub fn block_with(&self, reason: Reason, detail: impl Into<String>) {
        let mut map = self.not_ready.lock().expect("health lock");
        map.insert((reason, self.scope.clone()), detail.into());
        metrics().set_ready(false);
    }

    pub fn unblock(&self, reason: Reason) {
        let mut map = self.not_ready.lock().expect("health lock");
        map.remove(&(reason, self.scope.clone()));
        metrics().set_ready(map.is_empty());
    }

    /// Reasons the instance is not ready ("reason [scope]: detail"), in
    /// text order; empty when ready.
    pub fn reasons(&self) -> Vec<String> {
        let map = self.not_ready.lock().expect("health lock");
        let mut out: Vec<String> = map
            .iter()
            .map(|((reason, scope), detail)| {
                let mut s = reason.to_string();
                if let Some(scope) = scope {
                    s = format!("{s} [{scope}]");
                }
                if !detail.is_empty() {
                    s = format!("{s}: {detail}");
                }
                s
            })
            .collect();
        out.sort();
        out
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
        h.block(Reason::Starting);
        h.block_with(Reason::CannotCommit, "broker down since 10:00");
        h.block_with(Reason::CannotCommit, "broker down since 10:01");
        assert_eq!(h.reasons(), vec!["processor: cannot commit: broker down since 10:01", "starting"]);
        h.unblock(Reason::Starting);
        h.unblock(Reason::CannotCommit);
        assert!(h.is_ready());
    }

    #[test]
    fn scoped_handles_hold_the_same_reason_apart() {
        let h = Health::new();
        let (a, b) = (h.scoped("processor-0"), h.scoped("processor-1"));
        let restoring = Reason::Restoring(StoreName { stage: "device", partition: 3 });
        a.block(restoring);
        b.block_with(restoring, "12%");
        a.unblock(restoring);
        assert_eq!(h.reasons(), vec!["restoring device-3 [processor-1]: 12%"]);
        b.unblock(restoring);
        assert!(h.is_ready());
    }
}
