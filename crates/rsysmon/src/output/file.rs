//! `rsysmon run -o FILE`: open the output file without being tricked.
//!
//! `run` is root. In a directory that others can write to, another user
//! could plant a symlink at FILE pointing at a file of root's (which root
//! would then overwrite), a FIFO (which would hang the monitor), or a file
//! of their own (which would collect every event). So: the last component
//! is never followed (O_NOFOLLOW), the open never waits (O_NONBLOCK, until
//! the file is known to be a regular file or a device), and the directory
//! must be owned by root or the caller and, if others may write to it,
//! sticky, with any existing file there the caller's.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;
use nix::fcntl::{fcntl, FcntlArg, OFlag};

/// Create or truncate `path` for writing events, refusing what is unsafe.
pub fn create(path: &Path) -> anyhow::Result<File> {
    let me = nix::unistd::geteuid().as_raw();
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let dir_meta = fs::metadata(dir).with_context(|| format!("cannot use {}", dir.display()))?;
    let mode = dir_meta.permissions().mode();
    let shared = mode & 0o022 != 0;
    if dir_meta.uid() != 0 && dir_meta.uid() != me {
        anyhow::bail!(
            "refusing to write {}: its directory is owned by uid {}, who could swap the file; write somewhere \
             owned by you or root",
            path.display(),
            dir_meta.uid()
        );
    }
    if shared && mode & 0o1000 == 0 {
        anyhow::bail!(
            "refusing to write {}: its directory is writable by others (mode {:04o}) and not sticky, so they \
             could swap the file; write somewhere only you can change",
            path.display(),
            mode & 0o7777
        );
    }
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            // ELOOP from O_NOFOLLOW, or EACCES from fs.protected_symlinks.
            if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
                anyhow::anyhow!("refusing to write {}: it is a symbolic link, which is not followed", path.display())
            } else {
                anyhow::anyhow!("cannot create {}: {e}", path.display())
            }
        })?;
    let meta = file.metadata().with_context(|| format!("cannot check {}", path.display()))?;
    let kind = meta.file_type();
    if !(kind.is_file() || kind.is_char_device()) {
        anyhow::bail!("refusing to write {}: it is not a regular file", path.display());
    }
    if kind.is_file() {
        if shared && meta.uid() != me {
            anyhow::bail!(
                "refusing to write {}: it belongs to uid {} in a directory others can write to",
                path.display(),
                meta.uid()
            );
        }
        file.set_len(0).with_context(|| format!("cannot truncate {}", path.display()))?;
    }
    fcntl(file.as_raw_fd(), FcntlArg::F_SETFL(OFlag::empty()))
        .with_context(|| format!("cannot set up {}", path.display()))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_planted_symlink_is_not_followed_and_a_fifo_not_waited_on() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "keep").unwrap();
        let link = dir.path().join("out.jsonl");
        symlink(&victim, &link).unwrap();
        let err = create(&link).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");

        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(create(&fifo).is_err());
    }

    #[test]
    fn a_regular_file_is_truncated_and_a_shared_directory_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        fs::write(&out, "old events").unwrap();
        drop(create(&out).unwrap());
        assert_eq!(fs::read_to_string(&out).unwrap(), "");

        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let err = create(&out).unwrap_err().to_string();
        assert!(err.contains("writable by others (mode 0777) and not sticky"), "{err}");
    }
}
