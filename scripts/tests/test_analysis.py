"""The analysis must fail runs that miss their expectation: every check here has a wrong
input that it rejects."""

from dataclasses import replace
import os
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labpy import analysis  # noqa: E402
from labpy.scenario import Expectation, Scenario, SoftReserved, Topology  # noqa: E402

SR_LINE = "[    0.000000] user: [mem 0x0000000110000000-0x000000011fffffff]  soft reserved\n"
AWAIT = ("[    4.4] hmem_platform hmem_platform.0: await CXL initial probe: "
         "[mem 0x110000000-0x11fffffff flags 0x80000200]\n")
REGISTER = ("[    4.5] hmem_platform hmem_platform.0: CXL did not claim resource, registering: "
            "[mem 0x110000000-0x11fffffff flags 0x80000200]\n")
DROP = ("[    4.5] hmem_platform hmem_platform.0: CXL claims resource, dropping: "
        "[mem 0x110000000-0x11fffffff flags 0x80000200]\n")
HMEM_DAX = "dax1.0\t/platform/hmem_platform.0/hmem.1/dax1.0\t0x110000000\t268435456\t268435456\n"
CXL_DAX = ("dax0.0\t/platform/ACPI0017:00/root0/decoder0.0/region0/dax_region0/dax0.0\t"
           "0x110000000\t268435456\t268435456\n")


def scenario(owner="hmem", decisions=("await CXL initial probe", "CXL did not claim resource, registering"),
             stages=1, kind="window"):
    topo = Topology("t", "", "2G", "max", (), (), True)
    return Scenario("s", "", topo, "in-tree", "", 60, [SoftReserved(kind)], [""] * stages, True,
                    [Expectation(owner, tuple(decisions))])


def stage(dmesg, dax="", rc="0", kmemleak=""):
    return {"dmesg.txt": dmesg, "dax-devices.tsv": dax, "steps.rc": rc + "\n", "kmemleak.txt": kmemleak}


def evaluate(s, *stages, console="", driver=None):
    """(ranges of the last checked stage, failures)."""
    checked, failures = analysis.evaluate(s, list(stages), console, driver)
    return checked.get(s.check_stages[-1], []), failures


