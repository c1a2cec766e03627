//! The event model: what every event carries, and what each kind adds.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::host::Host;
use crate::kind::EventKind;

/// One thing that happened, as rsysmon reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Strictly increasing; a number a reader never sees was lost, and a
    /// `loss` event says so (see [`Detail::Loss`]).
    pub seq: u64,
    /// Wall-clock time of the event in the kernel.
    #[serde(serialize_with = "rfc3339_nanos")]
    pub time: DateTime<Utc>,
    /// The host: shared by every event of a run.
    #[serde(serialize_with = "shared_host")]
    pub host: Arc<Host>,
    /// Process (thread group) id, in the initial pid namespace.
    pub pid: u32,
    /// Thread id, in the initial pid namespace.
    pub tid: u32,
    /// Process name: the comm of the process's main thread at the event.
    pub comm: String,
    /// Who the process is beyond its pid; empty for `loss` events.
    #[serde(flatten)]
    pub process: ProcessContext,
    #[serde(flatten)]
    pub detail: Detail,
}

/// What names a process beyond its pid: its identity for its whole life,
/// its parent's, and where it runs (namespaces, container). Every field is
/// left out of the JSON when unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProcessContext {
    /// Stable for the process's whole life (across exec), unique across
    /// pid reuse, boots and hosts: hex of the first 16 bytes of
    /// SHA-256(machine id, boot id, pid, start time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    /// The parent's `entity_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_entity_id: Option<String>,
    /// When the process started, CLOCK_BOOTTIME nanoseconds converted to
    /// wall-clock time.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_rfc3339_nanos")]
    pub start: Option<DateTime<Utc>>,
    /// Pid in the process's own pid namespace, when it differs from `pid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ns_pid: Option<u32>,
    /// Tid in the process's own pid namespace, when it differs from `tid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ns_tid: Option<u32>,
    /// Inode number of the process's pid namespace (`/proc/PID/ns/pid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid_ns: Option<u64>,
    /// Inode number of its mount namespace (`/proc/PID/ns/mnt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mnt_ns: Option<u64>,
    /// Id of its cgroup (v2): the inode of its directory under /sys/fs/cgroup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_id: Option<u64>,
    /// Container id from the cgroup path (docker, containerd, CRI-O, podman).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
}

/// What each kind of event adds to the common fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Detail {
    /// A new process. `pid`/`tid` are the child's.
    ProcessCreate {
        ppid: u32,
        parent_comm: String,
        /// The thread in the parent that called fork/clone.
        creator_tid: u32,
        uid: u32,
        gid: u32,
        /// Name of `uid`, resolved in user space (cached); None if unknown.
        #[serde(skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        /// Name of `gid`, resolved in user space (cached); None if unknown.
        #[serde(skip_serializing_if = "Option::is_none")]
        group: Option<String>,
        /// Image inherited from the parent.
        exe: String,
    },
    /// The process replaced its image.
    ProcessExec {
        exe: String,
        argv: Vec<String>,
        /// argv was longer than the probe's bound and is cut short.
        argv_truncated: bool,
        cwd: String,
        /// The image before this exec, when known.
        old_exe: Option<String>,
        /// The thread that called execve; differs from `tid` when a
        /// non-leader thread exec'd and took over the process id.
        old_tid: u32,
        /// `exe` and `cwd` are paths in the process's own mount namespace
        /// (a container), not host paths.
        ns_view: bool,
        /// The parent's image and arguments, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        parent_exe: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        parent_argv: Option<Vec<String>>,
        /// SHA-256 of `exe`, or why not (yet).
        #[serde(flatten)]
        hash: FileHash,
    },
    /// The last thread of the process exited.
    ProcessExit {
        exit_code: Option<i32>,
        signal: Option<i32>,
        core_dumped: bool,
        /// Nanoseconds from creation to exit.
        lifetime_ns: u64,
    },
    /// A new thread in process `pid`.
    ThreadCreate { creator_tid: u32 },
    /// A thread exited; the process lives on.
    ThreadExit { exit_code: Option<i32>, signal: Option<i32> },
    /// Another process wrote into this one (or attached to it).
    /// `pid`/`tid` are the target's.
    ProcessTamper {
        creator_pid: u32,
        creator_tid: u32,
        creator_comm: String,
        /// `ptrace-attach`, `ptrace-seize`, `ptrace-poke`, `ptrace-setregs`,
        /// `process-vm-writev` or `proc-mem`.
        method: String,
        /// Takeovers by the same creator process of the same target
        /// process with the same method that this event stands for: the
        /// first one and its repeats within a second.
        count: u64,
    },
    /// Thread `tid` was created in process `pid` while another process had
    /// taken it over: the Linux form of a remote thread.
    RemoteThread {
        /// The target's own thread that ran clone() on the creator's behalf.
        target_creator_tid: u32,
        creator_pid: u32,
        creator_tid: u32,
        creator_comm: String,
        /// How the creator took the target over (as in `process-tamper`).
        method: String,
        /// When the takeover happened.
        #[serde(serialize_with = "rfc3339_nanos")]
        tamper_time: DateTime<Utc>,
    },
    /// An exec refused by a blocking rule: execve failed with EPERM in
    /// process `pid`, which lives on.
    ExecBlocked {
        /// Real path of the refused file.
        path: String,
        /// The rule that matched, as `rsysmon block list` shows it.
        rule: String,
    },
    /// A file's code became runnable in the process: one event per image
    /// per process, not per segment.
    ImageLoad {
        /// Lowest address mapped from the file: the first line for it in
        /// /proc/PID/maps.
        base: u64,
        /// Extent of the image's mappings from `base`, .bss included for
        /// images the ELF loader maps.
        size: u64,
        /// Absolute path on the host (`memfd:NAME` for memfd images, ending
        /// in ` (deleted)` for unlinked files).
        path: String,
        /// The path as the process sees it, when its mount namespace shows
        /// the file elsewhere; else None.
        ns_path: Option<String>,
        /// Device of the file's file system, as stat(2) reports `st_dev`.
        dev: u64,
        inode: u64,
        /// What made it executable.
        via: ImageVia,
        /// The file is blocked: the process was killed before it could run
        /// an instruction of it, or, with `base` and `size` 0, the kernel
        /// refused the mapping (BPF LSM) and the caller got EPERM.
        blocked: bool,
        /// SHA-256 of the file, or why not (yet).
        #[serde(flatten)]
        hash: FileHash,
    },
    /// The hash of the program of a `process-exec` or the image of an
    /// `image-load` that said `hash_status: pending`.
    ImageHash {
        /// `seq` of the event this completes.
        for_seq: u64,
        path: String,
        dev: u64,
        inode: u64,
        #[serde(flatten)]
        hash: FileHash,
    },
    /// Events that were dropped. A loss event stands in for the `lost`
    /// events it replaces: its `seq` is that of the last of them, so
    /// `seq - lost` is the seq of the event before the gap.
    Loss { lost: u64, stage: LossStage },
}

