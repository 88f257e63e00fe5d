# Guest library: sourced by /init and available to every scenario stage.
# shellcheck shell=sh

LAB_IN=/lab/in
LAB_OUT=/lab/out
# Where lab_log writes, and the proc a hang report reads: the unit tests' own.
LAB_CONSOLE=${LAB_CONSOLE:-/dev/console}
LAB_PROC=${LAB_PROC:-/proc}
# Each stage owns a 64 MiB slot of the output disk; the host reads stage N at (N-1)*64 MiB.
LAB_SLOT_MIB=64

# Debian's busybox shell runs its own applets before PATH, so a bare "modprobe" would be
# busybox's applet, not the kmod that request_module() runs. Stages get kmod's.
modprobe() { /sbin/modprobe "$@"; }
rmmod() { /sbin/rmmod "$@"; }
insmod() { /sbin/insmod "$@"; }
lsmod() { /sbin/lsmod "$@"; }

# Hundredths of a second since boot (/proc/uptime has two decimals).
lab_uptime_cs() {
	read -r up _ </proc/uptime
	cs=${up#*.}
	echo $((${up%.*} * 100 + ${cs#0}))
}

# Sleep until $1 hundredths of a second since boot.
lab_sleep_until() {
	left=$(($1 - $(lab_uptime_cs)))
	[ "$left" -gt 0 ] && sleep "$((left / 100)).$((left % 100 / 10))$((left % 10))"
	return 0
}

lab_log() {
	echo "lab: [$(cut -d' ' -f1 /proc/uptime)] $*" >>"$LAB_CONSOLE"
}

# The host can only kill a hung guest. So a stage still running after $LAB_HANG_REPORT
# seconds (the host sets it below its timeout) says where it is, on the console that the host
# keeps: each task in uninterruptible sleep with its kernel stack, then one line with the step
# it is at and those tasks' innermost frames (make check repeats that line if the guest then
# times out). A slow stage that goes on to finish in time passes.
lab_watch_for_hang() {
	[ -n "${LAB_HANG_REPORT:-}" ] || return 0
	# Not a job of this shell, so that no "wait" of it waits for the watcher.
	( (sleep "$LAB_HANG_REPORT" && lab_report_hang) &)
}

lab_report_hang() {
	blocked=
	for dir in "$LAB_PROC"/[0-9]*; do
		grep -q '^State:[[:space:]]*D' "$dir/status" 2>/dev/null || continue
		comm=$(cat "$dir/comm" 2>/dev/null)
		{
			echo "lab: blocked: ${dir##*/} $comm"
			cat "$dir/stack"
		} >>"$LAB_CONSOLE" 2>&1
		# The frames below the scheduler's: what the task waits for, and who waits.
		frames=$(sed -n 's/^\[<[^>]*>\] \([^+ ]*\).*/\1/p' "$dir/stack" 2>/dev/null |
			grep -v -E '^(__schedule|schedule|schedule_[a-z_]*|io_schedule[a-z_]*)$' |
			head -n 4 | tr '\n' '<')
		blocked="${blocked:+$blocked; }$comm (${frames%<})"
	done
	step=$(grep '^+ ' "$LAB_OUT/steps.log" 2>/dev/null | tail -n 1)
	lab_log "stage $LAB_STAGE still running after $LAB_HANG_REPORT s${step:+, at '${step#+ }'};" \
		"blocked: ${blocked:-no task}"
}

lab_cmdline_value() {
	for word in $(cat /proc/cmdline); do
		case "$word" in "$1="*) echo "${word#*=}" ;; esac
	done
}

# The disk the host attached with serial $1.
lab_disk() {
	for d in /sys/block/vd*; do
		[ "$(cat "$d/serial" 2>/dev/null)" = "$1" ] && echo "/dev/${d##*/}" && return 0
	done
	return 1
}

# Load drivers for the devices present at boot, as udev's coldplug pass does; one modprobe
# for all aliases, because each modprobe start costs a fraction of a second under TCG.
# Devices added later get their driver from lab-uevent, started in lab_main. The modaliases
# are those of bus devices, class devices (input) and the CPUs, read by glob: a find over
# /sys/devices costs seconds under TCG.
lab_coldplug() {
	# Aliases without a module fail, as under udev; that is not an error of the stage.
	# shellcheck disable=SC2046
	modprobe -a -b -q $(cat /sys/bus/*/devices/*/modalias /sys/class/*/*/modalias \
		/sys/devices/system/cpu/modalias 2>/dev/null | sort -u) || :
}

# True while a module load started by autoload is still running.
lab_loading_modules() {
	pidof modprobe kmod >/dev/null
}

# Module names and states of /proc/modules, read with shell builtins: every fork costs
# tens of milliseconds under TCG.
lab_module_states() {
	states=
	while read -r name _ _ _ state _; do states="$states $name:$state"; done </proc/modules
	echo "$states"
}

# Whether lab-uevent, if it runs, has handled every uevent the kernel has sent so far.
lab_uevents_read() {
	read -r pid 2>/dev/null <"$LAB_UEVENT_PID" && kill -0 "$pid" 2>/dev/null || return 0
	read -r sent </sys/kernel/uevent_seqnum
	read -r got <"$LAB_UEVENT_SEQNUM" || return 1
	[ "$got" -ge "$sent" ]
}

# Wait until module autoload is quiet: no uevent left unread, no modprobe running and
# /proc/modules unchanged for one second, polled every quarter second (bounded by $1
# seconds, default 60).
lab_settle() {
	polls=$((${1:-60} * 4))
	last=
	stable=0
	while [ "$polls" -gt 0 ]; do
		now=$(lab_module_states)
		if [ "$now" = "$last" ] && lab_uevents_read && ! lab_loading_modules; then
			stable=$((stable + 1))
			[ "$stable" -ge 4 ] && return 0
		else
			stable=0
		fi
		last=$now
		sleep 0.25
		polls=$((polls - 1))
	done
	lab_log "settle: module autoload still busy"
	return 1
}

# Run "$@" every quarter second until it succeeds, for at most $LAB_WAIT seconds (default 60).
lab_wait() {
	polls=$((${LAB_WAIT:-60} * 4))
	until "$@"; do
		polls=$((polls - 1))
		[ "$polls" -gt 0 ] || { lab_log "wait: '$*' still fails after ${LAB_WAIT:-60} s"; return 1; }
		sleep 0.25
	done
}

lab_log_count_at_least() {
	[ "$(dmesg | grep -cF "$1")" -ge "$2" ]
}

# Wait until the kernel log has at least $2 (default 1) lines containing $1, for at most $3
# seconds (default 60).
lab_wait_log() {
	LAB_WAIT=${3:-60} lab_wait lab_log_count_at_least "$1" "${2:-1}"
}

# Succeed only if "$@" fails; its output goes to the steps log.
lab_must_fail() {
	if "$@"; then
		echo "lab_must_fail: '$*' succeeded" >&2
		return 1
	fi
}

# Keep module $1 from loading from now on, whoever asks for it (request_module() from the
# kernel, the hotplug helper, a stage): remove its file, so modprobe cannot find it. The
# root file system is the initramfs, fresh at every boot. (kmod 30 ignored an install line
# in modprobe.d here.)
lab_block_module() {
	find /lib/modules -name "$1.ko*" -exec rm -f {} +
}

# The memdevs below the host bridges of root decoder $1, in the decoder's target order, as
# region creation wants them. QEMU gives a pxb-cxl host bridge the UID of its bus number.
lab_memdevs_of() {
	for id in $(tr ',' ' ' <"/sys/bus/cxl/devices/$1/target_list"); do
		hb=$(printf 'pci0000:%02x' "$id")
		for m in /sys/bus/cxl/devices/mem*; do
			case "$(readlink -f "$m")" in */"$hb"/*) echo "${m##*/}" ;; esac
		done
	done
}

# Unload dax_hmem, and dax_cxl first, which links against it.
lab_unload_dax_hmem() {
	if grep -q '^dax_cxl ' /proc/modules; then
		rmmod dax_cxl || return 1
	fi
	rmmod dax_hmem
}

# Unload dax_hmem (and dax_cxl), then load it again. The guest settles after every stage.
lab_reload_dax_hmem() {
	lab_unload_dax_hmem || return 1
	modprobe dax_hmem
}

# True when some dax device sits under a CXL region's dax region.
lab_cxl_dax_present() {
	for d in /sys/bus/dax/devices/*; do
		case "$(readlink -f "$d")" in */region*/dax_region*) return 0 ;; esac
	done
	return 1
}

# The endpoint decoder of memdev $1 (for example mem0 -> decoder3.0).
lab_endpoint_decoder() {
	for ep in /sys/bus/cxl/devices/endpoint*; do
		[ "$(basename "$(readlink "$ep/uport")")" = "$1" ] && echo "decoder${ep##*endpoint}.0" && return 0
	done
	return 1
}

# Create and commit a RAM region through the kernel's sysfs ABI (bookworm's cxl 76.1
# cannot create RAM regions). Usage: lab_create_ram_region ROOT_DECODER SIZE_PER_DEV MEMDEV...
# Memdevs must be given in the root decoder's target order. Prints the region name.
lab_create_ram_region() {
	root=/sys/bus/cxl/devices/$1
	per_dev=$2
	shift 2
	ways=$#
	region=$(cat "$root/create_ram_region") || return 1
	echo "$region" >"$root/create_ram_region" || return 1
	r=/sys/bus/cxl/devices/$region
	# A region interleaved by its window must use the window's granularity.
	cat "$root/interleave_granularity" >"$r/interleave_granularity" || return 1
	echo "$ways" >"$r/interleave_ways" || return 1
	echo $((per_dev * ways)) >"$r/size" || return 1
	pos=0
	for memdev in "$@"; do
		dec=$(lab_endpoint_decoder "$memdev") || return 1
		echo ram >"/sys/bus/cxl/devices/$dec/mode" || return 1
		echo "$per_dev" >"/sys/bus/cxl/devices/$dec/dpa_size" || return 1
		echo "$dec" >"$r/target$pos" || return 1
		pos=$((pos + 1))
	done
	echo 1 >"$r/commit" || return 1
	echo "$region" >/sys/bus/cxl/drivers/cxl_region/bind || return 1
	echo "$region"
}

# memmap= argument that lays Soft Reserved over CXL region $1: exactly, or with size $2
# from the region's start.
lab_memmap_over_region() {
	r=/sys/bus/cxl/devices/$1
	printf 'memmap=%s%%%s+0xefffffff\n' "${2:-$(cat "$r/size")}" "$(cat "$r/resource")"
}

# memmap= argument that lays Soft Reserved over root decoder (window) $1 at offset $2, of
# size $3.
lab_memmap_in_window() {
	printf 'memmap=%#x%%%#x+0xefffffff\n' "$(($3))" "$(($(cat "/sys/bus/cxl/devices/$1/start") + $2))"
}

# Record this stage, then kexec into the next one with the same kernel and initrd and the
# host's base arguments plus "$@". Committed decoders survive kexec, as after a BIOS.
lab_kexec() {
	next=$((LAB_STAGE + 1))
	args="$(cat "$LAB_IN/base-cmdline") lab.stage=$next $*"
	echo kexec >"$LAB_OUT/steps.rc"
	lab_finish_stage
	lab_log "kexec into stage $next: $args"
	exec kexec-file "$LAB_IN/bzImage" "$LAB_IN/initrd.cpio" "$args"
}

# kexec again, with this boot's memmap= arguments.
lab_kexec_again() {
	# shellcheck disable=SC2046
	lab_kexec $(tr ' ' '\n' </proc/cmdline | grep '^memmap=')
}

# One line per dax device: name, sysfs path, start, dax region size, device size, bound
# driver (- for none).
lab_collect_dax() {
	daxctl list -RD >"$1/daxctl-list.json" 2>"$1/daxctl-list.err"
	for d in /sys/bus/dax/devices/*; do
		[ -e "$d" ] || continue
		p=$(readlink -f "$d")
		drv=-
		[ -e "$d/driver" ] && drv=$(readlink "$d/driver") && drv=${drv##*/}
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "${d##*/}" "${p#/sys/devices}" \
			"$(cat "$d/resource")" "$(cat "$p/../dax_region/size" 2>/dev/null)" \
			"$(cat "$d/size")" "$drv"
	done >"$1/dax-devices.tsv"
}

