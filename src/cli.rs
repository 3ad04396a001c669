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
}
