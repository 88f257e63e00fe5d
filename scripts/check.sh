#!/usr/bin/env bash
# make check: set up the host, build (or reuse) the lab kernel and Debian's stock kernel with
# its trixie build root, run the unit tests, then every scenario with every available driver
# on the lab kernel, every scenario the stock kernel can run with Debian's C dax_hmem and
# ours, the DKMS-installed module on the stock kernel, and a bounded slice of make stress
# (the first 12 fault-injection steps of each task-context entry point, two deferred-decision boots,
# 20-cycle loops, one fuzz boot of three orders, every hostile case). Prints the timings and
# one closing line 'check: N passed, N failed'.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
cd "$LAB_ROOT"

OUT=${LAB_OUT:-$LAB_ROOT/out}
DRIVERS=${LAB_DRIVERS:-c,rust}
# The DKMS module's own runs: the hmem path and the CXL path.
DKMS_SCENARIOS=(a-uncommitted e-committed)
mkdir -p "$OUT"
t0=$(now)
scripts/setup-host.sh || exit 1
t1=$(now)
scripts/build-kernel.sh >/dev/null || exit 1
t2=$(now)
scripts/stock-kernel.sh >/dev/null || exit 1
t3=$(now)

scripts/tests/run.py 2>&1 | tee "$OUT/unit.log"
unit_rc=${PIPESTATUS[0]}
t4=$(now)
scripts/lab run --all --driver "$DRIVERS" --out "$OUT" | tee "$OUT/scenarios.log"
t5=$(now)
scripts/lab run --kernel stock --all --driver "$DRIVERS" --out "$OUT/stock" | tee "$OUT/stock-scenarios.log"
t6=$(now)
scripts/lab run --kernel stock --driver c,dkms --out "$OUT/stock-dkms" "${DKMS_SCENARIOS[@]}" |
	tee "$OUT/stock-dkms-scenarios.log"
t7=$(now)
scripts/lab stress --driver "$DRIVERS" --out "$OUT/stress" --cycles 20 --boots 1 --orders 3 \
	--max-k 12 --deferred-k 1,3 | tee "$OUT/stress.log"
stress_rc=${PIPESTATUS[0]}
t8=$(now)

read -r unit_pass unit_fail < <(sed -n 's/^unit: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$OUT/unit.log")
unit_pass=${unit_pass:-0} unit_fail=${unit_fail:-$((unit_rc != 0))}
scen_pass=0 scen_fail=0
for log in scenarios stock-scenarios stock-dkms-scenarios; do
	read -r p f < <(sed -n 's/^scenarios: \([0-9]*\) passed, \([0-9]*\) failed.*$/\1 \2/p' "$OUT/$log.log")
	scen_pass=$((scen_pass + ${p:-0})) scen_fail=$((scen_fail + ${f:-1}))
done
# The stress slice counts as one test per part.
read -r stress_fail < <(sed -n 's/^stress: \([0-9]*\) failures.*$/\1/p' "$OUT/stress.log")
if [ "$stress_rc" -eq 0 ] && [ "${stress_fail:-1}" -eq 0 ]; then
	scen_pass=$((scen_pass + 4))
else
	scen_fail=$((scen_fail + 1))
fi
echo "timings: setup $((t1 - t0)) s, lab kernel $((t2 - t1)) s, stock kernel and build root $((t3 - t2)) s," \
	"unit tests $((t4 - t3)) s, lab scenarios $((t5 - t4)) s, stock scenarios $((t6 - t5)) s," \
	"DKMS scenarios $((t7 - t6)) s, stress slice $((t8 - t7)) s, total $((t8 - t0)) s"
echo "check: $((unit_pass + scen_pass)) passed, $((unit_fail + scen_fail)) failed"
[ "$unit_fail" -eq 0 ] && [ "$scen_fail" -eq 0 ] && [ "$unit_rc" -eq 0 ]
