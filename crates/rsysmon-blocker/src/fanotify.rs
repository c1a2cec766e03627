//! The kernel boundary: a fanotify group that receives exec permission
//! events, and what can be learned from an event's file descriptor.
//!
//! Kernel facts relied on (fanotify(7), fanotify_mark(2)):
//! - `FAN_OPEN_EXEC_PERM` fires when a file is opened to be executed: by
//!   execve for the program, again for its ELF interpreter (ld.so), and for
//!   a `#!` script's interpreter. The opening task sleeps until a response
//!   is written; `FAN_DENY` makes its execve fail with EPERM.
//! - `FAN_MARK_FILESYSTEM` covers a whole superblock, wherever it is
//!   mounted (bind mounts included), and needs CAP_SYS_ADMIN.
//! - Each event carries an open fd of the file, opened by the kernel
//!   without generating events; `/proc/self/fd/N` names its real path and
//!   fstat gives its identity.
//! - When the group's fd is closed, every event still waiting is allowed:
//!   fanotify fails open, it never leaves an exec hanging.
//! - `metadata.pid` is the thread group id (no `FAN_REPORT_TID`).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::fanotify::{
    EventFFlags, Fanotify, FanotifyEvent, FanotifyResponse, InitFlags, MarkFlags, MaskFlags, Response,
};

use rsysmon_fs::FileId;

/// A fanotify group for exec permission events.
pub struct ExecPermissions {
    group: Fanotify,
}

impl ExecPermissions {
    /// A new group. Non-blocking reads, so the reader can also watch its
    /// stop signal; an unlimited queue, because a permission event that
    /// does not fit in a full queue is allowed without being seen (each
    /// queued event holds one waiting task, so the queue is bounded by the
    /// number of processes anyway).
    pub fn new() -> nix::Result<Self> {
        let group = Fanotify::init(
            InitFlags::FAN_CLASS_CONTENT
                | InitFlags::FAN_CLOEXEC
                | InitFlags::FAN_NONBLOCK
                | InitFlags::FAN_UNLIMITED_QUEUE,
            EventFFlags::O_RDONLY | EventFFlags::O_LARGEFILE | EventFFlags::O_CLOEXEC,
        )?;
        Ok(Self { group })
    }

    /// Ask for exec permission events on the filesystem mounted at
    /// `mount_point`. Marking an already marked filesystem changes nothing.
    pub fn mark_filesystem(&self, mount_point: &Path) -> nix::Result<()> {
        self.group.mark(
            MarkFlags::FAN_MARK_ADD | MarkFlags::FAN_MARK_FILESYSTEM,
            MaskFlags::FAN_OPEN_EXEC_PERM,
            None,
            Some(mount_point),
        )
    }

    /// Never report execs of the file at `path`: an ignore mark on its
    /// inode, which applies to the filesystem marks of the same group too,
    /// so the kernel lets those execs through without a round trip. It
    /// survives writes to the file; a new file at the path is not covered.
    pub fn ignore_file(&self, path: &Path) -> nix::Result<()> {
        self.group.mark(
            MarkFlags::FAN_MARK_ADD | MarkFlags::FAN_MARK_IGNORED_MASK | MarkFlags::FAN_MARK_IGNORED_SURV_MODIFY,
            MaskFlags::FAN_OPEN_EXEC_PERM,
            None,
            Some(path),
        )
    }

    /// Let later execs of the file behind `fd` through without asking: an
    /// ignore mark on its inode that the kernel drops when the file is
    /// modified.
    pub fn ignore_fd(&self, fd: BorrowedFd<'_>) -> nix::Result<()> {
        self.group.mark(
            MarkFlags::FAN_MARK_ADD | MarkFlags::FAN_MARK_IGNORED_MASK,
            MaskFlags::FAN_OPEN_EXEC_PERM,
            Some(fd.as_raw_fd()),
            None::<&Path>,
        )
    }

    /// Remove every inode mark (ignore marks included); filesystem marks stay.
    pub fn unmark_inodes(&self) -> nix::Result<()> {
        self.group.mark(MarkFlags::FAN_MARK_FLUSH, MaskFlags::empty(), None, None::<&Path>)
    }

    /// Remove every filesystem mark: from now on no exec waits on this
    /// group. Needed before closing it, because closing allows the waiting
    /// execs only when the *last* reference to the group goes, and a child
    /// forked by this process holds one until its execve finishes; if that
    /// execve waits on this group, nobody would ever answer it.
    pub fn unmark_all(&self) -> nix::Result<()> {
        self.group.mark(
            MarkFlags::FAN_MARK_FLUSH | MarkFlags::FAN_MARK_FILESYSTEM,
            MaskFlags::empty(),
            None,
            None::<&Path>,
        )
    }

