//! The sender's crash window and secrets, and the doors of every process:
//! what a crash re-sends, proxies from the environment, tokens in partner
//! URLs, the admin port, a stage that fails under `postback run`, failover
//! after `kill -9`, and path segments built from values.

use crate::support::env::TestEnv;
use crate::support::expect::await_jobs;
use crate::support::kafka::{read_all, wait_until};
use crate::support::partner::Partner;
use crate::support::proc::{Instance, free_port, http_full};
use crate::support::rules::ev;
use crate::support::sender::{SEND, by_id, dlq, job, sender};
use postback::domain::Kind::*;
use postback::domain::{Event, Job};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Jobs on one partition of the jobs topic (same key).
fn one_partition(mut jobs: Vec<Job>) -> Vec<Job> {
    for j in &mut jobs {
        j.device_id = "one-device".into();
    }
    jobs
}

/// 20 jobs for a partner limited to 1/s, then 1,000 for one without a
/// limit, on one partition; `kill -9` 3 s after the 1,000 were delivered.
/// Returns the jobs sent both before and after the crash, and how many
/// were deferred for being held too long.
fn crash_window(name: &str, max_hold: &str) -> (Vec<String>, f64) {
    let partner = Partner::start();
    let env = TestEnv::new(name, 1, "https://pb.example", SEND);
    let slow: Vec<Job> = (0..20).map(|i| job(&format!("slow-{i}"), "zeta", partner.url("/ok/slow"))).collect();
    let fast: Vec<Job> = (0..1000).map(|i| job(&format!("fast-{i}"), "acme", partner.url("/ok/fast"))).collect();
    env.produce_jobs(&one_partition(slow.iter().chain(&fast).cloned().collect()));
    let settings = [("POSTBACK__PARTNERS__ZETA__RATE_LIMIT", "1/s"), ("POSTBACK__SEND__MAX_HOLD", max_hold)];
    let mut s = sender(&env, "s1", &settings);
    let fast_done = || by_id(&partner.requests()).keys().filter(|id| id.starts_with("fast-")).count();
    assert!(wait_until(Duration::from_secs(120), || fast_done() == 1000), "{}", s.tail());
    std::thread::sleep(Duration::from_secs(3));
    let deferred = s.metric("postback_deliveries_total", &[("outcome", "deferred")]);
    let before: BTreeSet<String> = by_id(&partner.requests()).into_keys().collect();
    s.kill9();
    let sent_before = partner.requests().len();
    let mut s = sender(&env, "s2", &settings);
    let all = || by_id(&partner.requests()).len();
    assert!(wait_until(Duration::from_secs(240), || all() == 1020), "{} of 1020\n{}", all(), s.tail());
    let again: Vec<String> =
        partner.requests()[sent_before..].iter().map(|r| r.id().to_owned()).filter(|id| before.contains(id)).collect();
    assert_eq!(s.terminate(), Some(0));
    (again, deferred)
}

#[test]
fn a_crash_re_sends_only_the_jobs_in_flight() {
    // the held job holds the committed offset: the commit's metadata says what finished after it
    let (again, deferred) = crash_window("send-window-held", "10m");
    eprintln!("held jobs kept: re-sent after the crash {} {again:?}", again.len());
    assert_eq!(deferred, 0.0, "nothing was deferred: the slow jobs held the commit");
    let fast_again: Vec<&String> = again.iter().filter(|id| !id.starts_with("slow-")).collect();
    assert!(
        fast_again.is_empty(),
        "{} finished fast jobs sent again, e.g. {:?}",
        fast_again.len(),
        &fast_again[..fast_again.len().min(5)]
    );
    // in flight at the kill: at most the one slow request under way and those finished since the last commit
    assert!(again.len() <= 2, "{} re-sent, more than were in flight: {again:?}", again.len());

    // with the default send.max_hold (5 s), held jobs move on to the first tier instead
    let (again, deferred) = crash_window("send-window-hold", "5s");
    eprintln!("max_hold 5s: re-sent after the crash {} {again:?}, {deferred} deferred", again.len());
    assert!(deferred > 0.0, "jobs held past send.max_hold were deferred");
    assert!(
        again.iter().all(|id| id.starts_with("slow-")),
        "{} sent again, e.g. {:?}",
        again.len(),
        &again[..again.len().min(5)]
    );
    assert!(again.len() <= 2, "{again:?}");
}

