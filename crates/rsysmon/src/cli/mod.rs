//! The command line.

pub mod fleet;

use std::ffi::OsString;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use anyhow::Context;

use clap::{Args, Parser, Subcommand};
use rsysmon_event::EventKind;

use crate::pipeline::config::{
    check_range, Config, DEFAULT_CONFIG, DEFAULT_SOCKET, QUEUE_EVENTS, REMOTE_WINDOW_SECS, RING_BUFFER_KIB,
};

const ABOUT: &str = "Linux system-activity monitor and execution blocker: processes, threads, executable images \
                     and remote threads, live, from kernel probes";

const RUN_HELP: &str = "\
Examples:
  rsysmon run                         everything, one line per event
  rsysmon run --json > events.jsonl   JSON lines for a SIEM (schema: docs/events.md)
  rsysmon run --format ecs            Elastic Common Schema documents
  rsysmon run --kind process-exec     only execs
  rsysmon run --kind image-load       every executable file mapped, with base address
  rsysmon run --pid 1234 --pid 1240   only these processes
  rsysmon run --kind remote-thread,process-tamper   injections only
  rsysmon run --block /opt/x/evil     refuse to execute this file (EPERM)
  rsysmon run --block /opt/untrusted/ --block-glob '/tmp/**/*.bin'

Text lines, one per event:
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

/// The text after `rsysmon daemon --help`, with the defaults of the
/// configuration file.
fn daemon_help() -> String {
    format!(
        "\
The daemon keeps the newest events (queue.max_events) and serves them on a
Unix socket (socket.path) to the client commands: `rsysmon watch`,
`rsysmon events`, `rsysmon status`.

Configuration: TOML, {DEFAULT_CONFIG} by default (optional; every key has a
default; flags override it). Every key, with its default:

{}
Under systemd: packaging/rsysmon.service (see docs/daemon.md).",
        Config::sample()
    )
}

const CLIENT_HELP: &str = "\
Talks to a running `rsysmon daemon` over its control socket. Reading events
needs root or membership of the daemon's socket.read_group.";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch the whole system in the foreground and print each event.
    #[command(after_help = RUN_HELP)]
    Run(RunArgs),
    /// Run the monitor as a service that clients connect to.
    #[command(after_help = daemon_help())]
    Daemon(DaemonArgs),
    /// Stream events live from the daemon.
    #[command(after_help = CLIENT_HELP)]
    Watch(WatchArgs),
    /// Print the events the daemon keeps, oldest first.
    #[command(after_help = CLIENT_HELP)]
    Events(EventsArgs),
    /// Show the daemon's counters: uptime, probes, events, losses, queue, clients.
    #[command(after_help = CLIENT_HELP)]
    Status(StatusArgs),
    /// List the remote threads the daemon detected, oldest first.
    #[command(after_help = CLIENT_HELP)]
    RemoteThreads(RemoteThreadsArgs),
    /// Manage the executables the daemon refuses to run (root only).
    #[command(subcommand, after_help = BLOCK_HELP)]
    Block(BlockCommand),
    /// Remove the kernel's pinned blocking (BPF LSM links and rule maps)
    /// that outlives the daemon (root only).
    #[command(after_help = UNLOAD_HELP)]
    Unload(UnloadArgs),
    /// Read the events many hosts export to NATS JetStream.
    #[command(subcommand, after_help = fleet::FLEET_HELP)]
    Fleet(fleet::FleetCommand),
}

const BLOCK_HELP: &str = "\
A blocked exec fails with EPERM (\"Operation not permitted\") and is reported
as an exec-blocked event. A file rule matches the file by path and by
identity (device and inode, taken when the rule is added), so symlinks,
hard links, bind mounts and relative paths are blocked too. The dynamic
loader run directly on a blocked file (ld.so FILE), dlopen and mmap are
refused with EPERM where the kernel runs BPF LSM (see `rsysmon status`),
and killed before the file runs elsewhere; with BPF LSM the refusals go on
while the daemon is down (`rsysmon unload` ends them). Rules take effect at
once and persist in the daemon's rule file (blocking.rules_file, default
/var/lib/rsysmon/rules.json). See docs/blocking.md for what is and is not
covered.

Examples:
  rsysmon block add /opt/tools/nc          a file
  rsysmon block add /home/guest/Downloads/ everything below a directory
  rsysmon block add --glob '/tmp/**/*.bin' a pattern (* within a component, ** across)
  rsysmon block add --sha256 HEX           any file with this content (copies, renamed files)
  rsysmon block list
  rsysmon block remove /opt/tools/nc";

const UNLOAD_HELP: &str = "\
Where the kernel allows BPF LSM programs, the daemon pins its blocking hooks
and the rule maps they read under bpffs (blocking.pin_dir, default
/sys/fs/bpf/rsysmon): the kernel goes on refusing blocked files while the
daemon is stopped, has crashed or is restarting. This removes those pins and
says what it removed; the hooks detach once no daemon holds them (stop the
daemon first, or they stay until it ends). The next daemon start pins them
again. See docs/blocking.md.

