"""Where the lab finds its inputs and keeps its heavy outputs."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
TOPOLOGIES = ROOT / "qemu" / "topologies"
SCENARIOS = ROOT / "qemu" / "scenarios"
CACHE = Path(os.environ.get("LAB_CACHE", "/var/cache/dax-hmem-lab"))
# LAB_KERNEL selects other kernel artifacts (a non-debug kernel for benchmarks, say).
KERNEL = Path(os.environ.get("LAB_KERNEL", CACHE / "kernel" / "current"))
# Debian's stock kernel image and modules (scripts/stock-kernel.sh).
STOCK_KERNEL = Path(os.environ.get("LAB_STOCK_KERNEL", CACHE / "stock" / "current"))
# The lab kernel with KASAN, built with LLVM (scripts/build-kernel.sh --variant kasan).
KASAN_KERNEL = Path(os.environ.get("LAB_KASAN_KERNEL", CACHE / "kernel" / "current-kasan"))
KERNELS = {"lab": KERNEL, "stock": STOCK_KERNEL, "kasan": KASAN_KERNEL}
