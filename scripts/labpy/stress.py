"""lab stress: fault injection, load/bind loops, load-order fuzzing and hostile sysfs input,
with the C and the Rust dax_hmem side by side. The guest side is scripts/guest/stress.sh; each
boot writes stress.tsv, and the kernel log is cut into steps at its "lab-stress:" marks.

Every boot fails on a WARNING, BUG, Oops, lockdep or kmemleak report, or a hang (hard
timeout), except where a hostile case expects hmem.c to oops: that outcome is recorded.
"""

import collections
import json
import random
import re
from dataclasses import dataclass, field

from . import analysis, scenario
from .errors import LabError

PARTS = ("faults", "loops", "fuzz", "hostile")
# kmem is the module of the dax_kmem driver (drivers/dax/kmem.c).
ORDER_MODULES = ("cxl_acpi", "cxl_pci", "cxl_mem", "dax_hmem", "dax_cxl", "kmem")
HOSTILE_CASES = ("foreign-to-hmem", "foreign-to-hmem_platform", "hmem-to-hmem_platform",
                 "hmem_platform-to-hmem", "bind-race", "region-idle-garbage")

# The stress topology: a committed CXL region under Soft Reserved (CXL's), Soft Reserved in
# a second window with no region (hmem's, after the deferral), and Soft Reserved RAM outside
# any window (hmem's at probe). Stage 1 commits the region and kexecs, as firmware would.
MIXED_STAGE1 = """
lab_coldplug
lab_settle
region=$(lab_create_ram_region decoder0.0 0x10000000 $(lab_memdevs_of decoder0.0))
lab_kexec "$(lab_memmap_over_region "$region")" "$(lab_memmap_in_window decoder0.1 0 0x10000000)" \\
	memmap=0x10000000%0x60000000-1+0xefffffff
"""
RAM_SR = "memmap=0x10000000%0x60000000-1+0xefffffff"


@dataclass
class Boot:
    """One guest boot of a part: its stages, and what its records mean."""
    part: str
    driver: object
    label: str
    topology: str
    stages: list
    autoload: bool
    timeout: int
    kernel_args: str = ""
    soft_reserved: list = field(default_factory=list)
    expect_oops: bool = False  # a hostile case on hmem.c
    case: str = ""  # hostile: the case
    orders: list = field(default_factory=list)  # fuzz: the load orders, in boot order


def scenario_of(boot):
    return scenario.Scenario(
        name=f"stress-{boot.label}", description="", topology=scenario.load_topology(boot.topology),
        modules="in-tree", kernel_args=boot.kernel_args, timeout=boot.timeout,
        soft_reserved=boot.soft_reserved, stages=boot.stages, autoload=boot.autoload, expect=[])


def predicted_order_owners(order, first):
    """The owner lists 7.3 allows, in address order [RAM range, CXL region's range, second
    window's range], after loading ORDER (of ORDER_MODULES) one module at a time, settled,
    without autoload. dax_hmem requests cxl_acpi and cxl_pci itself, cxl_pci links against
    cxl_mem, and dax_cxl pulls dax_hmem in: so the first decision of a boot sees the
    committed region (CXL's) and no region in the second window (hmem's). Except in one
    race: when cxl_pci came before, and cxl_acpi only with dax_hmem's request_module(), the
    memdevs found no root and attach later, through cxl_acpi's cxl_bus_rescan() on
    cxl_bus_wq, which wait_for_device_probe() does not wait for. The decision may then come
    first and take the region's range for hmem (dax_cxl is refused: "DAX Regions").
    Between orders every module is unloaded, and the region's teardown resets its decoders
    (region.c: __cxl_decoder_detach -> cxl_region_decode_reset, the decoders are not
    locked), so no later order of the boot has a region. The decision was made once
    (did_probe), so later orders leave both CXL ranges to a CXL that no longer claims them."""
    if not first:
        return [["hmem", "none", "none"]]
    pos = {m: i for i, m in enumerate(order)}
    hmem_loads = min(pos["dax_hmem"], pos["dax_cxl"])
    if pos["cxl_pci"] < hmem_loads < pos["cxl_acpi"]:
        return [["hmem", "cxl", "hmem"], ["hmem", "hmem", "hmem"]]
    return [["hmem", "cxl", "hmem"]]


