"""lab stress: what 7.3 predicts for a load order, how the guest's records and kernel log are
read, and its refusals of bad input."""

import subprocess
import unittest
from pathlib import Path

from labpy import stress

ROOT = Path(__file__).resolve().parents[2]
LAB = str(ROOT / "scripts" / "lab")


RUST = type("D", (), {"name": "rust", "implementation": "rust"})()
ORDERS = [["dax_cxl", "kmem", "dax_hmem", "cxl_acpi", "cxl_pci", "cxl_mem"],
          ["dax_hmem", "cxl_mem", "cxl_acpi", "cxl_pci", "dax_cxl", "kmem"]]


def fuzz_outcome(owners_per_order):
    boot = stress.Boot("fuzz", RUST, "fuzz-0-rust", "two-windows", [], False, 1, orders=ORDERS)
    records = [["order", " ".join(o), owners] for o, owners in zip(ORDERS, owners_per_order)]
    return stress.Outcome(boot, records, {}, [], [], False, 1.0, Path("/tmp"), [])


class FuzzPredictions(unittest.TestCase):
    # RAM range, the committed region's range, the second window's range (no region).
    # The unload between orders tears the region down and resets its decoders, and the
    # decision was made once: later orders leave both CXL ranges to a CXL without a region.
    def test_first_decision_splits_later_ones_leave_cxl_ranges_to_no_one(self):
        o = fuzz_outcome(["0x60000000=hmem,0x190000000=cxl,0x290000000=hmem",
                          "0x60000000=hmem,0x190000000=none,0x290000000=none"])
        rows, failures = stress.summarise("fuzz", [o])
        self.assertEqual(failures, [])
        self.assertEqual([r["match"] for r in rows], [True, True])

    def test_hmem_taking_the_committed_region_fails_the_order(self):
        o = fuzz_outcome(["0x60000000=hmem,0x190000000=hmem,0x290000000=hmem",
                          "0x60000000=hmem,0x190000000=none,0x290000000=none"])
        rows, failures = stress.summarise("fuzz", [o])
        self.assertEqual([r["match"] for r in rows], [False, True])
        self.assertEqual(len(failures), 1)
        self.assertIn("7.3 predicts hmem,cxl,hmem", failures[0])

    def test_the_rescan_race_allows_hmem_to_take_the_region_only_in_its_orders(self):
        # cxl_pci first, cxl_acpi only through dax_hmem's request_module(): the memdevs
        # attach through cxl_bus_wq's rescan, which wait_for_device_probe() does not wait for.
        racy = ["cxl_mem", "cxl_pci", "dax_hmem", "cxl_acpi", "kmem", "dax_cxl"]
        self.assertIn(["hmem", "hmem", "hmem"], stress.predicted_order_owners(racy, first=True))
        self.assertEqual(stress.predicted_order_owners(ORDERS[0], first=True), [["hmem", "cxl", "hmem"]])
        self.assertEqual(stress.predicted_order_owners(racy, first=False), [["hmem", "none", "none"]])
        # Never two owners, in any order.
        settled = ["cxl_acpi", "cxl_pci", "cxl_mem", "dax_hmem", "dax_cxl", "kmem"]
        self.assertNotIn(["hmem", "hmem", "hmem"], stress.predicted_order_owners(settled, first=True))

    def test_a_later_order_with_a_region_fails(self):
        o = fuzz_outcome(["0x60000000=hmem,0x190000000=cxl,0x290000000=hmem",
                          "0x60000000=hmem,0x190000000=cxl,0x290000000=none"])
        rows, failures = stress.summarise("fuzz", [o])
        self.assertEqual([r["match"] for r in rows], [True, False])
        self.assertIn("7.3 predicts hmem,none,none", failures[0])

    def test_a_missing_order_result_fails(self):
        rows, failures = stress.summarise("fuzz", [fuzz_outcome(["0x60000000=hmem,0x190000000=cxl,0x290000000=hmem"])])
        self.assertEqual(rows[1]["owners"], "(no result)")
        self.assertEqual(len(failures), 1)


