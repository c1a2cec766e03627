//! Hashing one file, and knowing which version of it was hashed.

use std::fs::{File, Metadata};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rsysmon_event::HashStatus;
use sha2::{Digest, Sha256};

use crate::hex;

/// One version of one file: what the cache is keyed by. A write changes
/// mtime (and ctime); a rename or chmod changes ctime; either makes a new
/// version that is hashed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileVersion {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

impl FileVersion {
    pub fn of(md: &Metadata) -> Self {
        FileVersion {
            dev: md.dev(),
            ino: md.ino(),
            size: md.size(),
            mtime_ns: i128::from(md.mtime()) * 1_000_000_000 + i128::from(md.mtime_nsec()),
            ctime_ns: i128::from(md.ctime()) * 1_000_000_000 + i128::from(md.ctime_nsec()),
        }
    }
}

/// Read size: large enough that syscalls are a small part of the cost.
const CHUNK: usize = 256 * 1024;

/// SHA-256 (hex) of the open `file`, which must still be `version` before
/// and after it is read, and read by `deadline`.
pub fn hash_file(file: &mut File, version: FileVersion, deadline: Instant) -> Result<String, HashStatus> {
    hash_file_unless(file, version, deadline, &AtomicBool::new(false))
}

/// [`hash_file`], given up (`over-budget`) as soon as `stop` is set.
pub fn hash_file_unless(
    file: &mut File,
    version: FileVersion,
    deadline: Instant,
    stop: &AtomicBool,
) -> Result<String, HashStatus> {
    let before = file.metadata().map_err(|_| HashStatus::Error)?;
    if FileVersion::of(&before) != version {
        return Err(HashStatus::Changed);
    }
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return Err(HashStatus::Error),
        };
        h.update(&buf[..n]);
        if Instant::now() > deadline || stop.load(Ordering::Relaxed) {
            return Err(HashStatus::OverBudget);
        }
    }
    let after = file.metadata().map_err(|_| HashStatus::Error)?;
    if FileVersion::of(&after) != version {
        return Err(HashStatus::Changed);
    }
    Ok(hex(&h.finalize()))
}

/// SHA-256 (hex) of the file at `path`, read by `deadline`.
pub fn hash_path(path: &std::path::Path, deadline: Instant) -> Result<String, HashStatus> {
    let mut file = File::open(path).map_err(|_| HashStatus::Unreachable)?;
    let version = FileVersion::of(&file.metadata().map_err(|_| HashStatus::Error)?);
    hash_file(&mut file, version, deadline)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    #[test]
    fn known_digests_and_a_changed_file_is_refused() {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut f = File::open(tmp.path()).unwrap();
        let v = FileVersion::of(&f.metadata().unwrap());
        assert_eq!(
            hash_file(&mut f, v, deadline).unwrap(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        tmp.write_all(b"abc").unwrap();
        tmp.flush().unwrap();
        let mut f = File::open(tmp.path()).unwrap();
        assert_eq!(hash_file(&mut f, v, deadline), Err(HashStatus::Changed));
        let v = FileVersion::of(&f.metadata().unwrap());
        assert_eq!(
            hash_file(&mut f, v, deadline).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
