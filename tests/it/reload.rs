//! Hot reload under load, key by key: a sender delivers a steady stream of
//! jobs while its config file is rewritten, one change at a time — every
//! partner key, a partner added (with its own connect timeout, which used
//! to panic the sender) and removed, certificates, every hot `[send]` key.
//! Each change applies to the jobs after it; no job of the stream is lost
//! or sent twice; nothing panics. A change that needs a restart is refused,
//! naming its key, and the stream goes on under the running config.

use crate::support::env::TestEnv;
use crate::support::kafka::wait_until;
use crate::support::partner::Partner;
use crate::support::proc::Instance;
use crate::support::secure::secure;
use crate::support::sender::{SEND, by_id, dlq, job, sender};
use postback::domain::Job;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The config file, rewritten as a whole for each step.
struct File {
    path: std::path::PathBuf,
    base: String,
    /// Keys of partner zeta, appended to its table.
    zeta: String,
    /// The `[send]` table.
    send: String,
    /// Partner tables appended at the end.
    extra: String,
}

impl File {
    fn text(&self) -> String {
        let with_zeta = self.base.replacen(
            "[[partners]]\nid = \"zeta\"\n",
            &format!("[[partners]]\nid = \"zeta\"\n{}", self.zeta),
            1,
        );
        format!("{with_zeta}\n{}\n{}", self.send, self.extra)
    }

    fn write(&self) {
        // the watcher reads the file once it has stopped changing
        std::fs::write(&self.path, self.text()).expect("write config");
    }
}

