// cc: -lm
// Starts with libm as well as libc, prints "ready <tid>" once main runs (so
// the loader has mapped everything), then waits until stdin closes.
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	// A libm call the compiler cannot fold, so the link keeps libm.
	volatile double x = argc;
	printf("ready %d %f\n", gettid(), cbrt(x));
	fflush(stdout);
	char buf[1];
	while (read(0, buf, 1) > 0)
		;
	return 0;
}
