#!/usr/bin/env bash
# make check: set up the host, build (or reuse) the lab kernel and Debian's stock kernel with
# its trixie build root, run the unit tests and every scenario on the lab kernel with every
# available driver; then, in this order and each only while CI's time allows (below): a
# representative set on the stock kernel with Debian's C dax_hmem and ours, the DKMS-installed
# module on the stock kernel, the module's opt-in parameters on the scenarios they change, the
# CXL-aware settle on the deferral scenarios, and a bounded slice of make stress (the first 6
# fault-injection steps of each task-context entry point, two deferred-decision boots, 10-cycle
# loops, one fuzz boot of two orders, every hostile case). Prints the timings and one closing
# line 'check: N passed, N failed, N parts skipped'.
#
# The time budget: CI stops a run after 90 minutes, and its hosts run TCG guests 1.7 to 5
# times slower than the machine these parts were timed on. The unit tests and the parity
# matrix always run. A later part runs only if, at the speed the matrix showed, it is expected
# to end within LAB_CHECK_BUDGET seconds (default 4800) of the start; otherwise the part is
# named as skipped, which a reader of CI's log sees in the closing line.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
cd "$LAB_ROOT"

OUT=${LAB_OUT:-$LAB_ROOT/out}
DRIVERS=${LAB_DRIVERS:-c,rust}
BUDGET=${LAB_CHECK_BUDGET:-4800}
# The DKMS module's own runs: the hmem path and the CXL path.
DKMS_SCENARIOS=(a-uncommitted e-committed)
# On Debian's kernel, the scenarios whose outcome hangs on how that kernel is built and loads
# its modules: autoload on both paths, a reload, module load orders over kexec. The whole
# matrix runs on the lab kernel; scripts/lab run --kernel stock --all runs it on Debian's.
STOCK_SCENARIOS=(a-uncommitted e-committed f-reload-two-windows q-load-orders)
# Where split=1 or reload=reevaluate changes the outcome, and where it must not;
# Documentation/parameters.rst names all the scenarios with [[variant]]s.
OPTION_SCENARIOS=(e-committed f-reload-two-windows j-sr-larger-than-region n-sr-spans-windows
	u-sr-straddles-window-edge v-sr-region-and-free-space)
# The CXL-aware settle (cxl_settle, opt-in) where it changes the wait: a deferred range over an
# uncommitted, a committed and a cxl_test region, one walk over both owners, and slow unrelated
# probes. scripts/lab run --all --driver c,rust,rust:cxl_settle=10 runs the whole matrix so.
SETTLE_SCENARIOS=(a-uncommitted d-cxl-test e-committed m-mixed-coverage y-settle-slow-probe)
# Each later part's wall time in seconds, with two guests at once, on the machine where the
# parity matrix took MATRIX_SECONDS: the budget scales them by the matrix's time here.
MATRIX_SECONDS=590
declare -A PART_SECONDS=([stock]=90 [dkms]=50 [options]=70 [settle]=80 [stress]=190)

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
matrix_seconds=$((t5 - t4 > 1 ? t5 - t4 : 1))

skipped=()
timings=()
# part NAME LOG COMMAND...: run a later part if the budget allows it, its output to $OUT/LOG.log.
part() {
	local name=$1 log=$2 start expected
	shift 2
	start=$(now)
	expected=$((PART_SECONDS[$name] * matrix_seconds / MATRIX_SECONDS))
	if [ $((start - t0 + expected)) -gt "$BUDGET" ]; then
		echo "check: skipped $name: expected to take ${expected} s, with $((start - t0)) s of the ${BUDGET} s budget gone"
		skipped+=("$name")
		echo "skipped" >"$OUT/$log.log"
		return 0
	fi
	"$@" | tee "$OUT/$log.log"
	timings+=("$name $(($(now) - start)) s")
}

part stock stock-scenarios \
	scripts/lab run --kernel stock --driver "$DRIVERS" --out "$OUT/stock" "${STOCK_SCENARIOS[@]}"
part dkms stock-dkms-scenarios \
	scripts/lab run --kernel stock --driver c,dkms --out "$OUT/stock-dkms" "${DKMS_SCENARIOS[@]}"
# The module's own parameters (Documentation/parameters.rst), judged by the scenarios'
# [[variant]] expectations: the defaults ran above. The watchdog's own scenario goes with them.
part options options-scenarios bash -c 'scripts/lab run --driver rust:split=1,reload=reevaluate,summary=1 \
	--out "$0/options" "${@}"; scripts/lab run --driver rust:deferral_timeout=1 --out "$0/watchdog" \
	w-deferral-watchdog' "$OUT" "${OPTION_SCENARIOS[@]}"
part settle settle-scenarios \
	scripts/lab run --driver rust:cxl_settle=10 --out "$OUT/settle" "${SETTLE_SCENARIOS[@]}"
part stress stress scripts/lab stress --driver "$DRIVERS" --out "$OUT/stress" --cycles 10 --boots 1 \
	--orders 2 --max-k 6 --deferred-k 1,3

read -r unit_pass unit_fail < <(sed -n 's/^unit: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$OUT/unit.log")
unit_pass=${unit_pass:-0} unit_fail=${unit_fail:-$((unit_rc != 0))}
scen_pass=0 scen_fail=0
# A log with several "scenarios:" lines (the options part) counts each.
for log in scenarios stock-scenarios stock-dkms-scenarios options-scenarios settle-scenarios; do
	grep -qx skipped "$OUT/$log.log" && continue
	counts=$(sed -n 's/^scenarios: \([0-9]*\) passed, \([0-9]*\) failed.*$/\1 \2/p' "$OUT/$log.log")
	[ -n "$counts" ] || counts="0 1"
	while read -r p f; do
		scen_pass=$((scen_pass + p)) scen_fail=$((scen_fail + f))
	done <<<"$counts"
done
# The stress slice counts as one test per part; its table says which part failed.
if ! grep -qx skipped "$OUT/stress.log"; then
	read -r stress_fail < <(sed -n 's/^stress: \([0-9]*\) failures.*$/\1/p' "$OUT/stress.log")
	if [ "${stress_fail:-1}" -eq 0 ]; then
		scen_pass=$((scen_pass + 4))
	else
		scen_fail=$((scen_fail + 1))
	fi
fi
echo "timings: setup $((t1 - t0)) s, lab kernel $((t2 - t1)) s, stock kernel and build root $((t3 - t2)) s," \
	"unit tests $((t4 - t3)) s, parity matrix $((t5 - t4)) s${timings[*]+, ${timings[*]/%/,}}" \
	"total $(($(now) - t0)) s"
echo "check: $((unit_pass + scen_pass)) passed, $((unit_fail + scen_fail)) failed," \
	"${#skipped[@]} parts skipped${skipped[*]+ (${skipped[*]}: time budget)}"
[ "$unit_fail" -eq 0 ] && [ "$scen_fail" -eq 0 ] && [ "$unit_rc" -eq 0 ]
