/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Who is tracing a task, and whether that tracer is one of its ancestors.
 *
 * A tracer can make its tracee create a thread without any request that
 * names a register or a word of memory: PTRACE_SET_SYSCALL_INFO (6.16)
 * rewrites a pending syscall into clone(CLONE_THREAD), and so can any
 * future request. So the remote-thread check does not list requests: a
 * thread created by a task that is being traced right now is remote, made
 * by the tracer (task->parent while task->ptrace is set), and an attach or
 * seize marks its target like a register write does (see injection.bpf.h),
 * which covers a tracer that detaches before the clone runs.
 *
 * Known hole, kept on purpose: a tracer that is an ancestor of its tracee
 * (strace -f, gdb PROGRAM, any supervisor that traces what it starts) is
 * exempt, since tracing one's own children is what debuggers and tracers
 * do all day. A process that starts its victim itself can therefore make
 * threads in it through ptrace unreported; register and memory writes by
 * such a tracer are still reported and still mark the target.
 *
 * Kernel structs are read with BPF_CORE_READ, which every supported kernel
 * accepts on any task pointer.
 */
#ifndef RSYSMON_TRACER_BPF_H
#define RSYSMON_TRACER_BPF_H

#include "common.bpf.h"

/* task->ptrace bits (include/linux/ptrace.h, the same since 3.1). */
#define PT_PTRACED 0x00000001
#define PT_SEIZED 0x00010000

/* Generations of real parents looked at; deeper ancestors are not
 * recognised, so such a tracer is reported (never silently exempt). */
#define ANCESTOR_DEPTH 24

/* Whether the process `tgid` is an ancestor of `task` (its real parent,
 * that one's real parent, and so on up to init). */
static __always_inline bool is_ancestor(struct task_struct *task, __u32 tgid)
{
	struct task_struct *t = task;

#pragma unroll
	for (int i = 0; i < ANCESTOR_DEPTH; i++) {
		struct task_struct *parent = BPF_CORE_READ(t, real_parent);
		if (!parent || parent == t)
			return false;
		if ((__u32)BPF_CORE_READ(parent, tgid) == tgid)
			return true;
		t = parent;
	}
	return false;
}

/*
 * If `task` is being traced by a process that is not its ancestor, fill the
 * tracer's identity into the creator fields and return true. `method` is
 * the way the tracer attached.
 */
static __always_inline bool traced_by_stranger(struct task_struct *task, __u32 *creator_pid, __u32 *creator_tid,
					       __u32 *method, char *creator_comm)
{
	unsigned int flags = BPF_CORE_READ(task, ptrace);
	if (!(flags & PT_PTRACED))
		return false;
	struct task_struct *tracer = BPF_CORE_READ(task, parent);
	if (!tracer)
		return false;
	__u32 tracer_tgid = BPF_CORE_READ(tracer, tgid);
	if (tracer_tgid == (__u32)BPF_CORE_READ(task, tgid) || is_ancestor(task, tracer_tgid))
		return false;
	*creator_pid = tracer_tgid;
	*creator_tid = BPF_CORE_READ(tracer, pid);
	*method = (flags & PT_SEIZED) ? TAMPER_PTRACE_SEIZE : TAMPER_PTRACE_ATTACH;
	struct task_struct *leader = BPF_CORE_READ(tracer, group_leader);
	bpf_probe_read_kernel_str(creator_comm, RECORD_COMM_LEN, &leader->comm);
	return true;
}

#endif /* RSYSMON_TRACER_BPF_H */
