/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Blocking in the kernel with BPF LSM: the operation itself is refused with
 * EPERM, before any of the file's code can run, and the caller lives on.
 *
 * - bprm_check_security: an execve of a blocked file (and of the
 *   interpreter of a `#!` script, which the kernel checks the same way);
 * - mmap_file: a PROT_EXEC mapping of a blocked file, by any entry
 *   (mmap, the 32-bit mmap2 through int 0x80, the dynamic loader run
 *   directly, dlopen);
 * - file_mprotect: PROT_EXEC added to a mapping of a blocked file.
 *
 * The decision reads the same maps as the image-load probes'
 * (`blocked_files`, and `blocked_trees` through its ancestor walk); user
 * space fills them, no round trip is made. These programs load only where
 * the loader found BPF LSM usable (bpf_lsm.rs); their links and the maps
 * can be pinned, so the refusals go on while the daemon is down.
 *
 * A glob's literal prefix (TREE_GLOB_PREFIX) refuses mappings made outside
 * execve only: execve itself, and the mappings the kernel makes for it, are
 * judged exactly by the blocker (by path, in user space).
 */
#ifndef RSYSMON_ENFORCE_LSM_BPF_H
#define RSYSMON_ENFORCE_LSM_BPF_H

#include "common.bpf.h"
#include "blocked_trees.bpf.h"

#define LSM_EPERM 1
#define LSM_PROT_EXEC 0x4

/* Refusals per hook since load, per CPU (LSM_REFUSED_*). */
enum lsm_refused_slot {
	LSM_REFUSED_EXEC = 0,
	LSM_REFUSED_MMAP = 1,
	LSM_REFUSED_MPROTECT = 2,
	LSM_REFUSED_SLOTS = 3,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LSM_REFUSED_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} lsm_refusals SEC(".maps");

static __always_inline int lsm_refuse(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&lsm_refusals, &slot);
	if (n)
		*n += 1;
	return -LSM_EPERM;
}

/* Whether the current task is inside execve (the kernel mapping the new
 * program or its interpreter). Kernels without the flag count as inside,
 * which leaves glob prefixes to the blocker there. */
static __always_inline bool lsm_in_execve(void)
{
	struct task_struct *task = bpf_get_current_task_btf();
	if (!bpf_core_field_exists(task->in_execve))
		return true;
	return BPF_CORE_READ_BITFIELD_PROBED(task, in_execve);
}

/* Whether code of `file` must not run, mapped `via` (IMAGE_VIA_*). */
static __always_inline bool lsm_blocks(struct file *file, __u8 via)
{
	if (!file)
		return false;
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	if (!inode)
		return false;
	struct blocked_file id = {
		.dev = BPF_CORE_READ(inode, i_sb, s_dev),
		.ino = BPF_CORE_READ(inode, i_ino),
	};
	if (bpf_map_lookup_elem(&blocked_files, &id))
		return true;
	return tree_blocks(file, via);
}

SEC("lsm/bprm_check_security")
int BPF_PROG(lsm_bprm_check, struct linux_binprm *bprm, int ret)
{
	if (ret)
		return ret;
	if (lsm_blocks(bprm->file, IMAGE_VIA_EXEC))
		return lsm_refuse(LSM_REFUSED_EXEC);
	return 0;
}

SEC("lsm/mmap_file")
int BPF_PROG(lsm_mmap_file, struct file *file, unsigned long reqprot, unsigned long prot, unsigned long flags,
	     int ret)
{
	if (ret)
		return ret;
	if (!file || !(prot & LSM_PROT_EXEC))
		return 0;
	__u8 via = lsm_in_execve() ? IMAGE_VIA_EXEC : IMAGE_VIA_MMAP;
	if (lsm_blocks(file, via))
		return lsm_refuse(LSM_REFUSED_MMAP);
	return 0;
}

SEC("lsm/file_mprotect")
int BPF_PROG(lsm_file_mprotect, struct vm_area_struct *vma, unsigned long reqprot, unsigned long prot, int ret)
{
	if (ret)
		return ret;
	if (!(prot & LSM_PROT_EXEC))
		return 0;
	if (lsm_blocks(BPF_CORE_READ(vma, vm_file), IMAGE_VIA_MPROTECT))
		return lsm_refuse(LSM_REFUSED_MPROTECT);
	return 0;
}

#endif /* RSYSMON_ENFORCE_LSM_BPF_H */
