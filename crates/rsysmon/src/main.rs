//! rsysmon: the command line. Each subcommand is one module; this file only
//! dispatches and turns errors into one line on stderr.

mod cli;
mod clock;
mod hub;
mod mounts;
mod output;
mod privilege;
mod process_table;
mod run;
mod sensor;
mod stats;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Run(args) => run::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rsysmon: {e:#}");
            ExitCode::FAILURE
        }
    }
}
