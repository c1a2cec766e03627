//! Loading, attaching and reading the probes.
//!
//! All programs attach or none do, like a driver's DriverEntry that rolls
//! back on failure: links are collected as they attach and dropped (so
//! detached) if any later one fails. Dropping [`Probes`] detaches everything;
//! nothing is pinned, so nothing outlives the process.

use std::mem::MaybeUninit;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject, RingBuffer, RingBufferBuilder};

use crate::blocked_files::BlockedFiles;
use crate::blocked_trees::BlockedTrees;
use crate::error::{ProbeError, KERNEL_BTF, OWN_MOUNT_NS};
use crate::kernel_fs::{self, Tracefs};
use crate::records::record_loss_slot;
use crate::skel::{RsysmonSkel, RsysmonSkelBuilder};
use crate::FileId;

const PAGE_SIZE: usize = 4096;

/// What the probes do, decided before they load.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// Report kernel threads (PF_KTHREAD) too.
    pub include_kernel_threads: bool,
    /// Size of the kernel ring buffer in bytes; rounded up to a power of two
    /// of at least one page, as the kernel requires.
    pub ring_buffer_bytes: usize,
    /// How long after a takeover (ptrace write, process_vm_writev,
    /// /proc/PID/mem) a new thread in the target counts as remote.
    pub remote_thread_window: Duration,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            include_kernel_threads: false,
            // At 100,000 events/s: about 2.8 s of thread events (56-64
            // byte records), 1.3 s of process events (about 130 bytes on
            // average with paths and argv); see docs/daemon.md.
            ring_buffer_bytes: 16 << 20,
            remote_thread_window: Duration::from_secs(10),
        }
    }
}

/// The loaded and attached probes. Dropping this detaches them all.
pub struct Probes {
    // Links first: fields drop in order, so programs detach before the
    // object that owns them is closed.
    links: Vec<Link>,
    attached: Vec<String>,
    tracefs: Tracefs,
    skel: RsysmonSkel<'static>,
}

impl Probes {
    /// Open, configure, load and attach every probe, or none.
    pub fn load(config: &ProbeConfig) -> Result<Self, ProbeError> {
        if !Path::new(KERNEL_BTF).exists() {
            return Err(ProbeError::NoKernelBtf);
        }
        // Before libbpf first looks for tracefs (it remembers where).
        let tracefs = kernel_fs::ensure_tracefs()?;
        // The skeleton borrows its object storage for as long as it lives;
        // a process loads the probes once, so that storage (a few pointers)
        // is given the process's lifetime.
        let storage: &'static mut MaybeUninit<OpenObject> = Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open =
            RsysmonSkelBuilder::default().open(storage).map_err(|e| ProbeError::bpf("open the BPF object", e))?;

        let ring_bytes = config.ring_buffer_bytes.max(PAGE_SIZE).next_power_of_two();
        let rodata = open.maps.rodata_data.as_deref_mut().expect("rsysmon.bpf.c has .rodata");
        rodata.include_kernel_threads = config.include_kernel_threads;
        // Wake the reader when a quarter of the ring is used: often enough to
        // leave room for bursts, rarely enough to batch the wake-ups.
        rodata.wakeup_bytes = (ring_bytes / 4) as u64;
        rodata.remote_window_ns = u64::try_from(config.remote_thread_window.as_nanos()).unwrap_or(u64::MAX);
        // Image paths are host paths when the file's mount is in this
        // namespace; for any other, the probe also sends the path within
        // the file system, which user space maps to a host mount.
        rodata.host_mnt_ns = std::fs::metadata(OWN_MOUNT_NS).map_err(ProbeError::MountNamespace)?.ino() as u32;
        // SAFETY: sysconf has no preconditions; _SC_PAGESIZE always succeeds on Linux.
        rodata.page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
        open.maps.events.set_max_entries(ring_bytes as u32).map_err(|e| ProbeError::bpf("size the ring buffer", e))?;

        let mut skel = open.load().map_err(|e| ProbeError::bpf("load the BPF programs", e))?;

        let mut links = Vec::new();
        let mut attached = Vec::new();
        for prog in skel.object_mut().progs_mut() {
            let name = prog.name().to_string_lossy().into_owned();
            let section = prog.section().to_string_lossy().into_owned();
            let link = prog.attach().map_err(|e| ProbeError::bpf(format!("attach probe {name} ({section})"), e))?;
            links.push(link);
            attached.push(section);
        }
        Ok(Self { links, attached, tracefs, skel })
    }

