#!/usr/bin/env bash
# make check: set up the host, build (or reuse) the lab kernel and Debian's stock kernel with
# its trixie build root, run the unit tests, every scenario on the lab kernel with every
# available driver, a representative set on the stock kernel with Debian's C dax_hmem and ours,
# and the DKMS-installed module on it; then, in this order and each only while the time budget
# allows (below): the module's opt-in parameters on the scenarios they change, the CXL-aware
# settle on the deferral scenarios, and a bounded slice of make stress (the first 6
# fault-injection steps of each task-context entry point, two deferred-decision boots, 10-cycle
# loops, one fuzz boot of two orders, every hostile case). Prints the timings, a line
# 'check-failed: PART: WHAT' for each part that failed (the failed tests or scenarios by name,
# or what is missing), a line 'check-failed-why: PART: SCENARIO: WHY' for each failed scenario
# (the first ten), and one closing line 'check: N passed, N failed, N parts skipped'.
#
# The time budget: CI stops a run after 90 minutes, and its hosts run TCG guests 1.7 to 5
# times slower than the machine the parts were timed on. An optional part runs only if, at the
# speed the parity matrix showed, it is expected to end within LAB_CHECK_BUDGET seconds
# (default 4800) of the start; a skipped part is named in the closing line. Every part also
# has a hard stop (LAB_CHECK_BUDGET + 300 s from the start), so that a hung guest fails the
# check with its closing line printed rather than leaving CI to kill it.
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
# Where split=1 or reload=reevaluate changes the outcome (their [[variant]]s, on the in-tree
# modules and on cxl_test), and where it must not.
OPTION_SCENARIOS=(e-committed f-reload-two-windows g-cxl-test-reload j-sr-larger-than-region
	n-sr-spans-windows u-sr-straddles-window-edge v-sr-region-and-free-space
	x-seed-s14-sr-spans-two-windows)
# The CXL-aware settle (cxl_settle, opt-in) where it changes the wait: a deferred range over an
# uncommitted, a committed and a cxl_test region, one walk over both owners, slow unrelated
# probes, a CXL device that never probes (the bound expires), and the rebind its variant
# changes. scripts/lab run --all --driver c,rust,rust:cxl_settle=10 runs the whole matrix so.
SETTLE_SCENARIOS=(a-uncommitted d-cxl-test e-committed k-committed-no-cxl-pci m-mixed-coverage
	t-rebind-pending y-settle-slow-probe)
# Each optional part's wall time in seconds, two guests at once, on the machine where the
# parity matrix (c,rust) took MATRIX_SECONDS; scaled by the matrix's time here, never below.
MATRIX_SECONDS=590
declare -A PART_SECONDS=([options]=110 [settle]=120 [stress]=190)
HARD_STOP=$((${LAB_CHECK_BUDGET:-4800} + 300))

mkdir -p "$OUT"
t0=$(now)
scripts/setup-host.sh || exit 1
t1=$(now)
scripts/build-kernel.sh >/dev/null || exit 1
t2=$(now)
scripts/stock-kernel.sh >/dev/null || exit 1
t3=$(now)

# bounded LOG COMMAND...: run COMMAND, its output also to $OUT/LOG.log, until the hard stop.
bounded() {
	local log=$1 rc left
	shift
	left=$((t0 + HARD_STOP - $(now)))
	timeout -k 30 $((left > 1 ? left : 1)) "$@" | tee "$OUT/$log.log"
	rc=${PIPESTATUS[0]}
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		# Counted below: its log lacks its closing line.
		echo "check-budget: $log stopped at the hard stop, $HARD_STOP s after the start"
	fi
}

bounded unit scripts/tests/run.py
t4=$(now)
bounded scenarios scripts/lab run --all --driver "$DRIVERS" --out "$OUT"
t5=$(now)
matrix_seconds=$((t5 - t4 > MATRIX_SECONDS ? t5 - t4 : MATRIX_SECONDS))
bounded stock-scenarios scripts/lab run --kernel stock --driver "$DRIVERS" --out "$OUT/stock" \
	"${STOCK_SCENARIOS[@]}"
bounded stock-dkms-scenarios scripts/lab run --kernel stock --driver c,dkms --out "$OUT/stock-dkms" \
	"${DKMS_SCENARIOS[@]}"
t6=$(now)

skipped=()
timings=()
# optional NAME DIR COMMAND...: run an optional part if the budget allows it, its output in
# $OUT/NAME.log and its runs in $OUT/DIR; a skipped part's DIR is removed, so that no earlier
# result stands for it.
optional() {
	local name=$1 dir=$2 start expected
	shift 2
	start=$(now)
	expected=$((PART_SECONDS[$name] * matrix_seconds / MATRIX_SECONDS))
	if [ $((start - t0 + expected)) -gt "${LAB_CHECK_BUDGET:-4800}" ]; then
		echo "check-budget: skipped $name: expected to take ${expected} s, with $((start - t0)) s" \
			"of the ${LAB_CHECK_BUDGET:-4800} s budget gone"
		skipped+=("$name")
		rm -rf "${OUT:?}/$dir"
		return 0
	fi
	bounded "$name" "$@"
	timings+=("$name $(($(now) - start)) s")
}

