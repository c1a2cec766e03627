//! Loading, attaching and reading the probes.
//!
//! The kernel's features decide the plan ([`crate::plan`]): which variant
//! of each probe loads, and which capabilities can run. Each capability's
//! programs load and attach whole or not at all, like a driver's
//! DriverEntry that rolls back on failure: if the kernel refuses one, the
//! object is loaded again without it and the capability is off, with the
//! reason; the process capability is required. Dropping [`Probes`]
//! detaches everything, except what [`Enforcement::Lsm`] pinned: the BPF
//! LSM links and the rule maps stay until `rsysmon unload` ([`crate::pins`]).

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject, RingBuffer, RingBufferBuilder};

use crate::blocked_files::BlockedFiles;
use crate::blocked_trees::BlockedTrees;
use crate::bpf_lsm;
use crate::capability::{Capabilities, Capability};
use crate::error::{ProbeError, KERNEL_BTF, OWN_MOUNT_NS};
use crate::features::{self, KernelFeatures};
use crate::kernel_fs::{self, Tracefs};
use crate::pins;
use crate::plan::Plan;
use crate::records::record_loss_slot;
use crate::skel::{RsysmonSkel, RsysmonSkelBuilder};
use crate::takeover_hooks;
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
    /// Whether the kernel itself refuses blocked files (BPF LSM).
    pub enforcement: Enforcement,
    /// Attach syscall tracepoints (the default). Off, no syscall of the
    /// machine takes the kernel's slow path: image loads by mmap are seen
    /// only where the kernel traces VMA stores, and mprotect and
    /// injection are not seen (docs/kernels.md).
    pub syscall_tracepoints: bool,
}

/// Whether the blocked lists are enforced by BPF LSM hooks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Enforcement {
    /// No LSM programs: the image-load probes' kill only.
    #[default]
    Off,
    /// BPF LSM where the kernel allows it; with `pin_dir`, its links and
    /// the rule maps are pinned there and adopted when found there.
    Lsm { pin_dir: Option<PathBuf> },
}

/// What became of [`ProbeConfig::enforcement`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelEnforcement {
    /// [`Enforcement::Off`].
    NotWanted,
    /// The LSM programs are attached.
    Lsm {
        /// Where the links and maps are pinned.
        pinned: Option<PathBuf>,
        /// Whether the maps were found pinned by an earlier run.
        adopted: bool,
        /// Why they are not pinned, when pinning was asked for.
        not_pinned: Option<String>,
        /// Pinned maps of another version (another size or layout) that
        /// were replaced by new ones instead of adopted: what differed.
        replaced: Option<String>,
    },
    /// Wanted, not possible here: why.
    Unavailable(String),
}

/// The LSM hooks, as the capability line names them.
pub const LSM_HOOKS: &str = "bprm_check_security/mmap_file/file_mprotect";

impl KernelEnforcement {
    pub fn is_lsm(&self) -> bool {
        matches!(self, KernelEnforcement::Lsm { .. })
    }

    /// `bpf-lsm bprm_check_security/mmap_file/file_mprotect, pinned at DIR`
    /// or None when BPF LSM is not in use.
    pub fn mechanism(&self) -> Option<String> {
        let KernelEnforcement::Lsm { pinned, adopted, not_pinned, replaced } = self else { return None };
        let mut text = format!("bpf-lsm {LSM_HOOKS}");
        match (pinned, not_pinned) {
            (Some(dir), _) if replaced.is_some() => text.push_str(&format!(
                ", pinned at {} (replaced pinned maps of another version: {})",
                dir.display(),
                replaced.as_deref().unwrap_or_default()
            )),
            (Some(dir), _) if *adopted => text.push_str(&format!(", pinned at {} (adopted)", dir.display())),
            (Some(dir), _) => text.push_str(&format!(", pinned at {}", dir.display())),
            (None, Some(why)) => text.push_str(&format!(", not pinned: {why}")),
            (None, None) => text.push_str(", not pinned"),
        }
        Some(text)
    }
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
            enforcement: Enforcement::Off,
            syscall_tracepoints: true,
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
    capabilities: Capabilities,
    enforcement: KernelEnforcement,
    skel: RsysmonSkel<'static>,
}

