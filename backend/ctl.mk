# backend/ctl.mk: the operation stream's and control socket's parts of
# xenfsd, and the xenfsctl admin tool (owned with backend/events.c,
# control.c, dom0watch.c, verdict.c, xenfsctl.c).
xenfsd_SRCS += backend/dom0watch.c

