#!/usr/bin/env bash
# Debian's stock 7.3 kernel as a build target and as a lab kernel.
#
#   stock-kernel.sh [prepare]          fetch and cache it; print its artifact directory
#   stock-kernel.sh module DESTDIR     build dax_hmem.ko for it into DESTDIR; print the .ko's path
#   stock-kernel.sh overlay DIR [ART]  build it for the kernel of artifacts ART (default: the
#                                      newest), into DIR/lib/modules/<release>/updates (the lab's)
#   stock-kernel.sh lint               build it with CLIPPY=1 under the kernel's own rustc and
#                                      clippy; any warning fails
#   stock-kernel.sh dkms DEB DESTDIR [ART]  install the DKMS package DEB in the build root, let
#                                      DKMS build and install the module, copy that .ko to
#                                      DESTDIR, and purge the package again
#
# The lab passes ART, the kernel it boots, so that a newer kernel published in the meantime
# cannot put the module under another release.
#
# prepare takes the newest linux-modules-7.3.*-amd64 of trixie-backports. Its kernel image and
# modules are downloaded (private apt, never the host's sources) and cached under
# $LAB_CACHE/stock/<release>-<version>, with kernel.env as the lab reads it and a module tree cut
# down to qemu/stock-modules.txt. In the trixie build root (scripts/build-trixie-root.sh), the
# kernel's headers and linux-source-7.3 are installed, and dkms/dkms-build.sh regenerates the
# Rust metadata once per release with the kernel's own toolchain. A warm run checks versions.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

require_supported_series
FLAVOUR=amd64
APT_DIR=$LAB_CACHE/apt-$LAB_KERNEL_SUITE
STOCK=$LAB_CACHE/stock
# Where the lab puts the module's sources inside the build root.
ROOT_SRC=/usr/src/dax-hmem-lab
# The lab's own regenerated Rust metadata in the build root, apart from the DKMS package's
# (/var/cache/dax-hmem-dkms, which purging the package removes): the DKMS test then
# regenerates its own, as on a user's machine, and no test leaves the lab's tree to rebuild.
ROOT_KDIR_CACHE=/var/cache/dax-hmem-lab-kdir

newest_release() {
	lab_apt "$APT_DIR" apt-cache search --names-only \
		"^linux-modules-${LAB_KERNEL_SERIES//./\\.}\\.[0-9]+\\+deb[0-9]+-$FLAVOUR\$" 2>/dev/null |
		sed 's/^linux-modules-\([^ ]*\) .*/\1/' | sort -V | tail -n1
}

# What the guest's module tree is cut from: the list, and how it is cut (bump on a change).
modules_key() {
	{ echo 3; cat "$LAB_ROOT/qemu/stock-modules.txt"; } | sha256sum | cut -c1-16
}

