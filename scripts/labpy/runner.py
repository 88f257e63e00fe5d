"""Runs (scenario, driver) pairs and writes each run's directory and summary."""

import hashlib
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

from . import analysis, compare, drivers, guest, paths
from .errors import LabError, QemuCrashed

# no_timer_check: under TCG on a loaded host, the IO-APIC timer check can miss its ticks and
# panic the boot ("IO-APIC + timer doesn't work!"), seen with the KASAN kernel.
BASE_CMDLINE = ("console=ttyS0 rdinit=/init panic=-1 oops=panic memhp_default_state=offline "
                "log_buf_len=4M no_timer_check dax_hmem.dyndbg=+p")
SR_TYPE = "0xefffffff"  # E820_TYPE_SOFT_RESERVED
DISCOVERY_TIMEOUT = 180
# A stage still running after this share of the run's timeout per stage says where it hangs,
# with time left to say it before the host kills the guest.
HANG_REPORT_SHARE = 0.8
COMMAND_LINE_SIZE = 2048  # arch/x86/include/asm/setup.h, with its NUL


def _qemu_version():
    out = subprocess.run([guest.QEMU, "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "?"


def parse_windows(text):
    """{index: (start, size)} from the discovery boot's "INDEX START SIZE" lines; a line of
    any other shape (a decoder that vanished, an error message) is not a window."""
    found = {}
    for line in text.splitlines():
        m = re.fullmatch(r"(\d+) (0x[0-9a-fA-F]+|\d+) (0x[0-9a-fA-F]+|\d+)", line.strip())
        if m:
            found[int(m.group(1))] = (int(m.group(2), 0), int(m.group(3), 0))
    return found


def _memsize(n):
    """n as memparse() reads it, in the largest unit that divides it (0x1000M is 4G)."""
    for shift, unit in ((30, "G"), (20, "M"), (10, "K")):
        if n and n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return f"{n:#x}"


class Lab:
    def __init__(self, kernel, out_dir, timeout=None, extra_cmdline="", icount=False):
        self.kernel = kernel
        # Guest time counted in instructions (guest.ICOUNT), for make bench's timestamps.
        self.icount = icount
        # Kernel arguments for every boot of this lab, after the kernel's own (make bench:
        # initcall_debug, for probe and initcall timestamps).
        self.extra_cmdline = extra_cmdline
        self.out = Path(out_dir)
        self.work = self.out / ".work"
        self.timeout = timeout
        # Initramfs builds and window discoveries, made once each: a result, or the LabError it
        # failed with, so that parallel runs neither redo nor retry it (they share build roots).
        self._once = {}

    # -- inputs ------------------------------------------------------------------------

    def _made_once(self, key, make):
        if key not in self._once:
            try:
                self._once[key] = make()
            except LabError as e:
                self._once[key] = e
        if isinstance(self._once[key], LabError):
            raise self._once[key]
        return self._once[key]

    def initrd(self, driver, modules):
        name = drivers.build_name(driver)
        return self._made_once(("initrd", name, modules), lambda: self._build_initrd(driver, modules))

    def _build_initrd(self, driver, modules):
        self.work.mkdir(parents=True, exist_ok=True)
        path = self.work / f"initrd-{drivers.build_name(driver)}-{modules}.cpio"
        overlays = driver.overlays(self.kernel, modules, self.work)
        done = subprocess.run([str(paths.SCRIPTS / "build-initramfs.sh"), str(self.kernel.root),
                               str(path), *map(str, overlays)], capture_output=True, text=True)
        if done.returncode:
            raise LabError(done.stderr.strip().splitlines()[-1] if done.stderr.strip()
                           else "initramfs build failed")
        return path

    def windows(self, topology):
        """{index: (start, size)} of the topology's CXL windows, learned once from a
        discovery boot and cached per topology and QEMU. The windows are QEMU's (its CFMWS in
        the CEDT), so every kernel shares one discovery."""
        if not topology.cxl:
            return {}
        return self._made_once(("windows", topology.name), lambda: self._discover_windows(topology))

    def _discover_windows(self, topology):
        key = hashlib.sha256(json.dumps([topology.qemu_args(), _qemu_version()]).encode()).hexdigest()[:16]
        cache = paths.CACHE / "windows" / f"{topology.name}-{key}.json"
        if cache.exists():
            return {int(k): tuple(v) for k, v in json.loads(cache.read_text()).items()}
        run_dir = self.work / f"discover-{topology.name}"
        script = ("stage1() {\n  for d in /sys/bus/cxl/devices/decoder0.*; do\n"
                  "    [ -e $d/start ] || continue\n"
                  "    echo \"${d##*.} $(cat $d/start) $(cat $d/size)\"\n"
                  "  done > $LAB_OUT/windows.txt\n}\n")
        base = self.kernel_cmdline()
        result = guest.run(kernel=self.kernel, initrd=self.initrd(drivers.CDriver(), "in-tree"), topology=topology,
                           cmdline=base + " lab.stage=1", files={"scenario.sh": script, "base-cmdline": base},
                           stages=1, timeout=DISCOVERY_TIMEOUT, run_dir=run_dir)
        if result.timed_out or not result.stages:
            raise LabError(f"window discovery for topology {topology.name} failed "
                           f"(console log: {run_dir / 'console.log'})")
        found = parse_windows(result.stages[0].get("windows.txt", ""))
        if not found:
            raise LabError(f"topology {topology.name} has cxl=true but no CXL window was found "
                           f"(console log: {run_dir / 'console.log'})")
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(found))
        return found

    def soft_reserved_args(self, scenario):
        """The kernel arguments that lay the scenario's Soft Reserved ranges: memmap= over
        windows and addresses, and for cxl_test's mocked range cut in pieces, its
        hmem_test_ranges= (kmod's modprobe takes module options from the command line)."""
        args, cxl_test = [], []
        windows = None
        for sr in scenario.soft_reserved:
            if sr.kind == "window":
                windows = windows if windows is not None else self.windows(scenario.topology)
                if sr.window not in windows:
                    raise LabError(f"scenario {scenario.name}: topology has no CXL window {sr.window}")
                start, size = windows[sr.window]
                base = start + sr.offset
                last = base + sr.size - 1
                inside = [i for i, (s, n) in windows.items() if s <= last < s + n]
                if base < 0:
                    raise LabError(f"scenario {scenario.name}: Soft Reserved starts below address 0")
                if sr.offset + sr.size > size and not (sr.span and inside):
                    raise LabError(f"scenario {scenario.name}: Soft Reserved exceeds window {sr.window}"
                                   + ("" if sr.span else " (span = true lets it run into the next window)"))
                args.append(f"{_memsize(sr.size)}%{_memsize(base)}+{SR_TYPE}")
            elif sr.kind == "address":
                old = "-1" if sr.retype else ""
                args.append(f"{_memsize(sr.size)}%{_memsize(sr.address)}{old}+{SR_TYPE}")
            elif sr.kind == "cxl_test" and sr.pieces:
                cxl_test.append(f"cxl_test.hmem_test_ranges={sr.pieces}")
        # One memmap= with a comma-separated list (arch/x86/kernel/e820.c), in the shortest
        # units: the 2048-byte command line then holds about 90 ranges.
        return ([f"memmap={','.join(args)}"] if args else []) + cxl_test

    def kernel_cmdline(self):
        """What every boot of this kernel starts its command line with: the lab's, then the
        kernel's own."""
        return " ".join([BASE_CMDLINE, *self.kernel.cmdline_args, self.extra_cmdline]).strip()

    def base_cmdline(self, scenario, driver):
        """The command line of every stage of the scenario's boot, before its Soft Reserved
        arguments and lab.stage=: the kernel's, the driver's options, then the scenario's."""
        return " ".join([self.kernel_cmdline(), *drivers.cmdline_args(driver), scenario.kernel_args]).strip()

    def prepare(self, scenario, driver):
        """Build what a run needs (initramfs, module, window discovery), so that runs started
        in parallel only boot guests. Errors surface again, per run, in run()."""
        try:
            self.initrd(driver, scenario.modules)
            self.soft_reserved_args(scenario)
        except LabError:
            pass

    def last_seconds(self, scenario, driver, default):
        """How long this run took the last time in this output directory."""
        try:
            return json.loads((self.out / scenario.name / drivers.dir_name(driver) / "summary.json").read_text())[
                "seconds"]
        except (OSError, ValueError, KeyError):
            return default

    # -- one run -----------------------------------------------------------------------

    def run(self, scenario, driver, run_dir=None):
        run_dir = run_dir or self.out / scenario.name / drivers.dir_name(driver)
        try:
            scenario = scenario.for_options(driver.options)
        except LabError as e:
            return {"scenario": scenario.name, "driver": driver.name, "status": "error", "failures": [str(e)],
                    "ranges": [], "seconds": 0.0}
        summary = {"scenario": scenario.name, "driver": driver.name, "description": scenario.description,
                   "kernel": self.kernel.package_version, "topology": scenario.topology.name,
                   "modules": scenario.modules, "run_dir": str(run_dir),
                   "options": [f"{k}={v}" for k, v in driver.options],
                   "expected": [{"owner": e.owner, "decisions": list(e.decisions)} for e in scenario.expect]}
        start = time.monotonic()
        try:
            summary.update(self._run(scenario, driver, run_dir))
        except LabError as e:
            summary.update(status="error", failures=[str(e)], ranges=[])
        summary["seconds"] = round(time.monotonic() - start, 1)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "summary.json").write_text(
            json.dumps({k: v for k, v in summary.items() if k != "aspects"}, indent=2) + "\n")
        (run_dir / "compared.json").write_text(json.dumps(summary.get("aspects", {}), indent=2) + "\n")
        return summary

    def timeout_for(self, default):
        """--timeout as given, or a default written for the lab kernel, scaled to this one."""
        return self.timeout or default * self.kernel.timeout_factor

    def boot(self, scenario, driver, run_dir, timeout):
        """Boot the scenario's stages with driver's modules; each stage's files go to run_dir
        (the last stage) or run_dir/stageN. Returns the guest.GuestResult."""
        try:
            return self._boot(scenario, driver, run_dir, timeout)
        except QemuCrashed as e:
            # QEMU 10.0 asserted once in iotlb_to_section (multi-threaded TCG); that says nothing
            # about the guest, so boot once more and say so in the result.
            result = self._boot(scenario, driver, run_dir, timeout)
            result.qemu_crashed = str(e)
            return result

    def _boot(self, scenario, driver, run_dir, timeout):
        shutil.rmtree(run_dir, ignore_errors=True)
        base = self.base_cmdline(scenario, driver)
        cmdline = " ".join([base, *self.soft_reserved_args(scenario), "lab.stage=1"])
        if len(cmdline) >= COMMAND_LINE_SIZE:
            # The kernel would cut it silently, lab.stage= and memmap= entries first.
            raise LabError(f"scenario {scenario.name}: kernel command line of {len(cmdline)} bytes, "
                           f"over x86's {COMMAND_LINE_SIZE - 1}")
        initrd = self.initrd(driver, scenario.modules)
        # The guest reports a hang after this share of its time per stage (guest/lib.sh).
        hang_report = max(int(timeout * HANG_REPORT_SHARE / len(scenario.stages)), 1)
        script = f"LAB_AUTOLOAD={int(scenario.autoload)}\nLAB_HANG_REPORT={hang_report}\n" + "".join(
            f"stage{i}() {{\n:\n{body}\n}}\n" for i, body in enumerate(scenario.stages, 1))
        files = {"scenario.sh": script, "base-cmdline": base}
        if len(scenario.stages) > 1:
            files.update({"bzImage": self.kernel.bzimage, "initrd.cpio": initrd})
        result = guest.run(kernel=self.kernel, initrd=initrd, topology=scenario.topology, cmdline=cmdline,
                           files=files, stages=len(scenario.stages), timeout=timeout, run_dir=run_dir,
                           icount=self.icount)
        for i, files_of_stage in enumerate(result.stages, 1):
            stage_dir = run_dir if i == len(scenario.stages) else run_dir / f"stage{i}"
            stage_dir.mkdir(parents=True, exist_ok=True)
            for name, text in files_of_stage.items():
                (stage_dir / name).write_text(text)
        return result

    def _run(self, scenario, driver, run_dir):
        timeout = self.timeout_for(scenario.timeout)
        result = self.boot(scenario, driver, run_dir, timeout)
        checked, failures = analysis.evaluate(scenario, result.stages, result.console, driver.implementation)
        status = "pass" if not failures else "fail"
        if result.timed_out:
            status = "timeout"
            failures.insert(0, f"guest timed out after {timeout} s (console log: {run_dir / 'console.log'})")

        def printable(ranges):
            return [dict(r, start=f"{r['start']:#x}", end=f"{r['end']:#x}") for r in ranges]
        last = checked.get(scenario.check_stages[-1], [])
        out = {"status": status, "failures": failures, "guest_seconds": round(result.seconds, 1),
               "ranges": printable(last), "bytes_lost": sum(r["lost"] for r in last),
               "stages": {str(n): printable(r) for n, r in checked.items()},
               "aspects": {str(n): compare.aspects(result.stages[n - 1], r) for n, r in checked.items()}}
        known = sorted({leak for files in result.stages for leak in analysis.excused_leaks(files)[1]})
        if known:
            out["known_kernel_leaks"] = known
        if result.qemu_crashed:
            out["qemu_crashed"] = result.qemu_crashed
        return out
