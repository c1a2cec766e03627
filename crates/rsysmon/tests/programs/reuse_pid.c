// Makes two processes with the same pid, one after the other: fork a
// child that exits, then set the pid namespace's ns_last_pid just below
// its pid and fork again. Another process on the machine may take the
// pid first, so it retries. Prints "pid P" once it got P twice, each
// child having slept a little so both are seen alive.
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t child(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		usleep(20000);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	return pid;
}

int main(void)
{
	for (int attempt = 0; attempt < 200; attempt++) {
		pid_t first = child();
		int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
		if (fd < 0)
			return 2;
		char buf[32];
		int len = snprintf(buf, sizeof(buf), "%d", first - 1);
		if (write(fd, buf, len) != len)
			return 3;
		close(fd);
		pid_t second = child();
		if (second == first) {
			printf("pid %d\n", first);
			return 0;
		}
	}
	return 1;
}
