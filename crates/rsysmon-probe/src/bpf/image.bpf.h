/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Image loads: the Linux counterpart of PsSetLoadImageNotifyRoutine, and the
 * blocker's last line for files reached without execve.
 *
 * A file's code becomes runnable in a process in three ways, each with a
 * probe:
 *  - execve: the kernel maps the program and its ELF interpreter. At
 *    sched_process_exec both are mapped and no instruction has run yet.
 *  - mmap of a file with PROT_EXEC: ld.so mapping a library's text (at
 *    start-up and for dlopen), or any hand-made loader.
 *  - mprotect / pkey_mprotect adding PROT_EXEC to a file mapping.
 *
 * Only the *exit* tracepoints of those syscalls are attached: every attached
 * syscall tracepoint puts every syscall of the machine on the slow path, and
 * an exit probe alone suffices. The arguments are read from the task's saved
 * user registers (bpf_task_pt_regs), which the syscall leaves as they were
 * (x86-64 returns in ax; arm64 keeps x0 in orig_x0, which
 * PT_REGS_PARM1_SYSCALL reads). At exit the mapping exists, so the VMAs
 * say what really happened: VM_EXEC after READ_IMPLIES_EXEC and noexec
 * mounts, merges with neighbours, and which file backs it. 32-bit (ia32)
 * syscalls do not reach syscall tracepoints on x86-64; where the kernel
 * traces VMA stores, mmap is seen there instead, for every syscall entry
 * (image_store.bpf.h), and sys_exit_mmap is not attached.
 *
 * One event per image per process:
 *  - mmap creates a new mapping. It is a new image unless another executable
 *    mapping of the same file already sits in the same run of adjacent
 *    mappings (a second executable segment of one image). dlclose unmaps the
 *    whole run, so dlopen again is a new image.
 *  - mprotect may re-apply PROT_EXEC to a region that had it, which the VMAs
 *    at exit cannot tell apart from adding it; so images mmap made are
 *    remembered in `reported_images`, keyed by process, exec generation,
 *    file and base, and mprotect reports only what is not there nor the
 *    program or interpreter exec mapped (known from the mm itself, so an
 *    exec costs no map update).
 *  - exec always starts a new address space.
 *
 * VMAs are read with the task-VMA iterator (bpf_iter_task_vma), which holds
 * mmap_lock for reading from its start to its end: one pass upward from
 * just below the image's expected base finds the whole run, and the path is
 * read from the VMA's file while the lock still pins it. The expected base
 * is exact for the common cases (an mmap's address minus its file offset;
 * AT_BASE; the program's first segment at exec). When the run may reach
 * below where the pass began (mprotect, or an unusual layout), it is
 * extended downward one bpf_find_vma at a time, and the path is read under
 * one more lookup. Both only try-lock mmap_lock: when another thread holds
 * it for writing at that instant, the image cannot be resolved, and the
 * miss is counted (LOSS_IMAGE_LOOKUP_BUSY), never silent. Kernels before
 * 6.7 have no VMA iterator: there the anchor's VMA and its neighbours are
 * found one bpf_find_vma (5.17) at a time, up and then down.
 */
#ifndef RSYSMON_IMAGE_BPF_H
#define RSYSMON_IMAGE_BPF_H

#include "common.bpf.h"
#include "path.bpf.h"
#include "blocked_trees.bpf.h"

#define PROT_READ 0x1
#define PROT_EXEC 0x4
#define MAP_ANONYMOUS 0x20
#define VM_EXEC 0x00000004UL
#define READ_IMPLIES_EXEC 0x0400000
#define AT_NULL 0
#define AT_BASE 7
#define SIGKILL 9
#define EBUSY 16
#define MAX_ERRNO 4095

/* VMAs one upward pass examines; adjacent VMAs examined below it when the
 * run reaches further down. */
#define IMAGE_SCAN_MAX 64
#define IMAGE_WALK_MAX 32
/* mm->saved_auxv holds AT_VECTOR_SIZE words: at most this many (type,
 * value) pairs (56 words since 6.4; 48 before). */
#define AUXV_PAIRS 28

/* Inode number of the daemon's mount namespace, set before load. */
const volatile __u32 host_mnt_ns = 0;
/* The kernel's page size, set before load. */
const volatile __u64 page_size = 4096;

/* Files whose code must never run, by identity; see struct blocked_file. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BLOCKED_MAX);
	__type(key, struct blocked_file);
	__type(value, __u8);
} blocked_files SEC(".maps");

struct image_key {
	__u32 tgid;
	__u32 _pad;
	/* task->self_exec_id: execve bumps it, so an entry of an old address
	 * space (or of an earlier process with a reused pid) cannot match. */
	__u64 exec_id;
	__u64 dev;
	__u64 ino;
	__u64 base;
};

