# backend/ctl.mk: the operation stream's and control socket's parts of
# xenfsd, and the xenfsctl admin tool (owned with backend/events.c,
# control.c, dom0watch.c, verdict.c, xenfsctl.c).
xenfsd_SRCS += backend/dom0watch.c backend/verdict.c


PROGRAMS += xenfsctl
xenfsctl_SRCS := backend/xenfsctl.c policy/config.c policy/policy.c
xenfsctl_INSTALL := sbin
MAN_PAGES += docs/xenfsctl.8

UNIT_TESTS += test_stream
test_stream_SRCS := tests/unit/test_stream.c
test_stream_LIBS := -lcmocka