#[test]
fn no_proxy_from_the_environment_and_the_guard_judges_through_a_configured_one() {
    let partner = Partner::start();
    let proxy = Partner::start();
    let env = TestEnv::new("send-proxy", 1, "https://pb.example", SEND);
    env.produce_jobs(&[job("direct", "acme", partner.url("/ok/direct"))]);
    let proxy_url = format!("http://{}", proxy.addr);
    let from_env =
        [("HTTP_PROXY", proxy_url.as_str()), ("http_proxy", proxy_url.as_str()), ("ALL_PROXY", proxy_url.as_str())];
    let mut s = sender(&env, "s1", &from_env);
    assert!(wait_until(Duration::from_secs(60), || partner.requests().len() == 1), "{}", s.tail());
    assert!(proxy.requests().is_empty(), "a proxy from the environment is not used");
    assert_eq!(s.terminate(), Some(0));

    // send.proxy configured and loopback not allowed: the partner's host is judged before the request leaves
    let env = TestEnv::new("send-proxy-set", 1, "https://pb.example", "[send]\nretry_delays = [\"1s\"]\n");
    let port = partner.addr.port();
    env.produce_jobs(&[job("loop", "acme", format!("http://localhost:{port}/ok/x"))]);
    let mut s = sender(&env, "s1", &[("POSTBACK__SEND__PROXY", proxy_url.as_str())]);
    assert!(wait_until(Duration::from_secs(60), || dlq(&env).len() == 1), "{}", s.tail());
    let reason = &dlq(&env)["loop"];
    assert!(reason.starts_with("blocked address: localhost resolves to ") && reason.contains("(loopback)"), "{reason}");
    assert!(proxy.requests().is_empty(), "the refused request never reached the proxy");
    assert_eq!(s.terminate(), Some(0));

    // and an allowed host does go through the configured proxy
    let env = TestEnv::new("send-proxy-used", 1, "https://pb.example", SEND);
    env.produce_jobs(&[job("proxied", "acme", format!("http://127.0.0.1:{port}/ok/proxied"))]);
    let mut s = sender(&env, "s1", &[("POSTBACK__SEND__PROXY", proxy_url.as_str())]);
    assert!(wait_until(Duration::from_secs(60), || proxy.requests().len() == 1), "{}", s.tail());
    assert_eq!(proxy.requests()[0].uri, format!("http://127.0.0.1:{port}/ok/proxied"));
    assert!(partner.requests().len() == 1, "only the first, direct request reached the partner itself");
    assert_eq!(s.terminate(), Some(0));
}

#[test]
fn a_token_in_a_partner_url_never_reaches_logs_deliveries_or_the_dlq() {
    let env = TestEnv::new("send-secret", 1, "https://pb.example", SEND);
    let down = free_port();
    let url = format!("http://127.0.0.1:{down}/cb?token=SECRET-TOKEN-123&click=c1");
    env.produce_jobs(&[job("secret", "acme", url)]);
    let mut s = sender(&env, "s1", &[]);
    assert!(wait_until(Duration::from_secs(60), || dlq(&env).len() == 1), "{}", s.tail());
    assert_eq!(s.terminate(), Some(0));
    let reason = &dlq(&env)["secret"];
    assert!(reason.contains(&format!("http://127.0.0.1:{down}/cb")), "the reason names host and path: {reason}");
    let deliveries = env.deliveries();
    assert_eq!(deliveries.len(), 4, "four attempts");
    let leaks = |text: &str| text.contains("SECRET-TOKEN-123");
    assert!(!leaks(reason), "{reason}");
    for d in &deliveries {
        assert!(!leaks(&d.to_string()), "{d}");
    }
    assert!(!leaks(&s.log()), "the log");
    // the DLQ record's value is the job itself, which must keep its URL to be replayed
    for r in read_all(&env.topic("jobs.dlq")) {
        assert!(r.headers.values().all(|h| !leaks(h)), "{:?}", r.headers);
    }
}

fn raw_get(addr: &str, path: &str, auth: Option<&str>) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let auth = auth.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    (buf.split(' ').nth(1).unwrap().parse().unwrap(), buf)
}

