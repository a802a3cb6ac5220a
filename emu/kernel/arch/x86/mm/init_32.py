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
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np

from emu.kernel.arch.x86.pgtable_types import MASK_2M, PAGE_SHIFT, PAGE_SIZE, PG_LEVEL_2M, PG_LEVEL_4K, _PAGE_GLOBAL, _PAGE_NX
from emu.kernel.printk import KernelPanic
from emu.kernel.arch.x86.mm.init_64 import MapJob
from emu.kernel.arch.x86.mm.pageattr import update_page_count

_M64 = (1 << 64) - 1
PTE_IDENT_ATTR = 0x003      # head_32.S / pgtable_types.h
PDE_IDENT_ATTR = 0x063
_PAGE_TABLE = 0x067
#: __PAGE_KERNEL_EXEC / __PAGE_KERNEL / _LARGE variants (pgtable_types.h)
PAGE_KERNEL_EXEC = 0x163
PAGE_KERNEL = PAGE_KERNEL_EXEC | _PAGE_NX
PAGE_KERNEL_LARGE_EXEC = 0x1E3
PAGE_KERNEL_LARGE = PAGE_KERNEL_LARGE_EXEC | _PAGE_NX
#: __VMALLOC_RESERVE default (128 MiB, ``vmalloc=``), pgtable_32.c
VMALLOC_RESERVE = 128 << 20
#: FIXADDR_TOP (``-PAGE_SIZE``; only Xen/lguest move it with reserve_top_address)
FIXADDR_TOP = 0xFFFFF000
#: default lowest boot-time fixmap page: __end_of_fixed_addresses ~ 492 pages (a distro
#: 3.13 PAE build prints "fixmap : 0xfff14000 - 0xfffff000", plus 256 FIX_BTMAP slots)
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
def default_pkmap_base(k) -> int:
    """PKMAP_BASE of a build whose boot-time fixmap fits its top PMD:
    ``(FIXADDR_BOOT_START - PAGE_SIZE*(LAST_PKMAP+1)) & PMD_MASK`` (pgtable_32_types.h)."""
    last_pkmap = 512 if k.mode.entry_bytes == 8 else 1024
    bottom = k.params.fixmap_bottom if k.params.fixmap_bottom is not None else DEFAULT_FIXMAP_BOTTOM
    return (bottom - PAGE_SIZE * (last_pkmap + 1)) & ~(pmd_size(k) - 1) & 0xFFFFFFFF


def maxmem(k) -> int:
    """``MAXMEM`` = ``VMALLOC_END - PAGE_OFFSET - __VMALLOC_RESERVE`` with ``VMALLOC_END =
    PKMAP_BASE - 2*PAGE_SIZE`` (CONFIG_HIGHMEM), or the ``lowmem_limit`` input.
    3G/1G defaults: 0x37bfe000 (891 MiB, PAE) and 0x377fe000 (887 MiB, non-PAE), the
    values most of the corpus' i686 logs show ("891MB LOWMEM available")."""
    if k.params.lowmem_limit is not None:
        return k.params.lowmem_limit
    return default_pkmap_base(k) - 2 * PAGE_SIZE - k.page_offset - VMALLOC_RESERVE


def find_low_pfn_range(k, max_pfn: int) -> Tuple[int, int]:
    """``find_low_pfn_range`` (init_32.c, 3.x-4.19): ``(max_low_pfn, max_pfn)``.

    All RAM below ``MAXMEM``: ``lowmem_pfn_init`` (``highmem=`` carves highmem out of
    it, keeping at least 64 MiB of lowmem); else ``highmem_pfn_init``: lowmem ends at
    ``MAXMEM_PFN``, ``highmem=`` may shrink ``max_pfn``.
    """
    maxmem_pfn = maxmem(k) >> PAGE_SHIFT
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
def btmap_begin(k) -> int:
    """vaddr of ``FIX_BTMAP_BEGIN`` (early_ioremap's first slot): the ``btmap_begin`` input, or
    the slot above ``fixmap_bottom`` (5.x/6.x: only ``FIX_WP_TEST`` lies below it)."""
    p = k.params
    if p.btmap_begin is not None:
        return p.btmap_begin & 0xFFFFFFFF
    bottom = p.fixmap_bottom if p.fixmap_bottom is not None else DEFAULT_FIXMAP_BOTTOM
    return (bottom + PAGE_SIZE) & 0xFFFFFFFF


