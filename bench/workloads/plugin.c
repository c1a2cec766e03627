/* The small shared library the dlopen workload loads and unloads. */
int bench_plugin_answer(void)
{
	return 42;
}
