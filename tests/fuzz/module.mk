# tests/fuzz/: libFuzzer targets, each also built with a replay main().
#
#   make fuzz TARGET=config [SECONDS=60] [FUZZ_JOBS=1]
#        build build-fuzz/fuzz_config with clang -fsanitize=fuzzer,address,
#        undefined and run a campaign; new inputs go to
#        build-fuzz/corpus/config, crashes to build-fuzz/crash-config-*
#        (copy the interesting ones into tests/fuzz/corpus/config/)
#   make fuzz-replay
#        build every target with $(REPLAY_CC) -fsanitize=address,undefined
#        and the replay main, replay tests/fuzz/corpus/<target>/; one line
#        per target, non-zero exit on any crash
#
# Adding a target: in this file (or any module.mk the top-level Makefile
# includes before it) write
#   FUZZ_TARGETS += name
#   fuzz_name_SRCS := tests/fuzz/fuzz_name.c the/units/under/test.c
#   fuzz_name_CFLAGS := ...   (optional, e.g. -Ibackend)
#   fuzz_name_LIBS := ...     (optional)
# and put seeds in tests/fuzz/corpus/name/ and, optionally, a libFuzzer
# dictionary in tests/fuzz/name.dict.  The target defines
# LLVMFuzzerTestOneInput (and may define LLVMFuzzerInitialize).

FUZZ_TARGETS += config ring hello
fuzz_config_SRCS := tests/fuzz/fuzz_config.c $(POLICY_SRCS)
fuzz_ring_SRCS := tests/fuzz/fuzz_ring.c lib/ring.c
fuzz_hello_SRCS := tests/fuzz/fuzz_hello.c lib/transport_local.c lib/ring.c

# issue 8: the FUSE request decoder of every opcode (fs_handle against a
# temp export) and the policy decisions (access, identity map)
FUZZ_TARGETS += fuse policy
fuzz_fuse_SRCS = tests/fuzz/fuzz_fuse.c $(FS_SRCS) policy/config.c lib/log.c
fuzz_policy_SRCS = tests/fuzz/fuzz_policy.c $(POLICY_SRCS)

# issue 8, privilege separation: what a compromised worker can send its
# parent (channel framing, then the event decoder the stream thread runs)
FUZZ_TARGETS += workermsg
fuzz_workermsg_SRCS = tests/fuzz/fuzz_workermsg.c backend/chan.c \
		      lib/stream.c lib/log.c lib/util.c
fuzz_workermsg_CFLAGS = -Iinclude -Ilib

FUZZ_CC     ?= clang-14
REPLAY_CC   ?= $(CC)
FUZZ_OUT    := build-fuzz
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=all \
               -fno-omit-frame-pointer
FUZZ_CPPFLAGS = $(filter-out -D_FORTIFY_SOURCE=%,$(CPPFLAGS))
FUZZ_HDRS   = $(wildcard include/xenfs/*.h lib/*.h policy/*.h)
TARGET      ?=
SECONDS     ?= 60
FUZZ_JOBS   ?= 1

# $(call fuzz_template,name)
define fuzz_template
$(FUZZ_OUT)/fuzz_$(1): $$(fuzz_$(1)_SRCS) $$(FUZZ_HDRS)
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  FUZZ    $$@")
	$$(Q)$$(FUZZ_CC) $$(FUZZ_CPPFLAGS) $$(WARN) -g -O1 \
		-fsanitize=fuzzer $$(FUZZ_SAN) $$(fuzz_$(1)_CFLAGS) \
		-o $$@ $$(fuzz_$(1)_SRCS) $$(fuzz_$(1)_LIBS) -lpthread
$(FUZZ_OUT)/replay/fuzz_$(1): $$(fuzz_$(1)_SRCS) tests/fuzz/replay_main.c \
		$$(FUZZ_HDRS)
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  REPLAY  $$@")
	$$(Q)$$(REPLAY_CC) $$(FUZZ_CPPFLAGS) $$(WARN) -g -O1 $$(FUZZ_SAN) \
		$$(fuzz_$(1)_CFLAGS) -o $$@ $$(fuzz_$(1)_SRCS) \
		tests/fuzz/replay_main.c $$(fuzz_$(1)_LIBS) -lpthread
endef

$(foreach t,$(FUZZ_TARGETS),$(eval $(call fuzz_template,$(t))))

fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_OUT)/fuzz_%)
fuzz-replay-build: $(FUZZ_TARGETS:%=$(FUZZ_OUT)/replay/fuzz_%)

ifneq ($(TARGET),)
# runs inside $(FUZZ_OUT) so that -jobs' fuzz-N.log files land there too
fuzz: $(FUZZ_OUT)/fuzz_$(TARGET)
	@mkdir -p $(FUZZ_OUT)/corpus/$(TARGET)
	$(Q)cd $(FUZZ_OUT) && \
	ASAN_OPTIONS=$${ASAN_OPTIONS:-detect_leaks=1} \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	./fuzz_$(TARGET) -max_total_time=$(SECONDS) -print_final_stats=1 \
		$(if $(filter-out 1,$(FUZZ_JOBS)),-jobs=$(FUZZ_JOBS) -workers=$(FUZZ_JOBS)) \
		-artifact_prefix=$(CURDIR)/$(FUZZ_OUT)/crash-$(TARGET)- \
		$(if $(wildcard tests/fuzz/$(TARGET).dict),-dict=$(CURDIR)/tests/fuzz/$(TARGET).dict) \
		corpus/$(TARGET) $(CURDIR)/tests/fuzz/corpus/$(TARGET)
else
fuzz:
	@echo "usage: make fuzz TARGET=name [SECONDS=60]; targets: $(FUZZ_TARGETS)"; exit 2
endif

fuzz-replay: $(FUZZ_TARGETS:%=$(FUZZ_OUT)/replay/fuzz_%)
	$(Q)fail=0; for t in $(FUZZ_TARGETS); do \
		if ASAN_OPTIONS=$${ASAN_OPTIONS:-detect_leaks=1} \
		   UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		   $(FUZZ_OUT)/replay/fuzz_$$t -q tests/fuzz/corpus/$$t \
			>$(FUZZ_OUT)/replay/$$t.log 2>&1; then \
			tail -n 1 $(FUZZ_OUT)/replay/$$t.log; \
		else \
			cat $(FUZZ_OUT)/replay/$$t.log; \
			echo "fuzz_$$t: CRASH (log: $(FUZZ_OUT)/replay/$$t.log)"; \
			fail=1; \
		fi; \
	done; exit $$fail

.PHONY: fuzz fuzz-replay fuzz-build fuzz-replay-build

# The malicious frontend of tests/integration/t_evil_frontend.sh.
PROGRAMS += xf-evil
xf-evil_SRCS := tests/tools/xf-evil.c
xf-evil_INSTALL := none
