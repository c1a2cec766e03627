//! The daemon's configuration: TOML at /etc/rsysmon/config.toml.
//!
//! Every key has a built-in default, so no file is needed; command-line
//! flags override the file. Unknown keys and bad values are errors that
//! name the key and the line.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::hub::queue::DEFAULT_CAPACITY;

/// Where the daemon looks for its configuration by default.
pub const DEFAULT_CONFIG: &str = "/etc/rsysmon/config.toml";
/// Where the daemon listens by default.
pub const DEFAULT_SOCKET: &str = "/run/rsysmon/rsysmon.sock";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub queue: QueueConfig,
    pub socket: SocketConfig,
    pub probes: ProbesConfig,
    pub remote_threads: RemoteThreadsConfig,
    pub blocking: BlockingConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlockingConfig {
    /// Where `rsysmon block add/remove` keep the rules (JSON, written
    /// atomically); loaded at start.
    pub rules_file: PathBuf,
}

impl Default for BlockingConfig {
    fn default() -> Self {
        Self { rules_file: PathBuf::from(rsysmon_blocker::store::DEFAULT_RULE_FILE) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteThreadsConfig {
    /// How long after a takeover a new thread in the target is remote.
    pub window_secs: u64,
    /// Executables (absolute paths) whose remote threads are expected,
    /// e.g. "/usr/bin/gdb".
    pub allow: Vec<String>,
}

impl Default for RemoteThreadsConfig {
    fn default() -> Self {
        Self { window_secs: 10, allow: Vec::new() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Events kept for `rsysmon events`; the oldest are dropped beyond it.
    pub max_events: usize,
    /// Events a client may fall behind before it starts missing events.
    pub client_backlog: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SocketConfig {
    pub path: PathBuf,
    /// Members of this group may read events; only root may change state.
    pub read_group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbesConfig {
    pub include_kernel_threads: bool,
    pub ring_buffer_kib: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            queue: QueueConfig::default(),
            socket: SocketConfig::default(),
            probes: ProbesConfig::default(),
            remote_threads: RemoteThreadsConfig::default(),
            blocking: BlockingConfig::default(),
        }
    }
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self { max_events: DEFAULT_CAPACITY, client_backlog: DEFAULT_CAPACITY }
    }
}

impl Default for SocketConfig {
    fn default() -> Self {
        Self { path: PathBuf::from(DEFAULT_SOCKET), read_group: None }
    }
}

impl Default for ProbesConfig {
    fn default() -> Self {
        Self { include_kernel_threads: false, ring_buffer_kib: 8192 }
    }
}

impl Config {
    /// Parse a configuration text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Config> {
        let config: Config = toml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        config.validate().with_context(|| origin.to_string())?;
        Ok(config)
    }

    /// Load `path`; a missing file is fine only if it is the default path.
    pub fn load(path: &Path, explicit: bool) -> anyhow::Result<Config> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Ok(Config::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read config file {}", path.display())),
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        let check = |ok: bool, key: &str, why: &str| if ok { Ok(()) } else { Err(anyhow::anyhow!("{key}: {why}")) };
        check(self.queue.max_events >= 1, "queue.max_events", "must be at least 1")?;
        check(self.queue.client_backlog >= 1, "queue.client_backlog", "must be at least 1")?;
        check(
            (4..=1_048_576).contains(&self.probes.ring_buffer_kib),
            "probes.ring_buffer_kib",
            "must be between 4 and 1048576",
        )?;
        check(self.socket.path.is_absolute(), "socket.path", "must be an absolute path")?;
        check(self.blocking.rules_file.is_absolute(), "blocking.rules_file", "must be an absolute path")?;
        check(self.remote_threads.window_secs >= 1, "remote_threads.window_secs", "must be at least 1")?;
        for exe in &self.remote_threads.allow {
            check(exe.starts_with('/'), "remote_threads.allow", "entries must be absolute paths")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(Config::parse("", "t").unwrap(), Config::default());
        assert_eq!(Config::default().queue.max_events, 10_000);
    }

    #[test]
    fn keys_override_defaults() {
        let c = Config::parse("[queue]\nmax_events = 100\n[socket]\nread_group = \"adm\"\n", "t").unwrap();
        assert_eq!(c.queue.max_events, 100);
        assert_eq!(c.socket.read_group.as_deref(), Some("adm"));
        assert_eq!(c.socket.path, PathBuf::from(DEFAULT_SOCKET));
    }

    #[test]
    fn unknown_keys_and_bad_values_name_key_and_line() {
        let err = Config::parse("[queue]\nmax_event = 5\n", "cfg.toml").unwrap_err().to_string();
        assert!(err.contains("cfg.toml") && err.contains("line 2") && err.contains("max_event"), "{err}");
        let err = Config::parse("\n[queue]\nmax_events = \"many\"\n", "cfg.toml").unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("max_events"), "{err}");
        let err = format!("{:#}", Config::parse("[queue]\nmax_events = 0\n", "cfg.toml").unwrap_err());
        assert!(err.contains("queue.max_events: must be at least 1"), "{err}");
    }

    #[test]
    fn a_missing_default_file_is_fine_but_a_missing_explicit_one_is_not() {
        let missing = Path::new("/nonexistent/rsysmon.toml");
        assert!(Config::load(missing, false).is_ok());
        assert!(Config::load(missing, true).is_err());
    }
}