# The module's own parameters (Documentation/parameters.rst), judged by the scenarios'
# [[variant]] expectations (the defaults ran above); the watchdog's scenario goes with them.
# shellcheck disable=SC2016
optional options options bash -c 'out=$1; shift
	scripts/lab run --driver rust:split=1,reload=reevaluate,summary=1 --out "$out/split" "$@"
	scripts/lab run --driver rust:deferral_timeout=1 --out "$out/watchdog" w-deferral-watchdog' \
	options "$OUT/options" "${OPTION_SCENARIOS[@]}"
optional settle settle scripts/lab run --driver rust:cxl_settle=10 --out "$OUT/settle" \
	"${SETTLE_SCENARIOS[@]}"
optional stress stress scripts/lab stress --driver "$DRIVERS" --out "$OUT/stress" --cycles 10 \
	--boots 1 --orders 2 --max-k 6 --deferred-k 1,3

# What failed, by part, for the closing lines: CI shows only the end of the output.
failures=()
read -r unit_pass unit_fail unit_names < <(sed -n \
	's/^unit: \([0-9]*\) passed, \([0-9]*\) failed\( \[\(.*\)\]\)\{0,1\}$/\1 \2 \4/p' "$OUT/unit.log")
# No closing line (the tests crashed or were stopped) counts as a failure.
unit_pass=${unit_pass:-0} unit_fail=${unit_fail:-1}
# No test found is no evidence either.
[ $((unit_pass + unit_fail)) -gt 0 ] || unit_fail=1
[ "$unit_fail" -eq 0 ] || failures+=("unit: ${unit_names:-no closing line, or no test ran}")
scen_pass=0 scen_fail=0 reasons=()
# Each scenario log must end its runs with as many "scenarios:" lines as it has runs (the
# options part: two); a run that printed none (it crashed) counts as a failure.
declare -A RUNS=([scenarios]=1 [stock-scenarios]=1 [stock-dkms-scenarios]=1 [options]=2 [settle]=1)
for log in scenarios stock-scenarios stock-dkms-scenarios options settle; do
	[[ " ${skipped[*]} " == *" $log "* ]] && continue
	lines=0
	names=
	while read -r p f named; do
		scen_pass=$((scen_pass + p)) scen_fail=$((scen_fail + f)) lines=$((lines + 1))
		[ "$f" -eq 0 ] || names="${names:+$names, }${named:-$f unnamed}"
	done < <(sed -n 's/^scenarios: \([0-9]*\) passed, \([0-9]*\) failed\( \[\([^]]*\)\]\)\{0,1\}.*$/\1 \2 \4/p' \
		"$OUT/$log.log")
	if [ "$lines" -lt "${RUNS[$log]}" ]; then
		scen_fail=$((scen_fail + RUNS[$log] - lines))
		names="${names:+$names, }$((RUNS[$log] - lines)) run(s) without a closing line"
	fi
	[ -z "$names" ] || failures+=("$log: $names")
	# Why, one line per failed scenario (a timeout says where its console stopped).
	[ -z "$names" ] || mapfile -t -O "${#reasons[@]}" reasons < <(sed -n "s/^failed: /$log: /p" "$OUT/$log.log")
done
# The stress slice counts as one test per part; its table says which part failed.
if [[ " ${skipped[*]} " != *" stress "* ]]; then
	read -r stress_fail < <(sed -n 's/^stress: \([0-9]*\) failures.*$/\1/p' "$OUT/stress.log")
	if [ "${stress_fail:-1}" -eq 0 ]; then
		scen_pass=$((scen_pass + 4))
	else
		scen_fail=$((scen_fail + 1))
		failures+=("stress: ${stress_fail:-no closing line}${stress_fail:+ failures} (its table names the part)")
	fi
fi
echo "timings: setup $((t1 - t0)) s, lab kernel $((t2 - t1)) s, stock kernel and build root $((t3 - t2)) s," \
	"unit tests $((t4 - t3)) s, parity matrix $((t5 - t4)) s, stock and DKMS $((t6 - t5)) s,${timings[*]+ ${timings[*]/%/,}}" \
	"total $(($(now) - t0)) s"
for f in "${failures[@]}"; do
	echo "check-failed: $f"
done
# At most ten, as the last lines are all CI shows.
for r in "${reasons[@]:0:10}"; do
	echo "check-failed-why: $r"
done
[ "${#reasons[@]}" -le 10 ] || echo "check-failed-why: and $((${#reasons[@]} - 10)) more (the parts' logs in $OUT)"
parts=parts
[ "${#skipped[@]}" -eq 1 ] && parts=part
echo "check: $((unit_pass + scen_pass)) passed, $((unit_fail + scen_fail)) failed," \
	"${#skipped[@]} $parts skipped${skipped[*]+ (${skipped[*]}: time budget)}"
[ "$unit_fail" -eq 0 ] && [ "$scen_fail" -eq 0 ]
