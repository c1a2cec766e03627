// A shared library whose constructor announces itself: if it prints, the
// library's code ran.
#include <stdio.h>

__attribute__((constructor)) static void announce(void)
{
	printf("constructor ran\n");
	fflush(stdout);
}
