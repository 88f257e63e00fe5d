#!/usr/bin/env bash
# build-dkms-deb.sh OUTDIR: the DKMS package, dax-hmem-dkms_<version>_all.deb, laid out as
# Debian's dh_dkms does: the module's sources and dkms.conf in /usr/src/dax-hmem-<version>,
# and maintainer scripts that add, build and install it with DKMS. Prints the .deb's path.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

[ $# -eq 1 ] || die "usage: build-dkms-deb.sh OUTDIR"
out=$(realpath -m "$1")
cd "$LAB_ROOT"
command -v dpkg-deb >/dev/null || die "missing tool: dpkg-deb"

# 0.1.0 plus the commit count, so that every commit is a newer package.
version=0.1.0
if count=$(git rev-list --count HEAD 2>/dev/null); then
	version=$version+git$count
fi

# What DKMS needs to build: the module and the build script, nothing of the lab.
mapfile -t sources < <(lab_module_sources)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
src=$stage/usr/src/dax-hmem-$version
mkdir -p "$src" "$stage/DEBIAN" "$stage/usr/share/doc/dax-hmem-dkms"
cp -p --parents "${sources[@]}" "$src/"
rm -f "$src"/rust/*_generated.rs
sed "s/@VERSION@/$version/" dkms/dkms.conf.in >"$src/dkms.conf"
for f in control postinst prerm postrm; do
	sed "s/@VERSION@/$version/" "dkms/debian/$f.in" >"$stage/DEBIAN/$f"
done
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"
cp Documentation/dkms.rst "$stage/usr/share/doc/dax-hmem-dkms/README.rst"
# The C glue and the layout probe include drivers/dax/bus.h, and GPL-2.0 applies to all.
printf 'dax_hmem, a Rust replacement for drivers/dax/hmem/hmem.c of Linux 7.3.\nLicense: GPL-2.0\n' \
	>"$stage/usr/share/doc/dax-hmem-dkms/copyright"
echo "Installed-Size: $(du -sk "$stage/usr" | cut -f1)" >>"$stage/DEBIAN/control"

mkdir -p "$out"
deb=$out/dax-hmem-dkms_${version}_all.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null || die "dpkg-deb failed"
echo "$deb"
