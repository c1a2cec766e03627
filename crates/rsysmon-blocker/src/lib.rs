//! Execution blocking: executables the user names must not run.
//!
//! Rules ([`ExecRule`]) name a file, everything below a directory, a
//! glob, or a SHA-256; a [`RuleSet`] decides in a few hash lookups; [`store`] keeps them
//! on disk atomically; the [`Blocker`] enforces them with fanotify exec
//! permission events on every mounted filesystem, so a refused execve fails
//! with EPERM and the caller lives on. See docs/blocking.md for what is
//! covered, what is not, and what happens when the blocker dies.

mod allow_cache;
mod blocker;
mod coverage;
mod exec_hashes;
mod fanotify;
mod file_names;
mod rule;
pub mod rule_log;
mod rule_set;
mod stats;
pub mod store;

pub use allow_cache::AllowCache;
pub use blocker::{BlockedExec, Blocker, BlockerError, UNRESOLVED_RULE};
pub use coverage::Coverage;
pub use rule::{ExecRule, Protected, RuleError, GLOB_PREFIX, SHA256_PREFIX};
pub use rule_log::RuleStore;
pub use rule_set::{shared, RuleSet, SharedRules, MAX_RULES};
pub use stats::{BlockerStats, LatencyHistogram, StatsReader, LATENCY_BOUNDS_US, WINDOW};
