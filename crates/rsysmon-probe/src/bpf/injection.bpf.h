/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Remote threads: the book's KDetector on Linux.
 *
 * clone(CLONE_THREAD) always creates the thread in the caller's own
 * process, so a thread is "remote" when its creator was taken over by
 * another process first. Takeovers are seen on the syscall tracepoints of
 * ptrace, process_vm_writev and openat (/proc/PID/mem for writing): the
 * arguments are kept at entry, and on a successful exit a `process-tamper`
 * record is sent and the target is marked in `takeovers` (register writes
 * mark the thread, memory writes the whole process). When a marked thread
 * or process creates a thread within the window, the fork probe sends a
 * `remote-thread` record. The marks live in the kernel, so the correlation
 * survives ring-buffer loss; they expire after the window (and the LRU map
 * forgets the oldest).
 *
 * Attaching (PTRACE_ATTACH/SEIZE) alone is reported but does not mark:
 * read-only tracers such as strace attach, and cannot make a thread.
 *
 * Pids in the arguments are taken in the initial pid namespace
 * (bpf_task_from_pid): a tracer inside a container is attributed right,
 * but its target id is looked up as a host pid.
 */
#ifndef RSYSMON_INJECTION_BPF_H
#define RSYSMON_INJECTION_BPF_H

#include "common.bpf.h"

#define PTRACE_POKETEXT 4
#define PTRACE_POKEDATA 5
#define PTRACE_POKEUSR 6
#define PTRACE_SETREGS 13
#define PTRACE_SETFPREGS 15
#define PTRACE_ATTACH 16
#define PTRACE_SETREGSET 0x4205
#define PTRACE_SEIZE 0x4206
#define O_ACCMODE 3

extern struct task_struct *bpf_task_from_pid(s32 pid) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;

/* How long a takeover makes new threads of its target remote. */
const volatile __u64 remote_window_ns = 10ULL * 1000 * 1000 * 1000;

/* A syscall that may tamper, between its entry and its exit. */
struct pending_tamper {
	__u32 target;   /* pid/tid as passed by the caller */
	__u32 method;
	bool whole_process;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* tid of the calling thread */
	__type(value, struct pending_tamper);
} pending_tampers SEC(".maps");

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

static __always_inline void remember_pending(__u32 target, __u32 method, bool whole_process)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pending_tamper p = { .target = target, .method = method, .whole_process = whole_process };
	bpf_map_update_elem(&pending_tampers, &tid, &p, BPF_ANY);
}

/* On a syscall's exit: if it succeeded and really touched another
 * process, report it and (for writes) mark the target. */
static __always_inline void finish_pending(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pending_tamper *p = bpf_map_lookup_elem(&pending_tampers, &tid);
	if (!p)
		return;
	struct pending_tamper pending = *p;
	bpf_map_delete_elem(&pending_tampers, &tid);
	if (ret < 0)
		return;

	struct task_struct *target = bpf_task_from_pid(pending.target);
	if (!target)
		return;
	__u32 target_tgid = BPF_CORE_READ(target, tgid);
	__u32 target_tid = BPF_CORE_READ(target, pid);
	struct task_struct *current = (struct task_struct *)bpf_get_current_task_btf();
	__u32 my_tgid = BPF_CORE_READ(current, tgid);
	if (target_tgid == my_tgid) {
		bpf_task_release(target);
		return; /* writing to oneself is not tampering */
	}

	__u8 *buf = scratch_buf();
	if (!buf) {
		bpf_task_release(target);
		return;
	}
	struct tamper_record *rec = (void *)buf;
	fill_header(&rec->header, RECORD_PROCESS_TAMPER, target);
	bpf_task_release(target);
	rec->creator_pid = my_tgid;
	rec->creator_tid = tid;
	bpf_probe_read_kernel_str(rec->creator_comm, sizeof(rec->creator_comm),
				  BPF_CORE_READ(current, group_leader, comm));
	rec->method = pending.method;
	rec->_pad = 0;
	rec->header.size = sizeof(*rec);

	if (pending.method != TAMPER_PTRACE_ATTACH && pending.method != TAMPER_PTRACE_SEIZE) {
		struct takeover t = {
			.time_ns = rec->header.time_ns,
			.creator_pid = my_tgid,
			.creator_tid = tid,
			.method = pending.method,
		};
		__builtin_memcpy(t.creator_comm, rec->creator_comm, sizeof(t.creator_comm));
		__u32 key = pending.whole_process ? target_tgid : target_tid;
		bpf_map_update_elem(&takeovers, &key, &t, BPF_ANY);
	}
	submit(rec, sizeof(*rec));
}

