/* Takeovers of a stopped child, COUNT of each: PTRACE_POKEDATA and
 * PTRACE_PEEKDATA, process_vm_writev and process_vm_readv, and opens of
 * /proc/CHILD/mem for writing and for reading; then COUNT opens of an
 * unrelated file. What each takeover probe costs per call is read from
 * kernel.bpf_stats_enabled (bench/injection-hook-cost.sh). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include "bench.h"

static long word;

int main(int argc, char **argv)
{
	long n = parse_count(argc, argv, "COUNT");
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		pause();
		_exit(0);
	}
	if (ptrace(PTRACE_ATTACH, child, 0, 0) < 0)
		die("PTRACE_ATTACH");
	waitpid(child, NULL, 0);

	long long start = now_ns();
	for (long i = 0; i < n; i++) {
		if (ptrace(PTRACE_POKEDATA, child, &word, (void *)i) < 0)
			die("PTRACE_POKEDATA");
		ptrace(PTRACE_PEEKDATA, child, &word, 0);
	}
	report("ptrace-poke-peek", n, now_ns() - start);

	long value = 1;
	struct iovec local = { &value, sizeof(value) }, remote = { &word, sizeof(word) };
	start = now_ns();
	for (long i = 0; i < n; i++) {
		if (process_vm_writev(child, &local, 1, &remote, 1, 0) != sizeof(value))
			die("process_vm_writev");
		process_vm_readv(child, &local, 1, &remote, 1, 0);
	}
	report("process-vm-write-read", n, now_ns() - start);

	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", child);
	start = now_ns();
	for (long i = 0; i < n; i++) {
		int fd = open(path, i % 2 ? O_RDONLY : O_RDWR);
		if (fd < 0)
			die("open mem");
		close(fd);
	}
	report("proc-mem-open-rw-ro", n, now_ns() - start);

	start = now_ns();
	for (long i = 0; i < n; i++) {
		int fd = open("/proc/self/stat", O_RDONLY);
		if (fd < 0)
			die("open");
		close(fd);
	}
	report("unrelated-open", n, now_ns() - start);

	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return 0;
}
