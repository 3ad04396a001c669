//! Reaching the brokers, and saying in one line why not. librdkafka
//! reports a refused password, an untrusted certificate or a port nobody
//! listens on through its error callback, again at every reconnect, while
//! a metadata request only times out; this module keeps the latest such
//! error, cleaned of librdkafka's broker prefix and timing suffix, so that
//! every command and `/readyz` can name the cause: e.g.
//! `authentication failed: SASL authentication error: Authentication failed
//! during authentication due to invalid credentials with SASL mechanism
//! SCRAM-SHA-256`.
//!
//! Connection errors are logged once per distinct message per
//! [`LOG_EVERY`] (librdkafka retries with its own exponential back-off, up
//! to `reconnect.backoff.max.ms`; the log must not turn that into a storm)
//! and counted in `postback_kafka_connection_errors_total{kind}`.

use crate::telemetry::metrics::metrics;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A repeated connection error is logged again after this long.
pub const LOG_EVERY: Duration = Duration::from_secs(60);

/// A connection error, by what the operator has to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionKind {
    /// SASL refused: user, password, mechanism, token.
    Authentication,
    /// The TLS handshake failed: CA, certificate, key, host name.
    Tls,
    /// No connection or it broke: address, port, listener, firewall.
    Transport,
    /// The host name does not resolve.
    Resolve,
    /// Every broker is down (follows the errors above).
    AllBrokersDown,
}

impl ConnectionKind {
    pub fn label(self) -> &'static str {
        match self {
            ConnectionKind::Authentication => "authentication",
            ConnectionKind::Tls => "tls",
            ConnectionKind::Transport => "transport",
            ConnectionKind::Resolve => "resolve",
            ConnectionKind::AllBrokersDown => "all_brokers_down",
        }
    }

    fn of(e: &KafkaError) -> Option<ConnectionKind> {
        match e.rdkafka_error_code()? {
            RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed => {
                Some(ConnectionKind::Authentication)
            }
            RDKafkaErrorCode::SSL => Some(ConnectionKind::Tls),
            RDKafkaErrorCode::BrokerTransportFailure => Some(ConnectionKind::Transport),
            RDKafkaErrorCode::Resolve => Some(ConnectionKind::Resolve),
            RDKafkaErrorCode::AllBrokersDown => Some(ConnectionKind::AllBrokersDown),
            _ => None,
        }
    }
}

/// One connection error, ready to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionError {
    pub kind: ConnectionKind,
    /// What librdkafka said, without the broker prefix and timing suffix.
    pub message: String,
}

impl std::fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            ConnectionKind::Authentication => write!(f, "authentication failed: {}", self.message),
            ConnectionKind::Tls => write!(f, "TLS handshake failed: {}", self.message),
            ConnectionKind::Resolve => write!(f, "cannot resolve the broker's name: {}", self.message),
            ConnectionKind::Transport | ConnectionKind::AllBrokersDown => f.write_str(&self.message),
        }
    }
}

/// `error`/`reason` of librdkafka's error callback as a connection error,
/// when it is one.
pub fn classify(error: &KafkaError, reason: &str) -> Option<ConnectionError> {
    let kind = ConnectionKind::of(error)?;
    Some(ConnectionError { kind, message: clean(reason) })
}

/// librdkafka's text without `sasl_ssl://127.0.0.1:9093/bootstrap: ` and
/// ` (after 12ms in state AUTH_REQ, 3 identical error(s) suppressed)`,
/// which change from one attempt to the next.
fn clean(reason: &str) -> String {
    let mut text = reason.trim();
    // the broker's name: `[scheme://]host:port/id`, no spaces
    if let Some(colon) = text.find(": ") {
        let prefix = &text[..colon];
        if prefix.contains('/') && !prefix.contains(' ') {
            text = &text[colon + 2..];
        }
    }
    if let Some(at) = text.rfind(" (after ") {
        if text.ends_with(')') {
            text = &text[..at];
        }
    }
    text.trim().to_owned()
}

/// Keeps the latest connection error and logs each distinct one at most
/// once per [`LOG_EVERY`]; shared by every client context of postback.
#[derive(Default)]
pub struct ConnectionLog {
    latest: Mutex<Option<(ConnectionError, Instant)>>,
    logged: Mutex<HashMap<String, Instant>>,
}

