//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use rsysmon_event::EventKind;

use crate::hub::DEFAULT_CAPACITY;

const ABOUT: &str = "Linux system-activity monitor: every process and thread that starts and ends, and every \
                     executable image loaded, live, from kernel probes";

const RUN_HELP: &str = "\
Examples:
  rsysmon run                         everything, one line per event
  rsysmon run --json > events.jsonl   JSON lines for a SIEM (schema: docs/events.md)
  rsysmon run --kind process-exec     only execs
  rsysmon run --kind image-load       every executable file mapped, with base address
  rsysmon run --pid 1234 --pid 1240   only these processes

Text lines read like the book's SysMon client:
  18:59:37.660: Process 4242 (bash) created by process 4200 (bash)
  18:59:37.662: Process 4242 (ls) exec /usr/bin/ls -la
  18:59:37.663: Image loaded into process 4242 (ls) at address 0x7F3A1C200000 (/usr/lib/x86_64-linux-gnu/libc.so.6)
  18:59:37.671: Process 4242 (ls) exited with code 0

Every event has a sequence number (in --json); a number you never see was
lost, and a `loss` event says how many and where. On exit (Ctrl-C) a summary
of events per kind and losses per stage goes to stderr.

Needs root (or CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN).";

#[derive(Debug, Parser)]
#[command(name = "rsysmon", version, about = ABOUT, arg_required_else_help = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch the whole system in the foreground and print each event.
    #[command(after_help = RUN_HELP)]
    Run(RunArgs),
}

/// Options of `rsysmon run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Print one JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,

    /// Show only these kinds (comma-separated or repeated):
    /// process-create, process-exec, process-exit, thread-create,
    /// thread-exit, image-load, loss. Loss events are always shown.
    #[arg(long, value_name = "KIND", value_delimiter = ',')]
    pub kind: Vec<EventKind>,

    /// Show only events of these processes (repeatable).
    #[arg(long, value_name = "PID")]
    pub pid: Vec<u32>,

    /// Also report kernel threads (hidden by default).
    #[arg(long)]
    pub include_kernel: bool,

    /// Events kept waiting for output before the oldest are dropped.
    #[arg(long, value_name = "EVENTS", default_value_t = DEFAULT_CAPACITY,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000_000))]
    pub queue_size: usize,

    /// Size of the kernel ring buffer in KiB (rounded up to a power of two,
    /// at least 4). Larger absorbs longer bursts.
    #[arg(long, value_name = "KIB", default_value_t = 8192,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(4..=1_048_576))]
    pub ring_buffer_kib: usize,

    /// Write events to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn kinds_parse_comma_separated_and_reject_unknown() {
        let cli = Cli::try_parse_from(["rsysmon", "run", "--kind", "process-exec,thread-exit"]).unwrap();
        let Command::Run(args) = cli.command;
        assert_eq!(args.kind, [EventKind::ProcessExec, EventKind::ThreadExit]);
        let err = Cli::try_parse_from(["rsysmon", "run", "--kind", "nope"]).unwrap_err().to_string();
        assert!(err.contains("unknown event kind"), "{err}");
    }
}
