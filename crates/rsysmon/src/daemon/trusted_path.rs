//! Paths the daemon and its clients trust: only root may be able to change
//! them.
//!
//! Whoever can write to the directory of the control socket can stand up a
//! fake daemon there (and answer a root client's `block add` with a fake
//! "blocked"); whoever can write to the rule file or its directory chooses
//! the rules after the next restart. So the socket's directory and the
//! rule file's must be owned by root and writable by nobody else, and every
//! directory above them must be owned by root and either not writable by
//! others or sticky (like /tmp: others cannot rename or remove what root
//! put there).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

const GROUP_OR_OTHER_WRITE: u32 = 0o022;
const STICKY: u32 = 0o1000;

/// Refuse `dir` (what it is for: `what`) unless root alone can change it
/// and what leads to it. A directory that does not exist yet is judged by
/// its nearest existing ancestor, as root will create the rest.
pub fn check_dir(dir: &Path, what: &str) -> anyhow::Result<()> {
    let mut existing = dir.to_path_buf();
    while !existing.exists() {
        if !existing.pop() {
            return Ok(());
        }
    }
    let dir = fs::canonicalize(&existing)
        .map_err(|e| anyhow::anyhow!("cannot resolve {what} {}: {e}", existing.display()))?;
    check_one(&dir, what, true)?;
    for ancestor in dir.ancestors().skip(1) {
        check_one(ancestor, what, false)?;
    }
    Ok(())
}

/// Refuse `file` unless it, if it exists, is owned by root and writable by
/// nobody else, and its directory passes [`check_dir`].
pub fn check_file(file: &Path, what: &str) -> anyhow::Result<()> {
    if let Some(dir) = file.parent() {
        check_dir(dir, &format!("directory of the {what}"))?;
    }
    match fs::metadata(file) {
        Ok(meta) => judge(file, what, meta.uid(), meta.permissions().mode(), true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow::anyhow!("cannot check the {what} {}: {e}", file.display())),
    }
}

fn check_one(dir: &Path, what: &str, strict: bool) -> anyhow::Result<()> {
    let meta = fs::metadata(dir).map_err(|e| anyhow::anyhow!("cannot check the {what} {}: {e}", dir.display()))?;
    let path = PathBuf::from(dir);
    let named = if strict { what.to_string() } else { format!("{what} (through {})", path.display()) };
    judge(&path, &named, meta.uid(), meta.permissions().mode(), strict)
}

/// The rule itself, on the owner and mode of `path`.
fn judge(path: &Path, what: &str, uid: u32, mode: u32, strict: bool) -> anyhow::Result<()> {
    if uid != 0 {
        anyhow::bail!(
            "refusing the {what} {}: it is owned by uid {uid}, not root, so that user could replace what is in \
             it; use a path owned by root (chown root)",
            path.display()
        );
    }
    let writable = mode & GROUP_OR_OTHER_WRITE != 0;
    if writable && (strict || mode & STICKY == 0) {
        anyhow::bail!(
            "refusing the {what} {}: it is writable by group or others (mode {:04o}), so another user could \
             replace what is in it; use a path writable only by root (chmod go-w)",
            path.display(),
            mode & 0o7777
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_root_owned_paths_closed_to_others_pass() {
        let p = Path::new("/x");
        assert!(judge(p, "socket directory", 0, 0o40755, true).is_ok());
        let err = judge(p, "socket directory", 1000, 0o40755, true).unwrap_err().to_string();
        assert!(err.contains("owned by uid 1000, not root"), "{err}");
        let err = judge(p, "socket directory", 0, 0o40777, true).unwrap_err().to_string();
        assert!(err.contains("writable by group or others (mode 0777)"), "{err}");
        // A sticky directory above is fine (/tmp), as the directory itself it is not.
        assert!(judge(p, "socket directory", 0, 0o41777, false).is_ok());
        assert!(judge(p, "socket directory", 0, 0o41777, true).is_err());
        assert!(judge(p, "socket directory", 0, 0o40775, false).is_err());
    }

    #[test]
    fn system_paths_pass_and_missing_ones_are_judged_by_their_ancestors() {
        // /etc is root's everywhere; /tmp is sticky and writable by all.
        assert!(check_dir(Path::new("/etc"), "test directory").is_ok());
        assert!(check_dir(Path::new("/etc/nonexistent/deeper"), "test directory").is_ok());
        assert!(check_dir(Path::new("/tmp"), "test directory").is_err());
    }
}
