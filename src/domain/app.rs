//! What the rules need to know about an app.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    Mobile,
    Web,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Mobile => "mobile",
            Platform::Web => "web",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Default inactivity window: 30 days.
pub const DEFAULT_INACTIVITY_WINDOW_MS: i64 = 30 * 24 * 3600 * 1000;

/// Per-app rule settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub id: String,
    pub platform: Platform,
    /// A gap in activity of at least this long makes the next activity a
    /// re-engagement (or a re-install).
    pub inactivity_window_ms: i64,
    /// true: an organic return starts a new organic attribution; false: it
    /// keeps the previous one.
    pub reattribute_to_organic: bool,
    /// The project the app belongs to: users are counted per project, so a
    /// user who moves between its apps (mobile and web) is one user.
    pub project: String,
}

/// The project of apps that name none: all of them form one.
pub const DEFAULT_PROJECT: &str = "default";

impl App {
    pub fn new(id: &str, platform: Platform) -> App {
        App {
            id: id.to_owned(),
            platform,
            inactivity_window_ms: DEFAULT_INACTIVITY_WINDOW_MS,
            reattribute_to_organic: true,
            project: DEFAULT_PROJECT.to_owned(),
        }
    }
}
