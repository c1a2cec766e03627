//! File descriptors: the daemon's own limit, and the share clients may use.
//!
//! Every exec on a marked filesystem reaches the blocker as a fanotify
//! event that carries an open descriptor of the file, created by the kernel
//! in this process's descriptor table when the event is read. If the table
//! is full, the read fails with EMFILE and the kernel denies that exec
//! (fanotify_read answers FAN_DENY for a permission event it cannot hand
//! over): a full table makes the whole machine's execs fail. So the limit
//! is raised to the hard limit at start, and clients only ever get what is
//! left after a reserve that the blocker, the probes and the rule file keep.

use std::io;

/// Descriptors never handed to clients: one read of the fanotify group can
/// open one descriptor per queued exec (up to about 170 per 4 KiB read),
/// plus the probes, the ring buffer, /proc reads, the rule file and logs.
pub const FD_RESERVE: u64 = 512;

/// What a client connection costs in descriptors (its socket).
pub const FDS_PER_CLIENT: u64 = 1;

/// Raise the soft `RLIMIT_NOFILE` to the hard limit; the limit in force
/// afterwards.
pub fn raise_nofile() -> io::Result<u64> {
    let (soft, hard) = nofile()?;
    if soft >= hard {
        return Ok(soft);
    }
    let raised = libc::rlimit { rlim_cur: hard, rlim_max: hard };
    // SAFETY: setrlimit reads the struct we pass, which lives for the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(hard)
}

/// The soft and hard `RLIMIT_NOFILE`.
pub fn nofile() -> io::Result<(u64, u64)> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass, valid for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((limit.rlim_cur, limit.rlim_max))
}

/// Descriptors open in this process now.
pub fn open_fds() -> io::Result<u64> {
    // The directory's own descriptor is counted too: one too many is safe.
    Ok(std::fs::read_dir("/proc/self/fd")?.count() as u64)
}

/// How many clients fit in `limit` descriptors when `open` are in use and
/// [`FD_RESERVE`] stay free.
pub fn client_budget(limit: u64, open: u64) -> usize {
    (limit.saturating_sub(open).saturating_sub(FD_RESERVE) / FDS_PER_CLIENT) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_never_given_to_clients() {
        assert_eq!(client_budget(1024, 40), 1024 - 40 - FD_RESERVE as usize);
        assert_eq!(client_budget(512, 40), 0);
        assert_eq!(client_budget(100, 400), 0);
    }

    #[test]
    fn the_limit_is_at_least_what_it_was() {
        let (soft, _) = nofile().unwrap();
        assert!(raise_nofile().unwrap() >= soft);
        assert!(open_fds().unwrap() >= 3);
    }
}
