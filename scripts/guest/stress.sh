# Stress library: sourced by the stages that "lab stress" writes (scripts/labpy/stress.py).
# Each step appends one tab-separated record to $LAB_OUT/stress.tsv and marks the kernel log
# with "lab-stress: <step>", so that the host can cut the log into steps.
# shellcheck shell=sh

ST_TSV=$LAB_OUT/stress.tsv
ST_HOLD=lab-hold

st_record() {
	(
		IFS='	'
		echo "$*"
	) >>"$ST_TSV"
}

st_mark() {
	echo "lab-stress: $*" >/dev/kmsg
}

# Soft Reserved ranges, "START END" in address order, as the kernel reported them at boot.
st_sr_ranges() {
	dmesg | sed -n 's/.*\(user\|BIOS-e820\): \[mem \(0x[0-9a-f]*\)-\(0x[0-9a-f]*\)\][ ]*soft reserved.*/\2 \3/p' |
		sort -u
}

# Who owns each Soft Reserved range, "START=OWNER,...": hmem (a dax region under hmem.N),
# cxl (a dax region under a CXL region), none, or both joined by "+" when two own it.
st_owners() {
	for d in /sys/bus/dax/devices/*; do
		[ -e "$d/resource" ] || continue
		p=$(readlink -f "$d")
		size=$(cat "$p/../dax_region/size" 2>/dev/null) || continue
		start=$(cat "$d/resource")
		case "$p" in
		*/hmem.*/dax*) echo "hmem $start $size" ;;
		*/region*/dax_region*/dax*) echo "cxl $start $size" ;;
		*) echo "other $start $size" ;;
		esac
	done >/tmp/st-regions
	st_sr_ranges | while read -r a b; do
		printf '%s=' "$a"
		awk -v a="$((a))" -v b="$((b))" '
			{ s = $2 + 0; e = s + $3 - 1; if (s <= b && e >= a && !seen[$1]++) o = o (o ? "+" : "") $1 }
			END { print (o ? o : "none") }' /tmp/st-regions
	done | paste -s -d, -
}

# Unload dax_cxl and dax_hmem if loaded; 0 when both are gone.
st_unload() {
	grep -q '^dax_cxl ' /proc/modules && { rmmod dax_cxl || return 1; }
	grep -q '^dax_hmem ' /proc/modules && { rmmod dax_hmem || return 1; }
	return 0
}

# Load dax_cxl and let it settle, so that the owners read next are final. Its init only
# queues a work item, which waits for dax_hmem's deferred decision (dax_hmem_flush_work())
# and then registers the driver, whose probes are asynchronous. So wait (at most 30 s) for
# the driver and for a dax device under each CXL dax region; a note if they do not come.
st_flush() {
	grep -q '^dax_hmem ' /proc/modules || return 0
	modprobe dax_cxl
	st_wait 30 st_cxl_dax_settled ||
		st_record note flush "dax_cxl had not probed every CXL dax region after 30 s"
}

# st_wait SECONDS COMMAND...: run COMMAND every 0.1 s until it succeeds; 1 after SECONDS.
st_wait() {
	tenths=$(($1 * 10))
	shift
	until "$@"; do
		[ "$tenths" -gt 0 ] || return 1
		sleep 0.1
		tenths=$((tenths - 1))
	done
}

st_cxl_dax_settled() {
	[ -e /sys/bus/cxl/drivers/cxl_dax_region ] || return 1
	for dax_region in /sys/bus/cxl/devices/dax_region*; do
		[ -e "$dax_region" ] || continue
		ls -d "$dax_region"/dax*.* >/dev/null 2>&1 || return 1
	done
}

# The CXL stack and dax_hmem's dependencies, loaded and settled, without dax_hmem itself:
# autoload is off, or dax_cxl, autoloaded for the CXL region, would pull dax_hmem in. Nor
# dax_kmem: its hot-add under an hmem probe would put thousands of memory-hotplug
# allocations in the sweep, and those failure paths are kmem's, not dax_hmem's.
st_prepare() {
	lab_stop_hotplug
	modprobe -a cxl_acpi cxl_port cxl_pci cxl_mem
	# shellcheck disable=SC2046
	modprobe -a $(modprobe --show-depends dax_hmem | awk '$1 == "insmod" { print $2 }' | sed '$d' |
		sed 's,.*/,,; s,\.ko.*,,')
	lab_settle
}

