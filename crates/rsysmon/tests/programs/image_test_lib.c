// A shared library for the dlopen tests: one function to find it by.
int image_test_answer(void)
{
	return 42;
}