def parse_tsv(text):
    return [line.split("\t") for line in text.splitlines() if line.strip()]


def owners_list(field_text):
    """"START=OWNER,..." -> [OWNER, ...] in address order."""
    pairs = [p.split("=", 1) for p in field_text.split(",") if "=" in p]
    return [o for _, o in sorted(pairs, key=lambda p: int(p[0], 16))]


_MARK = re.compile(r"lab-stress: (.*)$")
_FRAME = re.compile(r"^\s*(?:\[[^\]]*\]\s*)?(\S+?)\+0x[0-9a-f]+/0x[0-9a-f]+(?: \[(\w+)\])?")
_ERROR_LINE = re.compile(r"fail|error|refus|not an? |unable|cannot|conflict", re.I)


def log_steps(dmesg):
    """{step mark: [lines]} of the kernel log, cut at the "lab-stress:" marks."""
    steps, current = {}, None
    for line in dmesg.splitlines():
        m = _MARK.search(line)
        if m:
            current = m.group(1)
            steps[current] = []
        elif current is not None:
            steps[current].append(line)
    return steps


def demangle(symbol):
    """The last two path segments of a Rust v0 symbol, without the crate
    (_RNvNtCs..._8dax_hmem4hmem5probe -> hmem::probe); C symbols unchanged."""
    if not symbol.startswith("_R"):
        return symbol
    # Parse from the crate root "C", after its disambiguator "s<base62>_"; the first
    # identifier is the crate's name.
    root = re.search(r"C(?:s[0-9A-Za-z]*_)?(?=\d)", symbol)
    parts, pos = [], root.end() if root else 0
    while m := re.compile(r"(\d+)_?").search(symbol, pos):
        ident = symbol[m.end():m.end() + int(m.group(1))]
        if len(ident) == int(m.group(1)) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", ident):
            parts.append(ident)
            pos = m.end() + len(ident)
        else:
            pos = m.end()
    parts = parts[1:] if root else parts
    return "::".join(parts[-2:]) if parts else symbol


# The slab and page allocators' own frames, below the function that allocated.
ALLOCATOR_FRAMES = ("kmem_cache", "__kmalloc", "kmalloc", "slab_", "__alloc", "alloc_pages", "__slab")


def injection_site(lines):
    """(innermost dax_hmem function, the allocator below it) of the first injected failure's
    stack in lines, or None."""
    try:
        start = next(i for i, l in enumerate(lines) if "FAULT_INJECTION: forcing a failure" in l)
    except StopIteration:
        return None
    frames = []
    for line in lines[start:start + 80]:
        m = _FRAME.match(line.split("] ", 1)[-1])
        if m and "Call Trace" not in line:
            frames.append((m.group(1), m.group(2)))
        if line.rstrip().endswith("</TASK>"):
            break
    ours = [i for i, (_, mod) in enumerate(frames) if mod == "dax_hmem"]
    if not ours:
        mods = [f"{f} [{m}]" for f, m in frames if m]
        return ("(no dax_hmem frame)", mods[0] if mods else "?")
    i = ours[0]
    below = [f for f, _ in frames[:i] if not f.startswith(("dump_stack", "should_fail", "fail_dump",
                                                             "should_failslab", "__should_fail"))]
    alloc = next((f for f in below if not f.startswith(ALLOCATOR_FRAMES)), below[-1] if below else "?")
    return (demangle(frames[i][0]), demangle(alloc))


def error_line(lines):
    """The first kernel log line of a step that reports an error (not the injection's own)."""
    for line in lines:
        text = line.split("] ", 1)[-1].strip()
        if "FAULT_INJECTION" in text or text.startswith(("name fail", "CPU:", "Hardware name", "Call Trace",
                                                          "<TASK>", "</TASK>", "dump_stack", "Tainted")):
            continue
        if _FRAME.match(text):
            continue
        if _ERROR_LINE.search(text):
            return text
    return ""


@dataclass
class Outcome:
    boot: Boot
    records: list
    steps: dict
    faults: list
    leaks: list
    timed_out: bool
    seconds: float
    run_dir: object
    console_faults: list
    error: str = ""  # the LabError that stopped the boot