/* Images already reported, for mprotect; least recently used go first.
 * An evicted entry can only make a later re-protection report again. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct image_key);
	__type(value, __u8);
} reported_images SEC(".maps");

/*
 * One image lookup, shared with the bpf_find_vma and bpf_loop callbacks. In
 * a per-CPU map, not on the stack, for the verifier (see path_walk).
 */
struct image_scan {
	struct inode *inode; /* the image's file: VMAs of other files end the run */
	struct file *file;   /* the anchor VMA's file, pinned while mmap_lock is held */
	__u64 anchor;        /* an address in the executable mapping */
	__u64 from;          /* where the upward pass began */
	__u64 lo, hi;        /* the run of the file's mappings found so far */
	__u64 exec_lo;       /* what this call made executable; an executable */
	__u64 exec_hi;       /* VMA of the file outside it was there before */
	__u64 dev, ino;
	__u32 off;           /* end of the record built so far */
	__u16 path_len, fs_path_len;
	__u8 path_flags, fs_path_flags;
	__u8 found;          /* the last lookup found a VMA of the file */
	__u8 paths;          /* the paths are written in the record */
	__u8 exec;           /* the anchor VMA is executable */
	__u8 any_exec;       /* some VMA of the run is executable */
	__u8 other_exec;
	__u8 busy;           /* a lookup found mmap_lock held */
	__u8 other_ns;
	__u8 reached;        /* the upward pass found the anchor's VMA */
	__u8 first;          /* the next VMA is the first of the pass */
	__u8 open_below;     /* the run began at the pass's first VMA, which
	                      * covers `from`: it may reach further down */
	__u16 steps;         /* VMAs the pass has examined */
	__u8 via;            /* IMAGE_VIA_* of the lookup */
};

/* 6.7 and later; used only where the loader set have_vma_iter. */
extern int bpf_iter_task_vma_new(struct bpf_iter_task_vma *it, struct task_struct *task, __u64 addr) __ksym __weak;
extern struct vm_area_struct *bpf_iter_task_vma_next(struct bpf_iter_task_vma *it) __ksym __weak;
extern void bpf_iter_task_vma_destroy(struct bpf_iter_task_vma *it) __ksym __weak;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct image_scan);
} image_scans SEC(".maps");

static __always_inline struct image_scan *image_scan_state(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&image_scans, &zero);
}

static __always_inline void note_exec(struct image_scan *s, struct vm_area_struct *vma, __u64 start, __u64 end)
{
	if (!(vma->vm_flags & VM_EXEC))
		return;
	s->any_exec = 1;
	if (start < s->exec_lo || end > s->exec_hi)
		s->other_exec = 1;
}

/*
 * Whether the file's mount belongs to another mount namespace than the
 * daemon's. Kernel-internal mounts (kern_mount: memfd, shm) have no
 * namespace: NULL, or MNT_NS_INTERNAL, which is ERR_PTR(-EINVAL); their one
 * path is the whole story.
 */
static __always_inline bool in_other_mount_ns(struct file *file)
{
	struct vfsmount *vfsmnt = BPF_CORE_READ(file_user_path(file), mnt);
	struct mount *mnt = container_of(vfsmnt, struct mount, mnt);
	unsigned long ns_ptr = (unsigned long)BPF_CORE_READ(mnt, mnt_ns);
	struct mnt_namespace *ns = (void *)ns_ptr;

	if (ns_ptr < 4096 || ns_ptr >= (unsigned long)-MAX_ERRNO)
		return false;
	return BPF_CORE_READ(ns, ns.inum) != host_mnt_ns;
}

