/* fork + exec /bin/true + wait, N times: one process-create, process-exec
 * and process-exit per iteration. */
#include <sys/wait.h>
#include "bench.h"

int main(int argc, char **argv)
{
	long n = parse_count(argc, argv, "COUNT");
	char *child_argv[] = { "/bin/true", NULL };
	char *child_envp[] = { NULL };

	long long start = now_ns();
	for (long i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			execve("/bin/true", child_argv, child_envp);
			_exit(127);
		}
		int status;
		if (waitpid(pid, &status, 0) < 0)
			die("waitpid");
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "spawn: /bin/true failed (status 0x%x)\n", status);
			return 1;
		}
	}
	report("spawn", n, now_ns() - start);
	return 0;
}
