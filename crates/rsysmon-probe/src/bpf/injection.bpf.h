/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Remote threads: threads created in a process by another process.
 *
 * clone(CLONE_THREAD) always creates the thread in the caller's own
 * process, so a thread is "remote" when its creator was taken over by
 * another process first. Takeovers are seen when ptrace, process_vm_writev
 * or an open of /proc/PID/mem for writing returns successfully: a
 * `process-tamper` record is sent and the target is marked in `takeovers`
 * (register writes mark the thread, memory writes the whole process). When
 * a marked thread or process creates a thread within the window, the fork
 * probe sends a `remote-thread` record. The marks live in the kernel, so
 * the correlation survives ring-buffer loss; they expire after the window
 * (and the LRU map forgets the oldest).
 *
 * Two mechanisms see the takeovers; the plan loads one (plan.rs):
 * - here, syscall *exit* tracepoints: the arguments are still in the
 *   caller's saved registers. Attaching any syscall tracepoint puts every
 *   syscall of the machine on the kernel's slow path, and they miss the
 *   32-bit entry (int 0x80);
 * - where the kernel runs BPF trampolines, fexit programs on the kernel
 *   functions that do the takeover (injection_fexit.bpf.h): only those
 *   calls pay, 32-bit callers included.
 * Both report through tampered() below and mark the same `takeovers` map,
 * so what follows a takeover does not depend on how it was seen.
 *
 * Attaching (PTRACE_ATTACH/SEIZE) marks the target thread too, unless the
 * tracer is an ancestor of the target, and a thread created while its
 * creator is traced by a non-ancestor is remote whatever the tracer asked
 * for: a tracer can make a thread without writing registers or memory
 * (PTRACE_SET_SYSCALL_INFO rewrites a pending syscall into clone). See
 * tracer.bpf.h, which also documents the ancestor exemption as a hole.
 *
 * /proc/PID/mem is recognised by the file the open returned, not by the
 * name the caller passed: relative paths, /proc/self/../PID/mem, the
 * task/TID/mem alias, open, openat, openat2 and creat all come to the same
 * proc inode, which names the target's struct pid.
 *
 * Pids passed to ptrace and process_vm_writev are looked up as the kernel
 * does, in the caller's pid namespace (task_by_vpid below walks that
 * namespace's pid tree, which every supported kernel has; no kfunc), so a
 * tracer inside a container is attributed right and its target too.
 */
#ifndef RSYSMON_INJECTION_BPF_H
#define RSYSMON_INJECTION_BPF_H

#include "common.bpf.h"
#include "tracer.bpf.h"

#define PTRACE_POKETEXT 4
#define PTRACE_POKEDATA 5
#define PTRACE_POKEUSR 6
#define PTRACE_SETREGS 13
#define PTRACE_SETFPREGS 15
#define PTRACE_ATTACH 16
#define PTRACE_SETFPXREGS 19 /* 32-bit x86 only */
#define PTRACE_SETREGSET 0x4205
#define PTRACE_SEIZE 0x4206
#define O_ACCMODE 3
#define FMODE_WRITE 0x2
#define PROC_SUPER_MAGIC 0x9fa0

/* The pid tree of a pid namespace: an IDR, i.e. a radix tree whose internal
 * nodes are tagged pointers (lib/radix-tree.c). */
#define RADIX_TREE_MAP_SHIFT 6
#define RADIX_TREE_MAP_MASK ((1UL << RADIX_TREE_MAP_SHIFT) - 1)
#define RADIX_TREE_ENTRY_MASK 3UL
#define RADIX_TREE_INTERNAL_NODE 2UL
/* pid_max is at most 2^22: four levels of six bits. */
#define PID_TREE_LEVELS 4

/* How long a takeover makes new threads of its target remote. */
const volatile __u64 remote_window_ns = 10ULL * 1000 * 1000 * 1000;

/* Who took a thread or process over, and when. */
struct takeover {
	__u64 time_ns;
	__u32 creator_pid;
	__u32 creator_tid;
	__u32 method;
	char creator_comm[RECORD_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32); /* tid (register writes) or tgid (memory writes) */
	__type(value, struct takeover);
} takeovers SEC(".maps");

