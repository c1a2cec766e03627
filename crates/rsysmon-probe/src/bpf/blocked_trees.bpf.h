/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Blocked directory trees: directory and glob rules in the kernel.
 *
 * A file rule reaches the kernel as the file's identity (`blocked_files`).
 * A directory rule reaches it as the directory's identity, and a glob rule
 * as the identity of its literal directory prefix (`/opt/x/` for the
 * pattern `/opt/x/STAR.so`), in `blocked_trees`. When an image is judged, the
 * file's dentry is walked up to the root of the mount tree: d_parent to the
 * root of its file system, then across to the mount point in the parent
 * mount, and so on. Every directory met is looked up. The walk goes by
 * identity, so no name can be made long enough to escape it, and it climbs
 * the file system's own tree before the mount's, so a bind mount of a
 * blocked directory (whose root dentry keeps its real parents) is still
 * inside it.
 *
 * A walk that has not reached the root after TREE_WALK_MAX steps (a
 * directory nested that deep, built with chdir steps) cannot be resolved:
 * while any tree is blocked, such a file is refused.
 *
 * All reads are BPF_CORE_READ (probe reads): the walk runs in tracepoint
 * context without the rename lock, so a concurrent rename can give a stale
 * parent, never a fault.
 */
#ifndef RSYSMON_BLOCKED_TREES_BPF_H
#define RSYSMON_BLOCKED_TREES_BPF_H

#include "common.bpf.h"

/* Entries in each kernel list: the most rules a rule set may hold
 * (rsysmon_blocker::MAX_RULES), so a list can never be fuller than the
 * rules it mirrors. */
#define BLOCKED_MAX 16384
/* Directories a tree walk visits before it gives up. */
#define TREE_WALK_MAX 1024

/* Value of a `blocked_trees` entry, and bits of a walk's result. */
enum blocked_tree_kind {
	/* Everything below is blocked, however it is mapped. */
	TREE_DIR = 1,
	/* The literal prefix of a glob: execve is judged exactly by the
	 * blocker; ld.so, dlopen and mmap below it are refused. */
	TREE_GLOB_PREFIX = 2,
	/* Walk result only: the walk did not reach the root. */
	TREE_UNRESOLVED = 4,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BLOCKED_MAX);
	__type(key, struct blocked_file);
	__type(value, __u8);
} blocked_trees SEC(".maps");

/* Number of entries in `blocked_trees`, kept by user space: no walk at all
 * while it is 0. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} blocked_tree_count SEC(".maps");

struct tree_walk {
	__u64 dentry; /* struct dentry * */
	__u64 mnt;    /* struct mount * */
	__u8 found;   /* TREE_* bits met so far */
	__u8 done;    /* reached the root of the mount tree */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tree_walk);
} tree_walks SEC(".maps");

static __always_inline struct tree_walk *tree_walk_state(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&tree_walks, &zero);
}

/* One directory of the walk (bpf_loop callback). Returns 1 to stop. */
static long tree_step(__u64 index, void *unused)
{
	struct tree_walk *w = tree_walk_state();
	if (!w)
		return 1;
	struct dentry *dentry = (struct dentry *)w->dentry;
	struct mount *mnt = (struct mount *)w->mnt;
	struct inode *inode = BPF_CORE_READ(dentry, d_inode);

	if (inode) {
		struct blocked_file id = {
			.dev = BPF_CORE_READ(inode, i_sb, s_dev),
			.ino = BPF_CORE_READ(inode, i_ino),
		};
		__u8 *kind = bpf_map_lookup_elem(&blocked_trees, &id);
		if (kind) {
			w->found |= *kind;
			if (*kind & TREE_DIR)
				return 1; /* nothing above can say more */
		}
	}
	struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
	if (parent && parent != dentry) {
		w->dentry = (__u64)parent;
		return 0;
	}
	/* The root of this file system: on to where its mount is mounted. */
	struct mount *up = BPF_CORE_READ(mnt, mnt_parent);
	if (!up || up == mnt) {
		w->done = 1;
		return 1;
	}
	w->dentry = (__u64)BPF_CORE_READ(mnt, mnt_mountpoint);
	w->mnt = (__u64)up;
	return 0;
}

/*
 * The TREE_* bits of every blocked tree `file` lies in, TREE_UNRESOLVED if
 * the walk could not finish; 0 at once while no tree is blocked. The file
 * itself is looked up too (a blocked directory mapped is no image anyway).
 */
static __always_inline __u8 blocked_trees_of(struct file *file)
{
	__u32 zero = 0;
	__u32 *count = bpf_map_lookup_elem(&blocked_tree_count, &zero);
	if (!count || !*count || !file)
		return 0;
	struct tree_walk *w = tree_walk_state();
	if (!w)
		return TREE_UNRESOLVED;
	struct vfsmount *vfsmnt = BPF_CORE_READ(file, f_path.mnt);
	w->dentry = (__u64)BPF_CORE_READ(file, f_path.dentry);
	w->mnt = (__u64)container_of(vfsmnt, struct mount, mnt);
	w->found = 0;
	w->done = 0;
	bpf_loop(TREE_WALK_MAX, tree_step, NULL, 0);
	if (!w->done && !(w->found & TREE_DIR))
		w->found |= TREE_UNRESOLVED;
	return w->found;
}

/*
 * Whether an image mapped `via` (IMAGE_VIA_*) from `file` must not run
 * because of a blocked tree. execve and the interpreter it opens are judged
 * exactly by the blocker (by path), so a glob's prefix alone does not refuse
 * them; a directory, or a walk that could not finish, refuses everything.
 */
static __always_inline bool tree_blocks(struct file *file, __u8 via)
{
	__u8 found = blocked_trees_of(file);
	if (found & (TREE_DIR | TREE_UNRESOLVED))
		return true;
	return (found & TREE_GLOB_PREFIX) && via != IMAGE_VIA_EXEC && via != IMAGE_VIA_INTERPRETER;
}

#endif /* RSYSMON_BLOCKED_TREES_BPF_H */