/*
 * One VMA of the upward pass. Follows runs of adjacent mappings of one file
 * until the run that holds the anchor has ended. Returns 1 to stop.
 */
static __always_inline long scan_vma(struct image_scan *s, struct vm_area_struct *vma)
{
	struct file *file = vma->vm_file;
	struct inode *inode = file ? file->f_inode : NULL;
	__u64 start = vma->vm_start;
	__u64 end = vma->vm_end;
	bool first = s->first;

	s->first = 0;
	if (++s->steps > IMAGE_SCAN_MAX)
		return 1;
	if (inode && inode == s->inode && start == s->hi) {
		s->hi = end; /* the run goes on */
		note_exec(s, vma, start, end);
		return 0;
	}
	if (s->reached || start > s->anchor)
		return 1; /* the anchor's run has ended, or the anchor is unmapped */
	s->inode = inode;
	if (!inode)
		return 0; /* anonymous memory: no run */
	s->lo = start;
	s->hi = end;
	s->any_exec = 0;
	s->other_exec = 0;
	s->open_below = first && start <= s->from;
	note_exec(s, vma, start, end);
	return 0;
}

/* After scan_vma: is this the anchor's VMA? Then the run is the image's. */
static __always_inline long check_anchor(struct image_scan *s, struct vm_area_struct *vma)
{
	if (s->reached || vma->vm_end <= s->anchor)
		return 0;
	struct file *file = vma->vm_file;
	if (!file)
		return 1; /* anonymous memory (a JIT): not an image */
	struct inode *inode = file->f_inode;
	s->reached = 1;
	s->file = file;
	s->exec = (vma->vm_flags & VM_EXEC) != 0;
	s->dev = inode->i_sb->s_dev;
	s->ino = inode->i_ino;
	s->other_ns = in_other_mount_ns(file);
	return 0;
}

#include "image_find_vma.bpf.h"

/*
 * Write the image's paths into the scratch record after its fixed part.
 * `file` must be pinned: by a VMA while mmap_lock is held around the call.
 * The path is the one the process used (file_user_path: the overlay's, for
 * a file on overlayfs); the path within the file system is the file's own
 * (the layer's), which is where its device, the record's `dev`, has it.
 */
static __always_inline void write_paths(struct image_scan *s, struct file *file)
{
	__u32 off = sizeof(struct image_load_record);
	s->path_flags = append_path(&off, RECORD_PATH_MAX, file_user_path(file));
	s->path_len = off - sizeof(struct image_load_record);
	s->fs_path_len = 0;
	s->fs_path_flags = 0;
	if (s->other_ns) {
		__u32 start = off;
		s->fs_path_flags = walk_path(&off, RECORD_PATH_MAX, &file->f_path, true);
		s->fs_path_len = off - start;
	}
	s->off = off;
	s->paths = 1;
}

/* bpf_find_vma callback on the anchor, to write the paths when the upward
 * pass could not (see image_mapped). */
static long image_paths(struct task_struct *task, struct vm_area_struct *vma, void *unused)
{
	struct image_scan *s = image_scan_state();
	if (!s)
		return 0;
	struct file *file = vma->vm_file;
	if (file && file->f_inode == s->inode)
		write_paths(s, file);
	return 0;
}

static __always_inline bool is_blocked(__u64 dev, __u64 ino)
{
	struct blocked_file id = { .dev = dev, .ino = ino };
	return bpf_map_lookup_elem(&blocked_files, &id) != NULL;
}

/* The interpreter's anchor (AT_BASE) is its first, read-only segment; every
 * other anchor is the mapping just made executable, and a non-executable
 * one means PROT_EXEC did not take (noexec mount, personality). */
static __always_inline bool anchor_counts(struct image_scan *s, __u8 via)
{
	return s->exec || via == IMAGE_VIA_INTERPRETER;
}

