//! The monitor's threads on a busy machine: the ring-buffer reader, the
//! exec decider (and `run`'s output, which the reader waits for) run at a
//! raised priority, `nice` -10 by default (`[priority] nice`).
//!
//! Why: under a CPU storm of ordinary (nice 0) processes, the scheduler
//! gives each runnable task a fair share; a reader that gets 1/20 of a CPU
//! falls behind the kernel, the ring buffer fills, and events are lost
//! (and every exec on the machine waits on the decider). At -10 a thread
//! weighs about 10 times a nice-0 task (the kernel's weight table:
//! 9548 vs 1024), so it runs when it has work, yet it stays an ordinary
//! time-shared thread: these threads sleep whenever the ring is empty, so
//! the cost to the rest of the machine is the monitor's own CPU (a few
//! percent of one core at 100,000 events/s), never a lock-out. A real-time
//! policy (SCHED_FIFO) would win every time but could freeze a core if a
//! bug ever made the reader spin; -10 is the trade-off auditd makes too
//! (`priority_boost`, default 4, on the same scale).

use std::io;

/// The default `[priority] nice`.
pub const DEFAULT_NICE: i32 = -10;

/// Set the nice value of thread `tid` (0: the calling thread). Needs
/// CAP_SYS_NICE to lower it below what it is.
pub fn set_nice(tid: i32, nice: i32) -> io::Result<()> {
    let tid = if tid == 0 {
        // SAFETY: gettid has no preconditions and cannot fail.
        unsafe { libc::gettid() }
    } else {
        tid
    };
    // SAFETY: setpriority takes plain integers; on Linux PRIO_PROCESS with a
    // thread id changes that one thread, and failure is reported by errno.
    let failed = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) } != 0;
    if failed {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The nice value of thread `tid` (0: the calling thread).
#[cfg(test)]
fn nice_of(tid: i32) -> io::Result<i32> {
    let tid = if tid == 0 {
        // SAFETY: as above.
        unsafe { libc::gettid() }
    } else {
        tid
    };
    // getpriority returns -1 for nice -1 as well as for an error: only errno
    // tells them apart.
    // SAFETY: __errno_location always returns this thread's errno.
    unsafe { *libc::__errno_location() = 0 };
    // SAFETY: as for setpriority.
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t) };
    let err = io::Error::last_os_error();
    if nice == -1 && err.raw_os_error() != Some(0) {
        return Err(err);
    }
    Ok(nice)
}

/// Raise the calling thread to `nice`, or say in one line why not (the
/// monitor still works, only less well on a busy machine).
pub fn raise_this_thread(nice: i32, what: &str) {
    if let Err(e) = set_nice(0, nice) {
        eprintln!("rsysmon: cannot set the {what} thread to nice {nice}: {e}; it competes with ordinary processes");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_and_reads_the_calling_threads_nice_only() {
        // A thread of its own, so the test runner's threads keep theirs;
        // raising (a higher nice) needs no privilege.
        std::thread::spawn(|| {
            let before = nice_of(0).unwrap();
            let target = (before + 3).min(19);
            set_nice(0, target).unwrap();
            assert_eq!(nice_of(0).unwrap(), target);
        })
        .join()
        .unwrap();
        assert!(set_nice(i32::MAX, 0).is_err(), "no such thread");
    }
}