class Faults(unittest.TestCase):
    def test_each_report_kind_is_a_fault(self):
        for line in ["WARNING: CPU: 0 PID: 1 at drivers/dax/bus.c:10 foo",
                     "BUG: sleeping function called from invalid context",
                     "kernel BUG at mm/slub.c:1!",
                     "Oops: general protection fault, probably for non-canonical address",
                     "WARNING: possible circular locking dependency detected",
                     "kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)",
                     "unreferenced object 0xffff888003a1c000 (size 64):",
                     "Kernel panic - not syncing: No working init found."]:
            self.assertEqual(analysis.faults(f"[ 1.0] {line}\n"), [f"[ 1.0] {line}"], line)

    def test_clean_boot_lines_are_not_faults(self):
        clean = ("Lock dependency validator: Copyright (c) 2006 Red Hat, Inc., Ingo Molnar\n"
                 'PCI: Using host bridge windows from ACPI; if necessary, use "pci=nocrs" and report a bug\n'
                 "kmemleak: Kernel memory leak detector initialized (mem pool available: 15676)\n")
        self.assertEqual(analysis.faults(clean), [])

    def test_a_warning_fails_an_otherwise_good_run(self):
        _, failures = evaluate(scenario(), stage(SR_LINE + AWAIT + REGISTER + "WARNING: at x\n", HMEM_DAX))
        self.assertTrue(any("WARNING" in f for f in failures))

    def test_a_kmemleak_report_fails_the_run(self):
        _, failures = evaluate(scenario(), stage(SR_LINE + AWAIT + REGISTER, HMEM_DAX,
                                                 kmemleak="unreferenced object 0xffff8880 (size 8):\n"))
        self.assertTrue(any("kmemleak" in f for f in failures))

    RESOURCE_LEAK = """unreferenced object 0xff12dd68c354da40 (size 64):
  comm "sh", pid 122, jiffies 4294895457
  backtrace (crc 0):
    kmemleak_alloc+0x50/0x90
    __kmalloc_cache_noprof+0x2b0/0x5c0
    get_free_mem_region+0x4a/0x320
    alloc_free_mem_region+0x20/0x30
    size_store+0x1be/0x2d0 [cxl_core]
"""
    DRIVER_LEAK = """unreferenced object 0xff44d09f85a943c0 (size 64):
  backtrace (crc 5c8b1b2a):
    kmemleak_alloc+0x50/0x90
    __kmalloc_cache_noprof+0x2b0/0x5c0
    _RNvXs0_NtCsi31JWhLqgb0_13dax_hmem_main13hmem_platform5visit+0xf3/0x200 [dax_hmem]
"""
    COUNT = "[   22.094102] kmemleak: {} new suspected memory leaks (see /sys/kernel/debug/kmemleak)\n"

    def test_a_known_kernel_leak_alone_passes_and_is_named(self):
        dmesg = SR_LINE + AWAIT + REGISTER + self.COUNT.format(1)
        files = stage(dmesg, HMEM_DAX, kmemleak=self.RESOURCE_LEAK)
        _, failures = evaluate(scenario(), files, console=self.COUNT.format(1))
        self.assertEqual(failures, [])
        _, names = analysis.excused_leaks(files)
        self.assertEqual(len(names), 1)
        self.assertIn("alloc_free_mem_region", names[0])

    def test_a_filled_in_resource_with_the_known_backtrace_still_fails(self):
        leak = self.RESOURCE_LEAK.replace("(crc 0)", "(crc 8f3a21c4)")
        _, failures = evaluate(scenario(), stage(SR_LINE + AWAIT + REGISTER, HMEM_DAX, kmemleak=leak))
        self.assertEqual(len(failures), 1)
        self.assertIn("0xff12dd68c354da40", failures[0])

    def test_a_deferred_probe_reason_leak_passes_whatever_its_contents(self):
        leak = """unreferenced object 0xff365646c404dec0 (size 64):
  comm "modprobe", pid 69, jiffies 4294893697
  backtrace (crc 61baf3fd):
    kmemleak_alloc+0x50/0x90
    kvasprintf+0x60/0xb0
    kasprintf+0x4a/0x50
    device_set_deferred_probe_reason+0x40/0x80
    __dev_probe_failed+0x6a/0xb0
    dev_err_probe+0x50/0x60
    __driver_probe_device+0xf9/0x160
    driver_probe_device+0x1f/0x80
"""
        dmesg = SR_LINE + AWAIT + REGISTER + self.COUNT.format(1)
        files = stage(dmesg, HMEM_DAX, kmemleak=leak)
        _, failures = evaluate(scenario(), files)
        self.assertEqual(failures, [])
        self.assertIn("deferred probe reason", analysis.excused_leaks(files)[1][0])

    def test_a_leak_beside_a_known_one_fails_with_the_count(self):
        dmesg = SR_LINE + AWAIT + REGISTER + self.COUNT.format(2)
        _, failures = evaluate(scenario(), stage(dmesg, HMEM_DAX, kmemleak=self.RESOURCE_LEAK + self.DRIVER_LEAK))
        self.assertEqual([f.split(": ", 1)[0] for f in failures], ["stage 1 dmesg.txt", "stage 1 kmemleak.txt"])
        self.assertIn("0xff44d09f85a943c0", failures[1])

    def test_more_leaks_counted_than_known_ones_listed_fail(self):
        dmesg = SR_LINE + AWAIT + REGISTER + self.COUNT.format(2)
        _, failures = evaluate(scenario(), stage(dmesg, HMEM_DAX, kmemleak=self.RESOURCE_LEAK))
        self.assertEqual(len(failures), 1)
        self.assertIn("2 new suspected", failures[0])

    def test_a_panic_on_the_console_fails_the_run(self):
        _, failures = evaluate(scenario(), stage(SR_LINE + AWAIT + REGISTER, HMEM_DAX),
                               console="Kernel panic - not syncing: x\n")
        self.assertTrue(any("panic" in f for f in failures))


