# services/indexer/: the indexer plugin (SQLite FTS5 index of every
# export, kept by a crawl and the operation stream) and xenfs-search.
PLUGINS += indexer
indexer_SRCS := services/indexer/indexer.c services/indexer/db.c \
	services/indexer/crawl.c services/indexer/extract.c \
	services/indexer/util.c policy/config.c
indexer_LIBS := -lsqlite3 -lseccomp

PROGRAMS += xenfs-search
xenfs-search_SRCS := services/indexer/search.c services/indexer/query.c \
	services/indexer/util.c policy/config.c
xenfs-search_LIBS := -lsqlite3
xenfs-search_INSTALL := bin
MAN_PAGES += docs/xenfs-search.1

UNIT_TESTS += test_index
test_index_SRCS := tests/unit/test_index.c services/indexer/db.c \
	services/indexer/crawl.c services/indexer/extract.c \
	services/indexer/util.c services/indexer/query.c
test_index_LIBS := -lsqlite3 -lseccomp -lcmocka

# benchmark driver for tests/bench/50-index.sh; never installed
PROGRAMS += xf-bench-index
xf-bench-index_SRCS := services/indexer/bench_index.c services/indexer/db.c \
	services/indexer/crawl.c services/indexer/extract.c \
	services/indexer/util.c services/indexer/query.c
xf-bench-index_LIBS := -lsqlite3 -lseccomp
xf-bench-index_INSTALL := none

# fuzz target (rules and replay in tests/fuzz/module.mk, which is included
# after this file): the sniffer, escaping and argument parsers
FUZZ_TARGETS += index
fuzz_index_SRCS := services/indexer/fuzz_index.c services/indexer/util.c \
	services/indexer/extract.c
fuzz_index_LIBS := -lseccomp
