//! Which keys a reload may change. Every key a running stage uses is
//! either read again for the next batch or job (hot), or fixed for the
//! life of the process (listed in [`RESTART_ONLY`] with why). A reload that
//! changes a restart-only key is refused whole, naming the key: the file
//! and the running process never disagree without a word. The docs' table
//! of these keys is this one (a test keeps them equal).

use super::Config;
use std::collections::BTreeSet;

/// A key (or a table of keys, ending in `.*`) fixed at start, and why.
pub struct RestartOnly {
    pub key: &'static str,
    pub why: &'static str,
}

pub const RESTART_ONLY: &[RestartOnly] = &[
    RestartOnly { key: "kafka.*", why: "the Kafka clients, their groups and transactional ids are made at start" },
    RestartOnly { key: "topics.*", why: "the topics are checked, created and subscribed to at start" },
    RestartOnly { key: "process.state_dir", why: "the open stores live there" },
    RestartOnly { key: "process.state_partitions", why: "read once, when the device changelog is created" },
    RestartOnly { key: "process.threads", why: "each thread is a group member with its own producer and stores" },
    RestartOnly {
        key: "input.max_record_bytes",
        why: "checked at start against the topics' record size limits (state records carry 6 copies)",
    },
    RestartOnly { key: "input.partitioned_by", why: "decides at start where each device's state is read" },
    RestartOnly { key: "schema_registry.*", why: "the registry client and its schema cache are made at start" },
    RestartOnly { key: "admin.*", why: "the admin server binds and mounts its routes at start" },
    RestartOnly {
        key: "send.retry_delays (how many)",
        why: "one retry topic per delay, subscribed to at start (the delays themselves are hot)",
    },
    RestartOnly { key: "send.max_in_flight", why: "sizes the sender's job budget at start" },
];

/// The restart-only keys whose values differ between `old` and `new`,
/// as key paths (`kafka.client."sasl.password"`, `topics.jobs`).
pub fn changes(old: &Config, new: &Config) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut diff = |key: &str, a: String, b: String| {
        if a != b {
            out.insert(key.to_owned());
        }
    };
    let (k0, k1) = (&old.kafka, &new.kafka);
    diff("kafka.bootstrap_servers", k0.bootstrap_servers.clone(), k1.bootstrap_servers.clone());
    diff("kafka.group_id", k0.group_id.clone(), k1.group_id.clone());
    diff("kafka.sender_group_id", k0.sender_group_id.clone(), k1.sender_group_id.clone());
    diff("kafka.instance_id", format!("{:?}", k0.instance_id), format!("{:?}", k1.instance_id));
    diff("kafka.static_membership", k0.static_membership.to_string(), k1.static_membership.to_string());
    for (table, a, b) in [
        ("client", &k0.client, &k1.client),
        ("consumer", &k0.consumer, &k1.consumer),
        ("producer", &k0.producer, &k1.producer),
    ] {
        let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for key in keys {
            diff(&format!("kafka.{table}.\"{key}\""), format!("{:?}", a.get(key)), format!("{:?}", b.get(key)));
        }
    }
    diff_fields(&mut diff, "topics", &old.topics, &new.topics);
    let (p0, p1) = (&old.process, &new.process);
    diff("process.state_dir", p0.state_dir.display().to_string(), p1.state_dir.display().to_string());
    diff("process.state_partitions", format!("{:?}", p0.state_partitions), format!("{:?}", p1.state_partitions));
    diff("process.threads", format!("{:?}", p0.threads), format!("{:?}", p1.threads));
    diff("input.max_record_bytes", old.input.max_record_bytes.to_string(), new.input.max_record_bytes.to_string());
    diff("input.partitioned_by", format!("{:?}", old.input.partitioned_by), format!("{:?}", new.input.partitioned_by));
    diff_fields(&mut diff, "schema_registry", &old.schema_registry, &new.schema_registry);
    diff_fields(&mut diff, "admin", &old.admin, &new.admin);
    diff("send.retry_delays", old.send.retry_delays.len().to_string(), new.send.retry_delays.len().to_string());
    diff("send.max_in_flight", old.send.max_in_flight.to_string(), new.send.max_in_flight.to_string());
    out
}

/// Compares a section field by field through its `Debug` form (`name: value`
/// pairs), so that a change names its key.
fn diff_fields<T: std::fmt::Debug>(diff: &mut impl FnMut(&str, String, String), section: &str, a: &T, b: &T) {
    let (fa, fb) = (fields(&format!("{a:#?}")), fields(&format!("{b:#?}")));
    if fa.is_empty() || fb.is_empty() {
        // absent on one side (an optional section): the section changed
        diff(section, format!("{a:?}"), format!("{b:?}"));
        return;
    }
    let names: BTreeSet<&String> = fa.keys().chain(fb.keys()).collect();
    for name in names {
        diff(&format!("{section}.{name}"), format!("{:?}", fa.get(name)), format!("{:?}", fb.get(name)));
    }
}

