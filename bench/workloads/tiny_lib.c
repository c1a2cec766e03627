// The library dlopen_loop loads: one function, nothing else.
int tiny_lib_answer(void)
{
	return 42;
}
