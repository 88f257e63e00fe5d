"""The lab kernel built by scripts/build-kernel.sh."""

from dataclasses import dataclass
from pathlib import Path

from . import paths
from .errors import LabError

SUPPORTED_SERIES = "7.3"


@dataclass(frozen=True)
class Kernel:
    root: Path
    release: str
    package_version: str
    kdir: Path

    @property
    def bzimage(self):
        return self.root / "bzImage"


def load(root=None):
    root = Path(root or paths.KERNEL)
    env = root / "kernel.env"
    if not env.exists():
        raise LabError(f"no lab kernel at {root}: run 'make kernel' (scripts/build-kernel.sh)")
    values = dict(line.split("=", 1) for line in env.read_text().splitlines() if "=" in line)
    release = values.get("KERNEL_RELEASE", "")
    if release.split(".")[:2] != SUPPORTED_SERIES.split("."):
        raise LabError(f"kernel {release or '?'} is not supported (only {SUPPORTED_SERIES}.x)")
    return Kernel(root.resolve(), release, values.get("KERNEL_PACKAGE_VERSION", ""), Path(values["KDIR"]))
