/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Image loads by mmap without a syscall tracepoint: the store of the new
 * VMA in the process's maple tree.
 *
 * Any attached syscall tracepoint puts every syscall of every task on the
 * kernel's slow path. The mapping itself is visible elsewhere: every VMA
 * that mmap creates is stored in mm->mm_mt, and two tracepoints see that
 * store with the VMA complete (range, flags after READ_IMPLIES_EXEC and
 * the noexec check, file):
 *  - mmap:vma_store (6.1 to 6.3): vma_mas_store(), with the VMA;
 *  - maple_tree:ma_write (6.1 and later): every maple tree write; `val` is
 *    the VMA when the tree is an mm's. Internal steps of one write trace
 *    too (mas_wr_append, mas_wr_bnode, ...): only the entry points
 *    (mas_store, mas_store_gfp, mas_store_prealloc) are taken.
 * Both fire for every syscall entry: a 64-bit process calling mmap2
 * through `int 0x80` is seen like any other, which the syscall
 * tracepoints never saw.
 *
 * A store is also made for splits and merges (mprotect, munmap, a
 * MAP_FIXED over an old mapping), for exec, brk and stacks, so a store
 * counts only while the task is in an mmap syscall (mmap; mmap2 and
 * old_mmap from 32-bit code) and only for the VMA that syscall creates:
 * exactly its length and file offset. A mapping that merges into an
 * adjacent one of the same file and flags is stored as the grown old VMA
 * and is not reported, as another executable segment of an image already
 * reported is not (image.bpf.h). What the store does not show:
 *  - mprotect adding PROT_EXEC: the kernel changes the flags after any
 *    split, and a change of a whole VMA stores nothing. The syscall exit
 *    probes of image.bpf.h stay for it, or, with the syscall tracepoints
 *    off, it goes unseen;
 *  - exec: sched_process_exec reports the program and its interpreter
 *    (image.bpf.h), as before.
 *
 * The store fires with mmap_lock held for writing, so neither
 * bpf_find_vma nor the VMA iterator can look at the neighbours (both only
 * try-lock). The writer holds the tree still, so the image's run of
 * adjacent mappings of its file is found by walking the maple tree from
 * its root by hand: the node encoding (type in bits 3-6 of the node
 * pointer, 16-slot range nodes at the leaves, 10-slot allocation-range
 * nodes above) is the same in 6.1 and 6.18. Each VMA found is checked to
 * cover the address looked up; anything else ends the run, so a layout
 * this walk misreads shortens the run, it never invents a mapping.
 */
#ifndef RSYSMON_IMAGE_STORE_BPF_H
#define RSYSMON_IMAGE_STORE_BPF_H

#include "image.bpf.h"

/* x86 syscall numbers: mmap; from 32-bit code, old_mmap and mmap2. */
#define NR_MMAP 9
#define NR_IA32_OLD_MMAP 90
#define NR_IA32_MMAP2 192
#define X32_SYSCALL_BIT 0x40000000UL
/* thread_info.status while the task runs a 32-bit syscall. */
#define TS_COMPAT 0x0002
/* lib/maple_tree.c: the node type sits in the encoded pointer. */
#define MAPLE_NODE_MASK 255UL
#define MAPLE_NODE_TYPE_SHIFT 3
#define MAPLE_NODE_TYPE_MASK 0x0F
#define MAPLE_LEAF_64 1
#define MAPLE_RANGE_64 2
#define MAPLE_ARANGE_64 3
#define MAPLE_RANGE64_SLOTS 16
#define MAPLE_ARANGE64_SLOTS 10
/* An mm's tree is 3 or 4 levels deep for thousands of VMAs. */
#define MAPLE_DEPTH_MAX 8

/* The mmap the task is in: the new mapping's length and file offset. */
struct mmap_call {
	__u64 len;
	__u64 off;
};

/* ia32 old_mmap's argument block, in user memory. */
struct ia32_mmap_args {
	__u32 addr, len, prot, flags, fd, offset;
};

/* Whether the current task is in an mmap of a file; fills `call`. */
static __always_inline bool in_file_mmap(struct task_struct *task, struct mmap_call *call)
{
#if defined(__TARGET_ARCH_x86)
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	unsigned long nr = regs->orig_ax;
	unsigned long flags;

	if (task->thread_info.status & TS_COMPAT) {
		if (nr == NR_IA32_MMAP2) {
			call->len = (__u32)regs->cx;
			call->off = (__u64)(__u32)regs->bp << 12; /* in 4096-byte units */
			flags = (__u32)regs->si;
		} else if (nr == NR_IA32_OLD_MMAP) {
			struct ia32_mmap_args a;
			if (bpf_probe_read_user(&a, sizeof(a), (void *)(unsigned long)(__u32)regs->bx))
				return false;
			call->len = a.len;
			call->off = a.offset;
			flags = a.flags;
		} else {
			return false;
		}
	} else {
		if ((nr & ~X32_SYSCALL_BIT) != NR_MMAP)
			return false;
		call->len = PT_REGS_PARM2_SYSCALL(regs);
		call->off = PT_REGS_PARM6_SYSCALL(regs);
		flags = PT_REGS_PARM4_SYSCALL(regs);
	}
	return !(flags & MAP_ANONYMOUS);
#else
	return false;
#endif
}

