//! Where its users' Kafka runs: a broker that needs TLS and SASL, as every
//! managed Kafka does (`scripts/kafka start --secure`). The whole pipeline
//! — `topics create`, process, send, `state rescale`, `dlq replay` — over
//! SASL_SSL (SCRAM-SHA-512, the password by reference) with zstd-compressed
//! input, over mutual TLS, and over OAUTHBEARER with OIDC client
//! credentials; and the one-line errors of a wrong password, an untrusted
//! certificate and a listener nobody answers on.

use crate::support::env::{TestEnv, generated};
use crate::support::expect::{assert_exact, assert_exact_at, await_jobs};
use crate::support::kafka::{read_all, wait_until};
use crate::support::partner::Partner;
use crate::support::proc::tail;
use crate::support::proc::{Instance, cli, free_port, http_full};
use crate::support::secure::secure;
use crate::support::sender::{SEND, by_id, job};
use postback::domain::Event;
use std::collections::BTreeSet;
use std::time::Duration;

/// Each user on one device, so by-user postbacks do not depend on the
/// order of two devices' partitions (the input is partitioned by device).
fn events(devices: usize, count: usize, seed: u64) -> Vec<Event> {
    generated(devices, count, seed)
        .into_iter()
        .map(|mut e| {
            if !e.user_id.is_empty() {
                e.user_id = format!("u-{}", e.device_id);
            }
            e
        })
        .collect()
}

/// Waits until the partner has seen every job id of `jobs`; returns the
/// ids it saw.
fn delivered(partner: &Partner, jobs: &[postback::domain::Job], i: &Instance) -> BTreeSet<String> {
    let want: BTreeSet<String> = jobs.iter().map(|j| j.job_id.clone()).collect();
    let ok = wait_until(Duration::from_secs(120), || {
        let seen: BTreeSet<String> = by_id(&partner.requests()).into_keys().collect();
        want.is_subset(&seen)
    });
    assert!(ok, "not every job reached the partner\n{}", tail(&i.log()));
    by_id(&partner.requests()).into_keys().collect()
}

#[test]
fn the_whole_pipeline_runs_over_sasl_ssl_with_zstd_input_and_a_password_by_reference() {
    let s = secure();
    let partner = Partner::start();
    let client = s.sasl_client("SCRAM-SHA-512", &s.scram_user, "${env:PB_IT_KAFKA_PASSWORD}");
    // our own output is zstd too
    let extra = format!("{SEND}\n{client}[kafka.producer]\n\"compression.type\" = \"zstd\"\n");
    let mut env = TestEnv::new("sasl", 4, &partner.url("/ok"), &extra);
    env.partitioned_by = "device_id";
    let over = |more: &[(&'static str, &str)]| {
        let mut v = vec![
            ("POSTBACK__KAFKA__BOOTSTRAP_SERVERS", s.sasl_ssl.clone()),
            ("PB_IT_KAFKA_PASSWORD", s.scram_password.clone()),
            ("POSTBACK__INPUT__PARTITIONED_BY", "device_id".to_owned()),
        ];
        v.extend(more.iter().map(|(k, v)| (*k, (*v).to_owned())));
        v
    };
    let config = env.config_path.display().to_string();
    let sink = partner.url("/ok");

    // every topic created over SASL_SSL, the device state on 2 partitions
    let two = [("POSTBACK__PROCESS__STATE_PARTITIONS", "2")];
    let (code, out, err) = cli(&["topics", "create", &config, "--partitions", "4"], &over(&two));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&format!("{:<40} 4 partitions", env.topic("events"))), "{out}");
    assert!(out.contains(&format!("{:<40} 3 partitions", env.topic("jobs"))), "{out}");

    let all = events(120, 1200, 28);
    let (first, second) = all.split_at(all.len() / 2);
    env.produce_by_device(first, 4, "zstd");
    let mut r = env.start_cmd("run", "r1", &over(&two));
    let jobs = await_jobs(&env, first, Duration::from_secs(180), &[&r]);
    assert_exact_at(&jobs, first, &sink);
    let seen = delivered(&partner, &jobs, &r);
    assert_eq!(seen.len(), jobs.len(), "each job delivered, none other");
    assert_eq!(r.terminate(), Some(0), "{}", tail(&r.log()));

    // the state moved to 4 partitions over SASL_SSL, then the rest processed
    let (code, out, err) = cli(&["state", "rescale", &config, "--partitions", "4"], &over(&[]));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("generation 0 -> 1, device state 2 -> 4 partitions"), "{out}");
    env.produce_by_device(second, 4, "zstd");
    let mut r = env.start_cmd("run", "r1", &over(&[]));
    let jobs = await_jobs(&env, &all, Duration::from_secs(180), &[&r]);
    assert_exact_at(&jobs, &all, &sink);
    delivered(&partner, &jobs, &r);
    assert_eq!(r.metric("postback_layout_generation", &[]), 1.0);

    // a job the partner refuses goes to the DLQ; replayed over SASL_SSL
    env.produce_jobs(&[job("sasl-bad-1", "acme", partner.url("/bad/sasl"))]);
    assert!(wait_until(Duration::from_secs(60), || read_all(&env.topic("jobs.dlq")).len() == 1), "{}", tail(&r.log()));
    let (code, out, err) = cli(&["dlq", "replay", &config, "--partner", "acme"], &over(&[]));
    assert_eq!(code, Some(0), "{out}{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).expect("a JSON summary");
    assert_eq!(summary["run"]["replayed"], 1, "{out}");
    assert!(
        wait_until(Duration::from_secs(60), || by_id(&partner.requests()).get("sasl-bad-1").map_or(0, Vec::len) == 2),
        "the replayed job was attempted again\n{}",
        tail(&r.log())
    );
    assert_eq!(r.terminate(), Some(0), "{}", tail(&r.log()));
}

