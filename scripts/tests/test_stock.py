"""Debian's stock 7.3 kernel: the module built for it with its own toolchain, the DKMS package,
and the one-line refusals of what cannot work.

These need the stock kernel and its trixie build root (make check prepares both first,
scripts/stock-kernel.sh)."""

import json
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
from tests.test_module import OWN_PARAMETERS, modinfo, without_own_parameters  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LAB = str(ROOT / "scripts" / "lab")


def run(argv, **kwargs):
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    return done.returncode, done.stdout, done.stderr


class Stock:
    """The stock kernel's artifacts, its build root, and our module built for it once."""

    _ko = None

    @classmethod
    def kernel(cls):
        return lab_kernel.load("stock")

    @classmethod
    def build_root(cls):
        return cls.kernel().build_root

    @classmethod
    def ko(cls):
        if cls._ko is None:
            out = Path(tempfile.mkdtemp(prefix="dax-hmem-stock-"))
            rc, stdout, err = run([str(ROOT / "scripts" / "stock-kernel.sh"), "module", str(out)])
            if rc:
                raise AssertionError(f"stock module build failed:\n{err[-3000:]}")
            cls._ko = Path(stdout.strip())
        return cls._ko

    @classmethod
    def c_ko(cls):
        k = cls.kernel()
        found = list((k.modules_dir / "kernel" / "drivers" / "dax" / "hmem").glob("dax_hmem.ko*"))
        if not found:
            raise AssertionError(f"Debian's dax_hmem is not in {k.modules_dir}")
        return found[0]

    @classmethod
    def config(cls, name):
        text = (cls.kernel().root / ".config").read_text()
        m = re.search(rf'^{name}="?(.*?)"?$', text, re.M)
        return m.group(1) if m else None


class StockModule(unittest.TestCase):
    def test_modinfo_matches_debians_c_module(self):
        ours, own = without_own_parameters(modinfo(Stock.ko()))
        self.assertEqual(ours, modinfo(Stock.c_ko()))
        self.assertEqual(own, sorted(OWN_PARAMETERS))

    def test_clippy_clean_under_the_kernels_own_rustc(self):
        # The lab's lint (test_module) runs the lab's rustc; Debian's kernel is built with
        # trixie's, whose clippy knows other lints.
        rc, out, err = run(["make", "-C", str(ROOT), "KERNEL=stock", "lint"])
        self.assertEqual(rc, 0, (out + err)[-3000:])
        self.assertIn("clippy clean under rustc 1.", err)

    def test_built_by_the_kernels_own_rustc(self):
        # rustc records itself in every object's .comment section.
        rc, out, err = run(["readelf", "-p", ".comment", str(Stock.ko())])
        self.assertEqual(rc, 0, err)
        want = Stock.config("CONFIG_RUSTC_VERSION_TEXT")
        self.assertTrue(want and want.startswith("rustc 1."), want)
        version = want.split()[1]
        self.assertIn(f"rustc version {version}", out)

    def test_exports_flush_work(self):
        # dax_cxl of Debian's kernel links against it.
        rc, out, err = run(["readelf", "-sW", str(Stock.ko())])
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"__ksymtab_dax_hmem_flush_work")


