// Takes over its own stopped child through the 32-bit syscall entry
// (`int 0x80`) from this 64-bit process, which syscall tracepoints never
// see: PTRACE_POKEUSR of the child's ebx (compat ptrace), then
// process_vm_writev of 8 bytes into a page mapped below 4 GiB before the
// fork (32-bit process_vm_writev, 32-bit iovecs). Prints
//   child <pid>
//   poke <ret>
//   written <ret>
// then kills the child.
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#define NR_IA32_PTRACE 26
#define NR_IA32_PROCESS_VM_WRITEV 348

struct compat_iovec {
	uint32_t base;
	uint32_t len;
};

static long int80(long nr, long b, long c, long d, long s, long di)
{
	long ret;
	/* The sixth argument, ebp, is 0; rbp is saved around the call. */
	__asm__ volatile("push %%rbp\n\t"
			 "xor %%ebp, %%ebp\n\t"
			 "int $0x80\n\t"
			 "pop %%rbp"
			 : "=a"(ret)
			 : "a"(nr), "b"(b), "c"(c), "d"(d), "S"(s), "D"(di)
			 : "memory", "r8", "r9", "r10", "r11");
	return ret;
}

int main(void)
{
	/* One page below 4 GiB, the same in the child after fork. */
	char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	if (page == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	pid_t child = fork();
	if (child == 0) {
		for (;;)
			pause();
	}
	printf("child %d\n", child);
	fflush(stdout);
	if (ptrace(PTRACE_ATTACH, child, 0, 0) < 0) {
		perror("PTRACE_ATTACH");
		return 1;
	}
	waitpid(child, NULL, 0);
	/* offsetof(struct user_regs_struct32, ebx) == 0 */
	long poke = int80(NR_IA32_PTRACE, PTRACE_POKEUSER, child, 0, 0, 0);
	printf("poke %ld\n", poke);

	struct compat_iovec *iov = (void *)page;
	uint32_t data = (uint32_t)(uintptr_t)(page + 64), target = (uint32_t)(uintptr_t)(page + 128);
	iov[0] = (struct compat_iovec){ data, 8 };
	iov[1] = (struct compat_iovec){ target, 8 };
	long written = int80(NR_IA32_PROCESS_VM_WRITEV, child, (uintptr_t)&iov[0], 1, (uintptr_t)&iov[1], 1);
	printf("written %ld\n", written);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return poke == 0 && written == 8 ? 0 : 1;
}
