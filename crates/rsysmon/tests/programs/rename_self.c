// Renames itself with prctl(PR_SET_NAME, argv[1]), then creates and joins
// one thread that prints "tid <tid>", then exits 0. Prints "pid <pid>".
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
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
	if (argc < 2)
		return 2;
	printf("pid %d\n", getpid());
	fflush(stdout);
	prctl(PR_SET_NAME, argv[1], 0, 0, 0);
	pthread_t t;
	pthread_create(&t, NULL, report, NULL);
	pthread_join(t, NULL);
	return 0;
}
