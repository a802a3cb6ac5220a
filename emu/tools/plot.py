"""Pictures of how the direct map was built (matplotlib; PNG, SVG or PDF by the file's suffix).

One emulation (:func:`plot_run`; ``emu plot``, ``emu run --plot FILE``) is three panels:

1. **Physical memory** on a shared address axis that is linear below 1 MiB and
   logarithmic above (so the first megabyte, the 4 GiB hole and the top of a 64 TiB map
   are all visible): the e820 map as a band (one colour per type), the page size of
   each piece ``init_memory_mapping`` mapped (4K/2M/4M/1G), and every page-table page at
   its physical address, by level, coloured by where it came from (BRK, memblock, the
   kernel image, the <= 3.8 ``pgt_buf``).
2. **The windows** of ``memory_map_top_down`` (or ``bottom_up``) in the order the kernel
   mapped them: the window's span, the RAM inside it, and the step size it was cut with,
   on a log scale (top-down: PMD_SIZE first, then the steps growing).
3. **The page-table pages per init_memory_mapping call** (when), stacked by source, with
   the BRK pages used so far against the BRK buffer's size (a 5-page buffer running out
   shows at a glance).

Two emulations (:func:`plot_diff`; ``emu diff --plot``, ``emu plot --profile A --profile
B``) are drawn one above the other with the same scales.

The numbers drawn come from :func:`plot_data` (the emulation's own records, through
:func:`emu.tools.formats.mapping_steps`); the tests compare them with the emulation.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from emu.errors import EmuError
from emu.tools.formats import mapping_steps

#: file types a picture can be written as (matplotlib picks the format from the suffix)
SUFFIXES = (".png", ".svg", ".pdf")

E820_COLORS = {1: "#b8e186", 2: "#bdbdbd", 3: "#fee08b", 4: "#d9b3e6", 5: "#fb9a99", 7: "#a6cee3",
               12: "#a6cee3", 0xEFFFFFFF: "#80cdc1", 128: "#b8e186"}
E820_NAMES = {1: "usable", 2: "reserved", 3: "ACPI data", 4: "ACPI NVS", 5: "unusable", 7: "persistent",
              12: "persistent", 0xEFFFFFFF: "soft reserved", 128: "usable"}
PAGE_COLORS = {"4K": "#d62728", "2M": "#1f77b4", "4M": "#1f77b4", "1G": "#54278f"}
SOURCE_COLORS = {"brk": "#ff7f0e", "memblock": "#1b9e77", "image": "#525252", "pgt_buf": "#e7298a"}
SOURCE_NAMES = {"brk": "BRK", "memblock": "memblock", "image": "kernel image", "pgt_buf": "pgt_buf (<= 3.8)"}
LINEAR_BELOW = 1 << 20      # the address axis is linear below 1 MiB, log2 above


class PlotError(EmuError):
    """A picture cannot be made (no matplotlib, an unknown file type)."""


@dataclass
class PlotData:
    """Everything one picture shows, in the emulation's own numbers."""

    title: str
    e820: List[Tuple[int, int, int]]                 # (start, end, type)
    pieces: List[Tuple[int, int, str, int]]          # (start, end, page size, call index)
    tables: List[Tuple[int, str, str, int]]          # (physical address, level, source, call; -1: before)
    windows: List[Tuple[int, int, int, int]]         # (start, end, step size, RAM mapped in it)
    calls: List[Tuple[int, Optional[int], Dict[str, int]]]   # (call, window, pages by source)
    brk_pages: int                                   # the BRK buffer's size in pages (0: none)
    end: int                                         # top of the address axis
    top_down: bool = True
    notes: List[str] = field(default_factory=list)


