"""The memory maps of iomem.html: the SVG builder on its own, and the page as headless
Chromium renders it (Debian's chromium package; scripts/setup-host.sh installs it).

build_page() makes the page from synthetic runs (files in run directories as the runner
writes them, no QEMU); `python3 -m tests.test_report_page OUT.png` screenshots it."""

import html.parser
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labpy import analysis, compare, memmap_svg, report  # noqa: E402
from labpy.scenario import Expectation, Scenario, Topology  # noqa: E402

M = 1 << 20
WINDOWS = "110000000-20fffffff : CXL Window 0\n210000000-30fffffff : CXL Window 1\n"
HMEM = "/platform/hmem_platform.0/hmem.{n}/dax{n}.0"
CXL = "/platform/ACPI0017:00/root0/decoder0.1/region{n}/dax_region{n}/dax{n}.0"


def dax(path, start, size, driver="-", n=1):
    """One dax-devices.tsv line (scripts/guest/lib.sh lab_collect_dax)."""
    return f"dax{n}.0\t{path.format(n=n)}\t{start:#x}\t{size}\t{size}\t{driver}\n"


def kmem(start, size):
    return f"  {start:x}-{start + size - 1:x} : System RAM (kmem)\n"


class Guest:
    """A stage's proc-iomem.txt and dax-devices.tsv."""

    def __init__(self, tsv="", kmem_lines="", windows=WINDOWS):
        self.iomem = windows + kmem_lines
        self.tsv = tsv


# v-sr-region-and-free-space: 512M of Soft Reserved, its first 128M in window 0; a committed
# 256M region at the start of window 1, free window space after it.
V_SR = (0x208000000, 0x227ffffff)
V_WHOLE = Guest(dax(HMEM, V_SR[0], 512 * M))
V_SPLIT = Guest(dax(HMEM, 0x208000000, 128 * M, "kmem", 1) + dax(CXL, 0x210000000, 256 * M, "kmem", 0)
                + dax(HMEM, 0x220000000, 128 * M, "kmem", 2),
                kmem(0x208000000, 128 * M) + kmem(0x210000000, 256 * M) + kmem(0x220000000, 128 * M))
# n-sr-spans-windows: 512M across the edge of two windows, no region.
N_SR = (0x200000000, 0x21fffffff)
N_WHOLE = Guest(dax(HMEM, N_SR[0], 512 * M, n=2))
N_SPLIT = Guest(dax(HMEM, 0x200000000, 256 * M, "kmem", 1) + dax(HMEM, 0x210000000, 256 * M, "kmem", 2),
                kmem(0x200000000, 256 * M) + kmem(0x210000000, 256 * M))

DRIVERS = ["c", "rust", "rust:split=1"]
SCENARIOS = {  # name: (description, Soft Reserved range, {driver: Guest})
    "v-sr-region-and-free-space": ("Soft Reserved over a committed region and free window space", V_SR,
                                   {"c": V_WHOLE, "rust": V_WHOLE, "rust:split=1": V_SPLIT}),
    "n-sr-spans-windows": ("Soft Reserved across the edge of two CXL windows", N_SR,
                           {"c": N_WHOLE, "rust:split=1": N_SPLIT}),
}


def lane(name, sr, guest):
    return memmap_svg.Lane(name, [sr], guest.iomem, guest.tsv)


def _run(run_dir, sr, guest):
    """A run summary as runner.Lab.run returns it, its files in run_dir."""
    run_dir.mkdir(parents=True)
    (run_dir / "proc-iomem.txt").write_text(guest.iomem)
    (run_dir / "dax-devices.tsv").write_text(guest.tsv)
    regions = analysis.dax_regions(guest.tsv)
    r = {"start": sr[0], "end": sr[1], "owner": analysis.owner(sr, regions), "decisions": [],
         "kmem": analysis.kmem_over(sr, guest.iomem),
         "lost": analysis.bytes_lost(sr, analysis.usable_spans(guest.tsv, guest.iomem))}
    printable = [dict(r, start=f"{sr[0]:#x}", end=f"{sr[1]:#x}")]
    return {"status": "pass", "failures": [], "seconds": 12.0, "run_dir": str(run_dir), "ranges": printable,
            "bytes_lost": r["lost"], "stages": {"1": printable},
            "aspects": {"1": compare.aspects({"proc-iomem.txt": guest.iomem}, [r])}}


