// cc: -ldl
// dlopen LIB, report its base (dladdr's dli_fbase) and the calling tid,
// dlclose it (unmapping it), then dlopen it again and report again:
//   tid <tid>
//   base <hex>
//   base <hex>
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void load(const char *lib)
{
	void *handle = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	if (!handle) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		exit(1);
	}
	Dl_info info;
	void *sym = dlsym(handle, "image_test_answer");
	if (!sym || !dladdr(sym, &info)) {
		fprintf(stderr, "dlsym/dladdr failed\n");
		exit(1);
	}
	printf("base %lx\n", (unsigned long)info.dli_fbase);
	fflush(stdout);
	if (dlclose(handle)) {
		fprintf(stderr, "dlclose: %s\n", dlerror());
		exit(1);
	}
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	printf("tid %d\n", gettid());
	load(argv[1]);
	load(argv[1]);
	return 0;
}
