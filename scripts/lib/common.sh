# Shared by the lab's shell scripts: paths, logging, and the one-line failure.
# shellcheck shell=bash

LAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Heavy builds live outside the repo so a fresh clone reuses them.
LAB_CACHE=${LAB_CACHE:-/var/cache/dax-hmem-lab}
# Only the 7.3 series is supported: the module mirrors 7.3's hmem.c line by line.
LAB_KERNEL_SERIES=${LAB_KERNEL_SERIES:-7.3}
LAB_KERNEL_SUITE=${LAB_KERNEL_SUITE:-trixie-backports}
LAB_JOBS=${LAB_JOBS:-$(($(nproc) + 1))}

export PATH="$HOME/.cargo/bin:$PATH"
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}

die() {
	echo "error: $*" >&2
	exit 1
}

log() {
	echo "lab: $*" >&2
}

# Seconds since the epoch, for the timings the closing notes quote.
now() {
	date +%s
}

require_supported_series() {
	case "$LAB_KERNEL_SERIES" in
	7.3) ;;
	*) die "kernel series $LAB_KERNEL_SERIES is not supported (only 7.3.x)" ;;
	esac
}