class Stress:
    def __init__(self, lab, drivers, jobs=2):
        self.lab = lab
        self.drivers = drivers
        self.jobs = jobs

    # -- the boots of each part --------------------------------------------------------------

    def task_boot(self, driver, args, resume=None):
        """The task-context entry points' sweep; resume=(ENTRY, K) continues it from ENTRY's
        step K, after a boot that a hung step wedged."""
        label, start = f"faults-tasks-{driver.name}", ""
        if resume:
            label, start = f"{label}-from-{resume[0]}-k{resume[1]}", f" {resume[0]} {resume[1]}"
        return Boot("faults", driver, label, "two-windows",
                    [MIXED_STAGE1, f". /lab/stress.sh\nst_fault_tasks {args.max_k}{start}\n"],
                    autoload=False, timeout=self.lab.timeout_for(3600))

    def deferred_boots(self, driver, ks):
        """The deferred decision's fault boots, one per k."""
        return [Boot("faults", driver, f"faults-deferred-k{k}-{driver.name}", "single-window",
                     [f". /lab/stress.sh\nst_fault_deferred {k}\n"], autoload=False,
                     timeout=self.lab.timeout_for(scenario.STAGE_TIMEOUT),
                     soft_reserved=[scenario.SoftReserved(kind="window", size=256 << 20)])
                for k in ks]

    def boots(self, part, args):
        out = []
        for d in self.drivers:
            if part == "faults":
                out.append(self.task_boot(d, args))
                out += self.deferred_boots(d, args.deferred_k)
            elif part == "loops":
                out.append(Boot("loops", d, f"loops-{d.name}", "two-windows",
                                [MIXED_STAGE1, f". /lab/stress.sh\nst_loops {args.cycles}\n"],
                                autoload=True, timeout=self.lab.timeout_for(3600)))
            elif part == "fuzz":
                rng = random.Random(args.seed)
                for b in range(args.boots):
                    orders = [rng.sample(ORDER_MODULES, len(ORDER_MODULES)) for _ in range(args.orders)]
                    body = ". /lab/stress.sh\n" + "st_unload_all\n".join(
                        f"st_order {' '.join(o)}\n" for o in orders)
                    out.append(Boot("fuzz", d, f"fuzz-{b}-{d.name}", "two-windows", [MIXED_STAGE1, body],
                                    autoload=False, timeout=self.lab.timeout_for(900), orders=orders))
            elif part == "hostile":
                for case in HOSTILE_CASES:
                    out.append(Boot("hostile", d, f"hostile-{case}-{d.name}", "no-cxl",
                                    [f". /lab/stress.sh\nst_hostile {case}\n"], autoload=True,
                                    timeout=self.lab.timeout_for(600), kernel_args=RAM_SR,
                                    expect_oops=d.implementation == "c", case=case))
        return out

    # -- one boot --------------------------------------------------------------------------

    def run(self, boot):
        run_dir = self.lab.out / "stress" / boot.label
        try:
            result = self.lab.boot(scenario_of(boot), boot.driver, run_dir, boot.timeout)
        except LabError as e:
            return Outcome(boot, [], {}, [], [], False, 0.0, run_dir, [], str(e))
        last = result.stages[-1] if len(result.stages) == len(boot.stages) else {}
        dmesg = last.get("dmesg.txt", "")
        leaks = kmemleak_reports(last.get("kmemleak.txt", ""))
        return Outcome(boot, parse_tsv(last.get("stress.tsv", "")), log_steps(dmesg), analysis.faults(dmesg),
                       leaks, result.timed_out, result.seconds, run_dir, analysis.faults(result.console))


# Kernel bugs outside dax_hmem that the sweep reaches with both drivers: (name, what must all
# appear in the hung step's log, the fault lines they explain).
KNOWN_KERNEL_BUGS = [
    ("dax core self-deadlock: __devm_create_dev_dax() holds dax_region_rwsem, and when "
     "devm_add_action_or_reset() fails its reset runs unregister_dev_dax(), which takes it again "
     "(drivers/dax/bus.c)",
     ("possible recursive locking detected", "dax_region_rwsem", "unregister_dev_dax"),
     re.compile(r"possible recursive locking detected|blocked for more than \d+ seconds")),
]


