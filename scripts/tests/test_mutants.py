"""The matrix catches a broken Rust module, at the scenarios it should.

Each scripts/mutants/NAME.patch breaks the Rust module on purpose and names, in its header,
the scenarios it must fail and the ones it must still pass. This test runs the real matrix
in QEMU (C as the reference, each mutant built from its patch) and checks both lists: a
mutant that the matrix let through, or a scenario it failed for no reason, fails the test.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labpy import drivers, kernel  # noqa: E402
from labpy.errors import LabError  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def lab_kernel_ready():
    try:
        kernel.load()
        return True
    except LabError:
        return False


class MutantPatches(unittest.TestCase):
    """Without a kernel: every mutant still applies, exactly, to today's sources. A patch that
    no longer applies would fail only in the QEMU test above, as a build error."""

    def test_each_patch_applies_without_offset_or_fuzz(self):
        for patch in sorted((ROOT / "scripts" / "mutants").glob("*.patch")):
            done = subprocess.run(["patch", "--dry-run", "--fuzz=0", "-p1", "-d", str(ROOT), "-i", str(patch)],
                                  capture_output=True, text=True)
            self.assertEqual(done.returncode, 0, f"{patch.name}: {done.stdout}{done.stderr}")
            self.assertNotIn("offset", done.stdout, f"{patch.name}: {done.stdout}")


@unittest.skipUnless(lab_kernel_ready(), "no lab kernel (make kernel)")
class Mutants(unittest.TestCase):
    def test_each_mutant_fails_exactly_the_scenarios_it_names(self):
        mutants = drivers.mutants()
        self.assertGreaterEqual(len(mutants), 2)
        for name, lists in mutants.items():
            self.assertTrue(lists.get("fails") and lists.get("passes"), f"{name}: header needs fails: and passes:")
        scenarios = sorted({s for lists in mutants.values() for s in lists["fails"] + lists["passes"]})
        driver_list = ",".join(["c"] + [f"mutant:{m}" for m in mutants])
        with tempfile.TemporaryDirectory() as out:
            done = subprocess.run([str(ROOT / "scripts" / "lab"), "run", "--driver", driver_list, "--out", out,
                                   *scenarios], capture_output=True, text=True, env=os.environ)
            self.assertIn(done.returncode, (0, 1), done.stderr)
            doc = json.loads(Path(out, "summary.json").read_text())
        rows = {row["scenario"]: row for row in doc["scenarios"]}
        for name, lists in mutants.items():
            driver = f"mutant:{name}"
            for s in scenarios:
                row = rows[s]
                self.assertEqual(row["runs"]["c"]["status"], "pass", f"{s}: the C reference failed: {row}")
                own = row["runs"][driver]
                self.assertNotIn(own["status"], ("error", "timeout"), f"{s} {driver}: {own['failures']}")
                caught = own["status"] != "pass" or any(f"vs {driver}:" in d for d in row["differences"])
                if s in lists["fails"]:
                    self.assertTrue(caught, f"{driver} passed {s}, which it must fail")
                elif s in lists["passes"]:
                    self.assertFalse(caught, f"{driver} failed {s}: {own['failures']} {row['differences']}")


if __name__ == "__main__":
    unittest.main()