class Outcomes(unittest.TestCase):
    def test_expected_hmem_path_passes(self):
        ranges, failures = evaluate(scenario(), stage(SR_LINE + AWAIT + REGISTER, HMEM_DAX))
        self.assertEqual(failures, [])
        self.assertEqual(ranges[0]["owner"], "hmem")

    def test_wrong_owner_fails(self):
        _, failures = evaluate(scenario(), stage(SR_LINE + AWAIT + REGISTER, CXL_DAX))
        self.assertTrue(any("owner cxl, expected hmem" in f for f in failures))

    def test_missing_deferral_fails(self):
        # hmem owning the range without the deferral lines is the wrong path.
        _, failures = evaluate(scenario(), stage(SR_LINE, HMEM_DAX))
        self.assertTrue(any("decisions [], expected" in f for f in failures))

    def test_wrong_decision_fails(self):
        s = scenario("cxl", ("await CXL initial probe", "CXL claims resource, dropping"))
        self.assertEqual(evaluate(s, stage(SR_LINE + AWAIT + DROP, CXL_DAX))[1], [])
        _, failures = evaluate(s, stage(SR_LINE + AWAIT + REGISTER, CXL_DAX))
        self.assertTrue(any("decisions" in f for f in failures))

    def test_no_dax_device_is_owner_none(self):
        ranges, failures = evaluate(scenario(), stage(SR_LINE + AWAIT + REGISTER, ""))
        self.assertEqual(ranges[0]["owner"], "none")
        self.assertTrue(failures)

    def test_both_owners_is_a_conflict(self):
        ranges, _ = evaluate(scenario(), stage(SR_LINE + AWAIT + REGISTER, HMEM_DAX + CXL_DAX))
        self.assertTrue(ranges[0]["owner"].startswith("conflict"))

    def test_hmem_must_cover_the_whole_range(self):
        half = "dax1.0\t/platform/hmem_platform.0/hmem.1/dax1.0\t0x110000000\t134217728\t134217728\n"
        ranges, _ = evaluate(scenario(), stage(SR_LINE + AWAIT + REGISTER, half))
        self.assertNotEqual(ranges[0]["owner"], "hmem")

    def test_range_count_must_match(self):
        _, failures = evaluate(scenario(), stage(AWAIT + REGISTER, HMEM_DAX))
        self.assertTrue(any("found 0" in f for f in failures))

    def test_failed_guest_steps_fail_the_run(self):
        _, failures = evaluate(scenario(), stage(SR_LINE + AWAIT + REGISTER, HMEM_DAX, rc="1"))
        self.assertTrue(any("exited with 1" in f for f in failures))

    def test_missing_stage_fails(self):
        _, failures = evaluate(scenario(stages=2), stage(SR_LINE, HMEM_DAX, rc="kexec"))
        self.assertTrue(any("1 of 2 stages" in f for f in failures))

    def test_cxl_test_range_is_first_half_of_window_0(self):
        iomem = "1000000000-103fffffff : CXL Window 0\n  1000000000-101fffffff : region0\n"
        s = scenario(kind="cxl_test")
        self.assertEqual(analysis.soft_reserved_ranges("", iomem, s), [(0x1000000000, 0x101FFFFFFF)])

    def test_cxl_test_pieces_are_2m_ranges_from_window_0s_start(self):
        iomem = "1000000000-103fffffff : CXL Window 0\n"
        s = replace(scenario(kind="cxl_test"), soft_reserved=[SoftReserved("cxl_test", pieces=256)])
        ranges = analysis.soft_reserved_ranges("", iomem, s)
        self.assertEqual(len(ranges), 256)
        self.assertEqual((ranges[0][0], ranges[-1][1]), (0x1000000000, 0x101FFFFFFF))
        self.assertTrue(all(b - a + 1 == 2 << 20 for a, b in ranges))
        self.assertTrue(all(n[0] == p[1] + 1 for p, n in zip(ranges, ranges[1:])))
        s = replace(s, soft_reserved=[SoftReserved("cxl_test", pieces=3)])
        self.assertEqual(analysis.soft_reserved_ranges("", iomem, s)[-1], (0x1000400000, 0x10005FFFFF))

