"""Scenarios and topologies: small TOML files under qemu/, validated on load.

A topology says how QEMU is started. A scenario names a topology, the module set, where
Soft Reserved lies, the guest steps of each stage, and the outcome 7.3 predicts for each
Soft Reserved range, in address order.
"""

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from . import paths
from .drivers import all_parameters
from .errors import LabError

OWNERS = ("hmem", "cxl", "none")
DECISIONS = (
    "await CXL initial probe",
    "deferring range to CXL",
    "CXL claims resource, dropping",
    "CXL did not claim resource, registering",
)
MODULE_SETS = ("in-tree", "cxl_test")
# A scenario's default hard timeout per stage, in seconds (Documentation/lab.rst).
STAGE_TIMEOUT = 300


def parse_size(text, signed=False):
    """memparse-style size: 0x..., or a number with K/M/G; with signed, a leading - too."""
    m = re.fullmatch(r"(-?)(0x[0-9a-fA-F]+|\d+)([KMG]?)", str(text).strip())
    if not m or (m.group(1) and not signed):
        raise LabError(f"bad size {text!r}")
    size = int(m.group(2), 0) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(3)]
    return -size if m.group(1) else size


@dataclass(frozen=True)
class Topology:
    name: str
    description: str
    memory: str
    cpu: str
    machine: tuple
    args: tuple
    cxl: bool

    def qemu_args(self):
        # QEMU wants all cxl-fmw.* properties in one -machine option.
        machine = ",".join(["q35", "cxl=on"] * self.cxl + ["q35"] * (not self.cxl) + list(self.machine))
        return ["-machine", machine, "-cpu", self.cpu, "-smp", "2", "-m", self.memory, *self.args]


@dataclass(frozen=True)
class SoftReserved:
    """One Soft Reserved range. kind is one of:
    window: memmap= over window N (learned from the topology) at offset, of size; with
      span=true it may run on into the next window (S14), or start below the window at a
      negative offset and run into it (REGION_MIXED);
    address: memmap= at a fixed address; retype=true turns RAM into Soft Reserved;
    region: a stage script lays it over a CXL region it committed (lab_memmap_over_region);
    cxl_test: mocked by cxl_test hmem_test=1 over the first half of CXL Window 0; with
      pieces = N, N ranges of 2M from the window's start instead (cxl_test
      hmem_test_ranges=N on the kernel command line, a lab patch: qemu/patches).
    """

    kind: str
    window: int = 0
    offset: int = 0
    address: int = 0
    size: int = 0
    retype: bool = False
    span: bool = False
    pieces: int = 0


# cxl_test's hmem_test_ranges: 2M ranges (dax_hmem's alignment) in the 512M it mocks.
CXL_TEST_PIECE = 2 << 20
CXL_TEST_MAX_PIECES = 256


@dataclass(frozen=True)
class Expectation:
    # hmem, cxl or none; for a range split into pieces (dax_hmem split=1), each piece's
    # owner in address order, joined by '+' ("hmem+cxl+hmem").
    owner: str
    decisions: tuple
    kmem: bool = None  # None: not checked
    # Soft Reserved bytes neither in a bound dax device nor added by kmem; None: not checked.
    lost: int = None


@dataclass(frozen=True)
class Variant:
    """Expectations for drivers run with module options (lab --driver rust:NAME=VALUE): a
    variant applies to a driver whose options include all of its own. What it does not
    set (expect, expect_dax_regions) is the scenario's."""

    options: frozenset  # of "NAME=VALUE"
    expect: tuple = None
    expect_dax_regions: dict = None
    expect_log: tuple = None
    reject_log: tuple = None


@dataclass
class Scenario:
    name: str
    description: str
    topology: Topology
    modules: str
    kernel_args: str
    timeout: int
    soft_reserved: list
    stages: list
    autoload: bool
    expect: list
    tags: tuple = field(default_factory=tuple)
    module_users: dict = field(default_factory=dict)
    expect_dax_regions: dict = field(default_factory=dict)
    expect_iomem: str = ""
    check_stages: tuple = ()  # default: the last stage
    proves: str = ""
    needs_modules: tuple = ()  # test modules the kernel must have (not every kernel does)
    variants: tuple = ()
    expect_log: tuple = ()  # texts the kernel log of a checked stage must contain
    reject_log: tuple = ()  # texts it must not contain

    def __post_init__(self):
        self.check_stages = tuple(self.check_stages) or (len(self.stages),)

    def for_options(self, options):
        """The scenario as a driver with these module options ((NAME, VALUE) pairs) must
        meet it: the variant with the most options that are all among them, or the plain
        scenario (7.3's outcome) when no variant applies."""
        given = {f"{k}={v}" for k, v in options}
        applicable = [v for v in self.variants if v.options <= given]
        if not applicable:
            return self
        best = max(len(v.options) for v in applicable)
        chosen = [v for v in applicable if len(v.options) == best]
        if len(chosen) > 1:
            raise LabError(f"scenario {self.name}: options {', '.join(sorted(given))} match "
                           f"{len(chosen)} variants equally; add a variant with all of them")
        v = chosen[0]
        return dataclasses.replace(
            self, variants=(),
            expect=list(v.expect) if v.expect is not None else self.expect,
            expect_dax_regions=v.expect_dax_regions if v.expect_dax_regions is not None
            else self.expect_dax_regions,
            expect_log=v.expect_log if v.expect_log is not None else self.expect_log,
            reject_log=v.reject_log if v.reject_log is not None else self.reject_log)


