/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Takeovers seen by fexit programs (BPF trampolines) on the kernel
 * functions that perform them, where the kernel allows trampolines: no
 * syscall tracepoint, so no other syscall of the machine pays anything,
 * and 32-bit (int 0x80) callers are seen too. The plan loads these or the
 * syscall exit tracepoints of injection.bpf.h, never both; both report
 * through tampered() and the `takeovers` map.
 *
 * The functions (checked in the BTF of Debian 12's 6.1 and of 6.18, where
 * each has an out-of-line copy a trampoline can attach to):
 * - arch_ptrace(child, request, addr, data) and, for 32-bit tracers,
 *   compat_arch_ptrace: every ptrace request on an attached, stopped
 *   tracee after ptrace_check_attach, with the tracee's task: no pid
 *   lookup. Register and memory writes (POKE*, SET*REGS*) end here;
 *   PTRACE_POKE* through ptrace_request, called from them.
 * - ptrace_attach(task, request, addr, flags): PTRACE_ATTACH and
 *   PTRACE_SEIZE, which sys_ptrace handles before arch_ptrace.
 * - the process_vm_writev syscall's own entry points (x86-64 and 32-bit):
 *   process_vm_rw, which all four process_vm_* syscalls share,
 *   takes seven arguments, more than 6.1's trampolines pass. An fexit on
 *   a syscall's wrapper is a function trampoline on that syscall only,
 *   not a syscall tracepoint; its one argument is the caller's pt_regs.
 * - mem_open(inode, file): the open of /proc/PID/mem and task/TID/mem
 *   (proc_mem_operations, so never inlined), whatever the path or the
 *   open syscall; the file says whether it is open for writing.
 *
 * Each runs only when its function returns, with its return value: only
 * a successful takeover is reported, as with the exit tracepoints.
 */
#ifndef RSYSMON_INJECTION_FEXIT_BPF_H
#define RSYSMON_INJECTION_FEXIT_BPF_H

#include "injection.bpf.h"

/* The ptrace `request` on `target` returned `ret`. */
static __always_inline void ptrace_done(struct task_struct *target, long request, long ret)
{
	__u32 method;
	bool whole_process;
	if (ret >= 0 && ptrace_takeover(request, &method, &whole_process))
		tampered(target, method, whole_process);
}

SEC("fexit/arch_ptrace")
int BPF_PROG(on_arch_ptrace, struct task_struct *child, long request, unsigned long addr, unsigned long data,
	     long ret)
{
	ptrace_done(child, request, ret);
	return 0;
}

/* compat_long_t request, compat_ulong_t addr and data. */
SEC("fexit/compat_arch_ptrace")
int BPF_PROG(on_compat_arch_ptrace, struct task_struct *child, int request, unsigned int addr, unsigned int data,
	     long ret)
{
	ptrace_done(child, request, ret);
	return 0;
}

SEC("fexit/ptrace_attach")
int BPF_PROG(on_ptrace_attach, struct task_struct *task, long request, unsigned long addr, unsigned long flags,
	     int ret)
{
	/* Only PTRACE_ATTACH and PTRACE_SEIZE come here. */
	ptrace_done(task, request, ret);
	return 0;
}

#if defined(__TARGET_ARCH_x86)
/* The syscall wrappers of x86-64: process_vm_writev(pid, ...), pid in di. */
SEC("fexit/__x64_sys_process_vm_writev")
int BPF_PROG(on_vm_writev_x64, struct pt_regs *regs, long ret)
{
	vm_written(BPF_CORE_READ(regs, di), ret);
	return 0;
}

/* From 32-bit code (int 0x80, sysenter): pid in bx. The 32-bit table
 * calls the native entry (import_iovec reads 32-bit iovecs itself since
 * 5.10); __ia32_compat_sys_process_vm_writev is only a weak stub. */
SEC("fexit/__ia32_sys_process_vm_writev")
int BPF_PROG(on_vm_writev_ia32, struct pt_regs *regs, long ret)
{
	vm_written(BPF_CORE_READ(regs, bx), ret);
	return 0;
}
#endif

SEC("fexit/mem_open")
int BPF_PROG(on_mem_open, struct inode *inode, struct file *file, int ret)
{
	if (ret == 0)
		proc_mem_opened(file);
	return 0;
}

#endif /* RSYSMON_INJECTION_FEXIT_BPF_H */
