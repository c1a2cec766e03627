// A non-leader thread calls execve: the kernel's de_thread gives it the
// leader's pid. Prints "leader <pid> thread <tid>" before exec'ing argv[1].
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static char **args;

static void *exec_it(void *arg)
{
	(void)arg;
	printf("leader %d thread %d\n", getpid(), gettid());
	fflush(stdout);
	execv(args[1], &args[1]);
	perror("execv");
	_exit(127);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	args = argv;
	pthread_t t;
	pthread_create(&t, NULL, exec_it, NULL);
	pause(); /* the exec replaces the whole process */
	return 1;
}
