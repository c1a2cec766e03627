//! The running blocker: answers every exec on the marked filesystems.
//!
//! Two threads. The *decider* waits for exec permission events and answers
//! each one: its own process's execs at once, others after one lookup in
//! the rule set. It never waits on anything that could itself wait on an
//! exec: no lock (the rule set is read through `arc-swap`), no filesystem
//! I/O (procfs and cached statx only), no channel that can fill. The
//! *coverage* thread marks filesystems as they are mounted.
//!
//! Every event read is answered, on every path: a failed lookup allows, a
//! panicking callback is caught. A failed read (EMFILE: no descriptor left
//! for the event's file) is counted and the decider goes on: the kernel
//! denies the exec it could not hand over, so a resource shortage fails
//! closed for that exec and never ends the blocking. However the decider ends (stop, error,
//! panic), it first removes every filesystem mark, so no new exec can wait
//! on the group, then answers what is queued until the queue stays empty,
//! and only then closes the group. The order matters: the kernel allows
//! waiting execs when the *last* reference to the group is closed, and a
//! child this process forked holds a reference until its execve completes;
//! closing first would leave such a child waiting for an answer nobody
//! gives. When the whole process dies, the kernel allows everything
//! (fanotify fails open): a dead blocker stops blocking, it never freezes
//! the machine.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Instant, SystemTime};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::fanotify::FanotifyEvent;

use crate::allow_cache::AllowCache;
use crate::coverage::{self, Coverage};
use crate::exec_hashes::ExecHashes;
use crate::fanotify::{is_exec_permission, process_name, ExecPermissions, ExecutedFile, ProcFds};
use crate::rule::{ExecRule, Protected};
use crate::rule_set::{RuleSet, SharedRules};
use crate::stats::{BlockerStats, Counters, StatsReader};

/// An exec that was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedExec {
    /// The process whose execve failed (thread group id).
    pub pid: u32,
    /// Its name, read while it waited for the answer.
    pub comm: String,
    /// Real path of the refused file.
    pub path: String,
    /// Text form of the rule that matched.
    pub rule: String,
    /// When the request was read.
    pub time: SystemTime,
}

/// Why the blocker could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum BlockerError {
    #[error(
        "cannot create a fanotify group ({0}): blocking needs root (CAP_SYS_ADMIN) and a kernel with \
         CONFIG_FANOTIFY_ACCESS_PERMISSIONS"
    )]
    Init(Errno),
    #[error("cannot read /proc/self/mountinfo to find the filesystems to watch: {0}")]
    Mountinfo(std::io::Error),
    #[error("cannot open /proc/self/fd, needed to name executed files: {0}")]
    ProcFds(std::io::Error),
    #[error("cannot find the blocker's own executable to exempt it: {0}")]
    OwnExecutable(std::io::Error),
    #[error("no filesystem accepted an exec permission mark ({0}); nothing could be blocked")]
    NothingMarked(String),
    #[error("cannot start the {0} thread: {1}")]
    Thread(&'static str, std::io::Error),
    #[error("the exec decision thread panicked; execs are no longer checked (fanotify fails open)")]
    Panicked,
}

/// The blocker while it runs. Stop it with [`Blocker::stop`], or drop it.
pub struct Blocker {
    /// Write ends of the stop pipes: closing one wakes its thread. Two, so
    /// the watcher is gone (and cannot mark again) before the decider
    /// unmarks everything and closes the group.
    stop_watcher: Option<OwnedFd>,
    stop_decider: Option<OwnedFd>,
    decider: Option<JoinHandle<Result<(), BlockerError>>>,
    watcher: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
    coverage: Arc<Mutex<Coverage>>,
    exempt: Vec<String>,
    cache: AllowCache,
    /// The decider thread's kernel thread id.
    decider_tid: i32,
}

impl Blocker {
    /// Mark every mounted filesystem and start answering execs with
    /// `rules`, exempting this process's executable and dynamic loader
    /// ([`Protected::this_process`]). `on_block` is called on the decider
    /// thread after each refusal has been answered; it must not block
    /// (send on an unbounded channel, push to a queue): every exec on the
    /// machine waits while the decider is busy.
    pub fn start(rules: SharedRules, on_block: impl Fn(BlockedExec) + Send + 'static) -> Result<Blocker, BlockerError> {
        let protected = Protected::this_process().map_err(BlockerError::OwnExecutable)?;
        Self::start_with(rules, &protected, on_block)
    }