impl Probes {
    /// Open, configure, load and attach the probes of every capability this
    /// kernel can run: the process capability or an error, and each other
    /// capability whole or not at all (see [`Probes::capabilities`]).
    pub fn load(config: &ProbeConfig) -> Result<Self, ProbeError> {
        if !Path::new(KERNEL_BTF).exists() {
            return Err(ProbeError::NoKernelBtf);
        }
        let features = KernelFeatures::detect()?;
        // Before libbpf first looks for tracefs (it remembers where). Only
        // the syscall tracepoints need it: without it, their capabilities
        // are off and say why.
        let (tracefs, tracefs_ok) = if !config.syscall_tracepoints {
            (Tracefs::Present, Ok(()))
        } else if features.is_hidden(features::TRACEFS) {
            (Tracefs::Present, Err(format!("tracefs is hidden by {}", features::HIDE_ENV)))
        } else {
            match kernel_fs::ensure_tracefs() {
                Ok(t) => (t, Ok(())),
                Err(e) => (Tracefs::Present, Err(e.to_string())),
            }
        };
        // Image loads through fexit where trampolines work: tried for real
        // (bpf_lsm.rs), as a kernel may refuse them whatever its BTF says.
        let trampolines = bpf_lsm::trampolines_usable(&features);
        let mut plan = Plan::with_trampolines(&features, tracefs_ok, config.syscall_tracepoints, trampolines.clone());
        if let Some((capability, reason)) = plan.capabilities.first_missing(&[]) {
            return Err(ProbeError::Required { capability, reason: reason.to_string() });
        }
        // Takeovers by fexit where trampolines work: no syscall tracepoint.
        plan.choose_injection_fexit(trampolines.and_then(|()| takeover_hooks::missing_function().map_or(Ok(()), Err)));

        let (mut pin_dir, mut enforcement) = decide_enforcement(config, &features, &mut plan);
        let mut replaced = Vec::new();
        let pin_to = pin_dir.as_deref().map(|dir| PinTo { dir, replaced: &mut replaced });
        let first = match open_and_load(config, &plan, pin_to) {
            // The verifier refused the LSM programs: without them.
            Err(e) if plan.lsm => {
                if let (Some(dir), KernelEnforcement::Lsm { adopted: false, .. }) = (&pin_dir, &enforcement) {
                    let _ = pins::unload(dir);
                }
                enforcement =
                    KernelEnforcement::Unavailable(format!("the kernel refused the LSM programs: {}", error_chain(&e)));
                plan.lsm = false;
                pin_dir = None;
                open_and_load(config, &plan, None)
            }
            other => other,
        };
        if let KernelEnforcement::Lsm { adopted, replaced: slot, .. } = &mut enforcement {
            if !replaced.is_empty() {
                *adopted = false;
                *slot = Some(replaced.join("; "));
            }
        }
        let mut skel = match first {
            Ok(skel) => skel,
            // The verifier refused something: find which optional
            // capabilities load, adding one at a time to the process
            // probes, and switch the others off.
            Err(first) => {
                let optional = plan.optional_on();
                let mut base = plan.clone();
                for c in &optional {
                    base.switch_off(*c, "not tried");
                }
                let mut skel = open_and_load(config, &base, None).map_err(|_| first)?;
                for c in optional {
                    let mut with = base.clone();
                    with.capabilities.set(c, plan.capabilities.get(c).cloned().expect("planned"));
                    match open_and_load(config, &with, None) {
                        Ok(loaded) => {
                            skel = loaded;
                            base = with;
                        }
                        // Image loads: the tracepoints where the kernel refuses
                        // the fexit programs, the syscall exit where it refuses
                        // the VMA-store program; takeovers: the syscall exits
                        // where it refuses fexit.
                        Err(e) => {
                            let fallbacks = match c {
                                Capability::ImageLoad => with.image_load_fallbacks(),
                                Capability::Injection => {
                                    with.without_injection_fexit(&error_chain(&e)).into_iter().collect()
                                }
                                _ => Vec::new(),
                            };
                            let loaded = fallbacks
                                .into_iter()
                                .find_map(|plan| open_and_load(config, &plan, None).ok().map(|skel| (skel, plan)));
                            match loaded {
                                Some((loaded, plan)) => {
                                    skel = loaded;
                                    base = plan;
                                }
                                None => {
                                    base.switch_off(c, format!("the kernel refused its probes: {}", error_chain(&e)))
                                }
                            }
                        }
                    }
                }
                plan = base;
                skel
            }
        };

        // Attach capability by capability; an optional one that cannot
        // attach whole is detached again and switched off.
        let mut links = Vec::new();
        let mut attached = Vec::new();
        for capability in Capability::ALL {
            if !plan.capabilities.is_on(capability) {
                continue;
            }
            match attach(&mut skel, &plan, capability) {
                Ok(done) => {
                    for (link, section) in done {
                        links.push(link);
                        attached.push(section);
                    }
                }
                Err(e) if capability.always_required() => return Err(e),
                Err(e) => plan.switch_off(capability, e.to_string()),
            }
        }
        if plan.lsm {
            match attach_lsm(&mut skel, pin_dir.as_deref()) {
                Ok((done, not_pinned)) => {
                    for (link, section) in done {
                        links.push(link);
                        attached.push(section);
                    }
                    if let (Some(why), KernelEnforcement::Lsm { pinned, not_pinned: slot, .. }) =
                        (not_pinned, &mut enforcement)
                    {
                        *pinned = None;
                        *slot = Some(why);
                    }
                }
                Err(e) => enforcement = KernelEnforcement::Unavailable(e.to_string()),
            }
        }
        Ok(Self { links, attached, tracefs, capabilities: plan.capabilities, enforcement, skel })
    }

