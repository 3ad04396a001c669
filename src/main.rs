//! The `postback` binary: parse arguments, load config, run a command.

use clap::Parser;
use postback::cli::{Cli, Command};
use postback::config;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    postback::telemetry::logging::init(cli.log_format);
    match cli.command {
        Command::CheckConfig { file } => check_config(&file),
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
