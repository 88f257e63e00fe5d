"""What a guest run shows: faults, Soft Reserved ranges, dax_hmem's decisions, and owners.

Everything here reads the files a guest wrote (see scripts/guest/lib.sh), never the console,
except for faults, which are also looked for in the console log because a panic may stop the
guest before it writes anything.
"""

import re

from .scenario import CXL_TEST_PIECE, DECISIONS

# The guest's report of a stage near its time (guest/lib.sh lab_report_hang): where a guest
# that then times out hangs. Not a fault by itself: a slow host's stage may still finish.
HANG_REPORT = r"^lab: \[[\d.]+\] stage \d+ still running after "
# A guest run fails on any of these (dmesg and console log).
FAULT_PATTERNS = [
    r"\bWARNING:",
    r"\bBUG:",
    r"kernel BUG at",
    r"\bOops\b",
    r"Kernel panic",
    r"general protection fault",
    r"possible (circular|recursive) locking",
    r"inconsistent lock state",
    r"INFO: lockdep is turned off",
    r"kmemleak: \d+ new suspected memory leaks",
    r"unreferenced object 0x",
]
_FAULT = re.compile("|".join(FAULT_PATTERNS))

_SR_LINE = re.compile(r"(?:user|BIOS-e820): \[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\]\s+soft reserved")
_DECISION = re.compile(
    r"(hmem_platform\.\d+): (" + "|".join(map(re.escape, DECISIONS)) + r"): \[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)"
)
_IOMEM = re.compile(r"^\s*([0-9a-f]+)-([0-9a-f]+) : (.*)$")


def faults(text):
    return [line.strip() for line in text.splitlines() if _FAULT.search(line)]


# Leaks of 7.3's own code that scenarios reach with either driver: (what leaks, and why; runs
# of adjacent backtrace frames, innermost first, any of which identifies the leak; the
# checksum of the leaked contents kmemleak prints). A run that shows only these passes;
# kmemleak.txt keeps them, and the run's summary names them.
KNOWN_SCENARIO_LEAKS = [
    # Never filled in, so all zeros (crc 0): the resource of a region whose size was set, which
    # has the same backtrace, holds the region's range and name, and still fails if it leaks.
    ("resource leak: alloc_free_mem_region() passes get_free_mem_region() neither a device nor "
     "GFR_REQUEST_REGION, and on -ERANGE that frees its resource only with one of them, so each "
     "failed call leaks 64 bytes (kernel/resource.c); a CXL region's size_store() fails so when "
     "hmem already owns the window's space",
     [("get_free_mem_region", "alloc_free_mem_region")], "0"),
    # Any contents: "<bus>: Device not ready to probe". A race, seen once in 31 scenarios.
    ("deferred probe reason leak: when a driver's registration meets a device that device_add() "
     "has not made ready to probe yet, __driver_probe_device() sets the device's deferred-probe "
     "reason but does not list it as deferred, and driver_deferred_probe_del() frees the reason "
     "only of listed devices, so the string leaks when the device goes (drivers/base/dd.c); "
     "dax_hmem's hmem devices go on every unload",
     [("dev_err_probe", "__driver_probe_device")], None),
]
_LEAK_FRAME = re.compile(r"^\s+([\w.$]+)\+0x[0-9a-f]+/0x[0-9a-f]+", re.M)
_LEAK_CRC = re.compile(r"^\s+backtrace \(crc ([0-9a-f]+)\):", re.M)
_LEAK_COUNT = re.compile(r"kmemleak: (\d+) new suspected memory leaks")


def kmemleak_objects(text):
    """Each object of a kmemleak report: its "unreferenced object" line, its backtrace's
    function names, innermost first, and the checksum of its contents ("" if not shown)."""
    blocks = re.split(r"^(?=unreferenced object 0x)", text, flags=re.M)[1:]
    return [(block.splitlines()[0].strip(), _LEAK_FRAME.findall(block),
             m.group(1) if (m := _LEAK_CRC.search(block)) else "") for block in blocks]


def known_leak(frames, known):
    """The entry of known ((name, frame runs), ...) whose frames a leak's backtrace shows, or
    None."""
    def shows(run):
        return any(tuple(frames[i:i + len(run)]) == run for i in range(len(frames)))
    return next((leak for leak in known if any(shows(run) for run in leak[1])), None)


