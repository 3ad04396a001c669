//! A Confluent-compatible schema registry (`[schema_registry]`): writer
//! schemas of input records by id, and the job schema's id under the jobs
//! topic's subject. Blocking HTTP: it is called from the processing thread,
//! never from an async worker.
//!
//! Only two answers send records to the DLQ: the registry saying the id
//! does not exist (HTTP 404 with Confluent's error code 40403), or a schema
//! it gave that cannot be read (not Avro, references, invalid). Everything
//! else is ours to fix or to wait out — unreachable, timeouts, 5xx, 429,
//! credentials refused (401, 407), a user without rights (403), a URL
//! without the API (a 404 that is not 40403), an answer that is not the
//! API's — and holds the batch, with the reason in `/readyz` and in
//! `postback_schema_registry_failures_total{kind}`, until it clears: a
//! rotated password must not dead-letter every event.

pub mod cache;

pub use cache::SchemaCache;

use crate::config::SchemaRegistryConfig;
use std::time::Duration;

/// Why the registry gave no usable answer: the batch waits (never the DLQ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unavailable {
    /// No connection (refused, DNS, TLS).
    Unreachable,
    Timeout,
    /// HTTP 401: our username or password.
    Unauthorized,
    /// HTTP 403: our user may not read schemas.
    Forbidden,
    /// HTTP 407: a proxy in the way wants credentials.
    ProxyAuth,
    /// HTTP 404 without error code 40403: the URL has no such API.
    WrongPath,
    /// HTTP 429.
    Throttled,
    /// HTTP 5xx.
    ServerError,
    /// Another status, or a body that is not the API's JSON.
    Unexpected,
}

impl Unavailable {
    pub const ALL: [Unavailable; 9] = [
        Unavailable::Unreachable,
        Unavailable::Timeout,
        Unavailable::Unauthorized,
        Unavailable::Forbidden,
        Unavailable::ProxyAuth,
        Unavailable::WrongPath,
        Unavailable::Throttled,
        Unavailable::ServerError,
        Unavailable::Unexpected,
    ];

    /// The `kind` label of `postback_schema_registry_failures_total`.
    pub fn label(self) -> &'static str {
        match self {
            Unavailable::Unreachable => "unreachable",
            Unavailable::Timeout => "timeout",
            Unavailable::Unauthorized => "unauthorized",
            Unavailable::Forbidden => "forbidden",
            Unavailable::ProxyAuth => "proxy_auth",
            Unavailable::WrongPath => "wrong_path",
            Unavailable::Throttled => "throttled",
            Unavailable::ServerError => "server_error",
            Unavailable::Unexpected => "unexpected",
        }
    }

    /// The readiness reason while it lasts.
    pub fn reason(self) -> &'static str {
        match self {
            Unavailable::Unreachable => "processor: schema registry unreachable",
            Unavailable::Timeout => "processor: schema registry timed out",
            Unavailable::Unauthorized => {
                "processor: schema registry refused our credentials (check schema_registry.username and password)"
            }
            Unavailable::Forbidden => "processor: schema registry forbids our user to read schemas",
            Unavailable::ProxyAuth => "processor: a proxy before the schema registry wants credentials",
            Unavailable::WrongPath => {
                "processor: schema registry URL has no Confluent-compatible API (check schema_registry.url)"
            }
            Unavailable::Throttled => "processor: schema registry throttles us",
            Unavailable::ServerError => "processor: schema registry failing",
            Unavailable::Unexpected => "processor: schema registry gave an unexpected answer",
        }
    }

    fn of_status(status: u16) -> Unavailable {
        match status {
            401 => Unavailable::Unauthorized,
            403 => Unavailable::Forbidden,
            407 => Unavailable::ProxyAuth,
            404 => Unavailable::WrongPath,
            429 => Unavailable::Throttled,
            500..=599 => Unavailable::ServerError,
            _ => Unavailable::Unexpected,
        }
    }
}

/// Why a registry call did not give what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The registry answered: there is no such schema (or it is unusable).
    #[error("{0}")]
    Refused(String),
    /// No usable answer; the caller waits and tries again.
    #[error("{detail}")]
    Unavailable { kind: Unavailable, detail: String },
    /// The client could not be built from the config.
    #[error("schema registry client: {0}")]
    Setup(String),
}

impl RegistryError {
    fn unavailable(kind: Unavailable, detail: impl Into<String>) -> RegistryError {
        RegistryError::Unavailable { kind, detail: detail.into() }
    }
}

/// Confluent's error code for "schema not found".
const SCHEMA_NOT_FOUND: i64 = 40403;

/// The registry's HTTP client.
pub struct Registry {
    base: String,
    http: reqwest::blocking::Client,
    auth: Option<(String, Option<String>)>,
}

#[derive(serde::Deserialize)]
struct SchemaAnswer {
    schema: String,
    #[serde(default, rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct IdAnswer {
    id: u32,
}

