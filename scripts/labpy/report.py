"""The parity matrix: each scenario's runs, one per driver, compared with the expectations and
with each other. Printed as a table, and written as Markdown, JSON and an HTML page that shows,
per scenario, a memory map of the Soft Reserved ranges (memmap_svg) and the /proc/iomem trees
side by side."""

import difflib
import html
import json
import re
from pathlib import Path

from . import analysis, compare, memmap_svg


def matrix(scenarios, runs, drivers):
    """One row per scenario. runs: {(scenario name, driver name): summary}. The first driver is
    the reference the others are compared with, except drivers run with module options
    (NAME:OPTION=VALUE), which are meant to differ and are judged by the expectations alone."""
    rows = []
    compared = [d for d in drivers[1:] if "=" not in d]
    for s in scenarios:
        by_driver = {d: runs[(s.name, d)] for d in drivers if (s.name, d) in runs}
        ref = by_driver.get(drivers[0])
        differences = []
        for d in compared:
            other = by_driver.get(d)
            if ref is None or other is None:
                continue
            if ref.get("aspects") and other.get("aspects"):
                differences += compare.differences(ref["aspects"], other["aspects"], (drivers[0], d))
            else:
                differences.append(f"{drivers[0]} vs {d}: not comparable (a run did not finish)")
        passed = all(r["status"] == "pass" for r in by_driver.values()) and not differences
        rows.append({"scenario": s.name, "description": s.description, "proves": s.proves,
                     "expected": [e.owner for e in s.expect]
                     or [f"{n} {k}" for k, n in s.expect_dax_regions.items()],
                     "runs": by_driver,
                     "match": None if ref is None or not any(d in by_driver for d in compared) else not differences,
                     "differences": differences, "result": "pass" if passed else "fail"})
    return rows


def _owners(run):
    return ", ".join(r["owner"] for r in run.get("ranges", [])) or "-"


def _lost(run):
    """Soft Reserved bytes in no bound dax device and not added by kmem."""
    lost = run.get("bytes_lost") if run else None
    if lost is None:
        return "-"
    return f"{lost / (1 << 20):.0f}M" if lost >= 1 << 20 else f"{lost / 1024:.0f}K" if lost >= 1024 \
        else str(lost)


def _cells(row, drivers):
    cells = [row["scenario"], ", ".join(row["expected"]) or "-"]
    for d in drivers:
        run = row["runs"].get(d)
        cells += [f"{_owners(run)} ({run['status']})" if run else "-", _lost(run),
                  f"{run['seconds']:.1f}" if run else "-"]
    cells += [{None: "-", True: "yes", False: "NO"}[row["match"]], row["result"]]
    return cells


def _head(drivers):
    return ["scenario", "expected"] + [x for d in drivers for x in (f"{d} owner", f"{d} lost", f"{d} s")] + \
        ["match", "result"]


def _problems(rows):
    for row in rows:
        for d, run in row["runs"].items():
            for f in run.get("failures", []):
                yield row["scenario"], f"driver={d}: {f}"
        for f in row["differences"]:
            yield row["scenario"], f"differs: {f}"


def _console_end(run):
    """Where a timed-out guest stopped: the guest's hang report (analysis.HANG_REPORT), or
    else the console's last non-empty line, printable."""
    if not run.get("run_dir"):
        return None
    try:
        lines = (Path(run["run_dir"]) / "console.log").read_text(errors="replace").splitlines()
    except OSError:
        return None
    hang = [ln for ln in lines if re.search(analysis.HANG_REPORT, ln)]
    last = hang[-1] if hang else next((ln for ln in reversed(lines) if ln.strip()), None)
    return last and "".join(c if c.isprintable() else "?" for c in last.strip())[:400]


def closing_lines(rows):
    """One line per failed scenario, its first problem, for the end of the output (CI shows
    only the end): a timed-out run adds where its console stopped."""
    for row in rows:
        if row["result"] == "pass":
            continue
        problem = next((p for s, p in _problems([row])), "no run finished")
        ends = [(d, _console_end(r)) for d, r in row["runs"].items() if r["status"] == "timeout"]
        yield f"failed: {row['scenario']}: {problem}" + "".join(
            f"; driver={d}'s console ends: {end}" for d, end in ends if end)


