#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# dkms-build.sh [--prepare-only] KERNELRELEASE [KERNEL_BUILD_DIR]
#
# Builds dax_hmem.ko for a distribution kernel whose headers carry no Rust metadata (Debian's
# linux-headers-*: no rust/*.rmeta, no drivers/dax/bus.h). Out-of-tree Rust is compiled against
# the metadata of the kernel's own `kernel` crate, and that metadata is only readable by the
# very rustc that wrote it, so:
#
#  1. refuse, with one line, what cannot work: a kernel that is not 7.3, one without
#     CONFIG_RUST or CONFIG_DEV_DAX_HMEM, a rustc/bindgen/C compiler other than the kernel's
#     own (CONFIG_*_VERSION_TEXT), a linux-source of another version;
#  2. regenerate the metadata once per kernel release, cached: extract linux-source-7.3, take
#     the headers' .config, run `make olddefconfig modules_prepare` with the kernel's compiler,
#     and copy in the headers' Module.symvers and release strings;
#  3. build the module against that tree (Kbuild at the top of this directory).
#
# DKMS runs this from dkms.conf; the lab runs it in its trixie build root. The cache is
# $DAX_HMEM_KDIR_CACHE (default /var/cache/dax-hmem-dkms), one directory per release.
# DAX_HMEM_CLIPPY=1 builds with clippy (the lab's `make KERNEL=stock lint`).
set -eu

fail() {
	echo "dax_hmem: $*" >&2
	exit 1
}

prepare_only=
if [ "${1:-}" = --prepare-only ]; then
	prepare_only=1
	shift
fi
release=${1:-}
[ -n "$release" ] || fail "usage: dkms-build.sh [--prepare-only] KERNELRELEASE [KERNEL_BUILD_DIR]"
build=${2:-/lib/modules/$release/build}
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${DAX_HMEM_KDIR_CACHE:-/var/cache/dax-hmem-dkms}

# -- what cannot work -------------------------------------------------------------------------
series=$(echo "$release" | sed -n 's/^\([0-9]*\.[0-9]*\).*/\1/p')
[ "$series" = 7.3 ] || fail "kernel $release is not Linux 7.3: dax_hmem mirrors 7.3's hmem.c and supports 7.3 only"
[ -f "$build/.config" ] && [ -f "$build/Module.symvers" ] ||
	fail "no headers for kernel $release at $build (install linux-headers-$release)"
config() {
	sed -n "s/^$1=//p" "$build/.config" | sed 's/^"\(.*\)"$/\1/'
}
[ "$(config CONFIG_RUST)" = y ] || fail "kernel $release was built without CONFIG_RUST: it cannot load Rust modules"
case "$(config CONFIG_DEV_DAX_HMEM)" in
y | m) ;;
*) fail "kernel $release was built without CONFIG_DEV_DAX_HMEM" ;;
esac

# The kernel's own compilers. Rust metadata is tied to the exact rustc that wrote it; bindgen
# and the C compiler make the bindings and the C glue agree with the kernel's layout.
want_rustc=$(config CONFIG_RUSTC_VERSION_TEXT)
got_rustc=$(rustc --version 2>/dev/null || true)
[ "$got_rustc" = "$want_rustc" ] ||
	fail "rustc is '${got_rustc:-missing}', but kernel $release was built with '$want_rustc'; install that rustc"
want_bindgen=$(config CONFIG_BINDGEN_VERSION_TEXT)
if [ -n "$want_bindgen" ]; then
	got_bindgen=$(bindgen --version 2>/dev/null || true)
	[ "$got_bindgen" = "$want_bindgen" ] ||
		fail "bindgen is '${got_bindgen:-missing}', but kernel $release was built with '$want_bindgen'"
fi
want_cc=$(config CONFIG_CC_VERSION_TEXT)
cc=${want_cc%% *}
got_cc=$("$cc" --version 2>/dev/null | head -n1 || true)
[ "$got_cc" = "$want_cc" ] || fail "C compiler '$cc' is '${got_cc:-missing}', but kernel $release was built with '$want_cc'"

# -- the metadata, once per release -----------------------------------------------------------
# A tree made for these headers with these compilers stays valid whatever linux-source is
# installed later (Debian keeps one linux-source-7.3 version at a time).
kdir=$cache/$release
stamp=$(printf '%s\n' "$release" "$(md5sum <"$build/.config")" "$(md5sum <"$build/Module.symvers")" \
	"$got_rustc" "$got_cc" | md5sum | cut -c1-32)
prepared() {
	[ "$(cat "$kdir/.dax-hmem-prepared" 2>/dev/null)" = "$stamp" ]
}