# Start a kmemleak scan and wait for its end; nothing without kmemleak (Debian's kernel).
# Never false: lab_kexec collects from inside a stage's "set -e" steps.
lab_kmemleak_scan() {
	[ ! -w /sys/kernel/debug/kmemleak ] || echo scan >/sys/kernel/debug/kmemleak
}

lab_collect() {
	o=$LAB_OUT
	# kmemleak reports an object only once it is 5 s old when a scan starts, and only in a
	# scan that finds it unreferenced with the contents an earlier scan checksummed
	# (mm/kmemleak.c, with kmemleak.min_unref_scans=1, which kernel.py passes). So one scan
	# now, after the stage's last allocation, and one 5 s later: every allocation of the
	# stage is checked, the last one too. The collection fills part of the wait, and its own
	# short-lived allocations are too young to be reported.
	quiet=$(lab_uptime_cs)
	lab_kmemleak_scan
	cat /proc/iomem >"$o/proc-iomem.txt"
	cat /proc/modules >"$o/proc-modules.txt"
	# Which dax_hmem ran: the host tells C from Rust by the symbol names.
	grep -F '[dax_hmem]' /proc/kallsyms >"$o/dax_hmem-symbols.txt" || :
	cat /proc/cmdline >"$o/cmdline.txt"
	# Memdevs, decoders and regions; not "cxl list -v", which takes seconds on cxl_test.
	cxl list -MDR >"$o/cxl-list.json" 2>"$o/cxl-list.err"
	cxl list -R >"$o/cxl-list-regions.json" 2>>"$o/cxl-list.err"
	# A stress step that hung holds the dax locks for good (stress.sh marks it): reading the
	# dax devices would block too.
	if [ -e "$o/wedged" ]; then
		echo "skipped: a step hung ($(cat "$o/wedged"))" >"$o/daxctl-list.err"
		: >"$o/dax-devices.tsv"
	else
		lab_collect_dax "$o"
	fi
	for d in /sys/bus/platform/devices/hmem*; do
		[ -e "$d" ] && p=$(readlink -f "$d") && echo "${p#/sys/devices}"
	done >"$o/hmem-devices.txt"
	# The Rust module's disposition report (the C driver has none).
	report=/sys/kernel/debug/dax_hmem/disposition
	if [ -e "$report" ]; then cat "$report" >"$o/disposition.txt"; fi
	lab_log "collected; kmemleak scan"
	if [ -w /sys/kernel/debug/kmemleak ]; then
		lab_sleep_until $((quiet + 510))
		lab_kmemleak_scan
		cat /sys/kernel/debug/kmemleak >"$o/kmemleak.txt"
	else
		echo "kmemleak unavailable" >"$o/kmemleak.txt"
	fi
	dmesg >"$o/dmesg.txt"
}

