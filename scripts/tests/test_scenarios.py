"""Every committed scenario and topology loads, and malformed ones are refused."""

import sys
import tempfile
import unittest
from unittest import mock
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labpy import scenario  # noqa: E402
from labpy.errors import LabError  # noqa: E402


class Committed(unittest.TestCase):
    def test_all_scenarios_load_with_expectations(self):
        names = scenario.scenario_names()
        self.assertGreaterEqual(len(names), 19)
        for name in names:
            s = scenario.load_scenario(name)
            self.assertTrue(s.expect or s.expect_dax_regions, name)
            self.assertTrue(s.description and s.proves, name)

    def test_every_scenario_is_documented(self):
        doc = (scenario.paths.ROOT / "Documentation" / "scenarios.rst").read_text()
        missing = [n for n in scenario.scenario_names() if f"``{n}``" not in doc]
        self.assertEqual(missing, [])

    def test_load_orders_checks_each_boot(self):
        s = scenario.load_scenario("q-load-orders")
        self.assertEqual(s.check_stages, (2, 3, 4, 5))
        self.assertFalse(s.autoload)

    def test_topology_a_lays_soft_reserved_over_a_learned_window(self):
        s = scenario.load_scenario("a-uncommitted")
        self.assertEqual([sr.kind for sr in s.soft_reserved], ["window"])
        self.assertIn("cxl=on", s.topology.qemu_args()[1])

    def test_default_set_covers_hmem_cxl_and_deferral(self):
        defaults = [scenario.load_scenario(n) for n in scenario.scenario_names()]
        defaults = [s for s in defaults if "default" in s.tags]
        owners = {e.owner for s in defaults for e in s.expect}
        decisions = {d for s in defaults for e in s.expect for d in e.decisions}
        self.assertEqual(owners, {"hmem", "cxl"})
        self.assertIn("await CXL initial probe", decisions)