IOMEM_CXL = """110000000-20fffffff : CXL Window 0
  110000000-11fffffff : region0
    110000000-11fffffff : dax0.0
      110000000-11fffffff : System RAM (kmem)
210000000-30fffffff : CXL Window 1
"""
KMEM_TREE = "CXL Window 0\n  region0\n    dax0.0\n      System RAM (kmem)\n"


class Iomem(unittest.TestCase):
    def test_nesting_present(self):
        self.assertIsNone(analysis.iomem_tree_missing(IOMEM_CXL, KMEM_TREE))

    def test_nesting_under_the_wrong_parent_is_missing(self):
        flat = IOMEM_CXL.replace("    110000000-11fffffff : dax0.0", "  110000000-11fffffff : dax0.0")
        self.assertEqual(analysis.iomem_tree_missing(flat, KMEM_TREE), "dax0.0")

    def test_a_name_under_a_sibling_does_not_count(self):
        tree = "CXL Window 1\n  region0\n"
        self.assertEqual(analysis.iomem_tree_missing(IOMEM_CXL, tree), "region0")

    def test_kmem_over_a_range(self):
        self.assertTrue(analysis.kmem_over((0x110000000, 0x11fffffff), IOMEM_CXL))
        self.assertFalse(analysis.kmem_over((0x110000000, 0x12fffffff), IOMEM_CXL))


class BytesLost(unittest.TestCase):
    """Soft Reserved bytes in no dax device with a driver and in no kmem-added memory."""

    SR = (0x110000000, 0x11fffffff)  # 256 MiB

    def lost(self, tsv, iomem=""):
        return analysis.bytes_lost(self.SR, analysis.usable_spans(tsv, iomem))

    def test_a_bound_device_over_the_range_loses_nothing(self):
        self.assertEqual(self.lost(HMEM_DAX.rstrip("\n") + "\tdevice_dax\n"), 0)

    def test_an_unbound_device_loses_it_all(self):
        """kmem's probe failed (-16, -22): the device is left without a driver."""
        self.assertEqual(self.lost(HMEM_DAX.rstrip("\n") + "\t-\n"), 256 << 20)
        self.assertEqual(self.lost(""), 256 << 20)

    def test_kmem_memory_counts_and_overlaps_count_once(self):
        iomem = "110000000-117ffffff : System RAM (kmem)\n"
        self.assertEqual(self.lost("", iomem), 128 << 20)
        half = "dax1.0\t/p\t0x114000000\t268435456\t134217728\tkmem\n"
        self.assertEqual(self.lost(half, iomem), 64 << 20)

    def test_a_zero_size_device_and_memory_outside_the_range(self):
        """region_idle=1 leaves a 0-byte device: its region's bytes are in no device."""
        idle = "dax1.0\t/p\t0x110000000\t268435456\t0\tdevice_dax\n"
        outside = "dax2.0\t/p\t0x120000000\t268435456\t268435456\tdevice_dax\n"
        self.assertEqual(self.lost(idle + outside, "100000000-10fffffff : System RAM (kmem)\n"), 256 << 20)

    def test_a_run_reports_lost_bytes_per_range(self):
        """The guest's six columns (lab_collect_dax): the sixth is the bound driver."""
        ranges, _ = evaluate(scenario(), stage(SR_LINE + AWAIT + REGISTER, HMEM_DAX))
        self.assertEqual(ranges[0]["lost"], 256 << 20)
        bound = HMEM_DAX.rstrip("\n") + "\tkmem\n"
        ranges, _ = evaluate(scenario(), stage(SR_LINE + AWAIT + REGISTER, bound))
        self.assertEqual(ranges[0]["lost"], 0)
        lib = (Path(__file__).resolve().parents[1] / "guest" / "lib.sh").read_text()
        self.assertIn('"$(cat "$d/size")" "$drv"', lib)


