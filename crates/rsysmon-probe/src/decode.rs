//! Turning ring-buffer bytes into typed records, without trusting them.
//!
//! Every record is checked before anything in it is used: long enough for
//! its header, a known kind, a `size` equal to the bytes received, long
//! enough for its kind's fixed part, and variable-length parts that add up
//! exactly to the rest. A record that fails any check is an error for the
//! caller to count and skip; nothing here panics on any input.

use rsysmon_event::ImageVia;

use crate::records::{
    exit_record, image_load_record, process_create_record, process_exec_record, record_header, record_image_flag,
    record_image_via, record_kind, record_path_flag, record_tamper_method, remote_thread_record, tamper_record,
    thread_create_record, RECORD_ARGV_MAX, RECORD_COMM_LEN, RECORD_MAX_SIZE, RECORD_PATH_MAX,
};
use crate::FileId;

/// Fields every record carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// CLOCK_BOOTTIME nanoseconds at the event.
    pub time_ns: u64,
    /// Thread group id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Process name (the thread group leader's comm).
    pub comm: String,
    /// CLOCK_BOOTTIME nanoseconds at the process's creation.
    pub start_ns: u64,
    /// Pid and tid in the task's own pid namespace.
    pub ns_pid: u32,
    pub ns_tid: u32,
    /// Inode numbers of its pid and mount namespaces (0: unknown).
    pub pid_ns: u32,
    pub mnt_ns: u32,
    /// Its cgroup v2 id (0: unknown).
    pub cgroup_id: u64,
}

/// A path as the probe resolved it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KernelPath {
    /// Components from the root down.
    pub components: Vec<String>,
    /// Leading components are missing (too deep or too long).
    pub truncated: bool,
    /// The file had been unlinked.
    pub deleted: bool,
    /// The walk did not end at the root of the mount tree.
    pub disconnected: bool,
}

/// One decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelRecord {
    ProcessCreate {
        header: Header,
        ppid: u32,
        /// The parent's start time (CLOCK_BOOTTIME ns).
        parent_start_ns: u64,
        creator_tid: u32,
        uid: u32,
        gid: u32,
        parent_comm: String,
        exe: KernelPath,
    },
    ProcessExec {
        header: Header,
        old_tid: u32,
        exe: KernelPath,
        /// The new program's file (device in stat(2)'s encoding).
        exe_file: FileId,
        argv: Vec<String>,
        argv_truncated: bool,
        cwd: KernelPath,
    },
    ProcessExit {
        header: Header,
        /// wait(2) status word.
        status: u32,
        start_time_ns: u64,
    },
    ThreadCreate {
        header: Header,
        creator_tid: u32,
    },
    ThreadExit {
        header: Header,
        status: u32,
        start_time_ns: u64,
    },
    ImageLoad {
        header: Header,
        /// Lowest address of the image's mappings.
        base: u64,
        /// Extent of the image's mappings.
        size: u64,
        /// The file (device in stat(2)'s encoding).
        file: FileId,
        /// The path as the process sees it.
        path: KernelPath,
        /// The path from the root of the file's file system, sent when the
        /// file's mount is in another mount namespace than the daemon's.
        fs_path: Option<KernelPath>,
        via: ImageVia,
        /// The file is blocked: the process was killed before running it.
        blocked: bool,
    },
    /// Another process wrote into (or attached to) the header's process.
    ProcessTamper {
        header: Header,
        creator: Creator,
    },
    /// A thread (header.tid) created in a process taken over by `creator`.
    RemoteThread {
        header: Header,
        /// The target's thread that ran clone().
        target_creator_tid: u32,
        creator: Creator,
        tamper_time_ns: u64,
    },
}

/// The process that took another over, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creator {
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    pub method: TamperMethod,
}

/// How one process took hold of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TamperMethod {
    PtraceAttach,
    PtraceSeize,
    PtracePoke,
    PtraceSetRegs,
    ProcessVmWritev,
    ProcMem,
}

impl Creator {
    fn new(pid: u32, tid: u32, raw_comm: &[std::os::raw::c_char], method: u32) -> Result<Self, DecodeError> {
        Ok(Creator { pid, tid, comm: comm(raw_comm), method: TamperMethod::from_raw(method)? })
    }
}