#[test]
fn the_admin_port_keeps_inspect_closed_and_idle_connections_short() {
    let env = TestEnv::new("admin", 1, "https://pb.example", "");
    let mut p = env.start("p1");
    assert!(wait_until(Duration::from_secs(60), || p.ready()), "{}", p.tail());
    assert_eq!(raw_get(&p.admin, "/inspect/device/m/d1", None).0, 404, "inspect is off by default");
    assert_eq!(raw_get(&p.admin, "/metrics", None).0, 200);

    // an idle connection is closed after the header timeout, and /healthz still answers meanwhile
    let idle: Vec<std::net::TcpStream> = (0..20).map(|_| std::net::TcpStream::connect(&p.admin).unwrap()).collect();
    assert_eq!(raw_get(&p.admin, "/healthz", None).0, 200);
    let opened = Instant::now();
    for mut c in idle {
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut byte = [0u8; 1];
        assert_eq!(c.read(&mut byte).unwrap_or(0), 0, "closed by the server");
    }
    let waited = opened.elapsed();
    eprintln!("idle admin connections closed after {waited:?}");
    assert!(waited < Duration::from_secs(20), "{waited:?}");
    assert_eq!(p.terminate(), Some(0));

    let token = "0123456789abcdef-token";
    let on = [("POSTBACK__ADMIN__INSPECT", "true".to_owned()), ("POSTBACK__ADMIN__INSPECT_TOKEN", token.to_owned())];
    let mut p = env.start_cmd("process", "p1", &on);
    assert!(wait_until(Duration::from_secs(60), || p.ready()), "{}", p.tail());
    let (status, body) = raw_get(&p.admin, "/inspect/device/m/d1", None);
    assert_eq!(status, 401, "{body}");
    assert_eq!(raw_get(&p.admin, "/inspect/device/m/d1", Some("wrong-token-wrong-token")).0, 401);
    let (status, body) = raw_get(&p.admin, "/inspect/device/m/d1", Some(token));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("device d1 of app m (mobile): no stored state"), "{body}");
    assert_eq!(p.terminate(), Some(0));
}

