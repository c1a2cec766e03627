//! The blocking rules of a running monitor, and every place they live.
//!
//! A rule set is enforced in two places that must agree: the fanotify
//! blocker (execve by path and identity) and the kernel's `blocked_files`
//! map (the same files reached without execve: `ld.so FILE`, dlopen, mmap).
//! The daemon also keeps it in its rule file. Every change goes through
//! here: it is validated, written to the file (atomically, before anything
//! else changes: a failed write changes nothing), published to the blocker,
//! the blocker's cache of allowed files is flushed, then the change is
//! mirrored into the kernel map.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Context;
use rsysmon_blocker::{shared, store, AllowCache, ExecRule, Protected, RuleSet, SharedRules};
use rsysmon_fs::FileId;
use rsysmon_probe::BlockedFiles;

/// The rules in force, and where they are kept.
pub struct ExecRules {
    shared: SharedRules,
    /// Where the rules persist; `None` for `rsysmon run --block`.
    file: Option<PathBuf>,
    kernel: BlockedFiles,
    protected: Protected,
    /// One writer at a time: read, change, save, publish.
    writer: Mutex<()>,
    /// The blocker's kernel cache of allowed files, flushed on every change.
    cache: OnceLock<AllowCache>,
}

impl ExecRules {
    /// Enforce `rules` from now on, mirroring their files into `kernel`.
    pub fn new(rules: RuleSet, file: Option<PathBuf>, kernel: BlockedFiles) -> anyhow::Result<ExecRules> {
        let protected = Protected::this_process().context("cannot find rsysmon's own executable to protect it")?;
        for identity in rules.file_identities() {
            kernel.block(identity)?;
        }
        Ok(ExecRules { shared: shared(rules), file, kernel, protected, writer: Mutex::new(()), cache: OnceLock::new() })
    }

    /// Flush `cache` whenever the rules change (the blocker's, once started).
    pub fn attach_cache(&self, cache: AllowCache) {
        let _ = self.cache.set(cache);
    }

    /// The set the blocker reads.
    pub fn shared(&self) -> SharedRules {
        Arc::clone(&self.shared)
    }

    /// Rules as `rsysmon block list` shows them, in the order added.
    pub fn list(&self) -> Vec<String> {
        self.shared.load().list().iter().map(ToString::to_string).collect()
    }

    /// Add a rule: a file path, a directory ending in `/`, `sha256:HEX`,
    /// or (with `glob`) a pattern. Returns the rule's text.
    pub fn add(&self, text: &str, glob: bool) -> anyhow::Result<String> {
        let rule = if glob {
            ExecRule::glob(OsStr::new(text), &self.protected)?
        } else if let Some(hex) = text.strip_prefix(rsysmon_blocker::SHA256_PREFIX) {
            ExecRule::sha256(hex, &self.protected)?
        } else {
            ExecRule::path(OsStr::new(text), &self.protected)?
        };
        let shown = rule.to_string();
        self.change(|set| Ok(set.add(rule)?))?;
        Ok(shown)
    }

    /// Remove the rule with this text. Returns the text removed.
    pub fn remove(&self, text: &str) -> anyhow::Result<String> {
        let mut removed = String::new();
        self.change(|set| {
            removed = set.remove(OsStr::new(text))?.to_string();
            Ok(())
        })?;
        Ok(removed)
    }

    fn change(&self, edit: impl FnOnce(&mut RuleSet) -> anyhow::Result<()>) -> anyhow::Result<()> {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.shared.load_full();
        let mut new = (*old).clone();
        edit(&mut new)?;
        if let Some(file) = &self.file {
            store::save(file, &new)?;
        }
        let before: HashSet<FileId> = old.file_identities().collect();
        let after: HashSet<FileId> = new.file_identities().collect();
        self.shared.store(Arc::new(new));
        if let Some(cache) = self.cache.get() {
            cache.rules_changed();
        }
        for identity in after.difference(&before) {
            self.kernel.block(*identity)?;
        }
        for identity in before.difference(&after) {
            self.kernel.unblock(*identity)?;
        }
        Ok(())
    }
}
