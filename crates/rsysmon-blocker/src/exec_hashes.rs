//! SHA-256 of executed files, for hash rules, on the decider's thread.
//!
//! A hash rule can only be decided from the file's content, so the first
//! exec of a file version (device, inode, size, mtime, ctime) waits while
//! the file is read; later execs of the same version are one `fstat` and a
//! lookup. Only asked for when some rule is a hash rule and no other rule
//! decided first.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use rsysmon_hash::{hash_file, FileVersion};

/// Files larger than this are not hashed at exec: they run (a hash rule
/// cannot match what was not read).
pub const MAX_EXEC_HASH_SIZE: u64 = 256 * 1024 * 1024;
/// The longest an exec waits for its file to be hashed; past it, it runs.
pub const EXEC_HASH_BUDGET: Duration = Duration::from_secs(10);
/// File versions remembered.
const CACHE_ENTRIES: usize = 16_384;

/// Hashes of executed files, by version.
#[derive(Default)]
pub struct ExecHashes {
    cache: RefCell<(HashMap<FileVersion, String>, VecDeque<FileVersion>)>,
}

impl ExecHashes {
    /// SHA-256 (hex) of the file behind the fanotify event's `fd`, or None
    /// when it cannot be had (too large, too slow, unreadable, changed).
    pub fn sha256(&self, fd: BorrowedFd<'_>) -> Option<String> {
        let mut file = File::from(fd.try_clone_to_owned().ok()?);
        let version = FileVersion::of(&file.metadata().ok()?);
        if let Some(known) = self.cache.borrow().0.get(&version) {
            return Some(known.clone());
        }
        if version.size > MAX_EXEC_HASH_SIZE {
            return None;
        }
        let sha256 = hash_file(&mut file, version, Instant::now() + EXEC_HASH_BUDGET).ok()?;
        let mut cache = self.cache.borrow_mut();
        let (map, order) = &mut *cache;
        map.insert(version, sha256.clone());
        order.push_back(version);
        while order.len() > CACHE_ENTRIES {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
        Some(sha256)
    }
}
