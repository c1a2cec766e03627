/*
 * What every workload shares: reading the iteration count, timing the loop
 * with CLOCK_MONOTONIC (so process start-up is not timed), and printing one
 * JSON line the harness reads.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* argv[1], a positive count, or exit 2 with a usage line. */
static inline long parse_count(int argc, char **argv, const char *usage)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
	if (n <= 0) {
		fprintf(stderr, "usage: %s %s\n", argv[0], usage);
		exit(2);
	}
	return n;
}

static inline void report(const char *name, long count, long long elapsed_ns)
{
	printf("{\"workload\":\"%s\",\"count\":%ld,\"elapsed_ns\":%lld,\"pid\":%d}\n",
	       name, count, elapsed_ns, (int)getpid());
}

static inline void die(const char *what)
{
	perror(what);
	exit(1);
}

/* fork + exec /bin/true + wait; returns the wait status. */
static inline int spawn_true(void)
{
	static char *child_argv[] = { "/bin/true", NULL };
	static char *child_envp[] = { NULL };
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		execve("/bin/true", child_argv, child_envp);
		_exit(127);
	}
	int status;
	if (waitpid(pid, &status, 0) < 0)
		die("waitpid");
	return status;
}

#endif
