"""make bench's readings of kernel logs and guest marks (no QEMU)."""

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labpy import bench, runner, scenario  # noqa: E402
from labpy.errors import LabError  # noqa: E402

DMESG = """\
[   10.000000] calling  dax_hmem_init+0x0/0x60 [dax_hmem] @ 64
[   10.100000] hmem_platform hmem_platform.0: await CXL initial probe: [mem 0x110000000-0x11fffffff flags 0x200]
[   10.100500] probe of hmem_platform.0 with driver hmem_platform returned 0 after 1500 usecs
[   11.000000] probe of mem0 with driver cxl_mem returned 0 after 5000 usecs
[   11.200000] probe of endpoint2 with driver cxl_port returned 0 after 5000 usecs
[   11.500000] probe of region0 with driver cxl_region returned 0 after 9000 usecs
[   11.600000] probe of test_async_driver.1 with driver test_async_driver returned 0 after 5000000 usecs
[   11.750000] hmem_platform hmem_platform.0: CXL claims resource, dropping: [mem 0x110000000-0x11fffffff flags 0x200]
[   12.000000] probe of region1 with driver cxl_region returned 0 after 9000 usecs
[   12.250000] probe of dax_region0 with driver cxl_dax_region returned 0 after 900 usecs
"""


class Latencies(unittest.TestCase):
    def test_each_latency_from_its_lines(self):
        got = bench.latencies(DMESG)
        # From region0's probe (the last CXL probe before the decision), not the unrelated
        # probe after it, nor region1's, which came too late to matter.
        self.assertAlmostEqual(got["decision"], 250.0)
        self.assertAlmostEqual(got["registration"], 2250.0)
        self.assertAlmostEqual(got["probe walk"], 1.5)
        self.assertEqual(got["cxl probes after"], 1)  # region1
        self.assertNotIn("deferred walk", got)  # one decision: no span

    def test_deferred_walk_spans_first_to_last_decision(self):
        extra = "[   11.950000] hmem_platform hmem_platform.0: CXL did not claim resource, registering: [mem 0x1-0x2]\n"
        self.assertAlmostEqual(bench.latencies(DMESG + extra)["deferred walk"], 200.0)

    def test_missing_lines_leave_the_metric_out(self):
        self.assertEqual(bench.latencies(""), {})
        self.assertEqual(set(bench.latencies(DMESG.replace("cxl_dax_region", "other"))),
                         {"decision", "cxl probes after", "probe walk"})


class Phases(unittest.TestCase):
    CONSOLE = """\
lab: [6.00] stage 1: coldplug
lab: [14.00] stage 1: running
lab: [14.10] stage 1: steps done
lab: [16.00] stage 1: settled
lab: [18.50] collected; kmemleak scan
lab: [22.00] stage 1 results written
"""

    def test_phases_add_up_to_the_run(self):
        got = bench.phases(self.CONSOLE, 25.0)
        self.assertEqual({k: round(v, 2) for k, v in got.items()},
                         {"boot": 6.0, "module work": 10.0, "collection": 2.5, "kmemleak": 3.5, "host": 3.0})
        self.assertAlmostEqual(sum(got.values()), 25.0)

    def test_an_unfinished_run_has_no_phases(self):
        self.assertEqual(bench.phases(self.CONSOLE.replace("results written", "x"), 25.0), {})


class Arguments(unittest.TestCase):
    def test_bad_parts_and_boots_are_one_error(self):
        with self.assertRaisesRegex(LabError, "unknown bench part 'nope'"):
            bench.validate(["nope"], 1)
        with self.assertRaisesRegex(LabError, "--boots must be at least 1"):
            bench.validate(["cost"], 0)


class Memmap(unittest.TestCase):
    def test_sizes_in_the_largest_unit(self):
        self.assertEqual(runner._memsize(256 << 20), "256M")
        self.assertEqual(runner._memsize(0x110000000), "4352M")
        self.assertEqual(runner._memsize(4 << 30), "4G")
        self.assertEqual(runner._memsize(0x1800), "6K")
        self.assertEqual(runner._memsize(0x1801), "0x1801")

    def test_scale_reaches_256_ranges_through_cxl_test(self):
        # memmap= would not fit the command line; cxl_test's patched mock cuts its range.
        s = bench.scale_scenario(256)
        self.assertEqual(s.soft_reserved, [scenario.SoftReserved(kind="cxl_test", pieces=256)])
        self.assertEqual(len(s.expect), 256)
        self.assertEqual(runner.Lab.soft_reserved_args(runner.Lab.__new__(runner.Lab), s),
                         ["cxl_test.hmem_test_ranges=256"])
        self.assertEqual(max(bench.SCALE_COUNTS), scenario.CXL_TEST_MAX_PIECES)

if __name__ == "__main__":
    unittest.main()
