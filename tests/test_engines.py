"""One engine, one answer: the compiled loops (``emu._fast``) and their pure-Python twins
give the same printed lines, the same booked sources of every page-table page and the same
table bytes, for every profile, every paging mode (x86-64 4- and 5-level, i386 PAE and
non-PAE) and a set of layouts; and ``emu replay --pure`` passes the same corpus logs as the
compiled engine, line for line."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from emu.boot.emulate import emulate
from emu.kernel.profiles import PROFILES
from emu.kernel.state import BootParams
from emu.machine.cpu import CpuFeatures

from layouts import G, M, table

pytest.importorskip("emu._fast")

#: small layouts that still reach every path of the loops: 4 KiB heads and tails, 2 MiB and
#: 1 GiB leaves, holes inside large pages, RAM above 4 GiB, lowmem/highmem on i386
LAYOUTS = {
    "islands": table((0, 0x9F000), (0x100000, 0x3FE01000), (0x40003000, 0x5FFFF000), (0x60200000, 0x7FF00000),
                     (1 << 32, (1 << 32) + G + 2 * M + 0x5000)),
    "small-4k": table((0x1000, 0x9D000), (0x100000, 96 * M), (100 * M + 0x3000, 200 * M)),
    "highmem": table((0, 0x9F000), (0x100000, 0xBFFE0000), (1 << 32, (1 << 32) + 3 * G)),
}
#: per layout: extra boot parameters (small-4k runs with 4 KiB pages only)
EXTRA = {"islands": {}, "small-4k": {"debug_pagealloc": True}, "highmem": {}}
ARCHS = ["x86_64", "x86_64-la57", "i386-pae", "i386"]


def _params(arch: str, layout: str) -> BootParams:
    extra = dict(EXTRA[layout])
    if arch == "x86_64":
        return BootParams(**extra)
    if arch == "x86_64-la57":
        return BootParams(la57=True, cpu=CpuFeatures(la57=True), **extra)
    pae = arch == "i386-pae"
    return BootParams(arch="i386", pae=pae, gbpages=False, cpu=CpuFeatures(gbpages=False, nx=pae), **extra)


def _cases():
    for name, prof in PROFILES.items():
        for arch in ARCHS:
            if arch == "x86_64-la57" and not prof.la57_supported:
                continue
            for layout in LAYOUTS:
                yield pytest.param(name, arch, layout, id=f"{name}-{arch}-{layout}")


def _table_bytes(phys):
    pfns = phys.backed_pfns()
    order = np.argsort(pfns, kind="stable")
    return pfns[order], phys.frames[: phys.nframes][order]


def _run(profile: str, arch: str, layout: str, engine: str):
    return emulate(LAYOUTS[layout].copy(), profile, _params(arch, layout), check=False, engine=engine)


@pytest.mark.parametrize("profile,arch,layout", list(_cases()))
def test_both_engines_give_one_answer(profile, arch, layout):
    a = _run(profile, arch, layout, "cython")
    b = _run(profile, arch, layout, "python")
    assert a.kernel.engine.name == "cython" and b.kernel.engine.name == "python"
    assert a.debug_log == b.debug_log
    assert a.panic == b.panic
    ka, kb = a.kernel, b.kernel
    for col in ("pfn", "level", "src", "call"):
        assert np.array_equal(ka.table_pages.column(col), kb.table_pages.column(col)), col
    pa, fa = _table_bytes(ka.phys)
    pb, fb = _table_bytes(kb.phys)
    assert np.array_equal(pa, pb) and np.array_equal(fa, fb)
    assert ka.direct_pages_count == kb.direct_pages_count
    assert (ka.pgt_buf_start, ka.pgt_buf_end, ka.pgt_buf_top) == (kb.pgt_buf_start, kb.pgt_buf_end, kb.pgt_buf_top)


def test_the_matrix_covers_every_profile_and_mode():
    cases = list(_cases())
    assert {c.values[0] for c in cases} == set(PROFILES)
    assert {c.values[1] for c in cases} == set(ARCHS)
    # and the layouts reach 4 KiB, 2 MiB and 1 GiB leaves and more than one page source
    a = _run("6.1", "x86_64", "islands", "cython")
    assert {"4k", "2M", "1G"} <= {ln.rsplit(" ", 1)[-1] for ln in a.debug_log if " page " in ln}
    assert len(set(a.kernel.table_pages.column("src").tolist())) >= 3


def _corpus_options():
    with open(Path(__file__).with_name("corpus_options.json")) as f:
        return {k: v["options"] for k, v in json.load(f).items() if not k.startswith("_")}


def test_replay_pure_passes_what_compiled_passes(corpus):
    """Every corpus log, with no option and with the build options of corpus_options.json:
    the same verdict and the same emulated lines on both engines."""
    from emu.tools.replay import replay_file
    options = _corpus_options()
    logs = sorted(corpus.glob("*.log"))
    assert logs
    verdicts = {"cython": [], "python": []}
    for path in logs:
        for opts in ({},) + ((options[path.name],) if path.name in options else ()):
            r = {e: replay_file(path, engine=e, **opts) for e in verdicts}
            assert r["cython"].passed == r["python"].passed, (path.name, opts, r["python"].line())
            assert r["cython"].got == r["python"].got, (path.name, opts)
            for e in verdicts:
                verdicts[e].append(r[e].passed)
    assert verdicts["cython"] == verdicts["python"]
