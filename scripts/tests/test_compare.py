"""The comparison of C and Rust runs: what it normalises, what it must catch, and how the
matrix turns runs into a verdict."""

import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labpy import compare, report  # noqa: E402
from labpy.scenario import Expectation, Scenario, Topology  # noqa: E402

IOMEM = """00000000-00000fff : Reserved
00100000-7ffdffff : System RAM
  07200000-079b8b77 : Kernel code
  07a00000-07d32fff : Kernel rodata
  07e00000-07f8a3ff : Kernel data
  080ef000-0908dfff : Kernel bss
110000000-20fffffff : CXL Window 0
  110000000-11fffffff : dax1.0
    110000000-11fffffff : System RAM (kmem)
fe600000-fe7fffff : PCI Bus 0000:0c
  fe601128-fe6011b7 : endpoint3
"""
DAXCTL = '[{"path":"/platform/hmem_platform.0/hmem.1","id":1,"size":268435456}]'
HMEM_RANGE = {"start": 0x110000000, "end": 0x11fffffff, "owner": "hmem",
              "decisions": ["await CXL initial probe", "CXL did not claim resource, registering"]}


def stage(iomem=IOMEM, daxctl=DAXCTL, cxl="", ranges=(HMEM_RANGE,)):
    files = {"proc-iomem.txt": iomem, "daxctl-list.json": daxctl, "cxl-list-regions.json": cxl}
    return {"1": compare.aspects(files, list(ranges))}


class Normalisation(unittest.TestCase):
    def test_kaslr_moves_are_not_differences(self):
        moved = IOMEM.replace("07200000-079b8b77", "0c800000-0cfb8b77").replace("07a00000", "0d000000")
        self.assertEqual(compare.differences(stage(), stage(iomem=moved)), [])

    def test_kernel_image_lines_are_dropped_and_nothing_else(self):
        out = compare.normalise_iomem(IOMEM)
        self.assertNotIn("Kernel", out)
        self.assertIn("110000000-11fffffff : dax1.0", out)
        self.assertEqual(len(out.splitlines()), len(IOMEM.splitlines()) - 4)

    def test_endpoint_numbering_is_not_a_difference(self):
        self.assertEqual(compare.differences(stage(), stage(iomem=IOMEM.replace("endpoint3", "endpoint4"))), [])

    def test_every_normalisation_is_documented(self):
        self.assertEqual(set(compare.NORMALISED), {"kernel image", "endpoint ports", "adapter ROMs"})

    def test_an_extra_adapter_rom_is_not_a_difference(self):
        extra = IOMEM.replace("00100000-", "000e7800-000effff : Adapter ROM\n00100000-")
        self.assertEqual(compare.differences(stage(), stage(iomem=extra)), [])


class Differences(unittest.TestCase):
    def test_identical_runs_do_not_differ(self):
        self.assertEqual(compare.differences(stage(), stage()), [])

    def test_a_dax_name_must_match_exactly(self):
        diffs = compare.differences(stage(), stage(iomem=IOMEM.replace("dax1.0", "dax2.0")))
        self.assertEqual(len(diffs), 1)
        self.assertRegex(diffs[0], r"^iomem: c vs rust: line 4: .*dax1\.0.*dax2\.0")

    def test_a_missing_kmem_line_differs(self):
        diffs = compare.differences(stage(), stage(iomem=IOMEM.replace("    110000000-11fffffff : System RAM (kmem)\n", "")))
        self.assertEqual([d.split(":")[0] for d in diffs], ["iomem"])

    def test_owner_decisions_daxctl_and_cxl_are_each_compared(self):
        dropped = dict(HMEM_RANGE, owner="none", decisions=["await CXL initial probe", "CXL claims resource, dropping"])
        diffs = compare.differences(stage(), stage(ranges=[dropped], daxctl="[]", cxl='[{"region":"region0"}]'))
        self.assertEqual([d.split(":")[0] for d in diffs], ["owners", "decisions", "daxctl", "cxl"])

    def test_a_stage_only_one_driver_reported_differs(self):
        diffs = compare.differences({"2": stage()["1"], "3": stage()["1"]}, {"2": stage()["1"]})
        self.assertEqual(diffs, ["stage 3 reported by c only"])


def scenario(name="s"):
    topo = Topology("t", "", "2G", "max", (), (), True)
    return Scenario(name, "d", topo, "in-tree", "", 60, [], [""], True, [Expectation("hmem", ())])


def run(status="pass", aspects=None):
    return {"status": status, "seconds": 10.0, "failures": [] if status == "pass" else ["owner none, expected hmem"],
            "ranges": [dict(HMEM_RANGE, start="0x110000000", end="0x11fffffff")],
            "stages": {"1": [dict(HMEM_RANGE, start="0x110000000", end="0x11fffffff")]},
            "aspects": aspects if aspects is not None else stage()}


