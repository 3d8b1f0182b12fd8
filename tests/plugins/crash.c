/* Test plugin: crashes (SIGSEGV via abort) on every event. */
#include <stdlib.h>

#include <xenfs/plugin.h>

static int crash_on_event(void *state, const struct xenfs_event *const *b,
			  size_t n)
{
	abort();
}

static const struct xenfs_plugin crash_plugin = {
	.abi_version = XENFS_PLUGIN_ABI_VERSION,
	.struct_size = sizeof(struct xenfs_plugin),
	.name = "test-crash",
	.on_event = crash_on_event,
};

const struct xenfs_plugin *xenfs_plugin_entry(void)
{
	return &crash_plugin;
}
