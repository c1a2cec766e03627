// Starts a thread in another process without writing its memory or its
// registers: seize it, stop its main thread at the entry of a nanosleep,
// rewrite that pending syscall with PTRACE_SET_SYSCALL_INFO (Linux 6.16)
// into clone(CLONE_VM|CLONE_THREAD|...) on a stack the target already
// holds, and let it go. MODE "detach" detaches at the syscall entry, so the
// clone runs untraced; "stay" stays attached until the clone returns;
// "stay-late" waits 2 s after the seize first (past a 1 s remote window).
// Prints "injector tid T", and "unsupported" (exit 3) when the kernel lacks
// PTRACE_SET_SYSCALL_INFO.
// Usage: inject_syscall_info PID STACK_HEX MODE
#define _GNU_SOURCE
#include <errno.h>
#include <linux/ptrace.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PTRACE_SET_SYSCALL_INFO
#define PTRACE_SET_SYSCALL_INFO 0x4212
#endif
#define SEIZE 0x4206
#define INTERRUPT 0x4207
#define SYSCALL_STOP (SIGTRAP | 0x80)

static long trace(long request, pid_t pid, unsigned long addr, void *data)
{
	return syscall(SYS_ptrace, request, pid, addr, data);
}

/* Resume to the next syscall stop; returns the stop's info. */
static int next_syscall_stop(pid_t pid, struct ptrace_syscall_info *info)
{
	for (int sig = 0;;) {
		if (trace(PTRACE_SYSCALL, pid, 0, (void *)(long)sig) != 0)
			return -1;
		int status;
		if (waitpid(pid, &status, __WALL) != pid || !WIFSTOPPED(status))
			return -1;
		sig = 0;
		if (WSTOPSIG(status) == SYSCALL_STOP)
			break;
		if (status >> 16 == 0 && WSTOPSIG(status) != SIGTRAP)
			sig = WSTOPSIG(status); /* a real signal: deliver it */
	}
	memset(info, 0, sizeof(*info));
	return trace(PTRACE_GET_SYSCALL_INFO, pid, sizeof(*info), info) > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	pid_t pid = atoi(argv[1]);
	unsigned long stack = strtoul(argv[2], NULL, 16);
	int stay = strncmp(argv[3], "stay", 4) == 0;
	int late = strcmp(argv[3], "stay-late") == 0;
	printf("injector tid %d\n", gettid());
	fflush(stdout);

	if (trace(SEIZE, pid, 0, (void *)PTRACE_O_TRACESYSGOOD) != 0) {
		perror("PTRACE_SEIZE");
		return 1;
	}
	int status;
	trace(INTERRUPT, pid, 0, 0);
	waitpid(pid, &status, __WALL);
	if (late)
		sleep(2);

	/* The main thread sleeps in a loop: wait for a nanosleep (35) entry. */
	struct ptrace_syscall_info info;
	do {
		if (next_syscall_stop(pid, &info) != 0) {
			perror("syscall stop");
			return 1;
		}
	} while (info.op != PTRACE_SYSCALL_INFO_ENTRY || info.entry.nr != SYS_nanosleep);

	info.entry.nr = SYS_clone;
	memset(info.entry.args, 0, sizeof(info.entry.args));
	info.entry.args[0] = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
	info.entry.args[1] = stack;
	if (trace(PTRACE_SET_SYSCALL_INFO, pid, sizeof(info), &info) != 0) {
		int unsupported = errno == EIO;
		perror("PTRACE_SET_SYSCALL_INFO");
		trace(PTRACE_DETACH, pid, 0, 0);
		if (unsupported)
			printf("unsupported\n");
		return unsupported ? 3 : 1;
	}
	if (stay) {
		if (next_syscall_stop(pid, &info) != 0 || info.op != PTRACE_SYSCALL_INFO_EXIT) {
			fprintf(stderr, "no clone exit stop\n");
			return 1;
		}
		printf("cloned %lld\n", (long long)info.exit.rval);
	}
	trace(PTRACE_DETACH, pid, 0, 0);
	return 0;
}
