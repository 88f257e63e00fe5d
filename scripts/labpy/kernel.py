"""The kernels the lab boots: its own debug build (scripts/build-kernel.sh) and Debian's stock
kernel image and modules (scripts/stock-kernel.sh)."""

from dataclasses import dataclass
from pathlib import Path

from . import paths
from .errors import LabError

SUPPORTED_SERIES = "7.3"
# How each kernel is made, for the message when it is not there yet.
MAKERS = {"lab": "make kernel (scripts/build-kernel.sh)", "stock": "make stock-kernel (scripts/stock-kernel.sh)",
          "kasan": "scripts/build-kernel.sh --variant kasan"}


@dataclass(frozen=True)
class Kernel:
    root: Path
    release: str
    package_version: str
    kdir: Path
    flavour: str = "lab"
    build_root: Path = None  # stock: the trixie build root the module is built in
    makeflags: tuple = ()  # what an out-of-tree build must pass too (kasan: LLVM=-19)

    @property
    def timeout_factor(self):
        """Guest timeouts are written for the lab kernel; a KASAN guest runs three to four
        times slower."""
        return 4 if self.flavour == "kasan" else 1

    @property
    def cmdline_args(self):
        """What every boot of this kernel adds to the command line. Lab and KASAN:
        slab_debug=F and kmemleak.min_unref_scans=1 (below). KASAN: no5lvl too. 7.3's
        identify_cpu() clears boot_cpu_data's capabilities and reads them back while interrupts
        are on, and until alternatives are patched pgtable_l5_enabled() reads LA57 there. On
        QEMU's -cpu max (LA57) with 5-level paging, an interrupt in that window computes KASAN's
        lower bound for 4-level paging, above the 5-level direct map (0xff11...), and KASAN
        reports the IRQ descriptor's lock as a wild-memory-access in handle_edge_irq (3 of 24
        boots under TCG, before any module). With no5lvl the paging is 4-level, and the window
        can only show LA57 set (CPUID has it until the forced clear), which lowers the bound.

        slab_debug=F, for kmemleak: SLUB's per-CPU sheaves keep the pointer of each object
        they hand out in their array, which kmemleak scans, so a leaked object stays referenced
        until its slot is reused: 8 objects leaked at probe went unreported. Debug flags turn
        sheaves off (and check the slabs' consistency); the lab measured no cost.
        kmemleak.min_unref_scans=1: a leak is reported by the second scan after its allocation,
        which lib.sh's two scans rely on (CONFIG_DEBUG_KMEMLEAK_VERBOSE would make it 2)."""
        if self.flavour == "stock":
            return ()
        return ("slab_debug=F", "kmemleak.min_unref_scans=1", *(("no5lvl",) if self.flavour == "kasan" else ()))

    @property
    def bzimage(self):
        return self.root / "bzImage"

    @property
    def modules_dir(self):
        return self.root / "modules" / "lib" / "modules" / self.release

    def lacks(self, scenario):
        """What the scenario needs that this kernel does not have, as a list of names."""
        missing = []
        if scenario.modules == "cxl_test" and not (self.root / "cxl_test-modules").is_dir():
            missing.append("cxl_test")
        try:
            dep = (self.modules_dir / "modules.dep").read_text()
        except OSError:
            dep = ""
        have = {Path(line.split(":", 1)[0]).name.split(".ko")[0] for line in dep.splitlines()}
        missing += [m for m in scenario.needs_modules if m not in have]
        return missing


def load(flavour="lab", root=None):
    if flavour not in paths.KERNELS:
        raise LabError(f"unknown kernel '{flavour}' (known: {', '.join(paths.KERNELS)})")
    root = Path(root or paths.KERNELS[flavour])
    env = root / "kernel.env"
    if not env.exists():
        raise LabError(f"no {flavour} kernel at {root}: run '{MAKERS[flavour]}'")
    values = dict(line.split("=", 1) for line in env.read_text().splitlines() if "=" in line)
    release = values.get("KERNEL_RELEASE", "")
    if release.split(".")[:2] != SUPPORTED_SERIES.split("."):
        raise LabError(f"kernel {release or '?'} is not supported (only {SUPPORTED_SERIES}.x)")
    if "KDIR" not in values:
        raise LabError(f"{env} names no KDIR: run '{MAKERS[flavour]}'")
    return Kernel(root.resolve(), release, values.get("KERNEL_PACKAGE_VERSION", ""), Path(values["KDIR"]),
                  values.get("KERNEL_FLAVOUR", "lab"),
                  Path(values["BUILD_ROOT"]) if values.get("BUILD_ROOT") else None,
                  tuple(values.get("KERNEL_MAKEFLAGS", "").split()))
