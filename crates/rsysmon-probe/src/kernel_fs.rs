//! Kernel file systems the probes need, mounted when missing, as systemd
//! would on boot.
//!
//! libbpf attaches a syscall tracepoint (`tracepoint/syscalls/...`) by
//! reading the event's id from tracefs: `/sys/kernel/debug/tracing` when
//! that exists (debugfs mounted; the kernel automounts tracefs there),
//! else `/sys/kernel/tracing`. On a machine where neither is mounted, every
//! syscall tracepoint fails to attach with ENOENT. BTF tracepoints
//! (`tp_btf/...`) need no tracefs.

use std::ffi::CString;
use std::io;
use std::path::Path;

/// Where tracefs belongs.
pub const TRACEFS: &str = "/sys/kernel/tracing";
/// Where libbpf looks first: tracefs automounted under debugfs.
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";
/// Present in every mounted tracefs.
const TRACEFS_MARKER: &str = "events";

/// Why tracefs could not be made available.
#[derive(Debug, thiserror::Error)]
#[error(
    "tracefs is not mounted and mounting it at {TRACEFS} failed: {source}; mount it with \
     `mount -t tracefs tracefs {TRACEFS}` (or enable sys-kernel-tracing.mount)"
)]
pub struct TracefsError {
    #[source]
    pub source: io::Error,
}

/// How tracefs was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracefs {
    /// It was already there.
    Present,
    /// It was missing and is now mounted at [`TRACEFS`].
    Mounted,
}

/// Make sure libbpf finds tracefs: mount it at [`TRACEFS`] if neither
/// place libbpf looks has it. The mount stays after the process ends, as
/// systemd's `sys-kernel-tracing.mount` would.
pub fn ensure_tracefs() -> Result<Tracefs, TracefsError> {
    if tracefs_present() {
        return Ok(Tracefs::Present);
    }
    mount_tracefs().map_err(|source| TracefsError { source })?;
    Ok(Tracefs::Mounted)
}

fn tracefs_present() -> bool {
    [DEBUGFS_TRACING, TRACEFS].iter().any(|dir| Path::new(dir).join(TRACEFS_MARKER).is_dir())
}

fn mount_tracefs() -> io::Result<()> {
    let fstype = CString::new("tracefs").expect("no NUL");
    let target = CString::new(TRACEFS).expect("no NUL");
    // SAFETY: every pointer is a valid NUL-terminated string that outlives
    // the call; a NULL data argument is allowed.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if !tracefs_present() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{TRACEFS}/{TRACEFS_MARKER} is missing after the mount"),
        ));
    }
    Ok(())
}