# The file modprobe would load for dax_hmem (updates/ first).
st_dax_hmem_ko() {
	modprobe --show-depends dax_hmem | awk '$1 == "insmod" { f = $2 } END { print f }'
}

# The text of kmemleak's allocation hooks, "START END": kmemleak_alloc(), _percpu() and
# _vmalloc(), and what lies between them, which must be kmemleak's too (they are __ref, so
# in kmemleak.o's .ref.text; empty output otherwise). After every admitted slab allocation,
# kmemleak allocates its own metadata from a slab cache with the same stack below it, and
# its mem_pool absorbs that failure: it would be every other k. The fault filters reject
# stacks through these hooks (kmemleak_alloc() stays on the stack: the lab kernel has frame
# pointers, which keep sibling calls).
st_kmemleak_hooks() {
	sort /proc/kallsyms | awk '
		want && $1 != last { end = $1; want = 0 }
		start && !end && $3 !~ /kmemleak/ { bad = 1 }
		$3 == "kmemleak_alloc" || $3 == "kmemleak_alloc_percpu" || $3 == "kmemleak_vmalloc" {
			if (!start) start = $1
			n++
			last = $1
			want = 1
		}
		END { if (n == 3 && end && !bad) print "0x" start, "0x" end }'
}

# The stack filter of one fault attribute directory: st_fault_filter DIR START END admits
# stacks with an address in [START, END) and none in kmemleak's hooks; disarmed
# (probability 0) until the caller arms it. A note and 1 if the hooks cannot be found.
st_fault_filter() {
	# shellcheck disable=SC2046
	set -- "$@" $(st_kmemleak_hooks)
	if [ -z "${5:-}" ]; then
		st_record note faults "kmemleak's hooks not found in /proc/kallsyms, or not contiguous"
		return 1
	fi
	echo 0 >"$1/probability"
	echo N >"$1/task-filter"
	echo 32 >"$1/stacktrace-depth"
	echo "$2" >"$1/require-start"
	echo "$3" >"$1/require-end"
	echo "$4" >"$1/reject-start"
	echo "$5" >"$1/reject-end"
	echo N >"$1/ignore-gfp-wait"
	echo 2 >"$1/verbose"
}

# Fault injection: the filters admit allocations (slab and page) with a module's code on the
# stack: above the kernel image's _end, below MODULES_END. fail-nth does the counting.
st_fault_filters() {
	lo=0x$(awk '$3 == "_end" { print $1 }' /proc/kallsyms)
	for f in failslab fail_page_alloc; do
		st_fault_filter "/sys/kernel/debug/$f" "$lo" 0xffffffffff000000 || return 1
	done
	echo 0 >/sys/kernel/debug/fail_page_alloc/min-order
	echo N >/sys/kernel/debug/fail_page_alloc/ignore-gfp-highmem
}

# How long one fault step may take before the system counts as wedged.
ST_STEP_SECONDS=60

# Run "$@" with its output in /tmp/st-step, waiting at most ST_STEP_SECONDS; 124 if it has
# not returned by then. A task blocked in the kernel cannot be killed: it is left behind.
st_bounded() {
	"$@" >/tmp/st-step 2>&1 &
	pid=$!
	st_wait "$ST_STEP_SECONDS" st_exited "$pid" || return 124
	wait "$pid"
}

st_exited() {
	! kill -0 "$1" 2>/dev/null
}

# Step K of ENTRY hung: record it, and mark the boot wedged ($LAB_OUT/wedged), which
# lab_collect and lab_main read: nothing more can run in this boot.
st_wedged() {
	st_record fault "$1" "$2" hang "" ""
	st_record wedged "$1" "$2"
	echo "$1 k=$2" >"$LAB_OUT/wedged"
}