def _table(path, kind):
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise LabError(f"{kind} file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise LabError(f"{path}: {e}") from None


def _check_keys(path, table, allowed):
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise LabError(f"{path}: unknown key(s) {', '.join(unknown)}")


def load_topology(name, directory=None):
    path = (directory or paths.TOPOLOGIES) / f"{name}.toml"
    t = _table(path, "topology")
    _check_keys(path, t, {"description", "memory", "cpu", "machine", "args", "cxl"})
    return Topology(
        name=name,
        description=t.get("description", ""),
        memory=t.get("memory", "2G"),
        cpu=t.get("cpu", "max,hypervisor=off"),
        machine=tuple(t.get("machine", [])),
        args=tuple(t.get("args", [])),
        cxl=bool(t.get("cxl", True)),
    )


def _soft_reserved(path, entry):
    kinds = [k for k in ("window", "address", "region", "cxl_test") if k in entry]
    if len(kinds) != 1:
        raise LabError(f"{path}: soft_reserved entry needs exactly one of window, address, region, cxl_test")
    kind = kinds[0]
    _check_keys(path, entry, {"window", "offset", "address", "size", "retype", "span", "region", "cxl_test",
                              "pieces"})
    sr = SoftReserved(
        kind=kind,
        window=int(entry.get("window", 0)),
        offset=parse_size(entry.get("offset", 0), signed=True),
        address=parse_size(entry.get("address", 0)),
        size=parse_size(entry["size"]) if "size" in entry else 0,
        retype=bool(entry.get("retype", False)),
        span=bool(entry.get("span", False)),
        pieces=entry.get("pieces", 0),
    )
    if "pieces" in entry and (kind != "cxl_test" or type(sr.pieces) is not int or sr.pieces < 1
                              or sr.pieces > CXL_TEST_MAX_PIECES):
        raise LabError(f"{path}: pieces is for a cxl_test soft_reserved entry, 1 to {CXL_TEST_MAX_PIECES}")
    if kind in ("window", "address") and not sr.size:
        raise LabError(f"{path}: a {kind} soft_reserved entry needs a size")
    if sr.offset < 0 and not (kind == "window" and sr.span and sr.offset + sr.size > 0):
        raise LabError(f"{path}: a negative offset is for a window entry with span = true that "
                       "runs into the window")
    return sr


def _expectations(path, entries):
    expect = []
    for e in entries:
        _check_keys(path, e, {"owner", "decisions", "kmem", "lost"})
        owner = e.get("owner")
        if not isinstance(owner, str) or not all(o in OWNERS for o in owner.split("+")):
            raise LabError(f"{path}: expect.owner must be one of {', '.join(OWNERS)}, or those of "
                           "a split range's pieces joined by '+'")
        for d in e.get("decisions", []):
            if d not in DECISIONS:
                raise LabError(f"{path}: unknown decision line {d!r}")
        lost = parse_size(e["lost"]) if "lost" in e else None
        expect.append(Expectation(e["owner"], tuple(e.get("decisions", [])),
                                  bool(e["kmem"]) if "kmem" in e else None, lost))
    return expect


def _dax_region_counts(path, counts):
    if not isinstance(counts, dict) or not all(
            k in ("hmem", "cxl", "other") and isinstance(v, int) for k, v in counts.items()):
        raise LabError(f"{path}: expect_dax_regions maps hmem, cxl or other to a count")
    return dict(counts)


def _log_texts(path, texts, key="expect_log"):
    if not isinstance(texts, list) or not all(isinstance(t, str) and t for t in texts):
        raise LabError(f"{path}: {key} is a list of texts of the kernel log")
    return tuple(texts)


def _variants(path, entries):
    out = []
    for v in entries:
        _check_keys(path, v, {"options", "expect", "expect_dax_regions", "expect_log", "reject_log"})
        options = v.get("options", "")
        words = options.split(",") if isinstance(options, str) and options else []
        if not words or not all(re.fullmatch(r"[a-z_]+=[A-Za-z0-9_.-]+", w) for w in words):
            raise LabError(f"{path}: variant.options is NAME=VALUE[,NAME=VALUE...], as after "
                           f"--driver rust:")
        unknown = sorted({w.split("=", 1)[0] for w in words} - set(all_parameters()))
        if unknown:
            raise LabError(f"{path}: variant names no parameter of dax_hmem: {', '.join(unknown)} "
                           f"(known: {', '.join(all_parameters())})")
        if not {"expect", "expect_dax_regions", "expect_log", "reject_log"} & set(v):
            raise LabError(f"{path}: variant {options} expects nothing of its own")
        out.append(Variant(frozenset(words),
                           tuple(_expectations(path, v["expect"])) if "expect" in v else None,
                           _dax_region_counts(path, v["expect_dax_regions"])
                           if "expect_dax_regions" in v else None,
                           _log_texts(path, v["expect_log"]) if "expect_log" in v else None,
                           _log_texts(path, v["reject_log"], "reject_log") if "reject_log" in v else None))
    if len({v.options for v in out}) != len(out):
        raise LabError(f"{path}: two variants have the same options")
    return tuple(out)


def load_scenario(name, directory=None, topologies=None):
    path = (directory or paths.SCENARIOS) / f"{name}.toml"
    if not path.exists():
        raise LabError(f"unknown scenario '{name}' (known: {', '.join(scenario_names(directory))})")
    t = _table(path, "scenario")
    stage_keys = sorted((k for k in t if re.fullmatch(r"stage\d+", k)), key=lambda k: int(k[5:]))
    _check_keys(path, t, {"description", "proves", "topology", "modules", "kernel_args", "timeout",
                          "soft_reserved", "autoload", "expect", "expect_dax_regions", "expect_iomem",
                          "check_stages", "tags", "module_users", "needs_modules", "variant", "expect_log", "reject_log",
                          *stage_keys})
    if stage_keys and stage_keys != [f"stage{i}" for i in range(1, len(stage_keys) + 1)]:
        raise LabError(f"{path}: stages must be stage1, stage2, ... without gaps")
    modules = t.get("modules", "in-tree")
    if modules not in MODULE_SETS:
        raise LabError(f"{path}: modules must be one of {', '.join(MODULE_SETS)}")
    if "topology" not in t:
        raise LabError(f"{path}: no topology")
    expect = _expectations(path, t.get("expect", []))
    dax_regions = _dax_region_counts(path, t.get("expect_dax_regions", {}))
    if not expect and not dax_regions:
        raise LabError(f"{path}: a scenario must expect an outcome for each Soft Reserved range, "
                       "or dax regions when it has none")
    stage_count = len(stage_keys) or 1
    check_stages = tuple(t.get("check_stages", ()))
    if "check_stages" in t and not (check_stages and all(
            isinstance(n, int) and 1 <= n <= stage_count for n in check_stages)):
        raise LabError(f"{path}: check_stages must name stages 1..{stage_count}")
    module_users = t.get("module_users", {})
    if not isinstance(module_users, dict) or not all(
            isinstance(users, list) and all(isinstance(u, str) for u in users) for users in module_users.values()):
        raise LabError(f"{path}: module_users maps a module to the list of modules that must use it")
    needs_modules = t.get("needs_modules", [])
    if not isinstance(needs_modules, list) or not all(isinstance(m, str) for m in needs_modules):
        raise LabError(f"{path}: needs_modules is a list of module names")
    return Scenario(
        name=name,
        description=t.get("description", ""),
        topology=load_topology(t["topology"], topologies),
        modules=modules,
        kernel_args=t.get("kernel_args", ""),
        timeout=int(t.get("timeout", STAGE_TIMEOUT * max(len(stage_keys), 1))),
        soft_reserved=[_soft_reserved(path, e) for e in t.get("soft_reserved", [])],
        stages=[t[k] for k in stage_keys] or [""],
        autoload=bool(t.get("autoload", True)),
        expect=expect,
        tags=tuple(t.get("tags", [])),
        module_users={m: tuple(users) for m, users in module_users.items()},
        expect_dax_regions=dict(dax_regions),
        expect_iomem=t.get("expect_iomem", ""),
        check_stages=check_stages,
        proves=t.get("proves", ""),
        needs_modules=tuple(needs_modules),
        variants=_variants(path, t.get("variant", [])),
        expect_log=_log_texts(path, t.get("expect_log", [])),
        reject_log=_log_texts(path, t.get("reject_log", []), "reject_log"),
    )


def scenario_names(directory=None):
    return sorted(p.stem for p in (directory or paths.SCENARIOS).glob("*.toml"))