#[test]
fn run_exits_non_zero_when_its_processor_is_fenced_and_says_so_first() {
    let partner = Partner::start();
    let env = TestEnv::new("fenced", 1, &partner.url("/ok"), SEND);
    let mut run = env.start_cmd("run", "dup", &[]);
    assert!(wait_until(Duration::from_secs(60), || run.ready()), "{}", run.tail());
    env.produce(&[ev("f1", Install, 0.0).from("acme").0]);
    assert!(wait_until(Duration::from_secs(60), || !env.jobs().is_empty()), "{}", run.tail());
    // a second instance with the same instance_id takes the transactional id and the group membership
    let elsewhere = env.state_dir("dup-2").display().to_string();
    let mut second = env.start_cmd("process", "dup", &[("POSTBACK__PROCESS__STATE_DIR", elsewhere)]);
    let mut seen_503 = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut n = 2;
    while run.running() && Instant::now() < deadline {
        if let Some((503, body)) = http_full(&run.admin, "/readyz") {
            seen_503 = body;
        }
        if n < 50 {
            env.produce(&[ev(&format!("f{n}"), Install, 0.0).dev(&format!("fd{n}")).from("acme").0]);
            n += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let code = run.terminate();
    assert!(!run.running());
    assert_eq!(code, Some(1), "exit code\n{}", run.tail());
    assert!(
        seen_503.contains("stage failed") || seen_503.contains("processor: stopped"),
        "/readyz said {seen_503:?}\n{}",
        run.tail()
    );
    assert!(run.log().contains("stage failed; stopping the others"), "{}", run.tail());
    let _ = second.terminate();
}

/// Kills `p`, starts instance `p1` again with `extra`, produces `second`
/// and waits (up to 60 s) for the jobs of `first` and `second`. Returns the
/// new instance, the time from its start to the last job, and the number
/// of jobs expected.
fn kill9_restart_and_wait(
    env: &TestEnv,
    p: &mut Instance,
    extra: &[(&str, String)],
    first: &[Event],
    second: &[Event],
) -> (Instance, Duration, usize) {
    p.kill9();
    let restarted = Instant::now();
    let p = env.start_cmd("process", "p1", extra);
    env.produce(second);
    let all: Vec<_> = first.iter().chain(second).cloned().collect();
    let want = crate::support::env::predict(&all).len();
    assert!(wait_until(Duration::from_secs(60), || env.jobs().len() >= want), "{}", p.tail());
    (p, restarted.elapsed(), want)
}

#[test]
fn a_processor_restarted_after_kill_9_commits_again_within_seconds() {
    let env = TestEnv::new("failover", 4, "https://pb.example", "");
    let mut p = env.start("p1");
    let first = vec![ev("w1", Install, 0.0).from("acme").0];
    env.produce(&first);
    await_jobs(&env, &first, Duration::from_secs(60), &[&p]);
    let second = vec![ev("w2", Install, 1.0).dev("d2").from("acme").0, ev("w3", Install, 2.0).dev("d3").from("zeta").0];
    let (mut p, took, _) = kill9_restart_and_wait(&env, &mut p, &[], &first, &second);
    eprintln!("restart to first commit after kill -9: {took:?}");
    assert!(took < Duration::from_secs(15), "failover took {took:?}\n{}", p.tail());
    assert_eq!(p.terminate(), Some(0));
}

/// Two processing threads, a session timeout of 45 s: after a `kill -9`
/// both threads rejoin as themselves (static members) and take their
/// partitions back at once. A thread joining dynamically made the whole
/// group wait for its dead predecessor's session (45 s) first.
#[test]
fn both_threads_of_a_processor_restarted_after_kill_9_resume_within_seconds() {
    let env = TestEnv::new("failover2t", 4, "https://pb.example", "");
    let extra = [
        ("POSTBACK__PROCESS__THREADS", "2".to_owned()),
        ("POSTBACK__KAFKA__CONSUMER__SESSION.TIMEOUT.MS", "\"45000\"".to_owned()),
    ];
    // one install per input partition, before and after the kill
    let on_each_partition = |tag: &str, at: f64| {
        let mut by_partition = std::collections::BTreeMap::new();
        for i in 0.. {
            let device = format!("{tag}-d{i}");
            by_partition.entry(postback::kafka::partition_for(device.as_bytes(), 4)).or_insert(device);
            if by_partition.len() == 4 {
                break;
            }
        }
        by_partition
            .into_values()
            .map(|d| ev(&format!("{d}-e"), Install, at).dev(&d).from("acme").0)
            .collect::<Vec<_>>()
    };
    let first = on_each_partition("a", 0.0);
    let mut p = env.start_cmd("process", "p1", &extra);
    env.produce(&first);
    await_jobs(&env, &first, Duration::from_secs(60), &[&p]);
    let threads = ["processor-0", "processor-1"];
    let held: Vec<f64> = threads.iter().map(|t| p.metric("postback_processor_partitions", &[("thread", t)])).collect();
    assert_eq!(held, [4.0, 4.0], "2 input + 2 user-activity partitions per thread");
    let (mut p, took, want) = kill9_restart_and_wait(&env, &mut p, &extra, &first, &on_each_partition("b", 1.0));
    eprintln!("restart to the last partition's commit after kill -9, two threads: {took:?}");
    assert!(took < Duration::from_secs(30), "took {took:?}: a thread waited for a dead member's session\n{}", p.tail());
    assert_eq!(env.jobs().len(), want, "nothing twice");
    assert_eq!(p.terminate(), Some(0));
}

#[test]
fn a_value_of_dot_dot_stays_in_its_path_segment_on_the_wire() {
    let partner = Partner::start();
    let env = TestEnv::new("send-dots", 1, "https://pb.example", SEND);
    let template = postback::domain::template::Template::parse(
        &partner.url("/ok/cb/{click_id}/x"),
        postback::domain::template::Place::Url,
    )
    .unwrap();
    let mut event = ev("dots", Install, 0.0).from("acme").0;
    event.attribution.as_mut().unwrap().click_id = "..".into();
    let attributed = postback::domain::Attributed::new(event.attribution.clone(), event.timestamp_ms);
    let ctx = postback::domain::template::RenderCtx {
        event: &event,
        attribution: &attributed,
        install_ms: 0,
        platform: postback::domain::Platform::Mobile,
        postback_event: "install",
        partner: None,
        job_id: "dots",
        usd_rates: &Default::default(),
        privacy: &Default::default(),
        strip: false,
    };
    env.produce_jobs(&[job("dots", "acme", template.render(&ctx))]);
    let mut s = sender(&env, "s1", &[]);
    assert!(wait_until(Duration::from_secs(60), || partner.requests().len() == 1), "{}", s.tail());
    assert_eq!(partner.requests()[0].uri, "/ok/cb/%252E%252E/x", "not /ok/x");
    assert_eq!(s.terminate(), Some(0));
}
