//! Which probe variants load on this kernel, decided before load from the
//! kernel's features ([`KernelFeatures`]): the `.rodata` switches the BPF
//! code branches on, which programs load (autoload), and so which
//! capabilities run and with what mechanism.
//!
//! One object serves every kernel; nothing here copies a program per
//! kernel. Where a kernel lacks something, the program takes another path
//! (a `.rodata` switch the verifier sees as a constant) or, for a
//! tracepoint whose arguments differ, a small variant program is loaded
//! instead of the other.

use crate::capability::{Capabilities, Capability, CapabilityState};
use crate::error::ProbeError;
use crate::features::{Feature, KernelFeatures};
use crate::takeover_hooks::{self, FEXIT_MECHANISM, SYSCALL_EXIT_MECHANISM};

/// The exit program where sched_process_exit passes `group_dead`.
pub const EXIT_GROUP_DEAD: &str = "on_exit";
/// The exit program of older kernels (signal->live and a claim).
pub const EXIT_LIVE: &str = "on_exit_live";
/// Image loads by mmap at the syscall's exit tracepoint.
pub const MMAP_SYSCALL_EXIT: &str = "on_mmap_exit";
/// Image loads by mmap at the store of the new VMA (6.1 to 6.3).
pub const MMAP_VMA_STORE: &str = "on_vma_store";
/// Image loads by mmap at the store of the new VMA (maple tree writes).
pub const MMAP_MA_WRITE: &str = "on_ma_write";
/// The mprotect probes: syscall exit tracepoints.
pub const MPROTECT_PROGRAMS: [&str; 2] = ["on_mprotect_exit", "on_pkey_mprotect_exit"];

/// Image loads by mmap and mprotect with BPF trampolines (fexit on
/// vm_mmap_pgoff and do_mprotect_pkey): no syscall tracepoint.
pub const IMAGE_FEXIT_PROGRAMS: [&str; 2] = ["fexit_vm_mmap", "fexit_mprotect"];
/// The image-load mechanism with trampolines, before the VMA lookup's name.
pub const IMAGE_FEXIT: &str = "fexit vm_mmap_pgoff + fexit do_mprotect_pkey";

/// Why the syscall tracepoints' capabilities are off when asked to be.
pub const SYSCALL_TRACEPOINTS_OFF: &str = "syscall tracepoints are off (--no-syscall-tracepoints)";

/// The tracepoint an mmap program attaches to, for the capabilities line.
fn store_tracepoint(program: &str) -> &'static str {
    if program == MMAP_VMA_STORE {
        "mmap:vma_store"
    } else {
        "maple_tree:ma_write"
    }
}

/// What to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `have_rdonly_cast`: direct loads through kept pointers.
    pub rdonly_cast: bool,
    /// `have_vma_iter`: image lookups in one iterator pass.
    pub vma_iterator: bool,
    /// The sched_process_exit program to load; the other is not loaded.
    pub exit_program: &'static str,
    /// The image-load program for mmap ([`MMAP_SYSCALL_EXIT`],
    /// [`MMAP_VMA_STORE`] or [`MMAP_MA_WRITE`]); the others are not loaded.
    pub mmap_program: &'static str,
    /// Whether any syscall tracepoint may attach (`--no-syscall-tracepoints`
    /// turns them off: no syscall of the machine takes the slow path).
    pub syscall_tracepoints: bool,
    /// The kernel-side capabilities (process, image load, injection).
    pub capabilities: Capabilities,
    /// Image loads by mmap and mprotect through [`IMAGE_FEXIT_PROGRAMS`]
    /// instead of `mmap_program` and the mprotect tracepoints.
    pub image_trampolines: bool,
    /// The image-load state without trampolines, for
    /// [`Plan::without_image_trampolines`].
    image_load_without_trampolines: Option<CapabilityState>,
    /// Load the blocking capability's BPF LSM programs: set by the loader
    /// where blocking is wanted and [`crate::bpf_lsm::lsm_usable`].
    pub lsm: bool,
    /// Takeovers by fexit programs instead of syscall exit tracepoints
    /// ([`Plan::choose_injection_fexit`]).
    pub injection_fexit: bool,
    /// What injection is on the syscall exit tracepoints: the fallback
    /// when the kernel refuses the fexit programs.
    injection_by_syscall_exit: CapabilityState,
}