class SeedTrees(unittest.TestCase):
    """The x-seed-* scenarios reproduce the /proc/iomem trees the seed threads publish."""

    SEEDS = ("S2", "S3", "S6", "S14", "S15", "S18[2]", "S18[3]", "S20")

    def seed_scenarios(self):
        names = [n for n in scenario.scenario_names() if n.startswith("x-seed-")]
        self.assertTrue(names)
        return [scenario.load_scenario(n) for n in names]

    def test_each_names_its_source_and_expects_a_tree_without_soft_reserved(self):
        for s in self.seed_scenarios():
            self.assertRegex(s.description, r"^Seeds? S\d+", s.name)
            self.assertRegex(s.description, r"seed-analysis\.md \d+-\d+|seeds/00\d lines \d+", s.name)
            self.assertTrue(s.expect_iomem.strip(), s.name)
            # 7.0 and later never publish "Soft Reserved" in /proc/iomem (O8).
            self.assertNotIn("Soft Reserved", s.expect_iomem, s.name)

    def test_patterns_are_well_formed_nestings(self):
        """Each pattern line is at most one level below the one before it, so the pattern
        matches the tree it draws."""
        from labpy import analysis
        for s in self.seed_scenarios():
            lines, depth, address = [], -1, 0x100000000
            for line in (l for l in s.expect_iomem.splitlines() if l.strip()):
                indent = len(line) - len(line.lstrip(" "))
                self.assertEqual(indent % 2, 0, (s.name, line))
                self.assertLessEqual(indent // 2, depth + 1, (s.name, line))
                depth = indent // 2
                lines.append(f"{' ' * indent}{address:08x}-{address + 0xfff:08x} : {line.strip()}")
                address += 0x1000
            self.assertIsNone(analysis.iomem_tree_missing("\n".join(lines), s.expect_iomem), s.name)

    def test_every_seed_tree_is_reproduced_or_explained(self):
        doc = (scenario.paths.ROOT / "Documentation" / "scenarios.rst").read_text()
        section = doc.split("\nSeed trees\n==========\n", 1)
        self.assertEqual(len(section), 2, "scenarios.rst lacks the Seed trees section")
        section = section[1].split("\nAdding a scenario\n", 1)[0]
        for seed in self.SEEDS:
            self.assertIn(seed, section)
        for s in self.seed_scenarios():
            self.assertIn(f"``{s.name}``", section)

    def test_s20_lays_the_seeds_memmap_form_over_ram_at_4g(self):
        s = scenario.load_scenario("x-seed-s20-memmap-no-cxl")
        self.assertFalse(s.topology.cxl)
        self.assertIn("3G", s.topology.qemu_args())
        sr, = s.soft_reserved
        self.assertEqual((sr.kind, sr.address, sr.size, sr.retype), ("address", 1 << 32, 1 << 30, False))

    def test_s14_lays_one_range_over_exactly_both_windows(self):
        s = scenario.load_scenario("x-seed-s14-sr-spans-two-windows")
        sr, = s.soft_reserved
        self.assertEqual((sr.kind, sr.window, sr.offset, sr.size, sr.span), ("window", 0, 0, 8 << 30, True))
        self.assertIn("cxl-fmw.1.size=4G", s.topology.qemu_args()[1])


class Malformed(unittest.TestCase):
    def load(self, text):
        with tempfile.TemporaryDirectory() as d:
            Path(d, "x.toml").write_text(text)
            return scenario.load_scenario("x", Path(d))

    def test_unknown_scenario(self):
        with self.assertRaisesRegex(LabError, "unknown scenario 'nope'"):
            scenario.load_scenario("nope")

    def test_no_expectation(self):
        with self.assertRaisesRegex(LabError, "must expect"):
            self.load('topology = "no-cxl"\n')

    def test_bad_owner(self):
        with self.assertRaisesRegex(LabError, "owner"):
            self.load('topology = "no-cxl"\n[[expect]]\nowner = "dax"\n')

    def test_bad_decision_text(self):
        with self.assertRaisesRegex(LabError, "unknown decision"):
            self.load('topology = "no-cxl"\n[[expect]]\nowner = "hmem"\ndecisions = ["CXL claims it"]\n')

    def test_unknown_key(self):
        with self.assertRaisesRegex(LabError, "unknown key"):
            self.load('topology = "no-cxl"\ntimout = 3\n[[expect]]\nowner = "hmem"\n')

    def test_bad_cxl_test_pieces(self):
        for entry in ('cxl_test = true\npieces = 257', 'cxl_test = true\npieces = true', 'cxl_test = true\npieces = 0',
                      'cxl_test = true\npieces = "4"', 'window = 0\nsize = "2M"\npieces = 2'):
            with self.subTest(entry=entry), self.assertRaisesRegex(LabError, "pieces is for a cxl_test"):
                self.load(f'topology = "cxl-test"\n[[soft_reserved]]\n{entry}\n[[expect]]\nowner = "hmem"\n')

    def test_check_stage_out_of_range(self):
        with self.assertRaisesRegex(LabError, "check_stages must name stages 1..1"):
            self.load('topology = "no-cxl"\ncheck_stages = [2]\n[[expect]]\nowner = "hmem"\n')

    def test_bad_dax_region_counts(self):
        with self.assertRaisesRegex(LabError, "expect_dax_regions"):
            self.load('topology = "no-cxl"\nexpect_dax_regions = { dax = 1 }\n')

    def test_dax_region_counts_alone_are_an_expectation(self):
        s = self.load('topology = "no-cxl"\nexpect_dax_regions = { cxl = 1 }\n')
        self.assertEqual((s.expect, s.expect_dax_regions, s.check_stages), ([], {"cxl": 1}, (1,)))

    def test_stage_gap(self):
        with self.assertRaisesRegex(LabError, "without gaps"):
            self.load('topology = "no-cxl"\nstage2 = ""\n[[expect]]\nowner = "hmem"\n')



class KernelRequirements(unittest.TestCase):
    """What a scenario needs of a kernel, and which kernels have it."""

    def kernel(self, d, modules, cxl_test=False):
        from labpy.kernel import Kernel
        mods = Path(d, "modules", "lib", "modules", "7.3.4")
        mods.mkdir(parents=True)
        (mods / "modules.dep").write_text("".join(f"kernel/x/{m}.ko.xz:\n" for m in modules))
        if cxl_test:
            Path(d, "cxl_test-modules").mkdir()
        return Kernel(Path(d), "7.3.4", "7.3.4-1", Path(d), "stock")

    def test_cxl_test_and_test_modules(self):
        t = scenario.load_scenario("t-rebind-pending")
        d = scenario.load_scenario("d-cxl-test")
        a = scenario.load_scenario("a-uncommitted")
        self.assertEqual(t.needs_modules, ("test_async_driver_probe",))
        with tempfile.TemporaryDirectory() as tmp:
            k = self.kernel(tmp, ["dax_hmem", "cxl_acpi"])
            self.assertEqual(k.lacks(t), ["test_async_driver_probe"])
            self.assertEqual(k.lacks(d), ["cxl_test"])
            self.assertEqual(k.lacks(a), [])
        with tempfile.TemporaryDirectory() as tmp:
            k = self.kernel(tmp, ["test_async_driver_probe"], cxl_test=True)
            self.assertEqual(k.lacks(t), [])
            self.assertEqual(k.lacks(d), [])

    def test_needs_modules_must_be_a_list_of_names(self):
        with tempfile.TemporaryDirectory() as d:
            Path(d, "x.toml").write_text('topology = "single-window"\nneeds_modules = "cxl_test"\n'
                                         '[[expect]]\nowner = "hmem"\n')
            with self.assertRaisesRegex(LabError, "needs_modules is a list of module names"):
                scenario.load_scenario("x", Path(d))


class KernelCommandLine(unittest.TestCase):
    def test_kasan_boots_with_4_level_paging(self):
        """7.3's identify_cpu() clears LA57 for a moment with interrupts on; under KASAN an
        interrupt in that window reports a wild-memory-access on the direct map."""
        from labpy.kernel import Kernel
        from labpy.drivers import RustDriver
        from labpy.runner import Lab
        e = scenario.load_scenario("e-committed")
        for flavour, expected in (("lab", False), ("stock", False), ("kasan", True)):
            lab = Lab(Kernel(Path("/k"), "7.3.4", "7.3.4-1", Path("/k"), flavour), "/nonexistent")
            words = lab.base_cmdline(e, RustDriver()).split()
            self.assertEqual("no5lvl" in words, expected, flavour)
            self.assertEqual(words[0], "console=ttyS0")


class DriverOptions(unittest.TestCase):
    """lab run --driver rust:NAME=VALUE: module parameters, and expectations per option set."""

    def scenario(self, text, parameters=("split", "reload", "a", "b")):
        """Variants may only name module parameters; these tests name future ones too."""
        with tempfile.TemporaryDirectory() as d, \
                mock.patch.object(scenario, "all_parameters", lambda: sorted(parameters)):
            Path(d, "x.toml").write_text('topology = "single-window"\n' + text)
            return scenario.load_scenario("x", Path(d))

    PLAIN = '[[expect]]\nowner = "none"\n'

    def test_the_variant_with_most_matching_options_applies(self):
        s = self.scenario(self.PLAIN + '[[variant]]\noptions = "split=1"\n[[variant.expect]]\nowner = "hmem"\n'
                          '[[variant]]\noptions = "split=1,reload=reevaluate"\n'
                          'expect_dax_regions = { hmem = 2 }\n[[variant.expect]]\nowner = "cxl"\n')
        self.assertEqual([e.owner for e in s.for_options(()).expect], ["none"])
        self.assertEqual([e.owner for e in s.for_options([("split", "1")]).expect], ["hmem"])
        both = s.for_options([("reload", "reevaluate"), ("split", "1"), ("x", "1")])
        self.assertEqual([e.owner for e in both.expect], ["cxl"])
        self.assertEqual(both.expect_dax_regions, {"hmem": 2})
        self.assertEqual([e.owner for e in s.for_options([("split", "0")]).expect], ["none"])

    def test_a_variant_inherits_what_it_does_not_set(self):
        s = self.scenario('expect_dax_regions = { hmem = 1 }\n' + self.PLAIN +
                          '[[variant]]\noptions = "split=1"\n[[variant.expect]]\nowner = "hmem"\n')
        self.assertEqual(s.for_options([("split", "1")]).expect_dax_regions, {"hmem": 1})

    def test_bytes_lost_expected_per_variant(self):
        s = self.scenario('[[expect]]\nowner = "hmem"\nlost = "256M"\n[[variant]]\noptions = "split=1"\n'
                          '[[variant.expect]]\nowner = "hmem+hmem"\nlost = "128M"\n')
        self.assertEqual([e.lost for e in s.for_options(()).expect], [256 << 20])
        self.assertEqual([e.lost for e in s.for_options([("split", "1")]).expect], [128 << 20])
        with self.assertRaises(LabError):
            self.scenario('[[expect]]\nowner = "hmem"\nlost = "lots"\n')

    def test_two_equally_good_variants_are_an_error(self):
        s = self.scenario(self.PLAIN + '[[variant]]\noptions = "a=1"\nexpect_dax_regions = { hmem = 1 }\n'
                          '[[variant]]\noptions = "b=1"\nexpect_dax_regions = { hmem = 2 }\n')
        with self.assertRaisesRegex(LabError, "match 2 variants equally"):
            s.for_options([("a", "1"), ("b", "1")])

    def test_malformed_variants(self):
        for text, message in (('[[variant]]\noptions = "split"\nexpect_dax_regions = {}\n', "NAME=VALUE"),
                              ('[[variant]]\noptions = "split=1"\n', "expects nothing of its own"),
                              ('[[variant]]\noptions = "a=1"\nexpect_dax_regions = { hmem = 1 }\n'
                               '[[variant]]\noptions = "a=1"\nexpect_dax_regions = { hmem = 1 }\n',
                               "same options"),
                              ('[[variant]]\noptions = "a=1"\nowner = "hmem"\n', "unknown key"),
                              ('[[variant]]\noptions = "region_idel=1"\nexpect_dax_regions = {}\n',
                               "names no parameter of dax_hmem: region_idel")):
            with self.assertRaisesRegex(LabError, message):
                self.scenario(self.PLAIN + text)

    def test_options_reach_the_command_line_and_share_the_module(self):
        from labpy import drivers
        from labpy.kernel import Kernel
        from labpy.runner import Lab
        c, rust, idle = drivers.parse("c,rust,rust:region_idle=1")
        self.assertEqual(idle.name, "rust:region_idle=1")
        self.assertEqual(drivers.build_name(idle), "rust")
        lab = Lab(Kernel(Path("/k"), "7.3.4", "7.3.4-1", Path("/k"), "lab"), "/nonexistent")
        e = scenario.load_scenario("c-no-cxl")
        self.assertNotIn("dax_hmem.region_idle", lab.base_cmdline(e, rust))
        self.assertIn(" dax_hmem.region_idle=1", lab.base_cmdline(e, idle))
        self.assertEqual([x.owner for x in e.for_options(idle.options).expect], ["hmem"])
        self.assertEqual([x.kmem for x in e.for_options(idle.options).expect], [False])
        self.assertEqual([x.kmem for x in e.for_options(rust.options).expect], [True])

    def test_option_names_are_sorted_and_the_reference_has_none(self):
        from labpy import drivers
        with mock.patch.object(drivers.RustDriver, "parameters", ("region_idle", "split")):
            a, b = drivers.parse("c,rust:split=1,region_idle=1")
            self.assertEqual(b.name, "rust:region_idle=1,split=1")
            self.assertEqual(drivers.dir_name(b), "rust:region_idle=1+split=1")
            with self.assertRaisesRegex(LabError, "names a driver twice"):
                drivers.parse("c,rust:split=1,region_idle=1,rust:region_idle=1,split=1")
        with self.assertRaisesRegex(LabError, "the first driver is the reference and runs without options"):
            drivers.parse("rust:region_idle=1,c")
        for bad in ("rust:reload=later", "rust:split=2", "rust:deferral_timeout=1.5"):
            with self.assertRaisesRegex(LabError, "the module would refuse it"):
                drivers.parse(bad)
        self.assertEqual(drivers.parse("rust:reload=reevaluate,split=1,deferral_timeout=30")[0].options,
                         (("deferral_timeout", "30"), ("reload", "reevaluate"), ("split", "1")))
        # Alone, a driver with options has no reference to be compared with.
        self.assertEqual([d.name for d in drivers.parse("rust:region_idle=1")], ["rust:region_idle=1"])

    def test_negative_offsets_run_into_the_window(self):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "s.toml"
            entry = {"window": 0, "offset": "-128M", "size": "256M", "span": True}
            self.assertEqual(scenario._soft_reserved(path, entry).offset, -(128 << 20))
            for bad in ({**entry, "span": False}, {**entry, "size": "128M"}, {"address": "-1M", "size": "1M"}):
                with self.assertRaises(LabError):
                    scenario._soft_reserved(path, bad)

    def test_split_owners_are_pieces_of_known_owners(self):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "s.toml"
            self.assertEqual(scenario._expectations(path, [{"owner": "hmem+cxl+hmem"}])[0].owner, "hmem+cxl+hmem")
            for bad in ("hmem+", "hmem+kmem", "+cxl"):
                with self.assertRaises(LabError):
                    scenario._expectations(path, [{"owner": bad}])

    def test_drivers_with_options_are_not_compared_with_the_reference(self):
        from labpy import report
        e = scenario.load_scenario("c-no-cxl")
        aspects = {"1": {"iomem": "a\n", "owners": ["hmem"], "decisions": [[]], "daxctl": [], "cxl": []}}
        other = {"1": dict(aspects["1"], iomem="b\n")}
        runs = {("c-no-cxl", "c"): {"status": "pass", "aspects": aspects},
                ("c-no-cxl", "rust:region_idle=1"): {"status": "pass", "aspects": other}}
        row, = report.matrix([e], runs, ["c", "rust:region_idle=1"])
        self.assertEqual((row["match"], row["result"], row["differences"]), (None, "pass", []))
        runs[("c-no-cxl", "mutant:x")] = {"status": "pass", "aspects": other}
        row, = report.matrix([e], runs, ["c", "rust:region_idle=1", "mutant:x"])
        self.assertEqual((row["match"], row["result"]), (False, "fail"))


class WindowDiscovery(unittest.TestCase):
    def test_lines_of_another_shape_are_not_windows(self):
        from labpy.runner import parse_windows
        text = ("0 0x290000000 0x100000000\n"
                "cat: can't open '/sys/bus/cxl/devices/decoder0.*/start': No such file or directory\n"
                "*  \n\n1 0x390000000 0x100000000\n")
        self.assertEqual(parse_windows(text), {0: (0x290000000, 1 << 32), 1: (0x390000000, 1 << 32)})
        self.assertEqual(parse_windows(""), {})


if __name__ == "__main__":
    unittest.main()
