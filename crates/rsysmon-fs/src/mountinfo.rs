//! The mounted filesystems, from `/proc/self/mountinfo` (proc(5)).
//!
//! The blocker needs one reachable mount point per filesystem (a fanotify
//! filesystem mark covers one superblock wherever it is mounted); the
//! sensor needs, per device, which directory of the filesystem is mounted
//! where, to turn a path within a filesystem into a host path. The kernel
//! escapes space, tab, newline and backslash in these fields as
//! three-digit octal (`\040`), which is undone here.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// Where the calling process's mount table is.
pub const SELF_MOUNTINFO: &str = "/proc/self/mountinfo";

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mount's id (field 1), as statx(2) reports it in `stx_mnt_id`
    /// for a file reached through this mount.
    pub id: u64,
    /// The filesystem's device (field 3), in stat(2)'s encoding: the same
    /// for every mount of one superblock.
    pub dev: u64,
    /// The directory of the filesystem mounted here (`/` for the whole).
    pub root: PathBuf,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    pub fs_type: String,
}

impl Mount {
    /// The device as `major:minor`, the way mountinfo and users write it.
    pub fn device(&self) -> String {
        format!("{}:{}", libc::major(self.dev), libc::minor(self.dev))
    }
}

/// Parse mountinfo text; lines that do not have the documented shape are
/// skipped.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mount> {
    // 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
    let (before, after) = line.split_once(" - ")?;
    let mut fields = before.split(' ');
    let id = fields.next()?.parse().ok()?;
    let (major, minor) = fields.nth(1)?.split_once(':')?;
    let dev = libc::makedev(major.parse().ok()?, minor.parse().ok()?);
    let root = unescape(fields.next()?);
    let mount_point = unescape(fields.next()?);
    let fs_type = after.split(' ').next()?.to_string();
    Some(Mount { id, dev, root, mount_point, fs_type })
}

fn unescape(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal =
            bytes.get(i + 1..i + 4).filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                out.push(((d[0] - b'0') << 6) | ((d[1] - b'0') << 3) | (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_root_mount_point_and_type_with_escapes() {
        let text = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
25 22 0:22 / /proc rw,nosuid - proc proc rw
40 22 0:35 /s\\040b /mnt/my\\040dir\\134x rw shared:5 master:2 - tmpfs tmpfs rw
garbage line
";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts.len(), 3);
        assert_eq!(
            mounts[0],
            Mount {
                id: 22,
                dev: libc::makedev(8, 1),
                root: "/".into(),
                mount_point: "/".into(),
                fs_type: "ext4".into()
            }
        );
        assert_eq!(mounts[1].fs_type, "proc");
        assert_eq!(mounts[2].device(), "0:35");
        assert_eq!(mounts[2].id, 40);
        assert_eq!(mounts[2].root, PathBuf::from("/s b"));
        assert_eq!(mounts[2].mount_point, PathBuf::from("/mnt/my dir\\x"));
        assert_eq!(mounts[2].fs_type, "tmpfs");
    }
}