# Leaks in the dax core's error paths that fault injection reaches with both drivers: (name,
# runs of adjacent backtrace frames, innermost first, any of which identifies the leak). A
# driver that leaked a whole dev_dax would also leak objects that match; the dev_dax itself
# does not, so that boot still fails, though the table names those objects as the core's.
KNOWN_KERNEL_LEAKS = [
    ("dax core leak: when device_add() fails, __devm_create_dev_dax() drops the device with "
     "kill_dev_dax() and put_device() but no free_dev_dax_ranges(): the range's resource and "
     "the ranges array leak (drivers/dax/bus.c)",
     [("alloc_dev_dax_range", "__devm_create_dev_dax")]),
    ("dax core leak: when alloc_dev_dax_range() or alloc_dax() fails, __devm_create_dev_dax() "
     "kfree()s a device it has already named, not put_device(): the name leaks (drivers/dax/bus.c)",
     [("dev_set_name", "__devm_create_dev_dax")]),
]
_KMEMLEAK_LINE = re.compile(r"kmemleak: \d+ new suspected memory leaks|unreferenced object 0x")


def kmemleak_reports(text):
    """The backtrace's function names of each kmemleak report, innermost first."""
    return [frames for _, frames, _ in analysis.kmemleak_objects(text)]


# kmemleak's and the allocators' own frames, which every leak's backtrace starts with.
_LEAK_ALLOCATOR_FRAMES = ALLOCATOR_FRAMES + ("kmemleak_", "krealloc", "kvmalloc", "__kvmalloc", "kzalloc",
                                             "kstrdup", "kvasprintf", "__vmalloc", "vmalloc", "pcpu_",
                                             "__do_kmalloc", "___slab")


def leak_trace(frames, depth=6):
    """Where a leak was allocated, for a one-line failure: the first DEPTH frames after the
    allocator's own, innermost first."""
    i = next((i for i, f in enumerate(frames) if not f.startswith(_LEAK_ALLOCATOR_FRAMES)), len(frames))
    shown = frames[max(0, i - 1):i + depth]
    return " <- ".join(shown) or "(no backtrace)"


def known_kernel_leak(frames):
    """The KNOWN_KERNEL_LEAKS entry whose frames a leak's backtrace shows, or None."""
    return analysis.known_leak(frames, KNOWN_KERNEL_LEAKS)


def unexplained_leaks(o):
    """The leaks of a boot that no known kernel bug explains: only fault injection reaches
    KNOWN_KERNEL_LEAKS, so outside the faults part those count; the scenarios' known leaks
    whose contents do not matter (analysis.KNOWN_SCENARIO_LEAKS) never do."""
    return [f for f in o.leaks if not analysis.known_scenario_leak(f)
            and (o.boot.part != "faults" or not known_kernel_leak(f))]


def known_kernel_bug(lines):
    """The KNOWN_KERNEL_BUGS entry that a hung step's log shows, or None."""
    text = "\n".join(lines)
    return next((bug for bug in KNOWN_KERNEL_BUGS if all(s in text for s in bug[1])), None)


def wedged_at(o):
    """(ENTRY, K) of the step that hung and wedged this boot, or None."""
    return next(((r[1], int(r[2])) for r in o.records if r[0] == "wedged" and len(r) > 2), None)


def boot_problems(o):
    """Why a boot failed as a whole: a hang, a fault in the log, a leak, no results. Fault
    lines that a known kernel bug at the step that wedged the boot explains are left out:
    the faults table names the bug."""
    problems = []
    if o.error:
        return [f"not run: {o.error}"]
    if o.timed_out:
        problems.append(f"hung: guest timed out after {o.boot.timeout} s (console: {o.run_dir / 'console.log'})")
    faults = sorted(set(o.faults) | set(o.console_faults))
    wedge = wedged_at(o)
    if wedge:
        # How a wedged guest ends (lab_main in scripts/guest/lib.sh).
        faults = [f for f in faults if "Attempted to kill init" not in f]
    bug = wedge and known_kernel_bug(o.steps.get(f"fault {wedge[0]} k={wedge[1]}", []))
    if bug:
        faults = [f for f in faults if not bug[2].search(f)]
    leaks = unexplained_leaks(o)
    if o.leaks and not leaks:
        # kmemleak's lines of the last stage, whose kmemleak.txt was read; an earlier
        # stage's, on the console only, still count.
        faults = [f for f in faults if not (_KMEMLEAK_LINE.search(f) and f in o.faults)]
    if faults and not o.boot.expect_oops:
        problems.append("kernel fault: " + faults[0])
    if leaks:
        problems.append(f"kmemleak: {len(leaks)} leaks, the first allocated at {leak_trace(leaks[0])} "
                        f"(all: {o.run_dir / 'kmemleak.txt'})")
    if not o.records and not o.boot.expect_oops:
        problems.append(f"no results (console: {o.run_dir / 'console.log'})")
    return problems


