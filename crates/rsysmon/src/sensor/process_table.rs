//! The one place that knows each live process's current image.
//!
//! Seeded from /proc at start (processes that predate the probes), then kept
//! up to date by the events themselves: a create inherits the parent's
//! image, an exec replaces it, an exit removes the entry. It answers the
//! question the kernel cannot at exec time: what was the image before.

use std::collections::HashMap;
use std::fs;

/// Live processes by pid, with their current executable path.
#[derive(Debug, Default)]
pub struct ProcessTable {
    exe: HashMap<u32, String>,
}

/// Entries above this many are pruned against /proc: an exit that was lost
/// in the kernel must not make the table grow without bound.
const PRUNE_ABOVE: usize = 65_536;

impl ProcessTable {
    /// A table of every process now in /proc.
    pub fn from_proc() -> Self {
        let mut table = Self::default();
        let Ok(dir) = fs::read_dir("/proc") else { return table };
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            // Kernel threads and processes that just exited have no exe.
            if let Ok(exe) = fs::read_link(entry.path().join("exe")) {
                table.exe.insert(pid, exe.to_string_lossy().into_owned());
            }
        }
        table
    }

    /// A new process started with `exe`.
    pub fn created(&mut self, pid: u32, exe: &str) {
        self.exe.insert(pid, exe.to_string());
        if self.exe.len() > PRUNE_ABOVE {
            self.exe.retain(|pid, _| fs::metadata(format!("/proc/{pid}")).is_ok());
        }
    }

    /// The process now runs `exe`; returns the image it ran before, if known.
    pub fn exec(&mut self, pid: u32, exe: &str) -> Option<String> {
        self.exe.insert(pid, exe.to_string())
    }

    /// The image `pid` runs now, if known.
    pub fn exe(&self, pid: u32) -> Option<&str> {
        self.exe.get(&pid).map(String::as_str)
    }

    /// The process is gone.
    pub fn exited(&mut self, pid: u32) {
        self.exe.remove(&pid);
    }

    /// How many processes the table holds.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.exe.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_returns_previous_image_and_exit_forgets() {
        let mut t = ProcessTable::default();
        t.created(10, "/usr/bin/bash");
        assert_eq!(t.exec(10, "/usr/bin/ls").as_deref(), Some("/usr/bin/bash"));
        assert_eq!(t.exec(10, "/usr/bin/cat").as_deref(), Some("/usr/bin/ls"));
        t.exited(10);
        assert_eq!(t.exec(10, "/x"), None);
    }

    #[test]
    fn seeding_from_proc_knows_ourselves() {
        let t = ProcessTable::from_proc();
        assert!(t.len() > 0);
        let me = std::process::id();
        assert!(t.exe.contains_key(&me));
    }
}