impl Registry {
    /// Builds the client; call it on the thread that uses it (a blocking
    /// client may not be dropped on an async worker).
    pub fn new(config: &SchemaRegistryConfig) -> Result<Registry, RegistryError> {
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(config.timeout.0)
            .connect_timeout(config.timeout.0.min(Duration::from_secs(5)))
            .no_proxy();
        let tls = crate::config::tls::load(
            config.ca_file.as_deref(),
            config.cert_file.as_deref(),
            config.key_file.as_deref(),
        )
        .map_err(RegistryError::Setup)?;
        for cert in tls.roots {
            builder = builder.add_root_certificate(cert);
        }
        if let Some(identity) = tls.identity {
            builder = builder.identity(identity);
        }
        let http = builder.build().map_err(|e| RegistryError::Setup(e.to_string()))?;
        let auth = config.username.clone().map(|u| (u, config.password.clone()));
        Ok(Registry { base: config.url.trim_end_matches('/').to_owned(), http, auth })
    }

    /// The answer's body on success; the status, Confluent error code and
    /// message otherwise.
    fn send(&self, req: reqwest::blocking::RequestBuilder) -> Result<String, Answer> {
        let req = match &self.auth {
            Some((user, password)) => req.basic_auth(user, password.as_ref()),
            None => req,
        };
        let resp = req.send().map_err(Answer::failed)?;
        let status = resp.status().as_u16();
        let body = resp.text().map_err(Answer::failed)?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let json = serde_json::from_str::<serde_json::Value>(&body).ok();
        let code = json.as_ref().and_then(|v| v.get("error_code")).and_then(serde_json::Value::as_i64);
        let message = json
            .as_ref()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| body.chars().take(200).collect());
        Err(Answer::Status { status, code, message })
    }

    /// The Avro schema text of `id`.
    pub fn schema(&self, id: u32) -> Result<String, RegistryError> {
        let body = self.send(self.http.get(format!("{}/schemas/ids/{id}", self.base))).map_err(|a| match a {
            Answer::Status { status: 404, code: Some(SCHEMA_NOT_FOUND), .. } => {
                RegistryError::Refused(format!("schema id {id} is not in the registry"))
            }
            other => other.unavailable(),
        })?;
        let answer: SchemaAnswer = serde_json::from_str(&body).map_err(|e| {
            RegistryError::unavailable(
                Unavailable::Unexpected,
                format!("schema id {id}: not the registry's answer: {e}"),
            )
        })?;
        match answer.schema_type.as_deref() {
            None | Some("AVRO") => {}
            Some(other) => {
                return Err(RegistryError::Refused(format!("schema id {id} is a {other} schema; only Avro is read")));
            }
        }
        if !answer.references.is_empty() {
            return Err(RegistryError::Refused(format!("schema id {id} has references, which are not supported")));
        }
        Ok(answer.schema)
    }

    /// Registers `schema` under `subject` (or finds it there); its id. The
    /// registry refusing the schema (409 incompatible, 422 invalid) is an
    /// answer; anything else is waited out like a read.
    pub fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let url = format!("{}/subjects/{}/versions", self.base, percent(subject));
        let body = serde_json::json!({ "schema": schema }).to_string();
        let req = self.http.post(url).header("Content-Type", "application/vnd.schemaregistry.v1+json").body(body);
        let answer = self.send(req).map_err(|a| match a {
            Answer::Status { status: status @ (409 | 422), message, .. } => {
                RegistryError::Refused(format!("HTTP {status}: {message}"))
            }
            other => other.unavailable(),
        })?;
        serde_json::from_str::<IdAnswer>(&answer).map(|a| a.id).map_err(|e| {
            RegistryError::unavailable(
                Unavailable::Unexpected,
                format!("subject {subject}: not the registry's answer: {e}"),
            )
        })
    }
}

/// What a request got when it was not a success.
enum Answer {
    /// No answer at all.
    Failed {
        timeout: bool,
        why: String,
    },
    Status {
        status: u16,
        code: Option<i64>,
        message: String,
    },
}

impl Answer {
    fn failed(e: reqwest::Error) -> Answer {
        Answer::Failed { timeout: e.is_timeout(), why: root_cause(&e) }
    }

    fn unavailable(self) -> RegistryError {
        match self {
            Answer::Failed { timeout: true, why } => RegistryError::unavailable(Unavailable::Timeout, why),
            Answer::Failed { timeout: false, why } => RegistryError::unavailable(Unavailable::Unreachable, why),
            Answer::Status { status, code, message } => {
                let code = code.map(|c| format!(" (error code {c})")).unwrap_or_default();
                RegistryError::unavailable(Unavailable::of_status(status), format!("HTTP {status}{code}: {message}"))
            }
        }
    }
}

fn percent(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The innermost error of a request failure ("connection refused"), which
/// says more than reqwest's outer "error sending request".
fn root_cause(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = s.to_string();
        source = s.source();
    }
    text
}
