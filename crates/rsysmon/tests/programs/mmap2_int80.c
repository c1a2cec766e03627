// Maps two pages of FILE with PROT_READ | PROT_EXEC through the 32-bit
// syscall entry (`int 0x80`, mmap2) from this 64-bit process: the kernel
// places a 32-bit mapping below 4 GiB. Syscall tracepoints never fire for
// such calls. Prints
//   tid <tid>
//   base <hex>     (the mapping's address)
#define _GNU_SOURCE
#include "open_arg.h"
#include <stdio.h>
#include <unistd.h>

#define NR_IA32_MMAP2 192
#define PROT_READ_EXEC 0x5
#define MAP_PRIVATE_ 0x02

int main(int argc, char **argv)
{
	int fd = open_arg(argc, argv);
	long ret;
	/* ebx addr, ecx len, edx prot, esi flags, edi fd, ebp pgoff; int 0x80
	 * clobbers r8-r11, and rbp is saved around the call by hand. */
	__asm__ volatile("push %%rbp\n\t"
			 "mov %[pgoff], %%ebp\n\t"
			 "int $0x80\n\t"
			 "pop %%rbp"
			 : "=a"(ret)
			 : "a"(NR_IA32_MMAP2), "b"(0), "c"(2 * 4096), "d"(PROT_READ_EXEC), "S"(MAP_PRIVATE_), "D"(fd),
			   [pgoff] "r"(0)
			 : "memory", "r8", "r9", "r10", "r11");
	if ((unsigned long)ret >= (unsigned long)-4095) {
		fprintf(stderr, "mmap2: error %ld\n", -ret);
		return 1;
	}
	if ((unsigned long)ret >= 1UL << 32) {
		fprintf(stderr, "mmap2 mapped above 4 GiB: %lx\n", ret);
		return 1;
	}
	printf("tid %d\nbase %lx\n", gettid(), (unsigned long)ret);
	return 0;
}