/// The top-level fields of a pretty `Debug` struct: name -> value text.
fn fields(pretty: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut current: Option<String> = None;
    for line in pretty.lines().skip(1) {
        // fields of the top level are indented by exactly four spaces
        if let Some(rest) = line.strip_prefix("    ").filter(|r| !r.starts_with(' ')) {
            if let Some((name, value)) = rest.split_once(": ") {
                out.insert(name.to_owned(), value.to_owned());
                current = Some(name.to_owned());
                continue;
            }
        }
        if let Some(name) = &current {
            out.entry(name.clone()).or_default().push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const BASE: &str = "[[apps]]\nid = \"game\"\nplatform = \"mobile\"\n[[partners]]\nid = \"acme\"\n";

    fn config(extra: &str) -> Config {
        crate::config::load_str(&format!("{BASE}{extra}"), Path::new("pb.toml"), Vec::<(String, String)>::new())
            .unwrap()
    }

    #[test]
    fn each_restart_only_key_is_named_when_it_changes() {
        let base = config("");
        let cases = [
            ("[kafka]\nbootstrap_servers = \"k2:9092\"", "kafka.bootstrap_servers"),
            ("[kafka]\ngroup_id = \"g2\"", "kafka.group_id"),
            ("[kafka]\nsender_group_id = \"s2\"", "kafka.sender_group_id"),
            ("[kafka]\ninstance_id = \"i2\"", "kafka.instance_id"),
            ("[kafka]\nstatic_membership = false", "kafka.static_membership"),
            ("[kafka.client]\n\"sasl.password\" = \"pw-2\"", "kafka.client.\"sasl.password\""),
            ("[kafka.consumer]\n\"session.timeout.ms\" = \"9000\"", "kafka.consumer.\"session.timeout.ms\""),
            ("[kafka.producer]\n\"linger.ms\" = \"9\"", "kafka.producer.\"linger.ms\""),
            ("[topics]\njobs = \"j2\"", "topics.jobs"),
            ("[topics]\ndlq_retention = \"9d\"", "topics.dlq_retention"),
            ("[process]\nstate_dir = \"/s2\"", "process.state_dir"),
            ("[process]\nstate_partitions = 4", "process.state_partitions"),
            ("[process]\nthreads = 3", "process.threads"),
            ("[input]\nmax_record_bytes = 100000", "input.max_record_bytes"),
            ("[input]\npartitioned_by = \"custom\"", "input.partitioned_by"),
            ("[schema_registry]\nurl = \"http://r\"", "schema_registry"),
            ("[admin]\nlisten = \"127.0.0.1:1\"", "admin.listen"),
            ("[admin]\ninspect_token = \"0123456789abcdef0\"", "admin.inspect_token"),
            ("[send]\nretry_delays = [\"1s\"]", "send.retry_delays"),
            ("[send]\nmax_in_flight = 10", "send.max_in_flight"),
        ];
        for (extra, key) in cases {
            assert_eq!(changes(&base, &config(extra)), BTreeSet::from([key.to_owned()]), "{extra}");
        }
    }

    #[test]
    fn hot_keys_are_no_restart_only_change() {
        let base = config("");
        for extra in [
            "[process]\nmax_batch = 7\nmax_batch_bytes = 70000\ncommit_interval = \"1s\"\njob_ttl = \"1h\"",
            "[send]\nretry_delays = [\"2s\", \"1m\", \"5m\", \"30m\", \"2h\", \"6h\"]\nretry_jitter = 0.1\ntimeout = \"9s\"\nmax_hold = \"2s\"\nproxy = \"http://p:3128\"",
            "[input]\nformat = \"json\"\nmax_field_bytes = 100",
            "[[partners]]\nid = \"zeta\"\nrate_limit = \"5/s\"",
            "[currency_rates]\nEUR = \"1.1\"",
        ] {
            assert_eq!(changes(&base, &config(extra)), BTreeSet::new(), "{extra}");
        }
    }

    /// The docs' table is this one.
    #[test]
    fn the_docs_list_every_restart_only_key() {
        let doc = include_str!("../../docs/operations/reload.md");
        for r in RESTART_ONLY {
            assert!(
                doc.contains(&format!("| `{}` | {} |", r.key, r.why)),
                "docs/operations/reload.md lacks `{}`",
                r.key
            );
        }
    }
}
