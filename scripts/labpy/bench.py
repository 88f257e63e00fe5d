"""make bench: how soon, and how cheaply, each Soft Reserved range gets its owner, C against
Rust, from kernel timestamps; and what one lab run costs. It prints numbers; it asserts no
timing (a run that fails its scenario is reported, and its numbers left out).

Every boot gets initcall_debug, whose lines time each module init ("calling X [mod]",
"initcall X [mod] returned") and each driver probe ("probe of DEV with driver DRV returned
R after N usecs", printed when the probe returns). From those and the decision lines:

- decision latency: from the last CXL probe that the decision depends on (a memdev's cxl_mem
  probe, an endpoint's cxl_port probe, a region's cxl_region probe) to the decision line;
- registration latency: from dax_hmem's init to dax_cxl's driver at work: the first probe of
  a dax_region by cxl_dax_region (dax_cxl's init only queues the registration, which waits
  in dax_hmem_flush_work() for the decision);
- probe walk: the hmem_platform probe's own duration (initcall_debug's usecs);
- deferred walk: from the deferred walk's first decision line to its last, over N - 1 ranges.

Latency and scale boots count guest time in instructions (guest.ICOUNT): a millisecond is a
million guest instructions, or idle guest time up to the next timer. Under wall-clock TCG
the same probe walk of 64 ranges took 2.6-8.0 ms from boot to boot (the host's load, code
translation), more than the few percent between the drivers.
"""

import re
import statistics
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from . import drivers, report, scenario
from .errors import LabError
from .runner import Lab

LATENCY_SCENARIOS = ("e-committed", "d-cxl-test", "y-settle-slow-probe")
LATENCY_DRIVERS = "c,rust,rust:cxl_settle=10"
SCALE_COUNTS = (1, 16, 64, 256)
SCALE_DRIVERS = "c,rust"
BENCH_CMDLINE = "initcall_debug"
# Scale boots bring up one CPU: under icount a second vCPU's instructions (cxl_test's other
# probes, udev) enter the probe walk's time; the 256-range walk of C measured 3.2-6.7 ms
# with two and 3.9-4.3 ms with one.
SCALE_CMDLINE = f"{BENCH_CMDLINE} maxcpus=1"

_LINE = re.compile(r"^\[\s*(\d+\.\d+)\] (.*)$")
_DECISION = re.compile(r"hmem_platform\.\d+: (CXL claims resource, dropping|CXL did not claim resource, registering)")
_CXL_PROBE = re.compile(r"probe of (mem\d+|endpoint\d+|region\d+) with driver (cxl_mem|cxl_port|cxl_region) returned 0")
_HMEM_INIT = re.compile(r"calling  \S+ \[dax_hmem\]")
_DAX_CXL_DONE = re.compile(r"probe of dax_region\d+ with driver cxl_dax_region returned 0")
_PROBE_WALK = re.compile(r"probe of hmem_platform\.\d+ with driver hmem_platform returned 0 after (\d+) usecs")


def events(dmesg):
    """(seconds, message) for each timestamped kernel log line."""
    return [(float(m.group(1)), m.group(2)) for m in map(_LINE.match, dmesg.splitlines()) if m]


def latencies(dmesg):
    """{metric: milliseconds} of one boot's kernel log; a metric whose lines are missing is
    left out."""
    ev = events(dmesg)
    out = {}
    decisions = [t for t, msg in ev if _DECISION.search(msg)]
    if decisions:
        decided = decisions[-1]
        probes = [t for t, msg in ev if _CXL_PROBE.search(msg) and t <= decided]
        if probes:
            out["decision"] = (decided - max(probes)) * 1000
        # CXL probes after the decision: a decision made too early looks fast.
        out["cxl probes after"] = sum(1 for t, msg in ev if _CXL_PROBE.search(msg) and t > decided)
    hmem_init = [t for t, msg in ev if _HMEM_INIT.search(msg)]
    dax_cxl = [t for t, msg in ev if _DAX_CXL_DONE.search(msg)]
    if hmem_init and dax_cxl:
        out["registration"] = (dax_cxl[0] - hmem_init[0]) * 1000
    walks = [int(m.group(1)) for m in (_PROBE_WALK.search(msg) for _, msg in ev) if m]
    if walks:
        out["probe walk"] = walks[0] / 1000
    if len(decisions) > 1:
        out["deferred walk"] = (decisions[-1] - decisions[0]) * 1000
    return out


