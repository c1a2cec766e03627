//! Where the host mounts each file system.
//!
//! For a file whose mount lives in another mount namespace (a container, a
//! private namespace with bind mounts), the probe sends the path as the
//! process sees it and the path from the root of the file's file system.
//! This table, read from the daemon's own /proc/self/mountinfo (the daemon
//! runs in the host's namespace), turns the second into the path a host
//! user would type: the mount point of that device whose mounted root is
//! the longest prefix of the path, plus the rest.

use std::time::{Duration, Instant};

use std::path::Path;

use rsysmon_fs::mountinfo::{parse_mountinfo, SELF_MOUNTINFO};
use rsysmon_probe::KernelPath;

/// A path that no mount explains is looked up again after re-reading
/// mountinfo, at most this often: new mounts appear, but a miss must not
/// cost a file read per event.
const REFRESH_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    /// Device, in stat(2)'s encoding.
    dev: u64,
    /// The directory of the file system mounted here ("/" for the whole).
    root: Vec<String>,
    /// Where it is mounted.
    mount_point: Vec<String>,
}

/// The daemon's mount table.
#[derive(Debug)]
pub struct HostMounts {
    mounts: Vec<Mount>,
    read_at: Option<Instant>,
}

impl HostMounts {
    /// The table of the calling process's mount namespace; empty if it
    /// cannot be read (paths then fall back to the process's view).
    pub fn from_self() -> Self {
        let mut mounts = Self { mounts: Vec::new(), read_at: None };
        mounts.refresh();
        mounts
    }

    fn refresh(&mut self) {
        self.mounts = std::fs::read_to_string(SELF_MOUNTINFO).map(|text| parse(&text)).unwrap_or_default();
        self.read_at = Some(Instant::now());
    }

    /// The host path of a file on device `dev` (stat encoding) at `fs_path`
    /// within its file system, or None when the host mounts no part of that
    /// file system containing it.
    pub fn host_path(&mut self, dev: u64, fs_path: &KernelPath) -> Option<String> {
        if fs_path.truncated || fs_path.disconnected {
            return None;
        }
        if let Some(found) = self.lookup(dev, fs_path) {
            return Some(found);
        }
        if self.read_at.is_some_and(|at| at.elapsed() < REFRESH_AFTER) {
            return None;
        }
        self.refresh();
        self.lookup(dev, fs_path)
    }

    fn lookup(&self, dev: u64, fs_path: &KernelPath) -> Option<String> {
        let mount = self
            .mounts
            .iter()
            .filter(|m| m.dev == dev && fs_path.components.starts_with(&m.root))
            .max_by_key(|m| m.root.len())?;
        let mut components = mount.mount_point.clone();
        components.extend_from_slice(&fs_path.components[mount.root.len()..]);
        Some(KernelPath { components, deleted: fs_path.deleted, ..KernelPath::default() }.display())
    }
}

/// The mounts as path components, for prefix matching.
fn parse(text: &str) -> Vec<Mount> {
    parse_mountinfo(text)
        .into_iter()
        .map(|m| Mount { dev: m.dev, root: path_components(&m.root), mount_point: path_components(&m.mount_point) })
        .collect()
}

fn path_components(path: &Path) -> Vec<String> {
    components(&path.to_string_lossy())
}

fn components(path: &str) -> Vec<String> {
    path.split('/').filter(|c| !c.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO_TEXT: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:25 / /tmp rw shared:2 - tmpfs tmpfs rw
31 22 254:0 /srv/data /data\\040dir rw shared:1 - ext4 /dev/vda rw
garbage line
";

    fn table() -> HostMounts {
        HostMounts { mounts: parse(MOUNTINFO_TEXT), read_at: Some(Instant::now()) }
    }

    fn fs_path(path: &str) -> KernelPath {
        KernelPath { components: components(path), ..KernelPath::default() }
    }

    #[test]
    fn parses_device_root_and_unescaped_mount_point() {
        let mounts = parse(MOUNTINFO_TEXT);
        assert_eq!(mounts.len(), 3);
        assert_eq!(mounts[2].dev, libc::makedev(254, 0));
        assert_eq!(mounts[2].root, ["srv", "data"]);
        assert_eq!(mounts[2].mount_point, ["data dir"]);
    }

    #[test]
    fn host_path_uses_the_mount_of_the_device_with_the_longest_root() {
        let mut t = table();
        let root_dev = libc::makedev(254, 0);
        assert_eq!(t.host_path(root_dev, &fs_path("/usr/bin/ls")).as_deref(), Some("/usr/bin/ls"));
        assert_eq!(t.host_path(root_dev, &fs_path("/srv/data/x")).as_deref(), Some("/data dir/x"));
        assert_eq!(t.host_path(libc::makedev(0, 25), &fs_path("/a")).as_deref(), Some("/tmp/a"));
        let mut deleted = fs_path("/a");
        deleted.deleted = true;
        assert_eq!(t.host_path(libc::makedev(0, 25), &deleted).as_deref(), Some("/tmp/a (deleted)"));
    }

    #[test]
    fn unknown_device_or_truncated_path_has_no_host_path() {
        let mut t = table();
        assert_eq!(t.host_path(libc::makedev(0, 99), &fs_path("/x")), None);
        let mut cut = fs_path("/usr/bin/ls");
        cut.truncated = true;
        assert_eq!(t.host_path(libc::makedev(254, 0), &cut), None);
    }
}
