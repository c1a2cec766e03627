//! From ring-buffer bytes to numbered, timestamped, enriched events.
//!
//! The sensor is where sequence numbers are given out, so it is also where
//! losses before it become visible: a record the kernel could not write, or
//! one that failed decoding, takes up sequence numbers like any event, and a
//! `loss` event stands in for them.

pub mod clock;
pub mod container;
pub mod filter;
pub mod host_paths;
pub mod identity;
pub mod process_table;
pub mod remote_policy;
pub mod stats;
pub mod takeover_repeats;

use rsysmon_blocker::BlockedExec;
use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use rsysmon_event::{Detail, Event, EventKind, FileHash, HashStatus, Host, LossStage, ProcessContext, Termination};
use rsysmon_fs::FileId;
use rsysmon_hash::{HashDone, HashFor, Hasher};
use rsysmon_probe::{decode, Header, KernelRecord};

use crate::sensor::clock::BootClock;
use crate::sensor::container::Containers;
use crate::sensor::filter::{Field, SharedFilter};
use crate::sensor::host_paths::HostMounts;
use crate::sensor::identity::Identity;
use crate::sensor::process_table::ProcessTable;
use crate::sensor::remote_policy::RemoteThreadPolicy;
use crate::sensor::stats::Stats;
use crate::sensor::takeover_repeats::{Takeover, TakeoverRepeats};

/// Turns records into events. Single-threaded: it runs in the reader loop.
pub struct Sensor {
    host: Arc<Host>,
    identity: Identity,
    containers: Containers,
    hasher: Option<Hasher>,
    clock: BootClock,
    table: ProcessTable,
    remote_policy: RemoteThreadPolicy,
    mounts: HostMounts,
    takeovers: TakeoverRepeats,
    last_seq: u64,
    kernel_losses_seen: u64,
    stats: Stats,
    filter: SharedFilter,
    /// Executables of the processes that exited last, for the filter
    /// rules: on kernels before 6.14 a thread's exit can be reported after
    /// its process's.
    recent_exits: std::collections::VecDeque<(u32, String)>,
}

/// Exited processes whose executable the filter rules still know.
const RECENT_EXITS: usize = 256;

impl Sensor {
    pub fn new(
        host: Arc<Host>,
        clock: BootClock,
        table: ProcessTable,
        mounts: HostMounts,
        remote_policy: RemoteThreadPolicy,
    ) -> Self {
        Self {
            identity: Identity::new(&host),
            host,
            containers: Containers::default(),
            hasher: None,
            clock,
            table,
            remote_policy,
            mounts,
            takeovers: TakeoverRepeats::default(),
            last_seq: 0,
            kernel_losses_seen: 0,
            stats: Stats::default(),
            filter: SharedFilter::default(),
            recent_exits: std::collections::VecDeque::with_capacity(RECENT_EXITS),
        }
    }

    /// Report only what `filter`'s rules keep (whatever they are when an
    /// event comes: a reload swaps them).
    pub fn with_filter(mut self, filter: SharedFilter) -> Self {
        self.filter = filter;
        self
    }

    /// Hash programs and images with `hasher`; without one, events say
    /// `hash_status: disabled`.
    pub fn with_hasher(mut self, hasher: Hasher) -> Self {
        self.hasher = Some(hasher);
        self
    }

    /// Hashes finished since the last call, as `image-hash` events.
    pub fn on_hashes_done(&mut self) -> Vec<Event> {
        let done: Vec<HashDone> = match &self.hasher {
            Some(h) => h.finished().collect(),
            None => return Vec::new(),
        };
        done.into_iter().map(|d| self.hash_event(d)).collect()
    }

    fn hash_event(&mut self, done: HashDone) -> Event {
        self.last_seq += 1;
        self.stats.count_kind(EventKind::ImageHash);
        let (pid, comm) = (done.event.pid, done.event.comm);
        let detail = Detail::ImageHash {
            for_seq: done.event.seq,
            path: done.event.path,
            dev: done.file.dev,
            inode: done.file.ino,
            hash: done.hash,
        };
        let mut event = Event::new(self.last_seq, chrono::Utc::now(), pid, pid, comm, detail);
        event.host = self.host.clone();
        event.process = self.known_context(pid);
        event
    }

