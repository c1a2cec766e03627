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

/// The exit program where sched_process_exit passes `group_dead`.
pub const EXIT_GROUP_DEAD: &str = "on_exit";
/// The exit program of older kernels (signal->live and a claim).
pub const EXIT_LIVE: &str = "on_exit_live";

/// What to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `have_rdonly_cast`: direct loads through kept pointers.
    pub rdonly_cast: bool,
    /// `have_vma_iter`: image lookups in one iterator pass.
    pub vma_iterator: bool,
    /// The sched_process_exit program to load; the other is not loaded.
    pub exit_program: &'static str,
    /// The kernel-side capabilities (process, image load, injection).
    pub capabilities: Capabilities,
    /// Load the blocking capability's BPF LSM programs: set by the loader
    /// where blocking is wanted and [`crate::bpf_lsm::lsm_usable`].
    pub lsm: bool,
}

impl Plan {
    /// The plan for a kernel with `features`; `tracefs` is whether syscall
    /// tracepoints can attach (or why not).
    pub fn new(features: &KernelFeatures, tracefs: Result<(), String>) -> Plan {
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

        let image_load = match (&tracefs, has(Feature::VmaIterator), has(Feature::FindVma)) {
            (Err(why), _, _) => Off(why.clone()),
            _ if !has(Feature::Loop) => Off(lacks(Feature::Loop)),
            (Ok(()), true, _) => On("sys_exit_mmap/mprotect, VMA iterator".into()),
            (Ok(()), false, true) => On("sys_exit_mmap/mprotect, bpf_find_vma".into()),
            (Ok(()), false, false) => Off(format!("{}, and {}", lacks(Feature::VmaIterator), lacks(Feature::FindVma))),
        };

        let injection = match &tracefs {
            Err(why) => Off(why.clone()),
            Ok(()) => On("sys_exit_ptrace/process_vm_writev/open*".into()),
        };

        Plan {
            rdonly_cast: has(Feature::RdonlyCast),
            vma_iterator: has(Feature::VmaIterator),
            exit_program,
            capabilities: Capabilities::new([
                (Capability::Process, process),
                (Capability::ImageLoad, image_load),
                (Capability::Injection, injection),
            ]),
            lsm: false,
        }
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
        Ok(self.capabilities.is_on(capability))
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
        kernel(&[Feature::Loop, Feature::FindVma])
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
        assert_eq!(mechanism(&plan, Capability::ImageLoad), "sys_exit_mmap/mprotect, VMA iterator");
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
        assert_eq!(mechanism(&plan, Capability::ImageLoad), "sys_exit_mmap/mprotect, bpf_find_vma");
        assert!(plan.capabilities.is_on(Capability::Injection));
        for program in Capability::ALL.iter().flat_map(|c| c.programs()) {
            if *program != EXIT_GROUP_DEAD && !Capability::Blocking.programs().contains(program) {
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
    fn switching_off_keeps_the_reason() {
        let mut plan = Plan::new(&KernelFeatures::all(), Ok(()));
        plan.switch_off(Capability::Injection, "the verifier refused it");
        assert!(!plan.autoload("on_openat_exit").unwrap());
        assert_eq!(plan.optional_on(), [Capability::ImageLoad]);
    }
}
