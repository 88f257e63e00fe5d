#!/usr/bin/env bash
# make stress: the full reliability run. On the lab kernel: the fault-injection sweep (every
# k of every entry point, C and Rust), 200-cycle loops, load-order fuzzing (10 boots x 5
# orders per driver; STRESS_SEED replays) and the hostile sysfs cases. Then the KASAN kernel
# (built once, cached): the loops (50 cycles each: KASAN guests run about three times slower)
# and the hostile cases again, and a representative subset of the scenarios on both kernels,
# run alike (two guests at a time), whose times give KASAN's cost. Prints the tables and timings.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
cd "$LAB_ROOT"

OUT=${LAB_OUT:-$LAB_ROOT/out}/stress-run
DRIVERS=${LAB_DRIVERS:-c,rust}
KASAN_SCENARIOS=(c-no-cxl a-uncommitted e-committed m-mixed-coverage d-cxl-test t-rebind-pending)
seed=()
[ -n "${STRESS_SEED:-}" ] && seed=(--seed "$STRESS_SEED")
mkdir -p "$OUT"
t0=$(now)
scripts/setup-host.sh || exit 1
scripts/build-kernel.sh >/dev/null || exit 1
t1=$(now)
scripts/lab stress --driver "$DRIVERS" --out "$OUT/lab" "${seed[@]}" | tee "$OUT/stress-lab.log"
lab_rc=${PIPESTATUS[0]}
t2=$(now)
scripts/build-kernel.sh --variant kasan >/dev/null || exit 1
t3=$(now)
scripts/lab stress --kernel kasan --driver "$DRIVERS" --part loops,hostile --cycles 50 \
	--out "$OUT/kasan" |
	tee "$OUT/stress-kasan.log"
kasan_rc=${PIPESTATUS[0]}
t4=$(now)
scripts/lab run --driver "$DRIVERS" --out "$OUT/subset-lab" "${KASAN_SCENARIOS[@]}" >"$OUT/subset-lab.log"
sub_lab_rc=$?
scripts/lab run --kernel kasan --driver "$DRIVERS" --out "$OUT/subset-kasan" "${KASAN_SCENARIOS[@]}" |
	tee "$OUT/subset-kasan.log"
sub_kasan_rc=${PIPESTATUS[0]}
t5=$(now)
echo "KASAN cost (same scenarios, two guests at a time on both kernels, seconds per run):"
scripts/labpy/kasan_cost.py "$OUT/subset-lab" "$OUT/subset-kasan" "${KASAN_SCENARIOS[@]}"
echo "timings: lab stress $((t2 - t1)) s, KASAN kernel build $((t3 - t2)) s, KASAN stress $((t4 - t3)) s," \
	"scenario subset on both kernels $((t5 - t4)) s, total $((t5 - t0)) s"
[ "$lab_rc" -eq 0 ] && [ "$kasan_rc" -eq 0 ] && [ "$sub_lab_rc" -eq 0 ] && [ "$sub_kasan_rc" -eq 0 ]