def summarise_faults(o, problems):
    """One fault boot's rows and failures: a row per step, reload and note, and one per
    known kernel leak that kmemleak found at the end of the boot."""
    rows, failures = [], []
    unexplained = len(unexplained_leaks(o))

    def row(entry, k=0, injected="", site=None, errno="", error="", owners="", hang=o.timed_out,
            leaks=unexplained):
        rows.append({"driver": o.boot.driver.name, "entry": entry, "k": k, "injected": injected,
                     "site": f"{site[0]} <- {site[1]}" if site else "", "errno": errno, "error": error,
                     "owners": owners, "leaks": leaks, "hang": hang, "problems": problems})

    for r in o.records:
        if r[0] == "fault" and r[3] == "hang":
            lines = o.steps.get(f"fault {r[1]} k={r[2]}", [])
            bug = known_kernel_bug(lines)
            row(r[1], int(r[2]), "hang", injection_site(lines),
                error=f"hung: {bug[0]}" if bug else f"hung: {error_line(lines)}", owners="(wedged)", hang=True)
            if not bug:
                failures.append(f"{o.boot.label}: {r[1]} k={r[2]}: the step hung "
                                f"(console: {o.run_dir / 'console.log'})")
        elif r[0] == "fault":
            entry, k, inj, errno, owners = r[1], r[2], r[3], r[4], r[5] if len(r) > 5 else ""
            lines = o.steps.get(f"fault {entry} k={k}", [])
            err = error_line(lines)
            if inj == "1" and not err and errno == "0":
                err = "(none: the failure was absorbed)"
            own = owners_list(owners)
            row(entry, int(k), inj == "1", injection_site(lines) if inj == "1" else None, errno, err,
                ",".join(own))
            if any("+" in x for x in own):
                failures.append(f"{o.boot.label}: {entry} k={k}: a range owned twice ({owners})")
        elif r[0] == "reload":
            row(f"reload after {r[1]}", injected=False, error="ok" if r[2] == "0" else "reload failed",
                owners=",".join(owners_list(r[3] if len(r) > 3 else "")))
            if r[2] != "0":
                failures.append(f"{o.boot.label}: unload and reload after {r[1]} failed")
        elif r[0] == "note":
            # A sweep stopped by --max-k is a bounded slice, said in the table; any other note
            # (no kmemleak hooks to filter, dax_cxl not settled) means the sweep cannot be read.
            note = r[2] if len(r) > 2 else ""
            row(r[1], error=note)
            if not note.startswith("stopped at k="):
                failures.append(f"{o.boot.label}: {' '.join(r[1:])}")
    for bug, count in collections.Counter(b[0] for b in map(known_kernel_leak, o.leaks) if b).items():
        row("kmemleak at the end", error=f"{count} known: {bug}", leaks=0)
    return rows, failures


