// A process that can be made to start a thread from outside.
// Prints "pid P entry 0xADDR trigger 0xADDR" and then waits:
//   - `injected_entry` is where an injector points a hijacked thread; it
//     starts a thread and stops with int3 so the injector can restore it;
//   - `trigger` is polled by the main thread; when someone writes a
//     non-zero value into it, the main thread starts a thread.
// Every started thread prints "remote tid T".
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

volatile long trigger;

static void *report(void *arg)
{
	(void)arg;
	char line[64];
	int n = snprintf(line, sizeof(line), "remote tid %d\n", gettid());
	write(1, line, n);
	return NULL;
}

void spawn_thread(void)
{
	pthread_t t;
	if (pthread_create(&t, NULL, report, NULL) == 0)
		pthread_detach(t);
}

void injected_entry(void)
{
	spawn_thread();
	__asm__ volatile("int3");
	for (;;)
		pause(); /* never reached: the injector restores the registers */
}

int main(int argc, char **argv)
{
	int seconds = argc > 1 ? atoi(argv[1]) : 30;
	char line[128];
	int n = snprintf(line, sizeof(line), "pid %d entry %p trigger %p\n", getpid(), (void *)injected_entry,
			 (void *)&trigger);
	write(1, line, n);
	for (int i = 0; i < seconds * 100; i++) {
		if (trigger) {
			trigger = 0;
			spawn_thread();
		}
		usleep(10000);
	}
	return 0;
}
