//! `postback inspect device|user APP ID`: the stored state of one device or
//! user and, per configured postback, whether its next event would fire it
//! and why not — explained by `domain::explain`, i.e. by the rules
//! themselves. Reads a stopped instance's state directory read-only, or a
//! running one's through its admin API (`/inspect/device/APP/ID`), which
//! reads through the open stores: their last writes are not on disk yet.

use crate::clock::now_ms;
use crate::config::Config;
use crate::config::reload::SharedConfig;
use crate::domain::binary::{decode_device, decode_user};
use crate::domain::engine::{state_key, user_key};
use crate::domain::explain::{self, Line};
use crate::process::Stage;
use crate::store::{RocksStore, Store};
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::get;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("unknown app '{0}': not in the config's [[apps]]")]
    UnknownApp(String),
    #[error("state directory {0}: {1}")]
    StateDir(String, String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("stored state of {0} is unreadable: {1}")]
    Corrupt(String, String),
}

/// The stored value of `key` in any store of `stage` under `state_dir`.
pub(crate) fn find(state_dir: &Path, stage: Stage, key: &str) -> Result<Option<Vec<u8>>, InspectError> {
    let prefix = format!("{}-", stage.name());
    let entries = std::fs::read_dir(state_dir)
        .map_err(|e| InspectError::StateDir(state_dir.display().to_string(), e.to_string()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&prefix) || !entry.path().is_dir() {
            continue;
        }
        let store = RocksStore::open_for_reading(&entry.path())?;
        if let Some(v) = store.get_many(&[key.as_bytes()])?.pop().flatten() {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

fn table(lines: &[Line]) -> String {
    let w = lines.iter().map(|l| l.postback_name.chars().count()).max().unwrap_or(8).max(8);
    let mut out = format!("{:<w$}  {:<5}  {}\n", "postback", "fires", "next event / why");
    for l in lines {
        out.push_str(&format!(
            "{:<w$}  {:<5}  {}: {}\n",
            l.postback_name,
            if l.fires { "yes" } else { "no" },
            l.next_event,
            l.why
        ));
    }
    out
}

/// The whole report for a device.
pub fn device_report(config: &Config, state_dir: &Path, app_id: &str, device: &str) -> Result<String, InspectError> {
    let app = config.rules.app(app_id).ok_or_else(|| InspectError::UnknownApp(app_id.to_owned()))?;
    let key = state_key(app_id, device);
    let state = find(state_dir, Stage::Device, &key)?
        .map(|v| decode_device(&v).map_err(|e| InspectError::Corrupt(key.clone(), e.to_string())))
        .transpose()?;
    let head = match &state {
        Some(st) => format!("device {device} of app {app_id} ({})\n{}\n\n", app.platform, explain::describe_device(st)),
        None => format!("device {device} of app {app_id} ({}): no stored state (never seen)\n\n", app.platform),
    };
    Ok(head + &table(&explain::explain_device(&config.rules, app, device, state.as_ref(), now_ms())))
}

/// The whole report for a user.
pub fn user_report(config: &Config, state_dir: &Path, app_id: &str, user: &str) -> Result<String, InspectError> {
    let app = config.rules.app(app_id).ok_or_else(|| InspectError::UnknownApp(app_id.to_owned()))?;
    let key = user_key(app, user);
    let state = find(state_dir, Stage::User, &key)?
        .map(|v| decode_user(&v).map_err(|e| InspectError::Corrupt(key.clone(), e.to_string())))
        .transpose()?;
    let who = format!("user {user} of project {} (as seen from app {app_id}, {})", app.project, app.platform);
    let head = match &state {
        Some(st) => format!("{who}\n{}\n\n", explain::describe_user(st)),
        None => format!("{who}: no stored state (never seen)\n\n"),
    };
    Ok(head + &table(&explain::explain_user(&config.rules, app, user, state.as_ref(), now_ms())))
}

/// `/inspect/device/{app}/{id}` and `/inspect/user/{app}/{id}` on the admin
/// port (mounted only with `admin.inspect = true`). With `admin.inspect_token`
/// a request must carry `Authorization: Bearer <token>`.
pub fn router(config: SharedConfig) -> Router {
    Router::new().route("/inspect/{kind}/{app}/{id}", get(handle)).with_state(config)
}

/// Whether `header` carries the bearer token, compared in constant time.
fn authorized(token: Option<&str>, header: Option<&[u8]>) -> bool {
    let Some(token) = token else { return true };
    let want = format!("Bearer {token}");
    let got = header.unwrap_or_default();
    got.len() == want.len() && got.iter().zip(want.as_bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

async fn handle(
    State(config): State<SharedConfig>,
    headers: axum::http::HeaderMap,
    UrlPath((kind, app, id)): UrlPath<(String, String, String)>,
) -> (StatusCode, String) {
    let config = Arc::clone(&config.read().expect("config lock"));
    let auth = headers.get(axum::http::header::AUTHORIZATION).map(|v| v.as_bytes());
    if !authorized(config.admin.inspect_token.as_deref(), auth) {
        return (StatusCode::UNAUTHORIZED, "inspect needs Authorization: Bearer <admin.inspect_token>\n".into());
    }
    let result = tokio::task::spawn_blocking(move || {
        let dir = config.process.state_dir.clone();
        match kind.as_str() {
            "device" => Some(device_report(&config, &dir, &app, &id)),
            "user" => Some(user_report(&config, &dir, &app, &id)),
            _ => None,
        }
    })
    .await;
    match result {
        Ok(Some(Ok(text))) => (StatusCode::OK, text),
        Ok(Some(Err(e))) => (StatusCode::NOT_FOUND, format!("{e}\n")),
        Ok(None) => (StatusCode::NOT_FOUND, "use /inspect/device/APP/ID or /inspect/user/APP/ID\n".into()),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_token_must_match_exactly() {
        use super::authorized;
        assert!(authorized(None, None));
        assert!(authorized(Some("0123456789abcdef"), Some(b"Bearer 0123456789abcdef")));
        assert!(!authorized(Some("0123456789abcdef"), Some(b"Bearer 0123456789abcdeg")));
        assert!(!authorized(Some("0123456789abcdef"), Some(b"0123456789abcdef")));
        assert!(!authorized(Some("0123456789abcdef"), None));
    }
}
