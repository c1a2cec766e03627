// Fileless execution: copies PROGRAM into a memfd named "payload" and
// fexecve's it with the remaining arguments.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	int src = open(argv[1], O_RDONLY);
	struct stat st;
	if (src < 0 || fstat(src, &st)) {
		perror(argv[1]);
		return 1;
	}
	int fd = memfd_create("payload", MFD_CLOEXEC);
	if (fd < 0 || sendfile(fd, src, NULL, st.st_size) != st.st_size) {
		perror("memfd");
		return 1;
	}
	fexecve(fd, argv + 1, environ);
	perror("fexecve");
	return 1;
}
