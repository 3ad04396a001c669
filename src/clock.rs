//! The wall clock, in one place. Everything that stamps or compares times
//! (job creation and expiry, retry due times, event-time lag, signatures,
//! `Retry-After` dates) reads it here; the pure code in `domain/` takes the
//! time as an argument instead, so tests pin it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Unix time in seconds.
pub fn now_secs() -> i64 {
    now_ms() / 1000
}
