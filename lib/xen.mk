# lib/xen.mk: the Xen transport, kept out of libxenfs.a so that only the
# programs that use it link the Xen libraries (libxen-dev).
#
# A program that wants the Xen transport adds, in its own module.mk:
#   <prog>_LIBS += $(XEN_LINK)
#   $(O)/bin/<prog>: $(LIBXENFS_XEN)
# ($(XEN_LINK) repeats libxenfs.a after libxenfs-xen.a because the Xen
# transport uses ring.c and log.c from it and static link order matters.)
LIBXENFS_XEN_SRCS := lib/transport_xen.c
XEN_LIBS := -lxengnttab -lxenevtchn -lxenstore

LIBXENFS_XEN_OBJS := $(LIBXENFS_XEN_SRCS:%.c=$(O)/obj/%.o)
LIBXENFS_XEN := $(O)/libxenfs-xen.a
XEN_LINK = $(LIBXENFS_XEN) $(O)/libxenfs.a $(XEN_LIBS)
ALL_OBJS += $(LIBXENFS_XEN_OBJS)

$(LIBXENFS_XEN): $(LIBXENFS_XEN_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && $(AR) rcs $@ $^

# the worker's checks of a Xen offer from the parent (no Xen needed)
UNIT_TESTS += test_xen_offer
test_xen_offer_SRCS := tests/unit/test_xen_offer.c
test_xen_offer_LIBS = $(XEN_LINK) -lcmocka
$(O)/tests/test_xen_offer: $(LIBXENFS_XEN) $(O)/libxenfs.a
