//! Postback jobs (docs/design.md §3.3): one rendered request to one partner, the
//! unit the sender delivers and retries.

use super::postback::{Method, Routing};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Deterministic: the same event, postback and trigger always give the
    /// same id, so a replay outside a transaction is still recognisable and
    /// partners can de-duplicate on `X-Postback-Id`.
    pub job_id: String,
    pub postback_id: String,
    pub postback_name: String,
    pub partner_id: String,
    pub app_id: String,
    /// The postback event name (`install`, `first_payment`, ...).
    pub event: String,
    /// Which attribution it was sent in.
    pub attribution: Routing,
    pub device_id: String,
    #[serde(default)]
    pub user_id: String,
    pub event_id: String,
    pub event_ts_ms: i64,
    pub created_ms: i64,
    pub method: Method,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    /// Delivery attempts made so far.
    #[serde(default)]
    pub attempt: u32,
    /// Not to be attempted before this time (retry tiers).
    #[serde(default)]
    pub not_before_ms: i64,
    /// Given up (DLQ) when still undelivered at this time.
    pub expires_ms: i64,
}

/// The job id: 128 bits of SHA-256 over everything that makes a job unique,
/// as 32 hex characters.
pub fn job_id(
    app_id: &str,
    device_id: &str,
    user_id: &str,
    event_id: &str,
    postback_id: &str,
    trigger: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [app_id, device_id, user_id, event_id, postback_id, trigger] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    hex::encode(&digest[..16])
}
