//! Logs, metrics, readiness and the admin HTTP server.

pub mod admin;
pub mod health;
pub mod logging;
pub mod metrics;
pub mod redact;

pub use health::{Health, Reason, StoreName};
pub use metrics::metrics;
