//! From ring-buffer bytes to numbered, timestamped, enriched events.
//!
//! The sensor is where sequence numbers are given out, so it is also where
//! losses before it become visible: a record the kernel could not write, or
//! one that failed decoding, takes up sequence numbers like any event, and a
//! `loss` event stands in for them.

pub mod clock;
pub mod host_paths;
pub mod process_table;
pub mod remote_policy;
pub mod stats;
pub mod takeover_repeats;

use rsysmon_blocker::BlockedExec;
use std::sync::Arc;

use rsysmon_event::{Detail, Event, EventKind, Host, LossStage, Termination};
use rsysmon_probe::{decode, Header, KernelRecord};

use crate::sensor::clock::BootClock;
use crate::sensor::host_paths::HostMounts;
use crate::sensor::process_table::ProcessTable;
use crate::sensor::remote_policy::RemoteThreadPolicy;
use crate::sensor::stats::Stats;
use crate::sensor::takeover_repeats::{Takeover, TakeoverRepeats};

/// Turns records into events. Single-threaded: it runs in the reader loop.
pub struct Sensor {
    host: Arc<Host>,
    clock: BootClock,
    table: ProcessTable,
    remote_policy: RemoteThreadPolicy,
    mounts: HostMounts,
    takeovers: TakeoverRepeats,
    last_seq: u64,
    kernel_losses_seen: u64,
    stats: Stats,
}

impl Sensor {
    pub fn new(
        host: Arc<Host>,
        clock: BootClock,
        table: ProcessTable,
        mounts: HostMounts,
        remote_policy: RemoteThreadPolicy,
    ) -> Self {
        Self {
            host,
            clock,
            table,
            remote_policy,
            mounts,
            takeovers: TakeoverRepeats::default(),
            last_seq: 0,
            kernel_losses_seen: 0,
            stats: Stats::default(),
        }
    }

    /// One ring-buffer record. A record that fails decoding comes back as a
    /// `loss` event for the decode stage, never as a panic; a remote thread
    /// from an allow-listed creator comes back as nothing (and is counted),
    /// and so does a takeover, held back to be counted with its repeats
    /// (see [`Sensor::due_takeovers`]).
    pub fn on_record(&mut self, bytes: &[u8]) -> Option<Event> {
        match decode(bytes) {
            Ok(KernelRecord::ProcessTamper { header, creator }) => {
                self.takeovers.add(header, creator).map(|t| self.takeover(t))
            }
            Ok(KernelRecord::RemoteThread { creator, .. })
                if self.remote_policy.allows(self.table.exe(creator.pid)) =>
            {
                self.stats.count_allowed_remote_thread();
                None
            }
            Ok(record) => Some(self.event(record)),
            Err(e) => {
                tracing::debug!(len = bytes.len(), "ring-buffer record skipped: {e}");
                self.stats.decode_failed(e.to_string());
                Some(self.loss(1, LossStage::Decode, BootClock::boot_now_ns()))
            }
        }
    }

    /// The kernel's running total of dropped records. When it has grown, a
    /// `loss` event for the difference.
    pub fn on_kernel_losses(&mut self, total: u64) -> Option<Event> {
        let new = total.checked_sub(self.kernel_losses_seen).filter(|&n| n > 0)?;
        self.kernel_losses_seen = total;
        Some(self.loss(new, LossStage::Kernel, BootClock::boot_now_ns()))
    }

    /// An exec the blocker refused. It was answered on the blocker's
    /// thread; here it only gets its sequence number.
    pub fn on_blocked_exec(&mut self, blocked: BlockedExec) -> Event {
        self.last_seq += 1;
        self.stats.count_kind(EventKind::ExecBlocked);
        let detail = Detail::ExecBlocked { path: blocked.path, rule: blocked.rule };
        let mut event = Event::new(self.last_seq, blocked.time.into(), blocked.pid, blocked.pid, blocked.comm, detail);
        event.host = self.host.clone();
        event
    }

    /// `process-tamper` events whose repeat window has closed by `now_ns`
    /// (CLOCK_BOOTTIME), each counting its repeats; with `all`, every one
    /// still held, as when the pipeline stops.
    pub fn due_takeovers(&mut self, now_ns: u64, all: bool) -> Vec<Event> {
        let due = if all { self.takeovers.drain() } else { self.takeovers.due(now_ns) };
        due.into_iter().map(|t| self.takeover(t)).collect()
    }

    fn takeover(&mut self, t: Takeover) -> Event {
        let Takeover { header, creator, count, .. } = t;
        let detail = Detail::ProcessTamper {
            creator_pid: creator.pid,
            creator_tid: creator.tid,
            creator_comm: creator.comm,
            method: creator.method.name().to_string(),
            count,
        };
        self.numbered(header, detail)
    }

