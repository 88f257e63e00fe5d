"""The scenario x driver table: printed, and written as Markdown and JSON."""

import json


def _owners(run):
    return ", ".join(r["owner"] for r in run.get("ranges", [])) or "-"


def table(runs):
    head = ["scenario", "driver", "owner", "expected", "result", "seconds"]
    rows = [[r["scenario"], r["driver"], _owners(r), ", ".join(e["owner"] for e in r.get("expected", [])) or "-",
             r["status"], f"{r['seconds']:.1f}"] for r in runs]
    return head, rows


def markdown(runs):
    head, rows = table(runs)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    failures = [(r["scenario"], r["driver"], f) for r in runs for f in r.get("failures", [])]
    if failures:
        lines += ["", "Failures:", ""] + [f"- {s} driver={d}: {f}" for s, d, f in failures]
    return "\n".join(lines) + "\n"


def text(runs):
    head, rows = table(runs)
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*head)] + [fmt.format(*row) for row in rows]
    for r in runs:
        for f in r.get("failures", []):
            lines.append(f"  {r['scenario']} driver={r['driver']}: {f}")
    return "\n".join(lines)


def write(out_dir, runs):
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps(runs, indent=2) + "\n")
    (out_dir / "summary.md").write_text(markdown(runs))
