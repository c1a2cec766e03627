// Writes 1 into a long at ADDR in another process with process_vm_writev.
// Prints "injector tid T". Usage: inject_vm_write PID ADDR_HEX
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	pid_t pid = atoi(argv[1]);
	long one = 1;
	struct iovec local = { &one, sizeof(one) };
	struct iovec remote = { (void *)strtoul(argv[2], NULL, 16), sizeof(one) };
	printf("injector tid %d\n", gettid());
	fflush(stdout);
	return process_vm_writev(pid, &local, 1, &remote, 1, 0) == sizeof(one) ? 0 : 1;
}