# Write this stage's results into its slot on the output disk.
lab_finish_stage() {
	lab_collect
	out=$(lab_disk labout) || { lab_log "no output disk"; return 1; }
	tar -cf /tmp/stage.tar -C "$LAB_OUT" .
	dd if=/tmp/stage.tar of="$out" bs=1M seek=$(((LAB_STAGE - 1) * LAB_SLOT_MIB)) 2>/dev/null
	sync
	lab_log "stage $LAB_STAGE results written"
}

lab_disks_ready() {
	lab_disk labin >/dev/null && lab_disk labout >/dev/null
}

# Start module autoload for devices added from now on, as udev does: lab-uevent listens on the
# uevent netlink socket (the same on the lab's kernel and on Debian's, which has no
# CONFIG_UEVENT_HELPER) and runs modprobe for each new MODALIAS.
LAB_UEVENT_PID=/run/lab-uevent.pid
LAB_UEVENT_SEQNUM=/run/lab-uevent.seqnum
lab_start_hotplug() {
	rm -f "$LAB_UEVENT_PID"
	lab-uevent "$LAB_UEVENT_PID" "$LAB_UEVENT_SEQNUM" </dev/null >/dev/null 2>/dev/console &
	# Coldplug only once it listens, or uevents in between are lost.
	LAB_WAIT=10 lab_wait test -s "$LAB_UEVENT_PID"
}

