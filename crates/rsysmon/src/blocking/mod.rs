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
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rsysmon_blocker::{BlockedExec, Blocker, BlockerStats, ExecRule, Protected, RuleSet, StatsReader};

use crate::blocking::exec_rules::ExecRules;
use crate::hub::Hub;
use crate::pipeline::config::FailMode;
use crate::pipeline::priority;
use crate::protocol::BlockerHealth;
use crate::sensor::Sensor;

/// A running blocker and the refusals it reports; when its decider
/// fails, what `[blocking] on_failure` says happens next.
pub struct Blocking {
    /// `None` while no decider runs (restarting, or failed open).
    blocker: Option<Blocker>,
    pub refusals: Receiver<BlockedExec>,
    refused: Sender<BlockedExec>,
    rules: Arc<ExecRules>,
    on_failure: FailMode,
    nice: i32,
    health: Arc<Mutex<BlockerHealth>>,
    /// When to try starting a decider again, and the wait after that.
    retry: Option<(Instant, Duration)>,
    /// Every decider's counters, the running one's and its predecessors'.
    stats: StatsReader,
    /// Unreadable exec events already reported, and when last.
    reported_unreadable: Cell<(u64, Option<Instant>)>,
}

/// How often a run of unreadable exec events is logged at most.
const REPORT_UNREADABLE_EVERY: Duration = Duration::from_secs(10);

/// Waits between attempts to start a new decider after a failure.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(30);

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
    /// Start enforcing `rules` (and whatever they become), with decider
    /// threads at `nice`.
    pub fn start(rules: &Arc<ExecRules>, on_failure: FailMode, nice: i32) -> anyhow::Result<Blocking> {
        let (refused, refusals) = channel();
        let blocker = start_blocker(rules, &refused, nice, None)?;
        let stats = blocker.stats_reader();
        let coverage = blocker.coverage();
        if !coverage.refused.is_empty() {
            let skipped: Vec<String> =
                coverage.refused.values().map(|(fs_type, at, _)| format!("{fs_type} at {}", at.display())).collect();
            eprintln!("rsysmon: blocking: not watching {} (exec permission marks refused)", skipped.join(", "));
        }
        let health =
            BlockerHealth { on_failure: on_failure.name().into(), state: RUNNING.into(), ..Default::default() };
        Ok(Blocking {
            blocker: Some(blocker),
            refusals,
            refused,
            rules: Arc::clone(rules),
            on_failure,
            nice,
            health: Arc::new(Mutex::new(health)),
            retry: None,
            stats,
            reported_unreadable: Cell::new((0, None)),
        })
    }

    /// The running blocker, if a decider runs now.
    pub fn blocker(&self) -> Option<&Blocker> {
        self.blocker.as_ref()
    }

    /// The counters of every decider so far, for another thread.
    pub fn stats_reader(&self) -> &StatsReader {
        &self.stats
    }

    /// How the blocker is doing, as `status` shows it.
    pub fn health(&self) -> &Arc<Mutex<BlockerHealth>> {
        &self.health
    }

    /// Number and publish the refusals that arrived since the last call;
    /// notice a failed decider and act on it as configured.
    pub fn publish_refusals(&mut self, sensor: &mut Sensor, hub: &Hub) -> anyhow::Result<()> {
        for blocked in self.refusals.try_iter() {
            hub.publish(sensor.on_blocked_exec(blocked));
        }
        if let Some(blocker) = self.blocker.take_if(|b| !b.is_running()) {
            let why = match blocker.stop() {
                Err(e) => e.to_string(),
                Ok(()) => "the exec decider stopped".into(),
            };
            self.failed(why);
        }
        if let Some((at, wait)) = self.retry {
            if Instant::now() >= at {
                self.restart(wait);
            }
        }
        if self.blocker.is_some() {
            self.report_unreadable();
        }
        Ok(())
    }

    /// The decider is gone: say once what fails, and how.
    fn failed(&mut self, why: String) {
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        health.decider_failures += 1;
        health.last_failure = Some(why.clone());
        match self.on_failure {
            FailMode::Closed => {
                tracing::error!(
                    "exec blocker failed: {why}. Failing closed ([blocking] on_failure = \"closed\"): until a new \
                     decider runs, the kernel still stops blocked files (EPERM where BPF LSM enforces, else \
                     SIGKILL when the file is mapped); starting a new decider"
                );
                health.state = RESTARTING.into();
                self.retry = Some((Instant::now(), FIRST_RETRY));
            }
            FailMode::Open => {
                tracing::error!(
                    "exec blocker failed: {why}. Failing open ([blocking] on_failure = \"open\"): nothing is blocked \
                     until the daemon is restarted; events are still reported and rules still saved"
                );
                health.state = FAILED_OPEN.into();
                drop(health);
                self.rules.stop_enforcing();
            }
        }
    }

    /// Try to start a new decider; on failure wait longer each time.
    fn restart(&mut self, wait: Duration) {
        match start_blocker(&self.rules, &self.refused, self.nice, Some(&self.stats)) {
            Ok(blocker) => {
                self.blocker = Some(blocker);
                self.retry = None;
                let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
                health.restarts += 1;
                health.state = RUNNING.into();
                tracing::warn!(
                    "exec blocker running again (new decider {} after {} failures)",
                    health.restarts,
                    health.decider_failures
                );
            }
            Err(e) => {
                tracing::error!("cannot start a new exec decider: {e:#}; next try in {} s", wait.as_secs());
                self.retry = Some((Instant::now() + wait, (wait * 2).min(LAST_RETRY)));
            }
        }
    }

    /// Stop the blocker: answer every exec still waiting. Returns the
    /// counters of every decider.
    pub fn stop(self) -> (Option<BlockerStats>, anyhow::Result<()>) {
        let stopped = self.blocker.map_or(Ok(()), |b| b.stop().map_err(Into::into));
        (Some(self.stats.snapshot()), stopped)
    }

    /// Say, at most every few seconds, that execs were denied because their
    /// events could not be read (the decider itself never logs).
    fn report_unreadable(&self) {
        let Some(blocker) = &self.blocker else { return };
        let (count, errno) = blocker.unreadable();
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

/// `status`'s blocker states.
const RUNNING: &str = "running";
const RESTARTING: &str = "restarting";
const FAILED_OPEN: &str = "failed open";

/// Start a decider for `rules`, sending refusals to `refused`, counting on
/// from `earlier` if given.
fn start_blocker(
    rules: &ExecRules,
    refused: &Sender<BlockedExec>,
    nice: i32,
    earlier: Option<&StatsReader>,
) -> anyhow::Result<Blocker> {
    let refused = refused.clone();
    // The receiver is gone only after the blocker is stopped.
    let on_block = move |blocked| {
        let _ = refused.send(blocked);
    };
    let blocker = match earlier {
        Some(stats) => Blocker::start_after(rules.shared(), stats, on_block)?,
        None => Blocker::start(rules.shared(), on_block)?,
    };
    if let Err(e) = priority::set_nice(blocker.decider_tid(), nice) {
        eprintln!("rsysmon: cannot set the exec decider to nice {nice}: {e}");
    }
    rules.attach_cache(blocker.allow_cache());
    Ok(blocker)
}