def check_output(path: str) -> None:
    """Fail early, with one line, when ``path`` cannot receive a picture."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise PlotError(f"{path}: a picture is written as {', '.join(SUFFIXES)} (by the file's suffix)")
    full = os.path.abspath(path)
    if os.path.isdir(full):
        raise PlotError(f"{full}: is a directory, not a picture file")
    if os.path.exists(full) and not os.path.isfile(full):
        raise PlotError(f"{full}: is not a regular file (a FIFO, a device or a socket); a picture is written "
                        f"to a file")
    d = os.path.dirname(full)
    if not os.path.isdir(d):
        raise PlotError(f"{d}: no such directory for the picture")
    if not os.access(d, os.W_OK | os.X_OK):
        raise PlotError(f"{d}: the picture's directory is not writable")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PlotError("pictures need matplotlib: pip install 'emu[plot]'") from None


def plot_data(result) -> PlotData:
    """The numbers behind the picture of one emulation."""
    st = mapping_steps(result)
    k = result.kernel
    e820 = [(e.addr, e.addr + e.size, e.type) for e in st.e820 if e.size > 0]
    pieces = [(p.start, p.end, p.page_size, c.index) for c in st.calls for p in c.pieces]
    tables = [(int(pfn) << 12, st.level_names[int(lvl)], src, int(call))
              for pfn, lvl, src, call in zip(st.table_pfn.tolist(), st.table_level.tolist(), st.table_source,
                                             st.table_call.tolist())]
    windows = []
    for w in st.windows:
        ram = sum(st.calls[c].end - st.calls[c].start for c in w.calls)
        windows.append((w.start, w.end, w.step_size, ram))
    calls = []
    for c in st.calls:
        calls.append((c.index, c.window, {src: sum(lv.values()) for src, lv in c.tables.items()}))
    brk_pages = 0 if k.profile.scheme == "early_table_space" else k.pgt_buf_top - k.pgt_buf_start
    ram = sum(e - s for s, e, t in e820 if t in (1, 128))
    end = max([e for _, e, _ in e820] + [k.max_pfn << 12, 1 << 21])
    title = (f"profile {result.profile}: {k.mode.name}, {_size_label(ram)} of RAM (max_pfn {k.max_pfn:#x}); "
             f"{len(st.calls)} init_memory_mapping calls, {len(tables)} page-table pages")
    notes = []
    if result.panic:
        notes.append(result.panic)
    top_down = not (k.memblock.bottom_up and k.profile.bottom_up_supported)
    return PlotData(title, e820, pieces, tables, windows, calls, brk_pages, end, top_down, notes)


# ---------------------------------------------------------------------------
# drawing
# ---------------------------------------------------------------------------
def _size_label(n: float, digits: int = 3) -> str:
    """Bytes in binary units with up to ``digits`` significant digits (``2M``, ``17.7G``)."""
    n = int(n)
    if n <= 0:
        return "0"
    for unit, bits in (("P", 50), ("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << bits:
            v = n / (1 << bits)
            if v == int(v):
                return f"{int(v)}{unit}"
            return f"{v:.{max(digits - len(str(int(v))), 1)}f}".rstrip("0").rstrip(".") + unit
    return f"{n}"


def _address_axis(ax, end: int) -> None:
    """Linear below 1 MiB, log2 above; ticks at powers of 16 (and 4 GiB) in binary units;
    a little room right of ``end`` so the pages at the very top stay visible."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
    ax.set_xscale("symlog", linthresh=LINEAR_BELOW, base=2, linscale=0.6)
    ax.set_xlim(0, int(end * 1.3))
    ticks = [0, 1 << 20]
    t = 1 << 24
    while t < end:
        ticks.append(t)
        t <<= 4
    if 1 << 32 < end:
        ticks.append(1 << 32)
    ticks = sorted({x for x in ticks if x == 0 or x == 1 << 20 or end / x >= 3} | {end})
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: _size_label(x)))


def _draw_memory(axes, d: PlotData, end: int) -> None:
    """Panel 1: e820 band, page size per piece, page-table pages by level and source."""
    ax_e, ax_p, ax_t = axes
    for s, e, t in d.e820:
        ax_e.broken_barh([(s, e - s)], (0, 1), facecolors=E820_COLORS.get(t, "#333333"), edgecolor="#444444",
                         linewidth=0.3)
    ax_e.set_yticks([0.5], ["e820"])
    ax_e.set_ylim(0, 1)
    for s, e, size, _c in d.pieces:
        ax_p.broken_barh([(s, e - s)], (0, 1), facecolors=PAGE_COLORS.get(size, "#333333"), edgecolor="white",
                         linewidth=0.4)
    ax_p.set_yticks([0.5], ["page size"])
    ax_p.set_ylim(0, 1)
    levels = ["pte", "pmd", "pud", "p4d", "pgd"]
    used = [lv for lv in levels if any(t[1] == lv for t in d.tables)] or ["pte"]
    for src in SOURCE_COLORS:
        pts = [(pa, used.index(lv)) for pa, lv, s, _c in d.tables if s == src]
        if pts:
            ax_t.scatter([p[0] + 2048 for p in pts], [p[1] for p in pts], s=26, marker="s",
                         color=SOURCE_COLORS[src], edgecolor="black", linewidth=0.3, zorder=3)
    ax_t.set_yticks(range(len(used)), used)
    ax_t.set_ylim(-0.6, len(used) - 0.4)
    ax_t.set_ylabel("page-table\npages", rotation=0, ha="right", va="center", fontsize=8)
    ax_t.grid(axis="x", linestyle=":", linewidth=0.5)
    for ax in axes:
        _address_axis(ax, end)
        ax.tick_params(axis="y", length=0)
    for ax in axes[:2]:
        ax.tick_params(axis="x", labelbottom=False)
    ax_t.set_xlabel("physical address (linear below 1M, log scale above)", fontsize=8)


