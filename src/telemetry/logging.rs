//! Logging: `tracing` with a human or JSON format and `RUST_LOG`-style
//! filters (`RUST_LOG`; default `info`). Every line passes through the
//! installed [`super::redact`] redactor before it reaches stderr, so a
//! secret that found its way into a log field is printed as `***`.

use std::io::Write;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, fields flattened.
    Json,
}

/// `RUST_LOG` when set, else `default_filter`.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(RedactingStderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // a second init (tests, the demo) keeps the first subscriber
    drop(result);
}

/// Makes one [`LineWriter`] per log event.
struct RedactingStderr;

impl<'a> MakeWriter<'a> for RedactingStderr {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter(Vec::with_capacity(256))
    }
}

/// Collects one event's bytes and writes them, redacted, when dropped: a
/// secret split over two `write` calls is still found.
struct LineWriter(Vec<u8>);

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        let line = super::redact::redact_global(&text);
        // a log line that cannot be written has nowhere else to go
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}
