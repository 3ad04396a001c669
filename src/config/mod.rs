//! Configuration (docs/design.md §2): one TOML file, every key overridable by
//! `POSTBACK__...` environment variables, unknown keys rejected, and every
//! error naming the file, the key path and the reason.
//!
//! Loading is a pure function of (file text, environment), which is what hot
//! reload runs again on a change: a config that fails here never replaces a
//! running one.

mod conditions;
mod defaults;
mod env;
pub mod guard;
pub mod model;
pub mod presets;
pub mod reload;
pub mod restart;
pub mod secrets;
pub mod table;
pub mod tls;
pub mod units;
mod validate;

pub use model::*;
pub use units::{HumanDuration, Rate};

use crate::domain::Rules;
use crate::telemetry::redact::Redactor;
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
    pub input: InputConfig,
    /// `[input.mapping]`, compiled.
    pub mapping: Option<Arc<crate::codec::Mapping>>,
    pub schema_registry: Option<SchemaRegistryConfig>,
    pub partners: Vec<PartnerConfig>,
    /// `send.allow_networks`, parsed.
    pub allow_networks: Vec<IpNet>,
    /// Apps, partner parameters and compiled postbacks.
    pub rules: Arc<Rules>,
    /// `--allow-empty`: a config without apps, or a reload that drops every
    /// postback, is accepted instead of taken for a half-written file.
    pub allow_empty: bool,
    /// What the command it was loaded for reads (reload keeps it).
    pub needs: Needs,
    /// The config's secret values: whatever is printed for a human passes
    /// through it ([`secrets`]).
    pub secrets: Arc<Redactor>,
    /// Files `${file:…}` references read: reload watches them too.
    pub secret_files: Vec<PathBuf>,
    /// [`secrets::digest`] of their contents when this config was loaded.
    pub secret_digest: u64,
}

/// How many copies of an event's attribution a state or user-activity
/// record can hold at most (first and current attribution, the event
/// itself, the attribution history): `input.max_record_bytes` times this
/// must fit the topics' record size limit.
pub const STATE_COPIES: usize = 6;

/// Largest `input.max_record_bytes` accepted: with [`STATE_COPIES`] copies
/// it stays under Kafka's default 1 MB record limit.
pub const MAX_RECORD_BYTES: usize = 131_072;

/// How a config is loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// `--allow-empty`.
    pub allow_empty: bool,
    /// What the command reads, and so what a file must have not to be
    /// taken for an empty or half-written one.
    pub needs: Needs,
}

