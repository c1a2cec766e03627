/* fork + exec /bin/true + wait, N times: one process-create, process-exec
 * and process-exit per iteration. */
#include "bench.h"

int main(int argc, char **argv)
{
	long n = parse_count(argc, argv, "COUNT");

	long long start = now_ns();
	for (long i = 0; i < n; i++) {
		int status = spawn_true();
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "spawn: /bin/true failed (status 0x%x)\n", status);
			return 1;
		}
	}
	report("spawn", n, now_ns() - start);
	return 0;
}