# Image and modules, extracted once per release, version and modules_key; the modules cut down to what
# the guest needs.
fetch_kernel() {
	local release=$1 version=$2 art=$3
	grep -qx "MODULES_KEY=$(modules_key)" "$art/kernel.env" 2>/dev/null && return 0
	log "fetching Debian's kernel $release ($version)"
	local package deb x
	rm -rf "$art.tmp"
	x=$art.tmp/x
	mkdir -p "$x" "$art.tmp/modules/lib/modules"
	# The image; the modules; and modules.builtin, modules.order and the config (linux-base-*).
	for package in "linux-binary-unsigned-$release" "linux-modules-$release" "linux-base-$release"; do
		deb=$(lab_apt_download "$APT_DIR" "$package" "$version")
		dpkg-deb -x "$deb" "$x"
	done
	local mods vmlinuz
	mods=$(find "$x" -maxdepth 4 -type d -path "*/lib/modules/$release" | head -n1)
	vmlinuz=$(find "$x" -name "vmlinuz*" -type f | head -n1)
	[ -n "$mods" ] && [ -n "$vmlinuz" ] || die "Debian's $release packages hold no vmlinuz or modules"
	cp "$vmlinuz" "$art.tmp/bzImage"
	rm -f "$mods/vmlinuz"*
	cp "$mods/config" "$art.tmp/.config"
	depmod -b "${mods%/lib/modules/$release}" "$release" || die "depmod of Debian's $release modules failed"
	# Only the modules the guest needs, and what they depend on (-C /dev/null: not by way of
	# the host's modprobe.d, where ndctl installs libnvdimm through a command).
	local keep=$art.tmp/modules/lib/modules/$release name file
	mkdir -p "$keep"
	cp "$mods"/modules.builtin* "$mods/modules.order" "$keep/"
	grep -v '^#' "$LAB_ROOT/qemu/stock-modules.txt" | while read -r name; do
		[ -n "$name" ] || continue
		# A module this kernel does not build (a test module) is left out; a scenario that
		# needs it is refused on this kernel.
		modprobe -C /dev/null -d "${mods%/lib/modules/$release}" -S "$release" --show-depends "$name" 2>/dev/null |
			sed -n 's/^insmod \([^ ]*\).*/\1/p' || true
	done | sort -u | while read -r file; do
		mkdir -p "$keep/$(dirname "${file#"$mods"/}")"
		cp "$file" "$keep/${file#"$mods"/}"
	done
	# modules.dep of what was kept: the lab reads it for the modules a scenario needs.
	depmod -b "$art.tmp/modules" "$release" || die "depmod of the cut-down $release modules failed"
	rm -rf "$x"
	cat >"$art.tmp/kernel.env" <<ENV
MODULES_KEY=$(modules_key)
KERNEL_FLAVOUR=stock
KERNEL_PACKAGE=linux-image-$release
KERNEL_PACKAGE_VERSION=$version
KERNEL_RELEASE=$release
ENV
	rm -rf "$art"
	mv "$art.tmp" "$art"
}

# The kernel's headers (and their metapackage, which the DKMS package depends on) and source in
# the build root, at the kernel's version.
install_in_root() {
	local root=$1 release=$2 version=$3 p have missing=()
	for p in "linux-headers-$release" "linux-headers-$FLAVOUR" "linux-source-$LAB_KERNEL_SERIES"; do
		have=$(chroot "$root" dpkg-query -W -f='${Version}' "$p" 2>/dev/null || true)
		[ "$have" = "$version" ] || missing+=("$p=$version")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing in the build root: ${missing[*]}"
	lab_chroot "$root" apt-get -q update >"$root.apt.log" 2>&1 ||
		die "apt-get update in the build root failed (see $root.apt.log)"
	lab_chroot "$root" apt-get -q install -y "${missing[@]}" >>"$root.apt.log" 2>&1 ||
		die "apt-get install ${missing[*]} in the build root failed (see $root.apt.log)"
}

# The module's sources, fresh, at $ROOT_SRC in the build root.
sync_sources() {
	local root=$1
	rm -rf "${root:?}$ROOT_SRC"
	mkdir -p "$root$ROOT_SRC"
	(cd "$LAB_ROOT" && lab_module_sources | xargs cp -p --parents -t "$root$ROOT_SRC")
}

prepare() {
	lab_apt_init "$APT_DIR" "$LAB_KERNEL_SUITE"
	local release version root art t0
	release=$(newest_release)
	[ -n "$release" ] || die "no linux-modules-$LAB_KERNEL_SERIES.*-$FLAVOUR in $LAB_KERNEL_SUITE"
	version=$(lab_apt_version "$APT_DIR" "linux-modules-$release")
	root=$("$LAB_ROOT/scripts/build-trixie-root.sh") || exit 1
	art=$STOCK/$release-$version
	mkdir -p "$STOCK"
	install_in_root "$root" "$release" "$version"
	fetch_kernel "$release" "$version" "$art"
	sync_sources "$root"
	t0=$(now)
	lab_chroot "$root" env DAX_HMEM_KDIR_CACHE="$ROOT_KDIR_CACHE" "$ROOT_SRC/dkms/dkms-build.sh" \
		--prepare-only "$release" >&2 || exit 1
	local seconds=$(($(now) - t0))
	[ "$seconds" -lt 5 ] || log "Rust metadata for $release regenerated in $seconds s"
	# The lab builds against the regenerated tree through the build root.
	grep -v -e '^KDIR=' -e '^BUILD_ROOT=' "$art/kernel.env" >"$art/kernel.env.tmp"
	printf 'KDIR=%s\nBUILD_ROOT=%s\n' "$root$ROOT_KDIR_CACHE/$release" "$root" >>"$art/kernel.env.tmp"
	mv "$art/kernel.env.tmp" "$art/kernel.env"
	ln -sfn "$art" "$STOCK/current"
	echo "$art"
}

# The artifacts ART (prepared when not given): sets art, root and release.
use_artifacts() {
	art=${1:-}
	[ -n "$art" ] || art=$(prepare) || exit 1
	[ -f "$art/kernel.env" ] || die "no stock kernel artifacts at $art (run scripts/stock-kernel.sh)"
	# shellcheck disable=SC1091
	. "$art/kernel.env"
	root=${BUILD_ROOT:-} release=$KERNEL_RELEASE
	[ -f "$root/.lab-root-done" ] || die "$art names no trixie build root (run scripts/stock-kernel.sh)"
}

case "${1:-prepare}" in
prepare)
	prepare
	;;
