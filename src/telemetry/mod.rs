//! Logs, metrics and the admin HTTP server.

pub mod logging;