# Stop module autoload: from now on, only stages and request_module() load modules.
# Then wait for lab-uevent to be gone and for every modprobe to end, its own among them.
lab_stop_hotplug() {
	read -r pid 2>/dev/null <"$LAB_UEVENT_PID" || return 0
	kill "$pid" 2>/dev/null
	rm -f "$LAB_UEVENT_PID"
	LAB_WAIT=60 lab_wait lab_hotplug_gone
}

lab_hotplug_gone() {
	! pidof lab-uevent modprobe kmod >/dev/null
}

lab_main() {
	LAB_STAGE=$(lab_cmdline_value lab.stage)
	LAB_STAGE=${LAB_STAGE:-1}
	mkdir -p "$LAB_IN" "$LAB_OUT"
	# virtio_blk is built into the lab's kernel and a module of Debian's.
	if ! lab_disks_ready; then
		modprobe -q -a virtio_pci virtio_blk
		LAB_WAIT=30 lab_wait lab_disks_ready
	fi
	in=$(lab_disk labin) || { lab_log "no input disk"; poweroff -f; }
	tar -xf "$in" -C "$LAB_IN" || { lab_log "bad input disk"; poweroff -f; }
	# The scenario defines stage1, stage2, ... and may set LAB_AUTOLOAD=0 to drive module
	# loading itself.
	LAB_AUTOLOAD=1
	. "$LAB_IN/scenario.sh"
	lab_watch_for_hang
	lab_log "stage $LAB_STAGE: coldplug"
	lab_start_hotplug
	[ "$LAB_AUTOLOAD" = 1 ] && lab_coldplug
	lab_settle
	lab_log "stage $LAB_STAGE: running"
	# -e: a stage fails at its first failing command.
	(set -ex; "stage$LAB_STAGE") >"$LAB_OUT/steps.log" 2>&1
	echo $? >"$LAB_OUT/steps.rc"
	lab_log "stage $LAB_STAGE: steps done"
	lab_settle
	lab_log "stage $LAB_STAGE: settled"
	lab_finish_stage
	if [ -e "$LAB_OUT/wedged" ]; then
		# poweroff would wait in device_shutdown() for a device lock that the hung task
		# holds. init's exit panics instead, and panic=-1 restarts at once without it
		# (QEMU runs with -no-reboot).
		lab_log "wedged: ending the boot through init's exit"
		exit 0
	fi
	poweroff -f
}