Examples:
  rsysmon unload                            the default directory (or the config's)
  rsysmon unload --pin-dir /sys/fs/bpf/x    another one";

/// Options of `rsysmon unload`.
#[derive(Debug, Args)]
pub struct UnloadArgs {
    /// The directory of the pins [default: blocking.pin_dir of the config
    /// file, else /sys/fs/bpf/rsysmon].
    #[arg(long, value_name = "DIR")]
    pub pin_dir: Option<PathBuf>,
    /// Configuration file to read blocking.pin_dir from [default:
    /// /etc/rsysmon/config.toml, if present].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `rsysmon block …`.
#[derive(Debug, Subcommand)]
pub enum BlockCommand {
    /// Refuse to execute a file, everything below a directory (trailing /),
    /// files matching a pattern (--glob), or files with a content (--sha256).
    Add {
        /// An absolute path, a directory ending in /, with --glob a pattern,
        /// with --sha256 a SHA-256 as sha256sum prints it.
        rule: String,
        /// Treat RULE as a glob pattern.
        #[arg(long, conflicts_with = "sha256")]
        glob: bool,
        /// Treat RULE as a SHA-256: every file with that content is
        /// refused at execve, whatever its path or name.
        #[arg(long)]
        sha256: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Remove a rule, given as `rsysmon block list` shows it.
    Remove {
        rule: String,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Show the rules in force.
    List {
        /// One JSON array instead of a rule per line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
}

/// Options of `rsysmon remote-threads`.
#[derive(Debug, Args)]
pub struct RemoteThreadsArgs {
    #[command(flatten)]
    pub socket: SocketArg,
    /// Print one JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `rsysmon daemon`.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Control socket path (overrides socket.path).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

/// The monitor's settings, for `run` and `daemon` alike. Each flag
/// overrides a key of the configuration file.
#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    /// Configuration file [`daemon` default: /etc/rsysmon/config.toml, if
    /// present; `run` default: none].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Also report kernel threads, hidden by default (overrides
    /// probes.include_kernel_threads).
    #[arg(long)]
    pub include_kernel: bool,

    /// Events kept in the queue before the oldest are dropped: for `run`,
    /// waiting for output; for the daemon, for `rsysmon events` (overrides
    /// queue.max_events).
    #[arg(long, value_name = "EVENTS", value_parser = ranged::<usize>("queue.max_events", QUEUE_EVENTS))]
    pub queue_size: Option<usize>,

    /// Size of the kernel ring buffer in KiB (rounded up to a power of two,
    /// at least 4). Larger absorbs longer bursts (overrides
    /// probes.ring_buffer_kib).
    #[arg(long, value_name = "KIB", value_parser = ranged::<usize>("probes.ring_buffer_kib", RING_BUFFER_KIB))]
    pub ring_buffer_kib: Option<usize>,

    /// Seconds after a takeover (ptrace write, process_vm_writev,
    /// /proc/PID/mem write) during which a new thread in the target is
    /// reported as a remote thread (overrides
    /// remote_threads.window_secs).
    #[arg(long, value_name = "SECS", value_parser = ranged::<u64>("remote_threads.window_secs", REMOTE_WINDOW_SECS))]
    pub remote_window_secs: Option<u64>,

    /// Do not report remote threads created by this executable (absolute
    /// path, repeatable), e.g. /usr/bin/gdb (added to remote_threads.allow).
    #[arg(long, value_name = "EXE")]
    pub allow_remote_creator: Vec<String>,

    /// Refuse to start unless these capabilities run too (comma-separated
    /// or repeated): image-load, injection, blocking. Process and thread
    /// events are always required (added to probes.require).
    #[arg(long, value_name = "CAPABILITY", value_delimiter = ',')]
    pub require: Vec<String>,

    /// Attach no syscall tracepoint, so that no syscall of the machine
    /// takes the kernel's slow path: image loads by mmap are seen only
    /// where the kernel traces VMA stores, mprotect is not seen, and
    /// takeovers only where the kernel runs BPF trampolines (sets
    /// probes.syscall_tracepoints = false; docs/kernels.md).
    #[arg(long)]
    pub no_syscall_tracepoints: bool,
}

impl PipelineArgs {
    /// Defaults, then the configuration file (`--config`, or else
    /// `default_file` if it exists), then these flags.
    pub fn config(&self, default_file: Option<&Path>) -> anyhow::Result<Config> {
        let mut config = match (&self.config, default_file) {
            (Some(path), _) => Config::load(path, true)?,
            (None, Some(path)) => Config::load(path, false)?,
            (None, None) => Config::default(),
        };
        if self.include_kernel {
            config.probes.include_kernel_threads = true;
        }
        if let Some(n) = self.queue_size {
            config.queue.max_events = n;
        }
        if let Some(kib) = self.ring_buffer_kib {
            config.probes.ring_buffer_kib = kib;
        }
        if let Some(secs) = self.remote_window_secs {
            config.remote_threads.window_secs = secs;
        }
        config.remote_threads.allow.extend(self.allow_remote_creator.iter().cloned());
        config.probes.require.extend(self.require.iter().cloned());
        if self.no_syscall_tracepoints {
            config.probes.syscall_tracepoints = false;
        }
        config.validate().context("invalid settings")?;
        Ok(config)
    }
}

/// The parser of a flag that overrides the number `key`: the same range
/// and the same message as for the key in the file.
fn ranged<T: TryFrom<u64>>(
    key: &'static str,
    range: RangeInclusive<u64>,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
    move |text: &str| {
        let value: u64 = text.parse().map_err(|_| format!("{key}: must be a whole number, not {text:?}"))?;
        check_range(key, value, &range).map_err(|e| e.to_string())?;
        T::try_from(value).map_err(|_| format!("{key}: {value} is too large for this machine"))
    }
}

/// Which daemon to talk to.
#[derive(Debug, Args)]
pub struct SocketArg {
    /// The daemon's control socket.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// The uid the daemon must run as. The client checks the process
    /// listening on the socket (SO_PEERCRED) before it sends anything, so
    /// a fake daemon started by another user is refused.
    #[arg(long, value_name = "UID", default_value_t = 0)]
    pub daemon_uid: u32,
}

/// Which events a client wants, and in what form.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Print one JSON object per line instead of text (--format json).
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Output form: text (one line per event), json (rsysmon's schema,
    /// docs/events.md) or ecs (Elastic Common Schema documents).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<rsysmon_event::Format>,
    /// Only these kinds (comma-separated or repeated): process-create,
    /// process-exec, process-exit, thread-create, thread-exit, image-load,
    /// process-tamper, remote-thread, exec-blocked, image-hash, loss. Loss events
    /// always show.
    #[arg(long, value_name = "KIND", value_delimiter = ',')]
    pub kind: Vec<EventKind>,
    /// Only these processes (repeatable).
    #[arg(long, value_name = "PID")]
    pub pid: Vec<u32>,
    /// Only processes whose name matches this shell pattern, e.g. 'ssh*'.
    #[arg(long, value_name = "GLOB")]
    pub comm: Option<rsysmon_event::CommPattern>,
}

impl FilterArgs {
    /// The output form asked for: text unless --json or --format.
    pub fn format(&self) -> rsysmon_event::Format {
        match (self.format, self.json) {
            (Some(format), _) => format,
            (None, true) => rsysmon_event::Format::Json,
            (None, false) => rsysmon_event::Format::Text,
        }
    }

    pub fn filter(&self) -> rsysmon_event::Filter {
        rsysmon_event::Filter {
            kinds: self.kind.iter().copied().collect(),
            pids: self.pid.iter().copied().collect(),
            comm: self.comm.clone(),
        }
    }
}

/// Options of `rsysmon watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub socket: SocketArg,
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// Options of `rsysmon events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    pub socket: SocketArg,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Only the newest N (after filtering).
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
}

/// Options of `rsysmon status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub socket: SocketArg,
    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Options of `rsysmon run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub filter: FilterArgs,

    #[command(flatten)]
    pub pipeline: PipelineArgs,

    /// Refuse to execute this file (by path and by identity, so its other
    /// names too), or everything below a directory given with a trailing
    /// `/`. Repeatable. Refusals are `exec-blocked` events. See
    /// docs/blocking.md.
    #[arg(long, value_name = "PATH")]
    pub block: Vec<OsString>,

    /// Refuse to execute files whose real path matches this glob (`*`
    /// within a path component, `**` across them). Repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub block_glob: Vec<OsString>,

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
        let Command::Run(args) = cli.command else { panic!("parsed as another command") };
        assert_eq!(args.filter.kind, [EventKind::ProcessExec, EventKind::ThreadExit]);
        let err = Cli::try_parse_from(["rsysmon", "run", "--kind", "nope"]).unwrap_err().to_string();
        assert!(err.contains("unknown event kind"), "{err}");
    }

    #[test]
    fn out_of_range_flags_are_refused_like_the_file_keys() {
        let err = Cli::try_parse_from(["rsysmon", "daemon", "--queue-size", "0"]).unwrap_err().to_string();
        assert!(err.contains("queue.max_events: must be at least 1 and at most 10000000, not 0"), "{err}");
        let err = Cli::try_parse_from(["rsysmon", "run", "--remote-window-secs", "99999999"]).unwrap_err().to_string();
        assert!(err.contains("remote_threads.window_secs: must be at least 1"), "{err}");
        let err = Cli::try_parse_from(["rsysmon", "run", "--ring-buffer-kib", "lots"]).unwrap_err().to_string();
        assert!(err.contains("probes.ring_buffer_kib: must be a whole number"), "{err}");
    }

    #[test]
    fn client_commands_take_filters_and_a_socket() {
        let cli =
            Cli::try_parse_from(["rsysmon", "watch", "--comm", "ssh*", "--pid", "4", "--socket", "/tmp/s"]).unwrap();
        let Command::Watch(args) = cli.command else { panic!("parsed as another command") };
        assert_eq!(args.socket.socket, PathBuf::from("/tmp/s"));
        let filter = args.filter.filter();
        assert!(filter.pids.contains(&4) && filter.comm.is_some());
        assert!(Cli::try_parse_from(["rsysmon", "watch", "--comm", "[bad"]).is_err());
    }
}
