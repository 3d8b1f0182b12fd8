# frontend/: mount.xenfs, the guest side (FUSE <-> shared rings).

PROGRAMS += mount.xenfs
mount.xenfs_SRCS := frontend/main.c frontend/fwd.c frontend/opts.c
mount.xenfs_INSTALL := sbin
MAN_PAGES += docs/mount.xenfs.8

# The Xen transport is optional at build time: only when lib/xen.mk (and
# lib/transport_xen.c) is present does mount.xenfs learn transport=xen.
ifneq ($(wildcard lib/transport_xen.c),)
ifdef LIBXENFS_XEN
$(patsubst %.c,$(O)/obj/%.o,$(mount.xenfs_SRCS)): CPPFLAGS += -DXENFS_HAVE_XEN
mount.xenfs_LIBS += $(XEN_LINK)
$(O)/bin/mount.xenfs: $(LIBXENFS_XEN)
endif
endif

UNIT_TESTS += test_local_transport
test_local_transport_SRCS := tests/unit/test_local_transport.c
test_local_transport_LIBS := -lcmocka

UNIT_TESTS += test_mount_opts
test_mount_opts_SRCS := tests/unit/test_mount_opts.c frontend/opts.c
test_mount_opts_LIBS := -lcmocka
$(O)/obj/tests/unit/test_mount_opts.o: CPPFLAGS += -Ifrontend

# needs root and /dev/fuse (skips otherwise): a real mount served in-process
UNIT_TESTS += test_frontend_fwd
test_frontend_fwd_SRCS := tests/unit/test_frontend_fwd.c frontend/fwd.c
test_frontend_fwd_LIBS := -lcmocka
$(O)/obj/tests/unit/test_frontend_fwd.o: CPPFLAGS += -Ifrontend
