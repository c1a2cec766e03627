// vfork, then exec argv[1] in the child. Prints "child <pid>".
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	pid_t child = vfork();
	if (child == 0) {
		execv(argv[1], &argv[1]);
		_exit(127);
	}
	printf("child %d\n", child);
	int status;
	waitpid(child, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
