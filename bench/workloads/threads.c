/* pthread_create + pthread_join, N times: one thread-create and one
 * thread-exit per iteration. */
#include <pthread.h>
#include <string.h>
#include "bench.h"

static void *nothing(void *arg)
{
	return arg;
}

int main(int argc, char **argv)
{
	long n = parse_count(argc, argv, "COUNT");

	long long start = now_ns();
	for (long i = 0; i < n; i++) {
		pthread_t t;
		int err = pthread_create(&t, NULL, nothing, NULL);
		if (err) {
			fprintf(stderr, "threads: pthread_create: %s\n", strerror(err));
			return 1;
		}
		pthread_join(t, NULL);
	}
	report("threads", n, now_ns() - start);
	return 0;
}
