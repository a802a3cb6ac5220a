"""The memory guard: the estimate comes before the store exists, matches what an emulation
takes in every paging mode (table pages, store bytes, and resident memory, as ratios), and
the store's byte budget holds on every growth even when an estimate is wrong."""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
import sys
import textwrap

import pytest

from emu import BootParams, CpuFeatures, emulate
from emu.inputs.e820 import EMBEDDED_DEFAULT
from emu.kernel import estimate as E
from emu.kernel.arch.x86.kernel import setup as S
from emu.machine.phys import MemoryBudgetError, PhysMem

from layouts import G, pc, table

T = 1 << 40
I386 = dict(arch="i386", gbpages=False)
CASES = [
    # (name, e820, profile, params)
    ("x86_64 16G desktop", EMBEDDED_DEFAULT, "6.1", BootParams()),
    ("x86_64 64G 4k", pc(64 * G), "6.1", BootParams(debug_pagealloc=True)),
    ("x86_64 3.5 64G 4k", pc(64 * G), "3.5", BootParams(debug_pagealloc=True)),
    ("x86_64 1T 2M", pc(T), "3.13", BootParams(cpu=CpuFeatures(gbpages=False))),
    ("x86_64 64T 2M", pc(64 * T), "6.1", BootParams(cpu=CpuFeatures(gbpages=False))),
    ("x86_64 islands", table((0, 0x9F000), (0x100000, 0x3FE01000), (0x40003000, 0x5FFFF000),
                             (1 << 32, (1 << 32) + 40 * G + 0x5000)), "4.4", BootParams()),
    ("x86_64 5-level 64G 4k", pc(64 * G), "6.1", BootParams(debug_pagealloc=True, la57=True, cpu=CpuFeatures(la57=True))),
    ("x86_64 5-level 1P 1G", table((0, 0x9F000), (0x100000, 1 << 50)), "6.1",
     BootParams(la57=True, cpu=CpuFeatures(la57=True))),
    ("i386-pae 64G no PSE", pc(64 * G), "3.13", BootParams(pae=True, cpu=CpuFeatures(pse=False, gbpages=False), **I386)),
    ("i386-pae 3.0 4G no PSE", pc(4 * G), "3.0", BootParams(pae=True, cpu=CpuFeatures(pse=False, gbpages=False), **I386)),
    ("i386-pae 16G", pc(16 * G), "6.1", BootParams(pae=True, cpu=CpuFeatures(gbpages=False), **I386)),
    ("i386 3G no PSE", pc(3 * G), "3.13", BootParams(pae=False, cpu=CpuFeatures(pse=False, gbpages=False, nx=False),
                                                     **I386)),
    ("i386 3G debug_pagealloc 3.9", pc(3 * G), "3.9", BootParams(pae=False, debug_pagealloc=True,
                                                                 cpu=CpuFeatures(gbpages=False, nx=False), **I386)),
]


@pytest.fixture
def estimates(monkeypatch):
    seen = []
    real = E.guard

    def spy(*a, **kw):
        est = real(*a, **kw)
        seen.append(est)
        return est
    monkeypatch.setattr(S.estimate, "guard", spy)
    return seen


@pytest.mark.parametrize("name,e820,profile,params", CASES, ids=[c[0] for c in CASES])
def test_estimate_matches_what_the_emulation_takes(name, e820, profile, params, estimates):
    """Per mode: the estimate is at least what the store takes and within 10 % of it (table
    pages: within 10 % or the few pages of slack)."""
    r = emulate(e820.copy(), profile, params, check=False, max_memory=4 << 30)
    (est,) = estimates
    k = r.kernel
    pages = k.phys.nframes          # the table pages the log books and the image's static tables
    assert pages >= len(k.table_pages)
    assert pages <= est.table_pages <= max(pages * 1.1, pages + E.SLACK_PAGES + 3), (est.table_pages, pages)
    tp = k.table_pages
    measured = k.phys.used_bytes + sum(getattr(tp, c).nbytes for c in ("pfn", "level", "src", "mapped", "call"))
    ratio = est.store_bytes / measured
    assert 0.97 <= ratio <= 1.10, (est.store_bytes, measured)


RSS_CHILD = textwrap.dedent("""
    import json, sys
    from emu import emulate, BootParams, CpuFeatures
    from emu.inputs.e820 import E820Map, EMBEDDED_DEFAULT
    import emu.kernel.arch.x86.kernel.setup as S
    seen = []
    real = S.estimate.guard
    S.estimate.guard = lambda *a, **k: seen.append(real(*a, **k)) or seen[-1]
    emulate(EMBEDDED_DEFAULT, "6.1", check=False)           # warm up: imports, first arrays
    def rss():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) << 10 for l in f if l.startswith("VmRSS:"))
    la57 = sys.argv[1] == "5"
    params = BootParams(debug_pagealloc=True, la57=la57, cpu=CpuFeatures(la57=la57))
    e820 = E820Map([(0, 0x9f000, 1), (0x100000, (64 << 30) - 0x100000, 1)])
    before = rss()
    r = emulate(e820, "6.1", params, check=False)
    print(json.dumps({"rss": rss() - before, "est": seen[-1].store_bytes}))
""")


