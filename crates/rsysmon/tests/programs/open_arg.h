// The file the first argument names, open read-only: what every program
// that maps a file starts with. Exits 2 without an argument, 1 (after
// perror) when the file cannot be opened.
#ifndef OPEN_ARG_H
#define OPEN_ARG_H
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

static int open_arg(int argc, char **argv)
{
	if (argc < 2)
		exit(2);
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0) {
		perror("open");
		exit(1);
	}
	return fd;
}
#endif