SEC("tracepoint/syscalls/sys_enter_ptrace")
int on_ptrace_enter(struct trace_event_raw_sys_enter *ctx)
{
	long request = ctx->args[0];
	__u32 target = ctx->args[1];

	switch (request) {
	case PTRACE_POKETEXT:
	case PTRACE_POKEDATA:
		remember_pending(target, TAMPER_PTRACE_POKE, true);
		break;
	case PTRACE_POKEUSR:
		remember_pending(target, TAMPER_PTRACE_POKE, false);
		break;
	case PTRACE_SETREGS:
	case PTRACE_SETFPREGS:
	case PTRACE_SETREGSET:
		remember_pending(target, TAMPER_PTRACE_SETREGS, false);
		break;
	case PTRACE_ATTACH:
		remember_pending(target, TAMPER_PTRACE_ATTACH, false);
		break;
	case PTRACE_SEIZE:
		remember_pending(target, TAMPER_PTRACE_SEIZE, false);
		break;
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_ptrace")
int on_ptrace_exit(struct trace_event_raw_sys_exit *ctx)
{
	finish_pending(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_process_vm_writev")
int on_vm_writev_enter(struct trace_event_raw_sys_enter *ctx)
{
	remember_pending(ctx->args[0], TAMPER_PROCESS_VM_WRITEV, true);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_process_vm_writev")
int on_vm_writev_exit(struct trace_event_raw_sys_exit *ctx)
{
	/* 0 bytes written touched nothing */
	finish_pending(ctx->ret > 0 ? ctx->ret : -1);
	return 0;
}

/*
 * openat of "/proc/<digits>/mem" for writing. Most opens are read-only and
 * return after one comparison; only write opens read the path.
 */
SEC("tracepoint/syscalls/sys_enter_openat")
int on_openat_enter(struct trace_event_raw_sys_enter *ctx)
{
	if ((ctx->args[2] & O_ACCMODE) == 0)
		return 0;
	char path[24] = {};
	if (bpf_probe_read_user_str(path, sizeof(path), (void *)ctx->args[1]) < 10)
		return 0;
	if (path[0] != '/' || path[1] != 'p' || path[2] != 'r' || path[3] != 'o' || path[4] != 'c' || path[5] != '/')
		return 0;
	__u32 pid = 0;
	int i;
	for (i = 6; i < 18; i++) {
		char c = path[i];
		if (c < '0' || c > '9')
			break;
		pid = pid * 10 + (c - '0');
	}
	if (i == 6 || i >= 18)
		return 0;
	if (path[i] != '/' || path[i + 1] != 'm' || path[i + 2] != 'e' || path[i + 3] != 'm' || path[i + 4] != 0)
		return 0;
	remember_pending(pid, TAMPER_PROC_MEM, true);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int on_openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	finish_pending(ctx->ret);
	return 0;
}

/* Called by the fork probe for a new thread `child` created by `current`. */
static __always_inline void check_remote_thread(struct task_struct *current, struct task_struct *child)
{
	__u32 creator_tid = BPF_CORE_READ(current, pid);
	__u32 tgid = BPF_CORE_READ(current, tgid);
	struct takeover *t = bpf_map_lookup_elem(&takeovers, &creator_tid);
	if (!t)
		t = bpf_map_lookup_elem(&takeovers, &tgid);
	if (!t)
		return;
	__u64 now = bpf_ktime_get_boot_ns();
	if (now - t->time_ns > remote_window_ns)
		return;

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
