// Creates N threads one after another; each prints "tid <tid>" and exits.
// The process prints "pid <pid>" first. With NAME, it first renames itself
// (prctl PR_SET_NAME). Usage: threads [N [NAME]]
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

static void *report(void *arg)
{
	(void)arg;
	printf("tid %d\n", gettid());
	fflush(stdout);
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 4;
	printf("pid %d\n", getpid());
	fflush(stdout);
	if (argc > 2)
		prctl(PR_SET_NAME, argv[2], 0, 0, 0);
	for (int i = 0; i < n; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, report, NULL) != 0)
			return 1;
		pthread_join(t, NULL);
	}
	return 0;
}