/*
 * One upward pass over the VMAs from `from` (see scan_vma), on kernels with
 * the VMA iterator. When it is sure
 * of the whole run and `write` is set, it also writes the paths: the
 * iterator holds mmap_lock until it is destroyed, which pins the file.
 */
static __always_inline void scan_pass(struct task_struct *task, struct image_scan *s, __u64 from, bool write)
{
	struct bpf_iter_task_vma it;
	struct vm_area_struct *vma;

	s->from = from;
	s->inode = NULL;
	s->hi = 0;
	s->reached = 0;
	s->first = 1;
	s->steps = 0;
	s->open_below = 0;
	s->exec = 0;
	s->any_exec = 0;
	s->other_exec = 0;
	if (bpf_iter_task_vma_new(&it, task, from) == -EBUSY)
		s->busy = 1;
	while ((vma = bpf_iter_task_vma_next(&it))) {
		if (scan_vma(s, vma) || check_anchor(s, vma))
			break;
	}
	if (write && s->reached && !s->open_below && s->steps <= IMAGE_SCAN_MAX && anchor_counts(s, s->via))
		write_paths(s, s->file);
	bpf_iter_task_vma_destroy(&it);
}

/*
 * Kernels without the VMA iterator: the anchor's VMA, then its neighbours
 * above one bpf_find_vma at a time (the caller walks below). Each lookup
 * takes mmap_lock on its own; the paths are read under one more.
 */
static __always_inline void scan_lookups(struct task_struct *task, struct image_scan *s)
{
	s->inode = NULL;
	s->reached = 0;
	s->exec = 0;
	s->any_exec = 0;
	s->other_exec = 0;
	s->steps = 0;
	s->open_below = 1;
	if (bpf_find_vma(task, s->anchor, anchor_vma, NULL, 0) == -EBUSY)
		s->busy = 1;
	if (s->reached && !s->busy)
		bpf_loop(IMAGE_WALK_MAX, step_up, NULL, 0);
}

/*
 * AT_BASE from the auxiliary vector the kernel just built: where the ELF
 * interpreter was loaded, or 0 for a program without one.
 *
 * The vector's length differs between kernels (AT_VECTOR_SIZE: 48 words in
 * 6.1, 56 in 6.18), and a direct load from an array whose size differs
 * does not relocate; so each pair is read with a helper (the vector is
 * read at exec, and AT_BASE comes within its first ten pairs), up to the
 * running kernel's length: a CO-RE constant, so the reads past it, which
 * libbpf poisons, are never reached.
 */
static __always_inline __u64 interpreter_base(struct mm_struct *mm)
{
	__u32 words = bpf_core_field_size(mm->saved_auxv) / sizeof(mm->saved_auxv[0]);
#pragma unroll
	for (int i = 0; i < AUXV_PAIRS; i++) {
		unsigned long pair[2];
		if (2 * i + 1 >= words || bpf_core_read(pair, sizeof(pair), &mm->saved_auxv[2 * i]))
			return 0;
		if (pair[0] == AT_NULL)
			return 0;
		if (pair[0] == AT_BASE)
			return pair[1];
	}
	return 0;
}

/*
 * Whether the run is the program or the interpreter that exec mapped: those
 * were reported at exec, and are not remembered in `reported_images`.
 */
static __always_inline bool mapped_by_exec(struct task_struct *task, struct image_scan *s)
{
	struct mm_struct *mm = task->mm;
	if (!mm)
		return false;
	__u64 start_code = mm->start_code;
	if (s->lo <= start_code && start_code < s->hi)
		return true;
	return s->lo == interpreter_base(mm);
}

/*
 * Whether the resolved image is to be reported; kills the process first if
 * the file is blocked. Sets the record's flags.
 */
