#!/usr/bin/env bash
# check-kdir.sh KDIR: is KDIR a kernel tree that dax_hmem builds against? One line and exit 2
# if not: built (Module.symvers), Linux 7.3, CONFIG_RUST, and the dax/CXL options hmem.c needs.
set -euo pipefail
kdir=${1:-}
fail() { echo "error: $*" >&2; exit 2; }

[ -n "$kdir" ] || fail "no KDIR given, and no lab kernel (make kernel builds one)"
[ -f "$kdir/include/config/kernel.release" ] && [ -f "$kdir/.config" ] ||
	fail "KDIR=$kdir is not a configured kernel build tree"
release=$(cat "$kdir/include/config/kernel.release")
case "$release" in
7.3 | 7.3.* | 7.3-* | 7.3+*) ;;
*) fail "KDIR=$kdir is Linux $release; dax_hmem supports 7.3 only" ;;
esac
[ -f "$kdir/Module.symvers" ] || fail "KDIR=$kdir is not built (no Module.symvers)"
for option in CONFIG_RUST CONFIG_DEV_DAX_HMEM; do
	grep -Eq "^$option=[ym]" "$kdir/.config" || fail "KDIR=$kdir lacks $option"
done
