// Writes into its own memory through /proc/self/mem and /proc/PID/mem,
// then starts a thread: none of it is tampering. Prints "pid P".
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static volatile long word;

static void *nothing(void *arg)
{
	return arg;
}

int main(void)
{
	char path[64];
	long one = 1;
	printf("pid %d\n", getpid());
	fflush(stdout);
	snprintf(path, sizeof(path), "/proc/%d/mem", getpid());
	const char *paths[] = { "/proc/self/mem", path };
	for (int i = 0; i < 2; i++) {
		int fd = open(paths[i], O_RDWR);
		if (fd < 0 || pwrite(fd, &one, sizeof(one), (off_t)&word) != sizeof(one))
			return 1;
		close(fd);
	}
	pthread_t t;
	pthread_create(&t, NULL, nothing, NULL);
	pthread_join(t, NULL);
	return word == 1 ? 0 : 1;
}
