//! The rules as the kernel enforces them: file identities in
//! `blocked_files`, directory identities in `blocked_trees` (see
//! docs/blocking.md). Each rule maps to at most one entry, several rules
//! may share one (two hard links, a directory rule and a glob below it),
//! so entries are counted. Adding or removing a rule costs one map update.

use std::collections::HashMap;

use rsysmon_blocker::ExecRule;
use rsysmon_fs::FileId;
use rsysmon_probe::{BlockedFiles, BlockedTrees, TreeKind};

/// What one rule put into the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    File(FileId),
    Tree(FileId, TreeKind),
}

/// Why a rule could not be enforced in the kernel.
#[derive(Debug, thiserror::Error)]
pub enum KernelListError {
    #[error("the kernel's list of blocked {what} is full ({capacity} entries); remove a rule first")]
    Full { what: &'static str, capacity: usize },
    #[error(transparent)]
    Probe(#[from] rsysmon_probe::ProbeError),
}

/// The kernel's lists, and which rule holds what in them.
pub struct KernelLists {
    files: BlockedFiles,
    trees: BlockedTrees,
    /// Rule text → the entry it holds.
    held: HashMap<String, Entry>,
    file_refs: HashMap<FileId, usize>,
    /// Directory → (directory rules, glob prefixes) holding it.
    tree_refs: HashMap<FileId, (usize, usize)>,
}

impl KernelLists {
    pub fn new(files: BlockedFiles, trees: BlockedTrees) -> Self {
        Self { files, trees, held: HashMap::new(), file_refs: HashMap::new(), tree_refs: HashMap::new() }
    }

    /// Put `rule` into the kernel. On an error nothing changed. A rule
    /// whose directory does not exist (yet) holds nothing: the blocker
    /// still refuses its execve by path.
    pub fn enforce(&mut self, rule: &ExecRule) -> Result<(), KernelListError> {
        let Some(entry) = entry_of(rule) else { return Ok(()) };
        match entry {
            Entry::File(id) => {
                if !self.file_refs.contains_key(&id) {
                    if self.file_refs.len() >= self.files.capacity() {
                        return Err(KernelListError::Full { what: "files", capacity: self.files.capacity() });
                    }
                    self.files.block(id)?;
                }
                *self.file_refs.entry(id).or_default() += 1;
            }
            Entry::Tree(id, kind) => {
                let (dirs, globs) = self.tree_refs.get(&id).copied().unwrap_or_default();
                if dirs + globs == 0 && self.tree_refs.len() >= self.trees.capacity() {
                    return Err(KernelListError::Full { what: "directories", capacity: self.trees.capacity() });
                }
                let (dirs, globs) = match kind {
                    TreeKind::Dir => (dirs + 1, globs),
                    TreeKind::GlobPrefix => (dirs, globs + 1),
                };
                self.trees.block(id, tree_kind(dirs))?;
                self.tree_refs.insert(id, (dirs, globs));
                self.trees.set_count(self.tree_refs.len())?;
            }
        }
        self.held.insert(rule.to_string(), entry);
        Ok(())
    }

    /// Take `rule` out of the kernel (what [`KernelLists::enforce`] put in).
    pub fn release(&mut self, rule: &ExecRule) -> Result<(), KernelListError> {
        let Some(entry) = self.held.remove(&rule.to_string()) else { return Ok(()) };
        match entry {
            Entry::File(id) => {
                let refs = self.file_refs.entry(id).or_default();
                *refs = refs.saturating_sub(1);
                if *refs == 0 {
                    self.file_refs.remove(&id);
                    self.files.unblock(id)?;
                }
            }
            Entry::Tree(id, kind) => {
                let (dirs, globs) = self.tree_refs.get(&id).copied().unwrap_or_default();
                let refs = match kind {
                    TreeKind::Dir => (dirs.saturating_sub(1), globs),
                    TreeKind::GlobPrefix => (dirs, globs.saturating_sub(1)),
                };
                self.tree_refs.insert(id, refs);
                self.release_tree(id)?;
            }
        }
        Ok(())
    }

    /// Remove every entry no rule holds: those of an earlier run's rules,
    /// when the lists were adopted from pins. Returns how many went.
    pub fn reconcile(&mut self) -> Result<usize, KernelListError> {
        let files: Vec<FileId> = self.file_refs.keys().copied().collect();
        let trees: Vec<FileId> = self.tree_refs.keys().copied().collect();
        let removed = self.files.retain_only(&files)? + self.trees.retain_only(&trees)?;
        self.trees.set_count(self.tree_refs.len())?;
        Ok(removed)
    }

    /// After the counts of `id` went down: unblock or weaken it.
    fn release_tree(&mut self, id: FileId) -> Result<(), KernelListError> {
        let (dirs, globs) = self.tree_refs.get(&id).copied().unwrap_or_default();
        if dirs + globs == 0 {
            self.tree_refs.remove(&id);
            self.trees.unblock(id)?;
            self.trees.set_count(self.tree_refs.len())?;
        } else {
            self.trees.block(id, tree_kind(dirs))?;
        }
        Ok(())
    }
}

/// A directory held by at least one directory rule blocks everything.
fn tree_kind(dirs: usize) -> TreeKind {
    if dirs > 0 {
        TreeKind::Dir
    } else {
        TreeKind::GlobPrefix
    }
}

/// The entry `rule` holds, resolved now: a file rule's recorded identity,
/// or the identity of the directory of [`ExecRule::tree`] if it exists.
fn entry_of(rule: &ExecRule) -> Option<Entry> {
    match rule {
        ExecRule::File { identity, .. } => identity.map(Entry::File),
        // Judged by the blocker at execve only: the kernel sees no content.
        ExecRule::Sha256 { .. } => None,
        ExecRule::Dir { .. } | ExecRule::Glob { .. } => {
            let dir = rule.tree()?;
            let meta = std::fs::metadata(&dir).ok().filter(|m| m.is_dir())?;
            let id = FileId::of(&meta);
            let kind = if matches!(rule, ExecRule::Dir { .. }) { TreeKind::Dir } else { TreeKind::GlobPrefix };
            Some(Entry::Tree(id, kind))
        }
    }
}
