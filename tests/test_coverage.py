"""Coverage of the kernel's decision points (Kernel.coverage), the 5-level P4D walk of 5.2+
(432c833218dd) and how the checker counts it, and the modes the generators draw."""
from __future__ import annotations

import pytest

from emu import BootParams, emulate
from emu.check.x86_64 import p4d_wrap_pieces
from emu.kernel.arch.x86.kernel.e820 import E820Entry, E820Table
from emu.kernel.profiles import PROFILES
from emu.machine.abi import COVERAGE_POINTS
from emu.machine.cpu import CpuFeatures
from emu.tools.fuzzcase import run_case
from emu.tools.generators import Case, _kernel_in_lowmem, case_for, kernel_in_ram, modes_for

M, G, T, P = 1 << 20, 1 << 30, 1 << 40, 1 << 50


def table(*ranges):
    return E820Table([E820Entry(a, s, t) for a, s, t in ranges])


def test_points_of_a_plain_boot():
    r = emulate(table((0, 0x9F000, 1), (0x100000, 8 * G - 0x100000, 1)), "6.1")
    pts = r.kernel.coverage.as_dict()
    assert pts["split:4k"] == 1                       # the ISA range
    assert "step.top_down.512M" in pts and "adjust.promote_1G" in pts
    assert any(p.startswith("split:") and "1G" in p for p in pts)
    assert "panic:" not in "".join(pts)


def test_points_of_panics_brk_and_old_kernels():
    # the 3.9 BRK budget: 4K pages above 512 GiB exhaust BRK, memblock has nothing mapped
    c = Case([(0, 0x4000000, 1), (0x8000000000, 0x200000, 1)], debug_pagealloc=True)
    out = run_case(c, "3.9")
    assert "x86_64/panic:alloc_low_page: ran out of memory" in out.points
    assert any(p.startswith("x86_64/brk.exhausted@call") for p in out.points)
    assert "x86_64/alloc.memblock_fallback" in out.points
    # 2.6.31 clears the rest of a PMD page past the end and maps above 4G in a second call
    r = emulate(table((0, 0x9F000, 1), (0x100000, 0xBFF00000, 1), (4 * G, 3 * G + 0x1000, 1)), "2.6.31")
    pts = r.kernel.coverage.as_dict()
    assert "pre39.map_above_4G" in pts and "loop.zero_rest_pmd" in pts


def test_loop_counters_are_the_same_in_both_engines():
    e = table((0, 0x9F000, 1), (0x100000, 0x7FF00000, 1), (0x80000000, 0x1000, 2), (4 * G, 4 * G + 0x3000, 1))
    for prof in ("3.0", "seed", "3.13", "6.1"):
        for p in (BootParams(), BootParams(cpu=CpuFeatures(gbpages=False)), BootParams(arch="i386"),
                  BootParams(arch="i386", pae=False), BootParams(movable_node=True)):
            a = emulate(e, prof, p, engine="cython").kernel.coverage.as_dict()
            b = emulate(e, prof, p, engine="python").kernel.coverage.as_dict()
            assert a == b, (prof, p)
    assert len(COVERAGE_POINTS) == len(set(COVERAGE_POINTS)) and "p4d_wrap" in COVERAGE_POINTS


@pytest.mark.parametrize("size", [512 * T, 4 * P])
@pytest.mark.parametrize("profile", ["4.20", "6.1", "6.15"])
def test_5level_directmap_counts_as_the_kernel_counts(profile, size):
    """Issue 11 item 6: from 5.2 the kernel's phys_p4d_init wraps over its P4D page and counts
    leaves again; the checker expects that count and says so; 4.20 does not wrap."""
    r = emulate(table((0, 651264, 1), (M, size - M, 1)), profile, BootParams(la57=True), max_memory=1 << 33)
    assert r.panic is None and r.verify.ok, r.verify.violations
    wraps = PROFILES[profile].p4d_walk_by_vaddr
    note = [n for n in r.verify.notes if "432c833218dd" in n]
    loops = r.kernel.coverage.as_dict()
    if wraps:
        assert note and loops.get("loop.p4d_wrap")
        assert r.direct_map["4k"] > 512 * 4096          # the first 2 MiB counted again
    else:
        assert not note and "loop.p4d_wrap" not in loops and loops.get("loop.p4d_stop")   # ends with its page
        assert r.direct_map["4k"] == 512 * 4096


