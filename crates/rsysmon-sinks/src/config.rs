//! The `[outputs.*]` sections of the daemon's configuration file.
//!
//! Every key has a default here; `validate` checks values and names the
//! key; [`OutputsConfig::sample`] renders the defaults for the sample
//! configuration.

use std::path::PathBuf;

use serde::Deserialize;

use crate::file::Fsync;
use crate::syslog::{Facility, SyslogAddress};
use crate::LineFormat;

/// Events a sink's buffer holds by default before it drops its oldest.
pub const DEFAULT_BUFFER: usize = 100_000;
/// Where the file sink writes by default (systemd's LogsDirectory).
pub const DEFAULT_FILE: &str = "/var/log/rsysmon/events.jsonl";

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputsConfig {
    pub file: FileConfig,
    pub syslog: SyslogConfig,
    pub nats: NatsConfig,
    pub metrics: MetricsConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub enabled: bool,
    pub path: PathBuf,
    pub format: LineFormat,
    /// Rotate before the file would pass this size.
    pub max_size_mib: u64,
    /// Rotated files kept beside the live one.
    pub keep: usize,
    /// gzip rotated files.
    pub compress: bool,
    pub fsync: Fsync,
    pub buffer_events: usize,
}

impl Default for FileConfig {
    fn default() -> Self {
        FileConfig {
            enabled: true,
            path: PathBuf::from(DEFAULT_FILE),
            format: LineFormat::Json,
            max_size_mib: 100,
            keep: 5,
            compress: false,
            fsync: Fsync::Rotate,
            buffer_events: DEFAULT_BUFFER,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyslogConfig {
    pub enabled: bool,
    /// `unix:/dev/log`, `tcp:HOST:PORT` (RFC 6587 octet counting) or
    /// `tls:HOST:PORT` (RFC 5425).
    pub address: SyslogAddress,
    /// CAs (PEM) a `tls:` collector's certificate is checked against.
    pub ca_file: PathBuf,
    pub facility: Facility,
    pub app_name: String,
    pub format: LineFormat,
    pub buffer_events: usize,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        SyslogConfig {
            enabled: false,
            address: SyslogAddress::default(),
            ca_file: PathBuf::from(crate::syslog::DEFAULT_CA_FILE),
            facility: Facility::default(),
            app_name: "rsysmon".into(),
            format: LineFormat::Json,
            buffer_events: DEFAULT_BUFFER,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    pub enabled: bool,
    /// Server URLs, e.g. `nats://10.0.0.1:4222` (any one of the cluster).
    pub url: String,
    /// The JetStream stream; created if missing, with subjects
    /// `SUBJECT_PREFIX.>`.
    pub stream: String,
    pub subject_prefix: String,
    /// Replicas of a stream this daemon creates (1 or 3 in a cluster).
    pub replicas: usize,
    /// How long JetStream remembers message ids to drop duplicates.
    pub duplicate_window_secs: u64,
    pub format: LineFormat,
    pub buffer_events: usize,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            enabled: false,
            url: "nats://127.0.0.1:4222".into(),
            stream: "RSYSMON".into(),
            subject_prefix: "rsysmon".into(),
            replicas: 1,
            duplicate_window_secs: 120,
            format: LineFormat::Json,
            buffer_events: DEFAULT_BUFFER,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub enabled: bool,
    /// Address of the HTTP listener serving `/metrics`.
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { enabled: false, listen: "127.0.0.1:9469".into() }
    }
}

/// A value out of range: its full key (`outputs.file.keep`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadValue {
    pub key: &'static str,
    pub why: String,
}

impl std::fmt::Display for BadValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.why)
    }
}

impl std::error::Error for BadValue {}

