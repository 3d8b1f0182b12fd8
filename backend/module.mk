# backend/: the xenfsd daemon.
# FS_SRCS (the fs layer's backend/fs_*.c) is set by the fs layer's owner,
# below or in this file; the daemon's own parts are listed here.
PROGRAMS += xenfsd
xenfsd_SRCS = backend/main.c backend/loop.c backend/conn.c \
               backend/conn_frame.c backend/local.c backend/events.c \
               backend/control.c policy/config.c policy/policy.c $(FS_SRCS)
xenfsd_INSTALL := sbin
MAN_PAGES += docs/xenfsd.8

# request framing of conn.c against a fake region in ordinary memory
UNIT_TESTS += test_conn
test_conn_SRCS := tests/unit/test_conn.c backend/conn_frame.c
test_conn_LIBS := -lcmocka