def aligned(head, body):
    """A plain-text table: each column as wide as its widest cell."""
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*head)] + [fmt.format(*cells).rstrip() for cells in body]


def text(rows, drivers):
    lines = aligned(_head(drivers), [_cells(r, drivers) for r in rows])
    lines += [f"  {s}: {p}" for s, p in _problems(rows)]
    return "\n".join(lines)


def markdown(rows, drivers):
    head = _head(drivers)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cells(r, drivers)) + " |" for r in rows]
    lines += ["", "lost: Soft Reserved bytes that end in no dax device bound to a driver and not in "
              "memory kmem added.", "", "Normalised before comparing /proc/iomem: "
              + "; ".join(f"{k}: {v}" for k, v in compare.NORMALISED.items()) + "."]
    problems = list(_problems(rows))
    if problems:
        lines += ["", "Failures:", ""] + [f"- {s}: {p}" for s, p in problems]
    return "\n".join(lines) + "\n"


def _tree_rows(left, right):
    """Side-by-side rows (class, left line, right line) of two iomem texts."""
    a, b = left.splitlines(), right.splitlines()
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out += [("same", x, y) for x, y in zip(a[i1:i2], b[j1:j2])]
            continue
        n = max(i2 - i1, j2 - j1)
        ls, rs = a[i1:i2] + [""] * (n - (i2 - i1)), b[j1:j2] + [""] * (n - (j2 - j1))
        out += [("differ", x, y) for x, y in zip(ls, rs)]
    return out


_STYLE = """
body { font-family: sans-serif; margin: 1em 2em; }
table.iomem { border-collapse: collapse; font-family: monospace; font-size: 12px; }
table.iomem td { padding: 0 1em; white-space: pre; vertical-align: top; }
table.iomem tr.differ td { background: #ffd7d7; }
td.sr { font-weight: bold; color: #0645ad; }
.pass { color: #176317; } .fail { color: #b00000; }
figure.memmap { margin: 0.5em 0 1em 0; }
figure.memmap figcaption { font-size: 13px; color: #444; margin-bottom: 2px; }
"""


def _stage_files(run, stage):
    """(proc-iomem.txt, dax-devices.tsv or None) of a checked stage, from the run directory
    the runner wrote (the last stage in it, earlier ones in stageN/); /proc/iomem falls back
    on the compared, normalised copy."""
    iomem = run.get("aspects", {}).get(stage, {}).get("iomem", "")
    run_dir = run.get("run_dir")
    if not run_dir:
        return iomem, None
    d = Path(run_dir) / f"stage{stage}"
    d = d if d.is_dir() else Path(run_dir)
    try:
        iomem = (d / "proc-iomem.txt").read_text()
    except OSError:
        pass
    try:
        return iomem, (d / "dax-devices.tsv").read_text()
    except OSError:
        return iomem, None


def _lane(driver, run, stage):
    if run is None:
        return memmap_svg.Lane(driver, [], note="not run")
    if stage not in run.get("stages", {}):
        return memmap_svg.Lane(driver, [], note=f"no result ({run.get('status', '?')})")
    srs = [(int(r["start"], 16), int(r["end"], 16)) for r in run["stages"][stage]]
    iomem, tsv = _stage_files(run, stage)
    if tsv is None:
        where = run.get("run_dir")
        return memmap_svg.Lane(driver, srs, iomem, note=f"no dax-devices.tsv in {where}" if where
                               else "no run directory")
    return memmap_svg.Lane(driver, srs, iomem, tsv)