    /// Wait up to `timeout_ms` for an event to arrive.
    pub fn wait(&self, timeout_ms: u16) -> bool {
        let mut fds = [nix::poll::PollFd::new(self.group.as_fd(), nix::poll::PollFlags::POLLIN)];
        matches!(nix::poll::poll(&mut fds, timeout_ms), Ok(n) if n > 0)
    }

    /// Events waiting now; empty when there are none. Each event closes its
    /// fd when dropped, so it must be answered before.
    pub fn read(&self) -> nix::Result<Vec<FanotifyEvent>> {
        match self.group.read_events() {
            Err(Errno::EAGAIN) => Ok(Vec::new()),
            other => other,
        }
    }

    /// Allow or deny the exec waiting on `fd`.
    pub fn respond(&self, fd: BorrowedFd<'_>, allow: bool) -> nix::Result<()> {
        let response = if allow { Response::FAN_ALLOW } else { Response::FAN_DENY };
        self.group.write_response(FanotifyResponse::new(fd, response))
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.group.as_fd()
    }
}

/// The event's file, as the blocker judges it.
pub struct ExecutedFile {
    /// Real path in the blocker's mount namespace, without the
    /// ` (deleted)` the kernel appends for an unlinked file. None when it
    /// could not be read; the identity alone decides then.
    pub path: Option<String>,
    /// None when fstat failed; the path alone decides then.
    pub identity: Option<FileId>,
    /// The mount it was reached through (statx's `stx_mnt_id`).
    pub mount_id: Option<u64>,
    /// Its hard links (0 when unknown).
    pub links: u32,
}

impl ExecutedFile {
    /// What the event's fd refers to. Neither call does filesystem I/O that
    /// could wait: the path comes from procfs, the identity from statx with
    /// AT_STATX_DONT_SYNC (cached attributes, so a hung NFS server or FUSE
    /// daemon cannot stall the decision).
    pub fn of(fd: BorrowedFd<'_>, proc_fds: &ProcFds) -> Self {
        let stat = cached_stat(fd);
        let link = nix::fcntl::readlinkat(Some(proc_fds.dir.as_raw_fd()), fd.as_raw_fd().to_string().as_str()).ok();
        let path = link.map(|link| {
            let mut path = link.into_string().unwrap_or_else(|raw| raw.to_string_lossy().into_owned());
            if stat.is_some_and(|s| s.stx_nlink == 0) {
                if let Some(stripped) = path.strip_suffix(" (deleted)") {
                    path.truncate(stripped.len());
                }
            }
            path
        });
        let identity = stat.map(|s| FileId { dev: libc::makedev(s.stx_dev_major, s.stx_dev_minor), ino: s.stx_ino });
        let mount_id = stat.filter(|s| s.stx_mask & libc::STATX_MNT_ID != 0).map(|s| s.stx_mnt_id);
        ExecutedFile { path, identity, mount_id, links: stat.map_or(0, |s| s.stx_nlink) }
    }
}

/// `/proc/self/fd`, opened once: reading a link relative to it skips the
/// walk through `/proc/self` on every event.
pub struct ProcFds {
    dir: std::fs::File,
}

impl ProcFds {
    pub fn open() -> std::io::Result<Self> {
        Ok(ProcFds { dir: std::fs::File::open("/proc/self/fd")? })
    }
}

fn cached_stat(fd: BorrowedFd<'_>) -> Option<libc::statx> {
    let mut stat = std::mem::MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: the path is a NUL-terminated empty string, so with
    // AT_EMPTY_PATH statx describes `fd` itself, which is open for the
    // duration of the call; `stat` is a valid, writable statx buffer.
    let rc = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_STATX_DONT_SYNC,
            libc::STATX_INO | libc::STATX_NLINK | libc::STATX_MNT_ID,
            stat.as_mut_ptr(),
        )
    };
    // SAFETY: statx filled the buffer when it returned 0 (and it was zeroed
    // before, so every field is initialized either way).
    (rc == 0).then(|| unsafe { stat.assume_init() })
}

/// The name of process `pid` (its main thread's comm), or "?" if it cannot
/// be read. The process exists: it is waiting for our answer.
pub fn process_name(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim_end_matches('\n').to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Whether `event` is an exec permission request (the only kind asked for;
/// a queue overflow notice has no fd and needs no answer).
pub fn is_exec_permission(event: &FanotifyEvent) -> bool {
    event.mask().contains(MaskFlags::FAN_OPEN_EXEC_PERM)
}