    /// Which kernel-side capabilities (process, image load, injection) run,
    /// with what mechanism, or why not.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Whether the kernel refuses blocked files itself (BPF LSM), or why not.
    pub fn enforcement(&self) -> &KernelEnforcement {
        &self.enforcement
    }

    /// Execs, mmaps and mprotects the LSM hooks refused since load (summed
    /// over all CPUs); 0 without them.
    pub fn lsm_refusals(&self) -> u64 {
        (0u32..3)
            .filter_map(|slot| self.skel.maps.lsm_refusals.lookup_percpu(&slot.to_ne_bytes(), MapFlags::ANY).ok()?)
            .flatten()
            .filter_map(|v| v.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_ne_bytes))
            .sum()
    }

    /// Whether tracefs had to be mounted for the syscall tracepoints.
    pub fn tracefs(&self) -> Tracefs {
        self.tracefs
    }

    /// The attach points of the probes, e.g. `tp_btf/sched_process_fork`.
    pub fn attached(&self) -> &[String] {
        &self.attached
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

    /// Each program's name, total run time (ns) and number of runs since
    /// load, counted by the kernel only while `kernel.bpf_stats_enabled` is
    /// 1 (zeros otherwise): what each probe costs, from the kernel itself.
    pub fn run_stats(&self) -> Vec<(String, u64, u64)> {
        self.skel
            .object()
            .progs()
            .map(|prog| {
                let mut info = libbpf_rs::libbpf_sys::bpf_prog_info::default();
                let mut len = std::mem::size_of_val(&info) as u32;
                // SAFETY: the fd is the loaded program's, open for the
                // call; `info` is a writable bpf_prog_info of `len` bytes,
                // which the kernel fills up to that length.
                let rc = unsafe {
                    libbpf_rs::libbpf_sys::bpf_obj_get_info_by_fd(
                        prog.as_fd().as_raw_fd(),
                        (&mut info as *mut libbpf_rs::libbpf_sys::bpf_prog_info).cast(),
                        &mut len,
                    )
                };
                let (time, runs) = if rc == 0 { (info.run_time_ns, info.run_cnt) } else { (0, 0) };
                (prog.name().to_string_lossy().into_owned(), time, runs)
            })
            .collect()
    }

    /// How many programs are attached.
    pub fn link_count(&self) -> usize {
        self.links.len()
    }
}

