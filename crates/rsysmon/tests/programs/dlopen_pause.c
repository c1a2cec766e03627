// cc: -ldl
// dlopen LIB, print "ready <tid>", then wait until stdin closes, so that
// /proc/PID/maps can be read with the library mapped.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	if (!dlopen(argv[1], RTLD_NOW | RTLD_LOCAL)) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	printf("ready %d\n", gettid());
	fflush(stdout);
	char buf[1];
	while (read(0, buf, 1) > 0)
		;
	return 0;
}
