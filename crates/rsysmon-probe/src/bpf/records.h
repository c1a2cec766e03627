/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The records that cross the ring buffer from the probes to the daemon.
 *
 * This header is the one definition of that ABI: the probes include it, and
 * the Rust side gets the same layouts from it through bindgen (build.rs).
 *
 * Every record starts with a `struct record_header`. `size` is the length of
 * the whole record in bytes, header included; variable-length data (paths,
 * argv) follows the fixed part of a record, in the order the fixed part lists
 * the lengths. The decoder checks `kind` and every length before it trusts
 * them.
 *
 * A path is sent as its components from the leaf up to the root, each
 * terminated by a NUL byte ("libc.so.6\0x86_64-linux-gnu\0lib\0usr\0"): the
 * probe walks dentries upward and has no room to reverse them, user space
 * does. Zero components means "/".
 */
#ifndef RSYSMON_RECORDS_H
#define RSYSMON_RECORDS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define RECORD_COMM_LEN 16

/* Upper bounds the probes obey; the decoder rejects anything larger. */
#define RECORD_MAX_SIZE 16384
#define RECORD_PATH_MAX 4096
#define RECORD_ARGV_MAX 4096

enum record_kind {
	RECORD_PROCESS_CREATE = 1,
	RECORD_PROCESS_EXEC = 2,
	RECORD_PROCESS_EXIT = 3,
	RECORD_THREAD_CREATE = 4,
	RECORD_THREAD_EXIT = 5,
	RECORD_PROCESS_TAMPER = 6,
	RECORD_REMOTE_THREAD = 7,
	RECORD_IMAGE_LOAD = 8,
};

/* How one process took hold of another (tamper_record.method). */
enum record_tamper_method {
	TAMPER_PTRACE_ATTACH = 1,   /* PTRACE_ATTACH */
	TAMPER_PTRACE_SEIZE = 2,    /* PTRACE_SEIZE */
	TAMPER_PTRACE_POKE = 3,     /* PTRACE_POKETEXT, POKEDATA, POKEUSER */
	TAMPER_PTRACE_SETREGS = 4,  /* PTRACE_SETREGS, SETFPREGS, SETREGSET */
	TAMPER_PROCESS_VM_WRITEV = 5,
	TAMPER_PROC_MEM = 6,        /* open("/proc/PID/mem") for writing */
};

/* Bits of a path's flags byte. */
enum record_path_flag {
	PATH_TRUNCATED = 1,    /* too deep or too long: leading components missing */
	PATH_DELETED = 2,      /* the file was unlinked (d_unlinked) */
	PATH_DISCONNECTED = 4, /* the walk ended somewhere that is not a mount root */
};

/* Slots of the per-CPU loss counter map `losses`. */
enum record_loss_slot {
	LOSS_RINGBUF_FULL = 0, /* bpf_ringbuf_output failed: record dropped */
	/* An image-load could not be resolved: another thread held the
	 * process's address space locked for writing (bpf_find_vma only
	 * try-locks it), so no record was made. */
	LOSS_IMAGE_LOOKUP_BUSY = 1,
	LOSS_SLOTS = 2,
};

/* What made an image executable in a process. */
enum record_image_via {
	IMAGE_VIA_EXEC = 1,        /* the program, mapped by the kernel at execve */
	IMAGE_VIA_INTERPRETER = 2, /* its ELF interpreter (PT_INTERP), mapped at execve */
	IMAGE_VIA_MMAP = 3,        /* mmap of a file with PROT_EXEC */
	IMAGE_VIA_MPROTECT = 4,    /* mprotect/pkey_mprotect adding PROT_EXEC to a file mapping */
};

/* Bits of an image-load record's flags. */
enum record_image_flag {
	/* The file is in the blocked set: the process was sent SIGKILL before
	 * it could run an instruction of it. */
	IMAGE_BLOCKED = 1,
	/* The file's mount is not in the daemon's mount namespace: a
	 * file-system-relative path follows the namespace path. */
	IMAGE_OTHER_MOUNT_NS = 2,
};

struct record_header {
	__u32 kind;       /* enum record_kind */
	__u32 size;       /* whole record, header included */
	__u64 time_ns;    /* CLOCK_BOOTTIME, bpf_ktime_get_boot_ns() */
	__u32 pid;        /* thread group id of the process the event is about */
	__u32 tid;        /* thread id the event is about */
	/* name of the process (its thread group leader's comm) */
	char comm[RECORD_COMM_LEN];
	/* Who the process is beyond its pid. start_ns and pid make it unique
	 * within a boot; the rest say where it runs. */
	__u64 start_ns;   /* CLOCK_BOOTTIME at the thread group leader's creation */
	__u32 ns_pid;     /* pid in the process's own pid namespace */
	__u32 ns_tid;     /* tid in the thread's own pid namespace */
	__u32 pid_ns;     /* inode number of the thread's pid namespace */
	__u32 mnt_ns;     /* inode number of its mount namespace; 0 if gone */
	__u64 cgroup_id;  /* id of its cgroup v2 (kernfs node id); 0 if none */
};