/// A file's SHA-256 as an event carries it: the digest, or why there is none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileHash {
    /// Lower-case hex; present only when `hash_status` is `done`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub hash_status: HashStatus,
}

impl FileHash {
    /// A finished hash.
    pub fn done(sha256: String) -> Self {
        FileHash { sha256: Some(sha256), hash_status: HashStatus::Done }
    }

    /// No hash, for this reason.
    pub fn without(status: HashStatus) -> Self {
        FileHash { sha256: None, hash_status: status }
    }
}

/// Whether an event's file hash is there, coming, or why not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HashStatus {
    /// `sha256` holds the digest.
    Done,
    /// Being computed: an `image-hash` event with `for_seq` will carry it.
    Pending,
    /// Hashing is turned off.
    #[default]
    Disabled,
    /// Larger than `[hashing] max_size`.
    TooLarge,
    /// Not hashed within `[hashing] time_budget_ms`.
    OverBudget,
    /// The file cannot be opened by path from the host: a memfd, a deleted
    /// file, a path only another mount namespace shows.
    Unreachable,
    /// The file changed while it was read; hashing it again would give a
    /// file that is not the one that ran.
    Changed,
    /// Reading failed.
    Error,
}

impl HashStatus {
    /// The name used in output.
    pub fn name(self) -> &'static str {
        match self {
            HashStatus::Done => "done",
            HashStatus::Pending => "pending",
            HashStatus::Disabled => "disabled",
            HashStatus::TooLarge => "too-large",
            HashStatus::OverBudget => "over-budget",
            HashStatus::Unreachable => "unreachable",
            HashStatus::Changed => "changed",
            HashStatus::Error => "error",
        }
    }
}

/// What made an image executable in a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageVia {
    /// The program, mapped by the kernel at execve.
    Exec,
    /// Its ELF interpreter (ld-linux…), mapped by the kernel at execve.
    Interpreter,
    /// mmap with PROT_EXEC (the dynamic loader, dlopen, any loader).
    Mmap,
    /// mprotect adding PROT_EXEC to a mapping of the file.
    Mprotect,
}

/// Where in the pipeline events were dropped. Written as its
/// [`name`](LossStage::name): `kernel`, `queue`, `sink:file`, …
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LossStage {
    /// Lost in the kernel: the ring buffer was full when a probe fired, or
    /// an image could not be resolved because its address space was locked.
    Kernel,
    /// A record failed validation and was skipped.
    Decode,
    /// A bounded queue was full and its oldest were dropped: the daemon's
    /// history, `run`'s output queue, or the list of remote threads.
    Queue,
    /// A client fell behind and missed events.
    Client,
    /// A sink of the daemon (file, syslog, NATS) fell behind, or its
    /// destination was down for longer than its buffer lasts.
    Sink(SinkName),
}

