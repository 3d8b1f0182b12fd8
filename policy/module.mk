# policy/: config reader and the pure policy decisions.  Not a library of
# its own: every binary that needs it links $(POLICY_SRCS) (xenfsd does).
POLICY_SRCS := policy/config.c policy/policy.c policy/idmap.c

UNIT_TESTS += test_config test_policy
test_config_SRCS := tests/unit/test_config.c $(POLICY_SRCS)
test_config_LIBS := -lcmocka
test_policy_SRCS := tests/unit/test_policy.c $(POLICY_SRCS)
test_policy_LIBS := -lcmocka

MAN_PAGES += docs/xenfs.conf.5

# identity mapping and quota decisions, enumerated
UNIT_TESTS += test_idmap
test_idmap_SRCS := tests/unit/test_idmap.c $(POLICY_SRCS)
test_idmap_LIBS := -lcmocka
