//! Every name a file has on the mounts of this mount namespace.
//!
//! A directory or glob rule decides by name, so an exec allowed under one
//! name may be refused under another: the same directory bind-mounted
//! elsewhere, or a file system mounted twice. The kernel remembers an
//! allowed file by inode, for every name at once, so an answer may be
//! remembered only when every name the file has gets it. The file's mount
//! (statx's `stx_mnt_id`) and that mount's root and mount point (from
//! mountinfo) give the file's path within its file system; every mount of
//! the same file system whose root holds that path gives one more name.
//! Hard links are names too, but cannot be listed: a file with more than
//! one link is never remembered.

use std::collections::HashMap;

use rsysmon_fs::mountinfo::Mount;

/// More names than this, and the file is judged each time instead.
const MAX_NAMES: usize = 64;

/// One mount: the directory of its file system it shows, and where.
#[derive(Debug, Clone)]
struct Shown {
    root: String,
    mount_point: String,
}

/// The mount table of the blocker's namespace, indexed for [`MountTable::names`].
#[derive(Debug, Default)]
pub(crate) struct MountTable {
    by_id: HashMap<u64, (u64, Shown)>,
    by_dev: HashMap<u64, Vec<Shown>>,
    /// Devices with a mount whose paths are not UTF-8: their names cannot
    /// all be written as rules see them.
    unnameable: Vec<u64>,
}

impl MountTable {
    pub(crate) fn new(mounts: &[Mount]) -> Self {
        let mut table = MountTable::default();
        for mount in mounts {
            let (Some(root), Some(point)) = (mount.root.to_str(), mount.mount_point.to_str()) else {
                table.unnameable.push(mount.dev);
                continue;
            };
            let shown = Shown { root: root.to_string(), mount_point: point.to_string() };
            table.by_dev.entry(mount.dev).or_default().push(shown.clone());
            table.by_id.insert(mount.id, (mount.dev, shown));
        }
        table
    }

    /// Every name of the file at `path`, reached through mount `mount_id`,
    /// `path` included; None when they cannot all be known (a mount of
    /// another namespace, too many names).
    pub(crate) fn names(&self, path: &str, mount_id: u64) -> Option<Vec<String>> {
        let (dev, mount) = self.by_id.get(&mount_id)?;
        if self.unnameable.contains(dev) {
            return None;
        }
        let in_fs = join(&mount.root, below(path, &mount.mount_point)?);
        let names: Vec<String> =
            self.by_dev.get(dev)?.iter().filter_map(|m| Some(join(&m.mount_point, below(&in_fs, &m.root)?))).collect();
        (names.len() <= MAX_NAMES && names.iter().any(|n| n == path)).then_some(names)
    }
}

/// What follows directory `dir` in `path` ("" or "/..."), if `path` is in it.
fn below<'p>(path: &'p str, dir: &str) -> Option<&'p str> {
    if dir == "/" {
        return path.starts_with('/').then_some(path);
    }
    let rest = path.strip_prefix(dir)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

fn join(dir: &str, rest: &str) -> String {
    match (dir, rest) {
        ("/", "") => "/".to_string(),
        ("/", rest) => rest.to_string(),
        (dir, rest) => format!("{dir}{rest}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsysmon_fs::mountinfo::parse_mountinfo;

    #[test]
    fn a_file_has_a_name_on_every_mount_that_shows_it() {
        let mounts = parse_mountinfo(
            "\
22 1 8:1 / / rw - ext4 /dev/sda1 rw
30 22 8:1 /srv/blk /mnt/bind rw - ext4 /dev/sda1 rw
31 22 8:1 /srv/other /mnt/other rw - ext4 /dev/sda1 rw
32 22 0:40 / /tmp rw - tmpfs tmpfs rw
",
        );
        let table = MountTable::new(&mounts);
        let mut names = table.names("/srv/blk/evil", 22).unwrap();
        names.sort();
        assert_eq!(names, ["/mnt/bind/evil", "/srv/blk/evil"]);
        let mut names = table.names("/mnt/bind/sub/evil", 30).unwrap();
        names.sort();
        assert_eq!(names, ["/mnt/bind/sub/evil", "/srv/blk/sub/evil"]);
        assert_eq!(table.names("/tmp/x", 32).unwrap(), ["/tmp/x"]);
        assert_eq!(table.names("/srv/blkx/y", 22).unwrap(), ["/srv/blkx/y"]);
        assert_eq!(table.names("/x", 99), None, "a mount of another namespace");
        assert_eq!(table.names("/elsewhere/x", 30), None, "a path not below its own mount");
    }
}
