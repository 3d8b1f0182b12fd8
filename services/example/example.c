/*
 * Example XenFS services plugin: counts changes per domain and operation
 * and logs a summary every 1000 events and at shutdown.  It shows every
 * part of the API: the entry point, init with the host services (config
 * lookup, logging, a control-socket request), batched on_event, on_resync
 * and fini.  Build: cc -shared -fPIC -o example.so example.c; list it in
 * [services] plugins.
 *
 * Threading: all callbacks run on the one thread of this plugin's own
 * process (see <xenfs/plugin.h>), so no locking is needed.
 * Trust: paths in events are guest-chosen; we only count them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xenfs/plugin.h>

struct domain_count {
	char name[256];
	unsigned long ops[XENFS_EV_XATTR + 1];
	unsigned long other;
};

struct example {
	const struct xenfs_host_services *svc;
	struct domain_count *doms;
	size_t ndoms;
	unsigned long total;
	unsigned long resyncs;
};

static struct domain_count *domain_get(struct example *ex, const char *name)
{
	struct domain_count *nd;

	for (size_t i = 0; i < ex->ndoms; i++)
		if (!strcmp(ex->doms[i].name, name))
			return &ex->doms[i];
	nd = realloc(ex->doms, (ex->ndoms + 1) * sizeof(*nd));
	if (nd == NULL)
		return NULL;
	ex->doms = nd;
	nd = &ex->doms[ex->ndoms++];
	memset(nd, 0, sizeof(*nd));
	snprintf(nd->name, sizeof(nd->name), "%s", name);
	return nd;
}

static void summary(struct example *ex)
{
	for (size_t i = 0; i < ex->ndoms; i++) {
		const struct domain_count *d = &ex->doms[i];
		ex->svc->log(XENFS_LOG_INFO, "example: %s: create %lu modify "
			     "%lu rename %lu unlink %lu other %lu",
			     *d->name ? d->name : "(dom0)",
			     d->ops[XENFS_EV_CREATE], d->ops[XENFS_EV_MODIFY],
			     d->ops[XENFS_EV_RENAME], d->ops[XENFS_EV_UNLINK],
			     d->other);
	}
}

static int ex_init(const struct xenfs_host_services *svc, void **state)
{
	struct example *ex;
	const char *max;
	char *reply = NULL;

	if ((ex = calloc(1, sizeof(*ex))) == NULL)
		return -ENOMEM;
	ex->svc = svc;
	/* config lookup: any section, defaults applied by the parser */
	max = svc->config_get("services", "journal-max");
	svc->log(XENFS_LOG_INFO, "example: journal-max is %s, state in %s/%s",
		 max ? max : "(unset)", svc->state_dir, svc->plugin_name);
	/* a control request; xenfsd may not be running: that is fine */
	if (svc->control("head", &reply) == 0)
		svc->log(XENFS_LOG_INFO, "example: stream head %s", reply);
	free(reply);
	*state = ex;
	return 0;
}

static int ex_on_event(void *state, const struct xenfs_event *const *batch,
		       size_t n)
{
	struct example *ex = state;

	for (size_t i = 0; i < n; i++) {
		const struct xenfs_event *ev = batch[i];
		struct domain_count *d = domain_get(ex, ev->domain);

		if (d == NULL)
			return -ENOMEM;	/* the batch comes again later */
		if (ev->op <= XENFS_EV_XATTR)
			d->ops[ev->op]++;
		else
			d->other++;
		if (++ex->total % 1000 == 0)
			summary(ex);
	}
	return 0;
}

static int ex_on_resync(void *state, const char *domain,
			const char *export_tag)
{
	struct example *ex = state;

	ex->resyncs++;
	ex->svc->log(XENFS_LOG_WARNING, "example: events lost for %s:%s: a "
		     "real plugin would re-crawl now", *domain ? domain : "*",
		     *export_tag ? export_tag : "*");
	return 0;
}

static void ex_fini(void *state)
{
	struct example *ex = state;

	summary(ex);
	free(ex->doms);
	free(ex);
}

static const struct xenfs_plugin example_plugin = {
	.abi_version = XENFS_PLUGIN_ABI_VERSION,
	.struct_size = sizeof(struct xenfs_plugin),
	.name = "example",
	.init = ex_init,
	.on_event = ex_on_event,
	.verdict = NULL,		/* no verdicts from this one */
	.on_resync = ex_on_resync,
	.fini = ex_fini,
};

const struct xenfs_plugin *xenfs_plugin_entry(void)
{
	return &example_plugin;
}
