/* Anonymous mmap + munmap of one page, N times. No file and no PROT_EXEC,
 * so an image-load probe must return at once: no events expected. */
#include <sys/mman.h>
#include "bench.h"

int main(int argc, char **argv)
{
	long n = parse_count(argc, argv, "COUNT");

	long long start = now_ns();
	for (long i = 0; i < n; i++) {
		void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			die("mmap");
		if (munmap(p, 4096))
			die("munmap");
	}
	report("mmapanon", n, now_ns() - start);
	return 0;
}