impl Plan {
    /// The plan for a kernel with `features`; `tracefs` is whether syscall
    /// tracepoints can attach (or why not).
    pub fn new(features: &KernelFeatures, tracefs: Result<(), String>) -> Plan {
        Plan::with_syscall_tracepoints(features, tracefs, true)
    }

    /// [`Plan::new`], or with `syscall_tracepoints` false, the plan that
    /// attaches no syscall tracepoint (and needs no tracefs): image loads
    /// by mmap only where the kernel traces VMA stores, no mprotect, no
    /// injection.
    pub fn with_syscall_tracepoints(
        features: &KernelFeatures,
        tracefs: Result<(), String>,
        syscall_tracepoints: bool,
    ) -> Plan {
        use CapabilityState::{Off, On};
        let has = |f| features.has(f);
        let lacks = |f| features.why_missing(f);

        let exit_program = if has(Feature::ExitGroupDead) { EXIT_GROUP_DEAD } else { EXIT_LIVE };
        let process = if !has(Feature::Loop) {
            Off(lacks(Feature::Loop))
        } else if exit_program == EXIT_GROUP_DEAD {
            On("tp_btf sched_process_fork/exec/exit".into())
        } else {
            On("tp_btf sched_process_fork/exec/exit, last thread by signal->live".into())
        };

        // The VMA-store tracepoints need x86's syscall numbers (to know an
        // mmap from a split) and no tracefs.
        let mmap_program = if !cfg!(target_arch = "x86_64") {
            MMAP_SYSCALL_EXIT
        } else if has(Feature::VmaStore) {
            MMAP_VMA_STORE
        } else if has(Feature::MaWrite) {
            MMAP_MA_WRITE
        } else {
            MMAP_SYSCALL_EXIT
        };
        let syscalls = if syscall_tracepoints { tracefs } else { Err(SYSCALL_TRACEPOINTS_OFF.to_string()) };
        let lookup = vma_lookup(features);
        let image_load = match (&syscalls, mmap_program, lookup) {
            (Err(why), MMAP_SYSCALL_EXIT, _) => Off(why.clone()),
            (Err(why), _, _) if syscall_tracepoints => Off(why.clone()),
            _ if !has(Feature::Loop) => Off(lacks(Feature::Loop)),
            (_, _, Err(why)) => Off(why),
            (Ok(()), MMAP_SYSCALL_EXIT, Ok(lookup)) => On(format!("sys_exit_mmap/mprotect, {lookup}")),
            (Ok(()), program, Ok(lookup)) => On(format!("{} + sys_exit_mprotect, {lookup}", store_tracepoint(program))),
            (Err(_), program, Ok(lookup)) => {
                On(format!("{}, {lookup}; no mprotect probe: {SYSCALL_TRACEPOINTS_OFF}", store_tracepoint(program)))
            }
        };

        let injection = match &syscalls {
            Err(why) => Off(why.clone()),
            Ok(()) => On(SYSCALL_EXIT_MECHANISM.into()),
        };

        Plan {
            rdonly_cast: has(Feature::RdonlyCast),
            vma_iterator: has(Feature::VmaIterator),
            exit_program,
            mmap_program,
            syscall_tracepoints,
            capabilities: Capabilities::new([
                (Capability::Process, process),
                (Capability::ImageLoad, image_load),
                (Capability::Injection, injection.clone()),
            ]),
            image_trampolines: false,
            image_load_without_trampolines: None,
            lsm: false,
            injection_fexit: false,
            injection_by_syscall_exit: injection,
        }
    }

    /// [`Plan::with_syscall_tracepoints`] on a kernel where BPF trampolines
    /// work (`trampolines`, from [`crate::bpf_lsm::trampolines_usable`]):
    /// image loads by mmap and mprotect through fexit, which needs neither
    /// a syscall tracepoint nor tracefs. Without them, the plan is
    /// unchanged.
    pub fn with_trampolines(
        features: &KernelFeatures,
        tracefs: Result<(), String>,
        syscall_tracepoints: bool,
        trampolines: Result<(), String>,
    ) -> Plan {
        let mut plan = Plan::with_syscall_tracepoints(features, tracefs, syscall_tracepoints);
        if trampolines.is_err() || !features.has(Feature::Loop) {
            return plan;
        }
        let Ok(lookup) = vma_lookup(features) else { return plan };
        plan.image_load_without_trampolines = plan.capabilities.get(Capability::ImageLoad).cloned();
        plan.image_trampolines = true;
        plan.capabilities.set(Capability::ImageLoad, CapabilityState::On(format!("{IMAGE_FEXIT}, {lookup}")));
        plan
    }