class Expectations(unittest.TestCase):
    def test_kmem_expectation(self):
        s = scenario()
        s.expect = [Expectation("hmem", s.expect[0].decisions, kmem=True)]
        files = stage(SR_LINE + AWAIT + REGISTER, HMEM_DAX)
        self.assertEqual(evaluate(s, files)[1],
                         ["range 0 [0x110000000-0x11fffffff]: kmem did not add it as System RAM, expected added"])
        files["proc-iomem.txt"] = "110000000-11fffffff : dax1.0\n  110000000-11fffffff : System RAM (kmem)\n"
        self.assertEqual(evaluate(s, files)[1], [])

    def test_dax_region_counts(self):
        s = scenario()
        s.expect, s.soft_reserved, s.expect_dax_regions = [], [], {"cxl": 1, "hmem": 0}
        self.assertEqual(evaluate(s, stage("", CXL_DAX))[1], [])
        self.assertEqual(evaluate(s, stage("", HMEM_DAX))[1],
                         ["0 cxl dax region(s), expected 1", "1 hmem dax region(s), expected 0"])

    def test_expected_iomem_nesting(self):
        s = scenario(owner="cxl", decisions=("await CXL initial probe", "CXL claims resource, dropping"))
        s.expect_iomem = KMEM_TREE
        files = dict(stage(SR_LINE + AWAIT + DROP, CXL_DAX), **{"proc-iomem.txt": IOMEM_CXL})
        self.assertEqual(evaluate(s, files)[1], [])
        files["proc-iomem.txt"] = IOMEM_CXL.replace("      110000000-11fffffff : System RAM (kmem)\n", "")
        self.assertEqual(evaluate(s, files)[1], ["/proc/iomem lacks the expected nesting at 'System RAM (kmem)'"])

    def test_every_checked_stage_is_held_to_the_expectation(self):
        s = scenario(stages=3)
        s.check_stages = (2, 3)
        good = stage(SR_LINE + AWAIT + REGISTER, HMEM_DAX, rc="kexec")
        bad = stage(SR_LINE + AWAIT + REGISTER, CXL_DAX)
        checked, failures = analysis.evaluate(s, [good, good, bad], "")
        self.assertEqual(sorted(checked), [2, 3])
        self.assertEqual(failures, ["stage 3: range 0 [0x110000000-0x11fffffff]: owner cxl, expected hmem"])


if __name__ == "__main__":
    unittest.main()


PROC_MODULES = ("dax_cxl 12288 0 - Live 0xffffffffc0250000\n"
                "dax_hmem 16384 1 dax_cxl, Live 0xffffffffc023d000 (O)\n"
                "dax 45056 3 device_dax,kmem,dax_hmem, Live 0xffffffffc0239000\n")
RUST_SYMBOLS = ("ffffffffc0200000 T dax_hmem_flush_work\t[dax_hmem]\n"
                "ffffffffc0200100 t _RNvNtCs1_13dax_hmem_main3ffi11region_idle\t[dax_hmem]\n"
                "ffffffffc0203000 d __this_module\t[dax_hmem]\n")
C_SYMBOLS = ("ffffffffc0200000 T dax_hmem_flush_work\t[dax_hmem]\n"
             "ffffffffc0200100 t hmem_register_device\t[dax_hmem]\n"
             "ffffffffc0203000 d __this_module\t[dax_hmem]\n")