@pytest.mark.parametrize("levels", ["4", "5"])
def test_estimate_matches_resident_memory(levels):
    """64 GiB with 4 KiB pages (128 MiB of tables): the resident memory an emulation adds is
    within 10 % of the estimate (a ratio, in a fresh process)."""
    env = dict(os.environ)      # the installed emu: no checkout on the path (it would shadow the package)
    out = subprocess.run([sys.executable, "-c", RSS_CHILD, levels], capture_output=True, text=True, timeout=300,
                         env=env, cwd=tempfile.gettempdir())   # `-c` puts the cwd first on sys.path
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout.strip().splitlines()[-1])
    assert 0.9 <= d["rss"] / d["est"] <= 1.1, d


def test_i386_estimate_is_not_73_times_too_high():
    """The issue's reproducer: i386 PAE without PSE on 64 GiB has 449 table pages; 64 MiB is
    plenty (it was refused as needing 128 MiB)."""
    r = emulate(pc(64 * G), "3.13", BootParams(pae=True, cpu=CpuFeatures(pse=False, gbpages=False), **I386),
                max_memory=64 << 20)
    assert len(r.kernel.table_pages) == 449 and r.verify.ok


@pytest.mark.parametrize("params,limit", [
    (BootParams(brk_base=0x3FF000000000), 1 << 20),                                    # 4-level, 64 TiB up
    (BootParams(la57=True, cpu=CpuFeatures(la57=True), brk_base=0xF000000000000), 32 << 20),  # 5-level
])
def test_guard_comes_before_the_store(params, limit, monkeypatch):
    """A BRK far up sizes the store's directory: the guard refuses before PhysMem exists."""
    made = []
    real = PhysMem.__init__

    def spy(self, *a, **kw):
        made.append(a)
        real(self, *a, **kw)
    monkeypatch.setattr(PhysMem, "__init__", spy)
    with pytest.raises(E.MemoryLimitError, match="over the limit of"):
        emulate(EMBEDDED_DEFAULT.copy(), "6.1", params, max_memory=limit)
    assert made == []


def test_physmem_budget_holds_on_every_growth():
    with pytest.raises(MemoryBudgetError):
        PhysMem(1 << 52, budget=1 << 20)                 # the directory alone: 64 MiB
    ph = PhysMem(1 << 34, budget=2 << 20)
    n = 0
    with pytest.raises(MemoryBudgetError, match="over its limit of 2 MiB"):
        for n in range(10_000):
            ph.frame(n)
            assert ph.nbytes <= 2 << 20
    assert ph.nbytes <= 2 << 20 and n > 100             # grew up to the budget, not past it
    ph = PhysMem(1 << 40, budget=1 << 20)
    with pytest.raises(MemoryBudgetError):
        for b in range(64):
            ph.frame(b << 16)                             # a new block (256 KiB of index) each
    assert ph.nbytes <= 1 << 20


def test_the_budget_stops_an_emulation_whose_estimate_was_wrong(monkeypatch):
    """If the estimate ever undercounts, the store still stops at --max-memory (one line)."""
    monkeypatch.setattr(S.estimate, "guard", lambda *a, **kw: E.Estimate(16, 0, 1 << 30))
    seen = []
    real = PhysMem.reserve_frames

    def spy(self, n):
        try:
            real(self, n)
        finally:
            seen.append(self.nbytes)
    monkeypatch.setattr(PhysMem, "reserve_frames", spy)
    with pytest.raises(MemoryBudgetError, match="--max-memory"):
        emulate(pc(64 * G), "6.1", BootParams(debug_pagealloc=True), max_memory=16 << 20)
    assert len(seen) > 3 and (15 << 20) < max(seen) <= 16 << 20      # grew to the limit, never past it


def test_cli_memory_messages(capsys):
    from emu.tools.cli import main
    assert main(["run", "--max-memory", "4K"]) == 2
    err = capsys.readouterr().err
    assert "over the limit of 4 KiB (--max-memory)" in err and err.count("\n") == 1
    with pytest.raises(SystemExit):
        main(["run", "--max-memory", "-1"])
    err = capsys.readouterr().err
    assert err.startswith("emu: error: argument --max-memory: '-1' is negative") and err.count("\n") == 1
