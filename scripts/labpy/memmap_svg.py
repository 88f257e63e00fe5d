"""A memory map of one scenario stage as inline SVG: the Soft Reserved ranges and the CXL
windows around them, and, one lane per driver, who owns each byte and whether it ended up
usable.

A lane has two bars. The upper one is the owner: the dax region over the byte (an hmem dax
region under hmem.N, a CXL region's dax region under regionN/dax_regionN, as
analysis.dax_regions tells them apart), or none. The lower one is what became of the memory:
added by kmem ("System RAM (kmem)" in /proc/iomem), in a dax device bound to a driver, or, on
a Soft Reserved byte, lost (neither; analysis.usable_spans and bytes_lost define it). Spans
where a lane differs from the first lane are outlined and marked with a not-equal sign.

The x axis covers the Soft Reserved ranges and the CXL windows that intersect them, not the
address space: each Soft Reserved range gets a width in proportion to its size, and what lies
between or around them (the rest of a window, a hole) is squeezed into a short block marked
with a break. Pure string building, deterministic, every name escaped.
"""

import html
from dataclasses import dataclass

from . import analysis

OWNERS = {  # kind: (legend, colour)
    "hmem": ("hmem dax region", "#4e79a7"),
    "cxl": ("CXL region dax", "#59a14f"),
    "other": ("other dax region", "#b07aa1"),
    "conflict": ("overlapping dax regions", "#222222"),
    "none": ("no dax region", "#cfcfcf"),
}
USES = {  # use: (legend, colour)
    "kmem": ("kmem: System RAM", "#f28e2b"),
    "bound": ("dax device bound", "#8c8c8c"),
    "lost": ("lost", "#d62728"),
}
DIFF = "#c2007a"
WINDOW = "#333333"
SOFT_RESERVED = "#6a51a3"

PAD = 8
PLOT = 760  # width of the address axis
GAP = 56  # the most a squeezed block between Soft Reserved ranges takes
MIN_BLOCK = 36  # the least a Soft Reserved range takes
BAR, STRIP, PITCH = 20, 8, 40
CHAR = 7.3  # width of a 12px monospace character
SMALL_CHAR = 6.1  # of a 10px one


@dataclass
class Lane:
    """One driver's lane. srs: inclusive (start, end) Soft Reserved ranges; iomem and tsv: the
    stage's proc-iomem.txt and dax-devices.tsv; note: why there is nothing to draw, or None."""
    name: str
    srs: list
    iomem: str = ""
    tsv: str = ""
    note: str = None


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    owner: str  # a key of OWNERS
    region: tuple  # (name, start, end) of the owning dax region, or None
    use: str  # a key of USES, or None
    soft_reserved: bool


def size_text(n):
    for shift, unit in ((40, "T"), (30, "G"), (20, "M"), (10, "K")):
        if n >= 1 << shift:
            v = n / (1 << shift)
            return f"{v:.0f}{unit}" if n % (1 << shift) == 0 or v >= 100 else f"{v:.1f}{unit}"
    return str(n)


def _e(s):
    return html.escape(str(s), quote=True)


def _f(x):
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _region_name(path):
    parts = path.rstrip("/").split("/")
    if parts[-1].startswith("dax_region") and len(parts) > 1:
        return parts[-2]
    return parts[-1] or path


def _edges(intervals, lo, hi):
    """Boundaries (the first address of each piece) that intervals put inside [lo, hi]."""
    out = set()
    for a, b in intervals:
        for e in (a, b + 1):
            if lo < e <= hi:
                out.add(e)
    return out


def _inside(intervals, a, b):
    return any(x <= a and y >= b for x, y in intervals)


