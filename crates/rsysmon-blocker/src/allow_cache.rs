//! Remembering allowed executables in the kernel, so their next execs do
//! not wait for the decider.
//!
//! Once the decider allows an exec, it puts a fanotify ignore mark on that
//! file's inode: the kernel then lets later execs of the same file through
//! without an event and a round trip. Ignore marks are dropped by the kernel
//! when the file is modified (no FAN_MARK_IGNORED_SURV_MODIFY), and all of
//! them are flushed whenever the rules change, so a cached answer is always
//! the answer the current rules give the current content.
//!
//! A cached inode is allowed by whatever name it is run: a hard link to an
//! allowed file placed below a blocked directory runs, which is no more
//! than running the allowed file itself.

use std::os::fd::BorrowedFd;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::fanotify::ExecPermissions;
use crate::rule_set::{RuleSet, SharedRules};

/// Cached inodes before the cache is flushed wholesale: each mark pins an
/// inode in memory.
const MAX_CACHED: usize = 8192;

/// The cache of allowed files, shared by the decider and rule changes.
#[derive(Clone)]
pub struct AllowCache {
    group: Weak<ExecPermissions>,
    state: Arc<Mutex<usize>>,
    exempt: Arc<Vec<String>>,
}

impl AllowCache {
    pub(crate) fn new(group: &Arc<ExecPermissions>, exempt: Vec<String>) -> Self {
        Self { group: Arc::downgrade(group), state: Arc::new(Mutex::new(0)), exempt: Arc::new(exempt) }
    }

    fn lock(&self) -> MutexGuard<'_, usize> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remember that the file behind `fd` was allowed by `decided_with`,
    /// unless the rules changed since (then the next exec asks again).
    pub(crate) fn remember(&self, fd: BorrowedFd<'_>, decided_with: &Arc<RuleSet>, rules: &SharedRules) {
        let Some(group) = self.group.upgrade() else { return };
        let mut cached = self.lock();
        if !Arc::ptr_eq(decided_with, &rules.load()) {
            return;
        }
        if *cached >= MAX_CACHED {
            flush(&group, &self.exempt);
            *cached = 0;
        }
        if group.ignore_fd(fd).is_ok() {
            *cached += 1;
        }
    }

    /// The rules changed: forget every allowed file. Call it after the new
    /// rules are published.
    pub fn rules_changed(&self) {
        let Some(group) = self.group.upgrade() else { return };
        let mut cached = self.lock();
        flush(&group, &self.exempt);
        *cached = 0;
    }
}

/// Remove every inode mark, then put back the exemptions (the blocker's own
/// executable and loader), which are inode marks too.
fn flush(group: &ExecPermissions, exempt: &[String]) {
    if group.unmark_inodes().is_err() {
        return;
    }
    for path in exempt {
        let _ = group.ignore_file(Path::new(path));
    }
}