# One fail-nth step: st_fault_step ENTRY K ACTION...; records "fault ENTRY K injected
# errno owners". Returns 0 if the fault was injected, 1 if not, 2 if the step hung: then
# it records "wedged ENTRY K" and marks $LAB_OUT/wedged, and nothing more can run in this
# boot (the hung task holds its locks; even reading the dax devices' sizes would block).
st_fault_step() {
	entry=$1 k=$2
	shift 2
	st_mark "fault $entry k=$k"
	rc=0
	st_bounded fail-nth "$k" "$@" || rc=$?
	if [ "$rc" = 124 ]; then
		st_wedged "$entry" "$k"
		return 2
	fi
	res=$(cat /tmp/st-step)
	[ "$rc" = 0 ] || res="injected=? errno=?"
	st_flush
	inj=${res#injected=}
	inj=${inj%% *}
	st_record fault "$entry" "$k" "$inj" "${res##*errno=}" "$(st_owners)"
	[ "$inj" = 1 ] || return 1
}

# Sweep ENTRY for k = K0, K0 + 1, ... until a step injects nothing (up to k = MAX). Between
# steps, "reset" puts the system back: st_fault_sweep ENTRY MAX K0 RESET ACTION...
# Returns 2 if a step hung.
st_fault_sweep() {
	entry=$1 max=$2 k=$3 reset=$4
	shift 4
	while [ "$k" -le "$max" ]; do
		$reset
		step=0
		st_fault_step "$entry" "$k" "$@" || step=$?
		[ "$step" = 0 ] || return $((step == 2 ? 2 : 0))
		k=$((k + 1))
	done
	st_record note "$entry" "stopped at k=$max, still injecting"
}

st_reset_load() {
	st_unload
}

st_reset_probe() {
	grep -q '^dax_hmem ' /proc/modules || modprobe dax_hmem
	[ -e /sys/bus/platform/devices/hmem_platform.0/driver ] &&
		echo hmem_platform.0 >/sys/bus/platform/drivers/hmem_platform/unbind
	return 0
}

st_reset_hmem() {
	[ -e "/sys/bus/platform/devices/$ST_HMEM/driver" ] &&
		echo "$ST_HMEM" >/sys/bus/platform/drivers/hmem/unbind
	return 0
}

# After a sweep, the unload and reload that must still work.
st_reload_check() {
	st_mark "reload after $1"
	rc=0
	st_unload && modprobe dax_hmem && st_flush || rc=1
	st_record reload "$1" "$rc" "$(st_owners)"
}

# One task-context entry point's sweep from k = K0, then the unload and reload that must
# still work: st_fault_entry ENTRY MAX K0. Returns 2 if a step hung.
st_fault_entry() {
	entry=$1 max=$2 k0=$3
	drv=/sys/bus/platform/drivers
	case $entry in
	load)
		st_fault_sweep "$entry" "$max" "$k0" st_reset_load insmod "$(st_dax_hmem_ko)" || return 2
		;;
	hmem_platform-bind)
		st_fault_sweep "$entry" "$max" "$k0" st_reset_probe write "$drv/hmem_platform/bind" \
			hmem_platform.0 || return 2
		[ -e /sys/bus/platform/devices/hmem_platform.0/driver ] ||
			echo hmem_platform.0 >"$drv/hmem_platform/bind"
		;;
	*-bind)
		ST_HMEM=${entry%-bind}
		st_fault_sweep "$entry" "$max" "$k0" st_reset_hmem write "$drv/hmem/bind" "$ST_HMEM" || return 2
		[ -e "/sys/bus/platform/devices/$ST_HMEM/driver" ] || echo "$ST_HMEM" >"$drv/hmem/bind"
		;;
	esac
	st_reload_check "$entry"
}

# The task-context entries, in order: dax_hmem's load (init, hmem_platform probe, hmem
# probes of ranges outside CXL windows), a bind of hmem_platform.0, and a bind of each
# hmem.N. st_fault_tasks MAX [ENTRY K]: from ENTRY's step K on, to resume after a boot that
# wedged (the host does that); earlier entries are skipped.
st_fault_tasks() {
	max=$1 from=${2:-load} from_k=${3:-1}
	st_prepare
	st_fault_filters || return 1
	# A resumed sweep first loads and unloads once: the loads it resumes were reloads
	# (did_probe set), and so are its own.
	if [ "$from" != load ] || [ "$from_k" -gt 1 ]; then
		modprobe dax_hmem
		st_flush
		st_unload
	fi
	reached=0
	for entry in load hmem_platform-bind hmem.N-bind; do
		if [ "$entry" = hmem.N-bind ]; then
			grep -q '^dax_hmem ' /proc/modules || { modprobe dax_hmem && st_flush; }
			entry=$(cd /sys/bus/platform/devices && ls -d hmem.[0-9]* 2>/dev/null | sed 's/$/-bind/')
		fi
		for e in $entry; do
			k0=1
			if [ "$reached" = 0 ]; then
				[ "$e" = "$from" ] || continue
				reached=1 k0=$from_k
			fi
			st_fault_entry "$e" "$max" "$k0" || return 0
		done
	done
}

