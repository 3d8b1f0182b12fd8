# tests/: unit tests (cmocka), built into $(O)/tests and run by tests/run-all.
# Helpers owning other unit tests may append their own lines here:
#   UNIT_TESTS += test_x
#   test_x_SRCS := tests/unit/test_x.c ...
#   test_x_LIBS := -lcmocka

UNIT_TESTS += test_ring
test_ring_SRCS := tests/unit/test_ring.c
test_ring_LIBS := -lcmocka

# Benchmark helpers (tests/bench/run); never installed.
PROGRAMS += xf-bench-meta
xf-bench-meta_SRCS := tests/bench/xf-bench-meta.c
xf-bench-meta_INSTALL := none
