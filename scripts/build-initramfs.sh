#!/usr/bin/env bash
# build-initramfs.sh KERNEL_ARTIFACTS OUT.cpio [MODULE_OVERLAY...]
#
# Guest initramfs: busybox, kmod's modprobe, Debian's cxl and daxctl with their libraries,
# a static kexec_file_load helper, the guest scripts, and a module tree made of the kernel's
# in-tree modules plus each overlay (a lib/modules tree, such as cxl_test's updates/).
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

[ $# -ge 2 ] || die "usage: build-initramfs.sh KERNEL_ARTIFACTS OUT.cpio [MODULE_OVERLAY...]"
art=$1 out=$2
shift 2
[ -f "$art/kernel.env" ] || die "no kernel artifacts at $art"
. "$art/kernel.env"
for tool in busybox kmod cxl daxctl cpio gcc; do
	command -v "$tool" >/dev/null || die "missing tool: $tool (run scripts/setup-host.sh)"
done

GUEST=$LAB_ROOT/scripts/guest
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,lab,lib/modules}

cp "$(command -v busybox)" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
	case "$applet" in busybox | modprobe | insmod | rmmod | lsmod | depmod | modinfo) continue ;; esac
	ln -sf busybox "$root/bin/$applet"
done

# kmod, not busybox: a real modprobe (cmdline options, blacklist, aliases, softdeps).
cp "$(command -v kmod)" "$root/sbin/kmod"
for t in modprobe insmod rmmod lsmod depmod modinfo; do ln -sf kmod "$root/sbin/$t"; done
cp "$(command -v cxl)" "$(command -v daxctl)" "$root/usr/bin/"
for bin in "$root/sbin/kmod" "$root/usr/bin/cxl" "$root/usr/bin/daxctl"; do
	ldd "$bin" | grep -o '/[^ ]*' | while read -r lib; do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
done

# The guest's own static helpers, built once per source under the lab cache.
for helper in kexec-file fail-nth lab-uevent; do
	bin=$LAB_CACHE/guest-bin/$helper-$(sha256sum "$GUEST/$helper.c" | cut -c1-16)
	if [ ! -x "$bin" ]; then
		mkdir -p "$(dirname "$bin")"
		gcc -static -O2 -Wall -Werror -o "$bin.$$" "$GUEST/$helper.c" || die "building $helper failed"
		mv "$bin.$$" "$bin"
	fi
	cp "$bin" "$root/usr/sbin/$helper"
done
install -m 0755 "$GUEST/init" "$root/init"
install -m 0644 "$GUEST/lib.sh" "$root/lab/lib.sh"
install -m 0644 "$GUEST/stress.sh" "$root/lab/stress.sh"

cp -a "$art/modules/lib/modules/." "$root/lib/modules/"
for overlay in "$@"; do
	[ -d "$overlay/lib/modules" ] || die "module overlay $overlay has no lib/modules"
	# A later overlay replaces same-named modules that an earlier one put in updates/.
	find "$overlay/lib/modules" -name '*.ko' -printf '%f\n' | while read -r ko; do
		find "$root/lib/modules" -path '*/updates/*' -name "$ko" -delete
	done
	cp -a "$overlay/lib/modules/." "$root/lib/modules/"
done
depmod -b "$root" "$KERNEL_RELEASE" || die "depmod failed"

(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$out.tmp"
mv "$out.tmp" "$out"
