/*
 * Test plugin: verdicts.  Denies any file whose path contains "deny";
 * a path containing "slow" makes it sleep 3 s (to test the timeout).
 * Counts verdict calls in STATE_DIR/test-deny/calls (one line each) so
 * tests can check the verdict cache.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <xenfs/plugin.h>

static const struct xenfs_host_services *hs;

static int deny_init(const struct xenfs_host_services *svc, void **state)
{
	hs = svc;
	return 0;
}

static int deny_on_event(void *state, const struct xenfs_event *const *b,
			 size_t n)
{
	return 0;
}

static int deny_verdict(void *state, const struct xenfs_verdict_req *r)
{
	char p[4096];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s/calls", hs->state_dir, hs->plugin_name);
	if ((f = fopen(p, "a")) != NULL) {
		fprintf(f, "%s %s %s\n", r->domain, r->export_tag, r->path);
		fclose(f);
	}
	if (strstr(r->path, "slow"))
		sleep(3);
	return strstr(r->path, "deny") ? XENFS_VERDICT_DENY :
					 XENFS_VERDICT_ALLOW;
}

static const struct xenfs_plugin deny_plugin = {
	.abi_version = XENFS_PLUGIN_ABI_VERSION,
	.struct_size = sizeof(struct xenfs_plugin),
	.name = "test-deny",
	.on_event = deny_on_event,
	.init = deny_init,
	.verdict = deny_verdict,
};

const struct xenfs_plugin *xenfs_plugin_entry(void)
{
	return &deny_plugin;
}
