/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Full path of a `struct path`, resolved in the probe from the dentry chain.
 *
 * bpf_d_path() is only allowed in LSM/fentry programs, which our kernels
 * refuse, so the walk is done by hand: up d_parent to the root of the mount,
 * then across to the mount point in the parent mount, until the root of the
 * mount tree. Components are appended leaf first (see records.h).
 *
 * Runs in tracepoint context with preemption disabled and no locks held: the
 * reads are bpf_probe_read_kernel, so a concurrent rename can at worst give a
 * stale name, never a fault.
 */
#ifndef RSYSMON_PATH_BPF_H
#define RSYSMON_PATH_BPF_H

#include "common.bpf.h"

#define PATH_MAX_DEPTH 64
#define NAME_READ_MAX 256

/*
 * State of one walk, shared with the bpf_loop callback. It lives in a map,
 * not on the stack: the verifier then treats the offset as any value (kept
 * in bounds by masking) and checks the callback in a few passes, where a
 * precisely tracked stack offset would make it explore every iteration.
 */
struct path_walk {
	struct dentry *dentry;
	struct mount *mnt;
	__u32 off;   /* next write offset in the scratch record */
	__u32 end;   /* no component may start at or past this offset */
	__u8 flags;
	/* Stay in the file's own file system: walk d_parent to the root of the
	 * superblock and never cross to a parent mount. */
	__u8 within_fs;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_walk);
} path_walks SEC(".maps");

static __always_inline struct path_walk *path_walk_state(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&path_walks, &zero);
}

/*
 * One step up the tree. A callback for bpf_loop, so the verifier checks it
 * once instead of once per unrolled iteration. Returns 1 to stop.
 */
static long path_step(__u64 index, void *unused)
{
	struct path_walk *w = path_walk_state();
	if (!w)
		return 1;
	/* The pointers kept in the map are plain numbers to the verifier:
	 * CORE_LOAD reads their fields with direct (faulting-safe) loads where
	 * the kernel can cast them back to kernel types. */
	struct dentry *dentry = w->dentry;
	struct mount *mnt = w->mnt;
	struct dentry *mnt_root = CORE_LOAD(struct mount, mnt, mnt.mnt_root);

	if (dentry == mnt_root && !w->within_fs) {
		struct mount *mnt_parent = CORE_LOAD(struct mount, mnt, mnt_parent);

		if (mnt_parent == mnt)
			return 1; /* root of the mount tree */
		w->dentry = CORE_LOAD(struct mount, mnt, mnt_mountpoint);
		w->mnt = mnt_parent;
		return 0;
	}

	struct dentry *parent = CORE_LOAD(struct dentry, dentry, d_parent);
	/* A file that is its own parent without being its mount's root is a
	 * pseudo file (d_alloc_pseudo: memfd, shm): in no directory, known by
	 * its name alone, and shown deleted, as the kernel's simple_dname does
	 * ("/memfd:NAME (deleted)" in /proc/PID/maps). */
	bool pseudo = dentry == parent && index == 0 && !w->within_fs;
	if (dentry == parent && !pseudo) {
		/* The root of a superblock: where a file-system walk ends, and
		 * where a mount walk ends only for a detached tree. */
		if (!w->within_fs)
			w->flags |= PATH_DISCONNECTED;
		return 1;
	}

	__u8 *buf = scratch_buf();
	__u32 off = w->off;
	if (!buf || off + NAME_READ_MAX > w->end) {
		w->flags |= PATH_TRUNCATED;
		return 1;
	}
	const unsigned char *name = CORE_LOAD(struct dentry, dentry, d_name.name);
	long n = bpf_probe_read_kernel_str(buf + (off & VAR_MASK), NAME_READ_MAX, name);
	if (n <= 0) {
		w->flags |= PATH_TRUNCATED;
		return 1;
	}
	w->off = off + n;
	w->dentry = parent;
	if (pseudo) {
		w->flags |= PATH_DELETED;
		return 1;
	}
	return 0;
}

