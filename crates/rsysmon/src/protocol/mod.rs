//! The control protocol between `rsysmon daemon` and its clients.
//!
//! Newline-delimited JSON over a Unix stream socket: one request per line,
//! answered by one header line, then (for `events` and `watch`) event lines
//! in the format the client asked for. JSON lines because the events are
//! already JSON lines, every language can speak it, and `socat` can too;
//! the newline is the framing, so a request is bounded by a line limit.
//!
//! ```text
//! → {"v":1,"op":"status"}
//! ← {"v":1,"ok":true,"status":{…}}
//! → {"v":1,"op":"events","last":100,"format":"json","filter":{"kinds":["process-exec"]}}
//! ← {"v":1,"ok":true,"count":100,"rotated":900}
//! ← 100 event lines
//! → {"v":1,"op":"remote-threads","format":"text"}
//! ← {"v":1,"ok":true,"count":2}
//! ← 2 event lines
//! → {"v":1,"op":"block-add","rule":"/opt/x/evil"}      (root only)
//! ← {"v":1,"ok":true,"rule":"/opt/x/evil"}
//! → {"v":1,"op":"block-remove","rule":"/opt/x/evil"}   (root only)
//! → {"v":1,"op":"block-list"}                          (root only)
//! ← {"v":1,"ok":true,"rules":["/opt/x/evil", "glob:/tmp/**/*.bin"]}
//! → {"v":1,"op":"watch","format":"text","filter":{"comm":"ssh*"}}
//! ← {"v":1,"ok":true}
//! ← event lines until either side closes
//! ← {"v":1,"ok":false,"error":"…"}            on any bad request
//! ```
//!
//! `v` is the protocol version; a request with another version is refused
//! with an error naming both.

use std::io::{self, BufRead};

use rsysmon_event::Filter;
use serde::{Deserialize, Serialize};

pub use crate::hub::shared_event::Format;

pub mod reply;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u64 = 1;
/// The longest request line accepted, newline included.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Counters and health. (A struct variant, so unknown fields are
    /// refused as for the others.)
    Status {},
    /// The newest `last` events kept by the daemon (all if absent).
    Events {
        last: Option<usize>,
        #[serde(default)]
        format: Format,
        #[serde(default)]
        filter: Filter,
    },
    /// The remote threads detected, oldest first.
    RemoteThreads {
        #[serde(default)]
        format: Format,
    },
    /// Block executing a file, a directory (`DIR/`), a content
    /// (`sha256:HEX`) or, with `glob`, a pattern. Root only.
    BlockAdd {
        rule: String,
        #[serde(default)]
        glob: bool,
    },
    /// Remove the rule with this text. Root only.
    BlockRemove { rule: String },
    /// The blocking rules in force. Root only.
    BlockList {},
    /// Every event from now on.
    Watch {
        #[serde(default)]
        format: Format,
        #[serde(default)]
        filter: Filter,
    },
}

/// The daemon's answer to `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub uptime_secs: u64,
    /// Attach points of the probes.
    pub probes: Vec<String>,
    /// Events produced since start, per kind.
    pub events: std::collections::BTreeMap<String, u64>,
    /// Events lost since start, per stage.
    pub lost: std::collections::BTreeMap<String, u64>,
    pub queue: QueueStatus,
    /// Clients connected now.
    pub clients: usize,
    /// Every capability: on with its mechanism, or off with why.
    #[serde(default)]
    pub capabilities: Vec<CapabilityStatus>,
    /// The daemon's sinks (file, syslog, NATS), if any run.
    #[serde(default)]
    pub sinks: Vec<rsysmon_sinks::SinkStatus>,
    /// Why the newest ring-buffer record that failed decoding did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decode_error: Option<String>,
    /// The exec blocker's decisions since start, if it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocker: Option<BlockerStatus>,
    /// Seq of the newest event handed to the clients and sinks.
    #[serde(default)]
    pub last_seq: u64,
    /// Events the filter rules dropped since start, per kind: not a loss
    /// (their seq numbers are never given out).
    #[serde(default)]
    pub filtered: std::collections::BTreeMap<String, u64>,
    /// The configuration in force and its reloads.
    #[serde(default)]
    pub config: ConfigStatus,
}

/// The daemon's configuration file in `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigStatus {
    pub path: String,
    /// Reloads (SIGHUP) that took effect.
    pub reloads: u64,
    /// Filter rules in force.
    pub filter_rules: usize,
    /// Why the newest reload was refused, if it was; the previous
    /// configuration stayed in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The exec blocker in `status`: its decisions since start, and whether a
/// decider runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockerStatus {
    #[serde(flatten)]
    pub health: BlockerHealth,
    pub allowed: u64,
    pub denied: u64,
    /// Execs of the daemon's own executable, allowed without looking.
    pub own: u64,
    /// Execs that could not be judged and were allowed.
    pub failures: u64,
    /// Exec events the kernel could not hand over (denied by the kernel).
    pub unreadable: u64,
    /// Execs and mappings the kernel refused itself with EPERM (BPF LSM
    /// hooks, no round trip to the daemon) since the probes loaded.
    #[serde(default)]
    pub kernel_refused: u64,
}

