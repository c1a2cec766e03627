//! The execution blocker inside the pipeline (`rsysmon run --block …` and
//! the daemon).
//!
//! The blocker answers execs on its own thread; each refusal is sent over
//! an unbounded channel (sending never blocks the decider) and the reader
//! loop, which owns the sensor and so the sequence numbers, turns it into
//! an `exec-blocked` event between two polls of the ring buffer. Such an
//! event is numbered when the reader takes it, so it can follow kernel
//! events that happened slightly after it; its `time` is when the exec was
//! refused.

pub mod exec_rules;
pub mod kernel_lists;
pub mod unload;

use std::cell::Cell;
use std::ffi::OsString;
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use anyhow::Context;
use rsysmon_blocker::{BlockedExec, Blocker, ExecRule, Protected, RuleSet};

use crate::blocking::exec_rules::ExecRules;
use crate::hub::Hub;
use crate::sensor::Sensor;

/// A running blocker and the refusals it reports.
pub struct Blocking {
    pub blocker: Blocker,
    pub refusals: Receiver<BlockedExec>,
    /// Unreadable exec events already reported, and when last.
    reported_unreadable: Cell<(u64, Option<Instant>)>,
}

/// How often a run of unreadable exec events is logged at most.
const REPORT_UNREADABLE_EVERY: Duration = Duration::from_secs(10);

/// The rules from `--block` and `--block-glob`, or None when there are none.
pub fn rules(paths: &[OsString], globs: &[OsString]) -> anyhow::Result<Option<RuleSet>> {
    if paths.is_empty() && globs.is_empty() {
        return Ok(None);
    }
    let protected = Protected::this_process().context("cannot find rsysmon's own executable to protect it")?;
    let mut set = RuleSet::new();
    for path in paths {
        let rule = ExecRule::path(path, &protected).with_context(|| format!("--block {}", path.to_string_lossy()))?;
        set.add(rule).with_context(|| format!("--block {}", path.to_string_lossy()))?;
    }
    for glob in globs {
        let rule =
            ExecRule::glob(glob, &protected).with_context(|| format!("--block-glob {}", glob.to_string_lossy()))?;
        set.add(rule).with_context(|| format!("--block-glob {}", glob.to_string_lossy()))?;
    }
    Ok(Some(set))
}

impl Blocking {
    /// Number and publish the refusals that arrived since the last call;
    /// an error if the blocker stopped on its own.
    pub fn publish_refusals(&self, sensor: &mut Sensor, hub: &Hub) -> anyhow::Result<()> {
        for blocked in self.refusals.try_iter() {
            hub.publish(sensor.on_blocked_exec(blocked));
        }
        if !self.blocker.is_running() {
            anyhow::bail!("the exec blocker stopped; execs are no longer checked (fanotify fails open)");
        }
        self.report_unreadable();
        Ok(())
    }

    /// Say, at most every few seconds, that execs were denied because their
    /// events could not be read (the decider itself never logs).
    fn report_unreadable(&self) {
        let (count, errno) = self.blocker.unreadable();
        let (reported, last) = self.reported_unreadable.get();
        if count == reported || last.is_some_and(|t| t.elapsed() < REPORT_UNREADABLE_EVERY) {
            return;
        }
        let why = nix::errno::Errno::from_raw(errno);
        tracing::warn!(
            "exec blocker: {} exec events could not be read ({why}); the kernel denied those execs (fail closed) \
             and the blocker goes on",
            count - reported
        );
        self.reported_unreadable.set((count, Some(Instant::now())));
    }
}

/// Start enforcing `rules` (and whatever they become).
pub fn start(rules: &ExecRules) -> anyhow::Result<Blocking> {
    let (tx, refusals) = channel();
    let blocker = Blocker::start(rules.shared(), move |blocked| {
        // The receiver is gone only after the blocker is stopped.
        let _ = tx.send(blocked);
    })?;
    let coverage = blocker.coverage();
    if !coverage.refused.is_empty() {
        let skipped: Vec<String> =
            coverage.refused.values().map(|(fs_type, at, _)| format!("{fs_type} at {}", at.display())).collect();
        eprintln!("rsysmon: blocking: not watching {} (exec permission marks refused)", skipped.join(", "));
    }
    rules.attach_cache(blocker.allow_cache());
    Ok(Blocking { blocker, refusals, reported_unreadable: Cell::new((0, None)) })
}
