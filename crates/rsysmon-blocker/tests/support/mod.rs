//! What the blocker's root tests share: a running [`Blocker`] whose refusals
//! can be waited for, temporary copies of system binaries to block (never a
//! system binary itself), and children that die with the test.
//!
//! Every blocker sees every exec on the machine, so tests look for the
//! refusals of the paths and pids they made, never "the next one".
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use rsysmon_testkit::{die_with_test, root_tests_enabled};

use rsysmon_blocker::{shared, BlockedExec, Blocker, ExecRule, Protected, RuleSet, SharedRules};

#[macro_export]
macro_rules! require_root {
    () => {
        if !support::root_tests_enabled() {
            return;
        }
    };
}

/// A running blocker and the refusals it reported. Dropping it stops the
/// blocker, answering everything queued.
pub struct Running {
    pub blocker: Blocker,
    pub rules: SharedRules,
    refusals: Receiver<BlockedExec>,
    seen: Vec<BlockedExec>,
}

impl Running {
    pub fn start(rules: RuleSet) -> Running {
        let rules = shared(rules);
        let (tx, refusals) = channel();
        // An unbounded channel never blocks the decider.
        let blocker = Blocker::start(Arc::clone(&rules), move |b| {
            let _ = tx.send(b);
        })
        .expect("start the blocker");
        Running { blocker, rules, refusals, seen: Vec::new() }
    }

    /// Replace the rules while running.
    pub fn set_rules(&self, rules: RuleSet) {
        self.rules.store(Arc::new(rules));
        self.blocker.allow_cache().rules_changed();
    }

    /// The refusal of `path`, waiting up to 20 s for it.
    pub fn refusal_of(&mut self, path: &Path) -> BlockedExec {
        let path = real(path);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(found) = self.seen.iter().find(|b| b.path == path) {
                return found.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.refusals.recv_timeout(left) {
                Ok(b) => self.seen.push(b),
                Err(_) => panic!("no refusal of {path} reported; seen: {:#?}", self.seen),
            }
        }
    }

    /// Every refusal reported so far.
    pub fn refusals(&mut self) -> Vec<BlockedExec> {
        self.seen.extend(self.refusals.try_iter());
        self.seen.clone()
    }
}

/// A rule from text, protecting nothing (the tests block only their own
/// copies).
pub fn rule(text: impl AsRef<OsStr>) -> ExecRule {
    ExecRule::parse(text.as_ref(), &Protected::none()).expect("valid rule")
}

pub fn rules(rules: impl IntoIterator<Item = ExecRule>) -> RuleSet {
    RuleSet::from_rules(rules).expect("distinct rules")
}

/// A copy of the system binary `name` (e.g. "true") at `dir/as_name`.
pub fn copy_of(system: &str, dir: &Path, as_name: &str) -> PathBuf {
    let to = dir.join(as_name);
    fs::copy(real(Path::new(system)), &to).expect("copy a system binary");
    to
}

/// Run `program` with `args` to completion; the spawn error (the exec's,
/// for a refused exec) or its output.
pub fn run(program: impl AsRef<OsStr>, args: &[&str], cwd: Option<&Path>) -> std::io::Result<Output> {
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(cwd) = cwd {
        cmd.current_dir(cwd);
    }
    die_with_test(&mut cmd).output()
}

/// Assert that executing `program` fails with EPERM in the caller.
#[track_caller]
pub fn assert_refused(program: impl AsRef<OsStr>, cwd: Option<&Path>) {
    let program = program.as_ref();
    match run(program, &[], cwd) {
        Err(e) => {
            assert_eq!(e.raw_os_error(), Some(libc::EPERM), "exec of {program:?} failed, but not with EPERM: {e}")
        }
        Ok(out) => panic!("exec of {program:?} was allowed ({})", out.status),
    }
}

/// Assert that `program` runs and exits with success.
#[track_caller]
pub fn assert_runs(program: impl AsRef<OsStr>, cwd: Option<&Path>) {
    let program = program.as_ref();
    let out = run(program, &[], cwd).unwrap_or_else(|e| panic!("exec of {program:?} failed: {e}"));
    assert!(out.status.success(), "{program:?} exited with {}", out.status);
}

/// Real path as the kernel reports it.
pub fn real(path: &Path) -> String {
    fs::canonicalize(path).unwrap().to_string_lossy().into_owned()
}

/// A test mount, unmounted when dropped.
pub struct MountGuard(PathBuf);

impl MountGuard {
    /// `from` bind-mounted onto `onto`.
    pub fn bind(from: &Path, onto: &Path) -> MountGuard {
        mount(&[OsStr::new("--bind"), from.as_os_str(), onto.as_os_str()], onto)
    }

    /// A fresh small tmpfs at `at`.
    pub fn tmpfs(at: &Path) -> MountGuard {
        mount(
            &[
                OsStr::new("-t"),
                OsStr::new("tmpfs"),
                OsStr::new("-o"),
                OsStr::new("size=16m"),
                OsStr::new("rsysmon-test"),
                at.as_os_str(),
            ],
            at,
        )
    }
}

fn mount(args: &[&OsStr], at: &Path) -> MountGuard {
    let status = Command::new("mount").args(args).status().expect("run mount");
    assert!(status.success(), "mount {args:?}");
    MountGuard(at.to_path_buf())
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("--lazy").arg(&self.0).status();
    }
}
