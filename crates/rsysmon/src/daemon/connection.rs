//! One client connection: read requests, answer them, stream events.
//!
//! Each connection has its own thread (bounded by `admission.rs`) and,
//! while watching, its own bounded backlog in the hub. The thread may block
//! writing to a client that does not read; the pipeline does not notice:
//! the backlog drops its oldest events and the client is told how many when
//! it reads again.
//!
//! Each request line must arrive whole within the idle timeout, counted
//! from the end of the previous answer: a client that sends a byte now and
//! then does not keep its connection.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use rsysmon_event::{Filter, LossStage};
use serde::Serialize;

use super::access::{Peer, Role};
use super::DaemonState;
use crate::hub::shared_event::SharedEvent;
use crate::output::write_events;
use crate::protocol::reply::{
    refusal_line, reply_line, CountReply, EventsReply, RuleReply, RulesReply, StatusReply, WatchReply,
};
use crate::protocol::{parse_request, read_line_limited, Format, ProtocolError, Request, MAX_REQUEST_BYTES};

/// Serve one client until it disconnects, misbehaves or idles.
pub fn serve(stream: &UnixStream, peer: Peer, state: &DaemonState) {
    let _ = handle(stream, peer, state);
}

fn handle(stream: &UnixStream, peer: Peer, state: &DaemonState) -> io::Result<()> {
    let role = state.access.role(&peer);
    let idle = state.idle_timeout;
    // An answer to a client that does not read fails after the same time.
    stream.set_write_timeout(Some(idle))?;
    let mut reader = BufReader::new(Deadline { stream, until: Instant::now() + idle });
    let mut out = BufWriter::new(stream);
    loop {
        reader.get_mut().until = Instant::now() + idle;
        let line = match read_line_limited(&mut reader, MAX_REQUEST_BYTES) {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                // Too long: the rest of the line cannot be skipped safely.
                return reply_error(&mut out, &ProtocolError::TooLong.to_string());
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                let why = format!("idle timeout: no complete request within {} s", idle.as_secs());
                return reply_error(&mut out, &why);
            }
            Err(e) => return Err(e),
        };
        let request = match parse_request(&line) {
            Ok(request) => request,
            Err(e) => {
                reply_error(&mut out, &e.to_string())?;
                if e.is_fatal() {
                    return Ok(());
                }
                continue;
            }
        };
        if role < Role::Reader {
            return reply_error(&mut out, "permission denied: reading events needs root or the configured read group");
        }
        if request.changes_state() && role < Role::Admin {
            reply_error(&mut out, "permission denied: only root may change or list blocking rules")?;
            continue;
        }
        match request {
            Request::Status {} => reply(&mut out, &StatusReply { status: state.status() })?,
            Request::Events { last, format, filter } => send_history(&mut out, state, last, format, &filter)?,
            Request::RemoteThreads { format } => {
                let detections = state.hub.detections();
                reply(&mut out, &CountReply { count: detections.len() })?;
                write_lines(&mut out, format, detections.iter().map(|e| &**e))?;
            }
            Request::BlockAdd { rule, glob } => match state.rules.add(&rule, glob) {
                Ok(rule) => {
                    tracing::info!(rule = %rule, "blocking rule added");
                    reply(&mut out, &RuleReply { rule })?
                }
                Err(e) => reply_error(&mut out, &format!("{e:#}"))?,
            },
            Request::BlockRemove { rule } => match state.rules.remove(&rule) {
                Ok(rule) => {
                    tracing::info!(rule = %rule, "blocking rule removed");
                    reply(&mut out, &RuleReply { rule })?
                }
                Err(e) => reply_error(&mut out, &format!("{e:#}"))?,
            },
            Request::BlockList {} => reply(&mut out, &RulesReply { rules: state.rules.list() })?,
            Request::Watch { format, filter } => {
                // A watcher may pause reading; its backlog, not a timeout,
                // bounds what that costs.
                stream.set_write_timeout(None)?;
                return watch(&mut out, state, format, &filter);
            }
        }
    }
}

/// The client's socket, read with a deadline for the whole request: every
/// read waits at most for what is left of it.
struct Deadline<'a> {
    stream: &'a UnixStream,
    until: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        // At least a millisecond: a zero timeout would mean "wait forever".
        self.stream.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        (&*self.stream).read(buf)
    }
}

/// Write `events` as lines in `format`, then flush.
fn write_lines<'a>(
    out: &mut impl Write,
    format: Format,
    events: impl IntoIterator<Item = &'a SharedEvent>,
) -> io::Result<()> {
    for event in events {
        writeln!(out, "{}", event.line(format))?;
    }
    out.flush()
}

fn send_history(
    out: &mut impl Write,
    state: &DaemonState,
    last: Option<usize>,
    format: Format,
    filter: &Filter,
) -> io::Result<()> {
    let (events, rotated) = state.hub.history(usize::MAX);
    let selected: Vec<&SharedEvent> = events.iter().map(|e| &**e).filter(|e| filter.matches(e)).collect();
    let skip = selected.len().saturating_sub(last.unwrap_or(usize::MAX));
    let selected = &selected[skip..];
    reply(out, &EventsReply { count: selected.len(), rotated })?;
    write_lines(out, format, selected.iter().copied())
}

/// Stream every event from now on, through the same writer as `run`'s
/// console output, until either side closes.
fn watch(out: &mut impl Write, state: &DaemonState, format: Format, filter: &Filter) -> io::Result<()> {
    let queue = state.hub.subscribe(state.client_backlog, LossStage::Client);
    match reply(out, &WatchReply {}) {
        // Closing the queue makes the hub forget it on its next event.
        Ok(()) => write_events(&queue, filter, format, out),
        Err(e) => {
            queue.close();
            Err(e)
        }
    }
}

fn reply(out: &mut impl Write, body: &impl Serialize) -> io::Result<()> {
    writeln!(out, "{}", reply_line(body))?;
    out.flush()
}

fn reply_error(out: &mut impl Write, message: &str) -> io::Result<()> {
    writeln!(out, "{}", refusal_line(message))?;
    out.flush()
}