def summarise(values):
    """median, min, max of a list, or None for an empty one."""
    return (statistics.median(values), min(values), max(values)) if values else None


def _sample(lab, scenarios, chosen, boots, jobs, measure):
    """Boot every (scenario, driver) pair boots times, jobs guests at once (boot k of every
    pair before boot k + 1 of any, so that drivers share conditions), and collect
    measure(run_dir, run) -> {metric: value} of each passing run. Returns
    ({(scenario, metric, driver): [values]}, {(scenario, driver): failed runs})."""
    work = [(s, d, lab.out / s.name / drivers.dir_name(d) / f"boot{k}")
            for k in range(1, boots + 1) for s in scenarios for d in chosen]

    def one(item):
        s, d, run_dir = item
        run = lab.run(s, d, run_dir)
        print(f"bench: {run_dir.relative_to(lab.out)}: {run['status']} ({run['seconds']} s)", flush=True)
        return run
    for s, d, _ in work:
        lab.prepare(s, d)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        runs = list(pool.map(one, work))
    samples, failed = {}, {}
    for (s, d, run_dir), run in zip(work, runs):
        if run["status"] != "pass":
            failed[(s.name, d.name)] = failed.get((s.name, d.name), 0) + 1
            continue
        for metric, value in measure(run_dir, run).items():
            samples.setdefault((s.name, metric, d.name), []).append(value)
    return samples, failed


def _kernel_log(run_dir, _run):
    try:
        return latencies((run_dir / "dmesg.txt").read_text(errors="replace"))
    except OSError:
        return {}


def latency(the_kernel, out, boots, jobs):
    chosen = drivers.parse(LATENCY_DRIVERS)
    scenarios = [scenario.load_scenario(n) for n in LATENCY_SCENARIOS]
    scenarios = [s for s in scenarios if not the_kernel.lacks(s)]
    lab = Lab(the_kernel, out / "latency", extra_cmdline=BENCH_CMDLINE, icount=True)
    samples, failed = _sample(lab, scenarios, chosen, boots, jobs, _kernel_log)
    rows = []
    for s in scenarios:
        for metric in ("decision", "registration", "cxl probes after"):
            ref = summarise(samples.get((s.name, metric, chosen[0].name), []))
            for d in chosen:
                got = summarise(samples.get((s.name, metric, d.name), []))
                n = len(samples.get((s.name, metric, d.name), []))
                ratio = f"{got[0] / ref[0]:.2f}" if got and ref and ref[0] > 0 else "-"
                rows.append([s.name, metric, d.name, str(n), *(
                    (f"{got[0]:.1f}", f"{got[1]:.1f}-{got[2]:.1f}") if got else ("-", "-")), ratio,
                    str(failed.get((s.name, d.name), 0))])
    return ["scenario", "latency", "driver", "boots", "median ms", "min-max ms", "ratio to c", "failed"], rows


def scale_scenario(count):
    """count Soft Reserved ranges of 2M, none in a region, side by side from the start of CXL
    window 0: the probe awaits CXL for each, the deferred walk registers each. cxl_test mocks
    them (pieces: hmem_test_ranges=, a lab patch in qemu/patches), as the kernel command line
    holds only about 90 memmap= ranges. kmem stays away: its hot-add is not dax_hmem's cost."""
    base = scenario.load_scenario("d-cxl-test-fail-autoassemble")
    stage = (f"lab_block_module kmem\n{base.stages[0].strip()}\n"
             f"lab_wait_log 'CXL did not claim resource, registering' {count} 120\n")
    return replace(base, name=f"scale-{count}", description=f"{count} Soft Reserved ranges of 2M in CXL window 0",
                   soft_reserved=[scenario.SoftReserved(kind="cxl_test", pieces=count)],
                   stages=[stage], tags=(), expect=[replace(base.expect[0], kmem=False)] * count,
                   # Collection (daxctl, sysfs) takes about 0.7 s per range under TCG.
                   timeout=base.timeout + 3 * count)


