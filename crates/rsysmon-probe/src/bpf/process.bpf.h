/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Process and thread lifecycle: the Linux counterparts of
 * PsSetCreateProcessNotifyRoutineEx and PsSetCreateThreadNotifyRoutine.
 *
 * All three are BTF tracepoints in the scheduler; they cost nothing while
 * idle and run in the context of the task doing the work (the parent for
 * fork, the exec'ing task for exec, the dying task for exit). Their
 * arguments are BTF pointers, read with direct loads (faulting-safe, no
 * helper call per field).
 */
#ifndef RSYSMON_PROCESS_BPF_H
#define RSYSMON_PROCESS_BPF_H

#include "common.bpf.h"
#include "path.bpf.h"
#include "injection.bpf.h"

/*
 * sched_process_fork fires in the parent once the child is fully set up and
 * about to be woken. A child that shares the parent's thread group
 * (CLONE_THREAD) is a thread; anything else is a new process, whatever
 * clone flags made it (fork, vfork, clone, clone3).
 */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	if (!include_kernel_threads && is_kernel_thread(child))
		return 0;

	__u8 *buf = scratch_buf();
	if (!buf)
		return 0;

	__u32 tgid = child->tgid;
	__u32 tid = child->pid;
	struct task_struct *current = bpf_get_current_task_btf();

	if (tgid != tid) {
		struct thread_create_record *rec = (void *)buf;
		fill_header(&rec->header, RECORD_THREAD_CREATE, child);
		rec->creator_tid = current->pid;
		rec->_pad = 0;
		rec->header.size = sizeof(*rec);
		submit(rec, sizeof(*rec));
		check_remote_thread(current, child);
		return 0;
	}

	struct process_create_record *rec = (void *)buf;
	fill_header(&rec->header, RECORD_PROCESS_CREATE, child);
	struct task_struct *real_parent = child->real_parent;
	rec->ppid = real_parent->tgid;
	rec->parent_start_ns = BPF_CORE_READ(real_parent, group_leader, start_boottime);
	bpf_probe_read_kernel_str(rec->parent_comm, sizeof(rec->parent_comm), real_parent->group_leader->comm);
	rec->creator_tid = current->pid;
	rec->uid = child->cred->uid.val;
	rec->gid = child->cred->gid.val;
	__builtin_memset(rec->_pad, 0, sizeof(rec->_pad));

	/* The image is inherited: the child's mm (a copy, or the parent's own
	 * for vfork/CLONE_VM) points at the parent's exe_file. */
	__u32 off = sizeof(*rec);
	rec->exe_flags = 0;
	struct mm_struct *mm = child->mm;
	struct file *exe = mm ? mm->exe_file : NULL;
	if (exe)
		rec->exe_flags = append_path(&off, RECORD_PATH_MAX, &exe->f_path);
	rec->exe_len = off - sizeof(*rec);
	rec->header.size = off;
	submit(rec, off);
	return 0;
}

/*
 * sched_process_exec fires in the task that exec'd, after the new image is
 * installed (begin_new_exec has run: new mm, new comm, other threads gone)
 * and before it returns to user space. If a non-leader thread exec'd,
 * de_thread has already given it the leader's pid; `old_pid` is its old tid.
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	if (!include_kernel_threads && is_kernel_thread(task))
		return 0;

	__u8 *buf = scratch_buf();
	if (!buf)
		return 0;

	struct process_exec_record *rec = (void *)buf;
	fill_header(&rec->header, RECORD_PROCESS_EXEC, task);
	rec->old_tid = old_pid;
	__builtin_memset(rec->_pad, 0, sizeof(rec->_pad));

	__u32 off = sizeof(*rec);
	struct file *file = bprm->file;
	rec->exe_dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
	rec->exe_inode = BPF_CORE_READ(file, f_inode, i_ino);
	rec->exe_flags = append_path(&off, RECORD_PATH_MAX, &file->f_path);
	rec->exe_len = off - sizeof(*rec);

	/* argv lives in the new image's stack, written by the kernel moments
	 * ago, so the pages are present and a non-faulting read finds them. */
	struct mm_struct *mm = task->mm;
	unsigned long arg_start = mm->arg_start;
	unsigned long arg_end = mm->arg_end;
	__u32 argv_len = 0;
	rec->argv_truncated = 0;
	if (arg_end > arg_start) {
		unsigned long len = arg_end - arg_start;
		if (len > RECORD_ARGV_MAX) {
			len = RECORD_ARGV_MAX;
			rec->argv_truncated = 1;
		}
		__u32 o = off;
		if (bpf_probe_read_user(buf + (o & VAR_MASK), len & (RECORD_ARGV_MAX * 2 - 1),
					(void *)arg_start) == 0)
			argv_len = len;
	}
	off += argv_len;
	rec->argv_len = argv_len;

	__u32 cwd_start = off;
	struct fs_struct *fs = task->fs;
	rec->cwd_flags = append_path(&off, RECORD_PATH_MAX, &fs->pwd);
	rec->cwd_len = off - cwd_start;

	rec->header.size = off;
	submit(rec, off);
	return 0;
}

/*
 * sched_process_exit fires in the dying task after exit_mm. The last live
 * thread of the group is the process exit; any other is a thread exit. The
 * status of a process is the group's exit code when the group was told to
 * exit (exit_group, a fatal signal), else the task's own.
 */
static __always_inline void report_exit(struct task_struct *task, bool group_dead)
{
	__u8 *buf = scratch_buf();
	if (!buf)
		return;

	struct exit_record *rec = (void *)buf;
	fill_header(&rec->header, group_dead ? RECORD_PROCESS_EXIT : RECORD_THREAD_EXIT, task);
	__u32 code = task->exit_code;
	if (group_dead) {
		struct signal_struct *sig = task->signal;
		if (sig->flags & SIGNAL_GROUP_EXIT)
			code = sig->group_exit_code;
	}
	rec->exit_code = code;
	rec->_pad = 0;
	rec->start_time_ns = task->start_boottime;
	rec->header.size = sizeof(*rec);
	submit(rec, sizeof(*rec));
}

/* Where the tracepoint says which thread is the last (6.16 and later):
 * `group_dead`. The loader picks this program or the next, never both. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *task, bool group_dead)
{
	if (!include_kernel_threads && is_kernel_thread(task))
		return 0;
	report_exit(task, group_dead);
	return 0;
}

/* One process's exit, claimed once (see on_exit_live). */
struct group_exit_key {
	__u32 tgid;
	__u32 _pad;
	__u64 leader_start_ns; /* tells a reused tgid apart */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct group_exit_key);
	__type(value, __u8);
} group_exits SEC(".maps");

/*
 * Older kernels' sched_process_exit has the task alone. do_exit has
 * already decremented signal->live, and the thread that took it to zero
 * is the last. A thread that exits at the same instant may also read zero,
 * so the first of them to claim the process in `group_exits` reports the
 * process exit and any other a thread exit: one process exit per process,
 * as with group_dead.
 */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit_live, struct task_struct *task)
{
	if (!include_kernel_threads && is_kernel_thread(task))
		return 0;
	bool group_dead = false;
	struct signal_struct *sig = task->signal;
	if (sig->live.counter == 0) {
		struct group_exit_key key = {
			.tgid = task->tgid,
			.leader_start_ns = task->group_leader->start_boottime,
		};
		__u8 one = 1;
		group_dead = bpf_map_update_elem(&group_exits, &key, &one, BPF_NOEXIST) == 0;
	}
	report_exit(task, group_dead);
	return 0;
}

#endif /* RSYSMON_PROCESS_BPF_H */