    /// See takeovers with fexit programs where `trampolines` says the
    /// kernel runs them (x86-64 only: the process_vm_writev entry points
    /// are x86's): no syscall tracepoint then, even with
    /// `--no-syscall-tracepoints`. Otherwise the syscall exit
    /// tracepoints stay, and the capabilities line says why.
    pub fn choose_injection_fexit(&mut self, trampolines: Result<(), String>) {
        use CapabilityState::{Off, On};
        match trampolines {
            Ok(()) if cfg!(target_arch = "x86_64") => {
                self.injection_fexit = true;
                self.capabilities.set(Capability::Injection, On(FEXIT_MECHANISM.into()));
            }
            Ok(()) => {}
            Err(why) => {
                if let Some(On(how)) = self.capabilities.get(Capability::Injection) {
                    let how = format!("{how}; fexit not used: {why}");
                    self.capabilities.set(Capability::Injection, On(how.clone()));
                    self.injection_by_syscall_exit = On(how);
                } else if let Some(Off(off)) = self.capabilities.get(Capability::Injection) {
                    let off = format!("{off}; fexit not used: {why}");
                    self.capabilities.set(Capability::Injection, Off(off.clone()));
                    self.injection_by_syscall_exit = Off(off);
                }
            }
        }
    }

    /// This plan with takeovers seen by the syscall exit tracepoints, for
    /// a kernel that refuses the fexit programs; None where the plan does
    /// not use them, or the tracepoints cannot run either.
    pub fn without_injection_fexit(&self, refused: &str) -> Option<Plan> {
        let CapabilityState::On(how) = &self.injection_by_syscall_exit else { return None };
        if !self.injection_fexit {
            return None;
        }
        let mut plan = self.clone();
        plan.injection_fexit = false;
        plan.capabilities.set(
            Capability::Injection,
            CapabilityState::On(format!("{how}; the kernel refused the fexit programs: {refused}")),
        );
        Some(plan)
    }

    /// Whether `program` loads: its capability is on and, for a variant,
    /// it is the chosen one. A program of no capability is an error.
    pub fn autoload(&self, program: &str) -> Result<bool, ProbeError> {
        let capability =
            Capability::of_program(program).ok_or_else(|| ProbeError::UnplacedProgram(program.to_string()))?;
        if capability == Capability::Blocking {
            return Ok(self.lsm);
        }
        if [EXIT_GROUP_DEAD, EXIT_LIVE].contains(&program) && program != self.exit_program {
            return Ok(false);
        }
        let mmap_variants = [MMAP_SYSCALL_EXIT, MMAP_VMA_STORE, MMAP_MA_WRITE];
        if IMAGE_FEXIT_PROGRAMS.contains(&program) {
            if !self.image_trampolines {
                return Ok(false);
            }
        } else if self.image_trampolines && (mmap_variants.contains(&program) || MPROTECT_PROGRAMS.contains(&program)) {
            return Ok(false);
        }
        if mmap_variants.contains(&program) && program != self.mmap_program {
            return Ok(false);
        }
        if MPROTECT_PROGRAMS.contains(&program) && !self.syscall_tracepoints {
            return Ok(false);
        }
        if takeover_hooks::FEXIT_PROGRAMS.contains(&program) && !self.injection_fexit {
            return Ok(false);
        }
        if takeover_hooks::SYSCALL_EXIT_PROGRAMS.contains(&program) && self.injection_fexit {
            return Ok(false);
        }
        Ok(self.capabilities.is_on(capability))
    }

    /// This plan with image loads on the tracepoints it would use without
    /// trampolines, for a kernel that refuses the fexit programs; None
    /// where it uses no trampolines or image-load would be off without.
    pub fn without_image_trampolines(&self) -> Option<Plan> {
        let state = self.image_load_without_trampolines.clone().filter(|_| self.image_trampolines)?;
        if !state.is_on() {
            return None;
        }
        let mut plan = self.clone();
        plan.image_trampolines = false;
        plan.image_load_without_trampolines = None;
        plan.capabilities.set(Capability::ImageLoad, state);
        Some(plan)
    }

