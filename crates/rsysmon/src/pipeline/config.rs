//! The monitor's configuration, for `run` and `daemon` alike: TOML, the
//! daemon's at /etc/rsysmon/config.toml.
//!
//! Every key has a built-in default, defined here once (or, for the probes,
//! in `ProbeConfig::default`), so no file is needed; command-line flags
//! override the file. Unknown keys and bad values are errors that name the
//! file, the key and the line. Every number has a range, defined here once
//! and checked by the same code for a key of the file and for the flag
//! that overrides it. The sample printed by `rsysmon daemon --help` is
//! rendered from the same defaults.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rsysmon_probe::{Capability, ProbeConfig};
use serde::Deserialize;

use crate::hub::queue::{DEFAULT_CAPACITY, DEFAULT_CLIENT_BACKLOG};
use crate::pipeline::priority::DEFAULT_NICE;
use crate::sensor::filter::{EventFilter, FilterConfig};

/// Where the daemon looks for its configuration by default.
pub const DEFAULT_CONFIG: &str = "/etc/rsysmon/config.toml";
/// Where the daemon listens by default.
pub const DEFAULT_SOCKET: &str = "/run/rsysmon/rsysmon.sock";

/// Allowed values of `queue.max_events` and `queue.client_backlog`.
pub const QUEUE_EVENTS: RangeInclusive<u64> = 1..=10_000_000;
/// Allowed values of `probes.ring_buffer_kib`.
pub const RING_BUFFER_KIB: RangeInclusive<u64> = 4..=1_048_576;
/// Allowed values of `remote_threads.window_secs`.
pub const REMOTE_WINDOW_SECS: RangeInclusive<u64> = 1..=86_400;
/// Allowed values of `hashing.max_size_mib`.
pub const HASH_MAX_SIZE_MIB: RangeInclusive<u64> = 1..=65_536;
/// Allowed values of `hashing.time_budget_ms`.
pub const HASH_TIME_BUDGET_MS: RangeInclusive<u64> = 1..=3_600_000;
/// Allowed values of `hashing.cache_entries`.
pub const HASH_CACHE_ENTRIES: RangeInclusive<u64> = 1..=10_000_000;
/// Allowed values of `socket.max_clients`: each client costs a thread and
/// a descriptor.
pub const MAX_CLIENTS: RangeInclusive<u64> = 1..=4096;
/// Allowed values of `socket.max_clients_per_uid`.
pub const MAX_CLIENTS_PER_UID: RangeInclusive<u64> = 1..=4096;
/// Allowed values of `socket.idle_timeout_secs`.
pub const IDLE_TIMEOUT_SECS: RangeInclusive<u64> = 1..=3600;

/// Connections the daemon serves at once (root's not counted).
pub const DEFAULT_MAX_CLIENTS: usize = 128;
/// Connections one non-root user may hold at once.
pub const DEFAULT_MAX_CLIENTS_PER_UID: usize = 16;
/// Seconds a client has to send a whole request line.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;

/// A value outside its range, or otherwise unusable: the key it belongs
/// to and why. A file's errors add the file and the line.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {why}")]
pub struct ValueError {
    pub key: &'static str,
    pub why: String,
}

/// Check `value` of `key` against `range`: the one check for the file and
/// the flags alike.
pub fn check_range(key: &'static str, value: u64, range: &RangeInclusive<u64>) -> Result<(), ValueError> {
    if range.contains(&value) {
        return Ok(());
    }
    let why = match (*range.start(), *range.end()) {
        (1, end) => format!("must be at least 1 and at most {end}, not {value}"),
        (start, end) => format!("must be between {start} and {end}, not {value}"),
    };
    Err(ValueError { key, why })
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub queue: QueueConfig,
    pub socket: SocketConfig,
    pub probes: ProbesConfig,
    pub remote_threads: RemoteThreadsConfig,
    pub blocking: BlockingConfig,
    pub priority: PriorityConfig,
    /// The daemon's sinks and metrics: `[outputs.file]`, `[outputs.syslog]`,
    /// `[outputs.nats]`, `[outputs.metrics]` (docs/outputs.md).
    pub outputs: rsysmon_sinks::OutputsConfig,
    pub hashing: HashingConfig,
    /// Which events are reported at all (`[[filter.rules]]`,
    /// docs/outputs.md); reloaded on SIGHUP by the daemon.
    pub filter: FilterConfig,
}

