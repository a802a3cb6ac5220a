"""arch/x86/mm/init_64.c: ``kernel_physical_mapping_init`` and its level helpers.

The per-entry loops run in ``emu._fast`` (or ``emu._reference``): one call
fills a whole run of entries of one table page and returns only where the
kernel would allocate, descend or split, so Python work is per table page,
never per entry.  Rules (3.9 .. 6.6, init_64.c):

* an entry past the requested end is zeroed unless e820 has RAM or
  RESERVED_KERN in its block (``!after_bootmem``);
* a present entry is reused: a table is descended into, a large leaf is kept
  (and counted) when that page size is allowed, else split into a new table
  with the leaf's own flags minus PSE;
* an empty entry gets a large leaf when allowed, else a new table page from
  ``alloc_low_pages``;
* the return value is the last physical address mapped (``paddr_last``),
  which can lie past ``end`` when a large leaf covers it.
"""
from __future__ import annotations

from .. import backend
from ..pgtable import (
    MASK_1G,
    MASK_2M,
    PAGE_SHIFT,
    PG_LEVEL_1G,
    PG_LEVEL_2M,
    PG_LEVEL_4K,
    PMD_SHIFT,
    PTE_PFN_MASK,
    PUD_SHIFT,
    _PAGE_PSE,
    _PAGE_TABLE,
    __PAGE_KERNEL_LARGE,
    massage_pgprot,
    pte_clrhuge,
    pte_pgprot,
)
from .pageattr import update_page_count

_M64 = (1 << 64) - 1
P4D_SHIFT = 39
PGDIR_SHIFT_4 = 39
PGDIR_SHIFT_5 = 48


def _alloc(k, level: int) -> int:
    from .init import alloc_low_pages  # init.c owns the allocator
    return alloc_low_pages(k, 1, level)


def phys_pte_init(k, pte_pfn: int, paddr: int, paddr_end: int, prot: int) -> int:
    """``phys_pte_init``: 4K entries of one PTE page."""
    table = k.phys.table(pte_pfn)
    idx = (paddr >> PAGE_SHIFT) & 511
    last, pages = backend.current().pte_fill(
        table, idx, paddr, paddr_end, massage_pgprot(prot, k.supported_pte_mask),
        PTE_PFN_MASK, k.after_bootmem, k.ram_s, k.ram_e)
    update_page_count(k, PG_LEVEL_4K, pages)
    return last


def _large_leaf_flags(k, level: int, prot: int) -> int:
    if level == 2:
        return massage_pgprot(prot | _PAGE_PSE, k.supported_pte_mask)
    # PUD: PAGE_KERNEL_LARGE (masked by __default_kernel_pte_mask from 4.17),
    # or from 5.8 on ``prot | __PAGE_KERNEL_LARGE`` (re-adds GLOBAL under PTI)
    if k.profile.pud_large_from_prot:
        return massage_pgprot(prot | __PAGE_KERNEL_LARGE, k.supported_pte_mask)
    large = __PAGE_KERNEL_LARGE
    if k.profile.default_kernel_pte_mask:
        large &= k.default_kernel_pte_mask
    return massage_pgprot(large, k.supported_pte_mask)


def _phys_large_level(k, level: int, table_pfn: int, paddr: int, paddr_end: int,
                      page_size_mask: int, prot: int) -> int:
    """``phys_pud_init`` (level 3) and ``phys_pmd_init`` (level 2)."""
    fast = backend.current()
    shift = PUD_SHIFT if level == 3 else PMD_SHIFT
    size = 1 << shift
    large_ok = bool(page_size_mask & (MASK_1G if level == 3 else MASK_2M))
    leaf_flags = _large_leaf_flags(k, level, prot)
    # the kernel indexes the PUD page by virtual address (pud_index(__va(paddr)))
    idx = ((k.page_offset + paddr) >> shift) & 511 if level == 3 else (paddr >> shift) & 511
    last = paddr_end
    pages = 0
    while True:
        table = k.phys.table(table_pfn)  # re-fetched: allocations may move the frame pool
        ev, idx, paddr, last, n = fast.level_scan(
            table, idx, paddr, paddr_end, shift, large_ok, leaf_flags, PTE_PFN_MASK,
            k.after_bootmem, k.ram_s, k.ram_e, last)
        pages += n
        if ev == fast.EVENT_DONE:
            break
        entry = int(table[idx])
        nxt = (paddr & ~(size - 1) & _M64) + size
        if ev == fast.EVENT_DESCEND:
            child = (entry & PTE_PFN_MASK) >> PAGE_SHIFT
            last = _descend(k, level - 1, child, paddr, paddr_end, page_size_mask, prot)
        else:
            child_prot = prot if ev == fast.EVENT_ALLOC else pte_pgprot(pte_clrhuge(entry))
            child = _alloc(k, level - 1)
            last = _descend(k, level - 1, child, paddr, paddr_end, page_size_mask, child_prot)
            k.phys.table(table_pfn)[idx] = (child << PAGE_SHIFT) | _PAGE_TABLE  # pud/pmd_populate
        idx += 1
        paddr = nxt
    update_page_count(k, PG_LEVEL_1G if level == 3 else PG_LEVEL_2M, pages)
    return last


