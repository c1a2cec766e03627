//! The kernel's list of blocked directory trees: no process may run code
//! from any file below them (see `bpf/blocked_trees.bpf.h`).

use libbpf_rs::{MapCore, MapFlags, MapHandle, MapMut};

use crate::blocked_files::key;
use crate::error::ProbeError;
use crate::FileId;

/// How a blocked tree came to be, and so what it refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TreeKind {
    /// A directory rule: every image below it, however it is mapped.
    Dir,
    /// The literal directory prefix of a glob rule: images below it reached
    /// without execve (`ld.so FILE`, dlopen, mmap); execve itself is judged
    /// exactly, by the pattern, in user space.
    GlobPrefix,
}

impl TreeKind {
    /// The value the probe reads (`enum blocked_tree_kind`).
    fn value(self) -> u8 {
        match self {
            TreeKind::Dir => 1,
            TreeKind::GlobPrefix => 2,
        }
    }
}

/// A handle on the `blocked_trees` map and its entry count. It owns its
/// file descriptors, so it can move to the thread that edits rules.
///
/// An image-load whose file has a blocked directory among its ancestors
/// (walked by identity, across mounts) gets its process SIGKILL before it
/// runs an instruction, as for [`crate::BlockedFiles`]; so does one whose
/// ancestors cannot all be walked while any tree is blocked.
#[derive(Debug)]
pub struct BlockedTrees {
    map: MapHandle,
    count: MapHandle,
}

impl BlockedTrees {
    pub(crate) fn of(map: &MapMut<'_>, count: &MapMut<'_>) -> Result<Self, ProbeError> {
        let map = MapHandle::try_from(map).map_err(|e| ProbeError::bpf("open the blocked-trees map", e))?;
        let count = MapHandle::try_from(count).map_err(|e| ProbeError::bpf("open the blocked-trees count", e))?;
        Ok(Self { map, count })
    }

    /// How many directories the kernel can hold.
    pub fn capacity(&self) -> usize {
        self.map.max_entries() as usize
    }

    /// Block everything below the directory `dir`, or change its kind.
    /// Call [`BlockedTrees::set_count`] after: the probes walk nothing
    /// while the count is 0.
    pub fn block(&self, dir: FileId, kind: TreeKind) -> Result<(), ProbeError> {
        self.map
            .update(&key(dir), &[kind.value()], MapFlags::ANY)
            .map_err(|e| ProbeError::bpf(format!("block the tree of {dir}"), e))
    }

    /// Undo [`BlockedTrees::block`]; not an error if it was not blocked.
    pub fn unblock(&self, dir: FileId) -> Result<(), ProbeError> {
        match self.map.delete(&key(dir)) {
            Err(e) if e.kind() == libbpf_rs::ErrorKind::NotFound => Ok(()),
            other => other.map_err(|e| ProbeError::bpf(format!("unblock the tree of {dir}"), e)),
        }
    }

    /// Tell the probes how many trees are blocked. With 0 they skip the
    /// walk entirely, and a file too deep to walk is refused only while it
    /// is not 0.
    pub fn set_count(&self, count: usize) -> Result<(), ProbeError> {
        let value = u32::try_from(count).unwrap_or(u32::MAX);
        self.count
            .update(&0u32.to_ne_bytes(), &value.to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| ProbeError::bpf("count the blocked trees", e))
    }
}

impl BlockedTrees {
    /// Remove every directory but `keep`: what an earlier run left in a
    /// pinned map. Call [`BlockedTrees::set_count`] after.
    pub fn retain_only(&self, keep: &[FileId]) -> Result<usize, ProbeError> {
        crate::blocked_files::retain_only(&self.map, keep, "blocked trees")
    }
}