def known_scenario_leak(frames, crc=None):
    """The KNOWN_SCENARIO_LEAKS entry that a leak's backtrace, and checksum where the entry
    names one, show, or None."""
    return next((leak for leak in KNOWN_SCENARIO_LEAKS
                 if known_leak(frames, [leak]) and leak[2] in (None, crc)), None)


def excused_leaks(files):
    """A stage's kmemleak lines that only KNOWN_SCENARIO_LEAKS explain, and those leaks'
    names: every "unreferenced object" of a known leak, and dmesg's counts too when
    kmemleak.txt has no other leak and at least as many known ones as the counts add up to."""
    objects = kmemleak_objects(files.get("kmemleak.txt", ""))
    known = [(line, known_scenario_leak(frames, crc)) for line, frames, crc in objects]
    lines = {line for line, leak in known if leak}
    counts = [line for line in faults(files.get("dmesg.txt", "")) if _LEAK_COUNT.search(line)]
    if all(leak for _, leak in known) and \
            sum(int(_LEAK_COUNT.search(line).group(1)) for line in counts) <= len(lines):
        lines.update(counts)
    return lines, sorted({leak[0] for _, leak in known if leak})


def iomem_entries(text):
    """(start, end, name, depth) for each /proc/iomem line."""
    out = []
    for line in text.splitlines():
        m = _IOMEM.match(line)
        if m:
            depth = (len(line) - len(line.lstrip(" "))) // 2
            out.append((int(m.group(1), 16), int(m.group(2), 16), m.group(3), depth))
    return out


def cxl_windows(iomem):
    """{index: (start, end)} of the "CXL Window N" resources."""
    out = {}
    for start, end, name, _ in iomem_entries(iomem):
        m = re.fullmatch(r"CXL Window (\d+)", name)
        if m:
            out[int(m.group(1))] = (start, end)
    return out


