# Shared by the lab's shell scripts: paths, logging, and the one-line failure.
# shellcheck shell=bash

LAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Heavy builds live outside the repo so a fresh clone reuses them.
LAB_CACHE=${LAB_CACHE:-/var/cache/dax-hmem-lab}
# Only the 7.3 series is supported: the module mirrors 7.3's hmem.c line by line.
LAB_KERNEL_SERIES=${LAB_KERNEL_SERIES:-7.3}
LAB_KERNEL_SUITE=${LAB_KERNEL_SUITE:-trixie-backports}
LAB_JOBS=${LAB_JOBS:-$(($(nproc) + 1))}

# set -e also inside $(...): scripts here call functions that way.
shopt -s inherit_errexit

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

# The Debian mirror the host's own apt uses for bookworm; the private apts below and the
# trixie build root use the same one (LAB_DEBIAN_MIRROR overrides it).
lab_debian_mirror() {
	if [ -z "${LAB_DEBIAN_MIRROR:-}" ]; then
		# Debian's own archive (…/debian over http or https), not a third party's bookworm suite
		# nor an apt-only mirror+file: URI, which debootstrap cannot use.
		LAB_DEBIAN_MIRROR=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Created-By: Packages' \
			2>/dev/null | awk '$2 == "bookworm" && $1 ~ /^https?:\/\/.*\/debian\/?$/ {
				sub("/$", "", $1); print $1; exit }')
		[ -n "$LAB_DEBIAN_MIRROR" ] || die "no Debian bookworm mirror in the host's apt sources (set LAB_DEBIAN_MIRROR)"
	fi
	echo "$LAB_DEBIAN_MIRROR"
}

# A private apt for Debian suites the host must never install from: its own sources, lists
# and cache under $1, nothing from /etc/apt. Usage: lab_apt DIR apt-get|apt-cache ARGS...
lab_apt() {
	local dir=$1 tool=$2
	shift 2
	LC_ALL=C "$tool" -q -o Dir::Etc::SourceList="$dir/sources.list" -o APT::Sandbox::User=root \
		-o Dir::Etc::SourceParts="$dir/empty" -o Dir::Etc::Preferences=/nonexistent \
		-o Dir::Etc::PreferencesParts="$dir/empty" \
		-o Dir::State="$dir/state" -o Dir::State::status="$dir/state/status" \
		-o Dir::Cache="$dir/cache" -o APT::Get::List-Cleanup=0 "$@"
}

# Set up the private apt under $1 for the suites "$2..." of Debian main, and refresh its index
# at most daily. Fails only when there is no index at all; an offline warm run reuses it.
lab_apt_init() {
	local dir=$1 suite mirror
	shift
	mirror=$(lab_debian_mirror) || exit 1
	mkdir -p "$dir/state/lists/partial" "$dir/cache/archives/partial" "$dir/debs" "$dir/empty"
	touch "$dir/state/status"
	for suite in "$@"; do
		echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main"
	done >"$dir/sources.list.new"
	if ! cmp -s "$dir/sources.list.new" "$dir/sources.list"; then
		mv "$dir/sources.list.new" "$dir/sources.list"
		rm -f "$dir/state/.updated"
	else
		rm -f "$dir/sources.list.new"
	fi
	[ -n "$(find "$dir/state" -name .updated -mtime -1 2>/dev/null)" ] && return 0
	if lab_apt "$dir" apt-get update >"$dir/update.log" 2>&1; then
		touch "$dir/state/.updated"
	elif [ -z "$(find "$dir/state/lists" -name '*_Packages' 2>/dev/null)" ]; then
		die "apt-get update for $* failed (see $dir/update.log)"
	else
		log "apt-get update for $* failed; using the cached index"
	fi
}

# The candidate version of package $2 in the private apt under $1 (empty if unknown).
lab_apt_version() {
	lab_apt "$1" apt-cache policy "$2" 2>/dev/null | sed -n 's/^  Candidate: //p' | grep -v '(none)' || true
}

# Download package $2 at version $3 with the private apt under $1 into $1/debs, once; prints
# the .deb's path.
lab_apt_download() {
	local dir=$1 package=$2 version=$3 deb
	deb=$(find "$dir/debs" -name "${package}_${version//:/%3a}_*.deb" 2>/dev/null | head -n1)
	if [ ! -s "$deb" ]; then
		log "downloading $package $version"
		rm -rf "$dir/debs.tmp" && mkdir -p "$dir/debs.tmp" "$dir/debs"
		(cd "$dir/debs.tmp" && lab_apt "$dir" apt-get download "$package=$version" >/dev/null) ||
			die "download of $package=$version failed"
		deb=$(find "$dir/debs.tmp" -name '*.deb' | head -n1)
		[ -s "$deb" ] || die "download of $package=$version left no .deb"
		mv "$deb" "$dir/debs/" && deb=$dir/debs/${deb##*/}
	fi
	echo "$deb"
}

# Run "$@" chrooted into $1 with /proc and /dev mounted, in a mount namespace of its own, so
# that the mounts go away with the command whatever happens to it.
lab_chroot() {
	local root=$1
	shift
	unshare --mount --propagation private -- /bin/sh -c \
		'root=$1; shift; mount -t proc proc "$root/proc" && mount --rbind /dev "$root/dev" &&
		exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
			LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"' sh "$root" "$@"
}

# The files of the module's build (what the DKMS package ships), relative to $LAB_ROOT: the
# Makefile's list.
lab_module_sources() {
	make -s --no-print-directory -C "$LAB_ROOT" dkms-sources
}
