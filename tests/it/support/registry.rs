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

/// What a [`Front`] answers.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Every request passed to the registry behind it.
    Pass,
    /// Every request answered with this status and body.
    Answer(u16, String),
}

/// A front for a real registry, as a proxy or gateway in the way would be:
/// it passes requests through, or answers them itself with what the test
/// sets (a refused password's 401, a 403, a wrong path's 404).
pub struct Front {
    /// The Confluent-compatible base URL through the front.
    pub url: String,
    mode: std::sync::Arc<std::sync::Mutex<Mode>>,
}

#[derive(Clone)]
struct FrontState {
    behind: String,
    mode: std::sync::Arc<std::sync::Mutex<Mode>>,
    client: reqwest::Client,
}

impl Front {
    /// An HTTPS front for `registry` with `tls` (client certificates
    /// required when `tls` says so).
    pub fn start_tls(registry: &OwnRegistry, tls: std::sync::Arc<tokio_rustls::rustls::ServerConfig>) -> Front {
        Front::serve(registry, Some(tls))
    }

    fn serve(registry: &OwnRegistry, tls: Option<std::sync::Arc<tokio_rustls::rustls::ServerConfig>>) -> Front {
        let base = url::Url::parse(&registry.url).expect("registry url");
        let behind = format!("http://{}:{}", base.host_str().expect("host"), base.port().expect("port"));
        let mode = std::sync::Arc::new(std::sync::Mutex::new(Mode::Pass));
        let state = FrontState { behind, mode: std::sync::Arc::clone(&mode), client: reqwest::Client::new() };
        let app = axum::Router::new().fallback(front).with_state(state);
        let (scheme, addr) = match tls {
            Some(tls) => ("https", super::tls::serve(app, tls)),
            None => {
                let (tx, rx) = std::sync::mpsc::channel();
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                    rt.block_on(async move {
                        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
                        tx.send(listener.local_addr().expect("addr")).expect("send addr");
                        axum::serve(listener, app).await.expect("serve");
                    });
                });
                ("http", rx.recv().expect("front address"))
            }
        };
        Front { url: format!("{scheme}://{addr}{}", base.path()), mode }
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().expect("front lock") = mode;
    }
}

async fn front(
    axum::extract::State(state): axum::extract::State<FrontState>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mode = state.mode.lock().expect("front lock").clone();
    match mode {
        Mode::Answer(status, body) => {
            let status = axum::http::StatusCode::from_u16(status).expect("a status");
            (status, [("content-type", "application/json")], body).into_response()
        }
        Mode::Pass => {
            let path = uri.path_and_query().map_or("/", |p| p.as_str());
            let mut req = state.client.request(method, format!("{}{path}", state.behind)).body(body);
            if let Some(ct) = headers.get("content-type") {
                req = req.header("content-type", ct);
            }
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let bytes = resp.bytes().await.unwrap_or_default();
                    (status, [("content-type", "application/json")], bytes).into_response()
                }
                Err(e) => (axum::http::StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
            }
        }
    }
}
