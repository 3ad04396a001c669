//! Configuration (DESIGN §2): one TOML file, every key overridable by
//! `POSTBACK__...` environment variables, unknown keys rejected, and every
//! error naming the file, the key path and the reason.
//!
//! Loading is a pure function of (file text, environment), which is what hot
//! reload runs again on a change: a config that fails here never replaces a
//! running one.

mod env;
pub mod model;
pub mod reload;
pub mod table;
pub mod units;
mod validate;

pub use model::*;
pub use units::{HumanDuration, Rate};

use crate::domain::Rules;
use ipnet::IpNet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A loaded, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was loaded from (for reload and messages).
    pub path: PathBuf,
    pub kafka: KafkaConfig,
    pub topics: TopicsConfig,
    pub process: ProcessConfig,
    pub send: SendConfig,
    pub admin: AdminConfig,
    pub partners: Vec<PartnerConfig>,
    /// `send.allow_networks`, parsed.
    pub allow_networks: Vec<IpNet>,
    /// Apps, partner parameters and compiled postbacks.
    pub rules: Arc<Rules>,
}

impl Config {
    pub fn partner(&self, id: &str) -> Option<&PartnerConfig> {
        self.partners.iter().find(|p| p.id == id)
    }

    /// The topic of retry tier `n` (1-based).
    pub fn retry_topic(&self, n: usize) -> String {
        format!("{}-{n}", self.topics.jobs_retry_prefix)
    }

    pub fn retry_topics(&self) -> Vec<String> {
        (1..=self.send.retry_delays.len()).map(|n| self.retry_topic(n)).collect()
    }

    /// Stable instance identity (transactional id, static membership).
    pub fn instance_id(&self) -> String {
        self.kafka.instance_id.clone().unwrap_or_else(hostname)
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|s| s.trim().to_owned()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "postback-0".to_owned())
}

/// One problem in a config: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// Key path (`postbacks[2].url`), or a position for syntax errors.
    pub key: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file, self.key, self.reason)
    }
}

/// Every problem found in a config, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Loads `path` with the process environment's overrides.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: file.clone(),
            key: "(file)".into(),
            reason: format!("cannot read: {e}"),
        }])
    })?;
    load_str(&text, path, std::env::vars())
}

/// Loads config text; `path` only names the file in errors and reloads.
pub fn load_str(
    text: &str,
    path: &Path,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let err = |key: String, reason: String| ConfigErrors(vec![ConfigError { file: file.clone(), key, reason }]);
    let mut value: toml::Value = toml::from_str(text).map_err(|e| {
        let key = e.span().map_or_else(|| "(syntax)".to_owned(), |s| line_col(text, s.start));
        err(key, e.message().trim().to_owned())
    })?;
    let env_keys = env::apply_overrides(&mut value, vars).map_err(|errors| {
        ConfigErrors(
            errors.into_iter().map(|(var, reason)| ConfigError { file: file.clone(), key: var, reason }).collect(),
        )
    })?;
    let raw: FileConfig = serde_path_to_error::deserialize(value).map_err(|e| {
        let key = e.path().to_string();
        let reason = e.inner().message().trim().to_owned();
        match env_keys.get(&key) {
            Some(var) => err(key, format!("{reason} (set by {var})")),
            None => err(key, reason),
        }
    })?;
    validate::build(raw, path).map_err(|errors| {
        ConfigErrors(errors.into_iter().map(|(key, reason)| ConfigError { file: file.clone(), key, reason }).collect())
    })
}

fn line_col(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(before.chars().count(), |p| before[p + 1..].chars().count()) + 1;
    format!("line {line}, column {col}")
}

#[cfg(test)]
mod tests;
