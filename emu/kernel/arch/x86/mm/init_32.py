"""arch/x86/mm/init_32.c: the i386 direct mapping (PAE and non-PAE).

Re-expresses, with the kernel's function names, (v3.9-v4.19; read: 3.10
``torvalds/linux@2606d244`` init.c, 4.19 ``0x88888888/Linux-4.19`` and a 4.17+
``torvalds/linux`` init_32.c; 3.6 ``New-B/Linux3.6`` for the older form):

* ``kernel_physical_mapping_init`` - two passes over ``swapper_pg_dir``: the first
  writes ``PTE_IDENT_ATTR`` (0x003) / ``PTE_IDENT_ATTR|_PAGE_PSE`` (0x083) entries
  and counts pages, the second the final ``PAGE_KERNEL[_LARGE][_EXEC]`` (executable
  where ``is_kernel_text``).  Large pages only when the piece's mask is exactly
  ``1 << PG_LEVEL_2M`` and the CPU has PSE; a large PDE replaces whatever the entry
  held (e.g. a head_32 page table).  4k pieces reuse a present page table
  (``one_page_table_init``) or allocate one (``_PAGE_TABLE``, 0x067); PAE PMD pages
  are allocated for absent PGD entries (``one_md_table_init``, ``_PAGE_PRESENT``).
  The loops run in ``emu._fast.Mapper32`` (or ``emu.machine.reference32``).
* ``early_ioremap_page_table_range_init`` / ``page_table_range_init`` (the fixmap
  page tables, with the CONFIG_HIGHMEM kmap copy of ``page_table_kmap_check``).
* ``find_low_pfn_range`` (``lowmem_pfn_init`` / ``highmem_pfn_init``; ``highmem=``),
  with ``MAXMEM`` (``VMALLOC_END - PAGE_OFFSET - __VMALLOC_RESERVE``) as an input.

The fixmap geometry (``fixmap_bottom``, ``btmap_begin``, ``kmap_range``) and ``MAXMEM``
(``lowmem_limit``) are inputs (a build's ``.config`` gives them:
:func:`emu.kernel.arch.x86.fixmap.i386_params_from_config`).  Not given, they follow the
profile's era (``Profile.i386_pkmap_rule``, ``i386_btmaps_slots``, the enum fields) with a
typical build (:func:`emu.kernel.arch.x86.fixmap.typical_layout_32`), and each default is
recorded as an :class:`~emu.kernel.params.Assumption` (:func:`resolve_geometry_32`).
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Tuple

import numpy as np

from emu.kernel.arch.x86 import fixmap as fixmap32
from emu.kernel.arch.x86.pgtable_types import MASK_2M, PAGE_SHIFT, PAGE_SIZE, PG_LEVEL_2M, PG_LEVEL_4K, _PAGE_GLOBAL, _PAGE_NX
from emu.kernel.params import Assumption
from emu.kernel.printk import KernelPanic
from emu.kernel.arch.x86.mm.init_64 import MapJob
from emu.kernel.arch.x86.mm.pageattr import update_page_count

_M64 = (1 << 64) - 1
PTE_IDENT_ATTR = 0x003      # head_32.S / pgtable_types.h
#: PDE_IDENT_ATTR from 3.15 (0x067, with _PAGE_USER, before: Profile.i386_pde_ident_attr)
PDE_IDENT_ATTR = 0x063
_PAGE_TABLE = 0x067
#: __PAGE_KERNEL_EXEC / __PAGE_KERNEL / _LARGE variants (pgtable_types.h)
PAGE_KERNEL_EXEC = 0x163
PAGE_KERNEL = PAGE_KERNEL_EXEC | _PAGE_NX
PAGE_KERNEL_LARGE_EXEC = 0x1E3
PAGE_KERNEL_LARGE = PAGE_KERNEL_LARGE_EXEC | _PAGE_NX
#: __VMALLOC_RESERVE default (128 MiB, ``vmalloc=``), pgtable_32.c
VMALLOC_RESERVE = 128 << 20
#: FIXADDR_TOP (``-PAGE_SIZE``; only reservetop=, Xen and lguest move it with reserve_top_address)
FIXADDR_TOP = fixmap32.FIXADDR_TOP
#: the lowest boot-time fixmap page of a 3.13 distro build (P = 235: "fixmap : 0xfff14000 -
#: 0xfffff000", 256 FIX_BTMAP slots; E = 492): kept for callers that infer a geometry from a
#: 3.x log (emu.boot.describe); the emulation's own default is resolve_geometry_32's
DEFAULT_FIXMAP_BOTTOM = FIXADDR_TOP - 492 * PAGE_SIZE
#: lowmem_pfn_init keeps at least 64 MiB of lowmem when honouring highmem=
MIN_LOWMEM = 64 << 20


def pmd_size(k) -> int:
    return k.mode.pmd_size


def entry_mask(pae: bool) -> int:
    """PTE_PFN_MASK: PAE ``__PHYSICAL_MASK_SHIFT`` 44 (3.x), non-PAE 32 bits."""
    return (((1 << 44) - 1) & ~0xFFF) if pae else 0xFFFFF000


def supported_pte_mask_32(k) -> int:
    """``__supported_pte_mask`` on i386: starts as ``~(_PAGE_NX|_PAGE_GLOBAL)``
    (init_32.c); ``probe_page_size_mask`` ORs GLOBAL with PGE; ``x86_configure_nx``
    ORs NX with CPU NX, which only PAE entries can hold (non-PAE ``_PAGE_NX`` is 0)."""
    cpu = k.params.cpu
    m = _M64 & ~(_PAGE_NX | _PAGE_GLOBAL)
    if cpu.pge:
        m |= _PAGE_GLOBAL
    if k.mode.entry_bytes == 8 and cpu.nx:
        m |= _PAGE_NX
    if k.mode.entry_bytes == 4:
        m &= 0xFFFFFFFF
    return m


def kernel_prot(k, prot: int) -> int:
    """A ``PAGE_KERNEL*`` value as this kernel writes it: 4.17+ masks it with
    ``__default_kernel_pte_mask``, ``pfn_pte`` with ``__supported_pte_mask``."""
    if k.profile.default_kernel_pte_mask and k.params.pti:
        prot &= ~_PAGE_GLOBAL
    if prot & 1:
        prot &= supported_pte_mask_32(k)
    return prot


def kernel_text(k) -> Tuple[int, int]:
    """``is_kernel_text``'s physical ``[_text, __init_end]`` (inclusive), resolved once by
    ``setup_arch`` (the ``init_end`` input, else :func:`default_init_end`)."""
    p = k.params
    return p.kernel_start, p.init_end if p.init_end is not None else default_init_end(k)


def text_range(k) -> Tuple[int, int]:
    """``is_kernel_text``: virtual ``[_text, __init_end]`` (inclusive)."""
    po = k.page_offset
    lo, hi = k.kernel_text
    return (po + lo) & 0xFFFFFFFF, (po + hi) & 0xFFFFFFFF


def default_init_end(k) -> int:
    """pa(__init_end) when not given: two thirds of the way from _text to the BRK
    (text, rodata and init come before data, bss and brk)."""
    s = k.params.kernel_start
    e = k.pgt_buf_start << PAGE_SHIFT
    return s + (((e - s) * 2 // 3) & ~(PAGE_SIZE - 1)) if e > s else s


class MapJob32(MapJob):
    """One i386 ``kernel_physical_mapping_init`` call (see :class:`emu.kernel.arch.x86.mm.init_64.MapJob`)."""

    def __init__(self, k, use_pse: bool) -> None:
        super().__init__(k, 0)
        self.pae = k.mode.entry_bytes == 8
        self.use_pse = bool(use_pse)
        self.align_large = bool(k.profile.i386_align_large_pfn)
        self.page_offset = k.page_offset & 0xFFFFFFFF
        self.text_lo, self.text_hi = text_range(k)
        self.entry_mask = entry_mask(self.pae)
        self.pfn_mask = self.entry_mask
        self.prot4k = kernel_prot(k, PAGE_KERNEL)
        self.prot4k_x = kernel_prot(k, PAGE_KERNEL_EXEC)
        self.protl = kernel_prot(k, PAGE_KERNEL_LARGE)
        self.protl_x = kernel_prot(k, PAGE_KERNEL_LARGE_EXEC)
        self.init4k = PTE_IDENT_ATTR & supported_pte_mask_32(k)
        self.initl = (PTE_IDENT_ATTR | 0x80) & supported_pte_mask_32(k)


def kernel_physical_mapping_init(k, start: int, end: int, page_size_mask: int, prot: int = 0) -> int:
    """``kernel_physical_mapping_init`` (init_32.c): map ``[start, end)`` at ``PAGE_OFFSET``
    in ``swapper_pg_dir``; returns ``last_map_addr``.  ``prot`` is ignored (i386 uses
    ``PAGE_KERNEL*`` by ``is_kernel_text``)."""
    if end > (1 << 32) - k.page_offset or start >= end and start != end:
        raise ValueError(f"[{start:#x}, {end:#x}) does not fit the i386 direct map at {k.page_offset:#x}")
    use_pse = page_size_mask == MASK_2M and k.params.cpu.pse
    if page_size_mask == MASK_2M and not use_pse:
        k.coverage.hit("i386.large_piece_without_pse")  # coverage
    job = MapJob32(k, use_pse)
    try:
        last, p2m, p4k = k.engine.kernel_physical_mapping_init_32(job, k.pgd_pfn, start, end)
    except KernelPanic:
        job.flush()
        raise
    job.flush()
    update_page_count(k, PG_LEVEL_2M, p2m)
    update_page_count(k, PG_LEVEL_4K, p4k)
    return last


def map_pieces(k, pieces, prot: int) -> int:
    """``kernel_physical_mapping_init`` for each piece of one ``init_memory_mapping`` call."""
    ret = 0
    for start, end, mask in pieces:
        ret = kernel_physical_mapping_init(k, start, end, mask, prot)
    return ret


# ---------------------------------------------------------------------------
# lowmem / highmem
# ---------------------------------------------------------------------------
def _say(k, field: str, value: str, why: str) -> None:
    """Record a defaulted input once (``k.assumptions``; see emu.kernel.params)."""
    if not any(a.field == field for a in k.assumptions):
        k.assumptions.append(Assumption(field, value, why))


def typical_layout(k) -> fixmap32.Layout32:
    """The geometry of a typical build of this profile's version in this paging mode
    (:func:`emu.kernel.arch.x86.fixmap.typical_layout_32`)."""
    return fixmap32.typical_layout_32(k.profile, k.mode.entry_bytes == 8)


def resolve_geometry_32(k) -> None:
    """Fill the fixmap inputs the emulation reads and nobody gave, recording each default:

    * nothing of the fixmap given (``fixmap_bottom`` and ``btmap_begin`` None): the
      lowest boot-time slot, ``FIX_BTMAP_BEGIN`` and the kmap slots of a typical build of
      this version (:func:`typical_layout`; era rules of ``Profile.i386_*``);
    * only ``fixmap_bottom``: ``FIX_BTMAP_BEGIN`` is the slot above it (FIX_WP_TEST alone
      below it, no CONFIG_INTEL_TXT); only ``btmap_begin``: the slot below it is the lowest;
    * a given geometry without ``kmap_range`` keeps the kmap slots in one PMD (no copies).

    Idempotent: once filled, the fields are inputs like any other."""
    p = k.params
    upd: Dict[str, object] = {}
    if p.fixmap_bottom is None and p.btmap_begin is None:
        lay = typical_layout(k)
        short = "the fixmap of a typical %s build (see fixmap_bottom)" % k.profile.name
        upd["fixmap_bottom"] = lay.fixmap_bottom
        _say(k, "fixmap_bottom", "%#x" % lay.fixmap_bottom, "the fixmap of a typical %s build (%s): %s, %s; "
             "no --config" % (k.profile.name, fixmap32.TYPICAL_CONFIG_WHY, lay.why["end_permanent"].split(":")[0],
                              lay.why["end"].split(":")[0]))
        upd["btmap_begin"] = lay.btmap_begin
        _say(k, "btmap_begin", "%#x" % lay.btmap_begin, "%s: %s; no --config" % (short, lay.why["btmap_end_idx"]))
        if p.kmap_range is None and lay.kmap_range is not None and lay.kmap_idx is not None:
            upd["kmap_range"] = lay.kmap_range
            if p.highmem_config:
                _say(k, "kmap_range", "[%#x, %#x]" % lay.kmap_range, "%s: slots %d..%d; no --config" % (
                    short, lay.kmap_idx[0], lay.kmap_idx[1]))
    elif p.btmap_begin is None:
        above = (p.fixmap_bottom + PAGE_SIZE) & 0xFFFFFFFF
        upd["btmap_begin"] = above
        _say(k, "btmap_begin", "%#x" % above, "the slot above fixmap_bottom (only FIX_WP_TEST below "
             "FIX_BTMAP_BEGIN: no CONFIG_INTEL_TXT); no --config")
    elif p.fixmap_bottom is None:
        below = (p.btmap_begin - PAGE_SIZE) & 0xFFFFFFFF
        upd["fixmap_bottom"] = below
        _say(k, "fixmap_bottom", "%#x" % below, "FIX_WP_TEST, the slot below btmap_begin "
             "(no CONFIG_INTEL_TXT); no --config")
    if "kmap_range" not in upd and p.kmap_range is None and p.highmem_config:
        _say(k, "kmap_range", "one PMD", "the kmap slots inside one PMD, so page_table_kmap_check copies nothing; "
             "no --config and no kmap_range")
    if upd:
        k.params = dataclasses.replace(p, **upd)


def _default_below(k) -> Tuple[Dict[str, Tuple[Optional[int], str]], "fixmap32.Layout32", int]:
    resolve_geometry_32(k)
    p = k.params
    lay = typical_layout(k)
    tot = (p.fixmap_bottom - PAGE_SIZE) & 0xFFFFFFFF
    below = fixmap32.below_fixmap_32(k.profile, k.mode.entry_bytes == 8, bool(p.highmem_config),
                                     lay.nr_cpus or 0, lay.fixaddr_start, tot)
    return below, lay, tot


def default_maxmem(k) -> Tuple[int, str]:
    """``MAXMEM`` when ``lowmem_limit`` was not given, and why: the era's rule
    (:func:`emu.kernel.arch.x86.fixmap.below_fixmap_32`) on this boot's fixmap bottom
    (FIXADDR_TOT_START / FIXADDR_BOOT_START = the page below ``fixmap_bottom``) with a
    typical build's FIXADDR_START and NR_CPUS, CONFIG_HIGHMEM as given, this boot's
    PAGE_OFFSET and the default 128 MiB ``__VMALLOC_RESERVE``."""
    below, lay, tot = _default_below(k)
    vend = below["vmalloc_end"][0]
    assert vend is not None
    m = vend - k.page_offset - VMALLOC_RESERVE
    if m <= 0:
        raise ValueError("PAGE_OFFSET %#x leaves no lowmem below VMALLOC_END %#x" % (k.page_offset, vend))
    rule = k.profile.i386_pkmap_rule
    pk = below["pkmap_base"][0]
    assert pk is not None
    why = ("MAXMEM (%dMB) = VMALLOC_END %#x - PAGE_OFFSET - 128 MiB, PKMAP_BASE %#x (%s rule from the fixmap "
           "bottom%s); no --config, no 'LOWMEM available' line"
           % (m >> 20, vend, pk, rule, "" if rule == "boot" else " and a typical build's %s" % (
               "FIXADDR_START" if rule == "permanent" else "NR_CPUS %s" % lay.nr_cpus)))
    return m, why


def default_pkmap_base(k) -> int:
    """``PKMAP_BASE`` by the era's rule for this boot's fixmap (see :func:`default_maxmem`)."""
    pk = _default_below(k)[0]["pkmap_base"][0]
    assert pk is not None
    return pk


def maxmem(k) -> int:
    """``MAXMEM`` = ``VMALLOC_END - PAGE_OFFSET - __VMALLOC_RESERVE``: the ``lowmem_limit``
    input, else :func:`default_maxmem` (the era's rule: pgtable_32_types.h 3.10.99 L40-53,
    3.19.8 L40-47, 4.14.67 L41-58, 4.19.72 L43-71; pgtable_32_areas.h 6.1.119 L21-51).
    Debian 5.10/6.1 (NR_CPUS 32): 0x36ffe000 (879 MiB, PAE), 0x36bfe000 (875 MiB); a 3.13
    build with 235 permanent slots: 0x37bfe000 (891 MiB), 0x377fe000 (887 MiB)."""
    if k.params.lowmem_limit is not None:
        return k.params.lowmem_limit
    return default_maxmem(k)[0]


def _say_maxmem(k) -> None:
    if k.params.lowmem_limit is None:
        m, why = default_maxmem(k)
        _say(k, "lowmem_limit", "%#x" % m, why)


def find_low_pfn_range(k, max_pfn: int) -> Tuple[int, int]:
    """``find_low_pfn_range`` (init_32.c, 3.x-4.19): ``(max_low_pfn, max_pfn)``.

    All RAM below ``MAXMEM``: ``lowmem_pfn_init`` (``highmem=`` carves highmem out of
    it, keeping at least 64 MiB of lowmem); else ``highmem_pfn_init``: lowmem ends at
    ``MAXMEM_PFN``, ``highmem=`` may shrink ``max_pfn``.
    """
    resolve_geometry_32(k)
    maxmem_pfn = maxmem(k) >> PAGE_SHIFT
    if max_pfn > maxmem_pfn:
        _say_maxmem(k)                      # lowmem ends at MAXMEM: the default decides
    hm = k.params.highmem
    highmem_pages = -1 if hm is None else hm >> PAGE_SHIFT
    if max_pfn <= maxmem_pfn:
        k.coverage.hit("i386.lowmem_only")  # coverage
        max_low_pfn = max_pfn
        if highmem_pages == -1:
            highmem_pages = 0
        if highmem_pages >= max_pfn:
            k.coverage.hit("i386.highmem_too_big")  # coverage
            k.log.printk("err", "highmem size (%dMB) is bigger than pages available (%dMB)!"
                         % (highmem_pages >> 8, max_pfn >> 8))
            highmem_pages = 0
        if highmem_pages:
            if max_low_pfn - highmem_pages < (MIN_LOWMEM >> PAGE_SHIFT):
                k.coverage.hit("i386.highmem_lowmem_lt64M")  # coverage
                k.log.printk("err", "highmem size (%dMB) results in <64MB lowmem, ignoring it!"
                             % (highmem_pages >> 8))
                highmem_pages = 0
            max_low_pfn -= highmem_pages
        return max_low_pfn, max_pfn
    max_low_pfn = maxmem_pfn
    k.coverage.hit("i386.highmem")  # coverage
    if highmem_pages == -1:
        highmem_pages = max_pfn - maxmem_pfn
    if highmem_pages + maxmem_pfn < max_pfn:
        max_pfn = maxmem_pfn + highmem_pages
    if highmem_pages + maxmem_pfn > max_pfn:
        k.coverage.hit("i386.highmem_ignored")  # coverage
        k.log.printk("warn", "only %dMB highmem pages available, ignoring highmem size of %dMB!"
                     % ((max_pfn - maxmem_pfn) >> 8, highmem_pages >> 8))
    if k.mode.entry_bytes == 4 and max_pfn > (1 << 20):
        k.coverage.hit("i386.only_4GB")  # coverage
        max_pfn = 1 << 20   # !CONFIG_HIGHMEM64G: "only 4GB will be used"
    return max_low_pfn, max_pfn


def memblock_x86_fill_32(k) -> None:
    """``memblock_x86_fill`` (3.x) on i386: non-PAE ``resource_size_t`` is 32 bits, so an
    entry whose end does not fit (end > 0xffffffff, end exclusive) is skipped."""
    from emu.kernel.arch.x86.kernel.e820 import E820_RAM, E820_RESERVED_KERN
    for e in k.e820.entries:
        if e.type not in (E820_RAM, E820_RESERVED_KERN):
            continue
        if k.mode.entry_bytes == 4 and e.addr + e.size > 0xFFFFFFFF:
            k.coverage.hit("i386.memblock_skip_above_4G")  # coverage
            continue
        k.memblock.add(e.addr, e.size)
    if k.profile.memblock_trim:
        k.memblock.trim_memory(PAGE_SIZE)


# ---------------------------------------------------------------------------
# the fixmap page tables
# ---------------------------------------------------------------------------
def pde_ident_attr(k) -> int:
    """``PDE_IDENT_ATTR`` of this version (0x067 up to 3.14, 0x063 from 3.15:
    ``Profile.i386_pde_ident_attr``; pgtable_types.h 3.14.1 L223, 3.15.5 L218)."""
    return k.profile.i386_pde_ident_attr


def fixmap_bottom(k) -> int:
    """vaddr of the lowest boot-time fixmap slot (``__end_of_fixed_addresses - 1``): the
    ``fixmap_bottom`` input or :func:`resolve_geometry_32`'s default."""
    resolve_geometry_32(k)
    return k.params.fixmap_bottom & 0xFFFFFFFF


