//! What the blocker has decided, and how long each decision took.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// How many recent decisions the percentiles are computed over.
pub const WINDOW: usize = 4096;

/// Counters since start and decision times over the last [`WINDOW`]
/// decisions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlockerStats {
    /// Execs allowed after looking at the rules.
    pub allowed: u64,
    /// Execs denied by a rule.
    pub denied: u64,
    /// Execs of the blocker's own process, allowed without looking.
    pub own: u64,
    /// Events that could not be judged (their file could not be named) and
    /// were allowed, or whose answer could not be written.
    pub failures: u64,
    /// Exec events the kernel could not hand over (reading the group
    /// failed, e.g. EMFILE: no descriptor for the event's file). The kernel
    /// denies each such exec: the blocker fails closed, and goes on.
    pub unreadable: u64,
    /// The errno of the newest such failure, 0 if none.
    pub last_read_errno: i32,
    /// Decisions the percentiles are over.
    pub window: usize,
    /// Median time from reading an event to writing its answer, µs.
    pub p50_us: f64,
    /// 99th percentile of the same, µs.
    pub p99_us: f64,
}

/// Shared between the deciding thread (writes) and `stats()` (reads).
#[derive(Default)]
pub(crate) struct Counters {
    pub allowed: AtomicU64,
    pub denied: AtomicU64,
    pub own: AtomicU64,
    pub failures: AtomicU64,
    pub unreadable: AtomicU64,
    pub last_read_errno: AtomicI32,
    recent: Mutex<VecDeque<u32>>,
}

impl Counters {
    /// Record one decision's duration. Called after the answer is written,
    /// so it never delays an exec.
    pub fn took(&self, elapsed: Duration) {
        let ns = u32::try_from(elapsed.as_nanos()).unwrap_or(u32::MAX);
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == WINDOW {
            recent.pop_front();
        }
        recent.push_back(ns);
    }

    pub fn snapshot(&self) -> BlockerStats {
        let mut times: Vec<u32> = self.recent.lock().unwrap_or_else(|e| e.into_inner()).iter().copied().collect();
        times.sort_unstable();
        BlockerStats {
            allowed: self.allowed.load(Ordering::Relaxed),
            denied: self.denied.load(Ordering::Relaxed),
            own: self.own.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            unreadable: self.unreadable.load(Ordering::Relaxed),
            last_read_errno: self.last_read_errno.load(Ordering::Relaxed),
            window: times.len(),
            p50_us: percentile_us(&times, 50),
            p99_us: percentile_us(&times, 99),
        }
    }
}

/// Nearest-rank percentile of sorted nanoseconds, in µs; 0 when empty.
fn percentile_us(sorted_ns: &[u32], p: usize) -> f64 {
    if sorted_ns.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted_ns.len()).div_ceil(100).max(1);
    f64::from(sorted_ns[rank - 1]) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_over_the_most_recent_window() {
        let c = Counters::default();
        assert_eq!(c.snapshot().p99_us, 0.0);
        for _ in 0..WINDOW {
            c.took(Duration::from_micros(1000));
        }
        for us in 1..=100 {
            c.took(Duration::from_micros(us));
        }
        let s = c.snapshot();
        assert_eq!(s.window, WINDOW);
        // 100 fast ones displaced 100 slow ones: the median is still slow.
        assert_eq!(s.p50_us, 1000.0);
        let c = Counters::default();
        for us in 1..=100 {
            c.took(Duration::from_micros(us));
        }
        let s = c.snapshot();
        assert_eq!((s.p50_us, s.p99_us), (50.0, 99.0));
    }
}