def test_wrap_pieces_follow_the_rule():
    class K:
        class mode:
            levels = 5
        profile = PROFILES["6.1"]
        page_offset = PROFILES["6.1"].page_offset_l5
    R = 256 * T
    # one call over three PML5 regions: region 0 is walked again for regions 1 and 2, region 1 for 2
    got = p4d_wrap_pieces(K, [(M, 2 * R + 5 * G, 30)])
    assert got == [(0, R, 30), (0, 5 * G, 30), (R, R + 5 * G, 30)]
    K.profile = PROFILES["4.20"]
    assert p4d_wrap_pieces(K, [(M, 2 * R + 5 * G, 30)]) == []


# the minimal maps of docs/findings.md, 5-level: one init_memory_mapping call spanning PML5
# regions makes phys_p4d_init walk the P4D page of a lower region with a higher region's
# addresses: where that page has holes it maps the higher RAM at the lower virtual address
WRAP_FINDINGS = [
    ("hole-below-512G-gets-region-1", Case([(0, 0x80000000, 1), (0x10000000000, 0x1FF0000000000, 1)], mode="la57"),
     "map.offset"),
    ("ram-in-region-0-unmapped", Case([(0x2010000000000, 0xFF0000000000, 1), (0, 0x1001000000000, 1)], mode="la57"),
     "map.missing"),
]


@pytest.mark.parametrize("name,case,rule", WRAP_FINDINGS, ids=[w[0] for w in WRAP_FINDINGS])
def test_5level_wrap_findings(name, case, rule):
    for prof in ("5.2", "6.1", "6.15"):
        out = run_case(case, prof, reference=None)
        assert out.kind == "check" and rule in out.signature, (prof, out)
    assert run_case(case, "4.20", reference=None).kind == "ok"


def test_generators_draw_every_mode_of_a_profile():
    assert modes_for(PROFILES["4.19"]) == ["x86_64", "i386-pae", "i386"]
    assert modes_for(PROFILES["6.1"]) == ["x86_64", "la57", "i386-pae", "i386"]
    seen = {case_for(1, i, modes=modes_for(PROFILES["6.1"])).mode for i in range(200)}
    assert seen == {"x86_64", "la57", "i386-pae", "i386"}
    c = case_for(1, 7, modes=["i386"], force={"movable_node": True})
    assert c.movable_node and c.mode == "i386"
    for i in range(200):   # i386 maps keep the kernel in lowmem (or are rejected as not in RAM)
        c = case_for(2, i, modes=["i386-pae", "i386"])
        assert _kernel_in_lowmem(c) or not kernel_in_ram(c)


# Maps of the pre-3.9 campaign (profile 3.5): before the top-down rewrite setup_arch maps
# [0, max_low_pfn) and [4G, max_pfn) whole, holes included (docs/findings.md, F10).
PRE39_HOLE_I386 = Case([(0, 0x20000000, 1), (0x10000000, 0x4000000, 5)], mode="i386-pae")
PRE39_SPARSE = Case([(0, 0x4000000, 1), (0x3F0000000000, 0x10000000000, 1)], mode="x86_64")


def test_pre39_i386_maps_holes_below_max_low_pfn():
    """3.5 maps the unusable [256M, 320M) with the rest of lowmem in one call: the checker
    accepts that for the old kernels (init_memory_mapping(0, max_low_pfn)); 3.9+ maps RAM only."""
    from emu.tools.fuzzcase import _emulate
    r = _emulate(PRE39_HOLE_I386, "3.5")
    assert "init_memory_mapping: [mem 0x00000000-0x1fffffff]" in r.log
    assert r.verify.ok, r.verify.violations
    for prof in ("3.5", "3.9", "6.18"):
        assert run_case(PRE39_HOLE_I386, prof, reference=None).kind == "ok", prof


