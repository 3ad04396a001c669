//! The `postback` binary: parse arguments, load config, run a command.

use clap::Parser;
use postback::cli::{Cli, Command, DlqCommand};
use postback::config;
use postback::send::replay::Filter;
use postback::server::{self, Stages};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    postback::telemetry::logging::init(cli.log_format);
    match cli.command {
        Command::CheckConfig { file } => check_config(&file),
        Command::Process { config } => service(&config, Stages { process: true, send: false }),
        Command::Send { config } => service(&config, Stages { process: false, send: true }),
        Command::Run { config } => service(&config, Stages { process: true, send: true }),
        Command::Dlq { command: DlqCommand::Replay { config, partner, reason, since, until } } => {
            dlq_replay(&config, Filter { partner, reason, since_ms: since, until_ms: until })
        }
    }
}

fn dlq_replay(path: &std::path::Path, filter: Filter) -> ExitCode {
    let config = match config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match postback::send::replay::replay(&config, &filter) {
        Ok(s) => {
            println!("read {} DLQ records, replayed {}, skipped {} undecodable", s.read, s.replayed, s.undecodable);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("postback: dlq replay: {e}");
            ExitCode::FAILURE
        }
    }
}

fn service(config: &std::path::Path, stages: Stages) -> ExitCode {
    match server::run(config, stages) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "postback failed");
            eprintln!("postback: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(file: &std::path::Path) -> ExitCode {
    match config::load(file) {
        Ok(c) => {
            print!("{}", config::table::postback_table(&c));
            println!(
                "\n{}: ok ({} apps, {} partners, {} postbacks)",
                file.display(),
                c.rules.apps().count(),
                c.partners.len(),
                c.rules.postbacks().len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{}: {} error(s)", file.display(), errors.0.len());
            ExitCode::FAILURE
        }
    }
}