    /// The plans to try, in order, when the kernel refuses this plan's
    /// image-load programs: without trampolines, then without the VMA
    /// store.
    pub fn image_load_fallbacks(&self) -> Vec<Plan> {
        let mut plans = Vec::new();
        let mut plan = self.clone();
        if let Some(next) = plan.without_image_trampolines() {
            plans.push(next.clone());
            plan = next;
        }
        if let Some(next) = plan.without_vma_store() {
            plans.push(next);
        }
        plans
    }

    /// This plan with image loads by mmap seen at the syscall's exit
    /// instead of the VMA store, for a kernel that refuses the store
    /// program; None where there is nothing to fall back to.
    pub fn without_vma_store(&self) -> Option<Plan> {
        if self.mmap_program == MMAP_SYSCALL_EXIT || !self.syscall_tracepoints || self.image_trampolines {
            return None;
        }
        let mut plan = self.clone();
        plan.mmap_program = MMAP_SYSCALL_EXIT;
        if let Some(CapabilityState::On(how)) = self.capabilities.get(Capability::ImageLoad) {
            let lookup = how.rsplit(", ").next().unwrap_or_default();
            plan.capabilities
                .set(Capability::ImageLoad, CapabilityState::On(format!("sys_exit_mmap/mprotect, {lookup}")));
        }
        Some(plan)
    }

    /// The optional capabilities that are on.
    pub fn optional_on(&self) -> Vec<Capability> {
        self.capabilities.iter().filter(|(c, s)| !c.always_required() && s.is_on()).map(|(c, _)| c).collect()
    }

    /// Switch a capability off, saying why.
    pub fn switch_off(&mut self, capability: Capability, why: impl Into<String>) {
        self.capabilities.set(capability, CapabilityState::Off(why.into()));
    }
}

