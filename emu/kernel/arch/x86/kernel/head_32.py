"""arch/x86/kernel/head_32.S: the initial page tables of an i386 kernel, and the
page-table state ``setup_arch`` hands to ``init_mem_mapping``.

``startup_32`` (3.6 ``New-B/Linux3.6``; same scheme through 4.x) fills whole page
tables of ``PTE_IDENT_ATTR`` (0x003) PTEs from ``__brk_base`` on, mapping physical
``[0, pa(_end) + MAPPING_BEYOND_END)`` rounded up to what the last page table covers
(2 MiB PAE, 4 MiB non-PAE), and points ``PDE_IDENT_ATTR`` (0x063) entries at them, at
virtual 0 (identity) and at ``PAGE_OFFSET``:

* PAE: the entries go into ``initial_pg_pmd`` (static, ``KPMDS`` pages) from its
  first entry; ``initial_page_table`` points its kernel PGD slots (and slot 0, for the
  identity map) at those PMD pages with ``PGD_IDENT_ATTR`` (0x001);
* non-PAE: ``initial_page_table`` entry ``i`` and ``PAGE_OFFSET/4M + i``.

The end pfn goes to ``max_pfn_mapped`` (printed by ``setup_arch`` as ``initial memory
mapped: [mem 0x00000000-%#010lx]``), the end of the tables to ``_brk_end``.  The last
PMD of the fixmap gets the static ``initial_pg_fixmap`` page.  4.11+ does the same in C
(``mk_early_pgtbl_32``, head32.c), the fixmap entry still in head_32.S; checked against
Debian's 6.1 686/686-pae kernels by ``emu oracle``.  Later BRK users (``extend_brk``: DMI,
5.x+) sit between ``_brk_end`` and the page-table buffer, so ``__brk_base``
(``BootParams.head_brk_base``) is an input of its own.  ``early_ioremap_init`` then points
the PMD of ``FIX_BTMAP_BEGIN`` at the static ``bm_pte`` (``pmd_populate_kernel``:
``_PAGE_TABLE``, 0x067).  ``setup_arch`` copies the
kernel half of ``initial_page_table`` into ``swapper_pg_dir`` and loads it; that copy
(kernel half only: the identity entries are not in it) is the PGD emu builds on.
``MAPPING_BEYOND_END = PAGE_TABLE_SIZE(LOWMEM_PAGES) << PAGE_SHIFT`` with
``LOWMEM_PAGES = (4G - PAGE_OFFSET) >> 12`` and ``PAGE_TABLE_SIZE(p)`` = ``p/1024``
(non-PAE) or ``p/512 + 4`` (PAE).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from emu.kernel.arch.x86.pgtable_types import PAGE_SHIFT, PAGE_SIZE

PTE_IDENT_ATTR = 0x003
PDE_IDENT_ATTR = 0x063
PGD_IDENT_ATTR = 0x001
SOURCE_HEAD32 = "head_32"     # the initial page tables in BRK
SOURCE_IMAGE = "image"        # static pages of the kernel image (swapper_pg_dir, initial_pg_pmd, ...)


def mapping_beyond_end(pae: bool, page_offset: int) -> int:
    """``MAPPING_BEYOND_END`` in bytes (1 MiB non-PAE, 516 pages PAE for 3G/1G)."""
    lowmem_pages = ((1 << 32) - page_offset) >> PAGE_SHIFT
    pages = lowmem_pages // 512 + 4 if pae else lowmem_pages // 1024
    return pages << PAGE_SHIFT


def initial_mapping_end(pae: bool, page_offset: int, image_end: int) -> int:
    """End (bytes) of head_32's mapping: whole page tables until ``_end + MAPPING_BEYOND_END``."""
    span = (512 if pae else 1024) << PAGE_SHIFT
    limit = image_end + mapping_beyond_end(pae, page_offset)
    return max(1, -(-limit // span)) * span


def image_end_for(pae: bool, page_offset: int, mapped_end: int) -> int:
    """The largest ``pa(_end)`` for which head_32 maps exactly ``[0, mapped_end)``
    (a boot log prints the end, not ``_end``)."""
    return mapped_end - mapping_beyond_end(pae, page_offset)


def head_tables(pae: bool, mapped_end: int) -> int:
    """Number of head_32 page tables for ``[0, mapped_end)``."""
    return mapped_end // ((512 if pae else 1024) << PAGE_SHIFT)


def build_initial_tables(k, brk_base: int, image_end: int, image_pfn: int,
                         fixmap: List[Tuple[int, str, int]],
                         static_addrs: Optional[Dict[str, int]] = None) -> Tuple[int, int]:
    """Write head_32's tables (PTE pages from ``brk_base``, i.e. ``__brk_base``),
    ``swapper_pg_dir`` (with, for PAE, the ``KPMDS`` pages of ``initial_pg_pmd``) and the
    static fixmap page tables ``fixmap`` (:func:`emu.kernel.arch.x86.mm.init_32.fixmap_static_tables`:
    ``(PMD vaddr, page name, entry flags)`` in write order); set ``k.pgd_pfn`` and
    ``k.max_pfn_mapped``, record the static pages in ``k.i386_static``.

    ``static_addrs`` maps ``swapper_pg_dir``, ``initial_pg_pmd``, ``initial_pg_fixmap``,
    ``bm_pte`` to their physical addresses (a build's System.map); a page not named there
    is taken from ``image_pfn`` on, in that order (one page per distinct fixmap PMD).
    Returns ``(mapped_end, _brk_end)``.
    """
    pae = k.mode.entry_bytes == 8
    po = k.page_offset
    addrs = {n: a >> PAGE_SHIFT for n, a in (static_addrs or {}).items() if a is not None}
    mapped_end = initial_mapping_end(pae, po, image_end)
    n = head_tables(pae, mapped_end)
    per = 512 if pae else 1024
    phys = k.phys
    k.i386_static.clear()
    k.i386_orphans.clear()
    base_pfn = brk_base >> PAGE_SHIFT
    # the PTE pages: every entry PTE_IDENT_ATTR, frame after frame
    for t in range(n):
        phys.frame(base_pfn + t)
        first = t * per
        vals = ((np.arange(first, first + per, dtype=np.uint64) << np.uint64(PAGE_SHIFT))
                | np.uint64(PTE_IDENT_ATTR))
        if pae:
            phys.table(base_pfn + t)[:] = vals
        else:
            phys.table32(base_pfn + t)[:] = vals.astype(np.uint32)
        k.i386_static.append((base_pfn + t, 1, SOURCE_HEAD32))
    nxt = image_pfn
    pgd = addrs.get("swapper_pg_dir")
    if pgd is None:
        pgd, nxt = nxt, nxt + 1
    phys.frame(pgd)
    k.pgd_pfn = pgd
    k.i386_static.append((pgd, k.mode.levels, SOURCE_IMAGE))
    if pae:
        kpmds = ((-po) >> 30) & 3 or 4
        first_kpgd = 4 - kpmds
        pmd0 = addrs.get("initial_pg_pmd")
        if pmd0 is None:
            pmd0, nxt = nxt, nxt + kpmds
        pmds = list(range(pmd0, pmd0 + kpmds))
        for i, p in enumerate(pmds):
            phys.frame(p)
            phys.table(pgd)[first_kpgd + i] = (p << PAGE_SHIFT) | PGD_IDENT_ATTR
            k.i386_static.append((p, 2, SOURCE_IMAGE))
        flat = np.concatenate([phys.table(p) for p in pmds])  # copy, written back below
        for t in range(n):
            flat[t] = ((base_pfn + t) << PAGE_SHIFT) | PDE_IDENT_ATTR
        for i, p in enumerate(pmds):
            phys.table(p)[:] = flat[i * 512:(i + 1) * 512]
    else:
        pd = phys.table32(pgd)
        off = (po >> 22) & 1023
        for t in range(n):
            if off + t < 1024:
                pd[off + t] = ((base_pfn + t) << PAGE_SHIFT) | PDE_IDENT_ATTR
    # static page tables of the fixmap (initial_pg_fixmap; early_ioremap_init's bm_pte)
    from emu.kernel.arch.x86.mm.init_32 import _pmd_slot, _write
    pages = {}
    for v, name, _ in fixmap:
        if name in addrs:
            pages[(v, name)] = addrs[name]
    for v in sorted({v for v, name, _ in fixmap if name not in addrs}):
        for v2, name, _ in fixmap:
            if v2 == v and name not in addrs:
                pages[(v2, name)] = nxt
        nxt += 1
    done = set()
    for v, name, flags in fixmap:
        p = pages[(v, name)]
        if p not in done:
            phys.frame(p)
            k.i386_static.append((p, 1, SOURCE_IMAGE))
            done.add(p)
        tpfn, i = _pmd_slot(k, v, None)
        _write(k, tpfn, i, (p << PAGE_SHIFT) | flags)
    k.max_pfn_mapped = mapped_end >> PAGE_SHIFT
    return mapped_end, (base_pfn + n) << PAGE_SHIFT


def static_pages_needed(k) -> int:
    """Kernel-image pages :func:`build_initial_tables` takes from ``image_pfn`` on (those
    whose address is not a boot parameter)."""
    pae = k.mode.entry_bytes == 8
    p = k.params
    n = 0 if p.swapper_pg_dir_addr is not None else 1
    if pae and p.initial_pg_pmd_addr is None:
        n += ((-k.page_offset) >> 30) & 3 or 4
    from emu.kernel.arch.x86.mm.init_32 import fixmap_static_tables
    given = {"initial_pg_fixmap": p.initial_pg_fixmap_addr, "bm_pte": p.bm_pte_addr}
    return n + len({v for v, name, _ in fixmap_static_tables(k) if given.get(name) is None})


def static_addresses(params) -> Dict[str, int]:
    """The static page-table pages whose physical address is a boot parameter."""
    return {n: a for n, a in (("swapper_pg_dir", params.swapper_pg_dir_addr),
                              ("initial_pg_pmd", params.initial_pg_pmd_addr),
                              ("initial_pg_fixmap", params.initial_pg_fixmap_addr),
                              ("bm_pte", params.bm_pte_addr)) if a is not None}


__all__ = ["build_initial_tables", "image_end_for", "static_addresses", "initial_mapping_end",
           "mapping_beyond_end", "PAGE_SIZE"]