module | overlay)
	[ $# -eq 2 ] || { [ "$1" = overlay ] && [ $# -eq 3 ]; } || die "usage: stock-kernel.sh $1 DIR"
	use_artifacts "${3:-}"
	dest=$2
	[ "$1" = module ] || dest=$2/lib/modules/$release/updates
	sync_sources "$root"
	lab_chroot "$root" env DAX_HMEM_KDIR_CACHE="$ROOT_KDIR_CACHE" "$ROOT_SRC/dkms/dkms-build.sh" \
		"$release" >"$art/module-build.log" 2>&1 ||
		{ tail -n 20 "$art/module-build.log" >&2; die "module build for $release failed (see $art/module-build.log)"; }
	mkdir -p "$dest"
	cp "$root$ROOT_SRC/dax_hmem.ko" "$dest/"
	echo "$dest/dax_hmem.ko"
	;;
lint)
	[ $# -eq 1 ] || die "usage: stock-kernel.sh lint"
	use_artifacts ""
	sync_sources "$root"
	# The module build's own script, with its checks of the kernel's compilers, plus clippy.
	lab_chroot "$root" env DAX_HMEM_CLIPPY=1 DAX_HMEM_KDIR_CACHE="$ROOT_KDIR_CACHE" \
		"$ROOT_SRC/dkms/dkms-build.sh" "$release" >"$art/lint.log" 2>&1 ||
		{ tail -n 20 "$art/lint.log" >&2; die "clippy build for $release failed (see $art/lint.log)"; }
	grep -q 'CLIPPY \[M\]' "$art/lint.log" || die "clippy did not run (see $art/lint.log)"
	# Rust and C warnings are errors (Kbuild); this catches what the build only prints.
	! grep -E '^(warning|error)|^WARNING: modpost' "$art/lint.log" ||
		die "the clippy build printed warnings (see $art/lint.log)"
	log "clippy clean under $(lab_chroot "$root" rustc --version)"
	;;
dkms)
	[ $# -eq 3 ] || [ $# -eq 4 ] || die "usage: stock-kernel.sh dkms DEB DESTDIR [ART]"
	[ -f "$2" ] || die "no DKMS package at $2"
	use_artifacts "${4:-}"
	deb=/tmp/$(basename "$2")
	cp "$2" "$root$deb"
	log "dpkg -i $(basename "$2") in the build root; DKMS log: $art/dkms.log"
	# The package is purged again in any case: the root is shared, and an installed DKMS
	# package would build at every later headers install there.
	purge() {
		lab_chroot "$root" dpkg --purge --force-remove-reinstreq dax-hmem-dkms >>"$art/dkms.log" 2>&1 || true
		rm -f "$root$deb"
	}
	{
		lab_chroot "$root" dpkg -i "$deb" &&
			lab_chroot "$root" dkms install dax-hmem/"$(dpkg-deb -f "$2" Version)" -k "$release" &&
			lab_chroot "$root" dkms status dax-hmem
	} >"$art/dkms.log" 2>&1 || {
		purge
		tail -n 20 "$art/dkms.log" >&2
		die "DKMS install failed (see $art/dkms.log)"
	}
	ko=$(find "$root/lib/modules/$release/updates/dkms" -name 'dax_hmem.ko*' 2>/dev/null | head -n1 || true)
	[ -n "$ko" ] || { purge; die "DKMS installed no dax_hmem.ko for $release (see $art/dkms.log)"; }
	mkdir -p "$3"
	cp "$ko" "$3/"
	purge
	echo "$3/$(basename "$ko")"
	;;
*)
	die "unknown command '$1' (known: prepare, module DESTDIR, overlay DIR [ART], lint, dkms DEB DESTDIR [ART])"
	;;
esac
