//! Where takeovers are seen when the kernel runs BPF trampolines: fexit
//! programs on the kernel functions that perform them
//! (`bpf/injection_fexit.bpf.h`), instead of syscall exit tracepoints
//! that put every syscall of the machine on the slow path.
//!
//! The plan chooses them only where [`crate::bpf_lsm::trampolines_usable`]
//! and every target function is in the kernel's BTF ([`missing_function`]);
//! a verifier refusal at load falls back to the tracepoints
//! ([`crate::plan::Plan::without_injection_fexit`]).

use libbpf_rs::btf::types::Func;
use libbpf_rs::btf::Btf;

/// Every injection program: the fexit programs, then the syscall exit
/// tracepoint programs they replace. The plan loads one half.
pub const PROGRAMS: [&str; 12] = [
    "on_arch_ptrace",
    "on_compat_arch_ptrace",
    "on_ptrace_attach",
    "on_vm_writev_x64",
    "on_vm_writev_ia32",
    "on_mem_open",
    "on_ptrace_exit",
    "on_vm_writev_exit",
    "on_openat_exit",
    "on_openat2_exit",
    "on_open_exit",
    "on_creat_exit",
];

/// The fexit programs, by function name.
pub const FEXIT_PROGRAMS: &[&str] = PROGRAMS.split_at(6).0;

/// The syscall exit tracepoint programs they replace.
pub const SYSCALL_EXIT_PROGRAMS: &[&str] = PROGRAMS.split_at(6).1;

/// The kernel functions the fexit programs attach to (x86-64).
pub const TARGET_FUNCTIONS: [&str; 6] = [
    "arch_ptrace",
    "compat_arch_ptrace",
    "ptrace_attach",
    "__x64_sys_process_vm_writev",
    "__ia32_sys_process_vm_writev",
    "mem_open",
];

/// The capabilities line's mechanism for the fexit programs.
pub const FEXIT_MECHANISM: &str =
    "fexit arch_ptrace/compat_arch_ptrace/ptrace_attach/sys_process_vm_writev/mem_open, no syscall tracepoint";

/// The capabilities line's mechanism for the syscall exit tracepoints.
pub const SYSCALL_EXIT_MECHANISM: &str = "sys_exit_ptrace/process_vm_writev/open*";

/// The first target function the running kernel's BTF lacks, said as a
/// reason; None when all are there (or the BTF cannot be read: then the
/// load itself says what is wrong, and the tracepoints take over).
pub fn missing_function() -> Option<String> {
    let btf = Btf::from_vmlinux().ok()?;
    TARGET_FUNCTIONS
        .iter()
        .find(|f| btf.type_by_name::<Func<'_>>(f).is_none())
        .map(|f| format!("the kernel has no {f} to attach an fexit program to"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_takeover_program_belongs_to_injection() {
        for program in PROGRAMS {
            assert_eq!(crate::Capability::of_program(program), Some(crate::Capability::Injection), "{program}");
        }
    }
}