#[test]
fn the_pipeline_runs_over_mutual_tls() {
    let s = secure();
    let partner = Partner::start();
    let env = TestEnv::new("mtls", 2, &partner.url("/ok"), &format!("{SEND}\n{}", s.mtls_client()));
    let events = events(40, 400, 29);
    env.produce_with(&events, &events, "lz4");
    let mut r = env.start_cmd("run", "m1", &[("POSTBACK__KAFKA__BOOTSTRAP_SERVERS", s.ssl.clone())]);
    let jobs = await_jobs(&env, &events, Duration::from_secs(180), &[&r]);
    assert_exact_at(&jobs, &events, &partner.url("/ok"));
    assert_eq!(delivered(&partner, &jobs, &r).len(), jobs.len());
    assert_eq!(r.terminate(), Some(0), "{}", tail(&r.log()));
}

#[test]
fn oauthbearer_tokens_come_from_an_oidc_token_endpoint() {
    let s = secure();
    let env = TestEnv::new("oidc", 2, "https://pb.example", &s.oidc_client());
    let events = events(20, 200, 30);
    env.produce_with(&events, &events, "gzip");
    let mut p = env.start_cmd("process", "o1", &[("POSTBACK__KAFKA__BOOTSTRAP_SERVERS", s.sasl_ssl.clone())]);
    let jobs = await_jobs(&env, &events, Duration::from_secs(180), &[&p]);
    assert_exact(&jobs, &events);
    assert_eq!(p.terminate(), Some(0), "{}", tail(&p.log()));
}

/// A config like `env`'s with `client` as its `[kafka.client]`.
fn config_with(env: &TestEnv, name: &str, client: &str) -> String {
    let text = std::fs::read_to_string(&env.config_path).expect("config");
    let path = env.dir.path().join(format!("{name}.toml"));
    std::fs::write(&path, format!("{text}\n{client}")).expect("write config");
    path.display().to_string()
}

#[test]
fn connection_errors_are_one_line_that_names_the_cause() {
    let s = secure();
    let env = TestEnv::new("secure-errors", 1, "https://pb.example", "");
    let dead = format!("127.0.0.1:{}", free_port());
    let cases = [
        (
            "wrong-password",
            s.sasl_client("SCRAM-SHA-256", &s.scram_user, "not-the-password"),
            s.sasl_ssl.clone(),
            "authentication failed: SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256".to_owned(),
        ),
        (
            "untrusted",
            s.sasl_client("SCRAM-SHA-256", &s.scram_user, &s.scram_password)
                .replace(&s.ca.display().to_string(), &s.other_ca.display().to_string()),
            s.sasl_ssl.clone(),
            "TLS handshake failed: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified, verify that ssl.ca.location is correctly configured or root CA certificates are installed (install ca-certificates package)".to_owned(),
        ),
        ("dead", String::new(), dead.clone(), format!("Connect to ipv4#{dead} failed: Connection refused")),
    ];
    for (name, client, bootstrap, cause) in &cases {
        let config = config_with(&env, name, client);
        let over = [("POSTBACK__KAFKA__BOOTSTRAP_SERVERS", bootstrap.clone())];
        let (code, out, err) = cli(&["topics", "create", &config], &over);
        assert_eq!(code, Some(1), "{name}: {out}{err}");
        let line = format!(
            "postback: topics create: cannot reach the Kafka brokers at {bootstrap} (kafka.bootstrap_servers): {cause}"
        );
        assert!(err.lines().any(|l| l == line), "{name}: want the line\n{line}\ngot\n{err}");
        // the password is never printed, whatever failed
        assert!(!err.contains("not-the-password") && !err.contains(&s.scram_password), "{name}: {err}");
    }

    // the right PLAIN password gets in (the broker checks it against its JAAS users)
    let config = config_with(&env, "plain", &s.sasl_client("PLAIN", &s.plain_user, &s.plain_password));
    let (code, out, err) =
        cli(&["topics", "create", &config], &[("POSTBACK__KAFKA__BOOTSTRAP_SERVERS", s.sasl_ssl.clone())]);
    assert_eq!(code, Some(0), "PLAIN: {out}{err}");

    // a processor keeps trying, says why in /readyz, and does not flood its log
    let config = config_with(&env, "process-wrong-password", &cases[0].1);
    let mut p = Instance::start(
        "process",
        std::path::Path::new(&config),
        "e1",
        &[("POSTBACK__KAFKA__BOOTSTRAP_SERVERS", s.sasl_ssl.clone())],
        env.dir.path(),
    );
    let want = format!(
        "kafka unreachable: cannot reach the Kafka brokers at {} (kafka.bootstrap_servers): {}",
        s.sasl_ssl, cases[0].3
    );
    let mut last = String::new();
    let said = wait_until(Duration::from_secs(60), || {
        last = http_full(&p.admin, "/readyz").map(|(_, b)| b).unwrap_or_default();
        last.lines().any(|l| l == want)
    });
    assert!(said, "/readyz: {last}\n{}", tail(&p.log()));
    assert_eq!(http_full(&p.admin, "/readyz").map(|(s, _)| s), Some(503));
    std::thread::sleep(Duration::from_secs(20));
    assert!(p.running(), "it waits for the broker instead of exiting");
    let lines = p.log().lines().filter(|l| l.contains("cannot connect to kafka")).count();
    assert!(p.metric("postback_kafka_connection_errors_total", &[("kind", "authentication")]) >= 2.0);
    assert!(lines <= 2, "{lines} log lines about the same refusal in 25 s\n{}", tail(&p.log()));
    assert_eq!(p.terminate(), Some(0), "{}", tail(&p.log()));
}
