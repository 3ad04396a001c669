//! A real schema registry for a test (`scripts/registry`: Apicurio
//! Registry's Confluent-compatible API, in-memory), stopped on drop.

use std::path::PathBuf;
use std::process::Command;

pub struct OwnRegistry {
    /// The Confluent-compatible base URL.
    pub url: String,
    dir: PathBuf,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/registry")
}

impl OwnRegistry {
    pub fn start(name: &str) -> OwnRegistry {
        let dir = std::env::temp_dir().join(format!("postback-it-registry-{name}-{}", std::process::id()));
        let out = Command::new(script()).arg("start").arg("--dir").arg(&dir).output().expect("run scripts/registry");
        assert!(out.status.success(), "scripts/registry start failed: {}", String::from_utf8_lossy(&out.stderr));
        OwnRegistry { url: String::from_utf8(out.stdout).expect("utf-8").trim().to_owned(), dir }
    }

    /// Registers an Avro schema under `subject`; its id.
    pub fn register(&self, subject: &str, schema: &str) -> u32 {
        let body = serde_json::json!({ "schema": schema }).to_string();
        let answer: serde_json::Value = reqwest::blocking::Client::new()
            .post(format!("{}/subjects/{subject}/versions", self.url))
            .header("Content-Type", "application/vnd.schemaregistry.v1+json")
            .body(body)
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.text())
            .map(|t| serde_json::from_str::<serde_json::Value>(&t).expect("json"))
            .expect("register a schema");
        answer["id"].as_u64().expect("an id") as u32
    }

    /// The schema text of `id`, as any registry client would fetch it.
    pub fn schema(&self, id: u32) -> String {
        let answer: serde_json::Value = reqwest::blocking::get(format!("{}/schemas/ids/{id}", self.url))
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.text())
            .map(|t| serde_json::from_str::<serde_json::Value>(&t).expect("json"))
            .expect("fetch a schema");
        answer["schema"].as_str().expect("schema text").to_owned()
    }

    /// The ids of a subject's latest version.
    pub fn latest_id(&self, subject: &str) -> u32 {
        let answer: serde_json::Value =
            reqwest::blocking::get(format!("{}/subjects/{subject}/versions/latest", self.url))
                .and_then(|r| r.error_for_status())
                .and_then(|r| r.text())
                .map(|t| serde_json::from_str::<serde_json::Value>(&t).expect("json"))
                .expect("fetch a subject's latest version");
        answer["id"].as_u64().expect("an id") as u32
    }
}

impl OwnRegistry {
    /// SIGSTOP: connections are accepted by the kernel but nothing answers.
    pub fn pause(&self) {
        super::proc::signal_pid_file(&self.dir, libc::SIGSTOP);
    }

    pub fn resume(&self) {
        super::proc::signal_pid_file(&self.dir, libc::SIGCONT);
    }
}

impl Drop for OwnRegistry {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| self.resume());
        let _ = Command::new(script()).arg("stop").arg("--dir").arg(&self.dir).status();
    }
}