class _Facts:
    """What a lane's files say, ready for per-piece questions."""

    def __init__(self, lane):
        self.srs = sorted(lane.srs)
        self.regions = [(kind, _region_name(path), a, b) for kind, path, a, b in analysis.dax_regions(lane.tsv)]
        self.kmem = analysis.kmem_spans(lane.iomem)
        self.bound = analysis.bound_dax_spans(lane.tsv)
        self.usable = analysis.usable_spans(lane.tsv, lane.iomem)

    def edges(self, lo, hi):
        return (_edges(self.srs, lo, hi) | _edges([(r[2], r[3]) for r in self.regions], lo, hi)
                | _edges(self.kmem, lo, hi) | _edges(self.bound, lo, hi))

    def piece(self, a, b):
        """The Span of [a, b], a piece no edge cuts."""
        over = [r for r in self.regions if r[2] <= a and r[3] >= b]
        if not over:
            owner, region = "none", None
        elif len(over) > 1:
            owner, region = "conflict", ("+".join(r[1] for r in over), a, b)
        else:
            kind, name, start, end = over[0]
            owner, region = kind if kind in OWNERS else "other", (name, start, end)
        sr = _inside(self.srs, a, b)
        if _inside(self.kmem, a, b):
            use = "kmem"
        elif _inside(self.bound, a, b):
            use = "bound"
        elif sr and not _inside(self.usable, a, b):
            use = "lost"
        else:
            use = None
        return Span(a, b, owner, region, use, sr)


def _pieces(cuts, lo, hi):
    points = [lo] + sorted(e for e in cuts if lo < e <= hi) + [hi + 1]
    return [(a, b - 1) for a, b in zip(points, points[1:]) if b > a]


def _merge(spans):
    out = []
    for s in spans:
        last = out[-1] if out else None
        if last and (last.owner, last.region, last.use, last.soft_reserved) == \
                (s.owner, s.region, s.use, s.soft_reserved) and last.end + 1 == s.start:
            out[-1] = Span(last.start, s.end, s.owner, s.region, s.use, s.soft_reserved)
        else:
            out.append(s)
    return out


def lane_spans(lane, lo=None, hi=None):
    """The lane's Spans over [lo, hi] (default: its Soft Reserved ranges' extent), merged
    where nothing changes."""
    facts = _Facts(lane)
    if lo is None:
        if not facts.srs:
            return []
        lo, hi = facts.srs[0][0], max(b for _, b in facts.srs)
    return _merge([facts.piece(a, b) for a, b in _pieces(facts.edges(lo, hi), lo, hi)])


def _key(span):
    """What must match, byte for byte, between a lane and the reference lane."""
    region = span.region[1:] if span.region else None
    return span.owner, region, span.use


def differences(ref, other, lo, hi):
    """Inclusive (start, end) spans of [lo, hi] where other's bytes differ from ref's: another
    owner, another dax region (its extent), or another use."""
    a, b = _Facts(ref), _Facts(other)
    out = []
    for x, y in _pieces(a.edges(lo, hi) | b.edges(lo, hi), lo, hi):
        if _key(a.piece(x, y)) != _key(b.piece(x, y)):
            if out and out[-1][1] + 1 == x:
                out[-1] = (out[-1][0], y)
            else:
                out.append((x, y))
    return out


def _domain(lanes):
    """(lo, hi, Soft Reserved ranges merged, {window label: (start, end)}) over all lanes."""
    srs = analysis._merged([r for lane in lanes if lane.note is None for r in lane.srs])
    if not srs:
        return None
    windows = {}
    for lane in lanes:
        if lane.note is None:
            for i, (a, b) in analysis.cxl_windows(lane.iomem).items():
                if any(a <= y and b >= x for x, y in srs):
                    windows[(a, b, i)] = f"CXL Window {i}"
    lo = min([srs[0][0]] + [a for a, _, _ in windows])
    hi = max([srs[-1][1]] + [b for _, b, _ in windows])
    return lo, hi, srs, {label: (a, b) for (a, b, _), label in sorted(windows.items())}


