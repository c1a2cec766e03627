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
    /// Every decision's time since start, in [`LATENCY_BOUNDS_US`] buckets.
    pub latency: LatencyHistogram,
}

/// Upper bounds (µs, inclusive) of the decision-time histogram's buckets;
/// a last bucket holds the slower ones.
pub const LATENCY_BOUNDS_US: [u64; 11] = [10, 25, 50, 100, 250, 500, 1_000, 2_500, 10_000, 100_000, 1_000_000];

/// Decisions per time bucket since start: `counts[i]` took at most
/// `LATENCY_BOUNDS_US[i]` µs (and more than the bound before); the last
/// count, one past the bounds, took longer than every bound.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyHistogram {
    pub counts: Vec<u64>,
    /// Sum of all decision times, µs.
    pub sum_us: f64,
    pub count: u64,
}

/// A handle on the blocker's counters that any thread may keep and read,
/// also after the blocker stopped.
#[derive(Clone)]
pub struct StatsReader(pub(crate) std::sync::Arc<Counters>);

impl StatsReader {
    pub fn snapshot(&self) -> BlockerStats {
        self.0.snapshot()
    }
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
    /// One more than the bounds: the last is past every bound.
    buckets: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    sum_ns: AtomicU64,
}

impl Counters {
    /// Record one decision's duration. Called after the answer is written,
    /// so it never delays an exec.
    pub fn took(&self, elapsed: Duration) {
        let ns = u32::try_from(elapsed.as_nanos()).unwrap_or(u32::MAX);
        let us = elapsed.as_micros();
        let bucket = LATENCY_BOUNDS_US.iter().position(|&b| us <= u128::from(b)).unwrap_or(LATENCY_BOUNDS_US.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == WINDOW {
            recent.pop_front();
        }
        recent.push_back(ns);
    }

    pub fn snapshot(&self) -> BlockerStats {
        let mut times: Vec<u32> = self.recent.lock().unwrap_or_else(|e| e.into_inner()).iter().copied().collect();
        times.sort_unstable();
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let latency = LatencyHistogram {
            count: counts.iter().sum(),
            counts,
            sum_us: self.sum_ns.load(Ordering::Relaxed) as f64 / 1000.0,
        };
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
            latency,
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

    #[test]
    fn the_histogram_counts_every_decision_in_its_bucket() {
        let c = Counters::default();
        for us in [1, 10, 11, 5_000, 2_000_000] {
            c.took(Duration::from_micros(us));
        }
        let h = c.snapshot().latency;
        assert_eq!(h.count, 5);
        assert_eq!(h.counts, vec![2, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1]);
        assert_eq!(h.sum_us, 2_005_022.0);
    }
}