def soft_reserved_ranges(dmesg, iomem, scenario):
    """Inclusive (start, end) ranges, in address order: e820 Soft Reserved entries the kernel
    reported, plus the ranges cxl_test mocks (the first half of CXL Window 0, or its pieces)."""
    ranges = {(int(a, 16), int(b, 16)) for a, b in _SR_LINE.findall(dmesg)}
    window = cxl_windows(iomem).get(0)
    for sr in scenario.soft_reserved:
        if sr.kind != "cxl_test" or not window:
            continue
        if sr.pieces:
            piece = CXL_TEST_PIECE
            ranges.update((window[0] + i * piece, window[0] + (i + 1) * piece - 1) for i in range(sr.pieces))
        else:
            ranges.add((window[0], window[0] + (window[1] - window[0] + 1) // 2 - 1))
    return sorted(ranges)


def decisions(dmesg):
    """[(host, message, start, end)] in log order."""
    return [(h, msg, int(a, 16), int(b, 16)) for h, msg, a, b in _DECISION.findall(dmesg)]


def dax_regions(tsv):
    """Unique dax regions: (kind, region sysfs path, start, end). kind is hmem or cxl."""
    out = {}
    for line in tsv.splitlines():
        fields = line.split("\t")
        if len(fields) < 4 or not fields[3]:
            continue
        name, path, start, size = fields[:4]
        region = path.rsplit("/", 1)[0]
        if re.search(r"/hmem_platform\.\d+/hmem\.\d+$", region):
            kind = "hmem"
        elif re.search(r"/region\d+/dax_region\d+$", region):
            kind = "cxl"
        else:
            kind = "other"
        start = int(start, 0)
        out[region] = (kind, region, start, start + int(size, 0) - 1)
    return sorted(out.values(), key=lambda r: r[2])


def owner(sr, regions):
    """Who owns Soft Reserved range sr: hmem (a dax region exactly over it, under hmem.N),
    cxl (a dax region under a CXL region containing it), none, or 'conflict: ...'. A range
    that dax regions tile piece by piece (dax_hmem split=1) is owned by each piece's owner in
    address order, joined by '+' ("hmem+cxl+hmem"), with "none" for a gap."""
    start, end = sr
    overlapping = sorted((r for r in regions if r[2] <= end and r[3] >= start), key=lambda r: r[2])
    kinds = sorted({r[0] for r in overlapping})
    if not overlapping:
        return "none"
    if kinds == ["hmem"] and any((r[2], r[3]) == (start, end) for r in overlapping):
        return "hmem"
    if kinds == ["cxl"] and any(r[2] <= start and r[3] >= end for r in overlapping):
        return "cxl"
    conflict = "conflict: " + ", ".join(f"{r[0]} {r[2]:#x}-{r[3]:#x}" for r in overlapping)
    pieces, at = [], start
    for kind, _, a, b in overlapping:
        # A CXL region may run on past either end of the range (containment is CXL's test);
        # an hmem region lies within it; none overlaps another.
        overlaps = a < at and not (kind == "cxl" and at == start)
        if overlaps or (kind == "hmem" and b > end) or kind == "other":
            return conflict
        if a > at:
            pieces.append("none")
        pieces.append(kind)
        at = b + 1
    if at <= end:
        pieces.append("none")
    return "+".join(pieces)


def loaded_modules(proc_modules):
    """{module: [modules using it]} from /proc/modules."""
    out = {}
    for line in proc_modules.splitlines():
        fields = line.split()
        if len(fields) >= 4:
            out[fields[0]] = [u for u in fields[3].split(",") if u and u != "-"]
    return out


def dax_hmem_implementation(symbols):
    """Which dax_hmem was loaded, from its lines of /proc/kallsyms ("ADDRESS TYPE NAME
    [dax_hmem]"): "rust" when it has Rust-mangled (_R...) symbols, "c" when it has symbols and
    none of them is, None when the module was not loaded."""
    names = [fields[2] for fields in map(str.split, symbols.splitlines()) if len(fields) >= 3]
    if not names:
        return None
    return "rust" if any(n.startswith("_R") for n in names) else "c"


def kmem_over(sr, iomem):
    """True when kmem added all of the range as memory: "System RAM (kmem)" resources over
    every byte of it (one, or one per piece of a split range)."""
    start, end = sr
    added = _merged([(a, b) for a, b, name, _ in iomem_entries(iomem) if name == "System RAM (kmem)"])
    return any(a <= start and b >= end for a, b in added)


def _merged(intervals):
    """Inclusive (start, end) intervals, sorted and merged where they overlap or touch."""
    out = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def kmem_spans(iomem):
    """Memory kmem added ("System RAM (kmem)"), as inclusive (start, end) spans."""
    return [(a, b) for a, b, name, _ in iomem_entries(iomem) if name == "System RAM (kmem)"]


def bound_dax_spans(tsv):
    """Dax devices bound to a driver (device_dax, kmem, ...) in dax-devices.tsv, as inclusive
    (start, end) spans."""
    spans = []
    for line in tsv.splitlines():
        fields = line.split("\t")
        if len(fields) < 6 or fields[5] in ("", "-"):
            continue
        try:
            start, size = int(fields[2], 0), int(fields[4], 0)
        except ValueError:
            continue
        if size:
            spans.append((start, start + size - 1))
    return spans


def usable_spans(tsv, iomem):
    """Where memory ended up usable: a dax device bound to a driver (device_dax, or kmem), and
    memory kmem added (left offline by memhp_default_state=offline, for an administrator to
    online). Merged inclusive (start, end) spans."""
    return _merged(kmem_spans(iomem) + bound_dax_spans(tsv))


def bytes_lost(sr, spans):
    """The bytes of Soft Reserved range sr outside every usable span: memory that no dax
    device with a driver and no kmem-added memory covers."""
    start, end = sr
    covered = sum(max(0, min(end, b) - max(start, a) + 1) for a, b in spans)
    return end - start + 1 - covered


_REPORT_LINE = re.compile(
    r"^(hmem_platform\.\d+) \[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\] (\S+) (\S+) (\S+)$")


def disposition_report(text):
    """The Rust module's disposition report (debugfs dax_hmem/disposition): ([{host, start,
    end, decision, reason, owner}], complete). Lines it cannot parse are returned as
    {"bad": line}."""
    lines, complete = [], True
    for line in text.splitlines():
        if line.startswith("#"):
            complete = complete and not line.startswith("# incomplete")
            continue
        m = _REPORT_LINE.match(line)
        if not m:
            lines.append({"bad": line})
            continue
        host, a, b, decision, reason, owner_ = m.groups()
        lines.append({"host": host, "start": int(a, 16), "end": int(b, 16), "decision": decision,
                      "reason": reason, "owner": owner_})
    return lines, complete


def disposition_disagreements(report, srs, regions):
    """Where the disposition report disagrees with sysfs: its lines must tile the Soft
    Reserved ranges, and each line's owner must be what the dax regions show: hmem.N's dax
    region exactly over it for an hmem decision, regionN's dax region around it for a cxl
    one, and no hmem dax region over it otherwise. Returns one message per disagreement."""
    lines, complete = disposition_report(report)
    if not complete:
        return []  # it says so itself; a lost record is not a wrong one
    out = [f"unparsable line {l['bad']!r}" for l in lines if "bad" in l]
    lines = [l for l in lines if "bad" not in l]
    reported = _merged([(l["start"], l["end"]) for l in lines])
    if reported != _merged(srs):
        out.append("its ranges " + ", ".join(f"{a:#x}-{b:#x}" for a, b in reported) + " are not the "
                   "Soft Reserved ranges " + ", ".join(f"{a:#x}-{b:#x}" for a, b in srs))
    for l in lines:
        span = f"[{l['start']:#x}-{l['end']:#x}]"
        over = [r for r in regions if r[2] <= l["end"] and r[3] >= l["start"]]
        hmem = [r for r in over if r[0] == "hmem"]
        if l["decision"] == "pending":
            out.append(f"{span} is still pending")
        elif l["decision"] == "hmem" and l["owner"] != "-":
            if not any(r[1].endswith("/" + l["owner"]) and (r[2], r[3]) == (l["start"], l["end"])
                       for r in hmem):
                out.append(f"{span}: the report says {l['owner']}, but no dax region of "
                           f"{l['owner']} is over exactly that range")
        elif l["decision"] == "cxl" and l["owner"] != "-":
            if not any(r[0] == "cxl" and re.search(rf"/{l['owner']}/dax_region\d+$", r[1])
                       and r[2] <= l["start"] and r[3] >= l["end"] for r in over):
                out.append(f"{span}: the report says {l['owner']}, but no dax region of "
                           f"{l['owner']} contains it")
        elif hmem:
            out.append(f"{span}: the report says {l['decision']} ({l['reason']}), but an hmem "
                       f"dax region is over it")
    return out


def iomem_tree_missing(iomem, pattern):
    """The first line of pattern (resource names, two-space indented to show nesting) that
    /proc/iomem does not have at that place, or None when the whole nesting is there."""
    entries = iomem_entries(iomem)
    parents = {}  # depth in pattern -> index in entries of the matched resource
    for line in (l for l in pattern.splitlines() if l.strip()):
        depth = (len(line) - len(line.lstrip(" "))) // 2
        name = line.strip()
        if depth and depth - 1 not in parents:
            return line.strip()
        found = None
        if not depth:  # the top of the pattern may sit at any depth
            found = next((i for i, e in enumerate(entries) if e[2] == name), None)
        else:
            parent = parents[depth - 1]
            child_depth = entries[parent][3] + 1
            for i in range(parent + 1, len(entries)):
                if entries[i][3] < child_depth:
                    break  # left the parent's subtree
                if entries[i][3] == child_depth and entries[i][2] == name:
                    found = i
                    break
        if found is None:
            return name
        parents = {d: v for d, v in parents.items() if d < depth}
        parents[depth] = found
    return None


def evaluate_stage(scenario, files, driver=None):
    """Check one stage's results against the scenario's expectations. Returns
    (ranges, failures)."""
    failures = []
    if driver is not None:
        loaded = dax_hmem_implementation(files.get("dax_hmem-symbols.txt", ""))
        if loaded != driver:
            failures.append(f"driver={driver}, but the guest ran " +
                            (f"the {loaded} dax_hmem" if loaded else "no dax_hmem"))
    modules = loaded_modules(files.get("proc-modules.txt", ""))
    for module, users in scenario.module_users.items():
        if module not in modules:
            failures.append(f"module {module} is not loaded")
        for user in users:
            if user not in modules.get(module, [user]):
                failures.append(f"module {user} does not use {module} (/proc/modules)")

    dmesg = files.get("dmesg.txt", "")
    iomem = files.get("proc-iomem.txt", "")
    srs = soft_reserved_ranges(dmesg, iomem, scenario)
    regions = dax_regions(files.get("dax-devices.tsv", ""))
    logged = decisions(dmesg)
    spans = usable_spans(files.get("dax-devices.tsv", ""), iomem)
    ranges = []
    for sr in srs:
        lines = [msg for _, msg, a, b in logged if (a, b) == sr]
        ranges.append({"start": sr[0], "end": sr[1], "owner": owner(sr, regions), "decisions": lines,
                       "kmem": kmem_over(sr, iomem), "lost": bytes_lost(sr, spans)})
    if len(ranges) != len(scenario.expect):
        failures.append(f"expected {len(scenario.expect)} Soft Reserved range(s), found {len(ranges)}: "
                        + ", ".join(f"{r['start']:#x}-{r['end']:#x}" for r in ranges))
    for i, (got, want) in enumerate(zip(ranges, scenario.expect)):
        rng = f"range {i} [{got['start']:#x}-{got['end']:#x}]"
        if got["owner"] != want.owner:
            failures.append(f"{rng}: owner {got['owner']}, expected {want.owner}")
        if tuple(got["decisions"]) != want.decisions:
            failures.append(f"{rng}: decisions {got['decisions']}, expected {list(want.decisions)}")
        if want.kmem is not None and got["kmem"] != want.kmem:
            failures.append(f"{rng}: kmem {'added' if got['kmem'] else 'did not add'} it as System RAM, "
                            f"expected {'added' if want.kmem else 'not added'}")
        if want.lost is not None and got["lost"] != want.lost:
            failures.append(f"{rng}: {got['lost']:#x} bytes lost, expected {want.lost:#x}")
    if scenario.expect_dax_regions:
        counts = {kind: sum(r[0] == kind for r in regions) for kind in ("hmem", "cxl", "other")}
        for kind, want in scenario.expect_dax_regions.items():
            if counts[kind] != want:
                failures.append(f"{counts[kind]} {kind} dax region(s), expected {want}")
    if scenario.expect_iomem:
        missing = iomem_tree_missing(iomem, scenario.expect_iomem)
        if missing:
            failures.append(f"/proc/iomem lacks the expected nesting at {missing!r}")
    for text in scenario.expect_log:
        if text not in dmesg:
            failures.append(f"the kernel log lacks {text!r}")
    for text in scenario.reject_log:
        if text in dmesg:
            failures.append(f"the kernel log has {text!r}")
    loaded = dax_hmem_implementation(files.get("dax_hmem-symbols.txt", ""))
    if loaded == "rust":
        # The Rust module always has its report, and it must tell what sysfs shows.
        if "disposition.txt" not in files:
            failures.append("the Rust dax_hmem is loaded, but debugfs has no dax_hmem/disposition")
        else:
            failures += ["disposition report: " + d for d in
                         disposition_disagreements(files["disposition.txt"], srs, regions)]
    return ranges, failures


def last_message(steps_log):
    """What the failing step printed itself: the last non-trace line (set -x traces start
    with '+') after the last trace other than the final exit, so that an earlier step's
    output is never taken for the failure's reason. Cut to 200 characters."""
    lines = [l.strip() for l in steps_log.splitlines() if l.strip()]
    while lines and re.match(r"\+ (exit|return)\b", lines[-1]):
        lines.pop()
    said = []
    for line in reversed(lines):
        if line.startswith("+"):
            break
        said.append(line)
    return said[0][:200] if said else ""


def evaluate(scenario, stages, console, driver=None):
    """Compare a run with the scenario's expectations.

    stages: one {file name: text} per stage that reported; console: the console log; driver:
    the driver name the run was for, checked against the dax_hmem the guest had loaded.
    Returns ({checked stage: ranges}, failures)."""
    failures, excused = [], set()
    for i, files in enumerate(stages, 1):
        lines, _ = excused_leaks(files)
        excused |= lines
        for name in ("dmesg.txt", "kmemleak.txt"):
            for line in faults(files.get(name, "")):
                if line not in lines:
                    failures.append(f"stage {i} {name}: {line}")
        rc = files.get("steps.rc", "").strip()
        if rc not in ("0", "kexec"):
            said = last_message(files.get("steps.log", ""))
            failures.append(f"stage {i}: guest steps exited with {rc or 'no status'}" + (f": {said}" if said else ""))
    for line in faults(console):
        if line not in excused and not any(line in f for f in failures):
            failures.append(f"console: {line}")
    if len(stages) != len(scenario.stages):
        failures.append(f"{len(stages)} of {len(scenario.stages)} stages reported")
        return {}, failures
    checked = {}
    for n in scenario.check_stages:
        ranges, stage_failures = evaluate_stage(scenario, stages[n - 1], driver)
        prefix = f"stage {n}: " if len(scenario.check_stages) > 1 else ""
        failures += [prefix + f for f in stage_failures]
        checked[n] = ranges
    return checked, failures
