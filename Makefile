# XenFS top-level Makefile (non-recursive).
#
# Each directory contributes a module.mk that appends to:
#   PROGRAMS        names of binaries built into $(O)/bin
#   <prog>_SRCS     its sources;  <prog>_LIBS  extra link flags
#   <prog>_INSTALL  sbin | bin | libexec (default sbin)
#   PLUGINS         shared objects built into $(O)/lib/xenfs
#   UNIT_TESTS      cmocka unit test binaries (built into $(O)/tests)
#   MAN_PAGES       docs/*.{1,5,8} installed by `make install`
# Sources of lib/ go into $(O)/libxenfs.a which every binary links.
#
#   make [V=1] [O=build] [SANITIZE=address,undefined]
#   make check | check-unit | check-integration | check-xen
#   make fuzz TARGET=name SECONDS=n | fuzz-replay | bench | demo | demo-stop
#   make install PREFIX=/usr/local DESTDIR=

O        ?= build
PREFIX   ?= /usr/local
SBINDIR  ?= $(PREFIX)/sbin
BINDIR   ?= $(PREFIX)/bin
LIBDIR   ?= $(PREFIX)/lib
LIBEXECDIR ?= $(PREFIX)/libexec/xenfs
MANDIR   ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
SYSTEMDUNITDIR ?= /lib/systemd/system
DESTDIR  ?=

CC       ?= cc
CFLAGS   ?= -O2 -g
WARN     := -std=gnu17 -Wall -Wextra -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wpointer-arith -Wformat=2 -Wvla \
            -Wno-unused-parameter
CPPFLAGS += -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Iinclude -Ilib -Ipolicy \
            -DXENFS_PLUGINDIR='"$(LIBDIR)/xenfs"' \
            -DXENFS_LIBEXECDIR='"$(LIBEXECDIR)"' \
            -DXENFS_SYSCONFDIR='"$(SYSCONFDIR)"'
DEPFLAGS  = -MMD -MP
LDFLAGS  ?=
LDLIBS   += -lpthread

ifdef WERROR
WARN += -Werror
endif

ifdef SANITIZE
SANFLAGS := -fsanitize=$(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer
CFLAGS   += $(SANFLAGS) -O1
LDFLAGS  += $(SANFLAGS)
override O := $(O)-san
else
CFLAGS   += -fstack-protector-strong -fPIE
CPPFLAGS += -D_FORTIFY_SOURCE=2
LDFLAGS  += -pie -Wl,-z,relro,-z,now
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

PROGRAMS   :=
PLUGINS    :=
UNIT_TESTS :=
LIB_SRCS   :=
MAN_PAGES  :=
EXTRA_ALL  :=

all: programs

include lib/module.mk
-include lib/xen.mk
-include policy/module.mk
-include backend/module.mk
-include backend/ctl.mk
-include frontend/module.mk
-include frontend/initramfs.mk
-include services/module.mk
-include services/indexer/module.mk
-include services/scanner/module.mk
-include services/snapshot/module.mk
-include tests/module.mk
-include tests/tools/module.mk
-include tests/fuzz/module.mk

LIB_OBJS := $(LIB_SRCS:%.c=$(O)/obj/%.o)
LIBXENFS := $(O)/libxenfs.a

$(O)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(O)/obj/%.pic.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC [pic] $<")
	$(Q)$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) -fPIC $(DEPFLAGS) -c -o $@ $<

$(LIBXENFS): $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && $(AR) rcs $@ $^

# $(call prog_template,name,outdir)
define prog_template
$(1)_OBJS := $$($(1)_SRCS:%.c=$(O)/obj/%.o)
$(2)/$(1): $$($(1)_OBJS) $(LIBXENFS)
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  LD      $$@")
	$$(Q)$$(CC) $$(LDFLAGS) -o $$@ $$($(1)_OBJS) $(LIBXENFS) $$($(1)_LIBS) $$(LDLIBS)
ALL_OBJS += $$($(1)_OBJS)
endef

define plugin_template
$(1)_OBJS := $$($(1)_SRCS:%.c=$(O)/obj/%.pic.o)
$(O)/lib/xenfs/$(1).so: $$($(1)_OBJS)
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  LD [so] $$@")
	$$(Q)$$(CC) -shared $$(filter-out -pie,$$(LDFLAGS)) -o $$@ $$($(1)_OBJS) $$($(1)_LIBS) $$(LDLIBS)
ALL_OBJS += $$($(1)_OBJS)
endef

$(foreach p,$(PROGRAMS),$(eval $(call prog_template,$(p),$(O)/bin)))
$(foreach p,$(UNIT_TESTS),$(eval $(call prog_template,$(p),$(O)/tests)))
$(foreach p,$(PLUGINS),$(eval $(call plugin_template,$(p))))

programs: $(PROGRAMS:%=$(O)/bin/%) $(PLUGINS:%=$(O)/lib/xenfs/%.so) $(EXTRA_ALL)
unit-tests: $(UNIT_TESTS:%=$(O)/tests/%)

-include $(LIB_OBJS:.o=.d) $(ALL_OBJS:.o=.d)

check: programs unit-tests
	$(Q)O=$(O) tests/run-all

check-unit: unit-tests
	$(Q)O=$(O) tests/run-all --unit

check-integration: programs
	$(Q)O=$(O) tests/run-all --integration

check-xen: programs
	$(Q)O=$(O) tests/run-all --xen

bench: programs
	$(Q)O=$(O) tests/bench/run

demo: programs
	$(Q)O=$(O) scripts/demo start

demo-stop:
	$(Q)O=$(O) scripts/demo stop

deps:
	$(Q)scripts/deps

# Where each program goes: <prog>_INSTALL = sbin (default) | bin | libexec | none
install_dir = $(if $(filter bin,$($(1)_INSTALL)),$(BINDIR),$(if $(filter libexec,$($(1)_INSTALL)),$(LIBEXECDIR),$(SBINDIR)))
INSTALLED_PROGRAMS = $(foreach p,$(PROGRAMS),$(if $(filter none,$($(p)_INSTALL)),,$(p)))
# plugins likewise: <plugin>_INSTALL = none keeps test plugins out
INSTALLED_PLUGINS = $(foreach p,$(PLUGINS),$(if $(filter none,$($(p)_INSTALL)),,$(p)))

install: programs
	$(Q)$(foreach p,$(INSTALLED_PROGRAMS),install -d "$(DESTDIR)$(call install_dir,$(p))" && \
		install -m 0755 $(O)/bin/$(p) "$(DESTDIR)$(call install_dir,$(p))/$(p)" &&) true
	$(Q)if [ -n "$(strip $(INSTALLED_PLUGINS))" ]; then install -d $(DESTDIR)$(LIBDIR)/xenfs && \
		install -m 0644 $(INSTALLED_PLUGINS:%=$(O)/lib/xenfs/%.so) $(DESTDIR)$(LIBDIR)/xenfs/; fi
	$(Q)for m in $(MAN_PAGES); do s=$${m##*.}; install -d $(DESTDIR)$(MANDIR)/man$$s && \
		install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s/ || exit 1; done
	$(Q)$(INSTALL_EXTRA)

clean:
	rm -rf $(O) $(O)-san build-fuzz

.PHONY: all programs unit-tests check check-unit check-integration check-xen \
        bench demo demo-stop deps install clean
