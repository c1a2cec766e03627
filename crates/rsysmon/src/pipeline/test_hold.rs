//! A test switch that holds the ring-buffer reader, to force kernel loss
//! on demand: with `RSYSMON_TEST_HOLD_READER=PATH` in the environment, the
//! reader does not poll while PATH exists. The kernel keeps writing into
//! the ring meanwhile and counts what does not fit. Only root can set the
//! daemon's environment, and root can stop the daemon anyway.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The environment variable that names the hold file.
pub const VAR: &str = "RSYSMON_TEST_HOLD_READER";

pub struct ReaderHold {
    path: Option<PathBuf>,
}

impl ReaderHold {
    pub fn from_env() -> ReaderHold {
        ReaderHold { path: std::env::var_os(VAR).map(PathBuf::from) }
    }

    /// Wait while the hold file exists (or until `stop`).
    pub fn wait(&self, stop: &AtomicBool) {
        let Some(path) = &self.path else { return };
        while path.exists() && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