impl TamperMethod {
    /// The name used in events: `ptrace-setregs`, `process-vm-writev`, …
    pub fn name(self) -> &'static str {
        match self {
            TamperMethod::PtraceAttach => "ptrace-attach",
            TamperMethod::PtraceSeize => "ptrace-seize",
            TamperMethod::PtracePoke => "ptrace-poke",
            TamperMethod::PtraceSetRegs => "ptrace-setregs",
            TamperMethod::ProcessVmWritev => "process-vm-writev",
            TamperMethod::ProcMem => "proc-mem",
        }
    }

    fn from_raw(raw: u32) -> Result<Self, DecodeError> {
        Ok(match raw {
            record_tamper_method::TAMPER_PTRACE_ATTACH => TamperMethod::PtraceAttach,
            record_tamper_method::TAMPER_PTRACE_SEIZE => TamperMethod::PtraceSeize,
            record_tamper_method::TAMPER_PTRACE_POKE => TamperMethod::PtracePoke,
            record_tamper_method::TAMPER_PTRACE_SETREGS => TamperMethod::PtraceSetRegs,
            record_tamper_method::TAMPER_PROCESS_VM_WRITEV => TamperMethod::ProcessVmWritev,
            record_tamper_method::TAMPER_PROC_MEM => TamperMethod::ProcMem,
            other => return Err(DecodeError::UnknownMethod(other)),
        })
    }
}

impl KernelRecord {
    /// The common fields.
    pub fn header(&self) -> &Header {
        match self {
            KernelRecord::ProcessCreate { header, .. }
            | KernelRecord::ProcessExec { header, .. }
            | KernelRecord::ProcessExit { header, .. }
            | KernelRecord::ThreadCreate { header, .. }
            | KernelRecord::ThreadExit { header, .. }
            | KernelRecord::ProcessTamper { header, .. }
            | KernelRecord::RemoteThread { header, .. }
            | KernelRecord::ImageLoad { header, .. } => header,
        }
    }
}

