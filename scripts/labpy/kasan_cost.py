#!/usr/bin/env python3
"""Print, per scenario and driver, a run's seconds on the lab kernel and on the KASAN kernel
and their ratio, from two `lab run --out` directories: kasan_cost.py LAB_OUT KASAN_OUT NAME..."""

import json
import sys
from pathlib import Path


def seconds(out, name, driver):
    """A passed run's seconds; None for a run that failed, timed out or was booted twice
    (its time says nothing about the kernel)."""
    try:
        summary = json.loads((Path(out) / name / driver / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    if summary.get("status") != "pass" or summary.get("qemu_crashed"):
        return None
    return summary.get("seconds")


def main(argv):
    if len(argv) < 3:
        print("usage: kasan_cost.py LAB_OUT KASAN_OUT SCENARIO...", file=sys.stderr)
        return 2
    lab, kasan, names = argv[0], argv[1], argv[2:]
    print(f"{'scenario':30} {'driver':6} {'lab s':>7} {'kasan s':>8} {'ratio':>6}")
    total = [0.0, 0.0]
    for name in names:
        for driver in ("c", "rust"):
            a, b = seconds(lab, name, driver), seconds(kasan, name, driver)
            if a is None or b is None:
                print(f"{name:30} {driver:6} {'-':>7} {'-':>8} {'-':>6}")
                continue
            total[0] += a
            total[1] += b
            print(f"{name:30} {driver:6} {a:7.1f} {b:8.1f} {b / a:6.2f}")
    if total[0]:
        print(f"{'all':30} {'':6} {total[0]:7.1f} {total[1]:8.1f} {total[1] / total[0]:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
