// Maps FILE with PROT_EXEC, as a hand-made loader would, without running
// it. Prints "mapped" and exits 0 if the mapping was made.
#include "open_arg.h"
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int fd = open_arg(argc, argv);
	void *p = mmap(NULL, sysconf(_SC_PAGESIZE), PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	printf("mapped\n");
	return 0;
}