/// Why a record was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record of {len} bytes is shorter than its {need}-byte {what}")]
    TooShort { len: usize, need: usize, what: &'static str },
    #[error("record of {len} bytes is longer than the {RECORD_MAX_SIZE}-byte maximum")]
    TooLong { len: usize },
    #[error("record says it is {said} bytes but {len} arrived")]
    SizeMismatch { said: u32, len: usize },
    #[error("unknown record kind {0}")]
    UnknownKind(u32),
    #[error("{what} has the unknown value {value}")]
    UnknownValue { what: &'static str, value: u32 },
    #[error("unknown tamper method {0}")]
    UnknownMethod(u32),
    #[error("variable-length fields of {fields} bytes do not match the {rest} bytes after the fixed part")]
    BadLengths { fields: usize, rest: usize },
    #[error("{what} of {len} bytes exceeds its {max}-byte bound")]
    FieldTooLong { what: &'static str, len: usize, max: u32 },
}

/// Plain data: a type for which every bit pattern is a valid value, so
/// [`read`] may build one from any bytes.
///
/// # Safety
///
/// Implement it only for `repr(C)` types made of integers and arrays of
/// them: no references, pointers, `bool`, enums or padding-sensitive
/// invariants.
unsafe trait Plain: Copy {}
// SAFETY: bindgen's layouts of records.h: repr(C) structs of integers and
// byte arrays only.
unsafe impl Plain for record_header {}
// SAFETY: as above.
unsafe impl Plain for process_create_record {}
// SAFETY: as above.
unsafe impl Plain for process_exec_record {}
// SAFETY: as above.
unsafe impl Plain for exit_record {}
// SAFETY: as above.
unsafe impl Plain for thread_create_record {}
// SAFETY: as above.
unsafe impl Plain for tamper_record {}
// SAFETY: as above.
unsafe impl Plain for remote_thread_record {}
// SAFETY: as above.
unsafe impl Plain for image_load_record {}

fn read<T: Plain>(bytes: &[u8], what: &'static str) -> Result<T, DecodeError> {
    let need = std::mem::size_of::<T>();
    if bytes.len() < need {
        return Err(DecodeError::TooShort { len: bytes.len(), need, what });
    }
    // SAFETY: `bytes` holds at least size_of::<T>() bytes (checked above),
    // read_unaligned has no alignment requirement, and T is Plain: any bit
    // pattern is a valid T.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// Decode one ring-buffer record.
pub fn decode(bytes: &[u8]) -> Result<KernelRecord, DecodeError> {
    if bytes.len() > RECORD_MAX_SIZE as usize {
        return Err(DecodeError::TooLong { len: bytes.len() });
    }
    let raw: record_header = read(bytes, "header")?;
    if raw.size as usize != bytes.len() {
        return Err(DecodeError::SizeMismatch { said: raw.size, len: bytes.len() });
    }
    let header = Header {
        time_ns: raw.time_ns,
        pid: raw.pid,
        tid: raw.tid,
        comm: comm(&raw.comm),
        start_ns: raw.start_ns,
        ns_pid: raw.ns_pid,
        ns_tid: raw.ns_tid,
        pid_ns: raw.pid_ns,
        mnt_ns: raw.mnt_ns,
        cgroup_id: raw.cgroup_id,
    };
    match raw.kind {
        record_kind::RECORD_PROCESS_CREATE => {
            let r: process_create_record = read(bytes, "process-create record")?;
            let [exe] = split(bytes, std::mem::size_of_val(&r), [("exe path", r.exe_len, RECORD_PATH_MAX)])?;
            Ok(KernelRecord::ProcessCreate {
                header,
                ppid: r.ppid,
                parent_start_ns: r.parent_start_ns,
                creator_tid: r.creator_tid,
                uid: r.uid,
                gid: r.gid,
                parent_comm: comm(&r.parent_comm),
                exe: path(exe, r.exe_flags),
            })
        }
        record_kind::RECORD_PROCESS_EXEC => {
            let r: process_exec_record = read(bytes, "process-exec record")?;
            let [exe, argv, cwd] = split(
                bytes,
                std::mem::size_of_val(&r),
                [
                    ("exe path", r.exe_len, RECORD_PATH_MAX),
                    ("argv", r.argv_len, RECORD_ARGV_MAX),
                    ("cwd path", r.cwd_len, RECORD_PATH_MAX),
                ],
            )?;
            Ok(KernelRecord::ProcessExec {
                header,
                old_tid: r.old_tid,
                exe: path(exe, r.exe_flags),
                exe_file: FileId::from_kernel(r.exe_dev, r.exe_inode),
                argv: nul_separated(argv),
                argv_truncated: r.argv_truncated != 0,
                cwd: path(cwd, r.cwd_flags),
            })
        }
        record_kind::RECORD_PROCESS_EXIT | record_kind::RECORD_THREAD_EXIT => {
            let r: exit_record = read(bytes, "exit record")?;
            split(bytes, std::mem::size_of_val(&r), [])?;
            let (status, start_time_ns) = (r.exit_code, r.start_time_ns);
            Ok(if raw.kind == record_kind::RECORD_PROCESS_EXIT {
                KernelRecord::ProcessExit { header, status, start_time_ns }
            } else {
                KernelRecord::ThreadExit { header, status, start_time_ns }
            })
        }
        record_kind::RECORD_THREAD_CREATE => {
            let r: thread_create_record = read(bytes, "thread-create record")?;
            split(bytes, std::mem::size_of_val(&r), [])?;
            Ok(KernelRecord::ThreadCreate { header, creator_tid: r.creator_tid })
        }
        record_kind::RECORD_PROCESS_TAMPER => {
            let r: tamper_record = read(bytes, "process-tamper record")?;
            split(bytes, std::mem::size_of_val(&r), [])?;
            let creator = Creator::new(r.creator_pid, r.creator_tid, &r.creator_comm, r.method)?;
            Ok(KernelRecord::ProcessTamper { header, creator })
        }
        record_kind::RECORD_REMOTE_THREAD => {
            let r: remote_thread_record = read(bytes, "remote-thread record")?;
            split(bytes, std::mem::size_of_val(&r), [])?;
            let creator = Creator::new(r.creator_pid, r.creator_tid, &r.creator_comm, r.method)?;
            Ok(KernelRecord::RemoteThread {
                header,
                target_creator_tid: r.target_creator_tid,
                creator,
                tamper_time_ns: r.tamper_time_ns,
            })
        }
        record_kind::RECORD_IMAGE_LOAD => image_load(header, bytes),
        other => Err(DecodeError::UnknownKind(other)),
    }
}

fn image_load(header: Header, bytes: &[u8]) -> Result<KernelRecord, DecodeError> {
    let r: image_load_record = read(bytes, "image-load record")?;
    let [ns_path, fs_path] = split(
        bytes,
        std::mem::size_of_val(&r),
        [("image path", r.path_len, RECORD_PATH_MAX), ("file-system path", r.fs_path_len, RECORD_PATH_MAX)],
    )?;
    let via = match u32::from(r.via) {
        record_image_via::IMAGE_VIA_EXEC => ImageVia::Exec,
        record_image_via::IMAGE_VIA_INTERPRETER => ImageVia::Interpreter,
        record_image_via::IMAGE_VIA_MMAP => ImageVia::Mmap,
        record_image_via::IMAGE_VIA_MPROTECT => ImageVia::Mprotect,
        value => return Err(DecodeError::UnknownValue { what: "image-load via", value }),
    };
    let flags = u32::from(r.flags);
    let other_ns = flags & record_image_flag::IMAGE_OTHER_MOUNT_NS != 0;
    if !other_ns && !fs_path.is_empty() {
        return Err(DecodeError::UnknownValue { what: "file-system path without IMAGE_OTHER_MOUNT_NS", value: 0 });
    }
    Ok(KernelRecord::ImageLoad {
        header,
        base: r.base,
        size: r.size,
        file: FileId::from_kernel(r.dev, r.inode),
        path: path(ns_path, r.path_flags),
        fs_path: other_ns.then(|| path(fs_path, r.fs_path_flags)),
        via,
        blocked: flags & record_image_flag::IMAGE_BLOCKED != 0,
    })
}

/// Cut the bytes after the fixed part into the variable-length fields,
/// which must fill it exactly.
fn split<'a, const N: usize>(
    bytes: &'a [u8],
    fixed: usize,
    fields: [(&'static str, u16, u32); N],
) -> Result<[&'a [u8]; N], DecodeError> {
    let rest = &bytes[fixed.min(bytes.len())..];
    let mut total = 0usize;
    for (what, len, max) in fields {
        if u32::from(len) > max {
            return Err(DecodeError::FieldTooLong { what, len: len.into(), max });
        }
        total += usize::from(len);
    }
    if total != rest.len() {
        return Err(DecodeError::BadLengths { fields: total, rest: rest.len() });
    }
    let mut at = 0;
    Ok(fields.map(|(_, len, _)| {
        let part = &rest[at..at + usize::from(len)];
        at += usize::from(len);
        part
    }))
}

/// A fixed-size, NUL-padded kernel name.
/// A task name: up to the first NUL. One allocation, for the String itself:
/// this runs for every record (it was 10 % of the reader's time when it
/// collected into a Vec first).
fn comm(raw: &[std::os::raw::c_char]) -> String {
    let mut bytes = [0u8; RECORD_COMM_LEN as usize];
    let mut len = 0;
    for (slot, &c) in bytes.iter_mut().zip(raw).take_while(|(_, &c)| c != 0) {
        *slot = c as u8;
        len += 1;
    }
    String::from_utf8_lossy(&bytes[..len]).into_owned()
}

fn nul_separated(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes.split(|&b| b == 0).map(|s| String::from_utf8_lossy(s).into_owned()).collect()
}

fn path(bytes: &[u8], flags: u8) -> KernelPath {
    let flags = u32::from(flags);
    let mut components = nul_separated(bytes);
    components.reverse();
    KernelPath {
        components,
        truncated: flags & record_path_flag::PATH_TRUNCATED != 0,
        deleted: flags & record_path_flag::PATH_DELETED != 0,
        disconnected: flags & record_path_flag::PATH_DISCONNECTED != 0,
    }
}

impl KernelPath {
    /// The path as a user reads it: `/usr/bin/ls`, `/tmp/x (deleted)`,
    /// `memfd:payload` for fileless images, `…/deep/file` when truncated.
    pub fn display(&self) -> String {
        if self.deleted && self.components.len() == 1 && self.components[0].starts_with("memfd:") {
            return self.components[0].clone();
        }
        let mut out = String::new();
        if self.truncated {
            out.push('…');
        }
        if self.components.is_empty() {
            out.push('/');
        }
        for c in &self.components {
            out.push('/');
            out.push_str(c);
        }
        if self.deleted {
            out.push_str(" (deleted)");
        }
        out
    }
}

#[cfg(test)]
mod tests;