/// Open the object, set its `.rodata` and the programs the plan loads,
/// and load it.
fn open_and_load(
    config: &ProbeConfig,
    plan: &Plan,
    pin_to: Option<PinTo<'_>>,
) -> Result<RsysmonSkel<'static>, ProbeError> {
    // The skeleton borrows its object storage for as long as it lives; a
    // process loads the probes once (a few times if the kernel refuses
    // some), so that storage (a few pointers) is given the process's
    // lifetime.
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
    // namespace; for any other, the probe also sends the path within the
    // file system, which user space maps to a host mount.
    rodata.host_mnt_ns = std::fs::metadata(OWN_MOUNT_NS).map_err(ProbeError::MountNamespace)?.ino() as u32;
    // SAFETY: sysconf has no preconditions; _SC_PAGESIZE always succeeds on Linux.
    rodata.page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    rodata.have_rdonly_cast = plan.rdonly_cast;
    rodata.have_vma_iter = plan.vma_iterator;
    open.maps.events.set_max_entries(ring_bytes as u32).map_err(|e| ProbeError::bpf("size the ring buffer", e))?;

    if let Some(PinTo { dir, replaced }) = pin_to.filter(|_| plan.lsm) {
        // libbpf reuses a map pinned there, or pins the new one there once
        // created. One it could not reuse (another version's) is replaced.
        for mut map in open.open_object_mut().maps_mut() {
            let name = map.name().to_string_lossy().into_owned();
            if pins::PINNED_MAPS.contains(&name.as_str()) {
                if let Some(what) =
                    pins::drop_if_stale(dir, &name, open_map_shape(&map)).map_err(ProbeError::StalePin)?
                {
                    replaced.push(what);
                }
                map.set_pin_path(pins::map_path(dir, &name))
                    .map_err(|e| ProbeError::bpf(format!("pin the {name} map"), e))?;
            }
        }
    }
    for mut prog in open.open_object_mut().progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        prog.set_autoload(plan.autoload(&name)?);
    }
    open.load().map_err(|e| ProbeError::bpf("load the BPF programs", e))
}

/// Where the first load pins its maps, and the stale pins it replaced.
struct PinTo<'a> {
    dir: &'a Path,
    replaced: &'a mut Vec<String>,
}

/// The shape the object gives map `map`, to compare with a pinned one.
fn open_map_shape(map: &libbpf_rs::OpenMapMut<'_>) -> pins::MapShape {
    use libbpf_rs::AsRawLibbpf;
    let raw = map.as_libbpf_object().as_ptr();
    // SAFETY: `raw` is the live map of the open object `map` borrows.
    unsafe {
        pins::MapShape {
            map_type: libbpf_rs::libbpf_sys::bpf_map__type(raw),
            key_size: libbpf_rs::libbpf_sys::bpf_map__key_size(raw),
            value_size: libbpf_rs::libbpf_sys::bpf_map__value_size(raw),
            max_entries: libbpf_rs::libbpf_sys::bpf_map__max_entries(raw),
            flags: libbpf_rs::libbpf_sys::bpf_map__map_flags(raw),
        }
    }
}

