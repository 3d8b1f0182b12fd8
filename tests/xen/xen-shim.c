/*
 * Test-only shim: links backend/xen.c into a copy of xenfsd whose main.c
 * does not call bk_xen_* yet, by wrapping the local acceptor's entry points
 * (-Wl,--wrap=bk_local_start,...): each also starts/reloads/stops the Xen
 * acceptor.  tests/xen/run uses it only when $O/bin/xenfsd lacks the Xen
 * transport.  Main thread, like the functions it wraps.
 */
#include "bk.h"
#include "log.h"

int __real_bk_local_start(const struct xf_config *cfg);
void __real_bk_local_reload(const struct xf_config *cfg);
void __real_bk_local_stop(void);
int __wrap_bk_local_start(const struct xf_config *cfg);
void __wrap_bk_local_reload(const struct xf_config *cfg);
void __wrap_bk_local_stop(void);

int __wrap_bk_local_start(const struct xf_config *cfg)
{
	int rc = __real_bk_local_start(cfg);

	if (rc < 0)
		return rc;
	return bk_xen_start(cfg);
}

void __wrap_bk_local_reload(const struct xf_config *cfg)
{
	__real_bk_local_reload(cfg);
	bk_xen_reload(cfg);
}

void __wrap_bk_local_stop(void)
{
	bk_xen_stop();
	__real_bk_local_stop();
}
