//! The `postback` binary as a child process: the real thing, so a test can
//! `kill -9` it. Each instance gets its own admin port and state directory.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Instance {
    pub name: String,
    pub admin: String,
    child: Option<Child>,
    log: PathBuf,
}

/// The binary under test: the one Cargo built, unless
/// `POSTBACK_TEST_BIN` names another (a copy kept while the tree changes).
pub fn binary() -> String {
    std::env::var("POSTBACK_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_postback").to_owned())
}

/// Sends `sig` to the process whose pid a project script wrote to
/// `dir/pid` (the test's own broker or registry).
pub fn signal_pid_file(dir: &Path, sig: i32) {
    let pid: i32 = std::fs::read_to_string(dir.join("pid")).expect("pid file").trim().parse().expect("pid");
    // SAFETY: signalling a process this test started
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "signal {sig} to pid {pid}");
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

impl Instance {
    /// The end of this instance's log, for a failure message.
    pub fn tail(&self) -> String {
        tail(&self.log())
    }

    /// Starts `postback <command> <config>` with `POSTBACK__...` overrides.
    pub fn start(command: &str, config: &Path, name: &str, env: &[(&str, String)], dir: &Path) -> Instance {
        let port = free_port();
        let admin = format!("127.0.0.1:{port}");
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("log file");
        let mut cmd = Command::new(binary());
        cmd.arg(command)
            .arg(config)
            .env("POSTBACK__ADMIN__LISTEN", &admin)
            .env("POSTBACK__KAFKA__INSTANCE_ID", name)
            .env("RUST_LOG", "info,librdkafka=warn")
            .stdout(Stdio::null())
            .stderr(file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn postback");
        Instance { name: name.to_owned(), admin, child: Some(child), log }
    }

    pub fn metrics(&self) -> Option<String> {
        http_get(&self.admin, "/metrics")
    }

    /// Sum of a metric's samples whose label set contains every `labels` pair.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.metrics().map_or(0.0, |text| metric_sum(&text, name, labels))
    }

    pub fn ready(&self) -> bool {
        http_status(&self.admin, "/readyz") == Some(200)
    }

    /// Whether the process is still running (has not exited by itself).
    pub fn running(&mut self) -> bool {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(Ok(Some(status))) => {
                eprintln!("{} exited: {status}", self.name);
                false
            }
            _ => false,
        }
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        // SAFETY: sending a signal to our own child process
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = c.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The last 40 lines of a log, for a failure message.
pub fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && matches!(l.as_bytes().get(name.len()), Some(b'{') | Some(b' ')))
        .filter(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn http(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split(' ').nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((status, body))
}

pub fn http_get(addr: &str, path: &str) -> Option<String> {
    http(addr, path).filter(|(s, _)| *s == 200).map(|(_, b)| b)
}

/// Status and body of one GET.
pub fn http_full(addr: &str, path: &str) -> Option<(u16, String)> {
    http(addr, path)
}

pub fn http_status(addr: &str, path: &str) -> Option<u16> {
    http(addr, path).map(|(s, _)| s)
}

/// Runs `postback <args>` to completion with `env` set: (exit code,
/// stdout, stderr).
pub fn cli(args: &[&str], env: &[(&str, String)]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(binary());
    cmd.args(args).env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run postback");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}
