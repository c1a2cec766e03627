// Maps FILE read-only, then makes its first page executable with mprotect,
// then does it again (already executable), then drops and re-adds
// PROT_EXEC: one image, whatever the number of calls. Last, re-applies
// PROT_EXEC to a page of its own text, which exec mapped: no image. Prints
//   tid <tid>
//   base <hex>     (the mapping's address)
#define _GNU_SOURCE
#include "open_arg.h"
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int fd = open_arg(argc, argv);
	long page = sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, 2 * page, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	printf("tid %d\nbase %lx\n", gettid(), (unsigned long)p);
	fflush(stdout);
	if (mprotect(p, page, PROT_READ | PROT_EXEC) || mprotect(p, page, PROT_READ | PROT_EXEC) ||
	    mprotect(p, page, PROT_READ) || mprotect(p, page, PROT_READ | PROT_EXEC)) {
		perror("mprotect");
		return 1;
	}
	void *text = (void *)((unsigned long)main & ~(page - 1));
	if (mprotect(text, page, PROT_READ | PROT_EXEC)) {
		perror("mprotect text");
		return 1;
	}
	return 0;
}
