#!/usr/bin/env bash
# make check: set up the host, build (or reuse) the lab kernel, run the unit tests, then every
# scenario with every available driver. Prints the timings and one closing line
# 'check: N passed, N failed'.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
cd "$LAB_ROOT"

OUT=${LAB_OUT:-$LAB_ROOT/out}
DRIVERS=${LAB_DRIVERS:-c,rust}
mkdir -p "$OUT"
t0=$(now)
scripts/setup-host.sh || exit 1
t1=$(now)
scripts/build-kernel.sh >/dev/null || exit 1
t2=$(now)

scripts/tests/run.py 2>&1 | tee "$OUT/unit.log"
unit_rc=${PIPESTATUS[0]}
t3=$(now)
scripts/lab run --all --driver "$DRIVERS" --out "$OUT" | tee "$OUT/scenarios.log"
t4=$(now)

read -r unit_pass unit_fail < <(sed -n 's/^unit: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$OUT/unit.log")
read -r scen_pass scen_fail < <(sed -n 's/^scenarios: \([0-9]*\) passed, \([0-9]*\) failed.*$/\1 \2/p' "$OUT/scenarios.log")
unit_pass=${unit_pass:-0} unit_fail=${unit_fail:-$((unit_rc != 0))}
scen_pass=${scen_pass:-0} scen_fail=${scen_fail:-1}
echo "timings: setup $((t1 - t0)) s, kernel $((t2 - t1)) s, unit tests $((t3 - t2)) s," \
	"scenarios $((t4 - t3)) s, total $((t4 - t0)) s"
echo "check: $((unit_pass + scen_pass)) passed, $((unit_fail + scen_fail)) failed"
[ "$unit_fail" -eq 0 ] && [ "$scen_fail" -eq 0 ] && [ "$unit_rc" -eq 0 ]