def good_stage(**extra):
    return dict(stage(SR_LINE + AWAIT + REGISTER, HMEM_DAX), **extra)


class Modules(unittest.TestCase):
    def test_users_are_read_from_proc_modules(self):
        self.assertEqual(analysis.loaded_modules(PROC_MODULES),
                         {"dax_cxl": [], "dax_hmem": ["dax_cxl"], "dax": ["device_dax", "kmem", "dax_hmem"]})

    def test_module_users_pass_when_present(self):
        s = scenario()
        s.module_users = {"dax_hmem": ("dax_cxl",)}
        _, failures = evaluate(s, good_stage(**{"proc-modules.txt": PROC_MODULES}))
        self.assertEqual(failures, [])

    def test_missing_user_fails(self):
        s = scenario()
        s.module_users = {"dax_hmem": ("dax_cxl",)}
        no_user = PROC_MODULES.replace("1 dax_cxl,", "0 -")
        _, failures = evaluate(s, good_stage(**{"proc-modules.txt": no_user}))
        self.assertEqual(failures, ["module dax_cxl does not use dax_hmem (/proc/modules)"])

    def test_module_not_loaded_fails(self):
        s = scenario()
        s.module_users = {"dax_hmem": ("dax_cxl",)}
        _, failures = evaluate(s, good_stage(**{"proc-modules.txt": ""}))
        self.assertEqual(failures, ["module dax_hmem is not loaded"])


REPORT_HEAD = "# host range decision reason owner\n"
REPORT_HMEM = "hmem_platform.0 [mem 0x0000000110000000-0x000000011fffffff] hmem not-contained hmem.1\n"


class Implementation(unittest.TestCase):
    def run_as(self, driver, symbols):
        report = {"disposition.txt": REPORT_HEAD + REPORT_HMEM} if symbols == RUST_SYMBOLS else {}
        return evaluate(scenario(), good_stage(**{"dax_hmem-symbols.txt": symbols}, **report),
                        driver=driver)[1]

    def test_symbols_tell_rust_from_c(self):
        self.assertEqual(analysis.dax_hmem_implementation(RUST_SYMBOLS), "rust")
        self.assertEqual(analysis.dax_hmem_implementation(C_SYMBOLS), "c")
        self.assertIsNone(analysis.dax_hmem_implementation(""))

    def test_matching_driver_passes(self):
        self.assertEqual(self.run_as("rust", RUST_SYMBOLS), [])
        self.assertEqual(self.run_as("c", C_SYMBOLS), [])

    def test_a_run_that_loaded_the_other_driver_fails(self):
        self.assertEqual(self.run_as("rust", C_SYMBOLS), ["driver=rust, but the guest ran the c dax_hmem"])
        self.assertEqual(self.run_as("c", RUST_SYMBOLS), ["driver=c, but the guest ran the rust dax_hmem"])

    def test_a_run_without_dax_hmem_fails(self):
        self.assertEqual(self.run_as("rust", ""), ["driver=rust, but the guest ran no dax_hmem"])


SR = [(0x110000000, 0x11fffffff)]
HMEM_REGION = ("hmem", "/platform/hmem_platform.0/hmem.1", 0x110000000, 0x11fffffff)
CXL_REGION = ("cxl", "/platform/ACPI0017:00/root0/decoder0.0/region0/dax_region0", 0x110000000, 0x11fffffff)


