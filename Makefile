# dax_hmem: the Rust module (to come) and the lab that proves it.
#
#   make run     the main job: default scenarios in QEMU, summary table
#   make check   the tests: unit tests, then every scenario
#   make setup   host toolchain only;  make kernel   lab kernel only
#
# Every target does its own set-up on a fresh Debian bookworm machine (root).

.PHONY: help setup kernel run check

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

setup:
	scripts/setup-host.sh

kernel: setup
	scripts/build-kernel.sh

run: kernel
	scripts/lab run --driver $(or $(DRIVERS),c)

check:
	scripts/check.sh
