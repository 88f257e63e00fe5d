"""What a guest run shows: faults, Soft Reserved ranges, dax_hmem's decisions, and owners.

Everything here reads the files a guest wrote (see scripts/guest/lib.sh), never the console,
except for faults, which are also looked for in the console log because a panic may stop the
guest before it writes anything.
"""

import re

from .scenario import DECISIONS

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
    reported, plus the ranges cxl_test mocks (first half of CXL Window 0)."""
    ranges = {(int(a, 16), int(b, 16)) for a, b in _SR_LINE.findall(dmesg)}
    if any(sr.kind == "cxl_test" for sr in scenario.soft_reserved):
        window = cxl_windows(iomem).get(0)
        if window:
            start, end = window
            ranges.add((start, start + (end - start + 1) // 2 - 1))
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
    cxl (a dax region under a CXL region containing it), none, or 'conflict: ...'."""
    start, end = sr
    overlapping = [r for r in regions if r[2] <= end and r[3] >= start]
    kinds = sorted({r[0] for r in overlapping})
    if not overlapping:
        return "none"
    if kinds == ["hmem"] and any((r[2], r[3]) == (start, end) for r in overlapping):
        return "hmem"
    if kinds == ["cxl"] and any(r[2] <= start and r[3] >= end for r in overlapping):
        return "cxl"
    return "conflict: " + ", ".join(f"{r[0]} {r[2]:#x}-{r[3]:#x}" for r in overlapping)


def loaded_modules(proc_modules):
    """{module: [modules using it]} from /proc/modules."""
    out = {}
    for line in proc_modules.splitlines():
        fields = line.split()
        if len(fields) >= 4:
            out[fields[0]] = [u for u in fields[3].split(",") if u and u != "-"]
    return out


def dax_hmem_implementation(symbols):
    """Which dax_hmem was loaded, from its symbol names in /proc/kallsyms: "rust" when it has
    Rust-mangled (_R...) symbols, "c" when it has symbols and none of them is, None when the
    module was not loaded."""
    names = symbols.split()
    if not names:
        return None
    return "rust" if any(n.startswith("_R") for n in names) else "c"


def evaluate(scenario, final, stages, driver=None):
    """Compare a run with the scenario's expectations.

    final: {file name: text} of the last stage; stages: list of such dicts, one per stage
    that reported (console log under "console.log" in final); driver: the driver name the run
    was for, checked against the dax_hmem the guest had loaded. Returns (ranges, failures)."""
    failures = []
    for i, files in enumerate(stages, 1):
        for name in ("dmesg.txt", "kmemleak.txt"):
            for line in faults(files.get(name, "")):
                failures.append(f"stage {i} {name}: {line}")
        rc = files.get("steps.rc", "").strip()
        if rc not in ("0", "kexec"):
            failures.append(f"stage {i}: guest steps exited with {rc or 'no status'}")
    for line in faults(final.get("console.log", "")):
        if not any(line in f for f in failures):
            failures.append(f"console: {line}")
    if len(stages) != len(scenario.stages):
        failures.append(f"{len(stages)} of {len(scenario.stages)} stages reported")
        return [], failures

    if driver is not None:
        loaded = dax_hmem_implementation(final.get("dax_hmem-symbols.txt", ""))
        if loaded != driver:
            failures.append(f"driver={driver}, but the guest ran " +
                            (f"the {loaded} dax_hmem" if loaded else "no dax_hmem"))
    modules = loaded_modules(final.get("proc-modules.txt", ""))
    for module, users in scenario.module_users.items():
        if module not in modules:
            failures.append(f"module {module} is not loaded")
        for user in users:
            if user not in modules.get(module, [user]):
                failures.append(f"module {user} does not use {module} (/proc/modules)")

    dmesg = final.get("dmesg.txt", "")
    srs = soft_reserved_ranges(dmesg, final.get("proc-iomem.txt", ""), scenario)
    regions = dax_regions(final.get("dax-devices.tsv", ""))
    logged = decisions(dmesg)
    ranges = []
    for sr in srs:
        lines = [msg for _, msg, a, b in logged if (a, b) == sr]
        ranges.append({"start": sr[0], "end": sr[1], "owner": owner(sr, regions), "decisions": lines})
    if len(ranges) != len(scenario.expect):
        failures.append(f"expected {len(scenario.expect)} Soft Reserved range(s), found {len(ranges)}: "
                        + ", ".join(f"{r['start']:#x}-{r['end']:#x}" for r in ranges))
    for i, (got, want) in enumerate(zip(ranges, scenario.expect)):
        rng = f"range {i} [{got['start']:#x}-{got['end']:#x}]"
        if got["owner"] != want.owner:
            failures.append(f"{rng}: owner {got['owner']}, expected {want.owner}")
        if tuple(got["decisions"]) != want.decisions:
            failures.append(f"{rng}: decisions {got['decisions']}, expected {list(want.decisions)}")
    return ranges, failures