def test_pre39_empty_pud_pages_are_the_old_kernels():
    """With GB pages 3.5 maps [4G, 64T) with one PUD page per 512 GiB, 125 of them empty:
    acct.tables counts them as needed for a pre-3.9 kernel, and only there."""
    out = run_case(PRE39_SPARSE, "3.5", reference=None)
    assert out.kind == "ok", out
    from emu.tools.fuzzcase import _emulate
    r = _emulate(PRE39_SPARSE, "3.5")
    assert r.kernel.table_pages.column("level").tolist().count(3) >= 127
    assert run_case(PRE39_SPARSE, "6.18", reference=None).kind == "ok"


def test_pre39_sparse_map_without_gb_pages_panics():
    """F10: without GB pages 3.5's find_early_table_space wants PMD pages for all of
    [0, 64T) (256 MiB) below max_pfn_mapped: 'Cannot find space for the kernel page tables'.
    3.9 and later map only the RAM and boot."""
    import dataclasses
    case = dataclasses.replace(PRE39_SPARSE, gbpages=False)
    out = run_case(case, "3.5", reference=None)
    assert out.kind == "panic" and "Cannot find space for the kernel page tables" in out.signature, out
    for prof in ("3.9", "3.10", "6.18"):
        assert run_case(case, prof, reference=None).kind == "ok", prof


def test_i386_kernel_image_stays_below_every_profiles_lowmem():
    """The generator keeps an i386 image and its BRK below LOWMEM_FLOOR_32, which must not
    exceed any profile's own lowmem end (else a bottom-up boot maps past max_low_pfn up to
    the image's end: the c-i386 campaign's map.beyond, a layout no kernel runs from)."""
    from emu.tools.fuzzcase import _emulate
    from emu.tools.generators import LOWMEM_FLOOR_32
    for name in PROFILES:
        for mode in ("i386", "i386-pae"):
            c = Case([(0, 0x9F000, 1), (0x100000, 0xFFF00000 - 0x100000, 1)], mode=mode)
            assert _emulate(c, name).kernel.max_low_pfn << 12 >= LOWMEM_FLOOR_32, (name, mode)
    c = Case([(0, 0x40000000, 1)], mode="i386", kernel_start=0x36800000, movable_node=True)
    assert not _kernel_in_lowmem(c)
    for i in range(300):
        c = case_for(0, i, modes=["i386"], force={"movable_node": True})
        assert _kernel_in_lowmem(c) or not kernel_in_ram(c)


#: F8 (docs/findings.md): bottom-up (movable_node), a page-table page written before any call
#: mapped it, in two shapes.  5.11+: memblock's bottom-up search no longer starts at kernel_end
#: (so the free pages below the kernel, mapped last, are candidates).  3.13-5.10: it does, and
#: when nothing above kernel_end is free (here an initrd from the image's end to the top of
#: RAM) memblock warns and searches top-down, which finds the page just below the kernel,
#: inside the call being made
F8_NEW = Case([(0, 16 * G, 1), (0, 0x4A0000, 4)], gbpages=False, movable_node=True)
F8_OLD = Case([(0, 256 * M, 1), (0x4000000, 0x1578000, 3)], kernel_start=0xBA00000, movable_node=True)


@pytest.mark.parametrize("prof,fails", [("5.10", False), ("5.11", True), ("6.1", True), ("6.18", True)])
def test_f8_5_11_bottom_up_search_below_the_kernel(prof, fails):
    assert (run_case(F8_NEW, prof, reference=None).signature == "check:pt.unmapped-write") == fails


@pytest.mark.parametrize("prof,fails", [("3.13", True), ("4.19", True), ("5.10", True), ("5.11", False),
                                        ("6.18", False)])
def test_f8_3_13_to_5_10_top_down_fallback_below_the_kernel(prof, fails):
    import dataclasses
    kernel_end = emulate(F8_OLD.table(), prof, F8_OLD.boot_params(), check=False).kernel.kernel_end
    case = dataclasses.replace(F8_OLD, initrd=(kernel_end, 256 * M))   # the initrd right after the image
    assert (run_case(case, prof, reference=None).signature == "check:pt.unmapped-write") == fails
    r = emulate(case.table(), prof, case.boot_params())
    assert (r.warnings == ["memblock: bottom-up allocation failed, memory hotremove may be affected"]) == fails
