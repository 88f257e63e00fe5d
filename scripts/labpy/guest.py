"""One QEMU guest run: input disk in, output disk back, hard timeout, console log kept.

The guest reads a tar from the disk with serial "labin" and writes one tar per stage to the
disk with serial "labout", stage N at (N - 1) * 64 MiB (scripts/guest/lib.sh)."""

import io
import os
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass

from .errors import LabError, QemuCrashed

SLOT = 64 << 20
QEMU = "qemu-system-x86_64"
# One host thread per guest: two single-threaded guests at a time get through the matrix
# about a quarter faster on two cores than multi-threaded TCG guests fighting for them.
ACCEL = os.environ.get("LAB_ACCEL", "tcg,thread=single")
# make bench's guest time: counted in instructions, 1 ns each, and while every vCPU sleeps,
# moved on at once to the next timer. Its timestamps then measure the guest's own work, alike
# on a loaded or an idle host, with two guests at once. Not for the matrix: TCG runs about a
# third slower with it (a-uncommitted: 16 s instead of 12).
ICOUNT = "shift=0,sleep=off"


@dataclass
class GuestResult:
    stages: list  # one {file name: text} per stage that reported
    console: str
    timed_out: bool
    seconds: float
    qemu_crashed: str = ""  # why QEMU failed the first time, when Lab.boot booted again


def _write_input(path, files):
    with tarfile.open(path, "w") as tar:
        for name, content in files.items():
            data = content.read_bytes() if hasattr(content, "read_bytes") else content.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))


def _read_stages(image, count):
    stages = []
    with open(image, "rb") as f:
        for i in range(count):
            f.seek(i * SLOT)
            slot = f.read(SLOT)
            if not slot.strip(b"\0"):
                break
            files = {}
            with tarfile.open(fileobj=io.BytesIO(slot), mode="r:") as tar:
                for member in tar.getmembers():
                    if member.isfile():
                        files[member.name.removeprefix("./")] = tar.extractfile(member).read().decode(errors="replace")
            stages.append(files)
    return stages


def run(*, kernel, initrd, topology, cmdline, files, stages, timeout, run_dir, icount=False):
    """Boot, wait at most timeout seconds (host time), and return what each stage wrote."""
    if not shutil.which(QEMU):
        raise LabError(f"missing tool: {QEMU} (run scripts/setup-host.sh)")
    if icount and ACCEL != "tcg,thread=single":
        raise LabError(f"make bench counts instructions (-icount), which needs LAB_ACCEL=tcg,thread=single, "
                       f"not {ACCEL}")
    run_dir.mkdir(parents=True, exist_ok=True)
    inp, out, console = run_dir / "input.tar", run_dir / "output.img", run_dir / "console.log"
    _write_input(inp, files)
    with open(out, "wb") as f:
        f.truncate(SLOT * stages)
    argv = [QEMU, "-accel", ACCEL, *(["-icount", ICOUNT] if icount else []), *topology.qemu_args(),
            "-display", "none", "-no-reboot", "-monitor", "none", "-net", "none",
            "-serial", f"file:{console}",
            "-kernel", str(kernel.bzimage), "-initrd", str(initrd), "-append", cmdline,
            "-drive", f"if=none,id=labin,file={inp},format=raw,readonly=on",
            "-device", "virtio-blk-pci,bus=pcie.0,drive=labin,serial=labin",
            "-drive", f"if=none,id=labout,file={out},format=raw",
            "-device", "virtio-blk-pci,bus=pcie.0,drive=labout,serial=labout"]
    (run_dir / "qemu.cmd").write_text(" ".join(argv) + "\n")
    start = time.monotonic()
    with open(run_dir / "qemu.stderr", "w") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        try:
            proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            timed_out = True
    seconds = time.monotonic() - start
    stderr = (run_dir / "qemu.stderr").read_text(errors="replace").strip()
    if proc.returncode and not timed_out and stderr:
        raise QemuCrashed(f"qemu failed: {stderr.splitlines()[-1]}")
    text = console.read_text(errors="replace") if console.exists() else ""
    reported = _read_stages(out, stages)
    out.unlink()
    inp.unlink()
    return GuestResult(reported, text, timed_out, seconds)
