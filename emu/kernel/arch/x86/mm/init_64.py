"""arch/x86/mm/init_64.c: ``kernel_physical_mapping_init`` and its level helpers.

The walk over the levels (``phys_p4d_init``, ``phys_pud_init``,
``phys_pmd_init``, ``phys_pte_init``) runs in ``emu._fast.Mapper`` (or, with
the pure-Python engine, ``emu.machine.reference.map_range``); this module prepares a
:class:`MapJob` and books its results.  Rules (3.9 .. 6.6, init_64.c):

* an entry past the requested end is zeroed unless e820 has an entry of the
  profile's ``e820_keep_types`` in its block (``!after_bootmem``): RAM and
  RESERVED_KERN, ACPI too from 6.11 (5574b368873d), RAM and ACPI from 6.15;
* a present entry is reused: a table is descended into, a large leaf is kept
  (and counted) when that page size is allowed, else split into a new table
  with the leaf's own flags minus PSE;
* an empty entry gets a large leaf when allowed, else a new table page from
  ``alloc_low_pages``;
* the return value is the last physical address mapped (``paddr_last``),
  which can lie past ``end`` when a large leaf covers it.

Page-table pages: the loops take them from the BRK buffer while it may be used
(``pgt_buf_end < pgt_buf_top``, ``can_use_brk_pgt``), then from a *run* of free
memblock pages.  A run is what ``alloc_low_pages``' memblock fallback would
return page after page: the top-down search gives the highest free page in
``[min_pfn_mapped, max_pfn_mapped)``, and once it is reserved the next search
gives the page below it, down to the start of that free range.  ``refill``
evaluates the kernel's fallback (its panics included) whenever a run is used up.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from emu.kernel.arch.x86.pgtable_types import (
    PAGE_SHIFT,
    PAGE_SIZE,
    PG_LEVEL_1G,
    PG_LEVEL_2M,
    PG_LEVEL_4K,
    PTE_PFN_MASK,
    __PAGE_KERNEL_LARGE,
    massage_pgprot,
)
from emu.kernel.printk import KernelPanic
from emu.kernel.arch.x86.mm.pageattr import update_page_count
from emu.machine.abi import COV_COUNT

SRC_BRK = 1
SRC_MEMBLOCK = 2
SRC_PGT_BUF = 3


class MapJob:
    """One ``kernel_physical_mapping_init`` call: inputs, allocator state, outputs."""

    def __init__(self, k, pud_leaf_flags: int) -> None:
        self.k = k
        self.phys = k.phys
        self.levels = k.paging_levels
        self.page_offset = k.page_offset
        self.pfn_mask = PTE_PFN_MASK
        self.supported = k.supported_pte_mask
        self.pud_leaf_flags = pud_leaf_flags
        self.after_bootmem = k.after_bootmem
        # the blocks whose entries survive past a call's end (e820_keep_types)
        self.ram_s = np.ascontiguousarray(k.keep_s, dtype=np.uint64)
        self.ram_e = np.ascontiguousarray(k.keep_e, dtype=np.uint64)
        self.any_s = np.ascontiguousarray(k.any_s, dtype=np.uint64)
        self.any_e = np.ascontiguousarray(k.any_e, dtype=np.uint64)
        prof = k.profile
        self.zero_rest = prof.kpmi_rules == "zero_rest"
        self.p4d_by_vaddr = bool(prof.p4d_walk_by_vaddr)
        # coverage: the loops' decision points (emu.machine.abi.MapCoverage), read by k.coverage
        self.cov = k.coverage.loop_counters(COV_COUNT)
        # the buffer the loops take pages from first: BRK (seed, 3.9+) or the
        # find_early_table_space buffer (<= 3.8), booked as pgt_buf
        self.buf_src = SRC_BRK if prof.scheme == "brk_top_down" else SRC_PGT_BUF
        self.brk_next = k.pgt_buf_end
        self.brk_top = k.pgt_buf_top
        self.brk_ok = bool(k.can_use_brk_pgt)
        self.brk_ge = prof.brk_full_test == "ge"
        self.run_lo = self.run_hi = 0
        cap = 64
        self.out_pfn = np.zeros(cap, np.uint64)
        self.out_level = np.zeros(cap, np.uint8)
        self.out_src = np.zeros(cap, np.uint8)
        self.nout = 0
        self.nflushed = 0
        self.run_top = 0  # end (pfn) of the current run when it was handed out
        self.leaf_key: tuple = ()  # (prot, masks) pud_leaf_flags was computed from (init_64._job)

    def grow_out(self) -> None:
        cap = self.out_pfn.shape[0] * 2
        for name in ("out_pfn", "out_level", "out_src"):
            old = getattr(self, name)
            new = np.zeros(cap, old.dtype)
            new[: old.shape[0]] = old
            setattr(self, name, new)

    def flush(self) -> None:
        """Book the allocations made since the last flush: BRK printk lines,
        memblock reservations, the table-page records."""
        a, b = self.nflushed, self.nout
        if a == b:
            return
        k = self.k
        if self.brk_next > k.pgt_buf_end:
            k.pgt_buf_end = self.brk_next
        if b - a <= 16:   # the common case: a few pages, plain Python is cheaper than numpy
            pl, sl = self.out_pfn[a:b].tolist(), self.out_src[a:b].tolist()
            brk_level = k.profile.log_brk
            printk = k.log.printk
            run_hi = run_lo = -1
            for pfn, s_ in zip(pl, sl):
                if s_ == SRC_BRK:
                    printk(brk_level, "BRK [%#010x, %#010x] PGTABLE" % (pfn << PAGE_SHIFT, ((pfn + 1) << PAGE_SHIFT) - 1))
                elif s_ == SRC_MEMBLOCK:
                    if run_lo >= 0 and pfn == run_lo - 1:
                        run_lo = pfn
                    else:
                        if run_lo >= 0:
                            k.memblock.reserve(run_lo << PAGE_SHIFT, (run_hi - run_lo) << PAGE_SHIFT)
                        run_lo, run_hi = pfn, pfn + 1
            if run_lo >= 0:
                k.memblock.reserve(run_lo << PAGE_SHIFT, (run_hi - run_lo) << PAGE_SHIFT)
            k.table_pages.append_rows(pl, self.out_level[a:b].tolist(), sl, k.pfn_mapped, len(k.calls) - 1)
        else:
            pfns = self.out_pfn[a:b].copy()
            src = self.out_src[a:b].copy()
            brk = pfns[src == SRC_BRK].tolist()
            brk_level = k.profile.log_brk
            for pfn in brk:
                k.log.printk(brk_level, "BRK [%#010x, %#010x] PGTABLE" % (pfn << PAGE_SHIFT, ((pfn + 1) << PAGE_SHIFT) - 1))
            mb = pfns[src == SRC_MEMBLOCK]
            if mb.size:
                # each run is contiguous and descending: reserve it as one region
                runs = np.split(mb, np.nonzero(np.diff(mb.astype(np.int64)) != -1)[0] + 1)
                for r in runs:
                    lo = int(r[-1])
                    k.memblock.reserve(lo << PAGE_SHIFT, (int(r[0]) - lo + 1) << PAGE_SHIFT)
            k.table_pages.append(pfns, self.out_level[a:b].copy(), src, k.pfn_mapped, len(k.calls) - 1)
        self.nflushed = b

    def refill(self) -> None:
        """The memblock fallback of ``alloc_low_pages`` (arch/x86/mm/init.c): called
        when BRK may not be used and the current run is empty."""
        from emu.kernel.arch.x86.mm.init import alloc_fallback_run
        self.flush()
        lo, hi = alloc_fallback_run(self.k)
        self.run_lo, self.run_hi = lo, hi


def _pud_leaf_flags(k, prot: int) -> int:
    """1G leaves: PAGE_KERNEL_LARGE (masked by __default_kernel_pte_mask from 4.17),
    or from 5.8 on ``prot | __PAGE_KERNEL_LARGE`` (which re-adds GLOBAL under PTI)."""
    if k.profile.pud_large_from_prot:
        return massage_pgprot(prot | __PAGE_KERNEL_LARGE, k.supported_pte_mask)
    large = __PAGE_KERNEL_LARGE
    if k.profile.default_kernel_pte_mask:
        large &= k.default_kernel_pte_mask
    return massage_pgprot(large, k.supported_pte_mask)


def _job(k, prot: int) -> MapJob:
    """The kernel's MapJob, created once and re-armed for each call."""
    job = k.__dict__.get("_mapjob")
    # what _pud_leaf_flags reads (the profile is the kernel's for good)
    supported = k.supported_pte_mask
    if job is None:
        job = k._mapjob = MapJob(k, _pud_leaf_flags(k, prot))
        job.leaf_key = (prot, supported, k.default_kernel_pte_mask)
    else:
        key = job.leaf_key
        if key[0] != prot or key[1] != supported or key[2] != k.default_kernel_pte_mask:
            job.pud_leaf_flags = _pud_leaf_flags(k, prot)
            job.leaf_key = (prot, supported, k.default_kernel_pte_mask)
        job.supported = supported
        job.brk_next, job.brk_top = k.pgt_buf_end, k.pgt_buf_top
        job.run_lo = job.run_hi = 0
        job.nout = job.nflushed = 0
    job.brk_ok = bool(k.can_use_brk_pgt)
    return job