/// The daemon's sinks, each with a loss stage of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SinkName {
    /// The rotating JSON-lines file.
    File,
    /// RFC 5424 syslog, local or remote.
    Syslog,
    /// NATS JetStream, for fleets.
    Nats,
}

impl SinkName {
    /// Every sink.
    pub const ALL: [SinkName; 3] = [SinkName::File, SinkName::Syslog, SinkName::Nats];

    /// The name used in configuration and output.
    pub fn name(self) -> &'static str {
        match self {
            SinkName::File => "file",
            SinkName::Syslog => "syslog",
            SinkName::Nats => "nats",
        }
    }
}

impl LossStage {
    /// Every stage, in pipeline order, the sinks last.
    pub const ALL: [LossStage; 7] = [
        LossStage::Kernel,
        LossStage::Decode,
        LossStage::Queue,
        LossStage::Client,
        LossStage::Sink(SinkName::File),
        LossStage::Sink(SinkName::Syslog),
        LossStage::Sink(SinkName::Nats),
    ];

    /// The name used in output.
    pub fn name(self) -> &'static str {
        match self {
            LossStage::Kernel => "kernel",
            LossStage::Decode => "decode",
            LossStage::Queue => "queue",
            LossStage::Client => "client",
            LossStage::Sink(SinkName::File) => "sink:file",
            LossStage::Sink(SinkName::Syslog) => "sink:syslog",
            LossStage::Sink(SinkName::Nats) => "sink:nats",
        }
    }
}

impl Serialize for LossStage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl Event {
    /// An event with no host and no process context: for events made
    /// outside the sensor (tests, tools). The sensor fills both.
    pub fn new(seq: u64, time: DateTime<Utc>, pid: u32, tid: u32, comm: String, detail: Detail) -> Self {
        Event { seq, time, host: Host::unknown(), pid, tid, comm, process: ProcessContext::default(), detail }
    }

    /// The kind of this event.
    pub fn kind(&self) -> EventKind {
        match self.detail {
            Detail::ProcessCreate { .. } => EventKind::ProcessCreate,
            Detail::ProcessExec { .. } => EventKind::ProcessExec,
            Detail::ProcessExit { .. } => EventKind::ProcessExit,
            Detail::ThreadCreate { .. } => EventKind::ThreadCreate,
            Detail::ThreadExit { .. } => EventKind::ThreadExit,
            Detail::ProcessTamper { .. } => EventKind::ProcessTamper,
            Detail::RemoteThread { .. } => EventKind::RemoteThread,
            Detail::ExecBlocked { .. } => EventKind::ExecBlocked,
            Detail::ImageLoad { .. } => EventKind::ImageLoad,
            Detail::ImageHash { .. } => EventKind::ImageHash,
            Detail::Loss { .. } => EventKind::Loss,
        }
    }

    /// How many events this one stands for: `lost` for a loss event, else 1.
    pub fn weight(&self) -> u64 {
        match self.detail {
            Detail::Loss { lost, .. } => lost,
            _ => 1,
        }
    }
}

/// How a task ended, from the wait(2) status word the kernel keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Termination {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub core_dumped: bool,
}

impl Termination {
    /// Split a wait status: low 7 bits the signal, bit 7 core dumped,
    /// bits 8–15 the exit code when no signal.
    pub fn from_wait_status(status: u32) -> Self {
        let signal = (status & 0x7f) as i32;
        if signal == 0 {
            Termination { exit_code: Some(((status >> 8) & 0xff) as i32), signal: None, core_dumped: false }
        } else {
            Termination { exit_code: None, signal: Some(signal), core_dumped: status & 0x80 != 0 }
        }
    }
}

fn shared_host<S: serde::Serializer>(host: &Arc<Host>, s: S) -> Result<S::Ok, S::Error> {
    host.as_ref().serialize(s)
}

fn opt_rfc3339_nanos<S: serde::Serializer>(time: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => rfc3339_nanos(time, s),
        None => s.serialize_none(),
    }
}

fn rfc3339_nanos<S: serde::Serializer>(time: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339_string(time))
}

/// RFC 3339 UTC with nanoseconds, the one time format of the JSON forms.
pub(crate) fn rfc3339_string(time: &DateTime<Utc>) -> String {
    // The fixed RFC 3339 writer: a format string would be parsed anew for
    // every event.
    time.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_status_splits_into_code_or_signal() {
        assert_eq!(
            Termination::from_wait_status(3 << 8),
            Termination { exit_code: Some(3), signal: None, core_dumped: false }
        );
        assert_eq!(
            Termination::from_wait_status(9),
            Termination { exit_code: None, signal: Some(9), core_dumped: false }
        );
        assert_eq!(
            Termination::from_wait_status(0x80 | 11),
            Termination { exit_code: None, signal: Some(11), core_dumped: true }
        );
    }
}
