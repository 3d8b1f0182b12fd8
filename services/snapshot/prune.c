/*
 * xenfs-snapshot: which snapshots a prune keeps (pure: no I/O, unit
 * tested in tests/unit/test_snap.c).  Single-threaded, trusted input.
 */
#include <stddef.h>
#include <stdint.h>

#include "snap_i.h"

void snap_prune_select(struct snap_info *v, size_t n, unsigned keep_last,
		       unsigned keep_daily)
{
	int64_t last_day = INT64_MIN;
	unsigned days = 0;
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		v[i].keep = 0;
	/* newest first */
	for (i = n; i-- > 0; k++) {
		int64_t day = v[i].time_ns / (86400LL * 1000000000LL);

		if (k < keep_last)
			v[i].keep = 1;
		if (day != last_day) {
			last_day = day;
			if (days < keep_daily)
				v[i].keep = 1;	/* the day's newest */
			days++;
		}
	}
}
