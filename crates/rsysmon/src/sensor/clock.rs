//! Converting the probes' CLOCK_BOOTTIME stamps to wall-clock time.
//!
//! The offset between the two clocks is read once at start, so events are
//! stamped consistently even if the wall clock is stepped while we run
//! (and ordering never depends on it).

use chrono::{DateTime, Utc};
use nix::time::{clock_gettime, ClockId};

/// Maps boot-time nanoseconds to UTC.
#[derive(Debug, Clone, Copy)]
pub struct BootClock {
    /// Wall-clock nanoseconds at boot.
    boot_epoch_ns: i128,
}

impl BootClock {
    /// Read both clocks now and keep their difference.
    pub fn now() -> Self {
        let ns = |id| {
            let ts = clock_gettime(id).expect("CLOCK_REALTIME and CLOCK_BOOTTIME exist on every Linux");
            i128::from(ts.tv_sec()) * 1_000_000_000 + i128::from(ts.tv_nsec())
        };
        let boot = ns(ClockId::CLOCK_BOOTTIME);
        let real = ns(ClockId::CLOCK_REALTIME);
        Self { boot_epoch_ns: real - boot }
    }

    /// The wall-clock time of a CLOCK_BOOTTIME stamp.
    pub fn to_utc(self, boot_ns: u64) -> DateTime<Utc> {
        let ns = self.boot_epoch_ns + i128::from(boot_ns);
        let ns = i64::try_from(ns).unwrap_or(i64::MAX);
        DateTime::from_timestamp_nanos(ns)
    }

    /// CLOCK_BOOTTIME now, in nanoseconds.
    pub fn boot_now_ns() -> u64 {
        let ts = clock_gettime(ClockId::CLOCK_BOOTTIME).expect("CLOCK_BOOTTIME exists on every Linux");
        ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_now_maps_to_about_now() {
        let clock = BootClock::now();
        let mapped = clock.to_utc(BootClock::boot_now_ns());
        let drift = (Utc::now() - mapped).num_milliseconds().abs();
        assert!(drift < 1000, "drift {drift} ms");
    }
}