static __always_inline bool judge(struct task_struct *task, struct image_scan *s, __u8 via, __u8 *flags)
{
	if (!s->any_exec)
		return false;
	if (is_blocked(s->dev, s->ino) || tree_blocks(s->file, via)) {
		/* Delivered before the task returns to user space: not one
		 * instruction of the file runs. */
		bpf_send_signal(SIGKILL);
		*flags |= IMAGE_BLOCKED;
	}
	if (s->other_ns)
		*flags |= IMAGE_OTHER_MOUNT_NS;
	if (s->other_exec && !(*flags & IMAGE_BLOCKED))
		return false; /* another segment of an image already reported */

	struct image_key key = {
		.tgid = task->tgid,
		.exec_id = task->self_exec_id,
		.dev = s->dev,
		.ino = s->ino,
		.base = s->lo,
	};
	if (via == IMAGE_VIA_MPROTECT && !(*flags & IMAGE_BLOCKED) &&
	    (mapped_by_exec(task, s) || bpf_map_lookup_elem(&reported_images, &key)))
		return false; /* PROT_EXEC re-applied to an image already reported */
	if (via != IMAGE_VIA_EXEC && via != IMAGE_VIA_INTERPRETER) {
		__u8 one = 1;
		bpf_map_update_elem(&reported_images, &key, &one, BPF_ANY);
	}
	return true;
}

/*
 * Send the resolved image (run, identity and the paths write_paths put in
 * `buf`) as an image-load record.
 */
static __always_inline void submit_image(struct task_struct *task, struct image_scan *s, __u8 *buf, __u8 via,
					 __u8 flags)
{
	struct image_load_record *rec = (void *)buf;
	fill_header(&rec->header, RECORD_IMAGE_LOAD, task);
	rec->base = s->lo;
	rec->size = s->hi - s->lo;
	rec->dev = s->dev;
	rec->inode = s->ino;
	rec->path_len = s->path_len;
	rec->fs_path_len = s->fs_path_len;
	rec->path_flags = s->path_flags;
	rec->fs_path_flags = s->fs_path_flags;
	rec->via = via;
	rec->flags = flags;
	__u32 size = s->off;
	rec->header.size = size;
	submit(rec, size);
}

/*
 * The mapping at `anchor` may have made a file's code runnable in the
 * current process: resolve the image, kill the process if the file is
 * blocked, and report the image unless it was already reported.
 * [exec_lo, exec_hi) is what the syscall made executable; `from` is just
 * below where the image is expected to begin.
 */
static __always_inline void image_mapped(struct task_struct *task, __u64 anchor, __u64 from, __u64 exec_lo,
					 __u64 exec_hi, __u8 via)
{
	struct image_scan *s = image_scan_state();
	__u8 *buf = scratch_buf();
	if (!s || !buf)
		return;
	s->anchor = anchor;
	s->exec_lo = exec_lo;
	s->exec_hi = exec_hi;
	s->via = via;
	s->busy = 0;
	s->paths = 0;

	if (have_vma_iter) {
		scan_pass(task, s, from, true);
		if (!s->reached && s->steps > IMAGE_SCAN_MAX && !s->busy)
			scan_pass(task, s, anchor, false); /* the guess was far too low */
	} else {
		scan_lookups(task, s);
	}
	if (s->busy)
		goto busy;
	if (!s->reached || !anchor_counts(s, via))
		return; /* unmapped again already, anonymous, or not executable */
	if (s->open_below) {
		bpf_loop(IMAGE_WALK_MAX, step_down, NULL, 0);
		if (s->busy)
			goto busy;
	}

	__u8 flags = 0;
	if (!judge(task, s, via, &flags))
		return;
	if (!s->paths) {
		long err = bpf_find_vma(task, anchor, image_paths, NULL, 0);
		if (err == -EBUSY)
			goto busy;
		if (err || !s->paths)
			return; /* unmapped by another thread meanwhile */
	}

	submit_image(task, s, buf, via, flags);
	return;
busy:
	count_loss(LOSS_IMAGE_LOOKUP_BUSY);
}

/* PROT_EXEC as the kernel applies it: READ_IMPLIES_EXEC personalities
 * (old binaries without PT_GNU_STACK) get it with PROT_READ alone. */
