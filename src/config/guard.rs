//! librdkafka settings that `[kafka.client]`, `[kafka.consumer]` and
//! `[kafka.producer]` may not set: exactly-once and the commit protocol
//! depend on postback's own values, and a generic client config pasted in
//! would otherwise switch them off without a word. Every other key passes
//! through to librdkafka as written. The table is the documentation too
//! (`docs/operations/kafka.md` lists it, and a test keeps the two equal).

/// A refused key and why.
pub struct Guarded {
    pub key: &'static str,
    pub why: &'static str,
}

/// Keys postback sets itself and the operator may not.
pub const GUARDED: &[Guarded] = &[
    Guarded { key: "bootstrap.servers", why: "set kafka.bootstrap_servers instead" },
    Guarded {
        key: "group.id",
        why: "postback names its groups (kafka.group_id, kafka.sender_group_id, and helper groups derived from them); one group.id for every client would mix the processor's, the sender's and the restores' members",
    },
    Guarded {
        key: "group.instance.id",
        why: "derived from kafka.instance_id per processing thread (kafka.static_membership); one id for every client would fence the others",
    },
    Guarded {
        key: "transactional.id",
        why: "derived from kafka.group_id and kafka.instance_id, one per processing thread; a fixed one would fence every other thread and instance",
    },
    Guarded {
        key: "enable.idempotence",
        why: "exactly-once needs the idempotent producer: without it a retried batch can write a job twice",
    },
    Guarded {
        key: "acks",
        why: "the idempotent producer needs acks=all; anything less can lose a committed job when a broker fails",
    },
    Guarded {
        key: "isolation.level",
        why: "postback reads with read_committed; read_uncommitted would read the jobs, state and user activity of aborted transactions",
    },
    Guarded {
        key: "enable.auto.commit",
        why: "offsets are committed with each transaction (processor) or after delivery (sender); auto-commit would mark records done before they are",
    },
    Guarded {
        key: "enable.auto.offset.store",
        why: "postback stores offsets itself, only for records whose outcome is written",
    },
    Guarded {
        key: "auto.offset.reset",
        why: "a partition without a committed offset must be read from its start (earliest): otherwise events written before the group first ran are never processed, and a restore misses state",
    },
    Guarded {
        key: "partition.assignment.strategy",
        why: "the processor needs range assignment (each member gets its share of the input and of the user activity), the sender cooperative-sticky",
    },
    Guarded {
        key: "group.protocol",
        why: "the processor's rebalance handling (eager revoke, stores kept across a rebalance) is built for the classic group protocol",
    },
    Guarded {
        key: "group.remote.assignor",
        why: "only used by the consumer group protocol, which postback does not use",
    },
    Guarded {
        key: "enable.partition.eof",
        why: "a restore knows it has read a changelog to its end by it; the group consumers must not see it",
    },
];

/// Why `key` may not be set, when it may not.
pub fn refused(key: &str) -> Option<&'static str> {
    GUARDED.iter().find(|g| g.key.eq_ignore_ascii_case(key.trim())).map(|g| g.why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_guarded_key_is_refused_and_others_pass() {
        for g in GUARDED {
            assert_eq!(refused(g.key), Some(g.why));
        }
        assert_eq!(refused("Isolation.Level"), Some(GUARDED[6].why));
        assert_eq!(refused("security.protocol"), None);
        assert_eq!(refused("transaction.timeout.ms"), None);
    }

    /// The table in the docs is this one, row for row.
    #[test]
    fn the_docs_list_every_guarded_key() {
        let doc = include_str!("../../docs/operations/kafka.md");
        let rows: Vec<&str> = doc.lines().filter(|l| l.starts_with("| `")).collect();
        let want: Vec<String> = GUARDED.iter().map(|g| format!("| `{}` | {} |", g.key, g.why)).collect();
        let guarded_rows: Vec<&str> = rows
            .iter()
            .copied()
            .filter(|r| GUARDED.iter().any(|g| r.starts_with(&format!("| `{}` |", g.key))))
            .collect();
        assert_eq!(guarded_rows, want, "docs/operations/kafka.md's table differs from GUARDED");
    }
}
