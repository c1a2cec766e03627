/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * What every probe shares: the ring buffer, the loss counters, the per-CPU
 * scratch record, the settings user space fills in before load, and the one
 * way to submit a record.
 */
#ifndef RSYSMON_COMMON_BPF_H
#define RSYSMON_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "records.h"

#define PF_KTHREAD 0x00200000
#define SIGNAL_GROUP_EXIT 0x00000004

/* Settings written by user space into .rodata before the programs load. */
const volatile bool include_kernel_threads = false;
/* Wake the reader once this many bytes wait in the ring; below that, the
 * reader finds the data on its own short poll timeout. */
const volatile __u64 wakeup_bytes = 65536;

/*
 * What the running kernel offers, found by the loader in the kernel's BTF
 * (features.rs) and written here before load. The verifier sees these as
 * constants and drops the branches a kernel cannot run, so one object
 * loads everywhere; the kfuncs behind them are declared __weak, which lets
 * libbpf load the object where they are missing.
 */
/* bpf_rdonly_cast (6.2): bpf_core_cast, direct loads through any pointer. */
const volatile bool have_rdonly_cast = false;
/* bpf_iter_task_vma_new/next/destroy (6.7): one pass over a task's VMAs. */
const volatile bool have_vma_iter = false;

/*
 * Read `field` of `ptr`, a `type *` the verifier knows only as a number
 * (kept in a map, or read with a helper). With bpf_rdonly_cast this is a
 * direct load (no helper call; the cast itself is inlined by the verifier);
 * without it, a CO-RE probe read. `field` may name a nested member
 * (mnt.mnt_root), never follow a pointer: chain CORE_LOADs for that.
 */
#define CORE_LOAD(type, ptr, field) \
	(have_rdonly_cast ? bpf_core_cast((ptr), type)->field : BPF_CORE_READ((type *)(ptr), field))

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024); /* resized by user space */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LOSS_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} losses SEC(".maps");

/*
 * Records are built here and copied into the ring with bpf_ringbuf_output,
 * so a record takes exactly its own size in the ring. Twice the largest
 * record: variable data is written at offsets masked to RECORD_MAX_SIZE - 1,
 * and one more bounded read may start just below that bound.
 */
struct scratch {
	__u8 buf[RECORD_MAX_SIZE * 2];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

#define VAR_MASK (RECORD_MAX_SIZE - 1)

static __always_inline void *scratch_buf(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&scratch_map, &zero);
}

static __always_inline void count_loss(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&losses, &slot);
	if (n)
		*n += 1; /* per-CPU value: no other CPU writes it */
}

/* Copy a finished record into the ring; count it if the ring is full. */
static __always_inline void submit(void *rec, __u32 size)
{
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) + size >= wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	size &= (RECORD_MAX_SIZE * 2 - 1);
	if (size < sizeof(struct record_header))
		return;
	if (bpf_ringbuf_output(&events, rec, size, flags))
		count_loss(LOSS_RINGBUF_FULL);
}

static __always_inline bool is_kernel_thread(struct task_struct *task)
{
	return task->flags & PF_KTHREAD;
}

/* A pid as its own (innermost) pid namespace numbers it. */
static __always_inline __u32 pid_in_own_ns(struct pid *pid)
{
	unsigned int level = BPF_CORE_READ(pid, level);
	return BPF_CORE_READ(pid, numbers[level].nr);
}

/* Fill the common header. `task` is the task the event is about: a BTF
 * pointer or one the verifier knows only as a number (CORE_LOAD reads
 * both). Every field beyond the pids is read with BPF_CORE_READ: a NULL on
 * the way (no nsproxy after exit_task_namespaces) reads as 0, never a
 * fault. */
static __always_inline void fill_header(struct record_header *h, __u32 kind, struct task_struct *task)
{
	h->kind = kind;
	h->time_ns = bpf_ktime_get_boot_ns();
	h->pid = CORE_LOAD(struct task_struct, task, tgid);
	h->tid = CORE_LOAD(struct task_struct, task, pid);
	struct task_struct *leader = CORE_LOAD(struct task_struct, task, group_leader);
	bpf_probe_read_kernel_str(h->comm, sizeof(h->comm), &leader->comm);

	/* de_thread gives a thread that exec'd its leader's start time, so
	 * start_ns is the process's for its whole life. */
	h->start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
	struct pid *thread_pid = BPF_CORE_READ(task, thread_pid);
	h->ns_tid = pid_in_own_ns(thread_pid);
	h->ns_pid = pid_in_own_ns(BPF_CORE_READ(task, group_leader, thread_pid));
	unsigned int level = BPF_CORE_READ(thread_pid, level);
	h->pid_ns = BPF_CORE_READ(thread_pid, numbers[level].ns, ns.inum);
	h->mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	h->cgroup_id = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
}

#endif /* RSYSMON_COMMON_BPF_H */