class Records(unittest.TestCase):
    def test_owners_in_address_order(self):
        self.assertEqual(stress.owners_list("0x60000000=hmem,0x290000000=none,0x190000000=cxl"),
                         ["hmem", "cxl", "none"])
        self.assertEqual(stress.owners_list(""), [])

    def test_log_is_cut_at_marks(self):
        log = "[ 1.0] boot\n[ 2.0] lab-stress: fault load k=1\n[ 2.1] a\n[ 3.0] lab-stress: fault load k=2\n[ 3.1] b\n"
        self.assertEqual(stress.log_steps(log), {"fault load k=1": ["[ 2.1] a"], "fault load k=2": ["[ 3.1] b"]})

    def test_rust_symbols_are_shortened(self):
        self.assertEqual(stress.demangle("_RNvNtCs1a2b3c_8dax_hmem13hmem_platform20register_hmem_device"),
                         "hmem_platform::register_hmem_device")
        self.assertEqual(stress.demangle("hmem_register_device"), "hmem_register_device")
        # An identifier ending in a digit does not swallow the next one's length.
        self.assertEqual(stress.demangle("_RNvNtCs1a_8dax_hmem4cxl24init"), "cxl2::init")
        # The crate's hash holds digits too, and the crate may be named otherwise.
        self.assertEqual(stress.demangle("_RNvNtNtCsi31JWhLqgb0_13dax_hmem_main3ffi11hmem_driver10probe_hmem"),
                         "hmem_driver::probe_hmem")

    def test_a_boot_that_did_not_run_fails_with_its_reason(self):
        boot = stress.Boot("loops", RUST, "x", "t", [], False, 9)
        o = stress.Outcome(boot, [], {}, [], [], False, 0.0, Path("/tmp"), [], "qemu failed: assertion")
        self.assertEqual(stress.boot_problems(o), ["not run: qemu failed: assertion"])

    def test_injection_site_is_the_innermost_dax_hmem_frame(self):
        lines = [
            "[ 5.0] FAULT_INJECTION: forcing a failure.",
            "[ 5.0] name failslab, interval 1, probability 0, space 0, times 1",
            "[ 5.0] Call Trace:",
            "[ 5.0]  <TASK>",
            "[ 5.0]  dump_stack_lvl+0x5d/0x80",
            "[ 5.0]  should_fail_ex+0x1a0/0x1c0",
            "[ 5.0]  __kmalloc_noprof+0x80/0x300",
            "[ 5.0]  platform_device_alloc+0x20/0xa0",
            "[ 5.0]  hmem_register_device+0x90/0x1c0 [dax_hmem]",
            "[ 5.0]  walk_hmem_resources+0x40/0x70",
            "[ 5.0]  </TASK>",
            "[ 5.1] hmem_platform hmem_platform.0: device allocation failure for [mem 0x1-0x2]",
        ]
        self.assertEqual(stress.injection_site(lines), ("hmem_register_device", "platform_device_alloc"))
        self.assertEqual(stress.error_line(lines),
                         "hmem_platform hmem_platform.0: device allocation failure for [mem 0x1-0x2]")
        self.assertIsNone(stress.injection_site(lines[-1:]))

    def test_a_range_owned_twice_fails_the_step(self):
        boot = stress.Boot("faults", type("D", (), {"name": "rust", "implementation": "rust"})(), "x", "t", [], False, 1)
        o = stress.Outcome(boot, [["fault", "load", "1", "1", "12", "0x1=hmem+cxl"]], {}, [], [], False, 1.0,
                           Path("/tmp"), [])
        _, failures = stress.summarise("faults", [o])
        self.assertTrue(any("owned twice" in f for f in failures))

    def test_only_the_max_k_note_leaves_a_fault_sweep_passing(self):
        boot = stress.Boot("faults", RUST, "x", "t", [], False, 1)
        records = [["note", "load", "stopped at k=12, still injecting"],
                   ["note", "flush", "dax_cxl had not probed every CXL dax region after 30 s"]]
        o = stress.Outcome(boot, records, {}, [], [], False, 1.0, Path("/tmp"), [])
        _, failures = stress.summarise("faults", [o])
        self.assertEqual(failures, ["x: flush dax_cxl had not probed every CXL dax region after 30 s"])

    def test_a_hang_a_leak_and_a_fault_fail_the_boot(self):
        boot = stress.Boot("loops", type("D", (), {"name": "c", "implementation": "c"})(), "x", "t", [], False, 9)
        o = stress.Outcome(boot, [], {}, ["[ 1.0] WARNING: at foo"], [["__kmalloc_noprof", "foo"]], True, 9.0,
                           Path("/tmp"), [])
        problems = stress.boot_problems(o)
        self.assertEqual(len(problems), 4)


