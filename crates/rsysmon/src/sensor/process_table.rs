//! The one place that knows each live process: its image and arguments,
//! its parent, and its start time.
//!
//! Seeded from /proc at start (processes that predate the probes), then kept
//! up to date by the events themselves: a create inherits the parent's
//! image and arguments, an exec replaces them, an exit removes the entry.
//! It answers what the kernel cannot at exec time (the image before, the
//! parent's image and arguments) and what an event of a process carries
//! about its parent (its start time, hence its `entity_id`).
//!
//! Start times are the kernel's exact boot-time nanoseconds, learned from
//! the probes' records; /proc gives them only in clock ticks, so a process
//! seeded from /proc has none until it sends an event.

use std::collections::HashMap;
use std::fs;

/// What the table knows of one live process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessEntry {
    pub exe: String,
    pub argv: Vec<String>,
    /// The parent at creation (0: unknown).
    pub ppid: u32,
    /// CLOCK_BOOTTIME ns at creation, once a record told it.
    pub start_ns: Option<u64>,
    /// The parent's, when the create record told it.
    pub parent_start_ns: Option<u64>,
}

/// Live processes by pid.
#[derive(Debug, Default)]
pub struct ProcessTable {
    procs: HashMap<u32, ProcessEntry>,
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
            let Ok(exe) = fs::read_link(entry.path().join("exe")) else { continue };
            let argv = fs::read(entry.path().join("cmdline")).map(|b| split_nul(&b)).unwrap_or_default();
            let ppid = fs::read_to_string(entry.path().join("stat")).ok().and_then(|s| stat_ppid(&s)).unwrap_or(0);
            let entry = ProcessEntry { exe: exe.to_string_lossy().into_owned(), argv, ppid, ..Default::default() };
            table.procs.insert(pid, entry);
        }
        table
    }

    /// A new process: it runs its parent's image with its parent's
    /// arguments until it execs.
    pub fn created(&mut self, pid: u32, ppid: u32, exe: &str, start_ns: u64, parent_start_ns: u64) {
        let argv = self.procs.get(&ppid).map(|p| p.argv.clone()).unwrap_or_default();
        if let Some(parent) = self.procs.get_mut(&ppid) {
            parent.start_ns.get_or_insert(parent_start_ns);
        }
        let entry = ProcessEntry {
            exe: exe.to_string(),
            argv,
            ppid,
            start_ns: Some(start_ns),
            parent_start_ns: Some(parent_start_ns),
        };
        self.procs.insert(pid, entry);
        if self.procs.len() > PRUNE_ABOVE {
            self.procs.retain(|pid, _| fs::metadata(format!("/proc/{pid}")).is_ok());
        }
    }

    /// The process now runs `exe` with `argv`; returns the image it ran
    /// before, if known.
    pub fn exec(&mut self, pid: u32, exe: &str, argv: &[String]) -> Option<String> {
        let entry = self.procs.entry(pid).or_default();
        entry.argv = argv.to_vec();
        let old = std::mem::replace(&mut entry.exe, exe.to_string());
        (!old.is_empty()).then_some(old)
    }

    /// A record said `pid` started at `start_ns`. A different start time
    /// than the table's means the pid was reused while an exit was lost:
    /// what the table knew belonged to the other process.
    pub fn started_at(&mut self, pid: u32, start_ns: u64) {
        let entry = self.procs.entry(pid).or_default();
        match entry.start_ns {
            Some(known) if known != start_ns => {
                *entry = ProcessEntry { start_ns: Some(start_ns), ..Default::default() };
            }
            _ => entry.start_ns = Some(start_ns),
        }
    }

    /// What the table knows of `pid`.
    pub fn get(&self, pid: u32) -> Option<&ProcessEntry> {
        self.procs.get(&pid)
    }

    /// The image `pid` runs now, if known.
    pub fn exe(&self, pid: u32) -> Option<&str> {
        self.procs.get(&pid).map(|p| p.exe.as_str()).filter(|e| !e.is_empty())
    }

    /// The parent of `pid` and its start time, as far as known.
    pub fn parent(&self, pid: u32) -> Option<(u32, Option<u64>)> {
        let entry = self.procs.get(&pid)?;
        if entry.ppid == 0 {
            return None;
        }
        let start = entry.parent_start_ns.or_else(|| self.procs.get(&entry.ppid).and_then(|p| p.start_ns));
        Some((entry.ppid, start))
    }

    /// The process is gone.
    pub fn exited(&mut self, pid: u32) {
        self.procs.remove(&pid);
    }

    /// How many processes the table holds.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.procs.len()
    }
}

fn split_nul(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes.split(|&b| b == 0).map(|s| String::from_utf8_lossy(s).into_owned()).collect()
}

/// The ppid of a /proc/PID/stat line: the fourth field, counted after the
/// comm, which may hold spaces and parentheses.
fn stat_ppid(stat: &str) -> Option<u32> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_returns_previous_image_and_exit_forgets() {
        let mut t = ProcessTable::default();
        t.created(10, 1, "/usr/bin/bash", 5, 1);
        assert_eq!(t.exec(10, "/usr/bin/ls", &["ls".into()]).as_deref(), Some("/usr/bin/bash"));
        assert_eq!(t.exec(10, "/usr/bin/cat", &[]).as_deref(), Some("/usr/bin/ls"));
        t.exited(10);
        assert_eq!(t.exec(10, "/x", &[]), None);
    }

    #[test]
    fn a_child_inherits_argv_and_knows_its_parent_start() {
        let mut t = ProcessTable::default();
        t.created(10, 1, "/usr/bin/bash", 500, 100);
        t.exec(10, "/usr/bin/python3", &["python3".into(), "x.py".into()]);
        t.created(11, 10, "/usr/bin/python3", 600, 500);
        assert_eq!(t.get(11).unwrap().argv, ["python3", "x.py"]);
        assert_eq!(t.parent(11), Some((10, Some(500))));
        assert_eq!(t.parent(10), Some((1, Some(100))));
    }

    #[test]
    fn a_reused_pid_forgets_the_old_process() {
        let mut t = ProcessTable::default();
        t.created(10, 1, "/usr/bin/bash", 500, 100);
        t.started_at(10, 500);
        assert_eq!(t.exe(10), Some("/usr/bin/bash"));
        t.started_at(10, 900);
        assert_eq!(t.exe(10), None);
        assert_eq!(t.get(10).unwrap().start_ns, Some(900));
    }

    #[test]
    fn stat_ppid_survives_odd_names() {
        assert_eq!(stat_ppid("42 (a) b (c)) S 17 42 42 0"), Some(17));
        assert_eq!(stat_ppid("1 (systemd) S 0 1 1"), Some(0));
    }

    #[test]
    fn seeding_from_proc_knows_ourselves_and_our_parent() {
        let t = ProcessTable::from_proc();
        assert!(t.len() > 0);
        let me = t.get(std::process::id()).unwrap();
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
        assert!(!me.argv.is_empty());
    }
}
