//! The client commands: `watch`, `events`, `status`, `remote-threads` and
//! `block`.
//!
//! Each opens the daemon's socket, sends one request and copies what comes
//! back to stdout. Every failure is one line saying what to do.

pub mod fleet;

use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::Context;
use serde::de::DeserializeOwned;

use crate::cli::{BlockCommand, EventsArgs, RemoteThreadsArgs, SocketArg, StatusArgs, WatchArgs};
use crate::protocol::reply::{parse_reply, CountReply, EventsReply, RuleReply, RulesReply, StatusReply, WatchReply};
use crate::protocol::{request_line, Format, Request};

pub fn watch(args: WatchArgs) -> anyhow::Result<()> {
    let format = args.filter.format();
    let request = Request::Watch { format, filter: args.filter.filter() };
    let (WatchReply {}, mut lines) = send(&args.socket, &request)?;
    copy_lines(&mut lines, None)
}

pub fn events(args: EventsArgs) -> anyhow::Result<()> {
    let format = args.filter.format();
    let request = Request::Events { last: args.last, format, filter: args.filter.filter() };
    let (EventsReply { count, rotated }, mut lines) = send(&args.socket, &request)?;
    copy_lines(&mut lines, Some(count as u64))?;
    if rotated > 0 {
        eprintln!("rsysmon: {rotated} older events have rotated out of the daemon's history (queue.max_events)");
    }
    Ok(())
}

pub fn remote_threads(args: RemoteThreadsArgs) -> anyhow::Result<()> {
    let request = Request::RemoteThreads { format: wire_format(args.json) };
    let (CountReply { count }, mut lines) = send(&args.socket, &request)?;
    copy_lines(&mut lines, Some(count as u64))
}

pub fn block(command: BlockCommand) -> anyhow::Result<()> {
    match command {
        BlockCommand::Add { rule, glob, sha256, socket } => {
            let rule = if sha256 { format!("{}{rule}", rsysmon_blocker::SHA256_PREFIX) } else { rule };
            let (RuleReply { rule }, _) = send(&socket, &Request::BlockAdd { rule, glob })?;
            println!("blocked: {rule}");
        }
        BlockCommand::Remove { rule, socket } => {
            let (RuleReply { rule }, _) = send(&socket, &Request::BlockRemove { rule })?;
            println!("unblocked: {rule}");
        }
        BlockCommand::List { json, socket } => {
            let (RulesReply { rules }, _) = send(&socket, &Request::BlockList {})?;
            if json {
                println!("{}", serde_json::to_string(&rules)?);
            } else {
                for rule in rules {
                    println!("{rule}");
                }
            }
        }
    }
    Ok(())
}

pub fn status(args: StatusArgs) -> anyhow::Result<()> {
    let (StatusReply { status }, _) = send(&args.socket, &Request::Status {})?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    let pairs = |m: &std::collections::BTreeMap<String, u64>| {
        m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
    };
    println!("rsysmon {} up {}s", status.version, status.uptime_secs);
    println!("probes:  {} attached ({})", status.probes.len(), status.probes.join(", "));
    println!("events:  {}", pairs(&status.events));
    println!("lost:    {}", pairs(&status.lost));
    if !status.filtered.is_empty() {
        println!("filtered: {} (by {} filter rules; not a loss)", pairs(&status.filtered), status.config.filter_rules);
    }
    if let Some(b) = &status.blocker {
        let h = &b.health;
        println!(
            "blocker: {} (on failure: fail {}), {} decider failures, {} restarts{}",
            h.state,
            h.on_failure,
            h.decider_failures,
            h.restarts,
            h.last_failure.as_ref().map(|e| format!(", last failure: {e}")).unwrap_or_default()
        );
        println!(
            "         {} allowed, {} denied, {} own, {} failed, {} unreadable; {} refused in the kernel (BPF LSM)",
            b.allowed, b.denied, b.own, b.failures, b.unreadable, b.kernel_refused
        );
    }
    if !status.config.path.is_empty() {
        println!("config:  {} ({} reloads)", status.config.path, status.config.reloads);
    }
    if let Some(e) = &status.config.last_error {
        println!("config:  newest reload refused, previous configuration in force: {e}");
    }
    println!(
        "queue:   {}/{} events, {} rotated out (history, not lost)",
        status.queue.len, status.queue.capacity, status.queue.rotated
    );
    println!("clients: {}", status.clients);
    let capabilities: Vec<String> = status
        .capabilities
        .iter()
        .map(|c| format!("{} {} ({})", c.name, if c.on { "on" } else { "off" }, c.detail))
        .collect();
    println!("capabilities: {}", capabilities.join(", "));
    for s in &status.sinks {
        println!(
            "sink:    {} {} ({}, {}): {} delivered, {} lost, {}/{} queued, last seq {}{}",
            s.name,
            s.state.name(),
            s.destination,
            s.format,
            s.delivered,
            s.lost,
            s.queued,
            s.capacity,
            s.last_seq,
            s.last_error.as_ref().map(|e| format!(", last error: {e}")).unwrap_or_default()
        );
    }
    if let Some(reason) = &status.last_decode_error {
        println!("decode:  newest bad record: {reason}");
    }
    Ok(())
}