/// Jobs produced in the background, about 100 a second, all for acme.
struct Load {
    stop: Arc<AtomicBool>,
    ids: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(env: &TestEnv, partner: &Partner) -> Load {
        let (stop, ids) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
        let (s, i) = (Arc::clone(&stop), Arc::clone(&ids));
        let (topic_env, url) = (env.topic("jobs"), partner.url("/ok/load"));
        let bootstrap = env.bootstrap.clone();
        let n = Arc::new(AtomicUsize::new(0));
        let thread = std::thread::spawn(move || {
            let producer = crate::support::kafka::TestProducer::at(&bootstrap);
            while !s.load(Ordering::Relaxed) {
                // ten jobs every 100 ms: a steady 100 jobs/s
                for _ in 0..10 {
                    let k = n.fetch_add(1, Ordering::Relaxed);
                    let j = job(&format!("load-{k}"), "acme", format!("{url}/{k}"));
                    let value = postback::codec::encode_job(&j, postback::codec::JobEncoding::Json);
                    let key = j.device_id.as_bytes();
                    producer.send(&topic_env, postback::kafka::partition_for(key, 3), key, &value);
                    i.lock().unwrap().push(j.job_id);
                }
                producer.flush();
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Load { stop, ids, thread: Some(thread) }
    }

    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.ids.lock().unwrap().clone()
    }
}

fn reloads(s: &Instance) -> f64 {
    s.metric("postback_config_reloads_total", &[])
}

/// Writes the file and waits until the sender applied it (the `n`-th reload).
fn applied(f: &File, s: &Instance, n: f64) {
    f.write();
    assert!(wait_until(Duration::from_secs(30), || reloads(s) == n), "reload {n} applied\n{}", s.tail());
}

/// `count` jobs for `partner` at `url`, produced now; their ids.
fn send_jobs(env: &TestEnv, tag: &str, partner: &str, url: &str, count: usize) -> Vec<Job> {
    let jobs: Vec<Job> = (0..count).map(|i| job(&format!("{tag}-{i}"), partner, format!("{url}/{tag}/{i}"))).collect();
    env.produce_jobs(&jobs);
    jobs
}

fn arrived(p: &Partner, jobs: &[Job], s: &Instance) {
    let want: BTreeSet<String> = jobs.iter().map(|j| j.job_id.clone()).collect();
    let ok = wait_until(Duration::from_secs(60), || {
        let seen: BTreeSet<String> = by_id(&p.requests()).into_keys().collect();
        want.is_subset(&seen)
    });
    assert!(ok, "{} of {} delivered\n{}", jobs[0].job_id, jobs.len(), s.tail());
}

#[test]
fn the_sender_takes_every_partner_and_send_key_by_reload_under_load() {
    let sec = secure();
    let plain = Partner::start();
    let tls = Partner::start_tls(crate::support::tls::server_config(&sec.server_cert, &sec.server_key, Some(&sec.ca)));
    let env = TestEnv::new("reload-send", 1, "https://pb.example", "");
    let mut f = File {
        path: env.config_path.clone(),
        base: std::fs::read_to_string(&env.config_path).unwrap(),
        zeta: String::new(),
        send: SEND.to_owned(),
        extra: String::new(),
    };
    f.write();
    let mut s = sender(&env, "s1", &[]);
    assert!(wait_until(Duration::from_secs(60), || s.ready()), "{}", s.tail());
    let load = Load::start(&env, &plain);
    let ok = plain.url("/ok");
    let mut n = 0.0;

    // every key of a partner, a few at a time
    for keys in [
        "max_concurrency = 2\nrate_limit = \"50/s\"\n",
        "connect_timeout = \"7s\"\ntimeout = \"3s\"\n",
        "circuit_failures = 3\ncircuit_open_for = \"2s\"\njob_ttl = \"1h\"\nname = \"Zeta Ads\"\n",
        "signing_secret = \"zeta-secret-after-reload\"\nsignature_header = \"X-Zeta-Signature\"\n",
    ] {
        f.zeta.push_str(keys);
        n += 1.0;
        applied(&f, &s, n);
        let jobs = send_jobs(&env, &format!("zeta{n}"), "zeta", &ok, 20);
        arrived(&plain, &jobs, &s);
    }
    let signed = by_id(&plain.requests())["zeta4-0"][0].clone();
    assert!(signed.headers.contains_key("x-zeta-signature"), "the new header carries the signature");

    // a partner added by reload with a connect timeout of its own (it used
    // to panic the sender: one HTTP client per timeout, built at start)
    f.extra.push_str("[[partners]]\nid = \"nova\"\nconnect_timeout = \"7s\"\n");
    n += 1.0;
    applied(&f, &s, n);
    let jobs = send_jobs(&env, "nova", "nova", &ok, 50);
    arrived(&plain, &jobs, &s);

    // a job to a partner behind a private PKI fails its handshake until a
    // reload gives the partner its CA and client certificate; the retried
    // job then goes out through the new client
    let early = send_jobs(&env, "pki", "nova", &tls.url("/ok"), 1);
    assert!(
        wait_until(Duration::from_secs(30), || env
            .deliveries()
            .iter()
            .any(|d| d["job_id"] == "pki-0" && d["outcome"] == "retry")),
        "{}",
        s.tail()
    );
    f.extra = format!(
        "[[partners]]\nid = \"nova\"\nconnect_timeout = \"7s\"\nca_file = \"{}\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        sec.ca.display(),
        sec.client_cert.display(),
        sec.client_key.display()
    );
    n += 1.0;
    applied(&f, &s, n);
    arrived(&tls, &early, &s);
    let jobs = send_jobs(&env, "pki2", "nova", &tls.url("/ok"), 10);
    arrived(&tls, &jobs, &s);

    // every hot [send] key at once
    f.send = "[send]\nretry_delays = [\"2s\", \"2s\", \"2s\"]\nretry_jitter = 0.1\nretry_after_factor = 3\n\
              connect_timeout = \"3s\"\ntimeout = \"4s\"\nmax_hold = \"3s\"\nmax_pending_per_partner = 1000\n\
              pool_max_idle_per_host = 8\ncircuit_failures = 10\ncircuit_open_for = \"5s\"\ncommit_interval = \"300ms\"\n\
              shutdown_deadline = \"5s\"\nallow_networks = [\"127.0.0.0/8\"]\n"
        .to_owned();
    n += 1.0;
    applied(&f, &s, n);
    let jobs = send_jobs(&env, "send", "zeta", &ok, 20);
    arrived(&plain, &jobs, &s);

    // a partner removed: its jobs are unknown from then on
    f.extra.clear();
    n += 1.0;
    applied(&f, &s, n);
    send_jobs(&env, "gone", "nova", &ok, 1);
    assert!(wait_until(Duration::from_secs(30), || dlq(&env).contains_key("gone-0")), "{}", s.tail());
    assert_eq!(dlq(&env)["gone-0"], "unknown partner 'nova': not in [[partners]]");

    // restart-only keys are refused by name; the running config stays
    let failures = s.metric("postback_config_reload_failures_total", &[]);
    f.base = f.base.replace(&format!("sender_group_id = \"{}sender\"", env.prefix), "sender_group_id = \"elsewhere\"");
    f.send = f.send.replace("retry_delays = [\"2s\", \"2s\", \"2s\"]", "retry_delays = [\"2s\", \"2s\"]");
    f.write();
    assert!(
        wait_until(Duration::from_secs(30), || s.metric("postback_config_reload_failures_total", &[])
            == failures + 1.0),
        "{}",
        s.tail()
    );
    for key in ["kafka.sender_group_id", "send.retry_delays"] {
        assert!(
            s.log().lines().any(|l| l.contains("config reload refused") && l.contains(&format!("key={key}"))),
            "{key} named\n{}",
            s.tail()
        );
    }
    let jobs = send_jobs(&env, "after-refusal", "zeta", &ok, 10);
    arrived(&plain, &jobs, &s);

    // the stream: every job delivered, exactly once
    let stream = load.finish();
    arrived(&plain, &stream.iter().map(|id| job(id, "acme", String::new())).collect::<Vec<_>>(), &s);
    let reqs = by_id(&plain.requests());
    let twice: Vec<&String> = stream.iter().filter(|id| reqs[*id].len() != 1).collect();
    assert!(twice.is_empty(), "stream jobs sent more than once: {twice:?}");
    assert!(stream.len() > 500, "a steady stream ran throughout ({} jobs)", stream.len());
    assert!(!s.log().contains("panicked"), "{}", s.tail());
    assert_eq!(s.terminate(), Some(0));
}
