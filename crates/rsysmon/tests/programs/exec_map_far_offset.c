// Maps FILE executable at a large file offset just above 200 small
// mappings of its own, so that an image's expected base (address minus file
// offset) lies below all of them: the image probe's upward pass from there
// runs out of steps before it reaches the mapping, and must find it from
// the mapping itself. FILE is created (sparse). Prints
//   tid <tid>
//   base <hex>     (the executable mapping's address)
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#define SMALL 200

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	long page = sysconf(_SC_PAGESIZE);
	off_t offset = 64L << 20;
	int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, offset + page)) {
		perror("file");
		return 1;
	}
	/* One reservation, then every other page readable: SMALL mappings. */
	char *area = mmap(NULL, (SMALL + 1) * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED) {
		perror("mmap area");
		return 1;
	}
	for (int i = 0; i < SMALL; i += 2) {
		if (mprotect(area + i * page, page, PROT_READ)) {
			perror("mprotect");
			return 1;
		}
	}
	char *p = mmap(area + SMALL * page, page, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_FIXED, fd, offset);
	if (p == MAP_FAILED) {
		perror("mmap file");
		return 1;
	}
	printf("tid %d\nbase %lx\n", gettid(), (unsigned long)p);
	return 0;
}
