#!/usr/bin/env bash
# Installs the host toolchain: Debian packages (LLVM 19 for the KASAN kernel, which Rust
# only allows with clang), QEMU 10.0 from bookworm-backports, rust-src and a pinned bindgen;
# chromium renders iomem.html headless for scripts/tests/test_report_page.py. Idempotent; a
# few seconds when all is present.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

BINDGEN_VERSION=0.73.2
PACKAGES=(build-essential flex bison bc libelf-dev libssl-dev cpio kmod patch
	busybox-static libclang-19-dev ndctl daxctl python3 debootstrap
	clang-19 lld-19 llvm-19 chromium)
QEMU_VERSION_PREFIX="1:10.0"

[ "$(id -u)" = 0 ] || die "setup must run as root (apt-get install)"
command -v apt-get >/dev/null || die "apt-get not found: the lab needs Debian bookworm"

# bookworm-backports only: trixie or sid as install sources would upgrade libc6.
BPO=/etc/apt/sources.list.d/dax-hmem-lab-bookworm-backports.sources
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	cat >"$BPO" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	rm -f "$LAB_CACHE/.apt-updated"
fi

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
qemu_version=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null || true)
case "$qemu_version" in "$QEMU_VERSION_PREFIX"*) ;; *) missing+=(qemu-system-x86) ;; esac

if [ ${#missing[@]} -gt 0 ]; then
	log "installing: ${missing[*]}"
	mkdir -p "$LAB_CACHE"
	apt-get update -q >/dev/null || die "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		"${PACKAGES[@]}" >/dev/null || die "apt-get install failed: ${PACKAGES[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		-t bookworm-backports qemu-system-x86 >/dev/null ||
		die "apt-get install of qemu-system-x86 from bookworm-backports failed"
fi
qemu_version=$(dpkg-query -W -f='${Version}' qemu-system-x86)
case "$qemu_version" in "$QEMU_VERSION_PREFIX"*) ;; *) die "qemu-system-x86 is $qemu_version, need 10.0" ;; esac

command -v rustup >/dev/null || die "rustup not found: the lab uses the machine's rustup toolchain"
command -v rustc >/dev/null || die "rustc not found"
rustup component list --installed 2>/dev/null | grep -q '^rust-src' ||
	rustup component add rust-src >/dev/null || die "rustup component add rust-src failed"

if ! bindgen --version 2>/dev/null | grep -qx "bindgen $BINDGEN_VERSION"; then
	log "installing bindgen-cli $BINDGEN_VERSION"
	cargo install --locked --quiet bindgen-cli --version "$BINDGEN_VERSION" ||
		die "cargo install bindgen-cli $BINDGEN_VERSION failed"
fi
[ -e "$LIBCLANG_PATH/libclang.so" ] || die "libclang not found at $LIBCLANG_PATH"
log "host ready: $(rustc --version), $(bindgen --version), qemu $qemu_version"