/* The pid namespace the current task sees pids in: task_active_pid_ns(),
 * the namespace of its own pid's deepest level. */
static __always_inline struct pid_namespace *current_pid_ns(void)
{
	struct task_struct *current = bpf_get_current_task_btf();
	struct pid *pid = BPF_CORE_READ(current, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct pid_namespace *ns = NULL;
	unsigned long at = (unsigned long)pid + bpf_core_field_offset(struct pid, numbers) +
			   (level & 31) * bpf_core_type_size(struct upid) + bpf_core_field_offset(struct upid, ns);
	bpf_probe_read_kernel(&ns, sizeof(ns), (void *)at);
	return ns;
}

/* The task a struct pid names as a thread (pid_task(pid, PIDTYPE_PID)), as
 * a number: read its fields with CORE_LOAD. NULL once it has been reaped. */
static __always_inline struct task_struct *task_of_pid(struct pid *pid)
{
	struct hlist_node *first = BPF_CORE_READ(pid, tasks[PIDTYPE_PID].first);
	if (!first)
		return NULL;
	return (void *)first - bpf_core_field_offset(struct task_struct, pid_links);
}

/*
 * find_task_by_vpid(nr): the thread whose id the caller sees as `nr`,
 * found in the caller's pid namespace's IDR (radix_tree_lookup by hand).
 * Programs run under RCU, which keeps the tree's nodes, the struct pid and
 * the task from being freed while they are read.
 */
static __always_inline struct task_struct *task_by_vpid(__u32 nr)
{
	struct pid_namespace *ns = current_pid_ns();
	if (!ns)
		return NULL;
	unsigned long entry = (unsigned long)BPF_CORE_READ(ns, idr.idr_rt.xa_head);
	bool in_tree = false;
#pragma unroll
	for (int i = 0; i < PID_TREE_LEVELS + 1; i++) {
		if ((entry & RADIX_TREE_ENTRY_MASK) != RADIX_TREE_INTERNAL_NODE)
			break;
		struct xa_node *node = (void *)(entry - RADIX_TREE_INTERNAL_NODE);
		__u8 shift = BPF_CORE_READ(node, shift);
		if (shift > 30 || (!in_tree && ((__u64)nr >> shift) > RADIX_TREE_MAP_MASK))
			return NULL; /* beyond the tree's largest index */
		in_tree = true;
		unsigned long slot = (unsigned long)node + bpf_core_field_offset(struct xa_node, slots) +
				     (((__u64)nr >> shift) & RADIX_TREE_MAP_MASK) * sizeof(void *);
		if (bpf_probe_read_kernel(&entry, sizeof(entry), (void *)slot))
			return NULL;
		if (shift == 0)
			break;
	}
	/* Not a leaf: a missing entry, a retry entry, or a tree deeper than
	 * any pid needs. */
	if (!in_tree || !entry || (entry & RADIX_TREE_ENTRY_MASK))
		return NULL;
	return task_of_pid((struct pid *)entry);
}

/*
 * The current thread has just written into (or attached to) `target`, a
 * task found by task_by_vpid or task_of_pid: report it and, for writes,
 * mark the target. Writing to one's own process is not tampering.
 */
static __always_inline void tampered(struct task_struct *target, __u32 method, bool whole_process)
{
	if (!target)
		return;
	__u32 target_tgid = CORE_LOAD(struct task_struct, target, tgid);
	__u32 target_tid = CORE_LOAD(struct task_struct, target, pid);
	struct task_struct *current = bpf_get_current_task_btf();
	__u32 my_tgid = current->tgid;
	__u32 my_tid = current->pid;
	if (target_tgid == my_tgid)
		return;
	/* Attaching marks unless the tracer started the target's line itself. */
	bool attach = method == TAMPER_PTRACE_ATTACH || method == TAMPER_PTRACE_SEIZE;
	bool mark = !attach || !is_ancestor(target, my_tgid);

	__u8 *buf = scratch_buf();
	if (!buf)
		return;
	struct tamper_record *rec = (void *)buf;
	fill_header(&rec->header, RECORD_PROCESS_TAMPER, target);
	rec->creator_pid = my_tgid;
	rec->creator_tid = my_tid;
	bpf_probe_read_kernel_str(rec->creator_comm, sizeof(rec->creator_comm), current->group_leader->comm);
	rec->method = method;
	rec->_pad = 0;
	rec->header.size = sizeof(*rec);

	if (mark) {
		struct takeover t = {
			.time_ns = rec->header.time_ns,
			.creator_pid = my_tgid,
			.creator_tid = my_tid,
			.method = method,
		};
		__builtin_memcpy(t.creator_comm, rec->creator_comm, sizeof(t.creator_comm));
		__u32 key = whole_process ? target_tgid : target_tid;
		bpf_map_update_elem(&takeovers, &key, &t, BPF_ANY);
	}
	submit(rec, sizeof(*rec));
}

/* The saved user registers of the current task: the syscall's arguments. */
static __always_inline struct pt_regs *syscall_regs(void)
{
	return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

/*
 * The takeover a successful ptrace `request` is, if any: its method, and
 * whether it marks the whole process (memory) or the thread (registers).
 */
static __always_inline bool ptrace_takeover(long request, __u32 *method, bool *whole_process)
{
	*whole_process = false;
	switch (request) {
	case PTRACE_POKETEXT:
	case PTRACE_POKEDATA:
		*method = TAMPER_PTRACE_POKE;
		*whole_process = true;
		return true;
	case PTRACE_POKEUSR:
		*method = TAMPER_PTRACE_POKE;
		return true;
	case PTRACE_SETREGS:
	case PTRACE_SETFPREGS:
	case PTRACE_SETFPXREGS:
	case PTRACE_SETREGSET:
		*method = TAMPER_PTRACE_SETREGS;
		return true;
	case PTRACE_ATTACH:
		*method = TAMPER_PTRACE_ATTACH;
		return true;
	case PTRACE_SEIZE:
		*method = TAMPER_PTRACE_SEIZE;
		return true;
	default:
		return false;
	}
}

SEC("tracepoint/syscalls/sys_exit_ptrace")
int on_ptrace_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (ctx->ret < 0)
		return 0;
	struct pt_regs *regs = syscall_regs();
	long request = PT_REGS_PARM1_SYSCALL(regs);
	__u32 target = PT_REGS_PARM2_SYSCALL(regs);
	__u32 method;
	bool whole_process;
	/* Looked up only for a request that takes over: most are reads. */
	if (ptrace_takeover(request, &method, &whole_process))
		tampered(task_by_vpid(target), method, whole_process);
	return 0;
}

/* process_vm_writev(pid, ...) returned `written`: bytes written, or an error. */
static __always_inline void vm_written(__u32 pid, long written)
{
	if (written <= 0)
		return; /* failed, or 0 bytes written: nothing touched */
	tampered(task_by_vpid(pid), TAMPER_PROCESS_VM_WRITEV, true);
}

SEC("tracepoint/syscalls/sys_exit_process_vm_writev")
int on_vm_writev_exit(struct trace_event_raw_sys_exit *ctx)
{
	vm_written(PT_REGS_PARM1_SYSCALL(syscall_regs()), ctx->ret);
	return 0;
}

/*
 * `file` was just opened: if it is a /proc/PID/mem (or task/TID/mem) file
 * open for writing, PID's memory can now be written. `file` is a BTF
 * pointer or one the verifier knows only as a number.
 */
static __always_inline void proc_mem_opened(struct file *file)
{
	if (!file || !(CORE_LOAD(struct file, file, f_mode) & FMODE_WRITE))
		return;
	struct inode *inode = CORE_LOAD(struct file, file, f_inode);
	struct super_block *sb = CORE_LOAD(struct inode, inode, i_sb);
	if (CORE_LOAD(struct super_block, sb, s_magic) != PROC_SUPER_MAGIC)
		return;
	struct qstr name = BPF_CORE_READ(file, f_path.dentry, d_name);
	char text[4] = {};
	if (name.len != 3 || bpf_probe_read_kernel(text, 3, name.name) || text[0] != 'm' || text[1] != 'e' ||
	    text[2] != 'm')
		return;
	/* /proc/PID/mem and /proc/PID/task/TID/mem: the inode names the task */
	struct proc_inode *pi = container_of(inode, struct proc_inode, vfs_inode);
	struct pid *pid = BPF_CORE_READ(pi, pid);
	if (!pid)
		return; /* some other "mem" under /proc */
	tampered(task_of_pid(pid), TAMPER_PROC_MEM, true);
}

/*
 * An open returned the new descriptor `fd`: reads the file from the
 * descriptor table, where the open just put it.
 */
static __always_inline void opened(long fd)
{
	struct task_struct *current = bpf_get_current_task_btf();
	struct fdtable *fdt = current->files->fdt;
	if (!fdt || fd >= fdt->max_fds)
		return;
	struct file **fds = fdt->fd;
	struct file *slot = NULL;
	bpf_core_read(&slot, sizeof(slot), &fds[fd]);
	/* A number to the verifier: read with CORE_LOAD. */
	proc_mem_opened(slot);
}

/* open and openat say in their flags whether the file may be written: most
 * opens return after that one test. */
static __always_inline int opened_with_flags(long fd, unsigned long flags)
{
	if (fd < 0 || (flags & O_ACCMODE) == 0)
		return 0;
	opened(fd);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int on_openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return opened_with_flags(ctx->ret, PT_REGS_PARM3_SYSCALL(syscall_regs()));
}

/* openat2's flags are in user memory and creat always writes: both are
 * rare enough to check every descriptor they return. */
static __always_inline int opened_any(long fd)
{
	if (fd >= 0)
		opened(fd);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int on_openat2_exit(struct trace_event_raw_sys_exit *ctx)
{
	return opened_any(ctx->ret);
}

#if defined(__TARGET_ARCH_x86)
/* open and creat exist on x86-64 only; newer ABIs have openat alone. */
SEC("tracepoint/syscalls/sys_exit_open")
int on_open_exit(struct trace_event_raw_sys_exit *ctx)
{
	return opened_with_flags(ctx->ret, PT_REGS_PARM2_SYSCALL(syscall_regs()));
}

SEC("tracepoint/syscalls/sys_exit_creat")
int on_creat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return opened_any(ctx->ret);
}
#endif

/*
 * Called by the fork probe for a new thread `child` created by `current`.
 * A recent takeover names the most specific method; without one, a creator
 * traced right now by a non-ancestor makes the thread remote (tracer.bpf.h),
 * with the time of the thread's creation as the takeover's.
 */
static __always_inline void check_remote_thread(struct task_struct *current, struct task_struct *child)
{
	__u32 creator_tid = current->pid;
	__u32 tgid = current->tgid;
	__u64 now = bpf_ktime_get_boot_ns();
	struct takeover *t = bpf_map_lookup_elem(&takeovers, &creator_tid);
	if (!t || now - t->time_ns > remote_window_ns)
		t = bpf_map_lookup_elem(&takeovers, &tgid);
	struct takeover traced;
	if (!t || now - t->time_ns > remote_window_ns) {
		if (!traced_by_stranger(current, &traced.creator_pid, &traced.creator_tid, &traced.method,
					traced.creator_comm))
			return;
		traced.time_ns = now;
		t = &traced;
	}

	__u8 *buf = scratch_buf();
	if (!buf)
		return;
	struct remote_thread_record *rec = (void *)buf;
	fill_header(&rec->header, RECORD_REMOTE_THREAD, child);
	rec->target_creator_tid = creator_tid;
	rec->creator_pid = t->creator_pid;
	rec->creator_tid = t->creator_tid;
	rec->method = t->method;
	__builtin_memcpy(rec->creator_comm, t->creator_comm, sizeof(rec->creator_comm));
	rec->tamper_time_ns = t->time_ns;
	rec->header.size = sizeof(*rec);
	submit(rec, sizeof(*rec));
}

#endif /* RSYSMON_INJECTION_BPF_H */
