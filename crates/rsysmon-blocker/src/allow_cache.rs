//! Remembering allowed executables in the kernel, so their next execs do
//! not wait for the decider.
//!
//! Once the decider allows an exec, it may put a fanotify ignore mark on
//! that file's inode: the kernel then lets later execs of the same file
//! through without an event and a round trip. Ignore marks are dropped by
//! the kernel when the file is modified (no FAN_MARK_IGNORED_SURV_MODIFY),
//! and all of them are flushed whenever the rules or the mount table
//! change, so a cached answer is always the answer the current rules give
//! the current content under the current names.
//!
//! An ignore mark covers the inode under every name, but directory and
//! glob rules decide by name. So an answer is remembered only when every
//! name the file has ([`crate::file_names`]) gets it, and never for a file
//! with more than one hard link or reached through a mount the blocker's
//! namespace does not have: those are judged at every exec.

use std::os::fd::BorrowedFd;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use arc_swap::ArcSwap;
use rsysmon_fs::mountinfo::Mount;

use crate::fanotify::{ExecPermissions, ExecutedFile};
use crate::file_names::MountTable;
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
    mounts: Arc<ArcSwap<MountTable>>,
}

impl AllowCache {
    pub(crate) fn new(group: &Arc<ExecPermissions>, exempt: Vec<String>, mounts: &[Mount]) -> Self {
        Self {
            group: Arc::downgrade(group),
            state: Arc::new(Mutex::new(0)),
            exempt: Arc::new(exempt),
            mounts: Arc::new(ArcSwap::from_pointee(MountTable::new(mounts))),
        }
    }

    fn lock(&self) -> MutexGuard<'_, usize> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remember that `file`, behind `fd`, was allowed by `decided_with`,
    /// if every other name it has is allowed too, and unless the rules or
    /// the mounts changed since (then the next exec asks again).
    pub(crate) fn remember(
        &self,
        fd: BorrowedFd<'_>,
        file: &ExecutedFile,
        decided_with: &Arc<RuleSet>,
        rules: &SharedRules,
    ) {
        let Some(group) = self.group.upgrade() else { return };
        let mounts = self.mounts.load_full();
        if !allowed_by_every_name(file, decided_with, &mounts) {
            return;
        }
        let mut cached = self.lock();
        if !Arc::ptr_eq(decided_with, &rules.load()) || !Arc::ptr_eq(&mounts, &self.mounts.load()) {
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

    /// The mount table changed: files may have new names, so forget every
    /// allowed file and judge names by `mounts` from now on.
    pub(crate) fn mounts_changed(&self, mounts: &[Mount]) {
        self.mounts.store(Arc::new(MountTable::new(mounts)));
        self.rules_changed();
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

/// Whether every name of `file` is allowed by `rules`: then the answer
/// depends on the file alone, and may be remembered for its inode.
fn allowed_by_every_name(file: &ExecutedFile, rules: &RuleSet, mounts: &MountTable) -> bool {
    let (Some(path), Some(mount_id)) = (&file.path, file.mount_id) else { return false };
    if file.links != 1 {
        return false;
    }
    match mounts.names(path, mount_id) {
        Some(names) => names.iter().all(|name| rules.matches(name, file.identity).is_none()),
        None => false,
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
