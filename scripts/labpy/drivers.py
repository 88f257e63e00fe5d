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
    implementation = "c"

    def overlays(self, kernel, modules, workdir):
        return [kernel.root / "cxl_test-modules"] if modules == "cxl_test" else []


class RustDriver:
    """This project's module, built by the top-level Makefile against the lab kernel.

    Contract with the module's Makefile: `make lab-overlay KDIR=... OVERLAY=DIR [VARIANT=cxl_test]
    [MUTANT=NAME]` installs dax_hmem.ko under DIR/lib/modules/<release>/updates/."""

    name = "rust"
    mutant = None
    # A mutant run is of the Rust module: the guest must have loaded Rust code.
    implementation = "rust"

    def overlays(self, kernel, modules, workdir):
        overlay = workdir / f"overlay-{self.name.replace(':', '-')}-{modules}"
        cmd = ["make", "-C", str(paths.ROOT), "lab-overlay", f"KDIR={kernel.kdir}", f"OVERLAY={overlay}"]
        if modules == "cxl_test":
            cmd.append("VARIANT=cxl_test")
        if self.mutant:
            cmd.append(f"MUTANT={self.mutant}")
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise LabError(f"driver={self.name}: module build failed: {done.stderr.strip().splitlines()[-1:]}")
        base = CDriver().overlays(kernel, modules, workdir)
        return base + [overlay]


class MutantDriver(RustDriver):
    """The Rust module with scripts/mutants/NAME.patch applied: broken on purpose, to show
    that the matrix catches it."""

    def __init__(self, mutant):
        self.mutant = mutant
        self.name = f"mutant:{mutant}"


def mutants():
    """{name: {"fails": [...], "passes": [...]}}: the scenarios each mutant must fail and pass,
    from the patch's header."""
    out = {}
    for patch in sorted((paths.SCRIPTS / "mutants").glob("*.patch")):
        head = patch.read_text().split("\n---", 1)[0]
        out[patch.stem] = {key: line.split(":", 1)[1].split()
                           for line in head.splitlines() for key in ("fails", "passes")
                           if line.startswith(key + ":")}
    return out


DRIVERS = {d.name: d for d in (CDriver(), RustDriver())}


def get(name):
    if name.startswith("mutant:"):
        mutant, known = name.split(":", 1)[1], mutants()
        if mutant not in known:
            raise LabError(f"unknown mutant '{mutant}' (known: {', '.join(known) or 'none'})")
        return MutantDriver(mutant)
    try:
        return DRIVERS[name]
    except KeyError:
        raise LabError(f"unknown driver '{name}' (known: {', '.join(DRIVERS)}, mutant:NAME)") from None
