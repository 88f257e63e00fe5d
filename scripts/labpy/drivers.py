"""Which dax_hmem a run uses. A driver contributes module overlays (lib/modules trees) laid
over the kernel's in-tree modules; a later overlay replaces same-named modules, so an
overlay's dax_hmem.ko in updates/ is what modprobe, alias autoload and dax_cxl's symbol
dependency pick."""

import subprocess

from . import paths
from .errors import LabError


class CDriver:
    """The in-tree drivers/dax/hmem/hmem.c (cxl_test: its --wrap build)."""

    name = "c"

    def overlays(self, kernel, modules, workdir):
        return [kernel.root / "cxl_test-modules"] if modules == "cxl_test" else []


class RustDriver:
    """This project's module, built by the top-level Makefile against the lab kernel.

    Contract with the module's Makefile: `make lab-overlay KDIR=... OVERLAY=DIR [VARIANT=cxl_test]`
    installs dax_hmem.ko under DIR/lib/modules/<release>/updates/."""

    name = "rust"

    def overlays(self, kernel, modules, workdir):
        overlay = workdir / f"overlay-rust-{modules}"
        cmd = ["make", "-C", str(paths.ROOT), "lab-overlay", f"KDIR={kernel.kdir}", f"OVERLAY={overlay}"]
        if modules == "cxl_test":
            cmd.append("VARIANT=cxl_test")
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise LabError(f"driver=rust: module build failed: {done.stderr.strip().splitlines()[-1:]}")
        base = CDriver().overlays(kernel, modules, workdir)
        return base + [overlay]


DRIVERS = {d.name: d for d in (CDriver(), RustDriver())}


def get(name):
    try:
        return DRIVERS[name]
    except KeyError:
        raise LabError(f"unknown driver '{name}' (known: {', '.join(DRIVERS)})") from None