impl BlockerStatus {
    pub fn new(s: &rsysmon_blocker::BlockerStats, health: &BlockerHealth, kernel_refused: u64) -> Self {
        BlockerStatus {
            health: health.clone(),
            allowed: s.allowed,
            denied: s.denied,
            own: s.own,
            failures: s.failures,
            unreadable: s.unreadable,
            kernel_refused,
        }
    }
}

/// Whether the exec blocker's decider runs, and its failures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockerHealth {
    /// `running`, `restarting` (failed closed, a new decider is being
    /// started) or `failed open`.
    pub state: String,
    /// `[blocking] on_failure`: closed or open.
    pub on_failure: String,
    /// Deciders that died since start.
    pub decider_failures: u64,
    /// New deciders started after a failure.
    pub restarts: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
}

/// One capability in `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilityStatus {
    /// process, image-load, injection or blocking.
    pub name: String,
    pub on: bool,
    /// The mechanism when on; why not when off.
    pub detail: String,
}

impl CapabilityStatus {
    /// Every capability of `capabilities`, in order.
    pub fn all(capabilities: &rsysmon_probe::Capabilities) -> Vec<CapabilityStatus> {
        capabilities
            .iter()
            .map(|(c, state)| {
                let (on, detail) = match state {
                    rsysmon_probe::CapabilityState::On(how) => (true, how.clone()),
                    rsysmon_probe::CapabilityState::Off(why) => (false, why.clone()),
                };
                CapabilityStatus { name: c.name().to_string(), on, detail }
            })
            .collect()
    }
}

/// Fill of the daemon's history queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStatus {
    pub len: usize,
    pub capacity: usize,
    /// Events rotated out of the history to make room for newer ones: not a
    /// loss (every client saw them live), so not under `lost`.
    pub rotated: u64,
}

/// Why a request line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("request longer than {MAX_REQUEST_BYTES} bytes")]
    TooLong,
    #[error("request is not UTF-8")]
    NotUtf8,
    #[error("request is not valid JSON: {0}")]
    BadJson(String),
    #[error("request has no protocol version \"v\"")]
    NoVersion,
    #[error("protocol version {got} is not supported: this daemon speaks version {PROTOCOL_VERSION}")]
    Version { got: u64 },
    #[error("bad request: {0}")]
    BadRequest(String),
}

impl Request {
    /// Whether the request changes what the daemon enforces (root only).
    pub fn changes_state(&self) -> bool {
        matches!(self, Request::BlockAdd { .. } | Request::BlockRemove { .. } | Request::BlockList {})
    }
}

impl ProtocolError {
    /// After these the stream cannot be trusted to be at a line boundary.
    pub fn is_fatal(&self) -> bool {
        matches!(self, ProtocolError::TooLong)
    }
}

/// Parse one request line (without its newline).
pub fn parse_request(line: &[u8]) -> Result<Request, ProtocolError> {
    if line.len() >= MAX_REQUEST_BYTES {
        return Err(ProtocolError::TooLong);
    }
    let text = std::str::from_utf8(line).map_err(|_| ProtocolError::NotUtf8)?;
    let mut value: serde_json::Value = serde_json::from_str(text).map_err(|e| ProtocolError::BadJson(e.to_string()))?;
    let object = value.as_object_mut().ok_or_else(|| ProtocolError::BadRequest("expected a JSON object".into()))?;
    let version = object.remove("v").ok_or(ProtocolError::NoVersion)?;
    match version.as_u64() {
        Some(PROTOCOL_VERSION) => {}
        Some(got) => return Err(ProtocolError::Version { got }),
        None => return Err(ProtocolError::BadRequest("\"v\" must be a number".into())),
    }
    serde_json::from_value(value).map_err(|e| ProtocolError::BadRequest(e.to_string()))
}

/// A request as one line, for clients.
pub fn request_line(request: &Request) -> String {
    let mut value = serde_json::to_value(request).expect("requests always serialize");
    if let Some(object) = value.as_object_mut() {
        object.insert("v".into(), PROTOCOL_VERSION.into());
    }
    value.to_string()
}

/// Read one line of at most `max` bytes. `Ok(None)` at end of stream;
/// `Err(TooLong)` (as InvalidData) once more than `max` bytes have come
/// without a newline — nothing past `max` is buffered.
pub fn read_line_limited(reader: &mut impl BufRead, max: usize) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(if line.is_empty() { None } else { Some(line) });
        }
        let (chunk, found) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if line.len() + chunk.len() >= max {
            return Err(io::Error::new(io::ErrorKind::InvalidData, ProtocolError::TooLong));
        }
        line.extend_from_slice(chunk);
        let used = found.unwrap_or(chunk.len());
        reader.consume(used);
        if found.is_some() {
            return Ok(Some(line));
        }
    }
}

#[cfg(test)]
mod tests;