def kernel_physical_mapping_init(k, paddr_start: int, paddr_end: int, page_size_mask: int, prot: int) -> int:
    """``kernel_physical_mapping_init`` (x86-64): map [paddr_start, paddr_end) at
    ``PAGE_OFFSET + pa`` in ``init_top_pgt``; returns ``paddr_last``."""
    return map_pieces(k, [(paddr_start, paddr_end, page_size_mask)], prot)


def map_pieces(k, pieces, prot: int) -> int:
    """``kernel_physical_mapping_init`` for each ``(start, end, page_size_mask)`` piece of one
    ``init_memory_mapping`` call, in order; returns the last piece's ``paddr_last``.

    The pieces share one job: allocations are booked (BRK lines, memblock reservations)
    once at the end, or before any memblock search in between, which is when the
    kernel's own order could show.
    """
    job = _job(k, prot)
    try:
        last, (_, p4k, p2m, p1g) = k.engine.map_pieces(job, k.pgd_pfn, pieces, prot)
    except KernelPanic:
        job.flush()
        raise
    if job.nout != job.nflushed:    # (else flush has nothing to book)
        job.flush()
    # (a count of 0 changes nothing)
    if p4k:
        update_page_count(k, PG_LEVEL_4K, p4k)
    if p2m:
        update_page_count(k, PG_LEVEL_2M, p2m)
    if p1g:
        update_page_count(k, PG_LEVEL_1G, p1g)
    return last


__all__ = ["MapJob", "kernel_physical_mapping_init", "map_pieces", "PAGE_SIZE"]


def direct_gbpages(built_default: Optional[bool], option: Optional[bool],
                   cmdline_known: bool = True) -> Tuple[Optional[bool], str]:
    """``direct_gbpages`` as ``probe_page_size_mask`` finds it: ``CONFIG_X86_DIRECT_GBPAGES``
    (``CONFIG_DIRECT_GBPAGES`` before 4.2), overridden by ``gbpages``/``nogbpages``
    (``parse_direct_gbpages_on/off``, init_64.c).  The CPU's 1 GiB pages are a separate
    input.  ``(None, what is missing)`` when unknown."""
    if option is not None:
        return option, ("gbpages" if option else "nogbpages") + " on the command line"
    if not cmdline_known:
        return None, "the command line (gbpages/nogbpages)"
    if built_default is None:
        return None, "the build (CONFIG_X86_DIRECT_GBPAGES)"
    return built_default, "CONFIG_X86_DIRECT_GBPAGES=%s" % ("y" if built_default else "n")