/// What a command needs from the config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Needs {
    /// The rules: `[[apps]]` (processing, `check-config`, `postback test`).
    #[default]
    Apps,
    /// Only partners (`postback send`: it reads jobs, never events).
    Partners,
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

    /// Processing threads wanted: `process.threads`, else one per core the
    /// process may use (its CPU quota counts: a pod limited to 2 CPUs gets
    /// 2). At most one per partition is started (`process::threads`).
    pub fn process_threads(&self) -> usize {
        self.process.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// The decoding options of `[input]`.
    pub fn decode_options(&self) -> crate::codec::DecodeOptions {
        crate::codec::DecodeOptions {
            format: self.input.format,
            max_field_bytes: self.input.max_field_bytes,
            mapping: self.mapping.clone(),
            schemas: None,
        }
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
    load_with(path, LoadOptions::default())
}

/// Loads `path`, read once, with the process environment's overrides.
pub fn load_with(path: &Path, opts: LoadOptions) -> Result<Config, ConfigErrors> {
    let bytes = read(path)?;
    load_bytes(&bytes, path, opts)
}

/// The file's bytes, or an error naming it.
pub fn read(path: &Path) -> Result<Vec<u8>, ConfigErrors> {
    std::fs::read(path).map_err(|e| file_error(path, format!("cannot read: {e}")))
}

/// Loads bytes already read from `path` (hot reload reads the file once and
/// parses exactly what it read).
pub fn load_bytes(bytes: &[u8], path: &Path, opts: LoadOptions) -> Result<Config, ConfigErrors> {
    let text = std::str::from_utf8(bytes).map_err(|e| file_error(path, format!("not UTF-8: {e}")))?;
    let mut config = load_str(text, path, std::env::vars())?;
    let empty = match opts.needs {
        Needs::Apps => config.rules.apps().next().is_none().then_some(
            "no [[apps]]: every event would go to the DLQ; an empty or half-written file is refused (pass --allow-empty to run without apps)",
        ),
        Needs::Partners => config.partners.is_empty().then_some(
            "no [[partners]]: every job would go to the DLQ as for an unknown partner; an empty or half-written file is refused (pass --allow-empty to run without partners)",
        ),
    };
    if let Some(reason) = empty.filter(|_| !opts.allow_empty) {
        return Err(file_error(path, reason.into()));
    }
    config.allow_empty = opts.allow_empty;
    config.needs = opts.needs;
    Ok(config)
}

fn file_error(path: &Path, reason: String) -> ConfigErrors {
    ConfigErrors(vec![ConfigError { file: path.display().to_string(), key: "(file)".into(), reason }])
}

/// Loads config text; `path` only names the file in errors and reloads;
/// `vars` are the environment (overrides, and `${env:…}` references).
/// Accepts a config without apps (tests and tools build partial configs);
/// [`load_bytes`] is what refuses one.
pub fn load_str(
    text: &str,
    path: &Path,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let errs = |errors: Vec<(String, String)>, redactor: &Redactor| {
        ConfigErrors(
            errors
                .into_iter()
                .map(|(key, reason)| ConfigError {
                    file: file.clone(),
                    key,
                    reason: redactor.redact(&reason).into_owned(),
                })
                .collect(),
        )
    };
    let mut value: toml::Value = toml::from_str(text).map_err(|e| {
        let key = e.span().map_or_else(|| "(syntax)".to_owned(), |s| line_col(text, s.start));
        errs(vec![(key, e.message().trim().to_owned())], &Redactor::new())
    })?;
    let vars: Vec<(String, String)> = vars.into_iter().collect();
    let overrides = env::apply_overrides(&mut value, vars.iter().cloned()).map_err(|e| errs(e, &Redactor::new()))?;
    let lookup = secrets::Vars(vars.into_iter().collect());
    let resolved = secrets::resolve(&mut value, &lookup).map_err(|e| errs(e, &Redactor::new()))?;
    let raw = deserialize(value, &overrides).map_err(|e| errs(vec![e], &resolved.redactor))?;
    let mut config = validate::build(raw, path).map_err(|e| errs(e, &resolved.redactor))?;
    // log lines are redacted from here on, whatever logs them
    crate::telemetry::redact::install(&resolved.redactor);
    config.secrets = Arc::new(resolved.redactor);
    config.secret_files = resolved.files;
    config.secret_digest = resolved.digest;
    Ok(config)
}

/// The file's structure, each value an override set read as the type of
/// its key: a string first, then — where the key wants something else —
/// the text read as a TOML value, one key at a time.
fn deserialize(mut value: toml::Value, overrides: &env::Overrides) -> Result<FileConfig, (String, String)> {
    let mut retyped = std::collections::HashSet::new();
    loop {
        let e = match serde_path_to_error::deserialize::<_, FileConfig>(value.clone()) {
            Ok(raw) => return Ok(raw),
            Err(e) => e,
        };
        let key = e.path().to_string();
        let reason = e.inner().message().trim().to_owned();
        let Some(o) = overrides.0.get(&key) else { return Err((key, reason)) };
        if retyped.insert(key.clone()) {
            if let Some(typed) = env::retype(&o.raw) {
                if env::replace_at(&mut value, &o.path, typed) {
                    continue;
                }
            }
        }
        // the variable's value is not quoted back: it may be a secret
        let reason = reason.replace(&format!("\"{}\"", o.raw), "\"***\"");
        return Err((key, format!("{reason} (set by {})", o.var)));
    }
}

fn line_col(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(before.chars().count(), |p| before[p + 1..].chars().count()) + 1;
    format!("line {line}, column {col}")
}

#[cfg(test)]
mod tests;
