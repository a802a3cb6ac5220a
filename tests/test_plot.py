"""Pictures (emu plot, run --plot, diff --plot): they are written, and what they draw is the
emulation's own data -- the pieces the kernel printed, the windows and step sizes it used,
the page-table pages and where they came from (not pixels)."""
from __future__ import annotations

import re

import pytest

from emu import BootParams, emulate
from emu.errors import EmuError
from emu.inputs.e820 import EMBEDDED_DEFAULT
from emu.tools.cli import main
from layouts import pc, table

pytest.importorskip("matplotlib")

from emu.tools import plot as P  # noqa: E402

T = 1 << 40
_PAGE = re.compile(r"^ \[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\] page (\w+)$")


def _axes(fig, title_part):
    found = [ax for ax in fig.axes if title_part in ax.get_title(loc="left")]
    assert found, title_part
    return found


def check_against_emulation(r, d: P.PlotData) -> None:
    k = r.kernel
    # the pieces: exactly the " [mem ...] page X" lines the kernel printed, in order
    printed = [(int(m.group(1), 16), int(m.group(2), 16) + 1, m.group(3).upper())
               for m in map(_PAGE.match, r.debug_log) if m]
    assert [(s, e, size) for s, e, size, _c in d.pieces] == printed
    # the page-table pages: every one the kernel allocated, with its source and call
    tp = k.table_pages
    assert sorted(pa for pa, _l, _s, _c in d.tables) == sorted(int(p) << 12 for p in tp.column("pfn"))
    by_source = {}
    for _pa, _lv, src, _c in d.tables:
        by_source[src] = by_source.get(src, 0) + 1
    assert by_source == {s: n for s, n in r.pgtable_pages["by_source"].items() if n}
    assert sum(sum(n.values()) for _c, _w, n in d.calls) + sum(1 for t in d.tables if t[3] < 0) == len(tp)
    # the windows, in the order the kernel mapped them, with the step size it used
    assert [(s, e, st) for s, e, st, _r in d.windows] == [(w.start, w.end, w.step_size) for w in k.windows]
    assert [r_ for *_x, r_ in d.windows] == [
        sum(k.calls[c].end - k.calls[c].start for c in range(w.first_call, w.end_call if w.end_call is not None
                                                              else len(k.calls))) for w in k.windows]
    # the e820 band is the table the kernel used
    assert d.e820 == [(e.addr, e.addr + e.size, e.type) for e in k.e820.entries if e.size]
    if not k.profile.scheme == "early_table_space":
        assert d.brk_pages == k.pgt_buf_top - k.pgt_buf_start


def check_figure(fig, data):
    """The bars drawn are the data: window spans and per-call page counts."""
    wins = _axes(fig, "windows in the order mapped") if any(d.windows for d in data) else []
    for d, ax in zip([d for d in data if d.windows], wins):
        spans = sorted(p.get_height() for p in ax.patches if p.get_width() > 0.5)
        assert spans == sorted(float(e - s) for s, e, _st, _r in d.windows)
        steps = [ln for ln in ax.get_lines() if ln.get_marker() == "D"]
        assert list(steps[0].get_ydata()) == [st for _s, _e, st, _r in d.windows if st]
    calls = _axes(fig, "page-table pages each call took")
    assert len(calls) == len(data)
    for d, ax in zip(data, calls):
        tops = {}
        for p in ax.patches:
            x = round(p.get_x() + p.get_width() / 2)
            tops[x] = max(tops.get(x, 0), p.get_y() + p.get_height())
        assert {x: v for x, v in tops.items() if v} == {c: sum(n.values()) for c, _w, n in d.calls if sum(n.values())}


