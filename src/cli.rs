//! Command line: argument parsing only; every command calls into the library.

use crate::telemetry::logging::LogFormat;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(name = "postback", version, about = "Exactly-once partner postbacks from app-tracking events on Kafka")]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a config file and print its postback table.
    CheckConfig {
        /// The TOML config file.
        file: PathBuf,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Run the processing stage: events in, postback jobs out, exactly once.
    Process {
        /// The TOML config file.
        config: PathBuf,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Run the sender stage: postback jobs out over HTTP, with retries.
    Send {
        /// The TOML config file.
        config: PathBuf,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Run both stages in one process.
    Run {
        /// The TOML config file.
        config: PathBuf,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Create every topic postback uses (the input too, when missing).
    Topics {
        #[command(subcommand)]
        command: TopicsCommand,
    },
    /// The processor's state layout: show it, or change its partition counts.
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
    /// Work with the job DLQ.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// The whole pipeline on this machine: embedded Kafka (librdkafka's
    /// mock cluster), both stages, a local partner endpoint, generated events.
    Demo {
        /// Distinct devices in the generated stream.
        #[arg(long, default_value_t = 2_000)]
        devices: usize,
        /// Events to generate (with --duration: at most).
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        /// Generate for this long instead (e.g. "30s").
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
        /// Keep running after the summary, to browse /metrics.
        #[arg(long)]
        keep_running: bool,
        /// Admin (metrics) address.
        #[arg(long, default_value = "127.0.0.1:9464")]
        admin: String,
        /// Run against this Kafka broker (e.g. from `scripts/kafka start`)
        /// instead of the embedded mock cluster; the demo's topics get a
        /// fresh `demo-<time>-<pid>.` prefix there.
        #[arg(long)]
        bootstrap: Option<String>,
        /// A librdkafka setting for every client, as `[kafka.client]` takes
        /// it (repeatable): `-X security.protocol=SASL_SSL -X
        /// 'sasl.password=${env:KAFKA_PASSWORD}'`.
        #[arg(short = 'X', long = "client", value_parser = parse_setting)]
        client: Vec<(String, String)>,
    },
    /// Explain a device's or user's state and which postbacks its next event would fire.
    Inspect {
        #[command(subcommand)]
        target: InspectTarget,
    },
    /// Run events through the rules on a copy of the state and print the postbacks they would fire.
    Test {
        /// The TOML config file.
        config: PathBuf,
        /// Events, one JSON object per line.
        events: PathBuf,
        /// Read state from this processor state directory (default: empty state); never written.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Send the postbacks to their partners and print each answer.
        #[arg(long)]
        send: bool,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// A partner endpoint that answers 200 to everything (docker-compose, tests).
    /// Ready-made partners (presets): `list`, or `show NAME`.
    Partners {
        #[command(subcommand)]
        command: PartnersCommand,
    },
    PartnerMock {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
    },
}

#[derive(Debug, Subcommand)]
pub enum PartnersCommand {
    /// Every preset: id, name, postbacks and where its format is documented.
    List,
    /// One preset: what to set, its postbacks and their URL templates.
    Show {
        /// The preset's id (`postback partners list`).
        name: String,
    },
}

/// How the config file is accepted.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct LoadArgs {
    /// Accept a config without [[apps]], and reloads that drop every
    /// postback (otherwise refused as an empty or half-written file).
    #[arg(long)]
    pub allow_empty: bool,
}

impl LoadArgs {
    pub fn options(self) -> crate::config::LoadOptions {
        crate::config::LoadOptions { allow_empty: self.allow_empty, ..Default::default() }
    }
}

#[derive(Debug, Subcommand)]
pub enum InspectTarget {
    /// A device: `inspect device APP DEVICE --config FILE`.
    Device(InspectArgs),
    /// A user: `inspect user APP USER --config FILE`.
    User(InspectArgs),
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    pub app: String,
    pub id: String,
    /// The TOML config file (apps and postbacks to explain against).
    #[arg(long)]
    pub config: PathBuf,
    /// A stopped instance's state directory (default: process.state_dir).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Ask a running instance instead, at its admin address (host:port);
    /// it needs `admin.inspect = true`.
    #[arg(long, conflicts_with = "state_dir")]
    pub admin: Option<String>,
    /// The instance's `admin.inspect_token` (also POSTBACK_INSPECT_TOKEN).
    #[arg(long, env = "POSTBACK_INSPECT_TOKEN", requires = "admin")]
    pub token: Option<String>,
}

fn parse_time(s: &str) -> Result<i64, String> {
    crate::domain::time::parse_time(s)
}

fn parse_setting(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.trim().to_owned(), v.to_owned())).ok_or_else(|| format!("'{s}' is not KEY=VALUE"))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::config::units::parse_duration(s)
}

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Create the missing topics of CONFIG and print every topic's partitions.
    Create {
        /// The TOML config file.
        config: PathBuf,
        /// Partitions of the input topic when it is created (the others
        /// follow the config: `topics.*_partitions`, or as the input).
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(i32).range(1..=10_000))]
        partitions: i32,
    },
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Input partitions, state partitions, mode and generation in force.
    Show {
        /// The TOML config file.
        config: PathBuf,
    },
    /// Move the state to new partition counts (every processor stopped).
    Rescale {
        /// The TOML config file.
        config: PathBuf,
        /// New number of device state partitions (at most the input's).
        #[arg(long)]
        partitions: Option<i32>,
        /// New number of user state partitions.
        #[arg(long)]
        user_partitions: Option<i32>,
        /// Start over after an interrupted rescale (deletes its topics).
        #[arg(long)]
        resume: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Put DLQ jobs back on the jobs topic for another round.
    Replay {
        /// The TOML config file.
        config: PathBuf,
        /// Which DLQ: `jobs` (postbacks given up, back onto topics.jobs) or
        /// `events` (input records, back onto topics.events).
        #[arg(long, value_enum, default_value = "jobs")]
        dlq: crate::replay::Dlq,
        /// Only jobs of this partner (jobs DLQ).
        #[arg(long)]
        partner: Option<String>,
        /// Only records of this app (a job's app; an input record's when it
        /// decodes as JSON or Avro without a registry).
        #[arg(long)]
        app: Option<String>,
        /// Only records whose DLQ reason (`error` header) contains this text
        /// (e.g. "http 503", "unknown app").
        #[arg(long)]
        reason: Option<String>,
        /// Only records that reached the DLQ at or after this time
        /// (2026-12-01, 2026-12-01T10:30:00Z, ...+03:00, or unix ms).
        #[arg(long, value_parser = parse_time)]
        since: Option<i64>,
        /// Only records that reached the DLQ before this time.
        #[arg(long, value_parser = parse_time)]
        until: Option<i64>,
        /// Read and count what would be replayed; write and commit nothing.
        #[arg(long)]
        dry_run: bool,
        /// Start over instead of continuing where earlier runs of this replay
        /// (same DLQ, same filter) got to.
        #[arg(long)]
        from_start: bool,
        /// The replay's consumer group (its cursor); default: named after the
        /// DLQ and the filter.
        #[arg(long)]
        name: Option<String>,
        /// Records per transaction (each one commits the replay's cursor too).
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Print the summary as JSON (the default when stdout is not a terminal).
        #[arg(long)]
        json: bool,
    },
}