class DispositionReport(unittest.TestCase):
    def check(self, report, regions, srs=SR):
        return analysis.disposition_disagreements(REPORT_HEAD + report, srs, regions)

    def test_an_agreeing_report_passes(self):
        self.assertEqual(self.check(REPORT_HMEM, [HMEM_REGION]), [])
        cxl = "hmem_platform.0 [mem 0x0000000110000000-0x000000011fffffff] cxl contained-by-region0 region0\n"
        self.assertEqual(self.check(cxl, [CXL_REGION]), [])
        left = "hmem_platform.0 [mem 0x0000000110000000-0x000000011fffffff] left-to-cxl reload -\n"
        self.assertEqual(self.check(left, []), [])

    def test_an_owner_sysfs_does_not_show_fails(self):
        self.assertTrue(self.check(REPORT_HMEM, []))
        self.assertTrue(self.check(REPORT_HMEM, [("hmem", "/platform/hmem_platform.0/hmem.2",
                                                   0x110000000, 0x11fffffff)]))
        cxl = "hmem_platform.0 [mem 0x0000000110000000-0x000000011fffffff] cxl contained-by-region1 region1\n"
        self.assertTrue(self.check(cxl, [CXL_REGION]))

    def test_a_range_left_alone_that_hmem_owns_fails(self):
        left = "hmem_platform.0 [mem 0x0000000110000000-0x000000011fffffff] left-to-cxl reload -\n"
        self.assertTrue(self.check(left, [HMEM_REGION]))

    def test_missing_extra_and_pending_ranges_fail(self):
        self.assertTrue(self.check("", [HMEM_REGION]))
        self.assertTrue(self.check(REPORT_HMEM, [HMEM_REGION], srs=SR + [(0x120000000, 0x12fffffff)]))
        pending = "hmem_platform.0 [mem 0x0000000110000000-0x000000011fffffff] pending await-cxl-probe -\n"
        self.assertTrue(self.check(pending, []))
        self.assertTrue(self.check("garbage\n" + REPORT_HMEM, [HMEM_REGION]))

    def test_pieces_tile_a_split_range(self):
        pieces = ("hmem_platform.0 [mem 0x0000000110000000-0x0000000117ffffff] hmem not-in-cxl-window hmem.1\n"
                  "hmem_platform.0 [mem 0x0000000118000000-0x000000011fffffff] hmem not-contained hmem.2\n")
        regions = [("hmem", "/platform/hmem_platform.0/hmem.1", 0x110000000, 0x117ffffff),
                   ("hmem", "/platform/hmem_platform.0/hmem.2", 0x118000000, 0x11fffffff)]
        self.assertEqual(self.check(pieces, regions), [])
        self.assertEqual(analysis.owner(SR[0], regions), "hmem+hmem")

    def test_an_incomplete_report_is_not_checked(self):
        self.assertEqual(self.check("# incomplete: a record was lost for lack of memory\n", []), [])

    def test_the_rust_module_must_have_a_report(self):
        _, failures = evaluate(scenario(), good_stage(**{"dax_hmem-symbols.txt": RUST_SYMBOLS}), driver="rust")
        self.assertTrue(any("no dax_hmem/disposition" in f for f in failures))


class SplitOwners(unittest.TestCase):
    def test_pieces_in_address_order_with_gaps(self):
        sr = (0x100, 0x4ff)
        regions = [("cxl", "/r/region0/dax_region0", 0x200, 0x2ff), ("hmem", "/h/hmem.1", 0x100, 0x1ff),
                   ("hmem", "/h/hmem.2", 0x400, 0x4ff)]
        self.assertEqual(analysis.owner(sr, regions), "hmem+cxl+none+hmem")

    def test_overlapping_regions_are_a_conflict(self):
        sr = (0x100, 0x4ff)
        regions = [("hmem", "/h/hmem.1", 0x100, 0x4ff), ("cxl", "/r/region0/dax_region0", 0x200, 0x2ff)]
        self.assertTrue(analysis.owner(sr, regions).startswith("conflict"))

    def test_kmem_over_pieces_covers_the_range(self):
        iomem = ("100-1ff : dax1.0\n  100-1ff : System RAM (kmem)\n"
                 "200-2ff : dax2.0\n  200-2ff : System RAM (kmem)\n")
        self.assertTrue(analysis.kmem_over((0x100, 0x2ff), iomem))
        self.assertFalse(analysis.kmem_over((0x100, 0x3ff), iomem))