class KnownLeaks(unittest.TestCase):
    REPORT = """unreferenced object 0xff1374030654c380 (size 64):
  comm "fail-nth", pid 1687, jiffies 4294904956
  hex dump (first 32 bytes):
    00 00 00 60 00 00 00 00 ff ff ff 6f 00 00 00 00  ...`.......o....
  backtrace (crc 1eef2db3):
    kmemleak_alloc+0x50/0x90
    __kmalloc_cache_noprof+0x2b0/0x5c0
    __request_region+0x3c/0xa0
    alloc_dev_dax_range+0x7b/0x250 [dax]
    __devm_create_dev_dax+0x97/0x400 [dax]
    devm_create_dev_dax+0x20/0x40 [dax]
    dax_hmem_probe+0x92/0xc0 [dax_hmem]
unreferenced object 0xff3a27cd86546fc0 (size 16):
  comm "fail-nth", pid 1700, jiffies 4294905000
  backtrace (crc 1c169977):
    kmemleak_alloc+0x50/0x90
    kvasprintf+0x60/0xb0
    kobject_set_name_vargs+0x25/0x90
    dev_set_name+0x4a/0x50
    __devm_create_dev_dax+0x87/0x400 [dax]
    devm_create_dev_dax+0x20/0x40 [dax]
    _RNvNtNtCsi31JWhLqgb0_13dax_hmem_main3ffi11hmem_driver10probe_hmem+0x1d7/0x210 [dax_hmem]
"""
    KMEMLEAK = "[ 9.0] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)"

    def outcome(self, part, report):
        boot = stress.Boot(part, RUST, f"{part}-rust", "two-windows", [], False, 1)
        records = [["fault", "load", "1", "1", "12", "0x60000000=hmem"]]
        return stress.Outcome(boot, records, {}, [self.KMEMLEAK], stress.kmemleak_reports(report), False, 1.0,
                              Path("/tmp"), [])

    def test_reports_are_parsed_into_frames(self):
        reports = stress.kmemleak_reports(self.REPORT)
        self.assertEqual(len(reports), 2)
        self.assertEqual(reports[0][2:5], ["__request_region", "alloc_dev_dax_range", "__devm_create_dev_dax"])

    def test_the_dax_core_leaks_are_named_and_do_not_fail_a_fault_sweep(self):
        o = self.outcome("faults", self.REPORT)
        self.assertEqual(stress.boot_problems(o), [])
        rows, failures = stress.summarise("faults", [o])
        self.assertEqual(failures, [])
        self.assertEqual(sorted(r["error"][:28] for r in rows if r["entry"] == "kmemleak at the end"),
                         ["1 known: dax core leak: when", "1 known: dax core leak: when"])

    def test_the_same_leaks_fail_outside_fault_injection(self):
        self.assertEqual(stress.boot_problems(self.outcome("loops", self.REPORT)),
                         ["kernel fault: " + self.KMEMLEAK,
                          "kmemleak: 2 leaks, the first allocated at __kmalloc_cache_noprof <- __request_region "
                          "<- alloc_dev_dax_range <- __devm_create_dev_dax <- devm_create_dev_dax "
                          "<- dax_hmem_probe (all: /tmp/kmemleak.txt)"])

    def test_the_trace_skips_the_allocators_frames_but_the_last(self):
        second = stress.kmemleak_reports(self.REPORT)[1]
        self.assertEqual(stress.leak_trace(second, depth=2), "kvasprintf <- kobject_set_name_vargs <- dev_set_name")
        self.assertEqual(stress.leak_trace([]), "(no backtrace)")

    def test_an_earlier_stage_leak_on_the_console_still_fails(self):
        o = self.outcome("faults", self.REPORT)
        stage1 = "[ 2.0] kmemleak: 1 new suspected memory leaks (see /sys/kernel/debug/kmemleak)"
        o.console_faults = [stage1, self.KMEMLEAK]
        self.assertEqual(stress.boot_problems(o), ["kernel fault: " + stage1])

    def test_a_leak_the_bugs_do_not_explain_fails_the_boot(self):
        # alloc_dev_dax_range called from elsewhere (a resize) is not the known error path.
        other = self.REPORT.replace("__devm_create_dev_dax+0x97", "dev_dax_resize+0x97")
        problems = stress.boot_problems(self.outcome("faults", other))
        self.assertTrue(any(p.startswith("kmemleak: 1 leaks, the first allocated at ") for p in problems))
        self.assertIn("kernel fault: " + self.KMEMLEAK, problems)