fn wire_format(json: bool) -> Format {
    if json {
        Format::Json
    } else {
        Format::Text
    }
}

/// Connect, check who listens, send `request`, read the header line as the
/// answer `T`. Returns the answer and the reader positioned after it.
fn send<T: DeserializeOwned>(target: &SocketArg, request: &Request) -> anyhow::Result<(T, BufReader<UnixStream>)> {
    let socket = target.socket.as_path();
    let mut stream = UnixStream::connect(socket).map_err(|e| connect_error(socket, &e))?;
    check_daemon(&stream, socket, target.daemon_uid)?;
    let sent = writeln!(stream, "{}", request_line(request));
    let mut reader = BufReader::new(stream);
    let mut header = String::new();
    let read = reader.read_line(&mut header);
    // A daemon that turns a connection away (too many clients) says why
    // and closes, maybe before the request is written: its reason first.
    if header.is_empty() {
        sent.context("sending the request to the daemon failed")?;
        read.context("reading the daemon's answer failed")?;
        anyhow::bail!("the daemon closed the connection without answering");
    }
    Ok((parse_reply(&header)?, reader))
}

/// Refuse a socket whose listener is not the expected uid: whoever can
/// write to the socket's directory could have put a fake daemon there, to
/// read the requests and fake the answers. The kernel vouches for the
/// listener's uid (SO_PEERCRED: its credentials when it called listen).
fn check_daemon(stream: &UnixStream, socket: &Path, expected: u32) -> anyhow::Result<()> {
    let cred = nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)
        .with_context(|| format!("cannot check who listens on {}", socket.display()))?;
    if cred.uid() != expected {
        anyhow::bail!(
            "refusing to talk to {}: the process listening there (pid {}) runs as uid {}, not uid {expected}; it is \
             not the rsysmon daemon (pass --daemon-uid {} if it is meant to be)",
            socket.display(),
            cred.pid(),
            cred.uid(),
            cred.uid()
        );
    }
    Ok(())
}

fn connect_error(socket: &Path, e: &io::Error) -> anyhow::Error {
    let path = socket.display();
    match e.kind() {
        ErrorKind::NotFound | ErrorKind::ConnectionRefused => anyhow::anyhow!(
            "the daemon is not running (nothing listens on {path}): start it with `systemctl start rsysmon` or `rsysmon daemon`"
        ),
        ErrorKind::PermissionDenied => anyhow::anyhow!(
            "permission denied on {path}: run as root, or join the group set as socket.read_group in the daemon's config"
        ),
        _ => anyhow::anyhow!("cannot connect to the daemon at {path}: {e}"),
    }
}

/// Copy event lines to stdout (`limit` of them, or until the daemon
/// closes). A reader that went away (`| head`) ends quietly.
fn copy_lines(lines: &mut impl BufRead, limit: Option<u64>) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut line = String::new();
    let mut copied = 0;
    while limit.is_none_or(|n| copied < n) {
        line.clear();
        if lines.read_line(&mut line).context("reading events from the daemon failed")? == 0 {
            break;
        }
        copied += 1;
        match out.write_all(line.as_bytes()).and_then(|()| if limit.is_none() { out.flush() } else { Ok(()) }) {
            Err(e) if e.kind() == ErrorKind::BrokenPipe => return Ok(()),
            other => other?,
        }
    }
    if let Some(n) = limit.filter(|&n| copied < n) {
        anyhow::bail!("the daemon closed the connection after {copied} of {n} events");
    }
    match out.flush() {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
