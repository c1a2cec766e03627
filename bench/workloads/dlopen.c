/* dlopen + dlsym + dlclose of a small library, N times. Each dlclose drops
 * the last reference, so each dlopen maps the file again: one image load
 * per iteration. */
#include <dlfcn.h>
#include "bench.h"

int main(int argc, char **argv)
{
	long n = parse_count(argc, argv, "COUNT LIBRARY");
	if (argc < 3) {
		fprintf(stderr, "usage: %s COUNT LIBRARY\n", argv[0]);
		return 2;
	}

	long long start = now_ns();
	for (long i = 0; i < n; i++) {
		void *lib = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
		if (!lib) {
			fprintf(stderr, "dlopen: %s\n", dlerror());
			return 1;
		}
		int (*answer)(void) = (int (*)(void))dlsym(lib, "bench_plugin_answer");
		if (!answer || answer() != 42) {
			fprintf(stderr, "dlopen: bench_plugin_answer missing in %s\n", argv[2]);
			return 1;
		}
		dlclose(lib);
	}
	report("dlopen", n, now_ns() - start);
	return 0;
}
