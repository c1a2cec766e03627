/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The image scan below 6.7: bpf_find_vma (5.17) callbacks that grow the
 * image's run of VMAs one neighbour at a time, where the task-VMA iterator
 * is missing (the loader sets have_vma_iter). Included by image.bpf.h at the
 * point where they are needed: it uses struct image_scan, note_exec and
 * check_anchor from there.
 */
#ifndef RSYSMON_IMAGE_FIND_VMA_BPF_H
#define RSYSMON_IMAGE_FIND_VMA_BPF_H

/* bpf_find_vma callback just below `lo`: does the run go on downward? */
static long neighbour_vma(struct task_struct *task, struct vm_area_struct *vma, void *unused)
{
	struct image_scan *s = image_scan_state();
	if (!s)
		return 0;
	struct file *file = vma->vm_file;
	if (!file || file->f_inode != s->inode || vma->vm_end != s->lo)
		return 0;
	s->lo = vma->vm_start;
	note_exec(s, vma, s->lo, vma->vm_end);
	s->found = 1;
	return 0;
}

static __always_inline long step(struct image_scan *s, __u64 addr)
{
	s->found = 0;
	long err = bpf_find_vma(bpf_get_current_task_btf(), addr, neighbour_vma, NULL, 0);
	if (err == -EBUSY)
		s->busy = 1;
	return s->found ? 0 : 1;
}

/* bpf_find_vma callback at `hi`: does the run go on upward? */
static long neighbour_above(struct task_struct *task, struct vm_area_struct *vma, void *unused)
{
	struct image_scan *s = image_scan_state();
	if (!s)
		return 0;
	struct file *file = vma->vm_file;
	if (!file || file->f_inode != s->inode || vma->vm_start != s->hi)
		return 0;
	s->hi = vma->vm_end;
	note_exec(s, vma, vma->vm_start, s->hi);
	s->found = 1;
	return 0;
}

/* bpf_loop callback: extend the run one VMA up; 1 stops. */
static long step_up(__u64 index, void *unused)
{
	struct image_scan *s = image_scan_state();
	if (!s)
		return 1;
	s->found = 0;
	long err = bpf_find_vma(bpf_get_current_task_btf(), s->hi, neighbour_above, NULL, 0);
	if (err == -EBUSY)
		s->busy = 1;
	return s->found ? 0 : 1;
}

/* bpf_find_vma callback on the anchor: the run starts as its VMA. */
static long anchor_vma(struct task_struct *task, struct vm_area_struct *vma, void *unused)
{
	struct image_scan *s = image_scan_state();
	if (!s)
		return 0;
	struct file *file = vma->vm_file;
	if (!file)
		return 0; /* anonymous memory (a JIT): not an image */
	s->inode = file->f_inode;
	s->lo = vma->vm_start;
	s->hi = vma->vm_end;
	note_exec(s, vma, s->lo, s->hi);
	check_anchor(s, vma);
	return 0;
}

/* bpf_loop callback: extend the run one VMA down; 1 stops. */
static long step_down(__u64 index, void *unused)
{
	struct image_scan *s = image_scan_state();
	if (!s || s->lo < page_size)
		return 1;
	return step(s, s->lo - 1);
}

#endif /* RSYSMON_IMAGE_FIND_VMA_BPF_H */