    /// Counts so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    fn loss(&mut self, lost: u64, stage: LossStage, time_ns: u64) -> Event {
        self.last_seq += lost;
        self.stats.count_loss(stage, lost);
        self.stats.count_kind(EventKind::Loss);
        let mut event =
            Event::new(self.last_seq, self.clock.to_utc(time_ns), 0, 0, String::new(), Detail::Loss { lost, stage });
        event.host = self.host.clone();
        event
    }

    fn event(&mut self, record: KernelRecord) -> Event {
        let header = record.header().clone();
        let detail = match record {
            KernelRecord::ProcessCreate { ppid, creator_tid, uid, gid, parent_comm, exe, .. } => {
                let exe = exe.display();
                self.table.created(header.pid, &exe);
                Detail::ProcessCreate { ppid, parent_comm, creator_tid, uid, gid, user: None, group: None, exe }
            }
            KernelRecord::ProcessExec { old_tid, exe, argv, argv_truncated, cwd, .. } => {
                let exe = exe.display();
                let old_exe = self.table.exec(header.pid, &exe);
                Detail::ProcessExec {
                    exe,
                    argv,
                    argv_truncated,
                    cwd: cwd.display(),
                    old_exe,
                    old_tid,
                    ns_view: false,
                    parent_exe: None,
                    parent_argv: None,
                    hash: Default::default(),
                }
            }
            KernelRecord::ProcessExit { status, start_time_ns, .. } => {
                self.table.exited(header.pid);
                let t = Termination::from_wait_status(status);
                Detail::ProcessExit {
                    exit_code: t.exit_code,
                    signal: t.signal,
                    core_dumped: t.core_dumped,
                    lifetime_ns: header.time_ns.saturating_sub(start_time_ns),
                }
            }
            KernelRecord::ThreadCreate { creator_tid, .. } => Detail::ThreadCreate { creator_tid },
            KernelRecord::ImageLoad { base, size, file, path, fs_path, via, blocked, .. } => {
                let seen = path.display();
                // A mount of another namespace: the host path comes from where
                // the host mounts that file system. When it mounts it nowhere,
                // the process's view is all there is, and ns_path repeats it.
                let (path, ns_path) = match fs_path {
                    None => (seen, None),
                    Some(fs_path) => match self.mounts.host_path(file.dev, &fs_path) {
                        Some(host) if host == seen => (host, None),
                        Some(host) => (host, Some(seen)),
                        None => (seen.clone(), Some(seen)),
                    },
                };
                Detail::ImageLoad {
                    base,
                    size,
                    path,
                    ns_path,
                    dev: file.dev,
                    inode: file.ino,
                    via,
                    blocked,
                    hash: Default::default(),
                }
            }
            KernelRecord::ThreadExit { status, .. } => {
                let t = Termination::from_wait_status(status);
                Detail::ThreadExit { exit_code: t.exit_code, signal: t.signal }
            }
            KernelRecord::ProcessTamper { header, creator } => return self.takeover(Takeover::new(header, creator)),
            KernelRecord::RemoteThread { target_creator_tid, creator, tamper_time_ns, .. } => Detail::RemoteThread {
                target_creator_tid,
                creator_pid: creator.pid,
                creator_tid: creator.tid,
                creator_comm: creator.comm,
                method: creator.method.name().to_string(),
                tamper_time: self.clock.to_utc(tamper_time_ns),
            },
        };
        self.numbered(header, detail)
    }

    /// The next sequence number for an event about `header`'s thread.
    fn numbered(&mut self, header: Header, detail: Detail) -> Event {
        self.last_seq += 1;
        let mut event =
            Event::new(self.last_seq, self.clock.to_utc(header.time_ns), header.pid, header.tid, header.comm, detail);
        event.host = self.host.clone();
        self.stats.count_kind(event.kind());
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sensor() -> Sensor {
        Sensor::new(
            Arc::new(Host::from_system()),
            BootClock::now(),
            ProcessTable::default(),
            HostMounts::from_self(),
            RemoteThreadPolicy::default(),
        )
    }

    #[test]
    fn bad_records_become_decode_losses_with_their_own_seq() {
        let mut s = sensor();
        let e = s.on_record(&[1, 2, 3]).unwrap();
        assert_eq!(e.seq, 1);
        assert_eq!(e.detail, Detail::Loss { lost: 1, stage: LossStage::Decode });
        assert_eq!(s.stats().lost(LossStage::Decode), 1);
    }

    #[test]
    fn the_newest_decode_error_is_kept_with_its_reason() {
        let mut s = sensor();
        assert_eq!(s.stats().last_decode_error(), None);
        s.on_record(&[1, 2, 3]);
        let first = s.stats().last_decode_error().unwrap().to_string();
        assert!(first.contains("3 bytes"), "{first}");
        s.on_record(&[]);
        let newest = s.stats().last_decode_error().unwrap();
        assert!(newest.contains("0 bytes") && newest != first, "{newest}");
    }

    #[test]
    fn blocked_execs_are_numbered_with_the_kernel_events() {
        let mut s = sensor();
        s.on_record(&[]);
        let time = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let e = s.on_blocked_exec(BlockedExec {
            pid: 7,
            comm: "sh".into(),
            path: "/tmp/evil".into(),
            rule: "/tmp/evil".into(),
            time,
        });
        assert_eq!((e.seq, e.pid, e.tid, e.comm.as_str()), (2, 7, 7, "sh"));
        assert_eq!(e.time.timestamp(), 1_700_000_000);
        assert_eq!(e.detail, Detail::ExecBlocked { path: "/tmp/evil".into(), rule: "/tmp/evil".into() });
        assert_eq!(s.on_kernel_losses(1).unwrap().seq, 3);
    }

    #[test]
    fn kernel_losses_take_the_seq_numbers_of_the_lost_events() {
        let mut s = sensor();
        s.on_record(&[]);
        assert!(s.on_kernel_losses(0).is_none());
        let loss = s.on_kernel_losses(5).unwrap();
        assert_eq!((loss.seq, loss.weight()), (6, 5));
        assert!(s.on_kernel_losses(5).is_none());
        let loss = s.on_kernel_losses(7).unwrap();
        assert_eq!((loss.seq, loss.weight()), (8, 2));
        assert_eq!(s.stats().lost(LossStage::Kernel), 7);
    }
}
