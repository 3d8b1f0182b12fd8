/*
 * Dom0-side change watcher (first version: echo-suppression table only;
 * the inotify watcher follows).  See bk.h "services hooks, part 2".
 */
#include <errno.h>

#include "bk.h"

int bk_dom0watch_start(const struct xf_config *cfg)
{
	return 0;
}

void bk_dom0watch_stop(void)
{
}

void bk_dom0watch_note(const char *export_tag, const char *path)
{
}