def memory_maps(row, drivers):
    """One <figure> with an SVG memory map per checked stage of the scenario: a lane per
    driver, the first the reference."""
    stages = sorted({s for run in row["runs"].values() for s in run.get("stages", {})}, key=int) or ["1"]
    out = []
    for stage in stages:
        lanes = [_lane(d, row["runs"].get(d), stage) for d in drivers]
        caption = (f"stage {stage}: " if len(stages) > 1 else "") + \
            "who owns each Soft Reserved byte, and what became of it"
        title = f"{row['scenario']}" + (f", stage {stage}" if len(stages) > 1 else "") + ": memory map"
        out.append(f"<figure class='memmap' data-scenario='{html.escape(row['scenario'], quote=True)}' "
                   f"data-stage='{html.escape(stage, quote=True)}'><figcaption>{html.escape(caption)}"
                   f"</figcaption>{memmap_svg.render(lanes, title)}</figure>")
    return "\n".join(out)


def _sr_marked(line, ranges):
    """True when the iomem line's range overlaps a Soft Reserved range."""
    try:
        span = line.split(" : ", 1)[0].strip()
        lo, hi = (int(x, 16) for x in span.split("-"))
    except ValueError:
        return False
    return any(int(r["start"], 16) <= hi and int(r["end"], 16) >= lo for r in ranges)


def html_page(rows, drivers):
    ref, others = drivers[0], drivers[1:]
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>dax_hmem parity</title>"
             f"<style>{_STYLE}</style></head><body><h1>dax_hmem: /proc/iomem, "
             f"{html.escape(' vs '.join(drivers))}</h1>",
             "<p>Normalised: " + html.escape("; ".join(f"{k}: {v}" for k, v in compare.NORMALISED.items()))
             + ". Each scenario's map shows, per driver, the owner of every Soft Reserved byte (upper "
             "bar) and what became of it (lower bar); spans that differ from the first driver are "
             "outlined. In the /proc/iomem trees, rows in red differ; bold lines overlap a Soft Reserved "
             "range.</p><ul>"]
    for row in rows:
        name = html.escape(row["scenario"], quote=True)
        parts.append(f"<li><a href='#{name}'>{name}</a> "
                     f"<span class='{row['result']}'>{row['result']}</span></li>")
    parts.append("</ul>")
    for row in rows:
        name = html.escape(row["scenario"], quote=True)
        parts.append(f"<section class='scenario' data-scenario='{name}'>"
                     f"<h2 id='{name}'>{name} <span class='{row['result']}'>{row['result']}</span></h2>"
                     f"<p>{html.escape(row['description'])}</p>")
        for p in [p for s, p in _problems([row])]:
            parts.append(f"<p class='fail'>{html.escape(p)}</p>")
        parts.append(memory_maps(row, drivers))
        left = row["runs"].get(ref, {})
        for other in others:
            right = row["runs"].get(other, {})
            stages = sorted(set(left.get("aspects", {})) | set(right.get("aspects", {})), key=int)
            for stage in stages:
                a = left.get("aspects", {}).get(stage, {}).get("iomem", "")
                b = right.get("aspects", {}).get(stage, {}).get("iomem", "")
                ranges = left.get("stages", {}).get(stage, []) or right.get("stages", {}).get(stage, [])
                title = f"stage {stage}: " if len(stages) > 1 else ""
                parts.append(f"<table class='iomem'><tr><th>{html.escape(title + ref)}</th>"
                             f"<th>{html.escape(title + other)}</th></tr>")
                for cls, x, y in _tree_rows(a, b):
                    cells = "".join(f"<td class='{'sr' if _sr_marked(v, ranges) else ''}'>{html.escape(v)}</td>"
                                    for v in (x, y))
                    parts.append(f"<tr class='{cls}'>{cells}</tr>")
                parts.append("</table>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write(out_dir, rows, drivers):
    out_dir.mkdir(parents=True, exist_ok=True)
    slim = [dict(r, runs={d: {k: v for k, v in run.items() if k != "aspects"} for d, run in r["runs"].items()})
            for r in rows]
    doc = {"drivers": list(drivers), "normalised": compare.NORMALISED, "scenarios": slim}
    (out_dir / "summary.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out_dir / "summary.md").write_text(markdown(rows, drivers))
    (out_dir / "iomem.html").write_text(html_page(rows, drivers))
