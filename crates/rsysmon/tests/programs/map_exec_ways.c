// cc: -ldl
// Makes FILE's code runnable one way, without running it, and says how
// that went: "mapped", or "refused ERRNO MESSAGE".
//   map_exec_ways mmap FILE      mmap(PROT_READ|PROT_EXEC)
//   map_exec_ways mmap2 FILE     the 32-bit mmap2 through int 0x80
//   map_exec_ways mprotect FILE  mmap(PROT_READ), then mprotect(+PROT_EXEC)
//   map_exec_ways dlopen FILE    dlopen(RTLD_NOW)
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int refused(int err, const char *what)
{
	printf("refused %d %s\n", err, what);
	return 1;
}

// mmap2(NULL, len, prot, MAP_PRIVATE, fd, 0) through the 32-bit entry; the
// kernel returns a 32-bit value. rbp (pgoff) is saved around the call, below
// the red zone.
static long mmap2_int80(unsigned long len, unsigned long prot, unsigned long fd)
{
	long ret;
	__asm__ volatile("sub $128, %%rsp\n\t"
			 "push %%rbp\n\t"
			 "xor %%ebp, %%ebp\n\t"
			 "int $0x80\n\t"
			 "pop %%rbp\n\t"
			 "add $128, %%rsp"
			 : "=a"(ret)
			 : "a"(192L), "b"(0L), "c"(len), "d"(prot), "S"((long)MAP_PRIVATE), "D"(fd)
			 : "memory", "cc", "r8", "r9", "r10", "r11");
	return (int)ret;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	const char *mode = argv[1], *path = argv[2];
	long page = sysconf(_SC_PAGESIZE);
	if (!strcmp(mode, "dlopen")) {
		errno = 0;
		if (!dlopen(path, RTLD_NOW))
			return refused(errno, dlerror());
		printf("mapped\n");
		return 0;
	}
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		perror("open");
		return 2;
	}
	if (!strcmp(mode, "mmap")) {
		if (mmap(NULL, page, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0) == MAP_FAILED)
			return refused(errno, strerror(errno));
	} else if (!strcmp(mode, "mmap2")) {
		long ret = mmap2_int80(page, PROT_READ | PROT_EXEC, fd);
		if (ret < 0 && ret > -4096)
			return refused((int)-ret, strerror((int)-ret));
	} else if (!strcmp(mode, "mprotect")) {
		void *p = mmap(NULL, page, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			perror("mmap");
			return 2;
		}
		if (mprotect(p, page, PROT_READ | PROT_EXEC))
			return refused(errno, strerror(errno));
	} else {
		return 2;
	}
	printf("mapped\n");
	return 0;
}