    /// The attach points of the probes, e.g. `tp_btf/sched_process_fork`.
    pub fn attached(&self) -> &[String] {
        &self.attached
    }

    /// Whether tracefs had to be mounted for the syscall tracepoints.
    pub fn tracefs(&self) -> Tracefs {
        self.tracefs
    }

    /// Events the probes could not report since load, summed over all CPUs:
    /// records dropped because the ring buffer was full, and image loads
    /// that could not be resolved because the process's address space was
    /// locked at that instant.
    pub fn kernel_losses(&self) -> Result<u64, ProbeError> {
        let mut total = 0;
        for slot in [record_loss_slot::LOSS_RINGBUF_FULL, record_loss_slot::LOSS_IMAGE_LOOKUP_BUSY] {
            let values = self
                .skel
                .maps
                .losses
                .lookup_percpu(&slot.to_ne_bytes(), MapFlags::ANY)
                .map_err(|e| ProbeError::bpf("read the loss counters", e))?
                .unwrap_or_default();
            total += values
                .iter()
                .filter_map(|v| v.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_ne_bytes))
                .sum::<u64>();
        }
        Ok(total)
    }

    /// The kernel's list of files no process may run code from, as a
    /// handle that other threads may hold (see [`BlockedFiles`]).
    pub fn blocked_files(&self) -> Result<BlockedFiles, ProbeError> {
        BlockedFiles::of(&self.skel.maps.blocked_files)
    }

    /// The kernel's list of blocked directory trees, as a handle that other
    /// threads may hold (see [`BlockedTrees`]).
    pub fn blocked_trees(&self) -> Result<BlockedTrees, ProbeError> {
        BlockedTrees::of(&self.skel.maps.blocked_trees, &self.skel.maps.blocked_tree_count)
    }

    /// Shorthand for `blocked_files()?.block(file)`.
    pub fn block_file(&self, file: FileId) -> Result<(), ProbeError> {
        self.blocked_files()?.block(file)
    }

    /// Shorthand for `blocked_files()?.unblock(file)`.
    pub fn unblock_file(&self, file: FileId) -> Result<(), ProbeError> {
        self.blocked_files()?.unblock(file)
    }

    /// A reader that hands each record, as raw bytes, to `on_record`.
    pub fn reader<'a>(&'a self, mut on_record: impl FnMut(&[u8]) + 'a) -> Result<RecordReader<'a>, ProbeError> {
        let mut builder = RingBufferBuilder::new();
        builder
            .add(&self.skel.maps.events, move |data| {
                on_record(data);
                0
            })
            .map_err(|e| ProbeError::bpf("attach to the ring buffer", e))?;
        let ring = builder.build().map_err(|e| ProbeError::bpf("create the ring buffer reader", e))?;
        Ok(RecordReader { ring })
    }

    /// How many programs are attached.
    pub fn link_count(&self) -> usize {
        self.links.len()
    }
}

/// Reads the ring buffer. The probes wake it only once enough data waits,
/// so each call also drains whatever arrived without a wake-up.
pub struct RecordReader<'a> {
    ring: RingBuffer<'a>,
}

impl RecordReader<'_> {
    /// Wait up to `timeout` for a wake-up, then consume everything waiting.
    pub fn poll(&self, timeout: Duration) -> Result<(), ProbeError> {
        match self.ring.poll(timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == libbpf_rs::ErrorKind::Interrupted => {}
            Err(e) => return Err(ProbeError::bpf("poll the ring buffer", e)),
        }
        self.ring.consume().map_err(|e| ProbeError::bpf("read the ring buffer", e))
    }
}
