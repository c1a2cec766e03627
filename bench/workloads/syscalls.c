/* getppid, N times: the cheapest real system call, so what remains is the
 * cost of the kernel's syscall entry and exit path. No events expected. */
#include <sys/syscall.h>
#include "bench.h"

int main(int argc, char **argv)
{
	long n = parse_count(argc, argv, "COUNT");

	long long start = now_ns();
	for (long i = 0; i < n; i++)
		syscall(SYS_getppid); /* direct: no library caching */
	report("syscalls", n, now_ns() - start);
	return 0;
}