# The source must be the kernel's own version: the same Linux version, and the same Debian
# package version where dpkg knows both. (The tree's Makefile is checked again once extracted.)
check_source() {
	source_package=linux-source-$series
	tarball=${DAX_HMEM_SOURCE_DIR:-/usr/src}/$source_package.tar.xz
	upstream=${release%%[+-]*}
	[ -f "$tarball" ] || fail "no $tarball: install $source_package, the same version as kernel $release"
	source_version=$(dpkg-query -W -f='${Version}' "$source_package" 2>/dev/null || true)
	headers_version=$(dpkg-query -W -f='${Version}' "linux-headers-$release" 2>/dev/null || true)
	if [ -n "$source_version" ] && [ "${source_version%%-*}" != "$upstream" ]; then
		fail "$source_package is $source_version (Linux ${source_version%%-*}), but kernel $release is Linux $upstream; install its $source_package"
	fi
	if [ -n "$source_version" ] && [ -n "$headers_version" ] && [ "$source_version" != "$headers_version" ]; then
		fail "$source_package is $source_version, but kernel $release is $headers_version; install $source_package=$headers_version"
	fi
}

regenerate() {
	echo "dax_hmem: regenerating Rust metadata for $release from $source_package (once per release)"
	rm -rf "$kdir.tmp" "$kdir"
	mkdir -p "$kdir.tmp"
	tar -xf "$tarball" -C "$kdir.tmp" --strip-components=1 ||
		{ rm -rf "$kdir.tmp"; fail "cannot extract $tarball"; }
	tree=$(sed -n 's/^VERSION = //p; s/^PATCHLEVEL = //p; s/^SUBLEVEL = //p' "$kdir.tmp/Makefile" | paste -sd.)
	case "$upstream" in
	"$tree" | "${tree%.0}") ;;
	*) rm -rf "$kdir.tmp"; fail "$tarball holds Linux $tree, but kernel $release is $upstream" ;;
	esac
	cp "$build/.config" "$kdir.tmp/.config"
	log=$cache/$release.prepare.log
	if ! make -C "$kdir.tmp" -j"$(nproc)" CC="$cc" HOSTCC="$cc" olddefconfig modules_prepare >"$log" 2>&1; then
		rm -rf "$kdir.tmp"
		tail -n 20 "$log" >&2
		fail "modules_prepare failed for $release (see $log)"
	fi
	# olddefconfig re-probes the build tools. Rust and the compilers must come out as the
	# kernel has them; anything else that moved is named (a tool the kernel's build had and
	# this machine lacks).
	config_diff=$(diff "$build/.config" "$kdir.tmp/.config" | sed -n 's/^[<>] \(CONFIG_[A-Z0-9_]*\).*/\1/p' |
		sort -u | paste -sd' ')
	case " $config_diff " in
	*" CONFIG_RUST "* | *" CONFIG_RUSTC_VERSION_TEXT "* | *" CONFIG_CC_VERSION_TEXT "* | *" CONFIG_BINDGEN_VERSION_TEXT "*)
		rm -rf "$kdir.tmp"
		fail "the regenerated configuration of $release differs in $config_diff (see $log)"
		;;
	esac
	[ -z "$config_diff" ] || echo "dax_hmem: note: the regenerated configuration of $release differs in $config_diff" | tee -a "$log" >&2
	# The headers' symbol versions and release strings, so that the module links against
	# and loads into the installed kernel.
	cp "$build/Module.symvers" "$kdir.tmp/" &&
		cp "$build/include/config/kernel.release" "$kdir.tmp/include/config/" &&
		cp "$build/include/generated/utsrelease.h" "$kdir.tmp/include/generated/" ||
		{ rm -rf "$kdir.tmp"; fail "the headers at $build lack Module.symvers or the release strings"; }
	echo "$source_package $source_version" >"$kdir.tmp/.dax-hmem-source"
	echo "$stamp" >"$kdir.tmp/.dax-hmem-prepared"
	mv "$kdir.tmp" "$kdir"
}

if ! prepared; then
	check_source
	mkdir -p "$cache"
	exec 9>"$cache/.lock"
	flock 9
	prepared || regenerate
	exec 9>&-
fi
[ -n "$prepare_only" ] && exit 0

# -- the module -------------------------------------------------------------------------------
# KERNEL=lab: the top Makefile's own build, whatever KERNEL the environment has.
exec make -C "$here" KERNEL=lab KDIR="$kdir" CC="$cc" HOSTCC="$cc" ${DAX_HMEM_CLIPPY:+CLIPPY=1} modules