/// Attach every program of `capability` that the plan loaded, or none.
fn attach(
    skel: &mut RsysmonSkel<'static>,
    plan: &Plan,
    capability: Capability,
) -> Result<Vec<(Link, String)>, ProbeError> {
    let mut done = Vec::new();
    for prog in skel.object_mut().progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        if Capability::of_program(&name) != Some(capability) || !plan.autoload(&name)? {
            continue;
        }
        let section = prog.section().to_string_lossy().into_owned();
        // On failure, the links attached so far drop with `done`.
        let link = prog.attach().map_err(|e| ProbeError::bpf(format!("attach probe {name} ({section})"), e))?;
        done.push((link, section));
    }
    Ok(done)
}

/// Whether the LSM programs load (sets `plan.lsm`), and where they pin.
fn decide_enforcement(
    config: &ProbeConfig,
    features: &KernelFeatures,
    plan: &mut Plan,
) -> (Option<PathBuf>, KernelEnforcement) {
    let Enforcement::Lsm { pin_dir } = &config.enforcement else { return (None, KernelEnforcement::NotWanted) };
    if let Err(why) = bpf_lsm::lsm_usable(features) {
        return (None, KernelEnforcement::Unavailable(why));
    }
    plan.lsm = true;
    let Some(dir) = pin_dir else {
        return (None, KernelEnforcement::Lsm { pinned: None, adopted: false, not_pinned: None, replaced: None });
    };
    match pins::prepare(dir) {
        Ok(()) => {
            let adopted = pins::has_pinned_maps(dir);
            let pinned = Some(dir.clone());
            (Some(dir.clone()), KernelEnforcement::Lsm { pinned, adopted, not_pinned: None, replaced: None })
        }
        Err(e) => {
            let not_pinned = Some(e.to_string());
            (None, KernelEnforcement::Lsm { pinned: None, adopted: false, not_pinned, replaced: None })
        }
    }
}

/// Links and the sections they attach to.
type Attached = Vec<(Link, String)>;

/// Attach the LSM programs, all or none, and pin their links in `pin_dir`
/// over those of an earlier run (which detach then; the new ones are
/// attached first, so there is no moment without them). A pin that fails
/// leaves the links attached and held by this process: the reason is
/// returned.
fn attach_lsm(
    skel: &mut RsysmonSkel<'static>,
    pin_dir: Option<&Path>,
) -> Result<(Attached, Option<String>), ProbeError> {
    let mut done = Vec::new();
    for prog in skel.object_mut().progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        if Capability::of_program(&name) != Some(Capability::Blocking) {
            continue;
        }
        let section = prog.section().to_string_lossy().into_owned();
        let link = prog.attach().map_err(|e| ProbeError::bpf(format!("attach probe {name} ({section})"), e))?;
        done.push((link, section, name));
    }
    let mut not_pinned = None;
    if let Some(dir) = pin_dir {
        for (link, _, name) in &mut done {
            let path = pins::link_path(dir, name);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    not_pinned = Some(format!("remove {}: {e}", path.display()));
                    continue;
                }
            }
            if let Err(e) = link.pin(&path) {
                not_pinned = Some(format!("pin {}: {e}", path.display()));
            }
        }
    }
    Ok((done.into_iter().map(|(link, section, _)| (link, section)).collect(), not_pinned))
}

/// An error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every program compiled into the object belongs to a capability, and
    /// (on x86-64) every program a capability names is in the object.
    #[test]
    fn the_object_and_the_capability_table_name_the_same_programs() {
        let storage = Box::leak(Box::new(MaybeUninit::uninit()));
        let open = RsysmonSkelBuilder::default().open(storage).expect("open the BPF object");
        let mut in_object: Vec<String> =
            open.open_object().progs().map(|p| p.name().to_string_lossy().into_owned()).collect();
        for name in &in_object {
            assert!(Capability::of_program(name).is_some(), "{name} belongs to no capability");
        }
        let mut listed: Vec<String> =
            Capability::ALL.iter().flat_map(|c| c.programs()).map(|p| p.to_string()).collect();
        in_object.sort();
        listed.sort();
        if cfg!(target_arch = "x86_64") {
            // open and creat exist on x86-64 only.
            assert_eq!(in_object, listed);
        }
    }
}
