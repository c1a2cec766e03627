/* mprotect of one anonymous page between read-write and read-only, N
 * times. No file and no PROT_EXEC, so an image-load probe must return at
 * once: no events expected. */
#include <sys/mman.h>
#include "bench.h"

int main(int argc, char **argv)
{
	long n = parse_count(argc, argv, "COUNT");
	char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap");
	p[0] = 1;

	long long start = now_ns();
	for (long i = 0; i < n; i++) {
		if (mprotect(p, 4096, i & 1 ? PROT_READ | PROT_WRITE : PROT_READ))
			die("mprotect");
	}
	report("mprotect", n, now_ns() - start);
	return 0;
}
