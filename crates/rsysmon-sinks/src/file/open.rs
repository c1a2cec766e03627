//! Opening the log file so that nobody but root can redirect it.
//!
//! The daemon runs as root and appends to a path; if another user could
//! put a symlink there, root would append to (or create) a file of their
//! choosing. So the directory must be a real directory owned by us (root)
//! and writable by nobody else, and the file is opened with O_NOFOLLOW and
//! must be a regular file of ours with one link.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Open `path` for appending, creating it (0640) and its directory (0750)
/// if missing. Returns the file and its size.
pub fn open_log(path: &Path) -> io::Result<(File, u64)> {
    let refuse = |why: String| io::Error::new(io::ErrorKind::PermissionDenied, why);
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("/"));
    if !dir.exists() {
        DirBuilder::new().recursive(true).mode(0o750).create(dir)?;
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let meta = std::fs::symlink_metadata(dir)?;
    if !meta.file_type().is_dir() {
        return Err(refuse(format!("{} is not a directory (a symlink is refused)", dir.display())));
    }
    if meta.uid() != me && meta.uid() != 0 {
        return Err(refuse(format!("{} belongs to uid {}, not to root", dir.display(), meta.uid())));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(refuse(format!(
            "{} is writable by group or others (mode {:o}): make it 0750 or 0755",
            dir.display(),
            meta.mode() & 0o7777
        )));
    }
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => refuse(format!("{} is a symlink: refused", path.display())),
            _ => io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display())),
        })?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(refuse(format!("{} is not a regular file", path.display())));
    }
    if meta.nlink() > 1 {
        return Err(refuse(format!("{} has {} hard links: refused", path.display(), meta.nlink())));
    }
    if meta.uid() != me && meta.uid() != 0 {
        return Err(refuse(format!("{} belongs to uid {}, not to root", path.display(), meta.uid())));
    }
    Ok((file, meta.len()))
}
