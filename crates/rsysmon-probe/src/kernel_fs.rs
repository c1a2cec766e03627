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
    mount_fs("tracefs", TRACEFS)?;
    if !tracefs_present() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{TRACEFS}/{TRACEFS_MARKER} is missing after the mount"),
        ));
    }
    Ok(())
}

/// Where securityfs belongs; `lsm` in it lists the active LSMs.
pub const SECURITYFS: &str = "/sys/kernel/security";
/// Where bpffs belongs: pinned BPF objects live there.
pub const BPFFS: &str = "/sys/fs/bpf";
/// `statfs` magic of bpffs.
const BPF_FS_MAGIC: i64 = 0xcafe4a11;

/// Mount securityfs at [`SECURITYFS`] if it is not there (its `lsm` file
/// is missing). The mount stays, as systemd's on boot would.
pub fn ensure_securityfs() -> io::Result<()> {
    if Path::new(SECURITYFS).join("lsm").exists() {
        return Ok(());
    }
    mount_fs("securityfs", SECURITYFS)?;
    if !Path::new(SECURITYFS).join("lsm").exists() {
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("{SECURITYFS}/lsm is missing after the mount")));
    }
    Ok(())
}

/// Whether `dir` is on bpffs.
pub fn is_bpffs(dir: &Path) -> bool {
    statfs_type(dir).is_some_and(|t| t == BPF_FS_MAGIC)
}

/// Mount bpffs at [`BPFFS`] if it is not mounted there, as systemd does on
/// boot (a fresh machine, a minimal container host). Returns whether it
/// had to be mounted.
pub fn ensure_bpffs() -> io::Result<bool> {
    if is_bpffs(Path::new(BPFFS)) {
        return Ok(false);
    }
    mount_fs("bpf", BPFFS)?;
    if !is_bpffs(Path::new(BPFFS)) {
        return Err(io::Error::other(format!("{BPFFS} is not bpffs after the mount")));
    }
    Ok(true)
}

fn statfs_type(dir: &Path) -> Option<i64> {
    use std::os::unix::ffi::OsStrExt;
    let path = CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut buf = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: a valid NUL-terminated path and a buffer of the right type.
    let rc = unsafe { libc::statfs(path.as_ptr(), buf.as_mut_ptr()) };
    // SAFETY: statfs filled the buffer when it returned 0.
    // f_type is i64 here, narrower on other targets.
    #[allow(clippy::unnecessary_cast)]
    (rc == 0).then(|| unsafe { buf.assume_init() }.f_type as i64)
}

/// `mount -t FSTYPE FSTYPE TARGET` with nosuid, nodev, noexec.
fn mount_fs(fstype: &str, target: &str) -> io::Result<()> {
    let fstype = CString::new(fstype).expect("no NUL");
    let target = CString::new(target).expect("no NUL");
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
    Ok(())
}
