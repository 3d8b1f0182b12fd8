/*
 * Test plugin: appends "SEQ OP DOMAIN EXPORT PATH [PATH2]" for every
 * event to STATE_DIR/test-record/events (flushed per batch, before the
 * host commits the cursor) and "resync DOMAIN EXPORT" for on_resync.
 * If STATE_DIR/test-record/fail-once exists, the first batch fails (and
 * the file is removed) to exercise redelivery.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <xenfs/plugin.h>

struct rec {
	FILE *f;
	char failpath[4096];
};

static int rec_init(const struct xenfs_host_services *svc, void **state)
{
	struct rec *r = calloc(1, sizeof(*r));
	char p[4096];

	if (r == NULL)
		return -ENOMEM;
	snprintf(p, sizeof(p), "%s/%s/events", svc->state_dir,
		 svc->plugin_name);
	snprintf(r->failpath, sizeof(r->failpath), "%s/%s/fail-once",
		 svc->state_dir, svc->plugin_name);
	if ((r->f = fopen(p, "a")) == NULL) {
		free(r);
		return -errno;
	}
	*state = r;
	return 0;
}

static int rec_on_event(void *state, const struct xenfs_event *const *b,
			size_t n)
{
	struct rec *r = state;

	if (unlink(r->failpath) == 0)
		return -EAGAIN;
	for (size_t i = 0; i < n; i++)
		fprintf(r->f, "%llu %s %s %s %s%s%s\n",
			(unsigned long long)b[i]->seq,
			xenfs_event_op_name(b[i]->op),
			*b[i]->domain ? b[i]->domain : "-",
			*b[i]->export_tag ? b[i]->export_tag : "-",
			*b[i]->path ? b[i]->path : "-",
			*b[i]->path2 ? " " : "", b[i]->path2);
	if (fflush(r->f) != 0 || fsync(fileno(r->f)) != 0)
		return -EIO;
	return 0;
}

static int rec_on_resync(void *state, const char *domain, const char *exp)
{
	struct rec *r = state;

	fprintf(r->f, "resync %s %s\n", *domain ? domain : "-",
		*exp ? exp : "-");
	return fflush(r->f) == 0 ? 0 : -EIO;
}

static void rec_fini(void *state)
{
	struct rec *r = state;

	fclose(r->f);
	free(r);
}

static const struct xenfs_plugin rec_plugin = {
	.abi_version = XENFS_PLUGIN_ABI_VERSION,
	.struct_size = sizeof(struct xenfs_plugin),
	.name = "test-record",
	.init = rec_init,
	.on_event = rec_on_event,
	.on_resync = rec_on_resync,
	.fini = rec_fini,
};

const struct xenfs_plugin *xenfs_plugin_entry(void)
{
	return &rec_plugin;
}