    /// As [`Blocker::start`], exempting the files in `protected` instead:
    /// the kernel is told never to report their execs (an ignore mark on
    /// each), so they run without a round trip to this process. A rule that
    /// names one of them has no effect; [`crate::ExecRule`] refuses such
    /// rules when given the same `protected`.
    pub fn start_with(
        rules: SharedRules,
        protected: &Protected,
        on_block: impl Fn(BlockedExec) + Send + 'static,
    ) -> Result<Blocker, BlockerError> {
        Self::start_counting(rules, protected, on_block, Arc::default())
    }

    /// As [`Blocker::start`], adding to the counters of `earlier` (a
    /// blocker that stopped), so a blocker started in its place goes on
    /// with the same totals.
    pub fn start_after(
        rules: SharedRules,
        earlier: &StatsReader,
        on_block: impl Fn(BlockedExec) + Send + 'static,
    ) -> Result<Blocker, BlockerError> {
        let protected = Protected::this_process().map_err(BlockerError::OwnExecutable)?;
        Self::start_counting(rules, &protected, on_block, Arc::clone(&earlier.0))
    }

    fn start_counting(
        rules: SharedRules,
        protected: &Protected,
        on_block: impl Fn(BlockedExec) + Send + 'static,
        counters: Arc<Counters>,
    ) -> Result<Blocker, BlockerError> {
        let group = Arc::new(ExecPermissions::new().map_err(BlockerError::Init)?);
        let proc_fds = ProcFds::open().map_err(BlockerError::ProcFds)?;
        let mut mountinfo = File::open("/proc/self/mountinfo").map_err(BlockerError::Mountinfo)?;
        let mounts = coverage::read_mounts(&mut mountinfo).map_err(BlockerError::Mountinfo)?;
        let first = coverage::mark_all(&group, &mounts);
        if first.marked.is_empty() {
            let why = first.refused.values().next().map(|(_, _, e)| e.clone()).unwrap_or_else(|| "no mounts".into());
            return Err(BlockerError::NothingMarked(why));
        }
        let mut exempt = Vec::new();
        for path in protected.paths() {
            match group.ignore_file(std::path::Path::new(path)) {
                Ok(()) => exempt.push(path.to_string()),
                Err(e) => tracing::info!("execs of {path} are judged like any other: cannot exempt it ({e})"),
            }
        }
        let coverage = Arc::new(Mutex::new(first));
        let stop_pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| BlockerError::Thread("stop", e.into()));
        let (decider_stop, stop_decider) = stop_pipe()?;
        let (watcher_stop, stop_watcher) = stop_pipe()?;

