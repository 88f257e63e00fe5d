# dax_hmem: the Rust module, and the lab that proves it.
#
#   make                  build dax_hmem.ko (KDIR=<7.3 tree>, default: the lab's kernel)
#   make KERNEL=stock     build it for Debian's stock 7.3 kernel, in the trixie build root
#   make deb              the DKMS package, out/dax-hmem-dkms_<version>_all.deb
#   make rust-analyzer    rust-project.json for our crate against the lab kernel
#   make modules_install  install it to /lib/modules/<release>/updates (INSTALL_MOD_PATH=)
#   make lint             clippy (CLIPPY=1) and rustfmt --check, on our files only
#                         (KERNEL=stock: clippy under Debian's rustc 1.85, in the build root)
#   make rustfmt          format our Rust files with the kernel's .rustfmt.toml
#   make clean            remove build products
#   make run     the main job: default scenarios in QEMU, summary table (DRIVERS=c,rust;
#                KERNEL=stock boots Debian's kernel instead of the lab's)
#   make check   the tests: unit tests, every scenario with both drivers on the lab kernel,
#                4 representative ones on Debian's stock kernel, the DKMS-installed module;
#                then, while its time budget allows, the module's parameters, cxl_settle and
#                a bounded slice of make stress (scripts/check.sh)
#   make stress  fault injection, 200-cycle loops, load-order fuzzing (STRESS_SEED=N replays),
#                hostile sysfs input, then the KASAN kernel; prints the tables
#   make bench   prints the lab's cost per run, decision and registration latency (C, Rust,
#                Rust with cxl_settle; 10 boots each) and walk times by range count
#   make kasan-kernel     the lab kernel with KASAN, built with LLVM 19
#   make setup   host toolchain only;  make kernel   lab kernel only
#   make stock-kernel     Debian's stock kernel, its trixie build root and Rust metadata
#
# Every target does its own set-up on a fresh Debian bookworm machine (root).

LAB_CACHE ?= /var/cache/dax-hmem-lab
DRIVERS ?= c,rust
# lab: the lab's debug kernel, built from linux-source-7.3; stock: Debian's own 7.3 kernel.
KERNEL ?= lab
ifeq ($(filter lab stock,$(KERNEL)),)
$(error unknown KERNEL '$(KERNEL)' (known: lab, stock))
endif
LAB_KERNEL_ENV := $(LAB_CACHE)/kernel/current/kernel.env

# Without KDIR, build against the lab's kernel, building that first (cached).
ifeq ($(origin KDIR),undefined)
KDIR_PREREQ := kernel
KDIR = $(shell sed -n 's/^KDIR=//p' $(LAB_KERNEL_ENV) 2>/dev/null)
endif

KBUILD = $(MAKE) -C $(KDIR) M=$(CURDIR)
RUST_SOURCES = $(filter-out %_generated.rs,$(wildcard rust/*.rs rust/*/*.rs))
MODULE_SOURCES = Kbuild $(RUST_SOURCES) $(wildcard rust/*.[ch])
# What a build outside this tree needs (the DKMS package, the stock kernel's build root).
DKMS_SOURCES = $(MODULE_SOURCES) Makefile scripts/check-kdir.sh dkms/dkms-build.sh
RUSTFMT = PATH="$$HOME/.cargo/bin:$$PATH" rustfmt --edition 2021 --config-path $(KDIR)/.rustfmt.toml

# The cxl_test flavour and lab mutants (scripts/mutants/NAME.patch, MUTANT=NAME) are built in
# copies, so that no build overwrites another's objects.
COPY_NAME = $(subst $(eval) ,-,$(strip $(if $(MUTANT),mutant-$(MUTANT)) $(VARIANT)))
COPY_BUILD = $(CURDIR)/out/build/$(COPY_NAME)
COPY_KBUILD = $(MAKE) -C $(KDIR) M=$(COPY_BUILD) \
	$(if $(MUTANT),DAX_HMEM_MUTANT=$(MUTANT)) \
	$(if $(VARIANT),DAX_HMEM_CXL_TEST=y KBUILD_EXTRA_SYMBOLS=$(KDIR)/tools/testing/cxl/Module.symvers)

.PHONY: modules modules_install lint rustfmt clean lab-overlay check-kdir help setup kernel run check \
	deb dkms-sources rust-analyzer stock-kernel stress kasan-kernel bench
.DEFAULT_GOAL := modules

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

check-kdir: $(KDIR_PREREQ)
	@scripts/check-kdir.sh "$(KDIR)"

ifeq ($(KERNEL),stock)
# Debian's kernel wants its own rustc (trixie's), so the module is built in the trixie build
# root, against Rust metadata regenerated from linux-source-7.3 (Documentation/dkms.rst).
modules: setup
	scripts/stock-kernel.sh module out/stock

# Clippy with the kernel's own rustc (rustfmt's check is the lab's, toolchain-independent).
lint: setup
	scripts/stock-kernel.sh lint

modules_install:
	@echo "error: KERNEL=stock installs through the DKMS package (make deb; Documentation/dkms.rst)" >&2; exit 2

lab-overlay: setup
	@test -n "$(OVERLAY)" || { echo "error: lab-overlay needs OVERLAY=DIR" >&2; exit 2; }
	@test -z "$(VARIANT)$(MUTANT)" || { echo "error: KERNEL=stock has no cxl_test build and takes no mutant" >&2; exit 2; }
	scripts/stock-kernel.sh overlay $(OVERLAY) $(STOCK_ART)
else
modules: check-kdir
	$(KBUILD) modules

lint: check-kdir
	$(KBUILD) CLIPPY=1 modules
	$(RUSTFMT) --check $(RUST_SOURCES)

modules_install: modules
	$(KBUILD) modules_install

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
endif

rustfmt: check-kdir
	$(RUSTFMT) $(RUST_SOURCES)

clean:
	@if [ -n "$(KDIR)" ] && [ -d "$(KDIR)" ]; then $(KBUILD) clean; fi
	rm -rf out/build out/stock

deb:
	scripts/build-dkms-deb.sh out

# For scripts/lib/common.sh: lab_module_sources.
dkms-sources:
	@printf '%s\n' $(DKMS_SOURCES)

# The kernel's generator writes rust-project.json with the kernel's crates; ours is added.
rust-analyzer: check-kdir
	$(KBUILD) rust-analyzer
	scripts/rust-analyzer.py rust-project.json rust/dax_hmem_main.rs

setup:
	scripts/setup-host.sh

kernel: setup
	scripts/build-kernel.sh >/dev/null

stock-kernel: setup
	scripts/stock-kernel.sh >/dev/null

run: $(if $(filter stock,$(KERNEL)),stock-kernel,kernel)
	scripts/lab run --kernel $(KERNEL) --driver $(DRIVERS)

check:
	scripts/check.sh

stress:
	scripts/stress.sh

bench: kernel
	scripts/lab bench

kasan-kernel: setup
	scripts/build-kernel.sh --variant kasan >/dev/null