def _window_label(s: int, e: int, step: int, hexa: bool) -> str:
    rng = f"{s:#x}-\n{e:#x}" if hexa else f"{_size_label(s, 4)}-\n{_size_label(e, 4)}"
    return rng if step else rng + "\n(above real_end)"


def _draw_windows(ax, d: PlotData, ymax: float) -> None:
    """Panel 2: windows in order; span, RAM in it, RAM mapped before it, step size (log)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator
    if not d.windows:
        ax.text(0.5, 0.5, "no top-down windows: before 3.9 setup_arch made its own init_memory_mapping calls",
                ha="center", va="center", transform=ax.transAxes, fontsize=9)
        ax.set_yticks([])
        ax.set_xticks([])
        return
    xs = list(range(1, len(d.windows) + 1))
    spans = [e - s for s, e, _st, _r in d.windows]
    rams = [max(r, 1) for _s, _e, _st, r in d.windows]
    before, done = [], 0
    for _s, _e, _st, r in d.windows:
        before.append(done)
        done += r
    ax.bar(xs, spans, width=0.7, color="#dbe4ee", edgecolor="#6b8bad", linewidth=0.8, label="window", zorder=2)
    ax.bar(xs, rams, width=0.36, color="#6b8bad", label="RAM in it", zorder=3)
    ax.scatter([x for x, b in zip(xs, before) if b], [b for b in before if b], marker="_", s=500, linewidths=2,
               color="black", zorder=4, label="RAM mapped before it")
    steps = [(x, st) for x, (_s, _e, st, _r) in zip(xs, d.windows) if st]
    if steps:
        ax.plot([x for x, _ in steps], [st for _, st in steps], marker="D", color="#d62728", linewidth=1.2,
                markersize=5, label="step size", zorder=5)
        for x, st in steps:
            ax.annotate(f"step {_size_label(st)}", (x, max(st, spans[x - 1])), xytext=(0, 5),
                        textcoords="offset points", ha="center", fontsize=7, color="#a01c1c")
    ax.set_yscale("log", base=2)
    ax.set_ylim(4096, ymax * 16)
    ax.yaxis.set_major_locator(LogLocator(base=16))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: _size_label(y)))
    hexa = len(xs) <= 8
    labels = [_window_label(s, e, st, hexa) for s, e, st, _r in d.windows]
    if len(xs) > 16:
        labels = [str(x) for x in xs]
    ax.set_xticks(xs, labels, fontsize=6.5)
    ax.set_xlim(0.4, len(xs) + 0.6)
    ax.set_ylabel("bytes")
    name = "memory_map_top_down" if d.top_down else "memory_map_bottom_up"
    ax.set_title(f"{name}: the windows in the order mapped (log scale)", fontsize=9, loc="left")
    ax.grid(axis="y", linestyle=":", linewidth=0.5)
    ax.legend(fontsize=7, loc="upper left", ncols=4, frameon=False)


def _draw_calls(ax, d: PlotData, ymax: int) -> None:
    """Panel 3: page-table pages per init_memory_mapping call, by source; BRK used vs size."""
    from matplotlib.ticker import FuncFormatter
    xs = [c for c, _w, _n in d.calls]
    bottom = [0] * len(xs)
    for src in SOURCE_COLORS:
        vals = [n.get(src, 0) for _c, _w, n in d.calls]
        if any(vals):
            ax.bar(xs, vals, bottom=bottom, width=0.7, color=SOURCE_COLORS[src], zorder=3,
                   label=f"from {SOURCE_NAMES[src]}")
            bottom = [b + v for b, v in zip(bottom, vals)]
    image = sum(1 for t in d.tables if t[3] < 0)
    if d.brk_pages and xs:
        used, cum = 0, []
        for _c, _w, n in d.calls:
            used += n.get("brk", 0)
            cum.append(used)
        ax.step(xs, cum, where="post", color="#a35200", linewidth=1.3, zorder=4, label="BRK pages used so far")
        ax.axhline(d.brk_pages, color="#a35200", linestyle="--", linewidth=1, zorder=4)
        ax.annotate(f"BRK buffer: {d.brk_pages} pages", (1.0, d.brk_pages), xycoords=("axes fraction", "data"),
                    xytext=(-4, 3), textcoords="offset points", ha="right", fontsize=7, color="#a35200",
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1}, zorder=6)
    for x, b in zip(xs, bottom):
        if b:
            ax.annotate(str(b), (x, b), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=7)
    if ymax > 60:
        ax.set_yscale("symlog", linthresh=10)
        ax.set_ylim(0, ymax * 3)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: f"{int(y)}"))
    else:
        ax.set_ylim(0, ymax * 1.35 + 1)
    labels = [f"{c}" if w is None else f"{c}\nw{w + 1}" for c, w, _n in d.calls]
    ax.set_xticks(xs, labels, fontsize=7)
    ax.set_xlim(min(xs, default=0) - 0.6, max(xs, default=0) + 0.6)
    ax.set_xlabel("init_memory_mapping call, in order (wN: made by window N)", fontsize=8)
    ax.set_ylabel("pages")
    note = f" (and {image} in the kernel image, from before the first call)" if image else ""
    ax.set_title("page-table pages each call took" + note, fontsize=9, loc="left")
    ax.grid(axis="y", linestyle=":", linewidth=0.5)
    ax.legend(fontsize=7, loc="upper left", frameon=False, ncols=4)


def _legend(ax, data: Sequence[PlotData]) -> None:
    """One legend under the memory panel: e820 types, page sizes, page-table sources."""
    from matplotlib.patches import Patch
    blank = Patch(color="none", label="")
    handles = []
    types = sorted({t for dd in data for _s, _e, t in dd.e820}, key=lambda t: (t == 128, t))
    names = []
    for t in types:
        if E820_NAMES.get(t, f"type {t}") not in names:
            names.append(E820_NAMES.get(t, f"type {t}"))
            handles.append(Patch(facecolor=E820_COLORS.get(t, "#333333"), edgecolor="#444444", linewidth=0.3,
                                 label=f"e820 {names[-1]}"))
    handles.append(blank)
    for size in ("4K", "2M", "4M", "1G"):
        if any(p[2] == size for dd in data for p in dd.pieces):
            handles.append(Patch(color=PAGE_COLORS[size], label=f"page {size}"))
    handles.append(blank)
    for src in SOURCE_COLORS:
        if any(t[2] == src for dd in data for t in dd.tables):
            handles.append(Patch(color=SOURCE_COLORS[src], label=f"table page from {SOURCE_NAMES[src]}"))
    handles = [h for h in handles if h.get_label()]
    ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.32),
              ncols=len(handles) if len(handles) <= 10 else (len(handles) + 1) // 2,
              frameon=False, handlelength=1.3, columnspacing=1.2)


def figure(results: Sequence[Any]):
    """A matplotlib Figure of one or two emulations (two: one above the other, same
    scales), and the :class:`PlotData` of each."""
    from matplotlib.figure import Figure
    data = [plot_data(r) for r in results]
    end = max(d.end for d in data)
    win_max = max([e - s for d in data for s, e, _st, _r in d.windows]
                  + [st for d in data for _s, _e, st, _r in d.windows] + [1 << 21])
    call_max = max([sum(n.values()) for d in data for _c, _w, n in d.calls] + [d.brk_pages for d in data] + [1])
    fig = Figure(figsize=(12, 9.2 * len(data)), layout="constrained")
    rows = [0.32, 0.32, 1.0, 0.42, 2.0, 0.1, 1.8, 0.5]
    gs = fig.add_gridspec(len(rows) * len(data) - 1, 1, height_ratios=(rows * len(data))[:-1])
    for i, d in enumerate(data):
        base = len(rows) * i
        if i:
            fig.add_subplot(gs[base - 1]).set_axis_off()
        ax_e = fig.add_subplot(gs[base])
        ax_p = fig.add_subplot(gs[base + 1], sharex=ax_e)
        ax_t = fig.add_subplot(gs[base + 2], sharex=ax_e)
        _draw_memory((ax_e, ax_p, ax_t), d, end)
        ax_e.set_title(d.title + (f"\n{'; '.join(d.notes)}" if d.notes else ""), fontsize=10, loc="left",
                       fontweight="bold", color="#a01c1c" if d.notes else "black")
        _legend(ax_t, data)
        fig.add_subplot(gs[base + 3]).set_axis_off()
        _draw_windows(fig.add_subplot(gs[base + 4]), d, win_max)
        fig.add_subplot(gs[base + 5]).set_axis_off()
        _draw_calls(fig.add_subplot(gs[base + 6]), d, call_max)
    return fig, data


def save(fig, path: str) -> None:
    """Write the picture to a temporary file beside ``path``, then rename it into place (a
    picture is complete or absent); a failure is one :class:`PlotError` naming the path."""
    import tempfile
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(fig)
    full = os.path.abspath(path)
    ext = os.path.splitext(full)[1].lower()
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".emu-plot-", suffix=ext, dir=os.path.dirname(full))
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)            # as open() would have made it
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, dpi=110, format=ext[1:])
        os.replace(tmp, full)
        tmp = None
    except OSError as e:
        raise PlotError(f"{full}: cannot write the picture ({e.strerror or e})") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def plot_run(result, path: str) -> PlotData:
    """Draw one emulation to ``path`` (.png, .svg, .pdf); returns the data drawn."""
    check_output(path)
    fig, data = figure([result])
    save(fig, path)
    return data[0]


def plot_diff(a, b, path: str) -> Tuple[PlotData, PlotData]:
    """Draw two emulations of one layout one above the other; returns the data drawn."""
    check_output(path)
    fig, data = figure([a, b])
    save(fig, path)
    return data[0], data[1]


def plot_replay(result, path: str) -> PlotData:
    """For ``emu replay --plot FILE``: the emulation of a replayed log (the ``Result``)."""
    return plot_run(result, path)


# ---------------------------------------------------------------------------
# emu plot
# ---------------------------------------------------------------------------
EXAMPLES_PLOT = """examples:
  emu plot layout.png                                   the embedded 16 GiB layout, newest profile
  emu plot big.svg --e820 big.json --profile 3.13       any e820 map (a 64 TiB one stays legible)
  emu plot seed-3.10.png --profile seed --profile 3.10  two profiles, one above the other