static __always_inline bool wants_exec(struct task_struct *task, unsigned long prot)
{
	if (prot & PROT_EXEC)
		return true;
	return (prot & PROT_READ) && (task->personality & READ_IMPLIES_EXEC);
}

static __always_inline __u64 page_up(__u64 addr)
{
	return (addr + page_size - 1) & ~(page_size - 1);
}

/*
 * An mmap of `len` bytes of a file at byte `offset` made `ret` executable.
 * An image's segments sit at its base plus their file offsets, so the pass
 * starts just below ret - offset; an offset past ret is no image layout,
 * and the run is then found from ret downward.
 */
static __always_inline void mmap_returned(struct task_struct *task, unsigned long ret, unsigned long len,
					  unsigned long offset)
{
	__u64 base = offset <= ret ? ret - offset : ret;
	__u64 from = base ? base - 1 : 0;
	image_mapped(task, ret, from, ret, page_up(ret + len), IMAGE_VIA_MMAP);
}

/*
 * An mprotect made [start, start + len) executable. No hint where the image
 * begins: the run is found from start down.
 */
static __always_inline void mprotect_returned(struct task_struct *task, unsigned long start, unsigned long len)
{
	image_mapped(task, start, start, start, page_up(start + len), IMAGE_VIA_MPROTECT);
}

/*
 * mmap returned: a new mapping at `ret` if it succeeded. Most mmaps are
 * anonymous or not executable; those return after reading two registers.
 * The task and its registers are BTF pointers: plain loads, no helper
 * calls, on this path taken by every mmap on the machine.
 */
SEC("tracepoint/syscalls/sys_exit_mmap")
int on_mmap_exit(struct trace_event_raw_sys_exit *ctx)
{
	unsigned long ret = ctx->ret;
	if (ret >= (unsigned long)-MAX_ERRNO)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	unsigned long flags = PT_REGS_PARM4_SYSCALL(regs);
	if (flags & MAP_ANONYMOUS)
		return 0;
	if (!wants_exec(task, PT_REGS_PARM3_SYSCALL(regs)))
		return 0;
	mmap_returned(task, ret, PT_REGS_PARM2_SYSCALL(regs), PT_REGS_PARM6_SYSCALL(regs));
	return 0;
}

/* mprotect and pkey_mprotect returned 0: [start, start + len) has `prot`. */
static __always_inline int protected(struct trace_event_raw_sys_exit *ctx)
{
	if (ctx->ret != 0)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	if (!wants_exec(task, PT_REGS_PARM3_SYSCALL(regs)))
		return 0;
	mprotect_returned(task, PT_REGS_PARM1_SYSCALL(regs), PT_REGS_PARM2_SYSCALL(regs));
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_mprotect")
int on_mprotect_exit(struct trace_event_raw_sys_exit *ctx)
{
	return protected(ctx);
}

SEC("tracepoint/syscalls/sys_exit_pkey_mprotect")
int on_pkey_mprotect_exit(struct trace_event_raw_sys_exit *ctx)
{
	return protected(ctx);
}

/*
 * sched_process_exec fires after the ELF loader has mapped the program and
 * its interpreter into the new address space and built the auxiliary
 * vector, before the task returns to user space. mm->start_code is in the
 * program's first executable segment; AT_BASE is the interpreter's lowest
 * address. Runs after on_exec (attached first), so the exec event comes
 * before its images.
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec_images, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	if (!include_kernel_threads && is_kernel_thread(task))
		return 0;
	struct task_struct *current = bpf_get_current_task_btf();
	struct mm_struct *mm = current->mm;
	if (!mm)
		return 0;
	/* A new address space holds a handful of VMAs, the program's lowest:
	 * the pass starts at 0. The interpreter's lowest address is AT_BASE. */
	image_mapped(current, mm->start_code, 0, 0, ~0ULL, IMAGE_VIA_EXEC);
	__u64 interp = interpreter_base(mm);
	if (interp)
		image_mapped(current, interp, interp - 1, 0, ~0ULL, IMAGE_VIA_INTERPRETER);
	return 0;
}

#endif /* RSYSMON_IMAGE_BPF_H */