class _Axis:
    """Addresses to x: Soft Reserved ranges in proportion to their sizes, the rest squeezed."""

    def __init__(self, lo, hi, srs, x0):
        self.blocks = []  # (start, end, soft reserved, x, width)
        pieces, at = [], lo
        for a, b in srs:
            if a > at:
                pieces.append((at, a - 1, False))
            pieces.append((a, b, True))
            at = b + 1
        if at <= hi:
            pieces.append((at, hi, False))
        sr_total = sum(b - a + 1 for a, b, sr in pieces if sr)
        # A squeezed block takes no more than GAP, and no more than it would at the SR scale.
        gap_width = {i: min(GAP, max(8.0, PLOT * (b - a + 1) / sr_total))
                     for i, (a, b, sr) in enumerate(pieces) if not sr}
        room = PLOT - sum(gap_width.values())
        sizes = {i: b - a + 1 for i, (a, b, sr) in enumerate(pieces) if sr}
        fixed = set()
        while True:
            free = {i: n for i, n in sizes.items() if i not in fixed}
            share = room - MIN_BLOCK * len(fixed)
            total = sum(free.values())
            small = {i for i, n in free.items() if share * n / total < MIN_BLOCK}
            if not small or len(fixed | small) == len(sizes):
                break
            fixed |= small
        widths = {i: MIN_BLOCK if i in fixed else share * n / total for i, n in free.items()}
        widths.update({i: MIN_BLOCK for i in fixed})
        widths.update(gap_width)
        x = x0
        for i, (a, b, sr) in enumerate(pieces):
            self.blocks.append((a, b, sr, x, widths[i]))
            x += widths[i]
        self.squeezed = [(a, b, x, w) for a, b, sr, x, w in self.blocks
                         if not sr and w < PLOT * (b - a + 1) / sr_total]

    def x(self, addr):
        """The x of the boundary before addr (addr may be one past the end)."""
        for a, b, _, x, w in self.blocks:
            if a <= addr <= b:
                return x + w * (addr - a) / (b - a + 1)
        a, b, _, x, w = self.blocks[-1]
        return x + w


def _text(x, y, s, size=12, anchor="start", fill="#000", mono=True, extra=""):
    family = "DejaVu Sans Mono,monospace" if mono else "DejaVu Sans,sans-serif"
    return (f"<text x='{_f(x)}' y='{_f(y)}' font-family='{family}' font-size='{size}' "
            f"text-anchor='{anchor}' fill='{fill}'{extra}>{_e(s)}</text>")


def _rect(x, y, w, h, fill, extra="", title=None):
    inner = f"<title>{_e(title)}</title>" if title else ""
    return (f"<rect x='{_f(x)}' y='{_f(y)}' width='{_f(max(w, 0.5))}' height='{_f(h)}' fill='{fill}'{extra}>"
            f"{inner}</rect>" if inner else
            f"<rect x='{_f(x)}' y='{_f(y)}' width='{_f(max(w, 0.5))}' height='{_f(h)}' fill='{fill}'{extra}/>")


def _span_title(s):
    where = f"{s.start:#x}-{s.end:#x} ({size_text(s.end - s.start + 1)})"
    who = f"{OWNERS[s.owner][0]} {s.region[0]}" if s.region else OWNERS[s.owner][0]
    use = f", {USES[s.use][0]}" if s.use else ""
    return f"{where}: {who}{use}" + ("" if s.soft_reserved else " (outside Soft Reserved)")


def _place_labels(labels, lo_x, hi_x):
    """Rows for (x, text) labels so that none overlaps another: [(x, text, row)]."""
    ends, out = [], []
    for x, text in sorted(labels):
        w = len(text) * SMALL_CHAR
        cx = min(max(x, lo_x + w / 2), hi_x - w / 2)
        for row, end in enumerate(ends):
            if cx - w / 2 > end + 4:
                break
        else:
            row = len(ends)
            ends.append(float("-inf"))
        ends[row] = cx + w / 2
        out.append((x, cx, text, row))
    return out


