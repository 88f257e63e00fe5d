#!/usr/bin/env bash
# Fetches the newest linux-source-7.3 from trixie-backports (download-only, private apt
# configuration), configures it from allnoconfig + kvm_guest.config + qemu/kernel.config,
# applies the lab's own patches (qemu/patches, cxl_test only), and builds bzImage, the modules
# and tools/testing/cxl (cxl_test).
#
# --variant kasan adds qemu/kernel-kasan.config and builds with LLVM 19 (Rust allows KASAN
# only with clang), in a tree of its own; its artifacts are $LAB_CACHE/kernel/current-kasan.
#
# Results are cached under $LAB_CACHE/kernel, keyed on kernel version, config fragment and
# toolchain; a warm run only checks the key. The build tree (KDIR for out-of-tree modules) is
# kept per kernel version, so a changed fragment or toolchain rebuilds only what changed.
#
# Prints the artifact directory on stdout.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

require_supported_series
PACKAGE=linux-source-$LAB_KERNEL_SERIES
APT_DIR=$LAB_CACHE/apt-$LAB_KERNEL_SUITE
FRAGMENTS=("$LAB_ROOT/qemu/kernel.config")
# Lab-only patches to tools/testing/cxl (never to the kernel or drivers under test).
PATCHES=()
for p in "$LAB_ROOT"/qemu/patches/*.patch; do [ -e "$p" ] && PATCHES+=("$p"); done
# What a kernel.env's KERNEL_RELEASE must look like.
RELEASE_RE='^[0-9]+\.[0-9]+[^[:space:]]*$'
VARIANT=
KMAKE=()
CXL_TEST_KMAKE=()
case "${1:-}" in
"") ;;
--variant)
	VARIANT=${2:-}
	case "$VARIANT" in
	kasan)
		FRAGMENTS+=("$LAB_ROOT/qemu/kernel-kasan.config")
		KMAKE=(LLVM=-19)
		# cxl_test links with --wrap; ld.lld also rewrites the module's own exports of the
		# wrapped symbols (modpost: ".export_symbol section references '__wrap_...'"), GNU
		# ld only the undefined references, which is what cxl_test relies on.
		CXL_TEST_KMAKE=(LD=ld.bfd)
		;;
	*) die "unknown kernel variant '${VARIANT}' (known: kasan)" ;;
	esac
	;;
*) die "unknown option '$1' (usage: build-kernel.sh [--variant kasan])" ;;
esac

# Newest source package of the series; its .deb is downloaded once per version.
fetch_source() {
	lab_apt_init "$APT_DIR" "$LAB_KERNEL_SUITE"
	local version deb
	version=$(lab_apt_version "$APT_DIR" "$PACKAGE")
	[ -n "$version" ] || die "kernel package $PACKAGE is not available from $LAB_KERNEL_SUITE"
	case "$version" in
	"$LAB_KERNEL_SERIES".* | "$LAB_KERNEL_SERIES"~* | "$LAB_KERNEL_SERIES"-*) ;;
	*) die "$PACKAGE version $version is not a $LAB_KERNEL_SERIES.x kernel" ;;
	esac
	deb=$(lab_apt_download "$APT_DIR" "$PACKAGE" "$version") || exit 1
	echo "$version $deb"
}

extract_source() {
	local version=$1 deb=$2 tree=$3
	[ -f "$tree/.lab-extracted" ] && return 0
	log "extracting $PACKAGE $version into $tree"
	local tmp=$tree.tmp
	rm -rf "$tmp" "$tree"
	mkdir -p "$tmp/deb"
	dpkg-deb -x "$deb" "$tmp/deb"
	local tarball
	tarball=$(find "$tmp/deb/usr/src" -maxdepth 1 -name "$PACKAGE.tar.*" | head -n1)
	[ -n "$tarball" ] || die "$deb holds no $PACKAGE tarball"
	tar -xf "$tarball" -C "$tmp"
	mv "$tmp/$PACKAGE" "$tree"
	rm -rf "$tmp"
	local v p
	v=$(sed -n 's/^VERSION = //p' "$tree/Makefile")
	p=$(sed -n 's/^PATCHLEVEL = //p' "$tree/Makefile")
	[ "$v.$p" = "$LAB_KERNEL_SERIES" ] || die "$deb holds kernel $v.$p, not $LAB_KERNEL_SERIES"
	touch "$tree/.lab-extracted"
}

# Bring the tree's lab patches to PATCHES. The tree keeps a copy of each patch it has applied;
# if any differs from PATCHES, all are reversed, newest first, and PATCHES applied again. Each
# step is tried with --dry-run first, so a patch that does not fit leaves the tree as it was.
apply_patches() {
	local tree=$1 applied=$1/.lab-patches p name i current=1 have=()
	mkdir -p "$applied"
	for p in "$applied"/*.patch; do [ -e "$p" ] && have+=("${p##*/}"); done
	[ ${#have[@]} -eq ${#PATCHES[@]} ] || current=0
	for p in "${PATCHES[@]}"; do cmp -s "$p" "$applied/${p##*/}" || current=0; done
	[ "$current" = 0 ] || return 0
	for ((i = ${#have[@]} - 1; i >= 0; i--)); do
		p=$applied/${have[i]}
		patch -d "$tree" -p1 -R -s --fuzz=0 --dry-run <"$p" >/dev/null ||
			die "cannot reverse the lab patch ${have[i]} in $tree (remove the tree to start over)"
		patch -d "$tree" -p1 -R -s --fuzz=0 --no-backup-if-mismatch <"$p" >/dev/null
		rm -f "$p"
	done
	for p in "${PATCHES[@]}"; do
		name=${p##*/}
		# Applied by a run that stopped before it recorded it.
		if patch -d "$tree" -p1 -R -s --fuzz=0 --dry-run <"$p" >/dev/null 2>&1; then
			cp "$p" "$applied/$name"
			continue
		fi
		patch -d "$tree" -p1 -N -s --fuzz=0 --dry-run <"$p" >/dev/null ||
			die "qemu/patches/$name does not apply to $PACKAGE in $tree"
		patch -d "$tree" -p1 -N -s --fuzz=0 --no-backup-if-mismatch <"$p" >/dev/null
		cp "$p" "$applied/$name"
	done
}

toolchain_id() {
	echo "${KMAKE[*]}"
	[ ${#CXL_TEST_KMAKE[@]} -eq 0 ] || echo "cxl_test: ${CXL_TEST_KMAKE[*]} $(ld.bfd --version | head -n1)"
	if [ "$VARIANT" = kasan ]; then clang-19 --version | head -n1; else gcc --version | head -n1; fi
	rustc --version
	bindgen --version
	"$LIBCLANG_PATH/../bin/clang" --version 2>/dev/null | head -n1 || echo libclang-19
}

# make in the kernel tree $1, with the variant's toolchain.
kmake() {
	local tree=$1
	shift
	make -C "$tree" "${KMAKE[@]}" "$@"
}

configure() {
	local tree=$1
	kmake "$tree" -s allnoconfig >/dev/null
	cat "$tree/kernel/configs/kvm_guest.config" "${FRAGMENTS[@]}" >>"$tree/.config"
	kmake "$tree" -s olddefconfig >/dev/null 2>"$tree/.lab-olddefconfig.log" ||
		die "olddefconfig failed (see $tree/.lab-olddefconfig.log)"
	# Every option the fragment asks for must hold; name the ones that do not.
	local bad=() line sym want got
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*) sym=${line%%=*} want=${line#*=} ;;
		"# CONFIG_"*" is not set") sym=${line#\# } sym=${sym%% *} want=n ;;
		*) continue ;;
		esac
		got=$(grep -E "^$sym=" "$tree/.config" | cut -d= -f2- || true)
		[ -n "$got" ] || got=n
		[ "$got" = "$want" ] || bad+=("$sym=$want (got $got)")
	done < <(cat "${FRAGMENTS[@]}")
	[ ${#bad[@]} -eq 0 ] || die "kernel config does not hold: ${bad[*]}"
}

build() {
	local tree=$1 art=$2 version=$3
	local t0
	t0=$(now)
	kmake "$tree" -j"$LAB_JOBS" -s bzImage modules >"$art.build.log" 2>&1 ||
		{ tail -n 30 "$art.build.log" >&2; die "kernel build failed (see $art.build.log)"; }
	local kernel_seconds=$(($(now) - t0))
	local krel
	# --no-print-directory: under make check, make's "Entering directory" lines go to stdout.
	krel=$(kmake "$tree" -s --no-print-directory kernelrelease)
	[[ $krel =~ $RELEASE_RE ]] || die "kernelrelease gave '$krel', not a kernel release"
	rm -rf "$art.tmp"
	mkdir -p "$art.tmp/modules" "$art.tmp/cxl_test-modules"
	kmake "$tree" -s INSTALL_MOD_PATH="$art.tmp/modules" modules_install >>"$art.build.log" 2>&1 ||
		die "modules_install failed (see $art.build.log)"
	# cxl_test rebuilds the cxl_* and dax_hmem modules with mocks; they install to updates/.
	t0=$(now)
	kmake "$tree" "${CXL_TEST_KMAKE[@]}" -j"$LAB_JOBS" -s M=tools/testing/cxl modules >>"$art.build.log" 2>&1 ||
		{ tail -n 30 "$art.build.log" >&2; die "cxl_test build failed (see $art.build.log)"; }
	kmake "$tree" "${CXL_TEST_KMAKE[@]}" -s M=tools/testing/cxl INSTALL_MOD_PATH="$art.tmp/cxl_test-modules" \
		modules_install >>"$art.build.log" 2>&1 || die "cxl_test modules_install failed"
	local cxl_test_seconds=$(($(now) - t0))
	cp "$tree/arch/x86/boot/bzImage" "$tree/.config" "$tree/System.map" "$art.tmp/"
	rm -f "$art.tmp"/modules/lib/modules/*/build "$art.tmp"/modules/lib/modules/*/source
	cat >"$art.tmp/kernel.env" <<ENV
KERNEL_PACKAGE=$PACKAGE
KERNEL_PACKAGE_VERSION=$version
KERNEL_RELEASE=$krel
KDIR=$tree
KERNEL_MAKEFLAGS=${KMAKE[*]}
KERNEL_FLAVOUR=${VARIANT:-lab}
BUILD_SECONDS=$kernel_seconds
CXL_TEST_BUILD_SECONDS=$cxl_test_seconds
ENV
	rm -rf "$art"
	mv "$art.tmp" "$art"
	mv "$art.build.log" "$art/build.log"
}

read -r version deb < <(fetch_source) || exit 1
[ -n "${version:-}" ] || exit 1
tree=$LAB_CACHE/kernel/$PACKAGE-$version${VARIANT:+-$VARIANT}
extract_source "$version" "$deb" "$tree"
apply_patches "$tree"
key=$( (echo "$version"; cat "$tree/kernel/configs/kvm_guest.config" "${FRAGMENTS[@]}" ${PATCHES[@]+"${PATCHES[@]}"}; toolchain_id) |
	sha256sum | cut -c1-16)
art=$LAB_CACHE/kernel/artifacts-$key
cached_release=$(sed -n 's/^KERNEL_RELEASE=//p' "$art/kernel.env" 2>/dev/null || true)
if [[ $cached_release =~ $RELEASE_RE ]]; then
	log "kernel $version cached ($art)"
else
	log "building $PACKAGE $version (key $key)"
	configure "$tree"
	build "$tree" "$art" "$version"
	. "$art/kernel.env"
	log "built $KERNEL_RELEASE: kernel ${BUILD_SECONDS}s, cxl_test ${CXL_TEST_BUILD_SECONDS}s"
fi
ln -sfn "$art" "$LAB_CACHE/kernel/current${VARIANT:+-$VARIANT}"
echo "$art"
