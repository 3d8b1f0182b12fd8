# Small test programs used by tests/integration/*.sh; never installed.
# Other helpers append their own PROGRAMS lines below.

PROGRAMS += xf-renameat2
xf-renameat2_SRCS := tests/tools/xf-renameat2.c
xf-renameat2_INSTALL := none
