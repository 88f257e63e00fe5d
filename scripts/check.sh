#!/usr/bin/env bash
# make check: set up the host, build (or reuse) the lab kernel and Debian's stock kernel with
# its trixie build root, run the unit tests, then every scenario on the lab kernel with every
# available driver, the deferral scenarios with the Rust one under cxl_settle, a representative set on the stock
# kernel with Debian's C dax_hmem and ours, the DKMS-installed module on the stock kernel, the
# module's opt-in parameters on the scenarios they change, and a bounded slice of make stress
# (the first 12 fault-injection steps of each task-context entry point, two deferred-decision
# boots, 20-cycle loops, one fuzz boot of three orders, every hostile case). Prints the
# timings and one closing line 'check: N passed, N failed'.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
cd "$LAB_ROOT"

OUT=${LAB_OUT:-$LAB_ROOT/out}
DRIVERS=${LAB_DRIVERS:-c,rust}
# The DKMS module's own runs: the hmem path and the CXL path.
DKMS_SCENARIOS=(a-uncommitted e-committed)
# On Debian's kernel, the scenarios whose outcome hangs on how that kernel is built and loads
# its modules (modprobe, autoload, kexec, module orders, reloads), with both owners, split
# ranges and a seed tree; the whole matrix runs on the lab kernel. All of them fit CI's
# 90 minutes only on a fast machine: scripts/lab run --kernel stock --all runs them all.
STOCK_SCENARIOS=(a-uncommitted e-committed f-reload-two-windows m-mixed-coverage p-reload-no-cxl-acpi
	q-load-orders x-seed-s20-memmap-no-cxl)
# The CXL-aware settle (cxl_settle, opt-in) where it changes the wait: every scenario whose walk
# defers a range while CXL devices probe, committed or not, late or missing, with slow unrelated
# probes; scripts/lab run --all --driver c,rust,rust:cxl_settle=10 runs the whole matrix so.
SETTLE_SCENARIOS=(a-uncommitted d-cxl-test e-committed i-committed-interleave k-committed-no-cxl-pci
	m-mixed-coverage q-load-orders t-rebind-pending x-seed-s2-auto-region-covers-sr y-settle-slow-probe)
# Where split=1 or reload=reevaluate changes the outcome, and where it must not.
OPTION_SCENARIOS=(b-two-windows e-committed f-reload-two-windows g-cxl-test-reload j-sr-larger-than-region
	m-mixed-coverage n-sr-spans-windows p-reload-no-cxl-acpi u-sr-straddles-window-edge
	v-sr-region-and-free-space x-seed-s14-sr-spans-two-windows)
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
scripts/lab run --driver rust:cxl_settle=10 --out "$OUT/settle" "${SETTLE_SCENARIOS[@]}" |
	tee "$OUT/settle-scenarios.log"
t5=$(now)
scripts/lab run --kernel stock --driver "$DRIVERS" --out "$OUT/stock" "${STOCK_SCENARIOS[@]}" |
	tee "$OUT/stock-scenarios.log"
t6=$(now)
scripts/lab run --kernel stock --driver c,dkms --out "$OUT/stock-dkms" "${DKMS_SCENARIOS[@]}" |
	tee "$OUT/stock-dkms-scenarios.log"
t7=$(now)
# The module's own parameters (Documentation/parameters.rst), judged by the scenarios'
# [[variant]] expectations: the defaults ran above.
scripts/lab run --driver rust:split=1,reload=reevaluate,summary=1 --out "$OUT/options" \
	"${OPTION_SCENARIOS[@]}" | tee "$OUT/options-scenarios.log"
scripts/lab run --driver rust:deferral_timeout=1 --out "$OUT/watchdog" w-deferral-watchdog |
	tee "$OUT/watchdog-scenarios.log"
t7b=$(now)
scripts/lab stress --driver "$DRIVERS" --out "$OUT/stress" --cycles 20 --boots 1 --orders 3 \
	--max-k 12 --deferred-k 1,3 | tee "$OUT/stress.log"
stress_rc=${PIPESTATUS[0]}
t8=$(now)

read -r unit_pass unit_fail < <(sed -n 's/^unit: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$OUT/unit.log")
unit_pass=${unit_pass:-0} unit_fail=${unit_fail:-$((unit_rc != 0))}
scen_pass=0 scen_fail=0
for log in scenarios settle-scenarios stock-scenarios stock-dkms-scenarios options-scenarios watchdog-scenarios; do
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
	"DKMS scenarios $((t7 - t6)) s, option scenarios $((t7b - t7)) s, stress slice $((t8 - t7b)) s," \
	"total $((t8 - t0)) s"
echo "check: $((unit_pass + scen_pass)) passed, $((unit_fail + scen_fail)) failed"
[ "$unit_fail" -eq 0 ] && [ "$scen_fail" -eq 0 ] && [ "$unit_rc" -eq 0 ]