def fixmap_static_tables(k) -> List[Tuple[int, str, int]]:
    """The fixmap PMD entries written before ``init_mem_mapping``, in the kernel's order, as
    ``(PMD vaddr, page, entry flags)``: head_32 points the top PMD at ``initial_pg_fixmap``
    (``PDE_IDENT_ATTR``); ``early_ioremap_init`` points the PMD of ``FIX_BTMAP_BEGIN`` at
    ``bm_pte`` with ``pmd_populate_kernel`` (``_PAGE_TABLE``), replacing the former when
    both share a PMD.  An explicit ``fixmap_static_pmds`` input: those PMDs, each with a
    ``PDE_IDENT_ATTR`` entry (page ``static``)."""
    p = k.params
    m = ~(pmd_size(k) - 1) & 0xFFFFFFFF
    if p.fixmap_static_pmds is not None:
        return [(v, "static", PDE_IDENT_ATTR) for v in fixmap_static_pmds(k)]
    return [(FIXADDR_TOP & m, "initial_pg_fixmap", PDE_IDENT_ATTR), (btmap_begin(k) & m, "bm_pte", _PAGE_TABLE)]


def fixmap_static_pmds(k) -> List[int]:
    """PMDs (vaddr) of the fixmap with a page table in the kernel image before
    ``init_mem_mapping``: head_32's ``initial_pg_fixmap`` (the top PMD) and
    ``early_ioremap_init``'s ``bm_pte`` (the FIX_BTMAP_BEGIN PMD, at the fixmap's bottom)."""
    p = k.params
    if p.fixmap_static_pmds is not None:
        return sorted({v & ~(pmd_size(k) - 1) & 0xFFFFFFFF for v in p.fixmap_static_pmds})
    m = ~(pmd_size(k) - 1) & 0xFFFFFFFF
    return sorted({FIXADDR_TOP & m, btmap_begin(k) & m})


def fixmap_start(k) -> int:
    """The lowest virtual address of the fixmap's page tables: the PMD of its lowest
    boot-time slot, or of a static fixmap table below it."""
    p = k.params
    bottom = DEFAULT_FIXMAP_BOTTOM if p.fixmap_bottom is None else p.fixmap_bottom & ~(pmd_size(k) - 1)
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
    """``page_table_range_init``: make sure every PMD of ``[start, end)`` (``end`` 0 means
    4 GiB) has a page table; with CONFIG_HIGHMEM and kmap slots spread over more than
    one PMD, those PMDs get fresh pages from one ``alloc_low_pages(count)`` and their
    current page table is copied over (``page_table_kmap_check``)."""
    from emu.kernel.arch.x86.mm.init import alloc_low_pages
    p = k.params
    psize = pmd_size(k)
    em = entry_mask(k.mode.entry_bytes == 8)
    kmap = p.kmap_range
    kb = ke = None
    if kmap is not None:
        kb, ke = kmap[0] // psize, kmap[1] // psize
        if kb == ke:
            kb = ke = None
    vaddr = start
    pmds = []
    while True:
        pmds.append(vaddr)
        vaddr = (vaddr + psize) & 0xFFFFFFFF
        if vaddr == end or vaddr == 0:
            break
    count = sum(1 for v in pmds if kb is not None and kb <= v // psize <= ke)
    adr = alloc_low_pages(k, count, 1) if count else None

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
        if kb is not None and kb <= v // psize <= ke:
            k.coverage.hit("i386.kmap_copy")  # coverage
            k.phys.table(adr)[:] = k.phys.table(pte)
            _write(k, tpfn, i, (adr << PAGE_SHIFT) | _PAGE_TABLE)
            k.i386_orphans.add(pte)
            adr += 1


def early_ioremap_page_table_range_init(k) -> None:
    """``early_ioremap_page_table_range_init``: page tables for the fixmap, from the
    PMD of its lowest boot-time slot up to ``FIXADDR_TOP`` (3.9+: called once, at the
    end of ``init_mem_mapping``)."""
    p = k.params
    psize = pmd_size(k)
    bottom = p.fixmap_bottom if p.fixmap_bottom is not None else DEFAULT_FIXMAP_BOTTOM
    vaddr = bottom & ~(psize - 1) & 0xFFFFFFFF
    end = (FIXADDR_TOP + psize - 1) & ~(psize - 1) & 0xFFFFFFFF
    page_table_range_init(k, vaddr, end)


# ---------------------------------------------------------------------------
# after init_mem_mapping: native_pagetable_init, paging_init
# ---------------------------------------------------------------------------
def pkmap_base(k) -> int:
    """``PKMAP_BASE``, consistent with :func:`maxmem`: ``MAXMEM + PAGE_OFFSET +
    __VMALLOC_RESERVE + 2*PAGE_SIZE``."""
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
    last_pkmap = 512 if k.mode.entry_bytes == 8 else 1024
    base = pkmap_base(k)
    page_table_range_init(k, base, (base + last_pkmap * PAGE_SIZE) & 0xFFFFFFFF)


__all__ = [
    "early_ioremap_page_table_range_init", "find_low_pfn_range", "kernel_physical_mapping_init", "maxmem",
    "initmem_init", "memblock_x86_fill_32", "native_pagetable_init", "page_table_range_init", "paging_init", "pkmap_base",
    "supported_pte_mask_32",
]
