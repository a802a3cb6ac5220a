"""The independent checker (emu.check.x86_64): passes on what the kernel builds, and catches
each kind of corruption with the right rule."""
from __future__ import annotations

import numpy as np
import pytest

from emu import BootParams, CpuFeatures, emulate
from emu.inputs.e820 import EMBEDDED_DEFAULT
from emu.check import Report, verify
from emu.machine.modes import MODES
from layouts import G, pc

PROFILES = ["3.9", "3.10", "3.13", "3.19", "4.4", "4.8", "4.17", "4.19", "4.20", "5.8", "5.15", "6.1", "6.15"]


def _run(layout=None, profile="6.1", **cpu):
    params = BootParams(cpu=CpuFeatures(**cpu)) if cpu else None
    if params is not None and cpu.get("gbpages") is False:
        params.gbpages = False
    r = emulate(layout if layout is not None else EMBEDDED_DEFAULT, profile, params)
    assert r.panic is None
    return r


@pytest.mark.parametrize("profile", PROFILES)
def test_clean_on_merged_profiles(profile):
    for lay in (EMBEDDED_DEFAULT, pc(5 * G), pc(700 * G)):
        r = _run(lay, profile)
        assert r.verify.ok, r.verify.violations
        assert r.verify.checked["leaf_runs"] > 0 and r.verify.checked["walks"] > 0


@pytest.mark.parametrize("cpu", [dict(gbpages=False), dict(pse=False), dict(nx=False), dict(pge=False)])
def test_clean_with_cpu_variants(cpu):
    r = _run(pc(6 * G), "6.1", **cpu)
    assert r.verify.ok, r.verify.violations


def test_report_api():
    r = _run()
    rep = r.verify
    assert isinstance(rep, Report) and rep.ok and rep.violation_count == 0 and rep.violations == []
    d = rep.to_json()
    for key in ("ok", "violation_count", "violations", "items", "by_rule", "checked", "mode"):
        assert key in d
    assert rep.mode == "x86_64-4level"
    assert set(MODES) == {"x86_64-4level", "x86_64-5level", "i386-pae", "i386"}


def test_five_level():
    r = emulate(pc(6 * G), "6.1", BootParams(la57=True, cpu=CpuFeatures(la57=True)))
    assert r.verify.ok and r.verify.mode == "x86_64-5level", r.verify.violations


# ---------------------------------------------------------------------------
# corruptions: each is caught, with its rule
# ---------------------------------------------------------------------------
def _entry_addr(k, va, level):
    """Physical address of the entry that maps ``va`` at ``level`` (1 = PTE)."""
    pfn = k.pgd_pfn
    for lvl in range(k.paging_levels, level - 1, -1):
        shift = 12 + 9 * (lvl - 1)
        pa = (pfn << 12) + (((va >> shift) & 511) << 3)
        if lvl == level:
            return pa
        pfn = (k.phys.read64(pa) & 0x000FFFFFFFFFF000) >> 12
    raise AssertionError


def _rules(k):
    rep = verify(k)
    assert not rep.ok
    return set(rep.by_rule)


def test_catches_wrong_flags():
    k = _run(pc(3 * G)).kernel
    a = _entry_addr(k, k.page_offset + 0x20000000, 2)       # a 2M leaf
    k.phys.write64(a, k.phys.read64(a) & ~(1 << 63))         # drop NX
    assert "map.flags" in _rules(k)


def test_catches_wrong_target():
    k = _run(pc(3 * G)).kernel
    a = _entry_addr(k, k.page_offset + 0x20000000, 2)
    k.phys.write64(a, k.phys.read64(a) + 0x200000)           # maps the next 2M block
    assert "map.offset" in _rules(k)


def test_catches_missing_ram():
    k = _run(pc(3 * G)).kernel
    a = _entry_addr(k, k.page_offset + 0x20000000, 2)
    k.phys.write64(a, 0)
    rules = _rules(k)
    assert "map.missing" in rules and "acct.directmap" in rules


def test_catches_mapped_hole():
    k = _run(pc(3 * G), gbpages=False).kernel
    # RAM ends at 0xbffe0000: map the next page (non-RAM) by hand
    a = _entry_addr(k, k.page_offset + 0xBFFE0000, 1)
    assert k.phys.read64(a) == 0
    k.phys.write64(a, 0xBFFE0000 | 0x8000000000000163)
    rules = _rules(k)
    assert "map.hole" in rules


def test_catches_low_pfn_bits_in_large_leaf():
    k = _run(pc(3 * G)).kernel
    a = _entry_addr(k, k.page_offset + 0x20000000, 2)
    k.phys.write64(a, k.phys.read64(a) | 0x2000)            # bit 13: reserved in a 2M leaf
    assert "pt.reserved-bits" in _rules(k)


def test_catches_table_entry_flags():
    k = _run(pc(3 * G)).kernel
    a = _entry_addr(k, k.page_offset + 0x20000000, 3)        # PUD entry -> PMD table
    k.phys.write64(a, k.phys.read64(a) & ~0x4)               # drop US: _KERNPG_TABLE
    assert "pt.entry-flags" in _rules(k)


def test_catches_shared_table():
    k = _run(pc(3 * G), gbpages=False).kernel
    a1 = _entry_addr(k, k.page_offset + 0x00000000, 3)
    a2 = _entry_addr(k, k.page_offset + 0x40000000, 3)
    k.phys.write64(a2, k.phys.read64(a1))                    # two PUD entries share a PMD page
    rules = _rules(k)
    assert "pt.multi-ref" in rules and "pt.unreachable" in rules


def test_catches_counter_and_log_mismatch():
    k = _run().kernel
    k.direct_pages_count[2] += 1
    assert _rules(k) == {"acct.directmap"}


def test_catches_unmapped_write():
    """The seed's rule: a page from memblock must be mapped by an earlier call."""
    r = emulate(pc(2 * G), "6.1", BootParams(cpu=CpuFeatures(pse=False)))
    k = r.kernel
    src = k.table_pages.src[: len(k.table_pages)]
    assert (src == 2).any()
    i = int(np.nonzero(src == 2)[0][0])
    k.table_pages.call[i] = 0            # pretend the ISA call wrote it
    assert "pt.unmapped-write" in _rules(k)


def test_catches_table_outside_brk_and_not_reserved():
    k = _run().kernel
    src = k.table_pages.src[: len(k.table_pages)]
    i = int(np.nonzero(src == 1)[0][0])
    k.table_pages.pfn[i] = k.pgt_buf_top + 100              # the log says BRK, the page is elsewhere
    rules = _rules(k)
    assert "pt.outside-brk" in rules


def test_corpus_logs_pass_the_full_check(corpus):
    from emu.boot.describe import ReplayError, layout_from_log, read_log
    n = 0
    for path in sorted(corpus.glob("*.log")):
        log = read_log(path)
        try:
            e820, edits, params, version = layout_from_log(log)
        except ReplayError:
            continue        # 32-bit logs
        try:
            r = emulate(e820, version or "6.1", params, log_edits=edits)
        except ValueError:
            continue
        if r.panic is None and r.verify.mode.startswith("x86_64"):   # i386 checks live in emu.kernel.arch.x86.mm.init_32
            assert r.verify.ok, (path.name, r.verify.violations)
            n += 1
    assert n >= 10