def render(lanes, title=""):
    """The SVG map of one stage: lanes in order, the first the reference."""
    label_w = max([10] + [len(lane.name) for lane in lanes]) * CHAR + 12
    x0 = PAD + label_w
    right_w = 124
    width = x0 + PLOT + right_w + PAD
    domain = _domain(lanes)
    top = PAD + 14  # window labels above
    band_y = top + 4
    lanes_y = band_y + 26
    lanes_end = lanes_y + PITCH * len(lanes)
    out = []

    if domain is None:
        height = lanes_end + 40
        body = [_text(PAD, PAD + 12, "no Soft Reserved range in any run", fill="#555", mono=False)]
        for i, lane in enumerate(lanes):
            y = lanes_y + i * PITCH
            body.append(f"<g class='lane' data-driver='{_e(lane.name)}'>"
                        + _text(x0 - 8, y + 15, lane.name, anchor="end")
                        + _text(x0, y + 15, lane.note or "no Soft Reserved range", fill="#555", mono=False,
                                extra=" font-style='italic'") + "</g>")
        return _svg(width, height, title, body)

    lo, hi, srs, windows = domain
    axis = _Axis(lo, hi, srs, x0)
    ref = lanes[0] if lanes and lanes[0].note is None else None

    # CXL windows: outlined boxes over every lane.
    for label, (a, b) in windows.items():
        xa, xb = axis.x(a), axis.x(b + 1)
        short = label if (xb - xa) > len(label) * SMALL_CHAR + 8 else label.replace("CXL Window ", "W")
        out.append(f"<g class='window'>" + _rect(xa + 1, PAD, xb - xa - 2, lanes_end - PAD + 4, "none",
                                                  f" stroke='{WINDOW}' stroke-width='1.2' stroke-dasharray='6 3'",
                                                  f"{label}: {a:#x}-{b:#x} ({size_text(b - a + 1)})")
                   + _text(xa + 5, PAD + 11, short, size=10, fill=WINDOW, mono=False) + "</g>")

    # Soft Reserved bands and the squeezed blocks between them.
    for a, b, sr, x, w in axis.blocks:
        if sr:
            text = f"Soft Reserved {size_text(b - a + 1)}"
            text = text if w > len(text) * SMALL_CHAR + 8 else size_text(b - a + 1)
            out.append("<g class='soft-reserved'>"
                       + _rect(x, band_y, w, 16, SOFT_RESERVED, title=f"Soft Reserved {a:#x}-{b:#x}")
                       + _text(x + w / 2, band_y + 12, text, size=10, anchor="middle", fill="#fff", mono=False)
                       + "</g>")
    for a, b, x, w in axis.squeezed:
        out.append("<g class='break'>" + _text(x + w / 2, band_y + 12, f"≈{size_text(b - a + 1)}", size=10,
                                               anchor="middle", fill="#555", mono=False)
                   + f"<title>{_e(f'{a:#x}-{b:#x}, not to scale')}</title></g>")

    # Lanes.
    for i, lane in enumerate(lanes):
        y = lanes_y + i * PITCH
        parts = [_text(x0 - 8, y + 15, lane.name, anchor="end"),
                 _rect(x0, y, PLOT, BAR + 1 + STRIP, "#f3f3f3")]
        if lane.note is not None:
            parts.append(_text(x0 + 6, y + 15, lane.note, fill="#555", mono=False, extra=" font-style='italic'"))
            out.append(f"<g class='lane' data-driver='{_e(lane.name)}'>" + "".join(parts) + "</g>")
            continue
        lost = 0
        for s in lane_spans(lane, lo, hi):
            xa, xb = axis.x(s.start), axis.x(s.end + 1)
            tip = _span_title(s)
            if s.owner != "none" or s.soft_reserved:
                parts.append(_rect(xa, y, xb - xa, BAR, OWNERS[s.owner][1],
                                   f" class='owner' data-owner='{s.owner}' data-start='{s.start:#x}' "
                                   f"data-end='{s.end:#x}'", tip))
                label = f"{s.region[0]} {size_text(s.end - s.start + 1)}" if s.region else \
                    size_text(s.end - s.start + 1)
                for text in (label, size_text(s.end - s.start + 1)):
                    if len(text) * SMALL_CHAR + 6 < xb - xa:
                        parts.append(_text((xa + xb) / 2, y + 14, text, size=10, anchor="middle",
                                           fill="#000" if s.owner == "none" else "#fff"))
                        break
            if s.use:
                parts.append(_rect(xa, y + BAR + 1, xb - xa, STRIP, USES[s.use][1],
                                   f" class='use' data-use='{s.use}' data-start='{s.start:#x}' "
                                   f"data-end='{s.end:#x}'", tip))
            if s.use == "lost":
                lost += s.end - s.start + 1
        # Separators between adjacent pieces, so that two hmem regions side by side show as two.
        cuts = sorted({sp.start for sp in lane_spans(lane, lo, hi)} - {lo})
        for c in cuts:
            parts.append(f"<line x1='{_f(axis.x(c))}' y1='{_f(y)}' x2='{_f(axis.x(c))}' "
                         f"y2='{_f(y + BAR)}' stroke='#fff' stroke-width='1.5'/>")
        diffs = differences(ref, lane, lo, hi) if ref is not None and i > 0 else []
        for a, b in diffs:
            xa, xb = axis.x(a), axis.x(b + 1)
            parts.append(f"<g class='diff' data-start='{a:#x}' data-end='{b:#x}'>"
                         + _rect(xa - 1, y - 2, xb - xa + 2, BAR + STRIP + 5, "none",
                                 f" stroke='{DIFF}' stroke-width='2.5'",
                                 f"differs from {ref.name}: {a:#x}-{b:#x}")
                         + f"<circle cx='{_f((xa + xb) / 2)}' cy='{_f(y - 3)}' r='8' fill='{DIFF}'/>"
                         + _text((xa + xb) / 2, y + 1.5, "≠", size=13, anchor="middle", fill="#fff", mono=False,
                                 extra=" font-weight='bold'") + "</g>")
        rx = x0 + PLOT + 10
        parts.append(_text(rx, y + 12, f"lost {size_text(lost)}", size=11,
                           fill=USES["lost"][1] if lost else "#176317", extra=" class='lost'"))
        if diffs:
            parts.append(_text(rx, y + 26, f"≠ {ref.name}", size=11, fill=DIFF))
        out.append(f"<g class='lane' data-driver='{_e(lane.name)}' data-lost='{lost}'>" + "".join(parts) + "</g>")

    # Addresses: every edge of a window, a Soft Reserved range or a piece, in hex.
    edges = {lo, hi + 1}
    for a, b in list(windows.values()) + srs:
        edges |= {a, b + 1}
    for lane in lanes:
        if lane.note is None:
            edges |= {s.start for s in lane_spans(lane, lo, hi)}
    axis_y = lanes_end + 2
    marks = [f"<line x1='{_f(x0)}' y1='{_f(axis_y)}' x2='{_f(x0 + PLOT)}' y2='{_f(axis_y)}' stroke='#444'/>"]
    for a, b, x, w in axis.squeezed:  # the break: two slashes
        for dx in (w / 2 - 3, w / 2 + 3):
            marks.append(f"<line x1='{_f(x + dx - 3)}' y1='{_f(axis_y + 5)}' x2='{_f(x + dx + 3)}' "
                         f"y2='{_f(axis_y - 5)}' stroke='#444' stroke-width='1.5'/>")
    labels = [(axis.x(e), f"{(e if e <= hi else hi):#x}") for e in sorted(edges)]
    placed = _place_labels(labels, PAD, width - PAD)
    for x, cx, text, row in placed:
        ly = axis_y + 14 + 12 * row
        marks.append(f"<line x1='{_f(x)}' y1='{_f(axis_y - 3)}' x2='{_f(x)}' y2='{_f(axis_y + 3 + 12 * row)}' "
                     f"stroke='#888' stroke-width='0.8'/>")
        marks.append(_text(cx, ly, text, size=10, anchor="middle", fill="#333"))
    out.append("<g class='axis'>" + "".join(marks) + "</g>")
    rows = 1 + max(row for _, _, _, row in placed)

    legend_y = axis_y + 14 + 12 * rows + 10
    out.append(_legend(PAD, legend_y, ref.name if ref else None))
    return _svg(width, legend_y + 22, title, out)


def _legend(x, y, ref):
    items = [(c, t, "") for t, c in OWNERS.values() if t not in ("other dax region", "overlapping dax regions")]
    items += [(c, t, "") for t, c in USES.values()]
    if ref:
        items.append(("none", f"differs from {ref}", f" stroke='{DIFF}' stroke-width='2.5'"))
    parts = []
    for colour, text, stroke in items:
        parts.append(_rect(x, y - 10, 14, 12, colour, stroke) + _text(x + 19, y, text, size=11, mono=False))
        x += 19 + len(text) * 6.3 + 16
    return "<g class='legend'>" + "".join(parts) + "</g>"


def _svg(width, height, title, body):
    return (f"<svg xmlns='http://www.w3.org/2000/svg' class='memmap' width='{_f(width)}' height='{_f(height)}' "
            f"viewBox='0 0 {_f(width)} {_f(height)}' role='img'><title>{_e(title)}</title>"
            + "".join(body) + "</svg>")
