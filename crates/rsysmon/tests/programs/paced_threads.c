// Creates and joins threads at PER_SECOND threads a second in total for
// SECONDS, shared by WORKERS threads, each paced on a 1 ms tick against
// the start (a late tick is caught up by the next). Prints "threads N",
// the number created: 2N events.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double per_worker, seconds;

static long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void *nothing(void *arg)
{
	return arg;
}

static void *pace(void *arg)
{
	long *done = arg;
	long long start = now_ns(), end = start + (long long)(seconds * 1e9);
	for (long long now = start; now < end; now = now_ns()) {
		long due = (long)((now - start) * per_worker / 1e9);
		while (*done < due) {
			pthread_t t;
			if (pthread_create(&t, NULL, nothing, NULL) != 0)
				exit(1);
			pthread_join(t, NULL);
			(*done)++;
		}
		struct timespec tick = { 0, 1000000 };
		nanosleep(&tick, NULL);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	double per_second = argc > 1 ? atof(argv[1]) : 1000;
	seconds = argc > 2 ? atof(argv[2]) : 1;
	int workers = argc > 3 ? atoi(argv[3]) : 1;
	if (workers < 1 || workers > 64)
		return 2;
	per_worker = per_second / workers;
	pthread_t w[64];
	long done[64] = { 0 };
	for (int i = 0; i < workers; i++)
		if (pthread_create(&w[i], NULL, pace, &done[i]) != 0)
			return 1;
	long total = 0;
	for (int i = 0; i < workers; i++) {
		pthread_join(w[i], NULL);
		total += done[i];
	}
	printf("threads %ld\n", total);
	return 0;
}