/// Allowed values of `priority.nice`: the kernel's range.
pub const NICE: RangeInclusive<i64> = -20..=19;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PriorityConfig {
    /// Nice value of the ring-buffer reader, the exec decider and `run`'s
    /// output (see `pipeline::priority` for why -10).
    pub nice: i32,
}

impl Default for PriorityConfig {
    fn default() -> Self {
        Self { nice: DEFAULT_NICE }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HashingConfig {
    /// SHA-256 of every executed program and loaded image.
    pub enabled: bool,
    /// Larger files are not hashed.
    pub max_size_mib: u64,
    /// How long one file may take to hash.
    pub time_budget_ms: u64,
    /// File versions whose hash is remembered.
    pub cache_entries: u64,
}

impl Default for HashingConfig {
    fn default() -> Self {
        let limits = rsysmon_hash::HashLimits::default();
        Self {
            enabled: true,
            max_size_mib: limits.max_size / (1024 * 1024),
            time_budget_ms: limits.time_budget.as_millis() as u64,
            cache_entries: limits.cache_entries as u64,
        }
    }
}

impl HashingConfig {
    /// The hasher's limits, or None when hashing is off.
    pub fn limits(&self) -> Option<rsysmon_hash::HashLimits> {
        self.enabled.then(|| rsysmon_hash::HashLimits {
            max_size: self.max_size_mib * 1024 * 1024,
            time_budget: Duration::from_millis(self.time_budget_ms),
            cache_entries: self.cache_entries as usize,
            ..rsysmon_hash::HashLimits::default()
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlockingConfig {
    /// Where `rsysmon block add/remove` keep the rules (JSON, written
    /// atomically); loaded at start.
    pub rules_file: PathBuf,
    /// What blocking does when the exec decider fails (docs/blocking.md).
    pub on_failure: FailMode,
    /// Where the daemon pins its BPF LSM links and rule maps, so the kernel
    /// goes on refusing while the daemon is down (`rsysmon unload` removes
    /// them). Must be on bpffs.
    pub pin_dir: PathBuf,
}

impl Default for BlockingConfig {
    fn default() -> Self {
        Self {
            rules_file: PathBuf::from(rsysmon_blocker::store::DEFAULT_RULE_FILE),
            on_failure: FailMode::Closed,
            pin_dir: PathBuf::from(rsysmon_probe::pins::DEFAULT_PIN_DIR),
        }
    }
}

/// What blocking does when the exec decider (the thread that answers every
/// exec permission event) fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Blocked files stay blocked: the kernel refuses them (BPF LSM) or
    /// kills them (image-load probes) until a new decider runs, which the daemon starts at once and
    /// then with backoff.
    Closed,
    /// Blocking ends: the kernel lists are emptied and no decider is
    /// started again; events are still reported.
    Open,
}

impl FailMode {
    pub fn name(self) -> &'static str {
        match self {
            FailMode::Closed => "closed",
            FailMode::Open => "open",
        }
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
        Self { window_secs: ProbeConfig::default().remote_thread_window.as_secs(), allow: Vec::new() }
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
    /// Connections served at once from non-root users; more are refused
    /// with a one-line reason.
    pub max_clients: usize,
    /// Connections one non-root user may hold at once.
    pub max_clients_per_uid: usize,
    /// Seconds a client has to send each whole request line; trickling
    /// bytes does not extend it.
    pub idle_timeout_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbesConfig {
    pub include_kernel_threads: bool,
    pub ring_buffer_kib: usize,
    /// Capabilities without which the monitor must not start (process is
    /// always required): image-load, injection, blocking.
    pub require: Vec<String>,
    /// Attach syscall tracepoints (default). false: no syscall of the
    /// machine takes the kernel's slow path; image loads by mmap only
    /// where the kernel traces VMA stores, no mprotect, no injection
    /// (docs/kernels.md).
    pub syscall_tracepoints: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self { max_events: DEFAULT_CAPACITY, client_backlog: DEFAULT_CLIENT_BACKLOG }
    }
}

impl Default for SocketConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from(DEFAULT_SOCKET),
            read_group: None,
            max_clients: DEFAULT_MAX_CLIENTS,
            max_clients_per_uid: DEFAULT_MAX_CLIENTS_PER_UID,
            idle_timeout_secs: DEFAULT_IDLE_TIMEOUT_SECS,
        }
    }
}

impl Default for ProbesConfig {
    fn default() -> Self {
        let probes = ProbeConfig::default();
        Self {
            include_kernel_threads: probes.include_kernel_threads,
            ring_buffer_kib: probes.ring_buffer_bytes / 1024,
            require: Vec::new(),
            syscall_tracepoints: probes.syscall_tracepoints,
        }
    }
}

impl Config {
    /// Parse a configuration text; `origin` names it in errors, with the
    /// line of the offending key.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Config> {
        let config: Config = toml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        if let Err(e) = EventFilter::new(&config.filter) {
            let rule = format!("filter.rules: rule {}: {}", e.index + 1, e.why);
            return Err(match rule_line(text, e.index) {
                Some(line) => anyhow::anyhow!("{origin}, line {line}: {rule}"),
                None => anyhow::anyhow!("{origin}: {rule}"),
            });
        }
        if let Err(e) = config.validate() {
            return Err(match line_of(text, e.key) {
                Some(line) => anyhow::anyhow!("{origin}, line {line}: {e}"),
                None => anyhow::anyhow!("{origin}: {e}"),
            });
        }
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

    /// Check every value, after flags were applied.
    pub fn validate(&self) -> Result<(), ValueError> {
        let check = |ok: bool, key: &'static str, why: &str| {
            if ok {
                Ok(())
            } else {
                Err(ValueError { key, why: why.to_string() })
            }
        };
        check_range("queue.max_events", self.queue.max_events as u64, &QUEUE_EVENTS)?;
        check_range("queue.client_backlog", self.queue.client_backlog as u64, &QUEUE_EVENTS)?;
        check_range("probes.ring_buffer_kib", self.probes.ring_buffer_kib as u64, &RING_BUFFER_KIB)?;
        check(self.socket.path.is_absolute(), "socket.path", "must be an absolute path")?;
        check_range("socket.max_clients", self.socket.max_clients as u64, &MAX_CLIENTS)?;
        check_range("socket.max_clients_per_uid", self.socket.max_clients_per_uid as u64, &MAX_CLIENTS_PER_UID)?;
        check_range("socket.idle_timeout_secs", self.socket.idle_timeout_secs, &IDLE_TIMEOUT_SECS)?;
        check(self.blocking.rules_file.is_absolute(), "blocking.rules_file", "must be an absolute path")?;
        check(self.blocking.pin_dir.is_absolute(), "blocking.pin_dir", "must be an absolute path")?;
        self.required_capabilities()?;
        check_range("remote_threads.window_secs", self.remote_threads.window_secs, &REMOTE_WINDOW_SECS)?;
        let nice = i64::from(self.priority.nice);
        check(NICE.contains(&nice), "priority.nice", "must be between -20 and 19")?;
        for exe in &self.remote_threads.allow {
            check(exe.starts_with('/'), "remote_threads.allow", "entries must be absolute paths")?;
        }
        check_range("hashing.max_size_mib", self.hashing.max_size_mib, &HASH_MAX_SIZE_MIB)?;
        check_range("hashing.time_budget_ms", self.hashing.time_budget_ms, &HASH_TIME_BUDGET_MS)?;
        check_range("hashing.cache_entries", self.hashing.cache_entries, &HASH_CACHE_ENTRIES)?;
        self.outputs.validate().map_err(|e| ValueError { key: e.key, why: e.why })?;
        EventFilter::new(&self.filter)
            .map_err(|e| ValueError { key: "filter.rules", why: format!("rule {}: {}", e.index + 1, e.why) })?;
        Ok(())
    }

    /// The capabilities `probes.require` (and `--require`) name.
    pub fn required_capabilities(&self) -> Result<Vec<Capability>, ValueError> {
        self.probes
            .require
            .iter()
            .map(|name| name.parse::<Capability>())
            .collect::<Result<_, _>>()
            .map_err(|e| ValueError { key: "probes.require", why: e.to_string() })
    }

    /// What the probes are told before they load.
    pub fn probe_config(&self) -> ProbeConfig {
        ProbeConfig {
            include_kernel_threads: self.probes.include_kernel_threads,
            ring_buffer_bytes: self.probes.ring_buffer_kib * 1024,
            remote_thread_window: Duration::from_secs(self.remote_threads.window_secs),
            // Set by the pipeline, which knows whether it blocks.
            enforcement: rsysmon_probe::Enforcement::Off,
            syscall_tracepoints: self.probes.syscall_tracepoints,
        }
    }

    /// A commented configuration file holding every default.
    pub fn sample() -> String {
        let d = Config::default();
        let quoted = |p: &Path| format!("{:?}", p.display().to_string());
        format!(
            "[queue]
max_events = {}       # events kept for `rsysmon events`; oldest dropped beyond it
client_backlog = {}   # how far a client may fall behind before it misses events

[socket]
path = {}
# read_group = \"rsysmon\"   # members may read events and status (default: root only)
max_clients = {}        # connections served at once (root's not counted)
max_clients_per_uid = {} # connections one non-root user may hold
idle_timeout_secs = {}   # time to send a whole request line

[probes]
include_kernel_threads = {}
ring_buffer_kib = {}
require = []             # start only with these too, e.g. [\"image-load\", \"blocking\"]
syscall_tracepoints = {}  # false: no syscall slow path; no mprotect probe, injection only by fexit (docs/kernels.md)

[remote_threads]
window_secs = {}         # a thread created this soon after a takeover is remote
allow = []               # creators whose remote threads are expected, e.g. [\"/usr/bin/gdb\"]

[blocking]
rules_file = {}
on_failure = \"{}\"     # if the exec decider fails: \"closed\" (restart it; the kernel kills blocked files meanwhile) or \"open\" (stop blocking)
pin_dir = {}   # BPF LSM links and rule maps pinned here (bpffs); `rsysmon unload` removes them

[priority]
nice = {}                # reader, exec decider and output threads; -20..19, 0 = ordinary

[hashing]
enabled = {}           # SHA-256 of every executed program and loaded image
max_size_mib = {}       # larger files are not hashed (hash_status \"too-large\")
time_budget_ms = {}   # one file may take this long (hash_status \"over-budget\")
cache_entries = {}    # file versions whose hash is remembered

[filter]
rules = []               # [[filter.rules]] tables: action, kind, field, op, value (docs/outputs.md)

{}",
            d.queue.max_events,
            d.queue.client_backlog,
            quoted(&d.socket.path),
            d.socket.max_clients,
            d.socket.max_clients_per_uid,
            d.socket.idle_timeout_secs,
            d.probes.include_kernel_threads,
            d.probes.ring_buffer_kib,
            d.probes.syscall_tracepoints,
            d.remote_threads.window_secs,
            quoted(&d.blocking.rules_file),
            d.blocking.on_failure.name(),
            quoted(&d.blocking.pin_dir),
            d.priority.nice,
            d.hashing.enabled,
            d.hashing.max_size_mib,
            d.hashing.time_budget_ms,
            d.hashing.cache_entries,
            rsysmon_sinks::OutputsConfig::sample(),
        )
    }
}

/// The line where filter rule `index` (0-based) starts in the TOML `text`.
fn rule_line(text: &str, index: usize) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let rules = doc.as_table().get("filter")?.as_table_like()?.get("rules")?;
    let span = match rules.as_array_of_tables() {
        Some(tables) => tables.get(index)?.span(),
        None => rules.as_array()?.get(index)?.span(),
    }?;
    Some(text[..span.start].matches('\n').count() + 1)
}