def build_page(out_dir):
    """iomem.html from SCENARIOS, written by report.write into out_dir."""
    out_dir = Path(out_dir)
    topo = Topology("t", "", "2G", "max", (), (), True)
    scenarios, runs = [], {}
    for name, (description, sr, guests) in SCENARIOS.items():
        scenarios.append(Scenario(name, description, topo, "in-tree", "", 60, [], [""], True,
                                  [Expectation("hmem", ())]))
        for driver, guest in guests.items():
            runs[(name, driver)] = _run(out_dir / name / driver.replace(":", "_"), sr, guest)
    rows = report.matrix(scenarios, runs, DRIVERS)
    report.write(out_dir, rows, DRIVERS)
    return out_dir / "iomem.html"


class Spans(unittest.TestCase):
    def test_a_split_range_is_hmem_cxl_hmem_and_all_kmem(self):
        spans = memmap_svg.lane_spans(lane("rust:split=1", V_SR, V_SPLIT))
        self.assertEqual([(s.start, s.end, s.owner, s.region[0], s.use) for s in spans], [
            (0x208000000, 0x20fffffff, "hmem", "hmem.1", "kmem"),
            (0x210000000, 0x21fffffff, "cxl", "region0", "kmem"),
            (0x220000000, 0x227ffffff, "hmem", "hmem.2", "kmem")])

    def test_an_unbound_device_loses_the_range(self):
        spans = memmap_svg.lane_spans(lane("c", V_SR, V_WHOLE))
        self.assertEqual([(s.start, s.end, s.owner, s.use) for s in spans], [(*V_SR, "hmem", "lost")])

    def test_a_range_nothing_owns_is_lost_and_what_lies_outside_is_not(self):
        spans = memmap_svg.lane_spans(lane("c", V_SR, Guest()), 0x200000000, 0x22fffffff)
        self.assertEqual([(s.start, s.owner, s.use, s.soft_reserved) for s in spans], [
            (0x200000000, "none", None, False), (V_SR[0], "none", "lost", True),
            (V_SR[1] + 1, "none", None, False)])

    def test_lost_bytes_are_what_analysis_counts(self):
        half = Guest(dax(HMEM, V_SR[0], 256 * M, "device_dax"))
        for guest in (V_WHOLE, V_SPLIT, half, Guest()):
            lost = sum(s.end - s.start + 1 for s in memmap_svg.lane_spans(lane("x", V_SR, guest)) if s.use == "lost")
            self.assertEqual(lost, analysis.bytes_lost(V_SR, analysis.usable_spans(guest.tsv, guest.iomem)))

    def test_a_bound_device_without_kmem_is_bound(self):
        spans = memmap_svg.lane_spans(lane("c", V_SR, Guest(dax(HMEM, V_SR[0], 512 * M, "device_dax"))))
        self.assertEqual([s.use for s in spans], ["bound"])

    def test_differences_from_the_reference(self):
        ref, same, split = (lane(n, V_SR, g) for n, g in (("c", V_WHOLE), ("rust", V_WHOLE), ("s", V_SPLIT)))
        self.assertEqual(memmap_svg.differences(ref, same, *V_SR), [])
        self.assertEqual(memmap_svg.differences(ref, split, *V_SR), [V_SR])
        # The same owner and use over another dax region's extent still differs.
        bound = Guest(dax(HMEM, V_SR[0], 512 * M, "kmem"), kmem(V_SR[0], 512 * M))
        two = Guest(dax(HMEM, V_SR[0], 256 * M, "kmem", 1) + dax(HMEM, V_SR[0] + 256 * M, 256 * M, "kmem", 2),
                    kmem(V_SR[0], 512 * M))
        self.assertEqual(memmap_svg.differences(lane("a", V_SR, bound), lane("b", V_SR, two), *V_SR), [V_SR])