@pytest.mark.parametrize("e820,profile,params", [
    (EMBEDDED_DEFAULT, "6.1", BootParams()),
    (EMBEDDED_DEFAULT, "seed", BootParams()),
    (pc(64 * T), "3.13", BootParams()),
    (EMBEDDED_DEFAULT, "3.13", BootParams(arch="i386", pae=False)),
    (EMBEDDED_DEFAULT, "3.5", BootParams()),                 # before 3.9: no windows
    (table((0, 0xF0000000)), "seed", BootParams(debug_pagealloc=True, initrd=(0xEC100000, 0xEFE00000))),
], ids=["6.1", "seed", "64T", "i386", "3.5", "F6-panic"])
def test_plot_data_is_the_emulations(tmp_path, e820, profile, params):
    r = emulate(e820.copy(), profile, params, check=False)
    fig, (d,) = P.figure([r])
    check_against_emulation(r, d)
    check_figure(fig, [d])
    if profile == "3.5":
        assert d.windows == [] and len(d.calls) == 2
    if profile == "seed" and params.debug_pagealloc:
        assert r.panic and d.notes == [r.panic]
        # the old step rule's oversized window: far more RAM than was mapped before it
        s, e, st, ram = d.windows[-1]
        assert ram > 16 * sum(x[3] for x in d.windows[:-1])
    if profile in ("6.1", "3.5"):
        out = tmp_path / "p.png"
        assert P.plot_run(r, str(out)) == d
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000


def test_64T_address_axis_stays_legible():
    r = emulate(pc(64 * T), "3.13", check=False)
    fig, (d,) = P.figure([r])
    ax = fig.axes[0]
    assert ax.get_xscale() == "symlog"
    labels = [t.get_text() for t in fig.axes[2].get_xticklabels()]
    assert labels[:2] == ["0", "1M"] and "4G" in labels and labels[-1] == "64T"
    lo, hi = ax.get_xlim()
    assert lo == 0 and hi >= 64 * T
    wins = _axes(fig, "windows")[0]
    assert wins.get_yscale() == "log"
    assert len(d.windows) == 6 and d.windows[0][1] - d.windows[0][0] == 2 << 20   # PMD_SIZE first


def test_diff_plot_one_above_the_other(tmp_path, capsys):
    out = tmp_path / "diff.svg"
    code = main(["diff", "--profile", "seed", "--profile", "3.10", "--plot", str(out)])
    assert code == 1
    svg = out.read_text()
    assert svg.startswith("<?xml") and "profile seed" in svg and "profile 3.10" in svg
    a = emulate(EMBEDDED_DEFAULT.copy(), "seed", check=False)
    b = emulate(EMBEDDED_DEFAULT.copy(), "3.10", check=False)
    fig, (da, db) = P.figure([a, b])
    check_against_emulation(a, da)
    check_against_emulation(b, db)
    check_figure(fig, [da, db])
    assert (da.brk_pages, db.brk_pages) == (5, 6)                 # the seed's 5-page BRK buffer
    calls = _axes(fig, "page-table pages each call took")
    assert calls[0].get_ylim() == calls[1].get_ylim()             # the same scales, one above the other
    wins = _axes(fig, "windows")
    assert wins[0].get_ylim() == wins[1].get_ylim()
    titles = [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left").startswith("profile ")]
    assert [t.split(":")[0] for t in titles] == ["profile seed", "profile 3.10"]


def test_plot_and_run_commands(tmp_path, capsys):
    out = tmp_path / "x.png"
    assert main(["plot", str(out), "--profile", "3.13"]) == 0
    assert out.stat().st_size > 20_000 and f"wrote {out}" in capsys.readouterr().out
    out2 = tmp_path / "y.svg"
    assert main(["run", "--profile", "seed", "--plot", str(out2)]) == 0
    assert out2.read_text().startswith("<?xml")
    capsys.readouterr()
    code = main(["run", "--plot", str(tmp_path / "bad.txt")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and ".png, .svg, .pdf" in err
    code = main(["plot", str(tmp_path / "no" / "such" / "dir.png")])
    assert code == 2 and "no such directory" in capsys.readouterr().err
    with pytest.raises(EmuError):
        P.check_output("picture.jpeg")
