//! Checks of a decoded event against the configured apps and the clock.
//! A rejected event goes to the input DLQ with `Rejection` as its reason.

use super::app::{App, Platform};
use super::event::{Event, Kind};
use super::reject::DlqReason;
use super::rules::Rules;
use std::fmt;

/// 2010-01-01T00:00:00Z: no tracker event is older.
pub const MIN_TIMESTAMP_MS: i64 = 1_262_304_000_000;
/// Clocks of devices drift; more than a day ahead is a broken clock.
pub const MAX_FUTURE_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    UnknownApp(String),
    TimestampTooOld(i64),
    TimestampInFuture(i64),
    KindNotForPlatform(Kind, Platform),
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::UnknownApp(app) => write!(f, "unknown app '{app}': not in the config's [[apps]]"),
            Rejection::TimestampTooOld(ts) => write!(f, "timestamp_ms {ts} is before 2010-01-01"),
            Rejection::TimestampInFuture(ts) => write!(f, "timestamp_ms {ts} is more than 24h in the future"),
            Rejection::KindNotForPlatform(kind, platform) => {
                write!(f, "kind '{kind}' is not valid for a {platform} app")
            }
        }
    }
}

impl Rejection {
    /// Short, bounded label for metrics.
    pub fn reason(&self) -> DlqReason {
        match self {
            Rejection::UnknownApp(_) => DlqReason::UnknownApp,
            Rejection::TimestampTooOld(_) | Rejection::TimestampInFuture(_) => DlqReason::TimestampOutOfRange,
            Rejection::KindNotForPlatform(..) => DlqReason::KindNotForPlatform,
        }
    }
}

/// Finds the event's app and checks the event fits it and the clock.
pub fn check_event<'r>(event: &Event, rules: &'r Rules, now_ms: i64) -> Result<&'r App, Rejection> {
    let app = rules.app(&event.app_id).ok_or_else(|| Rejection::UnknownApp(event.app_id.clone()))?;
    let ts = event.timestamp_ms;
    if ts < MIN_TIMESTAMP_MS {
        return Err(Rejection::TimestampTooOld(ts));
    }
    if ts > now_ms.saturating_add(MAX_FUTURE_MS) {
        return Err(Rejection::TimestampInFuture(ts));
    }
    if app.platform == Platform::Web && event.kind == Kind::Install {
        return Err(Rejection::KindNotForPlatform(event.kind, app.platform));
    }
    Ok(app)
}
