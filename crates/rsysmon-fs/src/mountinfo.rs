//! The mounted filesystems, from `/proc/self/mountinfo`.
//!
//! A fanotify filesystem mark covers one superblock wherever it is mounted,
//! so the blocker needs one reachable mount point per filesystem. The
//! kernel escapes space, tab, newline and backslash in mount points as
//! three-digit octal (`\040`), which is undone here.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// One line of mountinfo, the parts the blocker needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `major:minor` of the filesystem (field 3): the same for every mount
    /// of one superblock.
    pub device: String,
    pub mount_point: PathBuf,
    pub fs_type: String,
}

/// Parse mountinfo text; lines that do not have the documented shape
/// (proc(5)) are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mount> {
    // 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
    let (before, after) = line.split_once(" - ")?;
    let mut fields = before.split(' ');
    let device = fields.nth(2)?.to_string();
    let mount_point = unescape(fields.nth(1)?);
    let fs_type = after.split(' ').next()?.to_string();
    Some(Mount { device, mount_point, fs_type })
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
                out.push((d[0] - b'0') << 6 | (d[1] - b'0') << 3 | (d[2] - b'0'));
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
    fn parses_device_mount_point_and_type_with_escapes() {
        let text = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
25 22 0:22 / /proc rw,nosuid - proc proc rw
40 22 0:35 /sub /mnt/my\\040dir\\134x rw shared:5 master:2 - tmpfs tmpfs rw
garbage line
";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts.len(), 3);
        assert_eq!(mounts[0], Mount { device: "8:1".into(), mount_point: "/".into(), fs_type: "ext4".into() });
        assert_eq!(mounts[1].fs_type, "proc");
        assert_eq!(mounts[2].device, "0:35");
        assert_eq!(mounts[2].mount_point, PathBuf::from("/mnt/my dir\\x"));
        assert_eq!(mounts[2].fs_type, "tmpfs");
    }
}