    /// One ring-buffer record. A record that fails decoding comes back as a
    /// `loss` event for the decode stage, never as a panic; a remote thread
    /// from an allow-listed creator comes back as nothing (and is counted),
    /// and so does a takeover, held back to be counted with its repeats
    /// (see [`Sensor::due_takeovers`]).
    pub fn on_record(&mut self, bytes: &[u8]) -> Option<Event> {
        match decode(bytes) {
            Ok(KernelRecord::ProcessTamper { header, creator }) => {
                self.takeovers.add(header, creator).and_then(|t| self.takeover(t))
            }
            Ok(KernelRecord::RemoteThread { creator, .. })
                if self.remote_policy.allows(self.table.exe(creator.pid)) =>
            {
                self.stats.count_allowed_remote_thread();
                None
            }
            Ok(record) => self.event(record),
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
        event.process = self.known_context(blocked.pid);
        event
    }

    /// `process-tamper` events whose repeat window has closed by `now_ns`
    /// (CLOCK_BOOTTIME), each counting its repeats; with `all`, every one
    /// still held, as when the pipeline stops.
    pub fn due_takeovers(&mut self, now_ns: u64, all: bool) -> Vec<Event> {
        let due = if all { self.takeovers.drain() } else { self.takeovers.due(now_ns) };
        due.into_iter().filter_map(|t| self.takeover(t)).collect()
    }

    fn takeover(&mut self, t: Takeover) -> Option<Event> {
        let Takeover { header, creator, count, .. } = t;
        let detail = Detail::ProcessTamper {
            creator_pid: creator.pid,
            creator_tid: creator.tid,
            creator_comm: creator.comm,
            method: creator.method.name().to_string(),
            count,
        };
        self.numbered(header, detail, false)
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

    /// The event of a record, or None if the filter rules drop it.
    fn event(&mut self, record: KernelRecord) -> Option<Event> {
        let header = record.header().clone();
        // The file to hash, once the event is kept and numbered: a dropped
        // event costs no hashing.
        let mut to_hash: Option<(PathBuf, FileId, String)> = None;
        if !matches!(record, KernelRecord::ProcessCreate { .. }) && header.start_ns != 0 {
            self.table.started_at(header.pid, header.start_ns);
        }
        let mut exited = false;
        let detail = match record {
            KernelRecord::ProcessCreate { ppid, parent_start_ns, creator_tid, uid, gid, parent_comm, exe, .. } => {
                let exe = exe.display();
                self.table.created(header.pid, ppid, &exe, header.start_ns, parent_start_ns);
                let (user, group) = (self.identity.user(uid), self.identity.group(gid));
                Detail::ProcessCreate { ppid, parent_comm, creator_tid, uid, gid, user, group, exe }
            }
            KernelRecord::ProcessExec { old_tid, exe, exe_file, argv, argv_truncated, cwd, .. } => {
                let ns_view = self.identity.other_mount_ns(header.mnt_ns);
                let shown = exe.display();
                let old_exe = self.table.exec(header.pid, &shown, &argv);
                let parent = self.table.parent(header.pid).and_then(|(ppid, _)| self.table.get(ppid));
                let parent_exe = parent.map(|p| p.exe.clone()).filter(|e| !e.is_empty());
                let parent_argv = parent.map(|p| p.argv.clone()).filter(|a| !a.is_empty());
                // The program is opened through /proc/PID/exe when its path
                // is not a host path: a memfd, a deleted file, another mount
                // namespace.
                let open = if ns_view || exe.deleted || exe.truncated || exe.disconnected {
                    Hasher::proc_exe(header.pid)
                } else {
                    PathBuf::from(&shown)
                };
                to_hash = Some((open, exe_file, shown.clone()));
                let hash = self.no_hash(HashStatus::Disabled);
                Detail::ProcessExec {
                    exe: shown,
                    argv,
                    argv_truncated,
                    cwd: cwd.display(),
                    old_exe,
                    old_tid,
                    ns_view,
                    parent_exe,
                    parent_argv,
                    hash,
                }
            }
            KernelRecord::ProcessExit { status, start_time_ns, .. } => {
                exited = true;
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
                let (shown, ns_path, open) = match fs_path {
                    None => (seen.clone(), None, Some(PathBuf::from(&seen))),
                    Some(fs_path) => match self.mounts.host_path(file.dev, &fs_path) {
                        Some(host) if host == seen => (host.clone(), None, Some(PathBuf::from(host))),
                        Some(host) => (host.clone(), Some(seen), Some(PathBuf::from(host))),
                        None => {
                            let open = PathBuf::from(format!("/proc/{}/root{seen}", header.pid));
                            (seen.clone(), Some(seen), Some(open))
                        }
                    },
                };
                // A deleted or memfd image has no path to open; its mapping
                // is not looked for.
                let hash = match open {
                    Some(open) if !(path.deleted || path.truncated || path.disconnected) => {
                        to_hash = Some((open, file, shown.clone()));
                        self.no_hash(HashStatus::Disabled)
                    }
                    _ => self.no_hash(HashStatus::Unreachable),
                };
                Detail::ImageLoad {
                    base,
                    size,
                    path: shown,
                    ns_path,
                    dev: file.dev,
                    inode: file.ino,
                    via,
                    blocked,
                    hash,
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
        let mut event = self.numbered(header, detail, exited)?;
        if let Some((open, file, shown)) = to_hash {
            let found = self.hash(open, file, event.seq, event.pid, &event.comm, &shown);
            if let Detail::ProcessExec { hash, .. } | Detail::ImageLoad { hash, .. } = &mut event.detail {
                *hash = found;
            }
        }
        Some(event)
    }

    /// The next sequence number for an event about `header`'s thread, or
    /// None (and no number) if the filter rules drop it; with `exited`, the
    /// process leaves the table once its context is taken.
    fn numbered(&mut self, header: Header, detail: Detail, exited: bool) -> Option<Event> {
        let process = self.context(&header);
        let mut event = Event::new(
            self.last_seq + 1,
            self.clock.to_utc(header.time_ns),
            header.pid,
            header.tid,
            header.comm,
            detail,
        );
        event.host = self.host.clone();
        event.process = process;
        let kept = self.filter.load().keeps(&event, &|field| self.field(&event, field));
        if exited {
            if let Some(exe) = self.table.exe(event.pid) {
                if self.recent_exits.len() == RECENT_EXITS {
                    self.recent_exits.pop_front();
                }
                self.recent_exits.push_back((event.pid, exe.to_string()));
            }
            self.table.exited(event.pid);
        }
        if !kept {
            self.stats.count_filtered(event.kind());
            return None;
        }
        self.last_seq += 1;
        self.stats.count_kind(event.kind());
        Some(event)
    }

    /// A field of `event` for the filter rules; what the event does not
    /// carry comes from the process table.
    fn field<'a>(&'a self, event: &'a Event, field: Field) -> Option<Cow<'a, str>> {
        let table_exe = |pid: u32| {
            let exited = || self.recent_exits.iter().rev().find(|(p, _)| *p == pid).map(|(_, exe)| exe.as_str());
            self.table.exe(pid).or_else(exited).filter(|e| !e.is_empty()).map(Cow::Borrowed)
        };
        let parent = || self.table.parent(event.pid).map(|(ppid, _)| ppid);
        match (field, &event.detail) {
            (Field::Exe, Detail::ProcessCreate { exe, .. } | Detail::ProcessExec { exe, .. }) => {
                Some(Cow::Borrowed(exe))
            }
            (Field::Exe, _) => table_exe(event.pid),
            (Field::Path, Detail::ImageLoad { path, .. } | Detail::ProcessExec { exe: path, .. }) => {
                Some(Cow::Borrowed(path))
            }
            (Field::Path, _) => None,
            (Field::Argv, Detail::ProcessExec { argv, .. }) => Some(Cow::Owned(argv.join(" "))),
            (Field::Argv, _) => {
                self.table.get(event.pid).filter(|p| !p.argv.is_empty()).map(|p| Cow::Owned(p.argv.join(" ")))
            }
            (Field::Comm, _) => Some(Cow::Borrowed(&event.comm)),
            (Field::Uid, Detail::ProcessCreate { uid, .. }) => Some(Cow::Owned(uid.to_string())),
            (Field::Uid, _) => None,
            (Field::ParentExe, Detail::ProcessExec { parent_exe: Some(exe), .. }) => Some(Cow::Borrowed(exe)),
            (Field::ParentExe, Detail::ProcessCreate { ppid, .. }) => table_exe(*ppid),
            (Field::ParentExe, _) => parent().and_then(table_exe),
            (Field::ContainerId, _) => event.process.container_id.as_deref().map(Cow::Borrowed),
        }
    }

    /// The process context of a record's header.
    fn context(&mut self, h: &Header) -> ProcessContext {
        let nonzero = |n: u32| (n != 0).then_some(u64::from(n));
        ProcessContext {
            entity_id: (h.start_ns != 0).then(|| self.identity.entity_id(h.pid, h.start_ns)),
            parent_entity_id: self.parent_entity_id(h.pid),
            start: (h.start_ns != 0).then(|| self.clock.to_utc(h.start_ns)),
            ns_pid: (h.ns_pid != 0 && h.ns_pid != h.pid).then_some(h.ns_pid),
            ns_tid: (h.ns_tid != 0 && h.ns_tid != h.tid).then_some(h.ns_tid),
            pid_ns: nonzero(h.pid_ns),
            mnt_ns: nonzero(h.mnt_ns),
            cgroup_id: (h.cgroup_id != 0).then_some(h.cgroup_id),
            container_id: self.containers.of(h.cgroup_id, h.pid),
        }
    }

    /// The context of an event from outside the probes (a blocked exec, a
    /// finished hash): what the process table knows of `pid`.
    fn known_context(&mut self, pid: u32) -> ProcessContext {
        let start_ns = self.table.get(pid).and_then(|p| p.start_ns);
        ProcessContext {
            entity_id: start_ns.map(|s| self.identity.entity_id(pid, s)),
            parent_entity_id: self.parent_entity_id(pid),
            start: start_ns.map(|s| self.clock.to_utc(s)),
            ..Default::default()
        }
    }

    fn parent_entity_id(&mut self, pid: u32) -> Option<String> {
        let (ppid, start) = self.table.parent(pid)?;
        Some(self.identity.entity_id(ppid, start?))
    }

    /// The hash of the file an event of `header` names as `shown`, opened
    /// as `open`, for event `seq`.
    fn hash(&mut self, open: PathBuf, file: FileId, seq: u64, pid: u32, comm: &str, shown: &str) -> FileHash {
        let Some(hasher) = &self.hasher else { return FileHash::without(HashStatus::Disabled) };
        let event = HashFor { seq, pid, comm: comm.to_string(), path: shown.to_string() };
        hasher.lookup(&open, file, event)
    }

    fn no_hash(&self, status: HashStatus) -> FileHash {
        match self.hasher {
            Some(_) => FileHash::without(status),
            None => FileHash::without(HashStatus::Disabled),
        }
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
