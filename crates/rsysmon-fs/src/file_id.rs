//! A file's identity: the device of its file system and its inode number.
//!
//! The same device has two encodings. stat(2) reports `st_dev` in the
//! user-space `dev_t` encoding (glibc's `makedev`); the kernel keeps
//! `inode->i_sb->s_dev` as `MAJOR << 20 | MINOR`. A [`FileId`] holds the
//! stat(2) form, the one users and `std::fs::Metadata::dev` know, and
//! converts at the probe boundary.

use std::fmt;
use std::os::unix::fs::MetadataExt;

/// Bits of the minor number in the kernel's device encoding (MINORBITS).
const KERNEL_MINOR_BITS: u32 = 20;

/// Device and inode of a file, as stat(2) reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
}

impl FileId {
    /// The identity of the file `metadata` describes (follow symlinks
    /// first, with `std::fs::metadata`, to name what would run).
    pub fn of(metadata: &std::fs::Metadata) -> Self {
        Self { dev: metadata.dev(), ino: metadata.ino() }
    }

    /// From the kernel's encoding of the device (`s_dev`).
    pub fn from_kernel(kernel_dev: u64, ino: u64) -> Self {
        let major = (kernel_dev >> KERNEL_MINOR_BITS) as u32;
        let minor = (kernel_dev & ((1 << KERNEL_MINOR_BITS) - 1)) as u32;
        Self { dev: libc::makedev(major, minor), ino }
    }

    /// The device in the kernel's encoding, `MAJOR << 20 | MINOR`.
    pub fn kernel_dev(&self) -> u64 {
        (u64::from(libc::major(self.dev)) << KERNEL_MINOR_BITS) | u64::from(libc::minor(self.dev))
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "file {}:{} inode {}", libc::major(self.dev), libc::minor(self.dev), self.ino)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_and_stat_encodings_round_trip() {
        // 259:65537 has a minor wider than 8 bits, where the encodings differ most.
        let id = FileId { dev: libc::makedev(259, 65537), ino: 7 };
        assert_eq!(id.kernel_dev(), (259 << 20) | 65537);
        assert_eq!(FileId::from_kernel(id.kernel_dev(), 7), id);
        assert_eq!(FileId::from_kernel((8 << 20) | 1, 9).dev, libc::makedev(8, 1));
        assert_eq!(id.to_string(), "file 259:65537 inode 7");
    }

    #[test]
    fn of_reads_stat_identity() {
        let meta = std::fs::metadata("/").unwrap();
        let id = FileId::of(&meta);
        assert_eq!((id.dev, id.ino), (meta.dev(), meta.ino()));
    }
}