# The deferred decision, which runs on dax_hmem's workqueue: one boot per k. failslab fails
# the k-th slab allocation with dax_hmem's text on the stack (interval k, once), counted
# from the bind of hmem_platform.0 on, in kernel threads only (task-filter): the walk runs
# on a kworker, while the probe, which allocates in Rust (its report's records and their
# stage), runs in this shell's bind. So k counts the deferred walk's allocations for either
# driver; the task sweep covers the probe's.
st_fault_deferred() {
	k=$1
	st_prepare
	echo "$ST_HOLD" >/sys/bus/platform/devices/hmem_platform.0/driver_override
	modprobe dax_hmem
	text=$(awk '$4 == "[dax_hmem]" && ($2 == "t" || $2 == "T") { print $1 }' /proc/kallsyms | sort | sed -n '1p;$p')
	lo=0x$(echo "$text" | sed -n 1p)
	hi=$(printf '%#x' $((0x$(echo "$text" | sed -n 2p) + 0x1000)))
	d=/sys/kernel/debug/failslab
	st_fault_filter "$d" "$lo" "$hi" || return 1
	# kthreadd and its children: a kworker it starts later inherits make-it-fail at fork.
	for task in /proc/2 $(grep -l '^PPid:[[:space:]]*2$' /proc/[0-9]*/status 2>/dev/null | sed 's,/status$,,'); do
		echo 1 >"$task/make-it-fail" 2>/dev/null || :
	done
	echo Y >"$d/task-filter"
	echo "$k" >"$d/interval"
	echo 1 >"$d/times"
	echo 100 >"$d/probability"
	echo >/sys/bus/platform/devices/hmem_platform.0/driver_override
	st_mark "fault deferred k=$k"
	echo hmem_platform.0 >/sys/bus/platform/drivers/hmem_platform/bind
	# The walk runs on a kworker and may hang there (the dax core's self-deadlock). dax_cxl
	# registers its driver only once dax_hmem_flush_work() returns: until then the walk has
	# not ended, and after ST_STEP_SECONDS it counts as hung (an unload would block for good).
	modprobe dax_cxl
	if ! st_wait "$ST_STEP_SECONDS" [ -e /sys/bus/cxl/drivers/cxl_dax_region ]; then
		echo 0 >"$d/probability"
		st_wedged deferred "$k"
		return 0
	fi
	st_flush
	echo 0 >"$d/probability"
	inj=$(($(cat "$d/times") == 0))
	st_record fault deferred "$k" "$inj" 0 "$(st_owners)"
	st_reload_check deferred
}

# Load/unload and unbind/bind loops: N cycles each of hmem.N, hmem_platform.0 and the module
# (with dax_cxl), in that order; records "loop WHAT CYCLES SECONDS FAILED owners".
st_loop() {
	what=$1 n=$2
	shift 2
	st_mark "loop $what x$n"
	t0=$(cut -d' ' -f1 /proc/uptime)
	i=0 failed=0
	while [ "$i" -lt "$n" ]; do
		"$@" || failed=$((failed + 1))
		i=$((i + 1))
	done
	t1=$(cut -d' ' -f1 /proc/uptime)
	st_record loop "$what" "$n" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')" \
		"$failed" "$(st_owners)"
}

st_cycle_hmem() {
	echo "$1" >/sys/bus/platform/drivers/hmem/unbind && echo "$1" >/sys/bus/platform/drivers/hmem/bind
}

st_cycle_hmem_platform() {
	echo hmem_platform.0 >/sys/bus/platform/drivers/hmem_platform/unbind &&
		echo hmem_platform.0 >/sys/bus/platform/drivers/hmem_platform/bind
}

st_cycle_module() {
	st_unload && modprobe dax_hmem && modprobe dax_cxl
}

st_loops() {
	n=$1
	st_record owners start "$(st_owners)"
	for h in /sys/bus/platform/devices/hmem.*; do
		[ -e "$h" ] && st_loop "${h##*/}" "$n" st_cycle_hmem "${h##*/}"
	done
	st_loop hmem_platform.0 "$n" st_cycle_hmem_platform
	st_loop module "$n" st_cycle_module
}

