//! Command line: argument parsing only; every command calls into the library.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "postback", version, about = "Exactly-once partner postbacks from app-tracking events on Kafka")]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a config file and print its postback table.
    CheckConfig {
        /// The TOML config file.
        file: PathBuf,
    },
    /// Run the processing stage: events in, postback jobs out, exactly once.
    Process {
        /// The TOML config file.
        config: PathBuf,
    },
    /// Run the sender stage: postback jobs out over HTTP, with retries.
    Send {
        /// The TOML config file.
        config: PathBuf,
    },
    /// Run both stages in one process.
    Run {
        /// The TOML config file.
        config: PathBuf,
    },
    /// Work with the job DLQ.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Put DLQ jobs back on the jobs topic for another round.
    Replay {
        /// The TOML config file.
        config: PathBuf,
        /// Only jobs of this partner.
        #[arg(long)]
        partner: Option<String>,
        /// Only jobs whose DLQ reason contains this text (e.g. "http 503").
        #[arg(long)]
        reason: Option<String>,
        /// Only jobs that reached the DLQ at or after this time (unix ms).
        #[arg(long)]
        since: Option<i64>,
        /// Only jobs that reached the DLQ before this time (unix ms).
        #[arg(long)]
        until: Option<i64>,
    },
}