def btmap_begin(k) -> int:
    """vaddr of ``FIX_BTMAP_BEGIN`` (early_ioremap's first slot): the ``btmap_begin`` input,
    or :func:`resolve_geometry_32`'s default."""
    resolve_geometry_32(k)
    return k.params.btmap_begin & 0xFFFFFFFF


def fixmap_static_tables(k) -> List[Tuple[int, str, int]]:
    """The fixmap PMD entries written before ``init_mem_mapping``, in the kernel's order, as
    ``(PMD vaddr, page, entry flags)``: head_32 points the top PMD at ``initial_pg_fixmap``
    (``PDE_IDENT_ATTR`` of the version); ``early_ioremap_init`` points the PMD of
    ``FIX_BTMAP_BEGIN`` at ``bm_pte`` with ``pmd_populate_kernel`` (``_PAGE_TABLE``),
    replacing the former when both share a PMD.  An explicit ``fixmap_static_pmds`` input:
    those PMDs, each with a ``PDE_IDENT_ATTR`` entry (page ``static``)."""
    p = k.params
    m = ~(pmd_size(k) - 1) & 0xFFFFFFFF
    attr = pde_ident_attr(k)
    if p.fixmap_static_pmds is not None:
        return [(v, "static", attr) for v in fixmap_static_pmds(k)]
    return [(FIXADDR_TOP & m, "initial_pg_fixmap", attr), (btmap_begin(k) & m, "bm_pte", _PAGE_TABLE)]


