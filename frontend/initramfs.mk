# frontend/initramfs.mk: initramfs-tools hook and boot script for
# root=xenfs:TAG guests, and xenfsd's systemd unit (docs/xen.md).
INITRAMFS_DIR ?= $(SYSCONFDIR)/initramfs-tools
# SYSTEMDUNITDIR comes from the top-level Makefile

define INSTALL_XEN_EXTRA
install -d $(DESTDIR)$(INITRAMFS_DIR)/hooks $(DESTDIR)$(INITRAMFS_DIR)/scripts $(DESTDIR)$(INITRAMFS_DIR)/conf.d $(DESTDIR)$(SYSTEMDUNITDIR) && \
install -m 0755 frontend/initramfs/hooks/xenfs $(DESTDIR)$(INITRAMFS_DIR)/hooks/xenfs && \
install -m 0644 frontend/initramfs/scripts/xenfs $(DESTDIR)$(INITRAMFS_DIR)/scripts/xenfs && \
install -m 0644 frontend/initramfs/conf.d/xenfs $(DESTDIR)$(INITRAMFS_DIR)/conf.d/xenfs && \
sed 's|/usr/local/sbin|$(SBINDIR)|g' backend/xenfsd.service > $(DESTDIR)$(SYSTEMDUNITDIR)/xenfsd.service
endef
INSTALL_EXTRA := $(if $(strip $(INSTALL_EXTRA)),$(INSTALL_EXTRA) && )$(INSTALL_XEN_EXTRA)

# Only these files (tests/xen/run checks where they land).
install-xen-extra:
	$(Q)$(INSTALL_XEN_EXTRA)
.PHONY: install-xen-extra