def scale(the_kernel, out, boots, jobs):
    chosen = drivers.parse(SCALE_DRIVERS)
    lab = Lab(the_kernel, out / "scale", extra_cmdline=SCALE_CMDLINE, icount=True)
    scenarios = [scale_scenario(n) for n in SCALE_COUNTS]
    samples, _ = _sample(lab, scenarios, chosen, boots, jobs, _kernel_log)
    rows = []
    for n, s in zip(SCALE_COUNTS, scenarios):
        for metric in ("probe walk", "deferred walk"):
            ref = summarise(samples.get((s.name, metric, chosen[0].name), []))
            cells = []
            for d in chosen:
                got = summarise(samples.get((s.name, metric, d.name), []))
                per = (got[0] / (n if metric == "probe walk" else max(n - 1, 1))) if got else None
                cells += [f"{got[0]:.2f}" if got else "-",
                          f"{per * 1000:.0f}" if got and (metric == "probe walk" or n > 1) else "-"]
            ratio = "-"
            if ref and ref[0] > 0:
                got = summarise(samples.get((s.name, metric, chosen[-1].name), []))
                ratio = f"{got[0] / ref[0]:.2f}" if got else "-"
            rows.append([str(n), metric, *cells, ratio])
    head = ["ranges", "walk"]
    for d in chosen:
        head += [f"{d.name} median ms", f"{d.name} us/range"]
    return head + [f"ratio {chosen[-1].name}/{chosen[0].name}"], rows


COST_SCENARIOS = ("a-uncommitted", "d-cxl-test")
_PHASE = re.compile(r"^lab: \[(\d+\.\d+)\] (?:stage \d+: (?P<coldplug>coldplug)|stage \d+: (?P<settled>settled)|"
                    r"collected; kmemleak (?P<scan>scan)|stage \d+ results (?P<written>written))")


def phases(console, seconds):
    """{phase: seconds} of a one-stage run, from the guest's "lab: [uptime]" marks: boot (to
    coldplug), module work (coldplug, the steps, the settle after them), collection (with
    kmemleak's first scan), kmemleak (the wait for the second scan, the scan, writing the
    results), and the host's share (QEMU, disks)."""
    marks = {}
    for m in map(_PHASE.match, console.splitlines()):
        if m:
            marks.setdefault(m.lastgroup, float(m.group(1)))
    if len(marks) < 4:
        return {}
    return {"boot": marks["coldplug"], "module work": marks["settled"] - marks["coldplug"],
            "collection": marks["scan"] - marks["settled"], "kmemleak": marks["written"] - marks["scan"],
            "host": seconds - marks["written"]}


def cost(the_kernel, out, boots, jobs):
    """Per-run cost of a simple and a cxl_test scenario, with jobs guests at once."""
    chosen = drivers.parse("c,rust")
    lab = Lab(the_kernel, out / "cost")
    scenarios = [scenario.load_scenario(n) for n in COST_SCENARIOS]

    def run_phases(run_dir, run):
        console = (run_dir / "console.log").read_text(errors="replace")
        return {**phases(console, run["seconds"]), "total": run["seconds"]}
    per_driver, _ = _sample(lab, scenarios, chosen, boots, jobs, run_phases)
    # Both drivers' runs together: the lab's cost, not the driver's.
    samples = {}
    for (name, phase, _), values in per_driver.items():
        samples.setdefault((name, phase), []).extend(values)
    names = ("boot", "module work", "collection", "kmemleak", "host", "total")
    rows = [[s.name, str(len(samples.get((s.name, "total"), []))),
             *(f"{statistics.median(samples[(s.name, p)]):.1f}" if samples.get((s.name, p)) else "-"
               for p in names)] for s in scenarios]
    return ["scenario", "runs", *(f"{p} s" for p in names)], rows


def table(head, rows):
    return "\n".join(report.aligned(head, rows))


def validate(parts, boots):
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise LabError(f"unknown bench part '{','.join(unknown)}' (known: {', '.join(PARTS)})")
    if boots < 1:
        raise LabError("--boots must be at least 1")


PARTS = ("cost", "latency", "scale")