/*
 * Append the components of `path` to the scratch record at `*off`, using at
 * most `limit` bytes. Returns the path's flags; advances `*off`.
 *
 * With `within_fs` false the walk crosses mount points up to the root of the
 * mount tree the file's mount belongs to: the path as a process in that
 * mount namespace sees it. With `within_fs` true it stays in the file's
 * file system and ends at its root: the path relative to the device, which
 * user space maps to wherever the host mounts that device.
 */
static __always_inline __u8 walk_path(__u32 *off, __u32 limit, const struct path *path, bool within_fs)
{
	struct dentry *dentry = BPF_CORE_READ(path, dentry);
	struct vfsmount *vfsmnt = BPF_CORE_READ(path, mnt);

	if (!dentry || !vfsmnt)
		return PATH_DISCONNECTED;

	struct path_walk *w = path_walk_state();
	if (!w)
		return PATH_TRUNCATED;
	w->dentry = dentry;
	w->mnt = container_of(vfsmnt, struct mount, mnt);
	w->off = *off;
	w->end = *off + limit;
	w->flags = 0;
	w->within_fs = within_fs;

	/* d_unlinked(): unhashed and not its own parent */
	if (!BPF_CORE_READ(dentry, d_hash.pprev) && BPF_CORE_READ(dentry, d_parent) != dentry)
		w->flags |= PATH_DELETED;

	long steps = bpf_loop(PATH_MAX_DEPTH, path_step, NULL, 0);
	if (steps == PATH_MAX_DEPTH)
		w->flags |= PATH_TRUNCATED;
	*off = w->off;
	return w->flags;
}

/* The path as the process that uses it sees it (see walk_path). */
static __always_inline __u8 append_path(__u32 *off, __u32 limit, const struct path *path)
{
	return walk_path(off, limit, path, false);
}

/*
 * f_mode bits of a file embedded in a struct backing_file (an overlayfs or
 * FUSE-passthrough file opened on the layer below): alloc_empty_backing_file
 * sets FMODE_BACKING | FMODE_NOACCOUNT. FMODE_BACKING is bit 25 from 6.8,
 * and bit 24 once "fsnotify: opt-in for permission events at file open
 * time" renumbered the fsnotify bits: 6.14, and stable kernels it was
 * backported to (6.12.106 and later, Debian's 6.12.107), so the kernel
 * version cannot tell which. There bit 25 is FMODE_NONOTIFY, which ordinary
 * files carry (a tmpfs file on a file system with fanotify permission
 * marks), and before 6.12 bit 24 was FMODE_DIO_PARALLEL_WRITE (ext4 and xfs
 * files): either bit alone names no backing file. FMODE_NOACCOUNT (bit 29
 * throughout) is set only on files the kernel opens for itself, which are
 * never a process's mapping unless they are backing files.
 */
#define FMODE_BACKING_BIT_24 (1U << 24)
#define FMODE_BACKING_BIT_25 (1U << 25)
#define FMODE_NOACCOUNT_BIT (1U << 29)

/*
 * The path a process used to reach `file`: what /proc/PID/maps shows for
 * a mapping of it (the kernel's file_user_path()).
 *
 * A mapping of a file on overlayfs holds the backing file: since 6.8 its
 * f_path is the file in the layer (upper or lower directory), and the
 * overlay path the process opened is the backing_file's user_path. Before
 * 6.8 (no user_path in struct backing_file, or no backing_file at all as
 * on 6.1) the backing file's f_path already is the overlay path. The
 * struct is read through CO-RE, so a kernel without it drops this branch.
 * Reading user_path of a file that is no backing file would read past its
 * struct file (a NULL mount there gave the path "/").
 */
static __always_inline const struct path *file_user_path(struct file *file)
{
	if (bpf_core_field_exists(struct backing_file, user_path)) {
		unsigned int mode = BPF_CORE_READ(file, f_mode);
		if ((mode & FMODE_NOACCOUNT_BIT) && (mode & (FMODE_BACKING_BIT_24 | FMODE_BACKING_BIT_25))) {
			struct backing_file *bf = container_of(file, struct backing_file, file);
			return &bf->user_path;
		}
	}
	return &file->f_path;
}

#endif /* RSYSMON_PATH_BPF_H */