class BuildScriptRefusals(unittest.TestCase):
    """dkms/dkms-build.sh in the build root: one line and a non-zero exit each. Each case
    uses headers that no prepared tree was made for, so every check runs."""

    @classmethod
    def setUpClass(cls):
        # The script under test, not what the last lab build left in the root.
        cls.root = Stock.build_root()
        dest = cls.root / "usr" / "src" / "dax-hmem-lab" / "dkms"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / "dkms" / "dkms-build.sh", dest / "dkms-build.sh")
        cls.release = Stock.kernel().release
        cls.real_headers = cls.root / "usr" / "src" / f"linux-headers-{cls.release}"
        rc, out, _ = run(["chroot", str(cls.root), "dpkg-query", "-W", "-f=${Version}", "linux-source-7.3"])
        cls.source_version = out.strip()

    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(dir=self.root / "tmp", prefix="dax-hmem-test-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def in_root(self, path):
        return "/" + str(path.relative_to(self.root))

    def fake_headers(self, config_edit=lambda text: text):
        """Headers like the kernel's, with their own (empty) Module.symvers."""
        d = self.tmp / "headers"
        d.mkdir()
        (d / ".config").write_text(config_edit((self.real_headers / ".config").read_text()))
        (d / "Module.symvers").write_text("")
        return self.in_root(d)

    def build(self, *args, env=None):
        argv = ["chroot", str(self.root), "env", "-i", "PATH=/usr/bin:/bin", *(env or []),
                "/usr/src/dax-hmem-lab/dkms/dkms-build.sh", *args]
        rc, out, err = run(argv)
        return rc, err.strip().splitlines()

    def test_wrong_rustc(self):
        fake = self.tmp / "bin"
        fake.mkdir()
        (fake / "rustc").write_text("#!/bin/sh\necho 'rustc 1.96.1 (fake 2026-01-01)'\n")
        (fake / "rustc").chmod(0o755)
        rc, err = self.build("--prepare-only", self.release, self.fake_headers(),
                             env=[f"PATH={self.in_root(fake)}:/usr/bin:/bin"])
        self.assertNotEqual(rc, 0)
        self.assertEqual(len(err), 1, err)
        self.assertRegex(err[0], r"^dax_hmem: rustc is 'rustc 1\.96\.1 \(fake 2026-01-01\)', but kernel "
                                 r"7\.3\S+ was built with 'rustc 1\.85\.1 .*'; install that rustc$")

    def test_missing_source(self):
        rc, err = self.build("--prepare-only", self.release, self.fake_headers(),
                             env=["DAX_HMEM_SOURCE_DIR=/nonexistent"])
        self.assertNotEqual(rc, 0)
        self.assertEqual(err, ["dax_hmem: no /nonexistent/linux-source-7.3.tar.xz: install linux-source-7.3, "
                               f"the same version as kernel {self.release}"])

    def test_source_of_another_version(self):
        # Headers of a 7.3.99 kernel, and the installed linux-source-7.3 of another 7.3.
        rc, err = self.build("--prepare-only", "7.3.99+deb13-amd64", self.fake_headers())
        self.assertNotEqual(rc, 0)
        upstream = self.source_version.split("-")[0]
        self.assertEqual(err, [f"dax_hmem: linux-source-7.3 is {self.source_version} (Linux {upstream}), but "
                               "kernel 7.3.99+deb13-amd64 is Linux 7.3.99; install its linux-source-7.3"])

    def test_not_7_3(self):
        rc, err = self.build("--prepare-only", "7.4.1+deb13-amd64")
        self.assertNotEqual(rc, 0)
        self.assertEqual(err, ["dax_hmem: kernel 7.4.1+deb13-amd64 is not Linux 7.3: dax_hmem mirrors 7.3's "
                               "hmem.c and supports 7.3 only"])

    def test_kernel_without_rust(self):
        headers = self.fake_headers(lambda text: re.sub(r"^CONFIG_RUST=y$", "# CONFIG_RUST is not set", text,
                                                        flags=re.M))
        rc, err = self.build("--prepare-only", self.release, headers)
        self.assertNotEqual(rc, 0)
        self.assertEqual(err, [f"dax_hmem: kernel {self.release} was built without CONFIG_RUST: "
                               "it cannot load Rust modules"])


class DkmsPackage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.out = Path(tempfile.mkdtemp(prefix="dax-hmem-deb-"))
        rc, out, err = run([str(ROOT / "scripts" / "build-dkms-deb.sh"), str(cls.out)])
        if rc:
            raise AssertionError(f"make deb failed: {err}")
        cls.deb = out.strip()

    def field(self, name):
        return run(["dpkg-deb", "-f", self.deb, name])[1].strip()

    def test_control(self):
        self.assertEqual(self.field("Package"), "dax-hmem-dkms")
        self.assertEqual(self.field("Architecture"), "all")
        depends = self.field("Depends")
        for need in ("dkms", "rustc", "rust-src", "bindgen", "libclang-dev", "gcc-14", "dwarves", "linux-source-7.3",
                     "linux-headers-amd64 (>= 7.3~)"):
            self.assertIn(need, depends)

    def test_contents_follow_dkms_conventions(self):
        version = self.field("Version")
        rc, listing, _ = run(["dpkg-deb", "-c", self.deb])
        files = {line.split()[-1].lstrip(".") for line in listing.splitlines()}
        src = f"/usr/src/dax-hmem-{version}"
        for f in ("dkms.conf", "Kbuild", "Makefile", "dkms/dkms-build.sh", "rust/dax_hmem_main.rs",
                  "rust/dax_hmem_glue.c", "rust/ffi/workqueue.rs"):
            self.assertIn(f"{src}/{f}", files)
        self.assertFalse([f for f in files if "/scripts/lab" in f or "/qemu/" in f], "the lab is not shipped")
        with tempfile.TemporaryDirectory() as d:
            subprocess.run(["dpkg-deb", "-x", self.deb, d], check=True)
            conf = Path(d, src.lstrip("/"), "dkms.conf").read_text()
        self.assertIn(f'PACKAGE_VERSION="{version}"', conf)
        self.assertIn('DEST_MODULE_LOCATION[0]="/updates/dkms"', conf)
        self.assertIn('BUILD_EXCLUSIVE_CONFIG="CONFIG_RUST CONFIG_DEV_DAX_HMEM"', conf)
        self.assertRegex("7.3.4+deb13-amd64", re.search(r'BUILD_EXCLUSIVE_KERNEL="(.*)"', conf).group(1))
        self.assertNotRegex("7.4.0-1-amd64", re.search(r'BUILD_EXCLUSIVE_KERNEL="(.*)"', conf).group(1))

    def test_maintainer_scripts(self):
        with tempfile.TemporaryDirectory() as d:
            subprocess.run(["dpkg-deb", "-e", self.deb, d], check=True)
            postinst = Path(d, "postinst").read_text()
            prerm = Path(d, "prerm").read_text()
            postrm = Path(d, "postrm").read_text()
        self.assertIn(f"/usr/lib/dkms/common.postinst dax-hmem {self.field('Version')}", postinst)
        self.assertIn(f"dkms remove -m dax-hmem -v {self.field('Version')} --all", prerm)
        self.assertIn("rm -rf /var/cache/dax-hmem-dkms", postrm)


class LabOnTheStockKernel(unittest.TestCase):
    def lab(self, *args):
        rc, out, err = run([LAB, *args])
        return rc, err.strip().splitlines()

    def test_cxl_test_scenario_refused(self):
        rc, err = self.lab("run", "--kernel", "stock", "d-cxl-test")
        self.assertNotEqual(rc, 0)
        self.assertEqual(err, [f"error: scenario d-cxl-test needs cxl_test, which the stock kernel "
                               f"({Stock.kernel().release}) does not have"])

    def test_test_module_scenario_refused(self):
        rc, err = self.lab("run", "--kernel", "stock", "t-rebind-pending")
        self.assertNotEqual(rc, 0)
        self.assertEqual(err, [f"error: scenario t-rebind-pending needs test_async_driver_probe, which the "
                               f"stock kernel ({Stock.kernel().release}) does not have"])

    def test_unknown_kernel(self):
        rc, err = self.lab("run", "--kernel", "fedora", "a-uncommitted")
        self.assertNotEqual(rc, 0)
        self.assertEqual(err, ["error: unknown kernel 'fedora' (known: lab, stock, kasan)"])

    def test_dkms_driver_on_the_lab_kernel_refused(self):
        rc, err = self.lab("run", "--driver", "c,dkms", "a-uncommitted")
        self.assertNotEqual(rc, 0)
        self.assertEqual(err, ["error: driver dkms builds for Debian's stock kernel: use --kernel stock"])

    def test_mutant_on_the_stock_kernel_refused(self):
        rc, err = self.lab("run", "--kernel", "stock", "--driver", "c,mutant:skip-deferral", "a-uncommitted")
        self.assertNotEqual(rc, 0)
        self.assertEqual(err, ["error: driver mutant:skip-deferral: mutants run on the lab kernel only"])


class RustAnalyzer(unittest.TestCase):
    def test_project_has_our_crate_on_the_kernel_crate(self):
        rc, out, err = run(["make", "-C", str(ROOT), "rust-analyzer"],
                           env={**os.environ, "PATH": f"{Path.home() / '.cargo' / 'bin'}:{os.environ['PATH']}"})
        self.assertEqual(rc, 0, err[-2000:])
        project = json.loads((ROOT / "rust-project.json").read_text())
        crates = project["crates"]
        ours = [c for c in crates if c["display_name"] == "dax_hmem_main"]
        self.assertEqual(len(ours), 1)
        self.assertEqual(ours[0]["root_module"], str(ROOT / "rust" / "dax_hmem_main.rs"))
        deps = {d["name"]: crates[d["crate"]]["display_name"] for d in ours[0]["deps"]}
        self.assertEqual(deps["kernel"], "kernel")
        self.assertIn("CONFIG_RUST", ours[0]["cfg"])