def summarise(part, outcomes):
    """Rows for the part's table, and the failures."""
    rows, failures = [], []
    for o in outcomes:
        problems = boot_problems(o)
        name = o.boot.driver.name
        failures += [f"{o.boot.label}: {p}" for p in problems]
        if part == "faults":
            fault_rows, fault_failures = summarise_faults(o, problems)
            rows += fault_rows
            failures += fault_failures
        elif part == "loops":
            for r in o.records:
                if r[0] == "loop":
                    rows.append({"driver": name, "what": r[1], "cycles": int(r[2]), "seconds": float(r[3]),
                                 "failed": int(r[4]), "owners": ",".join(owners_list(r[5])),
                                 "leaks": len(unexplained_leaks(o)), "problems": problems})
                    if r[4] != "0":
                        failures.append(f"{o.boot.label}: {r[1]}: {r[4]} cycles failed")
            last = [r for r in o.records if r[0] == "loop"]
            if last and owners_list(last[-1][5]) != ["hmem", "cxl", "none"]:
                failures.append(f"{o.boot.label}: owners after the loops {owners_list(last[-1][5])}, "
                                "7.3 predicts hmem, cxl, none (a reload leaves CXL ranges to CXL)")
        elif part == "fuzz":
            records = [r for r in o.records if r[0] == "order"]
            for i, order in enumerate(o.boot.orders):
                allowed = predicted_order_owners(order, first=i == 0)
                got = owners_list(records[i][2]) if i < len(records) else ["(no result)"]
                want = " or ".join(",".join(a) for a in allowed)
                rows.append({"driver": name, "boot": o.boot.label, "order": " ".join(order), "first": i == 0,
                             "predicted": want, "owners": ",".join(got), "match": got in allowed,
                             "problems": problems})
                if got not in allowed:
                    failures.append(f"{o.boot.label}: order {' '.join(order)}: owners {','.join(got)}, "
                                    f"7.3 predicts {want}")
            for r in o.records:
                if r[0] == "note":
                    failures.append(f"{o.boot.label}: {' '.join(r[1:])}")
        elif part == "hostile":
            case = o.boot.case
            rec = next((r for r in o.records if r[0] == "hostile"), None)
            faults = sorted(set(o.faults) | set(o.console_faults))
            outcome = ("oops: " + faults[0]) if faults else (
                f"rc {rec[3]}: {rec[4]}" if rec else "no result")
            rows.append({"driver": name, "case": case, "target": rec[2] if rec else "",
                         "outcome": outcome, "owners": ",".join(owners_list(rec[5])) if rec and len(rec) > 5 else "",
                         "problems": problems})
            if o.boot.driver.implementation == "rust":
                if faults:
                    failures.append(f"{o.boot.label}: ours must not oops: {faults[0]}")
                elif case.endswith(("to-hmem", "to-hmem_platform")) and (not rec or rec[3] != "1"):
                    failures.append(f"{o.boot.label}: the bind was not refused")
    return rows, failures


def fault_sites(rows):
    """The faults table by injection site: per site and driver, the steps that reached it
    and from which entry points, the error lines seen (with counts), the hangs, and the
    owners afterwards (distinct lists)."""
    groups = {}
    for r in rows:
        if r.get("injected") not in (True, "hang"):
            continue
        site = r["site"] or "(no stack)"
        g = groups.setdefault((site, r["driver"]), {
            "site": site, "driver": r["driver"], "steps": 0, "entries": set(),
            "errors": collections.Counter(), "hangs": 0, "owners": set()})
        g["steps"] += 1
        g["entries"].add(r["entry"])
        g["errors"][r["error"]] += 1
        g["hangs"] += r["injected"] == "hang"
        g["owners"].add(r["owners"])
    return [{**g, "entries": " ".join(sorted(g["entries"])),
             "errors": "; ".join(f"{n}x {e}" for e, n in g["errors"].most_common()),
             "owners": " / ".join(sorted(g["owners"]))}
            for _, g in sorted(groups.items())]


def table(part, rows):
    cols = {"faults": ["driver", "entry", "k", "injected", "site", "errno", "error", "owners", "leaks", "hang"],
            "loops": ["driver", "what", "cycles", "seconds", "failed", "leaks", "owners"],
            "fuzz": ["driver", "boot", "order", "first", "predicted", "owners", "match"],
            "hostile": ["case", "driver", "target", "outcome", "owners"],
            "fault sites": ["site", "driver", "steps", "entries", "errors", "hangs", "owners"]}[part]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(c, "")).replace("|", "/") for c in cols) + " |")
    return "\n".join(lines)


def write_json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def validate(args):
    if not args.parts:
        raise LabError(f"--part names no part (known: {', '.join(PARTS)})")
    for p in args.parts:
        if p not in PARTS:
            raise LabError(f"unknown stress part '{p}' (known: {', '.join(PARTS)})")
    if len(set(args.parts)) != len(args.parts):
        raise LabError(f"--part names a part twice: {','.join(args.parts)}")
    if args.cycles < 1 or args.boots < 1 or args.orders < 1 or args.max_k < 1:
        raise LabError("--cycles, --boots, --orders and --max-k must be at least 1")
