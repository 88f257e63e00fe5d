"""Which dax_hmem a run uses. A driver contributes module overlays (lib/modules trees) laid
over the kernel's in-tree modules; a later overlay replaces same-named modules, so an
overlay's dax_hmem.ko in updates/ is what modprobe, alias autoload and dax_cxl's symbol
dependency pick."""

import re
import subprocess

from . import paths
from .errors import LabError


def _run(cmd, what):
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        last = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise LabError(f"{what} failed: {last[0]}")
    return done.stdout.strip()


# dax_hmem's module parameters and what each one's kernel setter accepts (param_set_bool,
# the reload enum, param_set_uint), so that a bad value is one line here, not a guest whose
# modprobe failed: hmem.c's, then this module's own (Documentation/parameters.rst).
_BOOL = ("a boolean: 0, 1, y, n, Y, N", r"[01yYnN]")
PARAMETER_VALUES = {
    "region_idle": _BOOL,
    "split": _BOOL,
    "reload": ("defer or reevaluate", r"defer|reevaluate"),
    "summary": _BOOL,
    "deferral_timeout": ("whole seconds", r"\d{1,9}"),
    "cxl_settle": ("whole seconds", r"\d{1,9}"),
}


class CDriver:
    """The in-tree drivers/dax/hmem/hmem.c (cxl_test: its --wrap build); on the stock kernel,
    Debian's own build of it."""

    name = "c"
    implementation = "c"
    options = ()
    # dax_hmem's module parameters, which a run may set (see WithOptions).
    parameters = ("region_idle",)

    def check_kernel(self, kernel):
        pass

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
    options = ()
    parameters = tuple(PARAMETER_VALUES)

    def check_kernel(self, kernel):
        if self.mutant and kernel.flavour != "lab":
            raise LabError(f"driver {self.name}: mutants run on the lab kernel only")

    def overlays(self, kernel, modules, workdir):
        overlay = workdir / f"overlay-{self.name.replace(':', '-')}-{modules}"
        if kernel.flavour == "stock":
            # Built in the trixie build root with Debian's rustc (scripts/stock-kernel.sh).
            cmd = ["make", "-C", str(paths.ROOT), "lab-overlay", "KERNEL=stock", f"STOCK_ART={kernel.root}",
                   f"OVERLAY={overlay}"]
        else:
            cmd = ["make", "-C", str(paths.ROOT), "lab-overlay", "KERNEL=lab", f"KDIR={kernel.kdir}",
                   f"OVERLAY={overlay}", *kernel.makeflags]
        if modules == "cxl_test":
            cmd.append("VARIANT=cxl_test")
        if self.mutant:
            cmd.append(f"MUTANT={self.mutant}")
        _run(cmd, f"driver={self.name}: module build")
        base = CDriver().overlays(kernel, modules, workdir)
        return base + [overlay]


class DkmsDriver:
    """The Rust module as a Debian user gets it: `make deb` builds the DKMS package, dpkg
    installs it in the trixie build root, DKMS builds and installs the module, and the guest
    gets the .ko from updates/dkms (scripts/stock-kernel.sh dkms)."""

    name = "dkms"
    implementation = "rust"
    options = ()
    parameters = RustDriver.parameters

    def check_kernel(self, kernel):
        if kernel.flavour != "stock":
            raise LabError("driver dkms builds for Debian's stock kernel: use --kernel stock")

    def overlays(self, kernel, modules, workdir):
        overlay = workdir / f"overlay-dkms-{modules}"
        deb = _run([str(paths.SCRIPTS / "build-dkms-deb.sh"), str(workdir)], "driver=dkms: make deb")
        _run([str(paths.SCRIPTS / "stock-kernel.sh"), "dkms", deb,
              str(overlay / "lib" / "modules" / kernel.release / "updates" / "dkms"), str(kernel.root)],
             "driver=dkms: DKMS install")
        return [overlay]


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


class WithOptions:
    """A driver run with dax_hmem module parameters: dax_hmem.NAME=VALUE on the kernel command
    line of every stage, which kmod's modprobe hands to the module when it loads it, as on
    a real system. The module and the guest's files are the driver's own; the run is judged
    by the scenario's expectations for these options, not compared with the reference."""

    def __init__(self, base, options):
        self.base = base
        self.options = tuple(sorted(options))
        self.name = f"{base.name}:" + ",".join(f"{k}={v}" for k, v in self.options)
        self.implementation = base.implementation
        self.parameters = base.parameters

    def check_kernel(self, kernel):
        self.base.check_kernel(kernel)

    def overlays(self, kernel, modules, workdir):
        return self.base.overlays(kernel, modules, workdir)


DRIVERS = {d.name: d for d in (CDriver(), RustDriver(), DkmsDriver())}


def cmdline_args(driver):
    """What the driver adds to every stage's kernel command line."""
    return tuple(f"dax_hmem.{k}={v}" for k, v in driver.options)


def build_name(driver):
    """The driver whose module and initramfs a run uses: a driver with options shares its
    base's."""
    return driver.base.name if isinstance(driver, WithOptions) else driver.name


def parse(text):
    """The drivers of a --driver list: c, rust, dkms, mutant:NAME, and DRIVER:NAME=VALUE with
    more NAME=VALUE after commas (rust:split=1,reload=reevaluate)."""
    specs = []  # [name, [(option, value), ...]]
    for token in text.split(","):
        if "=" in token and ":" not in token:
            if not specs or not specs[-1][1]:
                raise LabError(f"--driver: option '{token}' follows no DRIVER:NAME=VALUE")
            specs[-1][1].append(tuple(token.split("=", 1)))
        elif ":" in token and "=" in token:
            name, option = token.rsplit(":", 1)
            specs.append([name, [tuple(option.split("=", 1))]])
        else:
            specs.append([token, []])
    chosen = []
    for name, options in specs:
        driver = get(name)
        if options:
            for option, value in options:
                if option not in driver.parameters:
                    raise LabError(f"driver {name} has no parameter '{option}' "
                                   f"(known: {', '.join(driver.parameters)})")
                if not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
                    raise LabError(f"--driver: {name}:{option} needs a value of letters, digits, _ . -")
                kind, pattern = PARAMETER_VALUES[option]
                if not re.fullmatch(pattern, value):
                    raise LabError(f"--driver: {name}:{option}={value}: the module would refuse it "
                                   f"and not load ({option} takes {kind})")
            if len({o for o, _ in options}) != len(options):
                raise LabError(f"--driver: {name} sets a parameter twice")
            driver = WithOptions(driver, options)
        chosen.append(driver)
    if len({d.name for d in chosen}) != len(chosen):
        raise LabError(f"--driver names a driver twice: {text}")
    if len(chosen) > 1 and chosen[0].options:
        raise LabError(f"--driver: the first driver is the reference and runs without options, "
                       f"not {chosen[0].name}")
    return chosen


def dir_name(driver):
    """The driver's name as a run directory: QEMU's option syntax splits file names at commas."""
    return driver.name.replace(",", "+")


def all_parameters():
    """Every module parameter some driver has: what a scenario's [[variant]] may name."""
    return sorted({p for d in DRIVERS.values() for p in d.parameters})


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
