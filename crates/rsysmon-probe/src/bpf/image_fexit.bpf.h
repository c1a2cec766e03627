/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Image loads by mmap and mprotect with BPF trampolines (fexit), where the
 * kernel allows them: no syscall tracepoint, so no syscall of the machine
 * is put on the slow path, and only the calls that map or protect memory
 * run a program.
 *
 * - vm_mmap_pgoff(file, addr, len, prot, flag, pgoff) returns the address
 *   of a new mapping. Every user mmap reaches it: mmap, and from 32-bit
 *   code mmap2 and old_mmap (ksys_mmap_pgoff), and the ELF loader's
 *   vm_mmap. The mappings execve makes are reported at sched_process_exec
 *   (image.bpf.h) and are skipped here (task->in_execve).
 * - do_mprotect_pkey(start, len, prot, pkey) returns 0 when the range has
 *   the new protection; mprotect and pkey_mprotect from every entry call
 *   it (a static function, not inlined on Debian 12's 6.1 nor on 6.18:
 *   the loader falls back to the syscall tracepoints where the kernel
 *   refuses to attach).
 *
 * Both functions take mmap_lock and release it before they return, so at
 * fexit the mapping is in place and the image's run is found exactly as
 * at the syscall exit (image_mapped: the VMA iterator, or bpf_find_vma).
 * A blocked file is killed by judge(); where BPF LSM enforces, mmap_file
 * and file_mprotect have refused it already and these see the error.
 */
#ifndef RSYSMON_IMAGE_FEXIT_BPF_H
#define RSYSMON_IMAGE_FEXIT_BPF_H

#include "image.bpf.h"

/* Whether the task is in execve (the ELF loader mapping the new program
 * and its interpreter). */
static __always_inline bool mapping_for_execve(struct task_struct *task)
{
	if (!bpf_core_field_exists(task->in_execve))
		return false;
	return BPF_CORE_READ_BITFIELD_PROBED(task, in_execve);
}

SEC("fexit/vm_mmap_pgoff")
int BPF_PROG(fexit_vm_mmap, struct file *file, unsigned long addr, unsigned long len, unsigned long prot,
	     unsigned long flag, unsigned long pgoff, unsigned long ret)
{
	if (!file || ret >= (unsigned long)-MAX_ERRNO)
		return 0; /* anonymous (MAP_ANONYMOUS has no file here), or failed */
	struct task_struct *task = bpf_get_current_task_btf();
	if (!wants_exec(task, prot) || mapping_for_execve(task))
		return 0;
	mmap_returned(task, ret, len, pgoff * page_size);
	return 0;
}

SEC("fexit/do_mprotect_pkey")
int BPF_PROG(fexit_mprotect, unsigned long start, size_t len, unsigned long prot, int pkey, int ret)
{
	if (ret != 0)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	if (!wants_exec(task, prot))
		return 0;
	mprotect_returned(task, start, len);
	return 0;
}

#endif /* RSYSMON_IMAGE_FEXIT_BPF_H */