class StepsMessage(unittest.TestCase):
    def test_last_line_the_steps_printed(self):
        log = "+ echo x\npremise not met: the holder ended\n+ exit 1\n"
        self.assertEqual(analysis.last_message(log), "premise not met: the holder ended")

    def test_not_an_earlier_steps_output(self):
        log = "+ echo x\nsh: write error: busy\n+ grep -q busy /tmp/err\n"
        self.assertEqual(analysis.last_message(log), "")

    def test_only_traces(self):
        self.assertEqual(analysis.last_message("+ false\n"), "")


class HangReport(unittest.TestCase):
    """The guest's report of a stage that hangs (guest/lib.sh), run by busybox's shell as in
    the guest, over a made-up /proc."""
    LIB = Path(__file__).resolve().parents[1] / "guest" / "lib.sh"
    STACK = ("[<0>] __schedule+0x3e0/0x1000\n[<0>] schedule+0x27/0xa0\n"
             "[<0>] wait_for_device_probe+0x90/0xb0\n[<0>] process_defer_work+0x20/0x90 [dax_hmem]\n"
             "[<0>] process_one_work+0x1c7/0x3b0\n[<0>] worker_thread+0x4d/0x380\n[<0>] kthread+0xf0/0x120\n")

    def setUp(self):
        self.tmp = Path(self.enterContext(tempfile.TemporaryDirectory()))
        for pid, comm, state in (("1", "init", "S (sleeping)"), ("17", "kworker/u8:1", "D (disk sleep)")):
            task = self.tmp / "proc" / pid
            task.mkdir(parents=True)
            (task / "comm").write_text(comm + "\n")
            (task / "status").write_text(f"Name:\t{comm}\nState:\t{state}\n")
            (task / "stack").write_text(self.STACK)
        (self.tmp / "steps.log").write_text("+ lab_wait v_dax_cxl_tried\n+ v_dax_cxl_tried\n"
                                            "+ cat /sys/bus/dax/devices/dax0.0/size\n")

    def sh(self, script):
        env = dict(os.environ, LAB_CONSOLE=str(self.tmp / "console"), LAB_PROC=str(self.tmp / "proc"))
        subprocess.run(["busybox", "sh", "-c", f'. "{self.LIB}"; LAB_OUT="{self.tmp}"; LAB_STAGE=2; {script}'],
                       env=env, check=True, timeout=20)

    def console(self):
        return (self.tmp / "console").read_text()

    def test_it_names_the_step_and_what_blocked_tasks_wait_in(self):
        self.sh("LAB_HANG_REPORT=240 lab_report_hang")
        last = self.console().splitlines()[-1]
        self.assertRegex(last, analysis.HANG_REPORT)
        self.assertTrue(last.endswith(
            "] stage 2 still running after 240 s, at 'cat /sys/bus/dax/devices/dax0.0/size'; blocked: "
            "kworker/u8:1 (wait_for_device_probe<process_defer_work<process_one_work<worker_thread)"), last)
        self.assertIn("lab: blocked: 17 kworker/u8:1\n" + self.STACK, self.console())
        self.assertNotIn("init", self.console())
        # Not a failure by itself: a slow stage may still finish in time.
        self.assertEqual(analysis.faults(self.console()), [])

    def test_the_watch_is_no_job_that_a_step_waits_for(self):
        start = time.monotonic()
        self.sh("LAB_HANG_REPORT=2; lab_watch_for_hang; (sleep 0.1 & wait); wait")
        self.assertLess(time.monotonic() - start, 1.5)
        self.assertFalse((self.tmp / "console").exists())
        deadline = time.monotonic() + 10
        while not (self.tmp / "console").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.3)
        self.assertRegex(self.console().splitlines()[-1], analysis.HANG_REPORT)

    def test_no_report_without_a_time(self):
        self.sh("LAB_HANG_REPORT=; lab_watch_for_hang")
        time.sleep(0.5)
        self.assertFalse((self.tmp / "console").exists())
