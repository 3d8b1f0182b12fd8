# lib/: the shared core, linked into every binary as libxenfs.a.
LIB_SRCS += lib/ring.c lib/log.c
LIB_SRCS += lib/transport_local.c
LIB_SRCS += lib/stream.c
LIB_SRCS += lib/util.c
