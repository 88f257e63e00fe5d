# dax_hmem: the Rust module, and the lab that proves it.
#
#   make                  build dax_hmem.ko (KDIR=<7.3 tree>, default: the lab's kernel)
#   make modules_install  install it to /lib/modules/<release>/updates (INSTALL_MOD_PATH=)
#   make lint             clippy (CLIPPY=1) and rustfmt --check, on our files only
#   make rustfmt          format our Rust files with the kernel's .rustfmt.toml
#   make clean            remove build products
#   make run     the main job: default scenarios in QEMU, summary table (DRIVERS=c,rust)
#   make check   the tests: unit tests, then every scenario with both drivers
#   make setup   host toolchain only;  make kernel   lab kernel only
#
# Every target does its own set-up on a fresh Debian bookworm machine (root).

LAB_CACHE ?= /var/cache/dax-hmem-lab
DRIVERS ?= c,rust
LAB_KERNEL_ENV := $(LAB_CACHE)/kernel/current/kernel.env

# Without KDIR, build against the lab's kernel, building that first (cached).
ifeq ($(origin KDIR),undefined)
KDIR_PREREQ := kernel
KDIR = $(shell sed -n 's/^KDIR=//p' $(LAB_KERNEL_ENV) 2>/dev/null)
endif

KBUILD = $(MAKE) -C $(KDIR) M=$(CURDIR)
RUST_SOURCES = $(filter-out %_generated.rs,$(wildcard rust/*.rs rust/*/*.rs))
MODULE_SOURCES = Kbuild $(RUST_SOURCES) $(wildcard rust/*.[ch])
RUSTFMT = PATH="$$HOME/.cargo/bin:$$PATH" rustfmt --edition 2021 --config-path $(KDIR)/.rustfmt.toml

# The cxl_test flavour and lab mutants (scripts/mutants/NAME.patch, MUTANT=NAME) are built in
# copies, so that no build overwrites another's objects.
COPY_NAME = $(subst $(eval) ,-,$(strip $(if $(MUTANT),mutant-$(MUTANT)) $(VARIANT)))
COPY_BUILD = $(CURDIR)/out/build/$(COPY_NAME)
COPY_KBUILD = $(MAKE) -C $(KDIR) M=$(COPY_BUILD) \
	$(if $(MUTANT),DAX_HMEM_MUTANT=$(MUTANT)) \
	$(if $(VARIANT),DAX_HMEM_CXL_TEST=y KBUILD_EXTRA_SYMBOLS=$(KDIR)/tools/testing/cxl/Module.symvers)

.PHONY: modules modules_install lint rustfmt clean lab-overlay check-kdir help setup kernel run check
.DEFAULT_GOAL := modules

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

check-kdir: $(KDIR_PREREQ)
	@scripts/check-kdir.sh "$(KDIR)"

modules: check-kdir
	$(KBUILD) modules

modules_install: modules
	$(KBUILD) modules_install

lint: check-kdir
	$(KBUILD) CLIPPY=1 modules
	$(RUSTFMT) --check $(RUST_SOURCES)

rustfmt: check-kdir
	$(RUSTFMT) $(RUST_SOURCES)

clean:
	@if [ -n "$(KDIR)" ] && [ -d "$(KDIR)" ]; then $(KBUILD) clean; fi
	rm -rf out/build

# For the lab (scripts/labpy/drivers.py): install dax_hmem.ko under
# OVERLAY/lib/modules/<release>/updates; VARIANT=cxl_test builds the --wrap flavour against
# cxl_test's symbols. The initramfs build runs depmod, so modules_install does not.
lab-overlay: check-kdir
	@test -n "$(OVERLAY)" || { echo "error: lab-overlay needs OVERLAY=DIR" >&2; exit 2; }
	@case "$(VARIANT)" in ""|cxl_test) ;; *) echo "error: unknown VARIANT '$(VARIANT)' (known: cxl_test)" >&2; exit 2;; esac
	@test -z "$(VARIANT)" || test -f $(KDIR)/tools/testing/cxl/Module.symvers || \
		{ echo "error: $(KDIR) has no cxl_test build (tools/testing/cxl)" >&2; exit 2; }
	@test -z "$(MUTANT)" || test -f scripts/mutants/$(MUTANT).patch || \
		{ echo "error: unknown MUTANT '$(MUTANT)' (scripts/mutants/*.patch)" >&2; exit 2; }
ifeq ($(COPY_NAME),)
	$(KBUILD) modules
	$(KBUILD) INSTALL_MOD_PATH=$(OVERLAY) DEPMOD=true modules_install
else
	rm -rf $(COPY_BUILD)/rust
	mkdir -p $(COPY_BUILD)
	cp -p --parents $(MODULE_SOURCES) $(COPY_BUILD)/
	$(if $(MUTANT),patch -s -d $(COPY_BUILD) -p1 < scripts/mutants/$(MUTANT).patch)
	$(COPY_KBUILD) modules
	$(COPY_KBUILD) INSTALL_MOD_PATH=$(OVERLAY) DEPMOD=true modules_install
endif

setup:
	scripts/setup-host.sh

kernel: setup
	scripts/build-kernel.sh >/dev/null

run: kernel
	scripts/lab run --driver $(DRIVERS)

check:
	scripts/check.sh