/// The line of `key` (dotted, `table.key`) in the TOML `text`, if it is
/// there.
fn line_of(text: &str, key: &str) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut parts = key.split('.');
    let mut item = doc.as_table().get(parts.next()?)?;
    for part in parts {
        item = item.as_table_like()?.get(part)?;
    }
    let start = item.span()?.start;
    Some(text[..start].matches('\n').count() + 1)
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
        assert!(err.contains("cfg.toml, line 2: queue.max_events: must be at least 1"), "{err}");
    }

    #[test]
    fn out_of_range_numbers_name_file_key_and_line() {
        let huge = "# c\n[queue]\nclient_backlog = 5\nmax_events = 9223372036854775807\n";
        let err = format!("{:#}", Config::parse(huge, "cfg.toml").unwrap_err());
        assert!(err.contains("cfg.toml, line 4: queue.max_events: must be at least 1 and at most"), "{err}");
        let err = format!("{:#}", Config::parse("[socket]\nidle_timeout_secs = 0\n", "c").unwrap_err());
        assert!(err.contains("c, line 2: socket.idle_timeout_secs"), "{err}");
        let err = format!("{:#}", Config::parse("socket = { max_clients = 100000 }\n", "c").unwrap_err());
        assert!(
            err.contains("c, line 1: socket.max_clients: must be at least 1 and at most 4096, not 100000"),
            "{err}"
        );
        let err = format!("{:#}", Config::parse("[probes]\nring_buffer_kib = -1\n", "c").unwrap_err());
        assert!(err.contains("line 2") && err.contains("ring_buffer_kib"), "{err}");
    }

    #[test]
    fn the_sample_holds_every_default() {
        assert_eq!(Config::parse(&Config::sample(), "sample").unwrap(), Config::default());
        assert!(Config::sample().contains("ring_buffer_kib = 16384"), "{}", Config::sample());
    }

    #[test]
    fn the_documented_sample_is_the_defaults() {
        let doc = include_str!("../../../../docs/daemon.md");
        let sample = doc.split("```toml\n").nth(1).and_then(|rest| rest.split("```").next()).unwrap();
        let mut documented = Config::parse(sample, "docs/daemon.md").unwrap();
        // The docs name a read group as an example; by default there is none.
        documented.socket.read_group = None;
        assert_eq!(documented, Config::default());
        // And it names every section and key, so none goes missing.
        let keys = |text: &str| -> Vec<String> {
            let key = |line: &str| line.trim_start_matches("# ").split([' ', '=']).next().map(str::to_string);
            text.lines().filter(|l| l.starts_with('[') || l.contains(" = ")).filter_map(key).collect()
        };
        assert_eq!(keys(sample), keys(&Config::sample()));
    }

    #[test]
    fn filter_rules_are_checked_with_their_line() {
        let good = "[[filter.rules]]\naction = \"exclude\"\nkind = \"thread-create\"\n";
        assert_eq!(Config::parse(good, "c").unwrap().filter.rules.len(), 1);
        let bad = format!("{good}\n[[filter.rules]]\naction = \"exclude\"\nkind = \"image-load\"\nfield = \"path\"\n");
        let err = format!("{:#}", Config::parse(&bad, "c").unwrap_err());
        assert!(err.starts_with("c, line 5: filter.rules: rule 2: field, op and value go together"), "{err}");
        let unknown = "[[filter.rules]]\naction = \"drop\"\nkind = \"*\"\n";
        let err = format!("{:#}", Config::parse(unknown, "c").unwrap_err());
        assert!(err.contains("line 2") && err.contains("drop"), "{err}");
    }

    #[test]
    fn priority_nice_is_checked_against_the_kernels_range() {
        assert_eq!(Config::parse("[priority]\nnice = 0\n", "t").unwrap().priority.nice, 0);
        let err = format!("{:#}", Config::parse("[priority]\nnice = -21\n", "t").unwrap_err());
        assert!(err.contains("priority.nice: must be between -20 and 19"), "{err}");
    }

    #[test]
    fn a_missing_default_file_is_fine_but_a_missing_explicit_one_is_not() {
        let missing = Path::new("/nonexistent/rsysmon.toml");
        assert!(Config::load(missing, false).is_ok());
        assert!(Config::load(missing, true).is_err());
    }
}
