//! What the spawn benchmarks (`cargo bench`) share: a timed round of
//! fork+exec+wait and the median of rounds.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The wall time of `spawns` fork+exec+wait of `/bin/true`, calling
/// `before_each` before each spawn.
pub fn spawn_round(spawns: usize, before_each: &dyn Fn()) -> Duration {
    let start = Instant::now();
    for _ in 0..spawns {
        before_each();
        let status = Command::new("/bin/true").stdin(Stdio::null()).status().expect("spawn /bin/true");
        assert!(status.success());
    }
    start.elapsed()
}

/// The median of `values` (the upper one of an even count); panics when
/// empty or when two values do not compare (NaN).
pub fn median<T: PartialOrd + Copy>(mut values: Vec<T>) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).expect("comparable values"));
    values[values.len() / 2]
}
