//! rsysmon: the command line. Each subcommand is one module; this file only
//! dispatches and turns errors into one line on stderr.

mod blocking;
mod cli;
mod client;
mod daemon;
mod hub;
mod output;
mod pipeline;
mod protocol;
mod sensor;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Run(args) => output::run::run(args),
        cli::Command::Daemon(args) => daemon::daemon(args),
        cli::Command::Watch(args) => client::watch(args),
        cli::Command::Events(args) => client::events(args),
        cli::Command::Status(args) => client::status(args),
        cli::Command::RemoteThreads(args) => client::remote_threads(args),
        cli::Command::Block(command) => client::block(command),
        cli::Command::Fleet(command) => client::fleet::fleet(command),
        cli::Command::Unload(args) => blocking::unload::unload(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rsysmon: {e:#}");
            ExitCode::FAILURE
        }
    }
}
