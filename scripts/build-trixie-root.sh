#!/usr/bin/env bash
# The trixie build root: a debootstrap of Debian trixie with the toolchain Debian builds its
# 7.3 kernels with (rustc, rust-src, bindgen, gcc-14), that rustc's clippy, and dkms.
# Out-of-tree Rust must be compiled by the kernel's own rustc, and bookworm has none, so the
# stock kernel's module is built and linted in here (scripts/stock-kernel.sh), and the DKMS
# package is tested in here.
#
# Made from Debian's packages only, never from the host's apt sources: a private apt index
# gives the package versions, and the root is cached under $LAB_CACHE/trixie-root/<key>, keyed
# on them. A warm run only checks the key. Prints the root's path.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

SUITE=trixie
# dwarves (pahole) and openssl: the kernel's configuration probes them, and DKMS signs with
# openssl, as on a user's machine. rust-clippy: `make KERNEL=stock lint` lints with the
# kernel's own rustc.
PACKAGES=(rustc rust-clippy rust-src bindgen libclang-dev gcc-14 libc6-dev make bc bison flex libelf-dev
	libssl-dev libdw-dev dwarves openssl python3 kmod cpio xz-utils dkms)
APT_DIR=$LAB_CACHE/apt-$SUITE
ROOTS=$LAB_CACHE/trixie-root

[ "$(id -u)" = 0 ] || die "the trixie build root needs root (debootstrap, chroot)"
command -v debootstrap >/dev/null || die "missing tool: debootstrap (run scripts/setup-host.sh)"

# Sets versions, key and root from the private index.
resolve() {
	versions=()
	local p v
	for p in "${PACKAGES[@]}"; do
		v=$(lab_apt_version "$APT_DIR" "$p")
		[ -n "$v" ] || die "package $p is not available from $SUITE"
		versions+=("$p=$v")
	done
	key=$(printf '%s\n' "$SUITE" "${versions[@]}" | sha256sum | cut -c1-16)
	root=$ROOTS/$key
}

lab_apt_init "$APT_DIR" "$SUITE"
resolve
if [ ! -f "$root/.lab-root-done" ]; then
	# A new root installs from the mirror as it is now: key it on today's index, not on one
	# up to a day old.
	rm -f "$APT_DIR/state/.updated"
	lab_apt_init "$APT_DIR" "$SUITE"
	resolve
fi
if [ -f "$root/.lab-root-done" ]; then
	log "trixie build root cached ($root)"
	echo "$root"
	exit 0
fi

mirror=$(lab_debian_mirror)
log "making the trixie build root (key $key): ${versions[*]}"
t0=$(now)
mkdir -p "$ROOTS"
rm -rf "$root.tmp"
trap 'rm -rf "$root.tmp"' EXIT
# In a mount namespace of its own, so that a debootstrap that dies leaves no mount behind.
unshare --mount --propagation private -- debootstrap --variant=minbase \
	--include="$(IFS=,; echo "${PACKAGES[*]}")" "$SUITE" "$root.tmp" "$mirror" \
	>"$ROOTS/$key.log" 2>&1 || die "debootstrap of $SUITE failed (see $ROOTS/$key.log)"

# What debootstrap installed must be what the key says.
for pv in "${versions[@]}"; do
	got=$(chroot "$root.tmp" dpkg-query -W -f='${Version}' "${pv%%=*}" 2>/dev/null || true)
	[ "$got" = "${pv#*=}" ] || die "trixie root: ${pv%%=*} is ${got:-missing}, expected ${pv#*=}"
done

# The root's own apt: trixie, and trixie-backports for the 7.3 kernel packages. Backports
# stay at their default low priority, so the toolchain is never upgraded past trixie's.
cat >"$root.tmp/etc/apt/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $SUITE main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $SUITE-backports main
SRC
echo 'APT::Install-Recommends "false";' >"$root.tmp/etc/apt/apt.conf.d/90dax-hmem-lab"
printf '%s\n' "${versions[@]}" >"$root.tmp/.lab-root-packages"
touch "$root.tmp/.lab-root-done"
trap - EXIT
mv "$root.tmp" "$root"
# Older roots were for other package versions.
find "$ROOTS" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -exec rm -rf {} +
log "trixie build root ready in $(($(now) - t0)) s ($root)"
echo "$root"
