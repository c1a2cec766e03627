// A process that can be made to start a thread from outside.
// Prints "pid P entry 0xADDR trigger 0xADDR landing 0xADDR" and then waits:
//   - `injected_entry` is where an injector points a hijacked thread; it
//     starts a thread and stops with int3 so the injector can restore it;
//   - `trigger` is polled by the main thread; when someone writes a
//     non-zero value into it, the main thread starts a thread.
//   - `landing` is a stack slot holding the address of `landed`: a thread
//     cloned with that stack by the main thread's sleep (a bare syscall
//     followed by `ret`) returns into `landed`. An injector that rewrites the
//     pending sleep into clone() needs nothing else written into the target.
// Every started thread prints "remote tid T".
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
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

/* nanosleep(req, rem): one syscall instruction, then ret (x86-64). */
long raw_nanosleep(const struct timespec *req, struct timespec *rem);
__asm__(".text\n"
	".globl raw_nanosleep\n"
	".type raw_nanosleep, @function\n"
	"raw_nanosleep:\n"
	"\tmov $35, %eax\n"
	"\tsyscall\n"
	"\tret\n");

#define LANDING_WORDS 65536
static unsigned long landing_stack[LANDING_WORDS] __attribute__((aligned(16)));

/* Entered by `ret` on a bare clone()d thread: no TLS of its own, so only
 * raw system calls and stack buffers. */
static void landed(void)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "remote tid %ld\n", syscall(186 /* gettid */));
	write(1, line, n);
	__asm__ volatile("syscall" : : "a"(60 /* exit: this thread only */), "D"(0) : "rcx", "r11", "memory");
	for (;;)
		;
}

int main(int argc, char **argv)
{
	int seconds = argc > 1 ? atoi(argv[1]) : 30;
	/* 16-byte aligned, so that after `ret` pops it the stack is aligned as
	 * at any function's entry. */
	unsigned long *landing = &landing_stack[LANDING_WORDS - 4];
	*landing = (unsigned long)landed;
	char line[160];
	int n = snprintf(line, sizeof(line), "pid %d entry %p trigger %p landing %p\n", getpid(),
			 (void *)injected_entry, (void *)&trigger, (void *)landing);
	write(1, line, n);
	struct timespec tick = { 0, 10 * 1000 * 1000 };
	for (int i = 0; i < seconds * 100; i++) {
		if (trigger) {
			trigger = 0;
			spawn_thread();
		}
		raw_nanosleep(&tick, NULL);
	}
	return 0;
}