def _descend(k, level: int, pfn: int, paddr: int, paddr_end: int, page_size_mask: int, prot: int) -> int:
    if level == 1:
        return phys_pte_init(k, pfn, paddr, paddr_end, prot)
    return _phys_large_level(k, level, pfn, paddr, paddr_end, page_size_mask, prot)


def phys_pmd_init(k, pmd_pfn: int, paddr: int, paddr_end: int, page_size_mask: int, prot: int) -> int:
    """``phys_pmd_init``: 2M leaves or PTE pages of one PMD page."""
    return _phys_large_level(k, 2, pmd_pfn, paddr, paddr_end, page_size_mask, prot)


def phys_pud_init(k, pud_pfn: int, paddr: int, paddr_end: int, page_size_mask: int, prot: int) -> int:
    """``phys_pud_init``: 1G leaves or PMD pages of one PUD page."""
    return _phys_large_level(k, 3, pud_pfn, paddr, paddr_end, page_size_mask, prot)


def phys_p4d_init(k, p4d_pfn: int, paddr: int, paddr_end: int, page_size_mask: int, prot: int) -> int:
    """``phys_p4d_init`` (5-level paging): PUD pages of one P4D page, for the
    P4D entries the range covers (zeroing non-RAM ones past the end)."""
    vaddr = k.page_offset + paddr
    vaddr_end = k.page_offset + paddr_end
    size = 1 << P4D_SHIFT
    last = paddr_end
    while vaddr < vaddr_end:
        idx = (vaddr >> P4D_SHIFT) & 511
        vnext = (vaddr & ~(size - 1) & _M64) + size
        pa = vaddr - k.page_offset
        entry = int(k.phys.table(p4d_pfn)[idx])
        if entry:
            last = phys_pud_init(k, (entry & PTE_PFN_MASK) >> PAGE_SHIFT, pa, paddr_end, page_size_mask, prot)
        else:
            pud = _alloc(k, 3)
            last = phys_pud_init(k, pud, pa, paddr_end, page_size_mask, prot)
            k.phys.table(p4d_pfn)[idx] = (pud << PAGE_SHIFT) | _PAGE_TABLE
        vaddr = vnext
    return last


def kernel_physical_mapping_init(k, paddr_start: int, paddr_end: int, page_size_mask: int, prot: int) -> int:
    """``kernel_physical_mapping_init`` (x86-64): map [paddr_start, paddr_end)
    at ``PAGE_OFFSET + pa`` in ``init_top_pgt``; returns ``paddr_last``."""
    vaddr = k.page_offset + paddr_start
    vaddr_end = k.page_offset + paddr_end
    five = k.paging_levels == 5
    shift = PGDIR_SHIFT_5 if five else PGDIR_SHIFT_4
    size = 1 << shift
    last = paddr_end
    child_init = phys_p4d_init if five else phys_pud_init
    while vaddr < vaddr_end:
        idx = (vaddr >> shift) & 511
        vnext = (vaddr & ~(size - 1) & _M64) + size
        pa = vaddr - k.page_offset
        entry = int(k.phys.table(k.pgd_pfn)[idx])
        if entry:
            last = child_init(k, (entry & PTE_PFN_MASK) >> PAGE_SHIFT, pa, paddr_end, page_size_mask, prot)
        else:
            child = _alloc(k, 4 if five else 3)
            last = child_init(k, child, pa, paddr_end, page_size_mask, prot)
            k.phys.table(k.pgd_pfn)[idx] = (child << PAGE_SHIFT) | _PAGE_TABLE  # pgd/p4d_populate
        vaddr = vnext
    return last
