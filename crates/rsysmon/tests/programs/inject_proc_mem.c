// Writes 1 into a long at ADDR in another process through its
// /proc/PID/mem, opened the way MODE says:
//   absolute  open("/proc/PID/mem") with the raw open syscall
//   relative  openat(dirfd of /proc/PID/task/PID, "mem")
//   dotdot    openat2("/proc/self/../PID/mem")
// Prints "injector tid T". Usage: inject_proc_mem PID ADDR_HEX MODE
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	long one = 1;
	char path[64];
	int fd = -1;
	printf("injector tid %d\n", gettid());
	fflush(stdout);
	if (strcmp(argv[3], "absolute") == 0) {
		snprintf(path, sizeof(path), "/proc/%s/mem", argv[1]);
		fd = syscall(SYS_open, path, O_RDWR);
	} else if (strcmp(argv[3], "relative") == 0) {
		snprintf(path, sizeof(path), "/proc/%s/task/%s", argv[1], argv[1]);
		int dir = open(path, O_PATH | O_DIRECTORY);
		fd = openat(dir, "mem", O_WRONLY);
	} else if (strcmp(argv[3], "dotdot") == 0) {
		snprintf(path, sizeof(path), "/proc/self/../%s/mem", argv[1]);
		struct open_how how = { .flags = O_RDWR };
		fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
	}
	if (fd < 0) {
		perror("open mem");
		return 1;
	}
	return pwrite(fd, &one, sizeof(one), (off_t)strtoul(argv[2], NULL, 16)) == sizeof(one) ? 0 : 1;
}
