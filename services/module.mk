# services/: the services host (xenfs-services), the example plugin and
# the test plugins (tests/plugins/) used by the integration tests.
PROGRAMS += xenfs-services
xenfs-services_SRCS := services/host/host.c policy/config.c policy/policy.c
xenfs-services_LIBS := -ldl
xenfs-services_INSTALL := sbin
MAN_PAGES += docs/xenfs-services.8

PLUGINS += example
example_SRCS := services/example/example.c

# test plugins: built into $(O)/lib/xenfs like real ones, never installed
# by packaging (scripts may delete test-*.so)
PLUGINS += test-crash test-hang test-deny test-record
# test plugins are built for make check, never installed
test-crash_INSTALL := none
test-hang_INSTALL := none
test-deny_INSTALL := none
test-record_INSTALL := none
test-crash_SRCS := tests/plugins/crash.c
test-hang_SRCS := tests/plugins/hang.c
test-deny_SRCS := tests/plugins/deny.c
test-record_SRCS := tests/plugins/record.c

# the services host's systemd unit, with the install prefix's sbin
INSTALL_EXTRA := $(if $(strip $(INSTALL_EXTRA)),$(INSTALL_EXTRA) && )install \
	-d $(DESTDIR)$(SYSTEMDUNITDIR) && sed 's|/usr/local/sbin|$(SBINDIR)|g' \
	services/host/xenfs-services.service \
	> $(DESTDIR)$(SYSTEMDUNITDIR)/xenfs-services.service
