// Maps two pages of FILE read-only below 4 GiB (MAP_32BIT), then makes
// them executable with mprotect through the 32-bit syscall entry
// (`int 0x80`) from this 64-bit process, then with pkey_mprotect the same
// way (already executable: no new image). Syscall tracepoints never fire
// for such calls. Prints
//   tid <tid>
//   base <hex>     (the mapping's address)
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#define NR_IA32_MPROTECT 125
#define NR_IA32_PKEY_MPROTECT 380

/* A 32-bit syscall with three or four arguments; int 0x80 clobbers r8-r11. */
static long int80(long nr, long a, long b, long c, long d)
{
	long ret;
	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d)
			 : "memory", "r8", "r9", "r10", "r11");
	return ret;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0) {
		perror("open");
		return 1;
	}
	char *p = mmap(NULL, 2 * 4096, PROT_READ, MAP_PRIVATE | MAP_32BIT, fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	printf("tid %d\nbase %lx\n", gettid(), (unsigned long)p);
	fflush(stdout);
	long ret = int80(NR_IA32_MPROTECT, (long)p, 2 * 4096, PROT_READ | PROT_EXEC, 0);
	if (ret) {
		fprintf(stderr, "mprotect: error %ld\n", -ret);
		return 1;
	}
	/* pkey -1: the default key. */
	ret = int80(NR_IA32_PKEY_MPROTECT, (long)p, 2 * 4096, PROT_READ | PROT_EXEC, -1);
	if (ret) {
		fprintf(stderr, "pkey_mprotect: error %ld\n", -ret);
		return 1;
	}
	return 0;
}