/* A new thread group: fork, vfork, clone without CLONE_THREAD. */
struct process_create_record {
	struct record_header header; /* pid/tid: the child; comm: the child's */
	__u64 parent_start_ns;       /* start_ns of the real parent's thread group leader */
	__u32 ppid;                  /* real parent's thread group id */
	__u32 creator_tid;           /* the thread that called fork/clone */
	__u32 uid;
	__u32 gid;
	char parent_comm[RECORD_COMM_LEN];
	__u16 exe_len;               /* bytes of exe path data that follow */
	__u8 exe_flags;              /* enum record_path_flag */
	__u8 _pad[5];
	/* followed by: exe path components */
};

/* The process image was replaced by execve/execveat. */
struct process_exec_record {
	struct record_header header; /* tid is the thread group id after de_thread */
	__u64 exe_dev;               /* the new program's inode->i_sb->s_dev: MAJOR << 20 | MINOR */
	__u64 exe_inode;             /* its inode->i_ino */
	__u32 old_tid;               /* the thread that called execve */
	__u16 exe_len;
	__u16 argv_len;              /* NUL-separated arguments */
	__u16 cwd_len;
	__u8 exe_flags;
	__u8 cwd_flags;
	__u8 argv_truncated;
	__u8 _pad[3];
	/* followed by: exe path components, argv bytes, cwd path components */
};

/* A task exited: the last one of its group (process) or not (thread). */
struct exit_record {
	struct record_header header;
	__u32 exit_code;             /* wait(2) status word */
	__u32 _pad;
	__u64 start_time_ns;         /* CLOCK_BOOTTIME at the task's creation */
};

/* A new thread in an existing thread group (clone with CLONE_THREAD). */
struct thread_create_record {
	struct record_header header; /* pid: the process, tid: the new thread */
	__u32 creator_tid;
	__u32 _pad;
};

/* One process wrote into (or attached to) another. The header's pid/tid
 * are the target's; `creator_*` are the process that did it. */
struct tamper_record {
	struct record_header header;
	__u32 creator_pid;
	__u32 creator_tid;
	char creator_comm[RECORD_COMM_LEN];
	__u32 method;                /* enum record_tamper_method */
	__u32 _pad;
};

/* A thread was created in a process while it was taken over by another.
 * The header's pid is the target process, tid the new thread. */
struct remote_thread_record {
	struct record_header header;
	__u32 target_creator_tid;    /* the target's thread that ran clone() */
	__u32 creator_pid;           /* the process that took the target over */
	__u32 creator_tid;
	__u32 method;                /* how it took over: enum record_tamper_method */
	char creator_comm[RECORD_COMM_LEN];
	__u64 tamper_time_ns;        /* CLOCK_BOOTTIME of the takeover */
};

/*
 * Key of the `blocked_files` map: a file whose code must never run in any
 * process. `dev` in the kernel's encoding (inode->i_sb->s_dev,
 * MAJOR << 20 | MINOR), not stat(2)'s st_dev; `ino` is st_ino.
 */
struct blocked_file {
	__u64 dev;
	__u64 ino;
};

/*
 * A file became executable in a process: one record per image per process,
 * not per segment. `base` is the lowest address of the run of adjacent
 * mappings of that file around the executable one, `size` the length of the
 * run (for images the ELF loader maps, the whole image including .bss).
 */
struct image_load_record {
	struct record_header header;
	__u64 base;
	__u64 size;
	__u64 dev;                   /* inode->i_sb->s_dev: MAJOR << 20 | MINOR */
	__u64 inode;                 /* inode->i_ino */
	__u16 path_len;              /* path as the process sees it */
	__u16 fs_path_len;           /* path from the root of the file system; 0 unless IMAGE_OTHER_MOUNT_NS */
	__u8 path_flags;             /* enum record_path_flag */
	__u8 fs_path_flags;
	__u8 via;                    /* enum record_image_via */
	__u8 flags;                  /* enum record_image_flag */
	/* followed by: path components, file-system path components */
};

#endif /* RSYSMON_RECORDS_H */
