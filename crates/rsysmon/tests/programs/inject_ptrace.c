// Hijacks a thread of another process with ptrace: attach, save its
// registers, point it at ENTRY (a function in the target), let it run until
// it traps, restore the registers, detach. Prints "injector tid T".
// Usage: inject_ptrace PID ENTRY_HEX
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	pid_t pid = atoi(argv[1]);
	unsigned long entry = strtoul(argv[2], NULL, 16);
	printf("injector tid %d\n", gettid());
	fflush(stdout);

	if (ptrace(PTRACE_ATTACH, pid, 0, 0) != 0) {
		perror("PTRACE_ATTACH");
		return 1;
	}
	int status;
	waitpid(pid, &status, 0);

	struct user_regs_struct saved, regs;
	ptrace(PTRACE_GETREGS, pid, 0, &saved);
	regs = saved;
	regs.rip = entry;
	regs.rsp = ((saved.rsp - 512) & ~0xfUL) - 8; /* past the red zone, call-aligned */
	regs.orig_rax = -1;                        /* no syscall restart */
	if (ptrace(PTRACE_SETREGS, pid, 0, &regs) != 0) {
		perror("PTRACE_SETREGS");
		return 1;
	}
	ptrace(PTRACE_CONT, pid, 0, 0);
	for (;;) {
		waitpid(pid, &status, 0);
		if (WIFSTOPPED(status) && WSTOPSIG(status) == SIGTRAP)
			break;
		if (!WIFSTOPPED(status))
			return 1;
		ptrace(PTRACE_CONT, pid, 0, WSTOPSIG(status));
	}
	ptrace(PTRACE_SETREGS, pid, 0, &saved);
	ptrace(PTRACE_DETACH, pid, 0, 0);
	return 0;
}
