/*
 * Creates threads (create + join) or processes (fork + exec /bin/true +
 * wait) at a steady total rate for a number of seconds, for the
 * sustained-rate tests. WORKERS threads share the rate, so the generator can
 * use every core. Each worker is paced on a 1 ms tick against the start
 * time, so a late tick is caught up by the next one; if the machine cannot
 * keep up, the achieved count falls short and the harness sees it.
 */
#include <pthread.h>
#include <string.h>
#include "bench.h"

#define MAX_WORKERS 64

static void *nothing(void *arg)
{
	return arg;
}

static void one_thread(void)
{
	pthread_t t;
	int err = pthread_create(&t, NULL, nothing, NULL);
	if (err) {
		fprintf(stderr, "rate: pthread_create: %s\n", strerror(err));
		exit(1);
	}
	pthread_join(t, NULL);
}

static void one_process(void)
{
	spawn_true();
}

struct worker {
	pthread_t thread;
	void (*op)(void);
	double per_second;
	long long start, end;
	long done;
};

static void *pace(void *arg)
{
	struct worker *w = arg;
	struct timespec tick = { .tv_sec = w->start / 1000000000LL, .tv_nsec = w->start % 1000000000LL };
	for (;;) {
		long long now = now_ns();
		if (now >= w->end)
			break;
		long due = (long)((now - w->start) * w->per_second / 1e9);
		while (w->done < due && now_ns() < w->end) {
			w->op();
			w->done++;
		}
		tick.tv_nsec += 1000000;
		if (tick.tv_nsec >= 1000000000) {
			tick.tv_sec++;
			tick.tv_nsec -= 1000000000;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &tick, NULL);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *usage = "threads|spawn PER_SECOND SECONDS [WORKERS]";
	int spawn = argc > 1 && strcmp(argv[1], "spawn") == 0;
	int threads = argc > 1 && strcmp(argv[1], "threads") == 0;
	double per_second = argc > 2 ? strtod(argv[2], NULL) : 0;
	double seconds = argc > 3 ? strtod(argv[3], NULL) : 0;
	int workers = argc > 4 ? atoi(argv[4]) : 1;
	if (argc < 4 || argc > 5 || !(spawn || threads) || per_second <= 0 || seconds <= 0 || workers < 1 ||
	    workers > MAX_WORKERS) {
		fprintf(stderr, "usage: %s %s\n", argv[0], usage);
		return 2;
	}

	struct worker w[MAX_WORKERS];
	long long start = now_ns();
	for (int i = 0; i < workers; i++) {
		w[i] = (struct worker){ .op = spawn ? one_process : one_thread, .per_second = per_second / workers,
					.start = start, .end = start + (long long)(seconds * 1e9) };
		int err = pthread_create(&w[i].thread, NULL, pace, &w[i]);
		if (err) {
			fprintf(stderr, "rate: cannot start worker: %s\n", strerror(err));
			return 1;
		}
	}
	long done = 0;
	for (int i = 0; i < workers; i++) {
		pthread_join(w[i].thread, NULL);
		done += w[i].done;
	}
	report(argv[1], done, now_ns() - start);
	return 0;
}