/// How the image-load probes find a process's VMAs here, or why they cannot.
fn vma_lookup(features: &KernelFeatures) -> Result<&'static str, String> {
    match (features.has(Feature::VmaIterator), features.has(Feature::FindVma)) {
        (true, _) => Ok("VMA iterator"),
        (false, true) => Ok("bpf_find_vma"),
        (false, false) => Err(format!(
            "{}, and {}",
            features.why_missing(Feature::VmaIterator),
            features.why_missing(Feature::FindVma)
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn kernel(features: &[Feature]) -> KernelFeatures {
        KernelFeatures::new(features.iter().copied(), BTreeSet::new())
    }

    /// Debian 12's 6.1: bpf_loop and bpf_find_vma, no kfuncs of 6.2+, no
    /// group_dead.
    fn debian_12() -> KernelFeatures {
        kernel(&[Feature::Loop, Feature::FindVma, Feature::MaWrite, Feature::VmaStore])
    }

    /// The mmap program x86-64 picks where the kernel has it.
    fn on_x86(store: &'static str) -> &'static str {
        if cfg!(target_arch = "x86_64") {
            store
        } else {
            MMAP_SYSCALL_EXIT
        }
    }

    fn mechanism(plan: &Plan, c: Capability) -> String {
        match plan.capabilities.get(c).unwrap() {
            CapabilityState::On(how) => how.clone(),
            CapabilityState::Off(why) => panic!("{c} is off: {why}"),
        }
    }

    #[test]
    fn the_newest_kernel_gets_the_fastest_variants() {
        let plan = Plan::new(&KernelFeatures::all(), Ok(()));
        assert!(plan.rdonly_cast && plan.vma_iterator);
        assert_eq!(plan.exit_program, EXIT_GROUP_DEAD);
        assert!(plan.autoload("on_exit").unwrap());
        assert!(!plan.autoload("on_exit_live").unwrap());
        assert_eq!(plan.mmap_program, on_x86(MMAP_MA_WRITE));
        if cfg!(target_arch = "x86_64") {
            assert_eq!(
                mechanism(&plan, Capability::ImageLoad),
                "maple_tree:ma_write + sys_exit_mprotect, VMA iterator"
            );
            assert!(plan.autoload("on_ma_write").unwrap());
            assert!(!plan.autoload("on_mmap_exit").unwrap() && !plan.autoload("on_vma_store").unwrap());
        }
        assert!(plan.autoload("on_mprotect_exit").unwrap());
        assert_eq!(plan.optional_on(), [Capability::ImageLoad, Capability::Injection]);
    }

    #[test]
    fn debian_12_loads_every_capability_through_the_fallbacks() {
        let plan = Plan::new(&debian_12(), Ok(()));
        assert!(!plan.rdonly_cast && !plan.vma_iterator);
        assert_eq!(plan.exit_program, EXIT_LIVE);
        assert!(!plan.autoload("on_exit").unwrap());
        assert!(plan.autoload("on_exit_live").unwrap());
        assert!(mechanism(&plan, Capability::Process).contains("signal->live"));
        assert_eq!(plan.mmap_program, on_x86(MMAP_VMA_STORE));
        if cfg!(target_arch = "x86_64") {
            assert_eq!(mechanism(&plan, Capability::ImageLoad), "mmap:vma_store + sys_exit_mprotect, bpf_find_vma");
        }
        assert!(plan.capabilities.is_on(Capability::Injection));
        for program in Capability::ALL.iter().flat_map(|c| c.programs()) {
            let other_mmap =
                [MMAP_SYSCALL_EXIT, MMAP_VMA_STORE, MMAP_MA_WRITE].contains(program) && *program != plan.mmap_program;
            let other = other_mmap
                || IMAGE_FEXIT_PROGRAMS.contains(program)
                || takeover_hooks::FEXIT_PROGRAMS.contains(program);
            if *program != EXIT_GROUP_DEAD && !other && !Capability::Blocking.programs().contains(program) {
                assert!(plan.autoload(program).unwrap(), "{program}");
            }
        }
    }

    #[test]
    fn without_tracefs_only_the_btf_tracepoints_load() {
        let plan = Plan::new(&KernelFeatures::all(), Err("tracefs is missing".into()));
        assert_eq!(
            plan.capabilities.get(Capability::ImageLoad),
            Some(&CapabilityState::Off("tracefs is missing".into()))
        );
        assert!(!plan.capabilities.is_on(Capability::Injection));
        assert!(plan.capabilities.is_on(Capability::Process));
        assert!(!plan.autoload("on_mmap_exit").unwrap());
        assert!(!plan.autoload("on_exec_images").unwrap(), "image load is whole or nothing");
        assert!(!plan.autoload("on_ptrace_exit").unwrap());
        assert!(plan.autoload("on_fork").unwrap());
        assert_eq!(plan.capabilities.first_missing(&[]), None);
        assert_eq!(plan.capabilities.first_missing(&[Capability::ImageLoad]).unwrap().0, Capability::ImageLoad);
    }

    #[test]
    fn image_load_is_off_when_no_vma_lookup_exists_and_says_why() {
        let plan = Plan::new(&kernel(&[Feature::Loop]), Ok(()));
        let Some(CapabilityState::Off(why)) = plan.capabilities.get(Capability::ImageLoad) else { panic!() };
        assert_eq!(why, "the kernel lacks bpf_iter_task_vma (6.7+), and the kernel lacks bpf_find_vma (5.17+)");
        assert!(plan.capabilities.is_on(Capability::Injection));
    }

    #[test]
    fn a_kernel_without_bpf_loop_cannot_run_the_required_capability() {
        let plan = Plan::new(&kernel(&[Feature::FindVma]), Ok(()));
        let (c, why) = plan.capabilities.first_missing(&[]).unwrap();
        assert_eq!((c, why), (Capability::Process, "the kernel lacks bpf_loop (5.17+)"));
    }

    #[test]
    fn a_program_of_no_capability_is_a_load_error() {
        let plan = Plan::new(&KernelFeatures::all(), Ok(()));
        let err = plan.autoload("on_something_new").unwrap_err().to_string();
        assert!(err.contains("on_something_new"), "{err}");
    }

    #[test]
    fn the_lsm_programs_load_only_when_planned() {
        let mut plan = Plan::new(&KernelFeatures::all(), Ok(()));
        assert!(!plan.autoload("lsm_bprm_check").unwrap());
        plan.lsm = true;
        for program in Capability::Blocking.programs() {
            assert!(plan.autoload(program).unwrap(), "{program}");
        }
    }

    #[test]
    fn kernels_without_vma_store_tracepoints_see_mmap_at_the_syscall_exit() {
        let plan = Plan::new(&kernel(&[Feature::Loop, Feature::FindVma]), Ok(()));
        assert_eq!(plan.mmap_program, MMAP_SYSCALL_EXIT);
        assert_eq!(mechanism(&plan, Capability::ImageLoad), "sys_exit_mmap/mprotect, bpf_find_vma");
        assert!(plan.autoload("on_mmap_exit").unwrap());
        assert!(!plan.autoload("on_ma_write").unwrap());
    }

    #[test]
    fn without_syscall_tracepoints_image_loads_by_mmap_remain_where_vma_stores_are_traced() {
        let plan = Plan::with_syscall_tracepoints(&KernelFeatures::all(), Err("no tracefs".into()), false);
        assert!(!plan.syscall_tracepoints);
        for program in MPROTECT_PROGRAMS.iter().chain(Capability::Injection.programs()) {
            assert!(!plan.autoload(program).unwrap(), "{program}");
        }
        assert_eq!(
            plan.capabilities.get(Capability::Injection),
            Some(&CapabilityState::Off(SYSCALL_TRACEPOINTS_OFF.into()))
        );
        if cfg!(target_arch = "x86_64") {
            assert_eq!(
                mechanism(&plan, Capability::ImageLoad),
                format!("maple_tree:ma_write, VMA iterator; no mprotect probe: {SYSCALL_TRACEPOINTS_OFF}")
            );
            assert!(plan.autoload("on_ma_write").unwrap() && plan.autoload("on_exec_images").unwrap());
        }
        // Without a VMA-store tracepoint, image loads need the syscall ones.
        let old = Plan::with_syscall_tracepoints(&kernel(&[Feature::Loop, Feature::FindVma]), Ok(()), false);
        assert_eq!(
            old.capabilities.get(Capability::ImageLoad),
            Some(&CapabilityState::Off(SYSCALL_TRACEPOINTS_OFF.into()))
        );
        // With them on, a missing tracefs still switches image loads off whole.
        let plan = Plan::new(&KernelFeatures::all(), Err("no tracefs".into()));
        assert_eq!(plan.capabilities.get(Capability::ImageLoad), Some(&CapabilityState::Off("no tracefs".into())));
    }

    #[test]
    fn a_refused_vma_store_program_falls_back_to_the_syscall_exit() {
        let plan = Plan::new(&debian_12(), Ok(()));
        if plan.mmap_program == MMAP_SYSCALL_EXIT {
            assert!(plan.without_vma_store().is_none());
            return;
        }
        let back = plan.without_vma_store().unwrap();
        assert_eq!(back.mmap_program, MMAP_SYSCALL_EXIT);
        assert_eq!(mechanism(&back, Capability::ImageLoad), "sys_exit_mmap/mprotect, bpf_find_vma");
        assert!(back.without_vma_store().is_none());
        let off = Plan::with_syscall_tracepoints(&debian_12(), Ok(()), false);
        assert!(off.without_vma_store().is_none(), "no syscall tracepoint to fall back to");
    }

    #[test]
    fn switching_off_keeps_the_reason() {
        let mut plan = Plan::new(&KernelFeatures::all(), Ok(()));
        plan.switch_off(Capability::Injection, "the verifier refused it");
        assert!(!plan.autoload("on_openat_exit").unwrap());
        assert_eq!(plan.optional_on(), [Capability::ImageLoad]);
    }

    #[test]
    fn with_trampolines_image_loads_use_fexit_and_no_syscall_tracepoint() {
        let plan = Plan::with_trampolines(&debian_12(), Ok(()), true, Ok(()));
        assert!(plan.image_trampolines);
        assert_eq!(mechanism(&plan, Capability::ImageLoad), format!("{IMAGE_FEXIT}, bpf_find_vma"));
        for program in IMAGE_FEXIT_PROGRAMS.iter().chain(&["on_exec_images"]) {
            assert!(plan.autoload(program).unwrap(), "{program}");
        }
        for program in [MMAP_SYSCALL_EXIT, MMAP_VMA_STORE, MMAP_MA_WRITE].iter().chain(&MPROTECT_PROGRAMS) {
            assert!(!plan.autoload(program).unwrap(), "{program}");
        }
        assert!(plan.autoload("on_ptrace_exit").unwrap(), "injection keeps its own probes");
        // Neither tracefs nor the syscall tracepoints are needed, mprotect included.
        let no_store = kernel(&[Feature::Loop, Feature::VmaIterator]);
        let off = Plan::with_trampolines(&no_store, Err("no tracefs".into()), false, Ok(()));
        assert_eq!(mechanism(&off, Capability::ImageLoad), format!("{IMAGE_FEXIT}, VMA iterator"));
        assert!(off.autoload("fexit_mprotect").unwrap());
        assert!(off.without_image_trampolines().is_none(), "image-load is off without trampolines here");
        assert!(off.image_load_fallbacks().is_empty());
        // Refused trampolines (this VM, or hidden) leave the plan as it was.
        let refused = Plan::with_trampolines(&debian_12(), Ok(()), true, Err("EPERM".into()));
        assert_eq!(refused, Plan::new(&debian_12(), Ok(())));
        for program in IMAGE_FEXIT_PROGRAMS {
            assert!(!refused.autoload(program).unwrap(), "{program}");
        }
    }

    #[test]
    fn refused_fexit_programs_fall_back_to_the_tracepoint_plan() {
        let plan = Plan::with_trampolines(&debian_12(), Ok(()), true, Ok(()));
        let fallbacks = plan.image_load_fallbacks();
        assert_eq!(fallbacks[0], Plan::new(&debian_12(), Ok(())));
        assert_eq!(fallbacks.len(), if cfg!(target_arch = "x86_64") { 2 } else { 1 });
        assert_eq!(fallbacks.last().unwrap().mmap_program, MMAP_SYSCALL_EXIT);
        assert!(plan.without_vma_store().is_none(), "the store fallback comes after the tracepoint plan");
    }

    #[test]
    fn where_trampolines_work_takeovers_are_seen_by_fexit_without_syscall_tracepoints() {
        if !cfg!(target_arch = "x86_64") {
            return;
        }
        let mut plan = Plan::with_syscall_tracepoints(&debian_12(), Ok(()), false);
        plan.choose_injection_fexit(Ok(()));
        assert_eq!(mechanism(&plan, Capability::Injection), FEXIT_MECHANISM);
        for program in takeover_hooks::FEXIT_PROGRAMS {
            assert!(plan.autoload(program).unwrap(), "{program}");
        }
        for program in takeover_hooks::SYSCALL_EXIT_PROGRAMS.iter().chain(&MPROTECT_PROGRAMS) {
            assert!(!plan.autoload(program).unwrap(), "{program}");
        }
        // Refused by the verifier: nothing to fall back to in this mode.
        assert!(plan.without_injection_fexit("no").is_none());

        let mut plan = Plan::new(&debian_12(), Ok(()));
        plan.choose_injection_fexit(Ok(()));
        assert!(plan.autoload("on_mem_open").unwrap() && !plan.autoload("on_openat_exit").unwrap());
        let back = plan.without_injection_fexit("E2BIG").unwrap();
        assert_eq!(
            mechanism(&back, Capability::Injection),
            format!("{SYSCALL_EXIT_MECHANISM}; the kernel refused the fexit programs: E2BIG")
        );
        assert!(back.autoload("on_openat_exit").unwrap() && !back.autoload("on_mem_open").unwrap());
        assert!(back.without_injection_fexit("again").is_none());
    }

    #[test]
    fn where_trampolines_are_refused_the_syscall_exits_stay_and_say_why() {
        let mut plan = Plan::new(&debian_12(), Ok(()));
        plan.choose_injection_fexit(Err("EPERM".into()));
        assert_eq!(mechanism(&plan, Capability::Injection), format!("{SYSCALL_EXIT_MECHANISM}; fexit not used: EPERM"));
        assert!(plan.autoload("on_ptrace_exit").unwrap() && !plan.autoload("on_arch_ptrace").unwrap());
        assert!(plan.without_injection_fexit("no").is_none());

        let mut off = Plan::with_syscall_tracepoints(&debian_12(), Ok(()), false);
        off.choose_injection_fexit(Err("EPERM".into()));
        assert_eq!(
            off.capabilities.get(Capability::Injection),
            Some(&CapabilityState::Off(format!("{SYSCALL_TRACEPOINTS_OFF}; fexit not used: EPERM")))
        );
        for program in Capability::Injection.programs() {
            assert!(!off.autoload(program).unwrap(), "{program}");
        }
    }
}
