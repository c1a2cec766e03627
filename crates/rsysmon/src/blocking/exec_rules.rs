//! The blocking rules of a running monitor, and every place they live.
//!
//! A rule set is enforced in two places that must agree: the fanotify
//! blocker (execve by path and identity) and the kernel's lists
//! (`kernel_lists`: the same files and trees reached without execve:
//! `ld.so FILE`, dlopen, mmap). The daemon also keeps it in its rule file.
//! Every change goes through here: it is validated, put into the kernel,
//! written to the file, and only then published to the blocker, whose cache
//! of allowed files is flushed. A step that fails undoes the ones before,
//! so a refused rule is nowhere: never listed but not enforced.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rsysmon_blocker::{shared, AllowCache, ExecRule, Protected, RuleSet, RuleStore, SharedRules};

use crate::blocking::kernel_lists::KernelLists;

/// The rules in force, and where they are kept.
pub struct ExecRules {
    shared: SharedRules,
    /// What a change updates besides the shared set; its lock makes one
    /// writer at a time: read, change, enforce, save, publish.
    writer: Mutex<Writer>,
    protected: Protected,
    /// The running blocker's kernel cache of allowed files, flushed on
    /// every change.
    cache: Mutex<Option<AllowCache>>,
}

struct Writer {
    /// `None` once blocking failed open ([`ExecRules::stop_enforcing`]).
    kernel: Option<KernelLists>,
    /// Where the rules persist; `None` for `rsysmon run --block`.
    file: Option<PathBuf>,
    /// The rule file's log, opened at the first change.
    store: Option<RuleStore>,
}

impl Writer {
    /// The rule store, if rules persist.
    fn store(&mut self) -> anyhow::Result<Option<&mut RuleStore>> {
        if self.store.is_none() {
            if let Some(file) = &self.file {
                self.store = Some(RuleStore::open(file)?);
            }
        }
        Ok(self.store.as_mut())
    }
}

impl ExecRules {
    /// Enforce `rules` from now on, mirroring them into `kernel`. A rule
    /// the kernel cannot take is reported and still enforced at execve: a
    /// daemon never fails to start because of a rule it accepted before.
    pub fn new(rules: RuleSet, file: Option<PathBuf>, mut kernel: KernelLists) -> anyhow::Result<ExecRules> {
        let protected = Protected::this_process().context("cannot find rsysmon's own executable to protect it")?;
        for rule in rules.list() {
            if let Err(e) = kernel.enforce(rule) {
                eprintln!("rsysmon: rule {rule} is enforced at execve only: {e}");
            }
        }
        // Lists adopted from an earlier run (pinned) may hold entries of
        // rules removed since: only now, with every rule in, drop them.
        if let Err(e) = kernel.reconcile() {
            eprintln!("rsysmon: cannot clear the kernel's lists of removed rules: {e}");
        }
        let writer = Mutex::new(Writer { kernel: Some(kernel), file, store: None });
        Ok(ExecRules { shared: shared(rules), writer, protected, cache: Mutex::new(None) })
    }

    /// Flush `cache` whenever the rules change: the running blocker's, and
    /// a restarted blocker's in its place.
    pub fn attach_cache(&self, cache: AllowCache) {
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = Some(cache);
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
    /// or (with `glob`) a pattern. Returns the rule's text. A rule that
    /// cannot be enforced everywhere (the kernel's list is full, the rule
    /// file cannot be written) is refused and changes nothing.
    pub fn add(&self, text: &str, glob: bool) -> anyhow::Result<String> {
        let rule = if glob {
            ExecRule::glob(OsStr::new(text), &self.protected)?
        } else if let Some(hex) = text.strip_prefix(rsysmon_blocker::SHA256_PREFIX) {
            ExecRule::sha256(hex, &self.protected)?
        } else {
            ExecRule::path(OsStr::new(text), &self.protected)?
        };
        let shown = rule.to_string();
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        // A copy shares its indexes with the set in force: O(1).
        let mut new = (*self.shared.load_full()).clone();
        new.add(rule.clone())?;
        if let Some(kernel) = writer.kernel.as_mut() {
            kernel.enforce(&rule)?;
        }
        let saved = writer.store().and_then(|store| Ok(store.map(|s| s.added(&rule, &new)).transpose()?));
        if let Err(e) = saved {
            if let Some(kernel) = writer.kernel.as_mut() {
                let _ = kernel.release(&rule);
            }
            return Err(e);
        }
        self.publish(new);
        Ok(shown)
    }

    /// Remove the rule with this text. Returns the text removed.
    pub fn remove(&self, text: &str) -> anyhow::Result<String> {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut new = (*self.shared.load_full()).clone();
        let removed = new.remove(OsStr::new(text))?;
        let shown = removed.to_string();
        if let Some(store) = writer.store()? {
            store.removed(&shown, &new)?;
        }
        self.publish(new);
        if let Some(kernel) = writer.kernel.as_mut() {
            kernel.release(&removed)?;
        }
        Ok(shown)
    }

    /// Take every rule out of the kernel's lists and keep them out: blocking
    /// failed open. Rules are still listed, changed and saved; the next
    /// daemon enforces them again.
    pub fn stop_enforcing(&self) {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut kernel) = writer.kernel.take() {
            for rule in self.shared.load().list() {
                if let Err(e) = kernel.release(rule) {
                    tracing::warn!("cannot take rule {rule} out of the kernel's lists: {e}");
                }
            }
        }
    }

    fn publish(&self, rules: RuleSet) {
        self.shared.store(Arc::new(rules));
        if let Some(cache) = &*self.cache.lock().unwrap_or_else(|e| e.into_inner()) {
            cache.rules_changed();
        }
    }
}