/*
 * The entry of `tree` (an encoded root, mm->mm_mt.ma_root) at `addr`, or 0.
 * The caller holds the tree still (mmap_lock for writing).
 */
static __always_inline unsigned long maple_lookup(unsigned long enode, unsigned long addr)
{
	/* xa_is_node(): the root of a tree of nodes is marked internal (low
	 * bits 10); a single-entry root is no mm with a mapping to find. */
	if ((enode & 3) != 2 || enode <= 4096)
		return 0;
	for (int depth = 0; depth < MAPLE_DEPTH_MAX; depth++) {
		if (enode <= 4096)
			return 0;
		unsigned long node = enode & ~MAPLE_NODE_MASK;
		unsigned int type = (enode >> MAPLE_NODE_TYPE_SHIFT) & MAPLE_NODE_TYPE_MASK;
		unsigned long pivots[MAPLE_RANGE64_SLOTS - 1] = {};
		unsigned long pivot_at, slot_at;
		int slots;

		if (type == MAPLE_ARANGE_64) {
			slots = MAPLE_ARANGE64_SLOTS;
			pivot_at = node + bpf_core_field_offset(struct maple_arange_64, pivot);
			slot_at = node + bpf_core_field_offset(struct maple_arange_64, slot);
		} else if (type == MAPLE_LEAF_64 || type == MAPLE_RANGE_64) {
			slots = MAPLE_RANGE64_SLOTS;
			pivot_at = node + bpf_core_field_offset(struct maple_range_64, pivot);
			slot_at = node + bpf_core_field_offset(struct maple_range_64, slot);
		} else {
			return 0;
		}
		if (bpf_probe_read_kernel(pivots, (slots - 1) * sizeof(pivots[0]), (void *)pivot_at))
			return 0;
		/* The first pivot at or above addr names the slot; past the
		 * last stored pivot (unused ones are 0) the next slot holds
		 * the node's last range, whose pivot is its maximum. */
		int i;
		for (i = 0; i < MAPLE_RANGE64_SLOTS - 1 && i < slots - 1; i++) {
			unsigned long p = pivots[i];
			if (p >= addr || (p == 0 && i > 0))
				break;
		}
		unsigned long entry = 0;
		if (bpf_probe_read_kernel(&entry, sizeof(entry), (void *)(slot_at + i * sizeof(void *))))
			return 0;
		if (type == MAPLE_LEAF_64)
			return entry;
		enode = entry;
	}
	return 0;
}

/* A field of the VMA at address `vma` (a number: read from a tree node). */
#define VMA_LOAD(vma, field) CORE_LOAD(struct vm_area_struct, (void *)(vma), field)

/* The run's walk, shared with the bpf_loop callbacks. */
struct store_walk {
	unsigned long root;
	unsigned long mm;
};

/* A VMA of `mm`, found by maple_lookup, if it covers addr. */
static __always_inline unsigned long vma_at(struct store_walk *w, unsigned long addr)
{
	unsigned long vma = maple_lookup(w->root, addr);
	if (!vma)
		return 0;
	if ((unsigned long)VMA_LOAD(vma, vm_mm) != w->mm)
		return 0;
	if (VMA_LOAD(vma, vm_start) > addr ||
	    VMA_LOAD(vma, vm_end) <= addr)
		return 0;
	return vma;
}

/* Whether `vma` maps the image's file; notes an executable one. */
static __always_inline bool of_image(struct image_scan *s, unsigned long vma)
{
	struct file *file = VMA_LOAD(vma, vm_file);
	if (!file || CORE_LOAD(struct file, file, f_inode) != s->inode)
		return false;
	if (VMA_LOAD(vma, vm_flags) & VM_EXEC) {
		s->any_exec = 1;
		s->other_exec = 1; /* every neighbour lies outside the new mapping */
	}
	return true;
}

/* bpf_loop callback: extend the run one VMA down; 1 stops. */
static long store_step_down(__u64 index, void *ctx)
{
	struct image_scan *s = image_scan_state();
	if (!s || s->lo < page_size)
		return 1;
	unsigned long vma = vma_at(ctx, s->lo - 1);
	if (!vma || VMA_LOAD(vma, vm_end) != s->lo || !of_image(s, vma))
		return 1;
	s->lo = VMA_LOAD(vma, vm_start);
	return 0;
}

