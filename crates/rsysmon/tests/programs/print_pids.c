// Prints its pid and tid as its own pid namespace numbers them, then
// sleeps a moment so its events are seen while it lives.
#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	printf("pid %d\ntid %d\n", getpid(), gettid());
	fflush(stdout);
	usleep(100000);
	return 0;
}
