//! Keeping every mounted filesystem marked, also those mounted later.
//!
//! `/proc/self/mountinfo` polls with POLLPRI | POLLERR whenever the mount
//! table of our namespace changes (proc(5)). On each change every
//! filesystem is marked again: a mark on an already marked filesystem is a
//! no-op, and re-marking all of them is the only way not to miss a new
//! filesystem that reuses an old one's device number (anonymous device
//! numbers of tmpfs and friends are recycled).
//!
//! Marking resolves a path, which can wait on a slow filesystem, so it runs
//! on its own thread, never on the one answering execs.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::fanotify::ExecPermissions;
use rsysmon_fs::mountinfo::{parse_mountinfo, Mount};

/// Which filesystems are watched, and which refused a mark and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Device (`major:minor`) → the mount point that was marked.
    pub marked: BTreeMap<String, PathBuf>,
    /// Device → (filesystem type, mount point, the kernel's error). Pseudo
    /// filesystems such as proc refuse exec permission marks.
    pub refused: BTreeMap<String, (String, PathBuf, String)>,
}

impl Coverage {
    /// Whether the filesystem of `device` is marked.
    pub fn is_marked(&self, device: &str) -> bool {
        self.marked.contains_key(device)
    }
}

/// Mark every filesystem in `mounts`, trying each of its mount points until
/// one takes the mark (a mount point hidden under another mount resolves
/// to the wrong filesystem, the next one may not).
pub(crate) fn mark_all(group: &ExecPermissions, mounts: &[Mount]) -> Coverage {
    let mut coverage = Coverage::default();
    for mount in mounts {
        let device = mount.device();
        if coverage.is_marked(&device) {
            continue;
        }
        match group.mark_filesystem(&mount.mount_point) {
            Ok(()) => {
                coverage.refused.remove(&device);
                coverage.marked.insert(device, mount.mount_point.clone());
            }
            Err(e) => {
                let reason = (mount.fs_type.clone(), mount.mount_point.clone(), e.desc().to_string());
                coverage.refused.entry(device).or_insert(reason);
            }
        }
    }
    coverage
}

/// The mount table, read again from the start.
pub(crate) fn read_mounts(mountinfo: &mut File) -> std::io::Result<Vec<Mount>> {
    let mut text = String::new();
    mountinfo.rewind()?;
    mountinfo.read_to_string(&mut text)?;
    Ok(parse_mountinfo(&text))
}

/// Mark everything again after a change and publish the new coverage,
/// logging filesystems that newly refused a mark. Returns the mounts read.
pub(crate) fn refresh(
    group: &ExecPermissions,
    mountinfo: &mut File,
    shared: &Arc<Mutex<Coverage>>,
) -> Option<Vec<Mount>> {
    let mounts = match read_mounts(mountinfo) {
        Ok(mounts) => mounts,
        Err(e) => {
            tracing::warn!("cannot read /proc/self/mountinfo ({e}); new mounts are not covered until it can be read");
            return None;
        }
    };
    let fresh = mark_all(group, &mounts);
    let mut current = shared.lock().unwrap_or_else(|e| e.into_inner());
    let known: HashSet<&String> = current.refused.keys().collect();
    for (device, (fs_type, mount_point, error)) in &fresh.refused {
        if !known.contains(device) {
            tracing::info!("not watching {fs_type} at {} ({device}): {error}", mount_point.display());
        }
    }
    *current = fresh;
    Some(mounts)
}