        let cache = AllowCache::new(&group, exempt.clone(), &mounts);
        let mut blocker = Blocker {
            stop_watcher: Some(stop_watcher),
            stop_decider: Some(stop_decider),
            decider: None,
            watcher: None,
            counters: Arc::clone(&counters),
            coverage,
            exempt,
            cache: cache.clone(),
            decider_tid: 0,
        };
        // The watcher holds the group weakly, so the decider's exit alone
        // closes it (see the module documentation).
        let weak_group = Arc::downgrade(&group);
        let decider = Decider {
            group,
            proc_fds,
            rules,
            on_block,
            counters,
            cache,
            hashes: ExecHashes::default(),
            own_pid: std::process::id() as i32,
            fault: TestFault::from_env(),
        };
        let (tid_tx, tid_rx) = std::sync::mpsc::sync_channel(1);
        blocker.decider = Some(
            thread::Builder::new()
                .name("exec-decider".into())
                .spawn(move || {
                    // SAFETY: gettid has no preconditions and cannot fail.
                    let _ = tid_tx.send(unsafe { libc::gettid() });
                    decider.run(decider_stop)
                })
                .map_err(|e| BlockerError::Thread("exec-decider", e))?,
        );
        // Sent first thing by the thread, so this returns at once.
        blocker.decider_tid = tid_rx.recv().unwrap_or(0);
        let shared_coverage = Arc::clone(&blocker.coverage);
        let watcher_cache = blocker.cache.clone();
        blocker.watcher = Some(
            thread::Builder::new()
                .name("mount-watcher".into())
                .spawn(move || watch_mounts(weak_group, mountinfo, shared_coverage, watcher_cache, watcher_stop))
                .map_err(|e| BlockerError::Thread("mount-watcher", e))?,
        );
        Ok(blocker)
    }

    /// Counters and decision times so far.
    pub fn stats(&self) -> BlockerStats {
        self.counters.snapshot()
    }

    /// A handle on the same counters for another thread (the metrics).
    pub fn stats_reader(&self) -> StatsReader {
        StatsReader(Arc::clone(&self.counters))
    }

    /// Exec events the kernel could not hand over (and so denied), and the
    /// errno of the newest failure: cheap enough to ask after every poll.
    pub fn unreadable(&self) -> (u64, i32) {
        (self.counters.unreadable.load(Ordering::Relaxed), self.counters.last_read_errno.load(Ordering::Relaxed))
    }

    /// Which filesystems are watched now.
    pub fn coverage(&self) -> Coverage {
        self.coverage.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The kernel's cache of allowed files; whoever changes the rules calls
    /// [`AllowCache::rules_changed`] after publishing them.
    pub fn allow_cache(&self) -> AllowCache {
        self.cache.clone()
    }

    /// Executables whose execs the kernel lets through without asking.
    pub fn exempt(&self) -> &[String] {
        &self.exempt
    }

    /// The decider thread's kernel thread id (for `setpriority` and the
    /// like); 0 if it died before it said.
    pub fn decider_tid(&self) -> i32 {
        self.decider_tid
    }

    /// Whether the decider still runs (it stops only on [`Blocker::stop`]
    /// or an error, after which execs are no longer checked).
    pub fn is_running(&self) -> bool {
        self.decider.as_ref().is_some_and(|d| !d.is_finished())
    }

    /// Stop marking new filesystems, unmark all, answer everything queued,
    /// close the group and wait for both threads. Returns the decider's error if it had failed before.
    pub fn stop(mut self) -> Result<(), BlockerError> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Result<(), BlockerError> {
        drop(self.stop_watcher.take());
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
        drop(self.stop_decider.take());
        match self.decider.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(BlockerError::Panicked),
            None => Ok(()),
        }
    }
}

impl Drop for Blocker {
    fn drop(&mut self) {
        if let Err(e) = self.shut_down() {
            tracing::warn!("{e}");
        }
    }
}

/// What to answer, before any I/O: a pure function of the request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict<'r> {
    /// The blocker's own process: allowed without looking, so the daemon can
    /// never block itself waiting for its own answer.
    Own,
    Allow,
    Deny(&'r ExecRule),
    /// The file could not be named (its path is longer than PATH_MAX)
    /// while a directory or glob rule might cover it.
    Unresolved,
}

/// What an exec-blocked event names as the rule for [`Verdict::Unresolved`].
pub const UNRESOLVED_RULE: &str = "(path too long to check against directory and glob rules)";

pub(crate) fn judge<'r>(own_pid: i32, pid: i32, file: &ExecutedFile, rules: &'r RuleSet) -> Verdict<'r> {
    if pid == own_pid {
        return Verdict::Own;
    }
    match rules.matches(file.path.as_deref().unwrap_or(""), file.identity) {
        Some(rule) => Verdict::Deny(rule),
        None if file.path.is_none() && rules.has_trees() => Verdict::Unresolved,
        None => Verdict::Allow,
    }
}

struct Decider<F> {
    group: Arc<ExecPermissions>,
    proc_fds: ProcFds,
    rules: SharedRules,
    on_block: F,
    counters: Arc<Counters>,
    cache: AllowCache,
    hashes: ExecHashes,
    own_pid: i32,
    fault: TestFault,
}