# Load-order fuzzing: load the modules one at a time in the order given, each settled, with
# no autoload (lab_stop_hotplug), then record the owners:
# "order ORDER owners".
st_order() {
	lab_stop_hotplug
	st_mark "order $*"
	for m in "$@"; do
		modprobe "$m" || st_record note order "modprobe $m failed"
		lab_settle 30 || :
	done
	st_flush
	st_record order "$*" "$(st_owners)"
}

# Unload every module of the order, for the next order in the same boot: users first
# (cxl_pci links against cxl_mem).
st_unload_all() {
	st_unload || st_record note order "unload of dax_cxl or dax_hmem failed"
	for m in kmem cxl_pci cxl_mem cxl_acpi cxl_port; do
		if grep -q "^$m " /proc/modules; then
			rmmod "$m" || st_record note order "rmmod $m failed"
		fi
	done
	lab_settle 30 || :
}

# Hostile input, as root can give it; one case per boot, because hmem.c may oops on it.
# Records "hostile CASE TARGET rc message owners".
st_hostile() {
	case=$1
	plat=/sys/bus/platform
	st_mark "hostile $case"
	case $case in
	foreign-to-hmem | foreign-to-hmem_platform)
		drv=${case#foreign-to-}
		target=$(st_foreign_device) || { st_record note "$case" "no unbound platform device"; return 1; }
		st_bind_override "$target" "$drv"
		;;
	hmem-to-hmem_platform)
		target=hmem.0
		echo "$target" >"$plat/drivers/hmem/unbind"
		st_bind_override "$target" hmem_platform
		;;
	hmem_platform-to-hmem)
		target=hmem_platform.0
		echo "$target" >"$plat/drivers/hmem_platform/unbind"
		st_bind_override "$target" hmem
		;;
	bind-race)
		# Two shells, each cycling a device as fast as it can: hmem_platform.0 (which
		# removes and re-creates hmem.0) and hmem.0 itself.
		target="hmem_platform.0 hmem.0"
		st_race hmem_platform.0 hmem_platform &
		st_race hmem.0 hmem &
		wait
		# Either may be bound already.
		echo hmem_platform.0 >"$plat/drivers/hmem_platform/bind" 2>/dev/null || :
		sleep 1
		echo hmem.0 >"$plat/drivers/hmem/bind" 2>/dev/null || :
		st_result 0 "raced 200 cycles each"
		;;
	region-idle-garbage)
		target=region_idle
		p=/sys/module/dax_hmem/parameters/region_idle
		msg=
		for v in garbage 2 -1 "" 0x1 yesno "$(head -c 5000 /dev/zero | tr '\0' x)"; do
			if printf '%s' "$v" >"$p" 2>/dev/null; then r="ok, now $(cat "$p")"; else r=refused; fi
			msg="$msg '$(echo "$v" | cut -c1-8)': $r;"
		done
		st_result 0 "value $(cat "$p") after:$msg"
		;;
	*)
		st_record note "$case" "unknown hostile case"
		return 1
		;;
	esac
}

# A platform device that no driver has bound.
st_foreign_device() {
	for d in /sys/bus/platform/devices/*; do
		case ${d##*/} in hmem*) continue ;; esac
		[ -e "$d/driver" ] || { echo "${d##*/}"; return 0; }
	done
	return 1
}

# driver_override DEVICE to DRIVER, then bind it; the result is the bind's.
st_bind_override() {
	echo "$2" >"/sys/bus/platform/devices/$1/driver_override"
	if echo "$1" >"/sys/bus/platform/drivers/$2/bind" 2>/tmp/st-err; then
		st_result 0 "bound"
	else
		st_result 1 "$(sed 's/.*: //' /tmp/st-err)"
	fi
}

st_result() {
	sleep 1
	st_record hostile "$case" "$target" "$1" "$2" "$(st_owners)"
}

st_race() {
	i=0
	while [ "$i" -lt 200 ]; do
		echo "$1" >"/sys/bus/platform/drivers/$2/unbind"
		echo "$1" >"/sys/bus/platform/drivers/$2/bind"
		i=$((i + 1))
	done 2>/dev/null
}