class Hangs(unittest.TestCase):
    LOCKDEP = ["[ 9.0] WARNING: possible recursive locking detected",
               "[ 9.0] fail-nth/5434 is trying to acquire lock:",
               "[ 9.0] ffffffffc02b1e68 (dax_region_rwsem){+.+.}-{4:4}, at: unregister_dev_dax+0x2f/0xf0 [dax]"]

    def outcome(self, lines):
        boot = stress.Boot("faults", RUST, "faults-tasks-rust", "two-windows", [], False, 1)
        records = [["fault", "load", "226", "hang", "", ""], ["wedged", "load", "226"]]
        return stress.Outcome(boot, records, {"fault load k=226": lines}, [lines[0].split("] ", 1)[1]], [],
                              False, 1.0, Path("/tmp"), [])

    def test_the_dax_core_deadlock_is_named_and_does_not_fail_the_run(self):
        o = self.outcome(self.LOCKDEP)
        self.assertEqual(stress.wedged_at(o), ("load", 226))
        rows, failures = stress.summarise("faults", [o])
        self.assertEqual(failures, [])
        self.assertEqual((rows[0]["injected"], rows[0]["hang"]), ("hang", True))
        self.assertIn("dax core self-deadlock", rows[0]["error"])

    def test_the_deadlock_in_the_deferred_walk_is_named_too(self):
        # The walk runs on a kworker; the guest bounds its wait and records the hang.
        boot = stress.Boot("faults", RUST, "faults-deferred-k73-rust", "single-window", [], False, 1)
        records = [["fault", "deferred", "73", "hang", "", ""], ["wedged", "deferred", "73"]]
        lines = [line.replace("fail-nth/5434", "kworker/u8:1/26") for line in self.LOCKDEP]
        o = stress.Outcome(boot, records, {"fault deferred k=73": lines}, [lines[0].split("] ", 1)[1]], [],
                           False, 1.0, Path("/tmp"), [])
        self.assertEqual(stress.boot_problems(o), [])
        rows, failures = stress.summarise("faults", [o])
        self.assertEqual(failures, [])
        self.assertEqual((rows[0]["entry"], rows[0]["k"], rows[0]["injected"]), ("deferred", 73, "hang"))
        self.assertIn("dax core self-deadlock", rows[0]["error"])

    def test_any_other_hang_fails(self):
        lines = ["[ 9.0] WARNING: possible recursive locking detected", "[ 9.0] (some_other_lock) at foo"]
        rows, failures = stress.summarise("faults", [self.outcome(lines)])
        self.assertEqual(len(failures), 2)  # the hung step, and the lockdep report
        self.assertTrue(any("the step hung" in f for f in failures))