class Matrix(unittest.TestCase):
    def verdict(self, c, rust):
        return report.matrix([scenario()], {("s", "c"): c, ("s", "rust"): rust}, ["c", "rust"])[0]

    def test_both_meet_the_expectation_and_agree(self):
        row = self.verdict(run(), run())
        self.assertEqual((row["result"], row["match"]), ("pass", True))

    def test_rust_missing_its_expectation_fails_even_if_c_passes(self):
        row = self.verdict(run(), run("fail"))
        self.assertEqual(row["result"], "fail")

    def test_c_missing_its_expectation_fails_too(self):
        self.assertEqual(self.verdict(run("fail"), run())["result"], "fail")

    def test_agreeing_on_a_wrong_outcome_still_fails(self):
        row = self.verdict(run("fail"), run("fail"))
        self.assertEqual((row["result"], row["match"]), ("fail", True))

    def test_both_pass_but_differ_fails(self):
        other = stage(iomem=IOMEM.replace("dax1.0", "dax2.0"))
        row = self.verdict(run(), run(aspects=other))
        self.assertEqual((row["result"], row["match"]), ("fail", False))

    def test_a_run_that_did_not_finish_cannot_match(self):
        row = self.verdict(run(), {"status": "error", "seconds": 1.0, "failures": ["qemu failed"], "ranges": []})
        self.assertEqual((row["result"], row["match"]), ("fail", False))


class Rendering(unittest.TestCase):
    def test_table_markdown_and_html_show_the_verdict(self):
        lost = dict(run(aspects=stage(iomem=IOMEM.replace("dax1.0", "dax2.0"))), bytes_lost=256 << 20)
        rows = report.matrix([scenario()], {("s", "c"): dict(run(), bytes_lost=0), ("s", "rust"): lost},
                             ["c", "rust"])
        text = report.text(rows, ["c", "rust"])
        self.assertRegex(text.splitlines()[1],
                         r"^s\s+hmem\s+hmem \(pass\)\s+0\s+10\.0\s+hmem \(pass\)\s+256M\s+10\.0\s+NO\s+fail$")
        self.assertIn("| s | hmem | hmem (pass) | 0 | 10.0 | hmem (pass) | 256M | 10.0 | NO | fail |",
                      report.markdown(rows, ["c", "rust"]))
        page = report.html_page(rows, ["c", "rust"])
        self.assertIn("<tr class='differ'><td class='sr'>  110000000-11fffffff : dax1.0</td>"
                      "<td class='sr'>  110000000-11fffffff : dax2.0</td></tr>", page)
        self.assertIn("<tr class='same'>", page)


class ClosingLines(unittest.TestCase):
    """The lines the lab prints last for what failed, as CI shows only the end of its output."""

    def test_a_passing_matrix_has_none(self):
        rows = report.matrix([scenario()], {("s", "c"): run(), ("s", "rust"): run()}, ["c", "rust"])
        self.assertEqual(list(report.closing_lines(rows)), [])

    def test_a_failure_gives_its_first_problem(self):
        rows = report.matrix([scenario()], {("s", "c"): run(), ("s", "rust"): run("fail")}, ["c", "rust"])
        self.assertEqual(list(report.closing_lines(rows)),
                         ["failed: s: driver=rust: owner none, expected hmem"])

    def test_a_timeout_says_where_the_console_stopped(self):
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "console.log").write_text("[    1.0] booted\n[   13.5] kexec_core: Starting new kernel\x1b\n\n")
            hung = {"status": "timeout", "seconds": 600.0, "run_dir": tmp, "ranges": [],
                    "failures": ["guest timed out after 600 s (console log: x)"]}
            rows = report.matrix([scenario()], {("s", "c"): run(), ("s", "rust"): hung}, ["c", "rust"])
            self.assertEqual(list(report.closing_lines(rows)),
                             ["failed: s: driver=rust: guest timed out after 600 s (console log: x); "
                              "driver=rust's console ends: [   13.5] kexec_core: Starting new kernel?"])

    def test_a_timeout_prefers_the_guests_hang_report(self):
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "console.log").write_text("lab: [240.10] stage 1 still running after 240 s; "
                                                "blocked: modprobe (flush_work)\n[  250.0] later\n")
            hung = {"status": "timeout", "seconds": 300.0, "run_dir": tmp, "ranges": [], "failures": ["timed out"]}
            rows = report.matrix([scenario()], {("s", "c"): hung}, ["c"])
            self.assertEqual(list(report.closing_lines(rows)),
                             ["failed: s: driver=c: timed out; driver=c's console ends: lab: [240.10] stage 1 "
                              "still running after 240 s; blocked: modprobe (flush_work)"])


if __name__ == "__main__":
    unittest.main()