def fixmap_static_pmds(k) -> List[int]:
    """PMDs (vaddr) of the fixmap with a page table in the kernel image before
    ``init_mem_mapping``: head_32's ``initial_pg_fixmap`` (the top PMD) and
    ``early_ioremap_init``'s ``bm_pte`` (the FIX_BTMAP_BEGIN PMD)."""
    p = k.params
    if p.fixmap_static_pmds is not None:
        return sorted({v & ~(pmd_size(k) - 1) & 0xFFFFFFFF for v in p.fixmap_static_pmds})
    m = ~(pmd_size(k) - 1) & 0xFFFFFFFF
    return sorted({FIXADDR_TOP & m, btmap_begin(k) & m})


def fixmap_start(k) -> int:
    """The lowest virtual address of the fixmap's page tables: the PMD of its lowest
    boot-time slot, or of a static fixmap table below it."""
    bottom = fixmap_bottom(k) & ~(pmd_size(k) - 1)
    return min(fixmap_static_pmds(k) + [bottom])


def _pgd_shift(k) -> int:
    return 30 if k.mode.entry_bytes == 8 else 22


def _read(k, pfn: int, i: int) -> int:
    t = k.phys.table(pfn)
    return int(t[i]) if k.mode.entry_bytes == 8 else int(t.view(np.uint32)[i])


