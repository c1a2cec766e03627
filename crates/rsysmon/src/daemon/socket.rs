//! Creating the control socket safely.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use anyhow::Context;
use nix::unistd::{chown, Gid};

/// The longest socket path: `sun_path` holds 108 bytes with the NUL.
pub const MAX_SOCKET_PATH: usize = 107;

/// Before anything is attached: refuse a path too long for a Unix socket
/// and a socket another daemon is listening on.
pub fn check_free(path: &Path) -> anyhow::Result<()> {
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        anyhow::bail!(
            "socket.path {} is {len} bytes long; a Unix socket path may have at most {MAX_SOCKET_PATH}",
            path.display()
        );
    }
    if UnixStream::connect(path).is_ok() {
        anyhow::bail!("another rsysmon daemon is already listening on {}", path.display());
    }
    Ok(())
}

/// Bind the control socket at `path`: 0600, or 0660 owned by `read_gid`
/// when a read group is configured. A stale socket left by a crash is
/// replaced; a live one (another daemon) is an error.
pub fn bind(path: &Path, read_gid: Option<Gid>) -> anyhow::Result<UnixListener> {
    check_free(path)?;
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
                .with_context(|| format!("cannot create socket directory {}", dir.display()))?;
        }
    }
    match UnixStream::connect(path) {
        Ok(_) => anyhow::bail!("another rsysmon daemon is already listening on {}", path.display()),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(_) => {
            fs::remove_file(path).with_context(|| format!("cannot remove stale socket {}", path.display()))?;
        }
    }
    // Bind with a umask that leaves nobody else a window before the chmod.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.with_context(|| format!("cannot listen on {}", path.display()))?;
    if let Some(gid) = read_gid {
        chown(path, None, Some(gid)).with_context(|| format!("cannot give {} to the read group", path.display()))?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o660))
            .with_context(|| format!("cannot set permissions of {}", path.display()))?;
    }
    Ok(listener)
}
