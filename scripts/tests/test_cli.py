"""Bad input gets one clear line and a non-zero exit."""

import os
import re
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAB = str(ROOT / "scripts" / "lab")


def run(argv, env=None):
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {})})
    return done.returncode, done.stdout, done.stderr.strip().splitlines()


class Arguments(unittest.TestCase):
    def test_unknown_scenario(self):
        rc, _, err = run([LAB, "run", "no-such-scenario"])
        self.assertNotEqual(rc, 0)
        self.assertEqual(len(err), 1)
        self.assertRegex(err[0], r"^error: unknown scenario 'no-such-scenario' \(known: .*a-uncommitted")

    def test_unknown_driver(self):
        rc, _, err = run([LAB, "run", "--driver", "go", "a-uncommitted"])
        self.assertNotEqual(rc, 0)
        self.assertEqual(err, ["error: unknown driver 'go' (known: c, rust, dkms, mutant:NAME)"])

    def test_driver_options(self):
        for spec, line in (
                ("rust:nosuch=1", "error: driver rust has no parameter 'nosuch' (known: region_idle, split, reload, summary, deferral_timeout, cxl_settle)"),
                ("rust,region_idle=1", "error: --driver: option 'region_idle=1' follows no DRIVER:NAME=VALUE"),
                ("rust:region_idle=1,region_idle=0", "error: --driver: rust sets a parameter twice"),
                ("rust:region_idle=a b", "error: --driver: rust:region_idle needs a value of letters, digits, _ . -"),
                ("c,c:region_idle=1,c:region_idle=1",
                 "error: --driver names a driver twice: c,c:region_idle=1,c:region_idle=1")):
            rc, _, err = run([LAB, "run", "--driver", spec, "a-uncommitted"])
            self.assertEqual(rc, 2, spec)
            self.assertEqual(err, [line])

    def test_driver_parameters_are_the_modules(self):
        # --driver checks options against the lab's list; the module declares them in its C glue.
        sys.path.insert(0, str(ROOT / "scripts"))
        from labpy.drivers import PARAMETER_VALUES
        glue = (ROOT / "rust" / "dax_hmem_glue.c").read_text()
        declared = re.findall(r"^module_param(?:_named|_cb)?\((\w+),", glue, re.M)
        self.assertEqual(declared, list(PARAMETER_VALUES))

    def test_unknown_mutant(self):
        rc, _, err = run([LAB, "run", "--driver", "c,mutant:nope", "a-uncommitted"])
        self.assertNotEqual(rc, 0)
        self.assertEqual(err, ["error: unknown mutant 'nope' (known: flip-containment, leak-on-reload, skip-deferral)"])

    def test_bad_jobs(self):
        rc, _, err = run([LAB, "run", "--jobs", "0", "a-uncommitted"])
        self.assertNotEqual(rc, 0)
        self.assertEqual(err, ["error: --jobs must be at least 1"])

    def test_unknown_option(self):
        rc, _, err = run([LAB, "run", "--drvier", "c"])
        self.assertNotEqual(rc, 0)
        self.assertEqual(len(err), 1)
        self.assertTrue(err[0].startswith("error: "))

    def test_unsupported_kernel_artifacts(self):
        with tempfile.TemporaryDirectory() as d:
            Path(d, "kernel.env").write_text("KERNEL_RELEASE=7.2.9\nKDIR=/nonexistent\n")
            rc, _, err = run([LAB, "run", "c-no-cxl"], {"LAB_KERNEL": d})
        self.assertNotEqual(rc, 0)
        self.assertEqual(err, ["error: kernel 7.2.9 is not supported (only 7.3.x)"])

    def test_unsupported_kernel_series(self):
        rc, _, err = run([str(ROOT / "scripts" / "build-kernel.sh")], {"LAB_KERNEL_SERIES": "7.2"})
        self.assertNotEqual(rc, 0)
        self.assertEqual(err, ["error: kernel series 7.2 is not supported (only 7.3.x)"])

    def test_missing_kernel_package(self):
        # bookworm-backports carries no linux-source-7.3.
        with tempfile.TemporaryDirectory() as d:
            rc, _, err = run([str(ROOT / "scripts" / "build-kernel.sh")],
                             {"LAB_KERNEL_SUITE": "bookworm-backports", "LAB_CACHE": d})
        self.assertNotEqual(rc, 0)
        self.assertEqual(err, ["error: kernel package linux-source-7.3 is not available from bookworm-backports"])


class Guest(unittest.TestCase):
    def test_hung_guest_times_out_and_keeps_its_console_log(self):
        with tempfile.TemporaryDirectory() as out:
            # 8 s: long enough for QEMU to start and the kernel to print its banner on a loaded
            # host (3 s was not, in CI), and well short of the 20 s c-no-cxl takes at best.
            rc, stdout, err = run([LAB, "run", "--driver", "c", "--timeout", "8", "--out", out, "c-no-cxl"])
            console = Path(out, "c-no-cxl", "c", "console.log")
            self.assertNotEqual(rc, 0)
            errors = [line for line in err if line.startswith("error: ")]
            self.assertEqual(len(errors), 1)
            self.assertRegex(errors[0], r"guest timed out after 8 s \(console log: .*console.log\)")
            self.assertIn("Linux version 7.3", console.read_text())
            self.assertIn("timeout", stdout)


if __name__ == "__main__":
    unittest.main()