class Svg(unittest.TestCase):
    def svg(self):
        return memmap_svg.render([lane("c", V_SR, V_WHOLE), lane("rust", V_SR, V_WHOLE),
                                  lane("rust:split=1", V_SR, V_SPLIT)], "v")

    def test_split_lane_colours_and_lost_lane(self):
        svg = self.svg()
        hmem, cxl = memmap_svg.OWNERS["hmem"][1], memmap_svg.OWNERS["cxl"][1]
        for start, end, colour in ((0x208000000, 0x20fffffff, hmem), (0x210000000, 0x21fffffff, cxl),
                                   (0x220000000, 0x227ffffff, hmem)):
            self.assertRegex(svg, rf"fill='{colour}' class='owner' data-owner='\w+' data-start='{start:#x}' "
                                  rf"data-end='{end:#x}'")
        self.assertEqual(svg.count("data-use='kmem'"), 3)
        self.assertEqual(svg.count(f"fill='{memmap_svg.USES['lost'][1]}' class='use' data-use='lost'"), 2)
        self.assertIn("data-driver='c' data-lost='536870912'", svg)
        self.assertIn("data-driver='rust:split=1' data-lost='0'", svg)

    def test_windows_soft_reserved_and_hex_edges(self):
        svg = self.svg()
        for text in ("CXL Window 0", "CXL Window 1", "Soft Reserved 512M", "0x110000000", "0x208000000",
                     "0x210000000", "0x220000000", "0x228000000", "0x30fffffff", "hmem.1 128M", "region0 256M"):
            self.assertIn(f">{text}<", svg)

    def test_only_the_differing_lane_is_marked(self):
        svg = self.svg()
        self.assertEqual(svg.count("<g class='diff'"), 1)
        split = svg[svg.index("data-driver='rust:split=1'"):]
        self.assertIn(f"<g class='diff' data-start='{V_SR[0]:#x}' data-end='{V_SR[1]:#x}'>", split)
        self.assertIn(">≠ c<", split)

    def test_names_are_escaped(self):
        svg = memmap_svg.render([lane("c", V_SR, V_WHOLE), lane("<x>&'\"", V_SR, V_SPLIT)], "a<b>")
        self.assertIn("data-driver='&lt;x&gt;&amp;&#x27;&quot;'", svg)
        self.assertIn(">&lt;x&gt;&amp;&#x27;&quot;<", svg)
        self.assertIn("<title>a&lt;b&gt;</title>", svg)
        self.assertNotIn("<x>", svg)

    def test_the_same_input_gives_the_same_svg(self):
        self.assertEqual(self.svg(), self.svg())

    def test_a_lane_without_data_says_why(self):
        svg = memmap_svg.render([lane("c", V_SR, V_WHOLE), memmap_svg.Lane("rust", [], note="no result (error)")])
        self.assertIn(">no result (error)<", svg)
        self.assertEqual(svg.count("<g class='lane'"), 2)

    def test_far_apart_ranges_get_a_break(self):
        far = memmap_svg.Lane("c", [(0x100000000, 0x10fffffff), (0x4000000000, 0x400fffffff)], "", "")
        svg = memmap_svg.render([far])
        self.assertEqual(svg.count("<g class='soft-reserved'>"), 2)
        self.assertIn("<g class='break'>", svg)


class PageParser(html.parser.HTMLParser):
    """Per scenario section: its maps, and the drivers of each map's lanes."""

    def __init__(self):
        super().__init__()
        self.sections, self.section = {}, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section" and "scenario" in (a.get("class") or "").split():
            self.section = self.sections.setdefault(a.get("data-scenario"), [])
        elif tag == "svg" and self.section is not None and "memmap" in (a.get("class") or "").split():
            self.section.append([])
        elif tag == "g" and "lane" in (a.get("class") or "").split() and self.section:
            self.section[-1].append(a.get("data-driver"))


CHROMIUM = "/usr/bin/chromium"


def chromium(*args):
    if not Path(CHROMIUM).exists():
        raise AssertionError(f"{CHROMIUM} not found: install Debian's chromium package "
                             "(apt-get install chromium; scripts/setup-host.sh installs it)")
    profile = tempfile.mkdtemp(prefix="dax-hmem-chromium-")
    try:
        done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                               "--no-first-run", "--disable-background-networking", "--disable-component-update",
                               "--disable-sync", f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if done.returncode:
        raise AssertionError(f"chromium {' '.join(args)} exited with {done.returncode}:\n{done.stderr[-2000:]}")
    return done.stdout


def screenshot(page, png, width=1300, height=1100):
    chromium(f"--screenshot={png}", f"--window-size={width},{height}", "--hide-scrollbars", page.as_uri())


class RenderedPage(unittest.TestCase):
    """iomem.html as headless Chromium renders it."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="dax-hmem-report-"))
        cls.page = build_page(cls.tmp / "out")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_every_scenario_has_a_map_with_a_lane_per_driver(self):
        parser = PageParser()
        parser.feed(chromium("--dump-dom", self.page.as_uri()))
        self.assertEqual(set(parser.sections), set(SCENARIOS))
        for name, maps in parser.sections.items():
            self.assertEqual(maps, [DRIVERS], name)

    def test_the_screenshot_is_a_png(self):
        png = self.tmp / "page.png"
        screenshot(self.page, png)
        data = png.read_bytes()
        self.assertTrue(data.startswith(b"\x89PNG\r\n\x1a\n"), "not a PNG")
        self.assertGreater(len(data), 10000)


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1].endswith(".png"):
        with tempfile.TemporaryDirectory() as d:
            screenshot(build_page(Path(d)), Path(sys.argv[1]).resolve())
        print(sys.argv[1])
    else:
        unittest.main()