impl<F: Fn(BlockedExec)> Decider<F> {
    fn run(self, stop: OwnedFd) -> Result<(), BlockerError> {
        raise_priority();
        // Runs however the loop ends, a panic included.
        let _closing = Closing { group: &self.group, decider: &self };
        loop {
            let mut fds =
                [PollFd::new(self.group.as_fd(), PollFlags::POLLIN), PollFd::new(stop.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => {
                    // ENOMEM and the like: nothing was read, so nothing
                    // waits on us that the kernel has not queued; try again
                    // shortly rather than leave every exec unanswered.
                    self.read_failed(e);
                    thread::sleep(RETRY_AFTER_ERROR);
                    continue;
                }
            }
            let stopping = fds[1].revents().is_some_and(|r| !r.is_empty());
            if let Err(e) = self.answer_waiting() {
                self.read_failed(e);
                thread::sleep(RETRY_AFTER_ERROR);
            }
            if stopping {
                return Ok(());
            }
        }
    }

    /// A read of the group failed. For EMFILE/ENFILE (no descriptor for an
    /// event's file) the kernel has already denied that exec; the decider
    /// counts it and goes on answering the rest. Counted, not logged here:
    /// the pipeline reports it.
    fn read_failed(&self, e: Errno) {
        self.counters.unreadable.fetch_add(1, Ordering::Relaxed);
        self.counters.last_read_errno.store(e as i32, Ordering::Relaxed);
    }

    /// Read and answer until the queue is empty.
    fn answer_waiting(&self) -> Result<(), Errno> {
        loop {
            let events = self.group.read()?;
            if events.is_empty() {
                return Ok(());
            }
            let read_at = Instant::now();
            for event in events {
                self.answer(event, read_at);
            }
        }
    }

    /// Answer one event; its fd is closed when `event` is dropped, after
    /// the answer.
    fn answer(&self, event: FanotifyEvent, read_at: Instant) {
        // A queue-overflow notice has no fd and nothing waits on it.
        let Some(fd) = event.fd() else { return };
        let time = SystemTime::now();
        let pid = event.pid();
        let file = if is_exec_permission(&event) && pid != self.own_pid {
            ExecutedFile::of(fd, &self.proc_fds)
        } else {
            ExecutedFile { path: None, identity: None, mount_id: None, links: 0 }
        };
        let rules = self.rules.load();
        let mut verdict = judge(self.own_pid, pid, &file, &rules);
        // Hash rules last: they need the file read, the others do not.
        if verdict == Verdict::Allow && rules.has_hash_rules() && is_exec_permission(&event) {
            if let Some(rule) = self.hashes.sha256(fd).and_then(|sha256| rules.matches_sha256(&sha256)) {
                verdict = Verdict::Deny(rule);
            }
        }
        let blocked = match verdict {
            Verdict::Deny(rule) => Some(rule.to_string()),
            Verdict::Unresolved => Some(UNRESOLVED_RULE.to_string()),
            _ => None,
        }
        .map(|rule| BlockedExec {
            pid: pid as u32,
            comm: process_name(pid),
            path: file.path.clone().unwrap_or_default(),
            rule,
            time,
        });
        let answered = self.group.respond(fd, blocked.is_none());
        self.counters.took(read_at.elapsed());
        self.fault.strike(file.path.as_deref());
        if verdict == Verdict::Allow && answered.is_ok() && file.path.is_some() {
            self.cache.remember(fd, &file, &rules, &self.rules);
        }

        let counter = match (&verdict, &answered, &file.path) {
            (_, Err(_), _) => &self.counters.failures,
            (Verdict::Own, ..) => &self.counters.own,
            (Verdict::Deny(_) | Verdict::Unresolved, ..) => &self.counters.denied,
            (Verdict::Allow, _, None) => &self.counters.failures,
            (Verdict::Allow, ..) => &self.counters.allowed,
        };
        // Counted, not logged: a log write can block (a full pipe), and
        // every exec on the machine would wait behind it.
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(blocked) = blocked {
            if catch_unwind(AssertUnwindSafe(|| (self.on_block)(blocked))).is_err() {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A decider failure on demand, for the tests of what the pipeline does
/// when the decider dies: with `RSYSMON_TEST_DECIDER_PANIC_ON=PATH` in the
/// environment at start, the decider panics, outside every catch, right
/// after answering the first exec of PATH (once per process: a restarted
/// decider does not fail again). Only root can set a daemon's environment,
/// and root can stop the daemon anyway.
struct TestFault {
    path: Option<String>,
}

static TEST_FAULT_STRUCK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl TestFault {
    fn from_env() -> TestFault {
        TestFault { path: std::env::var("RSYSMON_TEST_DECIDER_PANIC_ON").ok() }
    }

    fn strike(&self, path: Option<&str>) {
        if self.path.is_some() && self.path.as_deref() == path && !TEST_FAULT_STRUCK.swap(true, Ordering::Relaxed) {
            panic!("RSYSMON_TEST_DECIDER_PANIC_ON: the exec decider fails on purpose");
        }
    }
}

/// Every exec on the machine waits while this thread waits for a CPU, so
/// it runs ahead of ordinary work: nice -10 (best effort; it only ever
/// sleeps in poll or answers, so it cannot starve anyone).
fn raise_priority() {
    // SAFETY: gettid has no preconditions; setpriority on our own thread id
    // only changes this thread's nice value and reports failure by errno.
    let failed = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, DECIDER_NICE) } != 0;
    if failed {
        tracing::info!("cannot raise the exec decider's priority: {}", std::io::Error::last_os_error());
    }
}

const DECIDER_NICE: libc::c_int = -10;

/// Pause after a failed read or poll, so an error that does not consume
/// an event cannot make the decider spin.
const RETRY_AFTER_ERROR: std::time::Duration = std::time::Duration::from_millis(1);

/// The decider's way out: unmark every filesystem so no new exec waits on
/// the group, then answer whatever is queued until nothing has arrived for
/// a moment (an exec that passed the marks just before they went can still
/// be queued just after). Only then is the group closed.
struct Closing<'a, F: Fn(BlockedExec)> {
    group: &'a ExecPermissions,
    decider: &'a Decider<F>,
}

/// How long the queue must stay empty after unmarking before the group is
/// closed, in ms.
const QUIET_BEFORE_CLOSE_MS: u16 = 50;

impl<F: Fn(BlockedExec)> Drop for Closing<'_, F> {
    fn drop(&mut self) {
        if self.group.unmark_all().is_err() {
            self.decider.counters.failures.fetch_add(1, Ordering::Relaxed);
        }
        loop {
            if self.decider.answer_waiting().is_err() {
                return;
            }
            if !self.group.wait(QUIET_BEFORE_CLOSE_MS) {
                return;
            }
        }
    }
}

fn watch_mounts(
    group: Weak<ExecPermissions>,
    mut mountinfo: File,
    coverage: Arc<Mutex<Coverage>>,
    cache: AllowCache,
    stop: OwnedFd,
) {
    loop {
        let mut fds =
            [PollFd::new(mountinfo.as_fd(), PollFlags::POLLPRI), PollFd::new(stop.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                tracing::warn!(
                    "cannot watch /proc/self/mountinfo ({e}); filesystems mounted from now on are not covered"
                );
                return;
            }
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            return;
        }
        let changed = fds[0].revents().is_some_and(|r| r.intersects(PollFlags::POLLPRI | PollFlags::POLLERR));
        if changed {
            let Some(group) = group.upgrade() else { return };
            if let Some(mounts) = coverage::refresh(&group, &mut mountinfo, &coverage) {
                cache.mounts_changed(&mounts);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsysmon_fs::FileId;

    #[test]
    fn own_process_is_allowed_without_looking_and_others_by_the_rules() {
        let rules = RuleSet::from_rules([ExecRule::File {
            path: "/nonexistent/evil".into(),
            identity: Some(FileId { dev: 1, ino: 2 }),
        }])
        .unwrap();
        let evil = ExecutedFile {
            path: Some("/nonexistent/evil".into()),
            identity: Some(FileId { dev: 1, ino: 2 }),
            mount_id: None,
            links: 1,
        };
        let hardlink = ExecutedFile { path: None, identity: Some(FileId { dev: 1, ino: 2 }), mount_id: None, links: 1 };
        let other = ExecutedFile {
            path: Some("/nonexistent/ok".into()),
            identity: Some(FileId { dev: 1, ino: 3 }),
            mount_id: None,
            links: 1,
        };
        assert_eq!(judge(10, 10, &evil, &rules), Verdict::Own);
        assert_eq!(judge(10, 11, &evil, &rules), Verdict::Deny(&rules.list()[0]));
        assert_eq!(judge(10, 11, &hardlink, &rules), Verdict::Deny(&rules.list()[0]));
        assert_eq!(judge(10, 11, &other, &rules), Verdict::Allow);
        let nameless = ExecutedFile { path: None, identity: Some(FileId { dev: 1, ino: 3 }), mount_id: None, links: 1 };
        assert_eq!(judge(10, 11, &nameless, &rules), Verdict::Allow, "file rules alone decide by identity");
        let with_dir = RuleSet::from_rules([ExecRule::Dir { prefix: "/nonexistent/d/".into() }]).unwrap();
        assert_eq!(judge(10, 11, &nameless, &with_dir), Verdict::Unresolved);
        assert_eq!(judge(10, 11, &other, &with_dir), Verdict::Allow);
    }
}