impl ConnectionLog {
    /// Handles an error of the error callback: a connection error is
    /// counted, logged (or suppressed as a repeat) and returned.
    pub fn record(&self, client: &str, error: &KafkaError, reason: &str) -> Option<ConnectionError> {
        let e = classify(error, reason)?;
        metrics().kafka_connection_error(e.kind.label());
        let text = e.to_string();
        let due = {
            let mut logged = self.logged.lock().expect("connection log lock");
            let due = logged.get(&text).is_none_or(|at| at.elapsed() >= LOG_EVERY);
            if due {
                logged.insert(text.clone(), Instant::now());
            }
            due
        };
        if due {
            tracing::warn!(client, kind = e.kind.label(), error = %text, "cannot connect to kafka");
        }
        self.keep(&e);
        Some(e)
    }

    /// Keeps `e` as the latest error, unless it only says "all brokers
    /// down" after an error that said why.
    fn keep(&self, e: &ConnectionError) {
        let mut latest = self.latest.lock().expect("connection log lock");
        if e.kind != ConnectionKind::AllBrokersDown || latest.is_none() {
            *latest = Some((e.clone(), Instant::now()));
        }
    }

    /// The latest connection error seen within `window`.
    pub fn latest(&self, window: Duration) -> Option<ConnectionError> {
        let latest = self.latest.lock().expect("connection log lock");
        latest.as_ref().filter(|(_, at)| at.elapsed() <= window).map(|(e, _)| e.clone())
    }
}

/// The log every long-lived client of the process shares: one line per
/// distinct connection error per [`LOG_EVERY`], whichever client saw it.
pub fn shared() -> &'static ConnectionLog {
    static LOG: std::sync::OnceLock<ConnectionLog> = std::sync::OnceLock::new();
    LOG.get_or_init(ConnectionLog::default)
}

/// The context of a client that only asks for metadata: records why a
/// connection failed.
#[derive(Default)]
pub struct ProbeContext {
    pub log: ConnectionLog,
}

impl ClientContext for ProbeContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        log_rdkafka(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if is_partition_eof(&error) {
            return;
        }
        // logged once for the process, kept here for this probe's answer
        match shared().record("admin", &error, reason) {
            Some(e) => self.log.keep(&e),
            None => tracing::warn!(error = %error, reason, "kafka client error"),
        }
    }
}

impl ConsumerContext for ProbeContext {}

/// librdkafka's own log lines, at the matching level.
pub fn log_rdkafka(level: RDKafkaLogLevel, fac: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", fac, "{message}")
        }
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", fac, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => tracing::info!(target: "librdkafka", fac, "{message}"),
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", fac, "{message}"),
    }
}

/// Reaching the end of a partition, however librdkafka wraps it (as a
/// consumer error, or as `Global(PartitionEOF)` through the error callback).
pub fn is_partition_eof(e: &KafkaError) -> bool {
    matches!(e, KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn librdkafka_texts_lose_their_broker_prefix_and_timing() {
        let auth = "sasl_ssl://127.0.0.1:41403/bootstrap: SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256 (after 302ms in state AUTH_REQ, 1 identical error(s) suppressed)";
        assert_eq!(
            clean(auth),
            "SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
        );
        assert_eq!(
            clean(
                "127.0.0.1:9/bootstrap: Connect to ipv4#127.0.0.1:9 failed: Connection refused (after 0ms in state CONNECT)"
            ),
            "Connect to ipv4#127.0.0.1:9 failed: Connection refused"
        );
        assert_eq!(clean("1/1 brokers are down"), "1/1 brokers are down");
    }

    #[test]
    fn errors_are_classified_by_code() {
        let e = classify(
            &KafkaError::Global(RDKafkaErrorCode::Authentication),
            "ssl://h:1/bootstrap: bad (after 1ms in state X)",
        )
        .unwrap();
        assert_eq!(e.to_string(), "authentication failed: bad");
        assert_eq!(classify(&KafkaError::Global(RDKafkaErrorCode::SSL), "x").unwrap().kind, ConnectionKind::Tls);
        assert!(classify(&KafkaError::Global(RDKafkaErrorCode::MessageTimedOut), "x").is_none());
    }
}