/* bpf_loop callback: extend the run one VMA up; 1 stops. */
static long store_step_up(__u64 index, void *ctx)
{
	struct image_scan *s = image_scan_state();
	if (!s)
		return 1;
	unsigned long vma = vma_at(ctx, s->hi);
	if (!vma || VMA_LOAD(vma, vm_start) != s->hi || !of_image(s, vma))
		return 1;
	s->hi = VMA_LOAD(vma, vm_end);
	return 0;
}

/*
 * `vma` is being stored in `mm`'s tree by the current task: if it is the
 * executable file mapping an mmap creates, resolve the image's run, kill
 * the process if the file is blocked, and report it (see image_mapped).
 */
static __always_inline void vma_stored(struct task_struct *task, struct mm_struct *mm, unsigned long vma,
				       struct mmap_call call)
{
	__u64 start = VMA_LOAD(vma, vm_start);
	__u64 end = VMA_LOAD(vma, vm_end);
	if (end - start != page_up(call.len) ||
	    VMA_LOAD(vma, vm_pgoff) * page_size != call.off)
		return; /* a split or merge of another mapping */
	if (!(VMA_LOAD(vma, vm_flags) & VM_EXEC))
		return;
	struct file *file = VMA_LOAD(vma, vm_file);
	if (!file)
		return;

	struct image_scan *s = image_scan_state();
	__u8 *buf = scratch_buf();
	if (!s || !buf)
		return;
	struct inode *inode = CORE_LOAD(struct file, file, f_inode);
	struct super_block *sb = CORE_LOAD(struct inode, inode, i_sb);
	s->inode = inode;
	s->file = file;
	s->anchor = start;
	s->lo = start;
	s->hi = end;
	s->exec_lo = start;
	s->exec_hi = end;
	s->exec = 1;
	s->any_exec = 1;
	s->other_exec = 0;
	s->dev = CORE_LOAD(struct super_block, sb, s_dev);
	s->ino = CORE_LOAD(struct inode, inode, i_ino);
	s->other_ns = in_other_mount_ns(file);
	s->via = IMAGE_VIA_MMAP;
	s->busy = 0;
	s->paths = 0;

	struct store_walk w = {
		.root = (unsigned long)BPF_CORE_READ(mm, mm_mt.ma_root),
		.mm = (unsigned long)mm,
	};
	bpf_loop(IMAGE_WALK_MAX, store_step_down, &w, 0);
	bpf_loop(IMAGE_WALK_MAX, store_step_up, &w, 0);

	__u8 flags = 0;
	if (!judge(task, s, IMAGE_VIA_MMAP, &flags))
		return;
	/* The VMA holds the file, and mmap_lock holds the VMA. */
	write_paths(s, file);

	submit_image(task, s, buf, IMAGE_VIA_MMAP, flags);
}

/* "mas_stor": the first eight bytes of the entry points' names. */
#define MAS_STOR_PREFIX 0x726f74735f73616dULL

/* 6.4 and later (and any kernel without mmap:vma_store). */
SEC("tp_btf/ma_write")
int BPF_PROG(on_ma_write, const char *fn, struct ma_state *mas, unsigned long piv, void *val)
{
	if (!val)
		return 0; /* an erase */
	struct task_struct *task = bpf_get_current_task_btf();
	struct mm_struct *mm = task->mm;
	if (!mm)
		return 0;
	unsigned long tree = (unsigned long)mas->tree;
	if (tree != (unsigned long)mm + bpf_core_field_offset(struct mm_struct, mm_mt))
		return 0; /* not this process's VMA tree */
	/* Plain loads up to here: most stores are not a file mmap's. */
	struct mmap_call call;
	if (!in_file_mmap(task, &call))
		return 0;
	__u64 name = 0;
	if (bpf_probe_read_kernel(&name, sizeof(name), fn) || name != MAS_STOR_PREFIX)
		return 0; /* a step inside a write traced already */
	vma_stored(task, mm, (unsigned long)val, call);
	return 0;
}

/* 6.1 to 6.3: vma_mas_store(), VMAs only. */
SEC("tp_btf/vma_store")
int BPF_PROG(on_vma_store, struct maple_tree *mt, struct vm_area_struct *vma)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct mm_struct *mm = task->mm;
	if (!mm || (unsigned long)mt != (unsigned long)mm + bpf_core_field_offset(struct mm_struct, mm_mt))
		return 0;
	struct mmap_call call;
	if (!in_file_mmap(task, &call))
		return 0;
	vma_stored(task, mm, (unsigned long)vma, call);
	return 0;
}

#endif /* RSYSMON_IMAGE_STORE_BPF_H */
