// dlopen + dlclose LIB N times (default 3000); prints "ns_per_op <n>":
// CPU time of the process per round (user + system, probes included: they
// run in its context), so time spent waiting for a CPU on a busy machine
// does not count.
// Each round maps the library (one image-load event) and unmaps it.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s LIB [N]\n", argv[0]);
		return 2;
	}
	long n = argc > 2 ? atol(argv[2]) : 3000;
	struct timespec a, b;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
	for (long i = 0; i < n; i++) {
		void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
		if (!h || dlclose(h)) {
			fprintf(stderr, "dlopen/dlclose %s: %s\n", argv[1], dlerror());
			return 1;
		}
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
	double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
	printf("ns_per_op %.1f\n", ns / n);
	return 0;
}
