"""The Rust dax_hmem module as built: its modinfo against the C module's, its export to
dax_cxl, its build-time layout checks, its policy, and its build's refusals of bad input.

These build against the lab kernel (make check builds it before the tests run)."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labpy import kernel as lab_kernel  # noqa: E402
from labpy.drivers import PARAMETER_VALUES  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CARGO_BIN = Path.home() / ".cargo" / "bin"
ENV = {**os.environ, "PATH": f"{CARGO_BIN}:{os.environ['PATH']}"}

# The modinfo fields that must match the C module's (alias order does not matter).
MODINFO_FIELDS = ("name", "author", "description", "license", "alias", "parm", "depends", "vermagic")
# This module's own parameters beyond hmem.c's (Documentation/parameters.rst): opt-in, so
# the only modinfo lines that may differ from the C module's. The lab's list of them is the
# one to keep; tests.test_cli checks it against the glue file's module_param lines.
OWN_PARAMETERS = tuple(p for p in PARAMETER_VALUES if p != "region_idle")


def without_own_parameters(info):
    """(modinfo without this module's own parameters, their names)."""
    own = [p for p in info["parm"] if p.split(":", 1)[0] in OWN_PARAMETERS]
    return {**info, "parm": [p for p in info["parm"] if p not in own]}, sorted(p.split(":", 1)[0] for p in own)


def run(argv, **kwargs):
    done = subprocess.run(argv, capture_output=True, text=True, env=ENV, **kwargs)
    return done.returncode, done.stdout, done.stderr


def modinfo(path):
    fields = {}
    for field in MODINFO_FIELDS:
        rc, out, err = run(["modinfo", "-F", field, str(path)])
        if rc:
            raise AssertionError(f"modinfo {path}: {err.strip()}")
        values = out.split("\n")[:-1]
        fields[field] = sorted(values) if field == "alias" else values
        if field == "depends":
            fields[field] = sorted(",".join(values).split(",")) if values != [""] else []
    return fields


class Built:
    """Builds both flavours of the module once, into overlay trees, as the lab does."""

    _dir = None

    @classmethod
    def get(cls):
        if cls._dir is None:
            cls.kernel = lab_kernel.load()
            cls._dir = Path(tempfile.mkdtemp(prefix="dax-hmem-test-"))
            for variant, name in (("", "in-tree"), ("cxl_test", "cxl_test")):
                cmd = ["make", "-C", str(ROOT), "lab-overlay", f"KDIR={cls.kernel.kdir}",
                       f"OVERLAY={cls._dir / name}"] + ([f"VARIANT={variant}"] if variant else [])
                rc, out, err = run(cmd)
                if rc:
                    raise AssertionError(f"module build failed:\n{out[-3000:]}\n{err[-3000:]}")
        return cls

    @classmethod
    def ko(cls, flavour):
        return cls._dir / flavour / "lib" / "modules" / cls.kernel.release / "updates" / "dax_hmem.ko"

    @classmethod
    def c_ko(cls, flavour):
        if flavour == "cxl_test":
            return cls.kernel.root / "cxl_test-modules" / "lib" / "modules" / cls.kernel.release / "updates" / "dax_hmem.ko"
        return cls.kernel.root / "modules" / "lib" / "modules" / cls.kernel.release / "kernel" / "drivers" / "dax" / "hmem" / "dax_hmem.ko"


class Modinfo(unittest.TestCase):
    def test_matches_the_c_module(self):
        built = Built.get()
        for flavour in ("in-tree", "cxl_test"):
            with self.subTest(flavour=flavour):
                ours, own = without_own_parameters(modinfo(built.ko(flavour)))
                self.assertEqual(ours, modinfo(built.c_ko(flavour)))
                self.assertEqual(own, sorted(OWN_PARAMETERS))

    def test_expected_fields(self):
        info = modinfo(Built.get().ko("in-tree"))
        self.assertEqual(info["alias"], ["platform:hmem*", "platform:hmem_platform*"])
        self.assertEqual(info["license"], ["GPL v2"])
        self.assertEqual(info["parm"][0], "region_idle: (bool)")
        self.assertEqual(len(info["parm"]), 1 + len(OWN_PARAMETERS))
        self.assertEqual(info["description"], ["HMEM DAX: direct access to 'specific purpose' memory"])
        self.assertEqual(info["depends"], ["cxl_core", "dax"])
        self.assertEqual(modinfo(Built.get().ko("cxl_test"))["depends"], ["cxl_core", "cxl_mock", "dax"])

    def test_cxl_test_flavour_calls_the_mocks(self):
        rc, out, _ = run(["nm", "--undefined-only", str(Built.get().ko("cxl_test"))])
        self.assertEqual(rc, 0)
        undefined = set(out.split())
        for symbol in ("walk_hmem_resources", "region_intersects", "region_intersects_soft_reserve"):
            self.assertIn(f"__wrap_{symbol}", undefined)
            self.assertNotIn(symbol, undefined)


class ExportToDaxCxl(unittest.TestCase):
    def test_flush_work_is_exported_to_dax_cxl_only(self):
        Built.get()  # built in place, so the top Module.symvers is this module's
        lines = [l.split("\t") for l in (ROOT / "Module.symvers").read_text().splitlines()]
        self.assertEqual([l[1:] for l in lines if l[1] == "dax_hmem_flush_work"],
                         [["dax_hmem_flush_work", "dax_hmem", "EXPORT_SYMBOL_GPL", "module:dax_cxl"]])

    def test_depmod_resolves_dax_cxl_to_our_module(self):
        built = Built.get()
        release = built.kernel.release
        in_tree = built.kernel.root / "modules" / "lib" / "modules" / release
        dax_cxl = in_tree / "kernel" / "drivers" / "dax" / "dax_cxl.ko"
        rc, out, _ = run(["modinfo", "-F", "depends", str(dax_cxl)])
        self.assertIn("dax_hmem", out.strip().split(","))
        with tempfile.TemporaryDirectory() as d:
            tree = Path(d) / "lib" / "modules" / release
            shutil.copytree(in_tree, tree, symlinks=True)
            (tree / "kernel" / "drivers" / "dax" / "hmem" / "dax_hmem.ko").unlink()
            (tree / "updates").mkdir(exist_ok=True)
            shutil.copy(built.ko("in-tree"), tree / "updates" / "dax_hmem.ko")
            rc, _, err = run(["depmod", "-b", d, "-e", "-F", str(built.kernel.root / "System.map"), release])
            self.assertEqual(rc, 0, err)
            self.assertEqual(err.strip(), "")
            deps = dict(l.split(":", 1) for l in (tree / "modules.dep").read_text().splitlines())
        self.assertIn("updates/dax_hmem.ko", deps["kernel/drivers/dax/dax_cxl.ko"].split())


class LayoutCheck(unittest.TestCase):
    def build_copy(self, edit):
        kdir = lab_kernel.load().kdir
        with tempfile.TemporaryDirectory() as d:
            shutil.copy(ROOT / "Kbuild", d)
            shutil.copytree(ROOT / "rust", Path(d) / "rust",
                            ignore=shutil.ignore_patterns("*.o", "*.s", ".*", "*_generated.rs"))
            ffi = Path(d) / "rust" / "ffi.rs"
            ffi.write_text(edit(ffi.read_text()))
            return run(["make", "-C", str(kdir), f"M={d}", "modules"])

    def test_a_layout_drift_is_a_build_error(self):
        def swap(text):
            before = "    id: c_int,\n    memmap_on_memory: bool,\n"
            self.assertIn(before, text)
            return text.replace(before, "    memmap_on_memory: bool,\n    id: c_int,\n")

        rc, out, err = self.build_copy(swap)
        self.assertNotEqual(rc, 0)
        self.assertRegex(err, r"offset_of!\(DevDaxData, (id|memmap_on_memory)\)")

    def test_the_unedited_copy_builds(self):
        # The control for the test above: the copy itself builds.
        rc, out, err = self.build_copy(lambda text: text)
        self.assertEqual(rc, 0, err[-3000:])


class Lint(unittest.TestCase):
    def test_clippy_and_rustfmt_clean_with_zero_warnings(self):
        kdir = lab_kernel.load().kdir
        # Touch the crate root so that clippy really runs, not a cached object.
        os.utime(ROOT / "rust" / "dax_hmem_main.rs")
        rc, out, err = run(["make", "-C", str(ROOT), "lint", f"KDIR={kdir}"])
        self.assertEqual(rc, 0, (out + err)[-3000:])
        self.assertIn("CLIPPY [M] rust/dax_hmem_main.o", out)
        self.assertNotRegex(out + err, r"(?m)^(warning|error)\b")


class Policy(unittest.TestCase):
    def test_policy_unit_tests_on_the_host(self):
        with tempfile.TemporaryDirectory() as d:
            binary = Path(d) / "policy-tests"
            rc, _, err = run(["rustc", "--edition", "2021", "--test", str(ROOT / "rust" / "policy.rs"),
                              "-o", str(binary)])
            self.assertEqual(rc, 0, err)
            rc, out, err = run([str(binary)])
        self.assertEqual(rc, 0, out + err)
        m = re.search(r"test result: ok\. (\d+) passed; 0 failed", out)
        self.assertTrue(m and int(m.group(1)) >= 4, out)


class BadInput(unittest.TestCase):
    def make(self, *args):
        rc, out, err = run(["make", "-s", "-C", str(ROOT), *args])
        return rc, [l for l in err.splitlines() if not l.startswith("make")]

    def test_unsupported_kernel_version(self):
        with tempfile.TemporaryDirectory() as d:
            (Path(d) / "include" / "config").mkdir(parents=True)
            (Path(d) / "include" / "config" / "kernel.release").write_text("7.2.9\n")
            (Path(d) / ".config").write_text("CONFIG_RUST=y\n")
            rc, err = self.make(f"KDIR={d}")
        self.assertNotEqual(rc, 0)
        self.assertEqual(err, [f"error: KDIR={d} is Linux 7.2.9; dax_hmem supports 7.3 only"])

    def test_not_a_kernel_tree(self):
        rc, err = self.make("KDIR=/nonexistent")
        self.assertNotEqual(rc, 0)
        self.assertEqual(err, ["error: KDIR=/nonexistent is not a configured kernel build tree"])

    def test_unknown_variant(self):
        rc, err = self.make(f"KDIR={lab_kernel.load().kdir}", "lab-overlay", "OVERLAY=/tmp/x", "VARIANT=kunit")
        self.assertNotEqual(rc, 0)
        self.assertEqual(err, ["error: unknown VARIANT 'kunit' (known: cxl_test)"])

    def test_unknown_mutant(self):
        rc, err = self.make(f"KDIR={lab_kernel.load().kdir}", "lab-overlay", "OVERLAY=/tmp/x", "MUTANT=nope")
        self.assertNotEqual(rc, 0)
        self.assertEqual(err, ["error: unknown MUTANT 'nope' (scripts/mutants/*.patch)"])


if __name__ == "__main__":
    unittest.main()