class Refusals(unittest.TestCase):
    def run_lab(self, *argv):
        done = subprocess.run([LAB, "stress", *argv], capture_output=True, text=True)
        return done.returncode, done.stderr.strip().splitlines()

    def test_bad_input_gets_one_line(self):
        known = "(known: faults, loops, fuzz, hostile)"
        for argv, line in [
                (["--part", "bogus"], f"error: unknown stress part 'bogus' {known}"),
                (["--part", ","], f"error: --part names no part {known}"),
                (["--kernel", "stock"], "error: lab stress runs on the lab or kasan kernel, not 'stock'"),
                (["--driver", "dkms"], "error: lab stress compares c and rust, not 'dkms'"),
                (["--driver", "c,c"], "error: --driver names a driver twice: c,c"),
                (["--part", "faults", "--deferred-k", "one"], "error: --deferred-k takes numbers, not 'one'"),
                (["--part", "faults", "--deferred-k", "0,3"],
                 "error: --deferred-k takes k from 1 to --max-k (400), not '0,3'")]:
            with self.subTest(argv=argv):
                self.assertEqual(self.run_lab(*argv), (2, [line]))

    def test_bad_counts(self):
        rc, err = self.run_lab("--cycles", "0")
        self.assertEqual(rc, 2)
        self.assertEqual(len(err), 1)


class GuestScripts(unittest.TestCase):
    # The guest sources these into its stages; a syntax error there only shows as a boot
    # without results, after minutes of QEMU.
    def test_guest_shell_scripts_parse(self):
        import subprocess
        for name in ("lib.sh", "stress.sh", "init"):
            done = subprocess.run(["dash", "-n", str(ROOT / "scripts" / "guest" / name)],
                                  capture_output=True, text=True)
            self.assertEqual(done.returncode, 0, f"{name}: {done.stderr.strip()}")


class FaultSites(unittest.TestCase):
    def test_steps_are_grouped_by_site_and_driver(self):
        def r(driver, entry, k, injected, site, error, owners):
            return {"driver": driver, "entry": entry, "k": k, "injected": injected, "site": site,
                    "error": error, "owners": owners}
        rows = [r("rust", "load", 1, True, "a <- kmalloc", "e1", "hmem,cxl,hmem"),
                r("rust", "hmem.3-bind", 4, True, "a <- kmalloc", "e1", "hmem,cxl,none"),
                r("rust", "load", 2, True, "a <- kmalloc", "e2", "hmem,cxl,hmem"),
                r("c", "load", 9, "hang", "b <- kstrdup", "hung: x", "(wedged)"),
                r("c", "load", 10, False, "", "", "hmem,cxl,hmem"),
                r("c", "reload after load", 0, False, "", "ok", "hmem,cxl,hmem")]
        sites = stress.fault_sites(rows)
        self.assertEqual([(s["site"], s["driver"], s["steps"], s["hangs"]) for s in sites],
                         [("a <- kmalloc", "rust", 3, 0), ("b <- kstrdup", "c", 1, 1)])
        self.assertEqual(sites[0]["entries"], "hmem.3-bind load")
        self.assertEqual(sites[0]["errors"], "2x e1; 1x e2")
        self.assertEqual(sites[0]["owners"], "hmem,cxl,hmem / hmem,cxl,none")
        self.assertIn("| a <- kmalloc | rust | 3 |", stress.table("fault sites", sites))