def _write(k, pfn: int, i: int, v: int) -> None:
    t = k.phys.table(pfn)
    if k.mode.entry_bytes == 8:
        t[i] = v
    else:
        t.view(np.uint32)[i] = v & 0xFFFFFFFF


def _pmd_slot(k, vaddr: int, alloc) -> Tuple[int, int]:
    """(table pfn, index) of the PMD entry of ``vaddr``; ``one_md_table_init`` for PAE."""
    em = entry_mask(k.mode.entry_bytes == 8)
    if k.mode.entry_bytes == 4:
        return k.pgd_pfn, (vaddr >> 22) & 1023
    gi = (vaddr >> 30) & 3
    e = _read(k, k.pgd_pfn, gi)
    if not e & 1:
        pmd = alloc(1, 2)
        _write(k, k.pgd_pfn, gi, (pmd << PAGE_SHIFT) | 0x001)
    else:
        pmd = (e & em) >> PAGE_SHIFT
    return pmd, (vaddr >> 21) & 511


def page_table_range_init(k, start: int, end: int) -> None:
    """``page_table_range_init`` (init_32.c 3.10.99, 6.1.119 L208-239): make sure every PMD
    of ``[start, end)`` (``end`` 0 means 4 GiB) has a page table; with CONFIG_HIGHMEM and
    kmap slots spread over more than one PMD (``page_table_range_init_count``, L127-156),
    those PMDs get fresh pages from one ``alloc_low_pages(count)`` and their current page
    table is copied over (``page_table_kmap_check``, L158-197)."""
    from emu.kernel.arch.x86.mm.init import alloc_low_pages
    resolve_geometry_32(k)
    p = k.params
    psize = pmd_size(k)
    em = entry_mask(k.mode.entry_bytes == 8)
    kmap = p.kmap_range if p.highmem_config else None   # #if defined(CONFIG_HIGHMEM)
    kslots: Optional[Tuple[int, int]] = None     # the kmap PMDs, when more than one
    if kmap is not None and kmap[0] // psize != kmap[1] // psize:
        kslots = (kmap[0] // psize, kmap[1] // psize)

    def in_kmap(v: int) -> bool:
        return kslots is not None and kslots[0] <= v // psize <= kslots[1]

    vaddr = start
    pmds = []
    while True:
        pmds.append(vaddr)
        vaddr = (vaddr + psize) & 0xFFFFFFFF
        if vaddr == end or vaddr == 0:
            break
    count = sum(1 for v in pmds if in_kmap(v))
    adr = alloc_low_pages(k, count, 1) if count else 0

    def alloc(num, level):
        return alloc_low_pages(k, num, level)

    for v in pmds:
        tpfn, i = _pmd_slot(k, v, alloc)
        e = _read(k, tpfn, i)
        if not e & 1:
            pte = alloc_low_pages(k, 1, 1)
            _write(k, tpfn, i, (pte << PAGE_SHIFT) | _PAGE_TABLE)
        else:
            pte = (e & em) >> PAGE_SHIFT
        if in_kmap(v):
            k.coverage.hit("i386.kmap_copy")  # coverage
            k.phys.table(adr)[:] = k.phys.table(pte)
            _write(k, tpfn, i, (adr << PAGE_SHIFT) | _PAGE_TABLE)
            k.i386_orphans.add(pte)
            adr += 1


def early_ioremap_page_table_range_init(k) -> None:
    """``early_ioremap_page_table_range_init`` (init_32.c 3.10.99 L519-532, 6.1.119
    L508-521): page tables for the fixmap, from the PMD of its lowest boot-time slot
    (``__fix_to_virt(__end_of_fixed_addresses - 1) & PMD_MASK``) up to ``FIXADDR_TOP``
    (3.9+: called once, at the end of ``init_mem_mapping``)."""
    psize = pmd_size(k)
    vaddr = fixmap_bottom(k) & ~(psize - 1) & 0xFFFFFFFF
    end = (FIXADDR_TOP + psize - 1) & ~(psize - 1) & 0xFFFFFFFF
    page_table_range_init(k, vaddr, end)


# ---------------------------------------------------------------------------
# after init_mem_mapping: native_pagetable_init, paging_init
# ---------------------------------------------------------------------------
def pkmap_base(k) -> int:
    """``PKMAP_BASE`` (CONFIG_HIGHMEM), consistent with :func:`maxmem`: ``MAXMEM +
    PAGE_OFFSET + __VMALLOC_RESERVE + 2*PAGE_SIZE`` (VMALLOC_END = PKMAP_BASE - 2 pages)."""
    return (maxmem(k) + k.page_offset + VMALLOC_RESERVE + 2 * PAGE_SIZE) & 0xFFFFFFFF


def initmem_init(k) -> None:
    """``initmem_init`` (init_32.c, !NUMA, 3.x): prints ``%ldMB HIGHMEM available.``
    (CONFIG_HIGHMEM; ``max_pfn - max_low_pfn`` when there is highmem) and ``%ldMB LOWMEM
    available.`` (KERN_NOTICE, ``pages_to_mb``)."""
    if k.params.highmem_config:
        high = k.max_pfn - k.max_low_pfn if k.max_pfn > k.max_low_pfn else 0
        k.log.printk("notice", "%dMB HIGHMEM available." % (high >> (20 - PAGE_SHIFT)))
    k.log.printk("notice", "%dMB LOWMEM available." % (k.max_low_pfn >> (20 - PAGE_SHIFT)))


def native_pagetable_init(k) -> None:
    """``native_pagetable_init`` (init_32.c, 3.9-4.19; ``x86_init.paging.pagetable_init``,
    run by ``setup_arch`` after ``initmem_init``): clear the PTEs head_32 left above
    ``max_low_pfn`` (KERN_DEBUG "clearing pte ..." per PTE; a large PMD there is a BUG),
    then ``paging_init``.  Not part of ``init_mem_mapping``: callers run it explicitly
    (``emu.tools.replay`` does for i686 logs)."""
    em = entry_mask(k.mode.entry_bytes == 8)
    po = k.page_offset
    pae = k.mode.entry_bytes == 8
    for pfn in range(k.max_low_pfn, 1 << (32 - PAGE_SHIFT)):
        va = (po + (pfn << PAGE_SHIFT)) & 0xFFFFFFFF
        if pae:
            pgd = _read(k, k.pgd_pfn, va >> 30)
            if not pgd & 1:
                break
            pmd_pfn, pmd_i = (pgd & em) >> PAGE_SHIFT, (va >> 21) & 511
        else:
            pmd_pfn, pmd_i = k.pgd_pfn, va >> 22
        pmd = _read(k, pmd_pfn, pmd_i)
        if not pmd & 1:
            break
        esz = k.mode.entry_bytes
        pmd_pa = (pmd_pfn << PAGE_SHIFT) + pmd_i * esz
        if pmd & 0x80:
            line = ("try to clear pte for ram above max_low_pfn: pfn: %x pmd: %08x pmd phys: %x, but pmd is big "
                    "page and is not using pte !" % (pfn, (pmd_pa + po) & 0xFFFFFFFF, pmd_pa))
            k.log.printk("warn", line)
            bug = "kernel BUG at arch/x86/mm/init_32.c: native_pagetable_init: BUG_ON(1)"
            k.log.printk("emerg", bug)
            k.panic = bug
            raise KernelPanic(bug)
        pte_pfn, pte_i = (pmd & em) >> PAGE_SHIFT, (va >> 12) & (511 if pae else 1023)
        if not k.phys.is_backed(pte_pfn) or not _read(k, pte_pfn, pte_i) & 1:
            break
        pte_pa = (pte_pfn << PAGE_SHIFT) + pte_i * esz
        k.log.printk("debug", "clearing pte for ram above max_low_pfn: pfn: %x pmd: %08x pmd phys: %x pte: %08x "
                     "pte phys: %x" % (pfn, (pmd_pa + po) & 0xFFFFFFFF, pmd_pa, (pte_pa + po) & 0xFFFFFFFF, pte_pa))
        _write(k, pte_pfn, pte_i, 0)
    paging_init(k)


def paging_init(k) -> None:
    """``paging_init`` -> ``pagetable_init`` -> ``permanent_kmaps_init`` (CONFIG_HIGHMEM): the
    page table of the pkmap area, ``[PKMAP_BASE, PKMAP_BASE + LAST_PKMAP pages)``."""
    if not k.params.highmem_config:
        return
    _say_maxmem(k)                          # PKMAP_BASE comes from MAXMEM
    last_pkmap = 512 if k.mode.entry_bytes == 8 else 1024
    base = pkmap_base(k)
    page_table_range_init(k, base, (base + last_pkmap * PAGE_SIZE) & 0xFFFFFFFF)


__all__ = [
    "default_maxmem", "fixmap_bottom", "pde_ident_attr", "resolve_geometry_32", "typical_layout",
    "early_ioremap_page_table_range_init", "find_low_pfn_range", "kernel_physical_mapping_init", "maxmem",
    "initmem_init", "memblock_x86_fill_32", "native_pagetable_init", "page_table_range_init", "paging_init", "pkmap_base",
    "supported_pte_mask_32",
]
