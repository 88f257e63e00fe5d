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

    def test_a_hang_a_leak_and_a_fault_fail_the_boot(self):
        boot = stress.Boot("loops", type("D", (), {"name": "c", "implementation": "c"})(), "x", "t", [], False, 9)
        o = stress.Outcome(boot, [], {}, ["[ 1.0] WARNING: at foo"], ["unreferenced object 0x1"], True, 9.0,
                           Path("/tmp"), [])
        problems = stress.boot_problems(o)
        self.assertEqual(len(problems), 4)


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
