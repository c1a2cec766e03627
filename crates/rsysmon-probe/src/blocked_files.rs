//! The kernel's list of blocked files: no process may run code from them.

use libbpf_rs::{MapCore, MapFlags, MapHandle, MapMut};

use crate::error::ProbeError;
use crate::records::blocked_file;
use crate::FileId;

/// A handle on the `blocked_files` map. It owns its own file descriptor,
/// so it can move to the thread that edits rules while the probes stay on
/// theirs; it works for as long as the probes are loaded.
///
/// A process that maps a blocked file executable (execve, the dynamic
/// loader run directly, dlopen, mmap or mprotect with PROT_EXEC) is sent
/// SIGKILL before it returns to user space, and its image-load event is
/// marked `blocked`. Changes take effect at once for every process.
#[derive(Debug)]
pub struct BlockedFiles {
    map: MapHandle,
}

impl BlockedFiles {
    pub(crate) fn of(map: &MapMut<'_>) -> Result<Self, ProbeError> {
        let map = MapHandle::try_from(map).map_err(|e| ProbeError::bpf("open the blocked-files map", e))?;
        Ok(Self { map })
    }

    /// How many files the kernel can hold.
    pub fn capacity(&self) -> usize {
        self.map.max_entries() as usize
    }

    /// Block `file`; blocking a file already blocked is not an error. At
    /// most [`BlockedFiles::capacity`] files.
    pub fn block(&self, file: FileId) -> Result<(), ProbeError> {
        self.map.update(&key(file), &[1], MapFlags::ANY).map_err(|e| ProbeError::bpf(format!("block {file}"), e))
    }

    /// Undo [`BlockedFiles::block`]; unblocking a file that is not blocked
    /// is not an error.
    pub fn unblock(&self, file: FileId) -> Result<(), ProbeError> {
        match self.map.delete(&key(file)) {
            Err(e) if e.kind() == libbpf_rs::ErrorKind::NotFound => Ok(()),
            other => other.map_err(|e| ProbeError::bpf(format!("unblock {file}"), e)),
        }
    }
}

pub(crate) fn key(file: FileId) -> Vec<u8> {
    let key = blocked_file { dev: file.kernel_dev(), ino: file.ino };
    [key.dev.to_ne_bytes(), key.ino.to_ne_bytes()].concat()
}

impl BlockedFiles {
    /// Remove every file but `keep`: what an earlier run left in a pinned
    /// map. Returns how many were removed.
    pub fn retain_only(&self, keep: &[FileId]) -> Result<usize, ProbeError> {
        retain_only(&self.map, keep, "blocked files")
    }
}

/// Delete every key of `map` not among `keep`'s keys.
pub(crate) fn retain_only(map: &MapHandle, keep: &[FileId], what: &str) -> Result<usize, ProbeError> {
    let keep: std::collections::HashSet<Vec<u8>> = keep.iter().map(|id| key(*id)).collect();
    let stale: Vec<Vec<u8>> = map.keys().filter(|k| !keep.contains(k)).collect();
    for k in &stale {
        match map.delete(k) {
            Err(e) if e.kind() != libbpf_rs::ErrorKind::NotFound => {
                return Err(ProbeError::bpf(format!("clear the {what}"), e));
            }
            _ => {}
        }
    }
    Ok(stale.len())
}
