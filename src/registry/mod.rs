//! A Confluent-compatible schema registry (`[schema_registry]`): writer
//! schemas of input records by id, and the job schema's id under the jobs
//! topic's subject. Blocking HTTP: it is called from the processing thread,
//! never from an async worker.
//!
//! A registry that cannot be reached is waited for (the batch waits, and
//! readiness says why); an id it does not know, or a schema that is not
//! Avro, is an answer — the records go to the DLQ with that reason.

pub mod cache;

pub use cache::SchemaCache;

use crate::config::SchemaRegistryConfig;
use std::time::Duration;

/// Readiness reason while the registry cannot be reached.
pub const UNREACHABLE: &str = "processor: schema registry unreachable";

/// Why a registry call did not give what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The registry answered: there is no such schema (or it is unusable).
    #[error("{0}")]
    Refused(String),
    /// No answer, or one that says to try again (5xx, 429).
    #[error("schema registry unreachable: {0}")]
    Unreachable(String),
    /// The client could not be built from the config.
    #[error("schema registry client: {0}")]
    Setup(String),
}

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
        if let Some(ca) = &config.ca_file {
            let pem = std::fs::read(ca).map_err(|e| RegistryError::Setup(format!("{}: {e}", ca.display())))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| RegistryError::Setup(format!("{}: {e}", ca.display())))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| RegistryError::Setup(e.to_string()))?;
        let auth = config.username.clone().map(|u| (u, config.password.clone()));
        Ok(Registry { base: config.url.trim_end_matches('/').to_owned(), http, auth })
    }

    fn send(&self, req: reqwest::blocking::RequestBuilder) -> Result<String, RegistryError> {
        let req = match &self.auth {
            Some((user, password)) => req.basic_auth(user, password.as_ref()),
            None => req,
        };
        let resp = req.send().map_err(|e| RegistryError::Unreachable(root_cause(&e)))?;
        let status = resp.status();
        let body = resp.text().map_err(|e| RegistryError::Unreachable(root_cause(&e)))?;
        if status.is_success() {
            return Ok(body);
        }
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| body.chars().take(200).collect());
        if status.is_server_error() || status.as_u16() == 429 {
            Err(RegistryError::Unreachable(format!("HTTP {status}: {message}")))
        } else {
            Err(RegistryError::Refused(format!("HTTP {}: {message}", status.as_u16())))
        }
    }

    /// The Avro schema text of `id`.
    pub fn schema(&self, id: u32) -> Result<String, RegistryError> {
        let body = match self.send(self.http.get(format!("{}/schemas/ids/{id}", self.base))) {
            Err(RegistryError::Refused(m)) if m.starts_with("HTTP 404") => {
                return Err(RegistryError::Refused(format!("schema id {id} is not in the registry")));
            }
            other => other?,
        };
        let answer: SchemaAnswer = serde_json::from_str(&body)
            .map_err(|e| RegistryError::Refused(format!("schema id {id}: unexpected answer: {e}")))?;
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

    /// Registers `schema` under `subject` (or finds it there); its id.
    pub fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let url = format!("{}/subjects/{}/versions", self.base, percent(subject));
        let body = serde_json::json!({ "schema": schema }).to_string();
        let req = self.http.post(url).header("Content-Type", "application/vnd.schemaregistry.v1+json").body(body);
        let answer = self.send(req)?;
        serde_json::from_str::<IdAnswer>(&answer)
            .map(|a| a.id)
            .map_err(|e| RegistryError::Refused(format!("subject {subject}: unexpected answer: {e}")))
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
