# services/snapshot/: xenfs-snapshot, consistent incremental snapshots of
# a domain's exports into a deduplicating repository (docs/snapshot.md).
SNAP_SRCS := services/snapshot/repo.c services/snapshot/capture.c \
	services/snapshot/restore.c services/snapshot/prune.c

PROGRAMS += xenfs-snapshot
xenfs-snapshot_SRCS := services/snapshot/main.c $(SNAP_SRCS) \
	policy/config.c policy/policy.c
xenfs-snapshot_LIBS := -lsqlite3 -lzstd -lcrypto
xenfs-snapshot_INSTALL := sbin
MAN_PAGES += docs/xenfs-snapshot.8

UNIT_TESTS += test_snap
test_snap_SRCS := tests/unit/test_snap.c $(SNAP_SRCS)
test_snap_LIBS := -lsqlite3 -lzstd -lcrypto -lcmocka

# systemd units (scheduling is systemd's job), installed by make install
# (commands joined with && as frontend/initramfs.mk does)
SNAP_UNITDIR ?= $(SYSTEMDUNITDIR)
INSTALL_EXTRA := $(if $(strip $(INSTALL_EXTRA)),$(INSTALL_EXTRA) && )install \
	-d $(DESTDIR)$(SNAP_UNITDIR) && sed 's|/usr/local/sbin|$(SBINDIR)|g' \
	services/snapshot/xenfs-snapshot.service \
	> $(DESTDIR)$(SNAP_UNITDIR)/xenfs-snapshot.service && install -m 0644 \
	services/snapshot/xenfs-snapshot.timer $(DESTDIR)$(SNAP_UNITDIR)/