"""


def register(sub) -> None:
    from emu.tools.options import add_layout_options
    p = sub.add_parser("plot", help="draw how the direct map was built (e820, windows, page sizes, table pages)",
                       epilog=EXAMPLES_PLOT, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output", metavar="FILE", help="the picture: FILE.png, FILE.svg or FILE.pdf")
    add_layout_options(p, profile=False)
    p.add_argument("--profile", action="append", default=[], metavar="NAME|VERSION",
                   help="kernel profile; twice to draw two one above the other (default: the log's version, else 6.1)")
    p.set_defaults(func=cmd_plot)


def cmd_plot(args: argparse.Namespace) -> int:
    import dataclasses

    from emu.boot.emulate import run
    from emu.kernel.profiles import get_profile
    from emu.tools.options import CliError, engine_of, layout, say_assumptions
    check_output(args.output)
    profiles = list(args.profile)
    if len(profiles) > 2:
        raise CliError("emu plot draws one or two profiles")
    args.profile = profiles[0] if profiles else None
    desc = layout(args)
    descs = [desc] if not profiles else [
        dataclasses.replace(desc, profile=get_profile(p), params=dataclasses.replace(desc.params)) for p in profiles]
    results = [run(d, check=False, max_memory=args.max_memory, engine=engine_of(args)) for d in descs]
    say_assumptions(results[0])
    fig, data = figure(results)
    save(fig, args.output)
    for d in data:
        print(d.title)
    print(f"wrote {args.output}")
    return 0


__all__ = ["PlotData", "PlotError", "check_output", "plot_data", "figure", "plot_run", "plot_diff", "plot_replay",
           "register"]
