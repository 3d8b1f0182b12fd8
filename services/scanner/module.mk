# services/scanner/: the scanner service (issue 6).
#   scanner.so    plugin of xenfs-services: scan on write, verdict hook
#   xenfs-scand   the libclamav engine, unprivileged, one per client
#   xenfs-scan    admin CLI: report, full, release, restore, status
SCAN_COMMON := services/scanner/act.c services/scanner/db.c \
               services/scanner/proto.c

PLUGINS += scanner
scanner_SRCS := services/scanner/plugin.c $(SCAN_COMMON)
scanner_LIBS := -lsqlite3 -ldl

PROGRAMS += xenfs-scand
xenfs-scand_SRCS := services/scanner/scand.c services/scanner/proto.c
xenfs-scand_LIBS := $(shell pkg-config --libs libclamav 2>/dev/null || echo -lclamav) -lseccomp
xenfs-scand_INSTALL := libexec
MAN_PAGES += docs/xenfs-scand.8

PROGRAMS += xenfs-scan
xenfs-scan_SRCS := services/scanner/cli.c $(SCAN_COMMON) policy/config.c \
                   policy/policy.c
xenfs-scan_LIBS := -lsqlite3
xenfs-scan_INSTALL := bin
MAN_PAGES += docs/xenfs-scan.1

UNIT_TESTS += test_scan
test_scan_SRCS := tests/unit/test_scan.c $(SCAN_COMMON)
test_scan_LIBS := -lcmocka -lsqlite3
