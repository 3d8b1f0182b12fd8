/* Test plugin: hangs forever in on_event (the watchdog must kill it). */
#include <unistd.h>

#include <xenfs/plugin.h>

static int hang_on_event(void *state, const struct xenfs_event *const *b,
			 size_t n)
{
	for (;;)
		pause();
	return 0;
}

static const struct xenfs_plugin hang_plugin = {
	.abi_version = XENFS_PLUGIN_ABI_VERSION,
	.struct_size = sizeof(struct xenfs_plugin),
	.name = "test-hang",
	.on_event = hang_on_event,
};

const struct xenfs_plugin *xenfs_plugin_entry(void)
{
	return &hang_plugin;
}
