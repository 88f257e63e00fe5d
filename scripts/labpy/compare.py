"""C against Rust: the same scenario's runs, compared output by output.

Compared, per checked stage:
  iomem      /proc/iomem, normalised (see NORMALISED);
  owners     the owner of each Soft Reserved range;
  decisions  dax_hmem's decision lines of each range;
  daxctl     `daxctl list -RD` (region paths, ids, sizes, devices);
  cxl        `cxl list -R`.
"""

import json
import re

# What differs between two boots of the same guest for reasons that have nothing to do with
# dax_hmem. Nothing else is normalised: dax, hmem and region names must match exactly.
NORMALISED = {
    "kernel image": "the Kernel code/rodata/data/bss lines are dropped: KASLR moves them, "
                    "even under another System RAM parent",
    "endpoint ports": "endpointN becomes endpoint#: CXL port ids follow the order in which "
                      "memdevs probe, which is concurrent",
    "adapter ROMs": "Adapter ROM lines are dropped: the kernel's scan of the legacy ROM area "
                    "found a second one in 1 of 57 boots of the same guest",
}
_DROPPED = re.compile(r"^\s*[0-9a-f]+-[0-9a-f]+ : (Kernel (code|rodata|data|bss)|Adapter ROM)$")
_ENDPOINT = re.compile(r"(: endpoint)\d+$")

ASPECTS = ("iomem", "owners", "decisions", "daxctl", "cxl")


def normalise_iomem(text):
    return "\n".join(_ENDPOINT.sub(r"\1#", line) for line in text.splitlines()
                     if not _DROPPED.match(line)) + "\n"


def _json(text):
    try:
        return json.loads(text) if text.strip() else []
    except json.JSONDecodeError:
        return {"unparsable": text.strip()}


def aspects(stage_files, ranges):
    """The compared outputs of one stage: {aspect: comparable value}."""
    return {
        "iomem": normalise_iomem(stage_files.get("proc-iomem.txt", "")),
        "owners": [r["owner"] for r in ranges],
        "decisions": [r["decisions"] for r in ranges],
        "daxctl": _json(stage_files.get("daxctl-list.json", "")),
        "cxl": _json(stage_files.get("cxl-list-regions.json", "")),
    }


def _first_difference(a, b):
    if isinstance(a, str) and isinstance(b, str):
        la, lb = a.splitlines(), b.splitlines()
        for i, (x, y) in enumerate(zip(la, lb), 1):
            if x != y:
                return f"line {i}: {x.strip()!r} != {y.strip()!r}"
        return f"{len(la)} lines != {len(lb)} lines"
    return f"{json.dumps(a)[:160]} != {json.dumps(b)[:160]}"


def differences(left, right, names=("c", "rust")):
    """[message] for each aspect that differs between two {stage: aspects} maps."""
    out = []
    stages = sorted(set(left) | set(right))
    for stage in stages:
        a, b = left.get(stage), right.get(stage)
        where = f"stage {stage} " if len(stages) > 1 else ""
        if a is None or b is None:
            out.append(f"{where}reported by {names[0] if a is not None else names[1]} only")
            continue
        for aspect in ASPECTS:
            if a[aspect] != b[aspect]:
                out.append(f"{where}{aspect}: {names[0]} vs {names[1]}: "
                           f"{_first_difference(a[aspect], b[aspect])}")
    return out