impl OutputsConfig {
    /// Check every value; the error names the key.
    pub fn validate(&self) -> Result<(), BadValue> {
        let check = |ok: bool, key: &'static str, why: &str| {
            if ok {
                Ok(())
            } else {
                Err(BadValue { key, why: why.to_string() })
            }
        };
        let buffer =
            |n: usize, key: &'static str| check((1..=10_000_000).contains(&n), key, "must be between 1 and 10000000");
        check(self.file.path.is_absolute(), "outputs.file.path", "must be an absolute path")?;
        check(self.file.path.file_name().is_some(), "outputs.file.path", "must name a file")?;
        check(
            (1..=1_048_576).contains(&self.file.max_size_mib),
            "outputs.file.max_size_mib",
            "must be between 1 and 1048576",
        )?;
        check(self.file.keep <= 1000, "outputs.file.keep", "must be at most 1000")?;
        buffer(self.file.buffer_events, "outputs.file.buffer_events")?;
        check(
            !self.syslog.app_name.is_empty()
                && self.syslog.app_name.len() <= 48
                && self.syslog.app_name.bytes().all(|b| b.is_ascii_graphic()),
            "outputs.syslog.app_name",
            "must be 1 to 48 printable ASCII characters without spaces (RFC 5424)",
        )?;
        buffer(self.syslog.buffer_events, "outputs.syslog.buffer_events")?;
        check(self.syslog.ca_file.is_absolute(), "outputs.syslog.ca_file", "must be an absolute path")?;
        check(!self.nats.url.is_empty(), "outputs.nats.url", "must name a server")?;
        check(
            !self.nats.stream.is_empty()
                && self.nats.stream.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "outputs.nats.stream",
            "must be letters, digits, '-' or '_'",
        )?;
        check(
            !self.nats.subject_prefix.is_empty()
                && self.nats.subject_prefix.split('.').all(|t| !t.is_empty() && crate::identity::subject_token(t) == t),
            "outputs.nats.subject_prefix",
            "must be dot-separated tokens of letters, digits, '-' or '_'",
        )?;
        check((1..=5).contains(&self.nats.replicas), "outputs.nats.replicas", "must be between 1 and 5")?;
        check(
            (1..=86_400).contains(&self.nats.duplicate_window_secs),
            "outputs.nats.duplicate_window_secs",
            "must be between 1 and 86400",
        )?;
        buffer(self.nats.buffer_events, "outputs.nats.buffer_events")?;
        check(
            self.metrics.listen.parse::<std::net::SocketAddr>().is_ok(),
            "outputs.metrics.listen",
            "must be IP:PORT, e.g. 127.0.0.1:9469",
        )?;
        Ok(())
    }

    /// The `[outputs.*]` part of the sample configuration, every default.
    pub fn sample() -> String {
        let d = OutputsConfig::default();
        format!(
            "[outputs.file]
enabled = {}
path = {:?}
format = {:?}          # json
max_size_mib = {}      # rotate before the file passes this size
keep = {}               # rotated files kept: events.jsonl.1 (newest) … .{}
compress = {}       # gzip rotated files
fsync = {:?}       # never, rotate (on rotation and at stop) or batch
buffer_events = {} # events the sink may fall behind before it drops (sink:file loss)

[outputs.syslog]
enabled = {}
address = {:?}   # or \"tcp:HOST:PORT\" (RFC 6587 octet counting) or \"tls:HOST:PORT\" (RFC 5425)
ca_file = {:?}   # CAs a tls: collector's certificate must chain to
facility = {:?}
app_name = {:?}
format = {:?}
buffer_events = {}

[outputs.nats]
enabled = {}
url = {:?}
stream = {:?}
subject_prefix = {:?}   # subjects PREFIX.HOST.KIND
replicas = {}
duplicate_window_secs = {}
format = {:?}
buffer_events = {}

[outputs.metrics]
enabled = {}
listen = {:?}    # serves /metrics
",
            d.file.enabled,
            d.file.path.display().to_string(),
            d.file.format.name(),
            d.file.max_size_mib,
            d.file.keep,
            d.file.keep,
            d.file.compress,
            "rotate",
            d.file.buffer_events,
            d.syslog.enabled,
            d.syslog.address.to_string(),
            d.syslog.ca_file.display().to_string(),
            d.syslog.facility.name(),
            d.syslog.app_name,
            d.syslog.format.name(),
            d.syslog.buffer_events,
            d.nats.enabled,
            d.nats.url,
            d.nats.stream,
            d.nats.subject_prefix,
            d.nats.replicas,
            d.nats.duplicate_window_secs,
            d.nats.format.name(),
            d.nats.buffer_events,
            d.metrics.enabled,
            d.metrics.listen,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Wrapper {
        outputs: OutputsConfig,
    }

    #[test]
    fn the_sample_is_the_defaults() {
        let parsed: Wrapper = toml_like(&OutputsConfig::sample());
        assert_eq!(parsed.outputs, OutputsConfig::default());
        OutputsConfig::default().validate().unwrap();
    }

    fn toml_like(text: &str) -> Wrapper {
        toml::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut c = OutputsConfig::default();
        c.file.path = PathBuf::from("relative.jsonl");
        assert!(c.validate().unwrap_err().to_string().contains("outputs.file.path"));
        let mut c = OutputsConfig::default();
        c.nats.subject_prefix = "a..b".into();
        assert!(c.validate().unwrap_err().to_string().contains("outputs.nats.subject_prefix"));
        let mut c = OutputsConfig::default();
        c.syslog.app_name = "has space".into();
        assert!(c.validate().unwrap_err().to_string().contains("outputs.syslog.app_name"));
    }
}
