# backend/: the xenfsd daemon.
# FS_SRCS (the fs layer's backend/fs_*.c) is set by the fs layer's owner,
# below or in this file; the daemon's own parts are listed here.
PROGRAMS += xenfsd
xenfsd_SRCS = backend/main.c backend/loop.c backend/conn.c \
               backend/conn_frame.c backend/local.c backend/events.c \
               backend/control.c backend/chan.c backend/priv.c \
               backend/worker.c policy/config.c policy/policy.c $(FS_SRCS)
xenfsd_INSTALL := sbin
MAN_PAGES += docs/xenfsd.8

# The Xen acceptor (backend/xen.c) links the Xen libraries; it is built in
# only when lib/xen.mk provides the Xen transport.  main.c learns of it
# through XENFS_HAVE_XEN.
ifneq ($(wildcard backend/xen.c),)
ifdef LIBXENFS_XEN
xenfsd_SRCS += backend/xen.c
$(O)/obj/backend/main.o $(O)/obj/backend/priv.o \
$(O)/obj/backend/worker.o: CPPFLAGS += -DXENFS_HAVE_XEN
xenfsd_LIBS += $(XEN_LINK)
$(O)/bin/xenfsd: $(LIBXENFS_XEN)
endif
endif

# worker confinement (issue 8): Landlock, libcap-ng, libseccomp
xenfsd_SRCS += backend/sandbox.c
xenfsd_LIBS += -lcap-ng -lseccomp

# request framing of conn.c against a fake region in ordinary memory
UNIT_TESTS += test_conn
test_conn_SRCS := tests/unit/test_conn.c backend/conn_frame.c
test_conn_LIBS := -lcmocka

# event loop re-entrancy and cross-thread deferrals
UNIT_TESTS += test_loop
test_loop_SRCS := tests/unit/test_loop.c backend/loop.c
test_loop_LIBS := -lcmocka

# The fs layer (FUSE operations against an export), owned by its author.
FS_SRCS := backend/fs_session.c backend/fs_inode.c backend/fs_names.c \
           backend/fs_data.c backend/fs_attr.c backend/fs_lock.c \
           backend/fs_policy.c policy/idmap.c

# fs layer driven with hand-built FUSE frames against a temp directory
UNIT_TESTS += test_fs
test_fs_SRCS := tests/unit/test_fs.c $(FS_SRCS) policy/config.c
test_fs_LIBS := -lcmocka

# parent/worker channels: framing, hostile lengths, reply matching
UNIT_TESTS += test_chan
test_chan_SRCS := tests/unit/test_chan.c backend/chan.c
test_chan_LIBS := -lcmocka -lpthread
