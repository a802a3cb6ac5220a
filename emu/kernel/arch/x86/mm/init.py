"""arch/x86/mm/init.c: building the direct mapping at boot.

Each function re-expresses the kernel function of the same name (2.6.31–6.15;
where versions differ, the difference is a field of
:class:`emu.kernel.profiles.Profile`; where x86-64 and i386 differ, a field of
:class:`emu.machine.modes.PagingMode`).  The state the kernel keeps in globals lives in
:class:`emu.kernel.state.Kernel`, passed as ``k``.
"""
from __future__ import annotations

from bisect import bisect_left
from typing import Any, Callable, List, NamedTuple, Optional

from emu.kernel.state import Kernel, MappingCall, MappingWindow
from emu.kernel.mm.memblock import round_down, round_up
from emu.kernel.arch.x86.pgtable_types import (
    MASK_1G,
    MASK_2M,
    PAGE_SHIFT,
    PAGE_SIZE,
    PUD_SIZE,
    _PAGE_GLOBAL,
    _PAGE_NX,
    __PAGE_KERNEL,
)
from emu.kernel.printk import KernelPanic
from emu.kernel.profiles import LEVEL_DEBUG, LEVEL_INFO

ISA_END_ADDRESS = 0x100000
#: a caller's progress callback: called with the bytes of RAM each step mapped (the
#: emulated kernel knows nothing of it; ``emu run`` draws a bar with it)
Progress = Optional[Callable[[int], None]]
STEP_SIZE_SHIFT = 5
_M64 = (1 << 64) - 1
_PFN_4G = 1 << (32 - PAGE_SHIFT)


def panic(k: Kernel, text: str) -> None:
    """``panic()``: log the kernel's line and stop the emulation."""
    line = f"Kernel panic - not syncing: {text}"
    k.coverage.hit("panic:" + _panic_point(text))  # coverage
    k.log.printk("emerg", line)
    k.panic = line
    raise KernelPanic(line)


def _panic_point(text: str) -> str:
    """A panic text as a coverage point (addresses and numbers dropped)."""
    import re
    return re.sub(r"(0x)?[0-9a-f]{4,}|\d+", "N", text)


def _cov_call(k: Kernel, what: str) -> None:
    """Coverage: ``what`` at which ``init_memory_mapping`` call (0-7, then 8+)."""
    n = len(k.calls) - 1
    k.coverage.hit(f"{what}@call{n if n < 8 else '8+'}")


# ---------------------------------------------------------------------------
# Page-size probing
# ---------------------------------------------------------------------------
def probe_page_size_mask(k: Kernel) -> None:
    """``probe_page_size_mask`` (+ ``init_gbpages``, ``x86_configure_nx``).

    2M pages need PSE and no DEBUG_PAGEALLOC; 1G pages need ``direct_gbpages``
    and CPU GB pages (printing "Using GB pages for direct mapping");
    ``__supported_pte_mask`` loses NX without CPU NX and GLOBAL without PGE.
    """
    p, prof, cpu = k.params, k.profile, k.cpu
    k.direct_gbpages = True if p.gbpages is None else p.gbpages
    mask = 0
    if cpu.pse and not p.debug_pagealloc:
        mask |= MASK_2M
    else:
        k.direct_gbpages = False
    supported = _M64
    if not cpu.nx:
        supported &= ~_PAGE_NX
    if not cpu.pge and prof.pge_clears_global:
        supported &= ~_PAGE_GLOBAL
    k.supported_pte_mask = supported
    if k.direct_gbpages and cpu.gbpages:
        k.log.printk(prof.log_gbpages, "Using GB pages for direct mapping")
        mask |= MASK_1G
    else:
        k.direct_gbpages = False
    k.page_size_mask = mask
    default = supported
    if p.pti and prof.default_kernel_pte_mask:
        default &= ~_PAGE_GLOBAL
    k.default_kernel_pte_mask = default


def page_kernel(k: Kernel) -> int:
    """``PAGE_KERNEL`` as this kernel defines it (4.17+: masked by ``__default_kernel_pte_mask``)."""
    if k.profile.default_kernel_pte_mask:
        return __PAGE_KERNEL & k.default_kernel_pte_mask
    return __PAGE_KERNEL


# ---------------------------------------------------------------------------
# Page-table page allocation
# ---------------------------------------------------------------------------
def early_alloc_pgt_buf(k: Kernel, base: int) -> None:
    """``early_alloc_pgt_buf``: the page-table buffer taken from BRK at ``base``."""
    prof, p = k.profile, k.params
    randomize = prof.default_randomize_memory if p.randomize_memory is None else p.randomize_memory
    l5conf = prof.default_5level_config if p.x86_5level_config is None else p.x86_5level_config
    if not k.mode.is_64bit:
        randomize = l5conf = False  # CONFIG_RANDOMIZE_MEMORY and CONFIG_X86_5LEVEL are 64-bit only
    pages = prof.pgt_buf_count(randomize, l5conf)
    k.pgt_buf_start = base >> PAGE_SHIFT
    k.pgt_buf_end = k.pgt_buf_start
    k.pgt_buf_top = k.pgt_buf_start + pages


def _memblock_fallback(k: Kernel, num: int) -> int:
    """The memblock half of ``alloc_low_pages``: the address ``num`` pages would come
    from (not yet reserved), or the version's panic / BUG."""
    prof = k.profile
    pre = prof.alloc_panic_prefix
    lo, hi = k.min_pfn_mapped << PAGE_SHIFT, k.max_pfn_mapped << PAGE_SHIFT
    ret = 0
    if prof.alloc_ran_out_panic and k.min_pfn_mapped >= k.max_pfn_mapped:
        panic(k, f"{pre}: ran out of memory")
    if k.min_pfn_mapped < k.max_pfn_mapped:
        # find + memblock_reserve, or (5.15+) memblock_phys_alloc_range: the same search
        ret = k.memblock.find_in_range(lo, hi, PAGE_SIZE * num, PAGE_SIZE)
    if not ret and prof.alloc_extend_brk_fallback and k.can_use_brk_pgt:
        # extend_brk() after reserve_brk() has run: BUG_ON(_brk_start == 0)
        line = "kernel BUG at arch/x86/kernel/setup.c: extend_brk: BUG_ON(_brk_start == 0)"
        k.coverage.hit("panic:extend_brk BUG")  # coverage
        k.log.printk("emerg", line)
        k.panic = line
        raise KernelPanic(line)
    if not ret:
        panic(k, f"{pre}: can not alloc memory")
    return ret


def alloc_fallback_run(k: Kernel) -> tuple:
    """Pages the memblock fallback of ``alloc_low_pages(1)`` hands out next, as a pfn
    run ``[lo, hi)`` taken from ``hi - 1`` downwards.

    Top-down, the search returns the highest free page of ``[min_pfn_mapped,
    max_pfn_mapped)``; once that page is reserved the same search returns the
    page below it, until the free range (or the window) ends.  Bottom-up
    searches are not run-shaped, so they hand out one page at a time.
    """
    if k.profile.scheme == "early_table_space":
        # <= 3.8 alloc_low_page: the buffer find_early_table_space sized is all there is
        panic(k, f"{k.profile.alloc_panic_prefix}: ran out of memory")
    _cov_fallback(k)  # coverage
    addr = _memblock_fallback(k, 1)
    pfn = addr >> PAGE_SHIFT
    if k.memblock.bottom_up:
        return pfn, pfn + 1
    rng = k.memblock.free_range_containing(addr)
    start = max(rng[0] if rng else addr, k.min_pfn_mapped << PAGE_SHIFT, PAGE_SIZE)
    lo = -(-start // PAGE_SIZE)
    return min(lo, pfn), pfn + 1


def _cov_fallback(k: Kernel) -> None:
    """Coverage of a memblock fallback: why BRK was not used, and the call BRK ran out at."""
    cov = k.coverage
    cov.hit("alloc.memblock_fallback")
    if not k.can_use_brk_pgt:
        cov.hit("alloc.can_use_brk_pgt_false")
    end = k.pgt_buf_end + 1
    full = end > k.pgt_buf_top if k.profile.brk_full_test == "gt" else end >= k.pgt_buf_top
    if full and "brk.exhausted" not in cov.points:
        cov.hit("brk.exhausted")
        _cov_call(k, "brk.exhausted")


def alloc_low_pages(k: Kernel, num: int, level: int) -> int:
    """``alloc_low_pages``: ``num`` zeroed pages for page tables; returns the first pfn.

    BRK first (``pgt_buf``), unless it is full or ``can_use_brk_pgt`` forbids
    it; then memblock, top-down inside ``[min_pfn_mapped, max_pfn_mapped)``
    (memory the new direct map already covers); the version's panics when
    neither works.  (The mapping loops use the same rules in bulk: see
    :mod:`emu.kernel.arch.x86.mm.init_64`.)
    """
    import numpy as np
    prof = k.profile
    end = k.pgt_buf_end + num
    full = end > k.pgt_buf_top if prof.brk_full_test == "gt" else end >= k.pgt_buf_top
    if full or not k.can_use_brk_pgt:
        _cov_fallback(k)  # coverage
        ret = _memblock_fallback(k, num)
        k.memblock.reserve(ret, PAGE_SIZE * num)
        pfn = ret >> PAGE_SHIFT
        src = 2
    else:
        pfn = k.pgt_buf_end
        k.pgt_buf_end += num
        k.log.printk(prof.log_brk, "BRK [%#010x, %#010x] PGTABLE" % (pfn << PAGE_SHIFT, (k.pgt_buf_end << PAGE_SHIFT) - 1))
        src = 1
    for i in range(num):
        k.phys.clear_page(pfn + i)
    pfns = np.arange(pfn, pfn + num, dtype=np.uint64)
    k.table_pages.append(pfns, np.full(num, level, np.uint8), np.full(num, src, np.uint8), k.pfn_mapped,
                         len(k.calls) - 1)
    return pfn


# ---------------------------------------------------------------------------
# Splitting a range by page size
# ---------------------------------------------------------------------------
class MapRange:
    """``struct map_range``."""

    __slots__ = ("start", "end", "page_size_mask")

    def __init__(self, start: int, end: int, page_size_mask: int) -> None:
        self.start = start
        self.end = end
        self.page_size_mask = page_size_mask

    def __repr__(self) -> str:
        return f"MapRange(start={self.start!r}, end={self.end!r}, page_size_mask={self.page_size_mask!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MapRange):
            return NotImplemented
        return (self.start, self.end, self.page_size_mask) == (other.start, other.end, other.page_size_mask)

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass it replaces


def nr_range_mr(k: Kernel) -> int:
    """``NR_RANGE_MR``: pieces ``split_mem_range`` may produce (3 with CONFIG_X86_32, else 5)."""
    return 5 if k.mode.is_64bit else 3


def save_mr(k: Kernel, mr: List[MapRange], start_pfn: int, end_pfn: int, mask: int) -> None:
    if start_pfn < end_pfn:
        if len(mr) >= nr_range_mr(k):
            k.coverage.hit("panic:run out of range for init_memory_mapping")  # coverage
            raise KernelPanic("Kernel panic - not syncing: run out of range for init_memory_mapping")
        mr.append(MapRange(start_pfn << PAGE_SHIFT, end_pfn << PAGE_SHIFT, mask))


def adjust_range_page_size_mask(k: Kernel, mr: List[MapRange], consts: Optional[SplitConsts] = None) -> None:
    """``adjust_range_page_size_mask``: promote a piece whose surrounding
    2M (1G) block is all one memblock memory region; its bounds stay.
    (``consts``: ``_split_consts(k)`` when the caller has it already.)"""
    psm = k.page_size_mask
    if not psm & (MASK_2M | MASK_1G):
        return
    want_2m, want_1g = psm & MASK_2M, psm & MASK_1G
    c = consts or _split_consts(k)
    is_64bit = c.is_64bit
    pmd_mask = c.pmd_size - 1                # PMD_SIZE and PUD_SIZE are powers of two:
    pud_mask = PUD_SIZE - 1            # round_down/round_up are the kernel's masks
    is_region_memory = k.memblock.is_region_memory
    for r in mr:
        mask = r.page_size_mask
        if want_2m and not mask & MASK_2M:
            s = r.start & ~pmd_mask
            e = (r.end + pmd_mask) & ~pmd_mask
            if not is_64bit and (e >> PAGE_SHIFT) > k.max_low_pfn:
                continue  # 32-bit: never past lowmem
            if is_region_memory(s, e - s):
                r.page_size_mask = mask = mask | MASK_2M
                k.coverage.hit("adjust.promote_2M")  # coverage
        if want_1g and not mask & MASK_1G:
            s = r.start & ~pud_mask
            e = (r.end + pud_mask) & ~pud_mask
            if is_region_memory(s, e - s):
                r.page_size_mask = mask | MASK_1G
                k.coverage.hit("adjust.promote_1G")  # coverage


def _merge_ranges(mr: List[MapRange]) -> None:
    """``split_mem_range``'s merging: neighbours that touch and share the page size become one."""
    i = 0
    n = len(mr)
    while i < n - 1:
        a, b = mr[i], mr[i + 1]
        if a.end == b.start and a.page_size_mask == b.page_size_mask:
            b.start = a.start
            del mr[i]
            n -= 1
            continue
        i += 1


def page_size_string(k: Kernel, r: MapRange) -> str:
    mask = r.page_size_mask
    if mask & MASK_1G:
        return "1G"
    if mask & MASK_2M:
        return _split_consts(k).name_2m        # "4M" on i386 non-PAE where the profile says so
    return "4k"


class SplitConsts(NamedTuple):
    """What ``split_mem_range`` and ``init_memory_mapping`` read from the paging mode and the
    profile: fixed for a kernel, so taken once (:func:`_split_consts`)."""

    mode: Any
    profile: Any
    is_64bit: bool
    pmd_size: int                 # PMD_SIZE
    adjusting: bool               # the brk_top_down scheme adjusts page sizes (3.9+)
    adjust_first: bool            # adjust_range_page_size_mask before merging
    page_level: str               # the printk level of the `` page`` lines
    name_2m: str                  # "2M", or "4M" (i386 non-PAE where the profile says so)
    imm_level: str                # the printk level of the ``init_memory_mapping`` line
    early_table_space: bool       # <= 3.8: find_early_table_space
    pmd_pfn_mask: int             # PFN_DOWN(PMD_SIZE) - 1
    pud_pfn_mask: int             # PFN_DOWN(PUD_SIZE) - 1


def _split_consts(k: Kernel) -> SplitConsts:
    """:class:`SplitConsts` of ``k``, kept on the kernel with the mode and profile objects it
    came from (taken again if either is replaced)."""
    c = k.__dict__.get("_split_consts")
    if c is None or c.mode is not k.mode or c.profile is not k.profile:
        mode, prof = k.mode, k.profile
        c = k.__dict__["_split_consts"] = SplitConsts(
            mode, prof, mode.is_64bit, mode.pmd_size, prof.scheme == "brk_top_down",
            prof.split_order == "adjust_merge", prof.log_page_lines,
            "4M" if (mode.pmd_shift == 22 and prof.page_size_4m_string) else "2M",
            prof.log_init_memory_mapping, prof.scheme == "early_table_space",
            (mode.pmd_size >> PAGE_SHIFT) - 1, (PUD_SIZE >> PAGE_SHIFT) - 1)
    return c


def split_mem_range(k: Kernel, start: int, end: int, consts: Optional[SplitConsts] = None) -> List[MapRange]:
    """``split_mem_range``: head 4k, 2M up to the 1G boundary, 1G, tail 2M,
    tail 4k (x86-64); head 4k (the whole first PMD_SIZE when starting at 0),
    large pages, tail 4k (i386); then ``adjust_range_page_size_mask`` and
    merging (order per profile); prints one ``page`` line per piece.
    (``consts``: ``_split_consts(k)`` when the caller has it already.)"""
    mr: List[MapRange] = []
    c = consts or _split_consts(k)
    is_64bit = c.is_64bit
    # PFN_DOWN(PMD_SIZE) and PFN_DOWN(PUD_SIZE) are powers of two: round_up/round_down
    # as the kernel's masks
    pmd_m, pud_m = c.pmd_pfn_mask, c.pud_pfn_mask
    psm = k.page_size_mask
    limit_pfn = end >> PAGE_SHIFT                                         # PFN_DOWN(end)
    # head if not big page alignment
    pfn = start_pfn = start >> PAGE_SHIFT                                 # PFN_DOWN(start)
    if not is_64bit and pfn == 0:
        end_pfn = pmd_m + 1               # PFN_DOWN(PMD_SIZE): the first 2/4M never gets a large page
    else:
        end_pfn = (pfn + pmd_m) & ~pmd_m                                  # round_up(pfn, PFN_DOWN(PMD_SIZE))
    if end_pfn > limit_pfn:
        end_pfn = limit_pfn
    if start_pfn < end_pfn:
        save_mr(k, mr, start_pfn, end_pfn, 0)
        pfn = end_pfn
    # big page (2M) range (up to the first 1G boundary on x86-64)
    start_pfn = (pfn + pmd_m) & ~pmd_m                                    # round_up(pfn, PFN_DOWN(PMD_SIZE))
    limit_down_pmd = limit_pfn & ~pmd_m                                   # round_down(limit_pfn, PFN_DOWN(PMD_SIZE))
    if is_64bit:
        end_pfn = (pfn + pud_m) & ~pud_m                                  # round_up(pfn, PFN_DOWN(PUD_SIZE))
        if end_pfn > limit_down_pmd:
            end_pfn = limit_down_pmd
    else:
        end_pfn = limit_down_pmd
    if start_pfn < end_pfn:
        save_mr(k, mr, start_pfn, end_pfn, psm & MASK_2M)
        pfn = end_pfn
    if is_64bit:
        # big page (1G) range
        start_pfn = (pfn + pud_m) & ~pud_m                                # round_up(pfn, PFN_DOWN(PUD_SIZE))
        end_pfn = limit_pfn & ~pud_m                                      # round_down(limit_pfn, PFN_DOWN(PUD_SIZE))
        if start_pfn < end_pfn:
            save_mr(k, mr, start_pfn, end_pfn, psm & (MASK_2M | MASK_1G))
            pfn = end_pfn
        # tail is not big page (1G) alignment
        start_pfn = (pfn + pmd_m) & ~pmd_m                                # round_up(pfn, PFN_DOWN(PMD_SIZE))
        if start_pfn < limit_down_pmd:
            save_mr(k, mr, start_pfn, limit_down_pmd, psm & MASK_2M)
            pfn = limit_down_pmd
    # tail is not big page (2M) alignment
    save_mr(k, mr, pfn, limit_pfn, 0)

    if c.adjusting and not k.after_bootmem and psm & (MASK_2M | MASK_1G):      # <= 3.8: no adjusting
        if c.adjust_first:
            adjust_range_page_size_mask(k, mr, c)
            if len(mr) > 1:
                _merge_ranges(mr)
        else:
            if len(mr) > 1:
                _merge_ranges(mr)
            adjust_range_page_size_mask(k, mr, c)
    elif len(mr) > 1:
        _merge_ranges(mr)
    # the page lines and the coverage point, with one page_size_string per piece
    printk, page_level = k.log.printk, c.page_level
    sizes = []
    for r in mr:
        size = page_size_string(k, r)
        sizes.append(size)
        printk(page_level, fmt_page_line(k, r, size))
    k.coverage.hit("split:" + "+".join(sizes))  # coverage: the shape
    return mr


def fmt_page_line(k: Kernel, r: MapRange, size: Optional[str] = None) -> str:
    """`` [mem %#010lx-%#010lx] page %s`` (3.5+) or `` %010lx - %010lx page %s`` (<= 3.4).
    ``size``: ``page_size_string(k, r)`` when the caller has it already."""
    if size is None:
        size = page_size_string(k, r)
    if k.profile.log_style == "hex":
        return " %010x - %010x page %s" % (r.start, r.end, size)
    return " [mem %#010x-%#010x] page %s" % (r.start, r.end - 1, size)


def fmt_init_memory_mapping(k: Kernel, start: int, end: int) -> str:
    if k.profile.log_style == "hex":
        return "init_memory_mapping: %016x-%016x" % (start, end)
    return "init_memory_mapping: [mem %#010x-%#010x]" % (start, end - 1)


# ---------------------------------------------------------------------------
# Mapping
# ---------------------------------------------------------------------------
def add_range_with_merge(ranges: list, start: int, end: int) -> list:
    """kernel/range.c ``add_range_with_merge`` + ``clean_sort_range``.

    ``ranges`` as this function returns them (``pfn_mapped``: ascending, neither
    overlapping nor touching): the ranges the new one overlaps or touches are neighbours,
    found by bisection and merged with it in their place (in a new list)."""
    if start >= end:
        return ranges
    i = bisect_left(ranges, (start,))     # the first range starting at or above start
    if i and ranges[i - 1][1] >= start:   # the one below overlaps or touches: absorb
        i -= 1
        s, e = ranges[i]
        start = s
        if e > end:
            end = e
    j = i
    n = len(ranges)
    while j < n:
        s, e = ranges[j]
        if s > end:                       # wholly above, not touching
            break
        if e > end:                       # overlaps or touches: absorb
            end = e
        j += 1
    return ranges[:i] + [(start, end)] + ranges[j:]


def add_pfn_range_mapped(k: Kernel, start_pfn: int, end_pfn: int) -> None:
    """``add_pfn_range_mapped``: record a mapped pfn range; raise ``max_pfn_mapped``."""
    k.pfn_mapped = add_range_with_merge(k.pfn_mapped, start_pfn, end_pfn)
    if end_pfn > k.max_pfn_mapped:
        k.max_pfn_mapped = end_pfn
    if start_pfn < _PFN_4G:
        low = end_pfn if end_pfn < _PFN_4G else _PFN_4G
        if low > k.max_low_pfn_mapped:
            k.max_low_pfn_mapped = low


def init_memory_mapping(k: Kernel, start: int, end: int) -> int:
    """``init_memory_mapping``: map [start, end) in pieces; returns the last mapped pfn.

    <= 3.8 (``early_table_space`` profiles) it first sizes and places its own
    page-table buffer (``find_early_table_space``) and reserves the used part
    of it afterwards; from the seed on, pages come from BRK and memblock and
    the mapped range is recorded (``add_pfn_range_mapped``).
    """
    c = _split_consts(k)
    k.log.printk(c.imm_level, fmt_init_memory_mapping(k, start, end))
    mr = split_mem_range(k, start, end, c)
    pieces = [(r.start, r.end, r.page_size_mask) for r in mr]
    call = MappingCall(start, end, pieces)
    k.calls.append(call)
    early = c.early_table_space
    if early and not k.after_bootmem:
        find_early_table_space(k, mr, start, end)
    ret = 0
    if pieces:
        # kernel_physical_mapping_init of this build (init_64.c or init_32.c), piece by piece
        ret = k.arch_mm.map_pieces(k, pieces, page_kernel(k))
    call.ret = ret
    if early:
        if not k.after_bootmem and k.pgt_buf_end > k.pgt_buf_start:
            # x86_init.mapping.pagetable_reserve: keep the used part of the buffer
            k.memblock.reserve(k.pgt_buf_start << PAGE_SHIFT, (k.pgt_buf_end - k.pgt_buf_start) << PAGE_SHIFT)
    else:
        add_pfn_range_mapped(k, start >> PAGE_SHIFT, ret >> PAGE_SHIFT)
    return ret >> PAGE_SHIFT


def calculate_table_space(k: Kernel, mr: List[MapRange], start: int, end: int) -> int:
    """Bytes of page tables ``find_early_table_space`` sets aside for one call (<= 3.8).

    ``end`` formula (2.6.x-3.4): sized for [0, end) whatever ``start`` is;
    ``ranges`` (844ab6f9): summed over the pieces actually mapped.  32-bit adds one
    PMD_SIZE of PTEs per piece and the fixmap's PTEs.
    """
    mode = k.mode
    pmd_size, esz = mode.pmd_size, mode.entry_bytes
    pse = bool(k.page_size_mask & MASK_2M)
    gb = bool(k.page_size_mask & MASK_1G)

    def pages(n: int) -> int:
        return round_up(n * esz, PAGE_SIZE)

    if k.profile.table_space_formula == "end":
        puds = -(-end // PUD_SIZE)
        pmds = -(-(end % PUD_SIZE) // pmd_size) if gb else -(-end // pmd_size)
        if pse:
            extra = end % pmd_size + (0 if mode.is_64bit else pmd_size)
            ptes = -(-extra // PAGE_SIZE)
        else:
            ptes = -(-end // PAGE_SIZE)
    else:
        puds = pmds = ptes = 0
        for r in mr:
            rng = r.end - r.start
            puds += -(-rng // PUD_SIZE)
            if r.page_size_mask & MASK_1G:
                pmds += -(-(rng % PUD_SIZE) // pmd_size)
            else:
                pmds += -(-rng // pmd_size)
            if r.page_size_mask & MASK_2M:
                extra = rng % pmd_size + (0 if mode.is_64bit else pmd_size)
                ptes += -(-extra // PAGE_SIZE)
            else:
                ptes += -(-rng // PAGE_SIZE)
    tables = pages(puds) + pages(pmds) + pages(ptes)  # 32-bit: the folded pud_t/pgd_t page too (3.6 init.c)
    if not mode.is_64bit:
        tables += pages(k.params.fixmap_ptes)  # for the fixmap (__end_of_fixed_addresses)
    return tables


def find_early_table_space(k: Kernel, mr: List[MapRange], start: int, end: int) -> None:
    """``find_early_table_space`` (<= 3.8): place the call's page-table buffer below
    ``max_pfn_mapped`` — top-down in memblock, or (2.6.x) first fit from 0x8000 —
    and print where it went."""
    tables = calculate_table_space(k, mr, start, end)
    good_end = k.max_pfn_mapped << PAGE_SHIFT
    # the search starts at 0x7000 on 32-bit, 0x8000 on 64-bit (2.6.31 init.c; memblock's
    # 2.6.38 conversion kept that start)
    low = 0x8000 if k.mode.is_64bit else 0x7000
    if k.profile.table_space_search == "e820_bottom_up":
        base = k.memblock.find_bottom_up(low, good_end, tables, PAGE_SIZE)
    else:
        base = k.memblock.find_in_range(low, good_end, tables, PAGE_SIZE)
    if not base:
        panic(k, "Cannot find space for the kernel page tables")
    k.coverage.hit("early_table_space." + ("first" if k.pgt_buf_top == 0 else "again"))  # coverage
    k.pgt_buf_start = base >> PAGE_SHIFT
    k.pgt_buf_end = k.pgt_buf_start
    k.pgt_buf_top = k.pgt_buf_start + (tables >> PAGE_SHIFT)
    if k.profile.log_style == "hex" and k.profile.table_space_formula == "end":
        # (844ab6f9 brought the [mem ...] form of this line along with the ranges formula)
        line = "kernel direct mapping tables up to %x @ %x-%x" % (
            end, k.pgt_buf_start << PAGE_SHIFT, k.pgt_buf_top << PAGE_SHIFT)
    else:
        line = "kernel direct mapping tables up to %#x @ [mem %#010x-%#010x]" % (
            end - 1, k.pgt_buf_start << PAGE_SHIFT, (k.pgt_buf_top << PAGE_SHIFT) - 1)
    k.log.printk(LEVEL_DEBUG, line)


def setup_arch_init_memory_mapping(k: Kernel, progress: Progress = None) -> None:
    """The mapping step of ``setup_arch`` before 3.9: ``init_memory_mapping(0, max_low_pfn)``
    and, on 64-bit with RAM above 4 GiB, ``init_memory_mapping(4G, max_pfn)``
    (arch/x86/kernel/setup.c, 2.6.31-3.8)."""
    probe_page_size_mask(k)
    k.max_low_pfn_mapped = init_memory_mapping(k, 0, k.max_low_pfn << PAGE_SHIFT)
    if progress is not None:
        progress(k.max_low_pfn << PAGE_SHIFT)
    k.max_pfn_mapped = k.max_low_pfn_mapped
    if k.mode.is_64bit and k.max_pfn > k.max_low_pfn:
        k.coverage.hit("pre39.map_above_4G")  # coverage
        k.max_pfn_mapped = init_memory_mapping(k, 1 << 32, k.max_pfn << PAGE_SHIFT)
        if progress is not None:
            progress((k.max_pfn << PAGE_SHIFT) - (1 << 32))
        k.max_low_pfn = k.max_pfn


def init_range_memory_mapping(k: Kernel, r_start: int, r_end: int) -> int:
    """``init_range_memory_mapping``: map the memblock memory inside [r_start, r_end);
    returns the bytes of RAM mapped.  Sets ``can_use_brk_pgt`` per call."""
    mapped = 0
    check_brk = k.profile.can_use_brk_pgt
    for start_pfn, end_pfn in k.memblock.mem_pfn_ranges_meeting(r_start, r_end):
        # clamp(start_pfn << PAGE_SHIFT, r_start, r_end), the same for the end
        start = start_pfn << PAGE_SHIFT
        if start < r_start:
            start = r_start
        if start > r_end:
            start = r_end
        end = end_pfn << PAGE_SHIFT
        if end < r_start:
            end = r_start
        if end > r_end:
            end = r_end
        if start >= end:
            continue
        if check_brk:
            k.can_use_brk_pgt = max(start, k.pgt_buf_end << PAGE_SHIFT) >= min(end, k.pgt_buf_top << PAGE_SHIFT)
            if not k.can_use_brk_pgt:
                k.coverage.hit("can_use_brk_pgt.false")  # coverage
        init_memory_mapping(k, start, end)
        mapped += end - start
        k.can_use_brk_pgt = True
    return mapped


def get_new_step_size(k: Kernel, step_size: int) -> int:
    """Step growth: ``<<= 5`` (old rule) or ``<< (PMD_SHIFT - PAGE_SHIFT - 1)`` (new rule)."""
    shift = STEP_SIZE_SHIFT if k.profile.step_rule == "old" else k.mode.pmd_shift - PAGE_SHIFT - 1
    return (step_size << shift) & _M64


def _grow(k: Kernel, step_size: int, new: int, mapped_before: int) -> int:
    if k.profile.step_rule == "old":
        return get_new_step_size(k, step_size) if new > mapped_before else step_size
    return get_new_step_size(k, step_size) if mapped_before + new >= step_size else step_size


def _round_down64(x: int, a: int) -> int:
    return x & ~((a - 1) & _M64) & _M64


def _find_real_end(k: Kernel, map_start: int, map_end: int) -> int:
    prof, mb = k.profile, k.memblock
    PMD_SIZE = k.mode.pmd_size  # noqa: N806 - the kernel's name, per paging mode
    if prof.real_end_alloc_and_free:
        addr = mb.phys_alloc_range(PMD_SIZE, PMD_SIZE, map_start, map_end)
        if not addr:
            k.coverage.hit("real_end.alloc_failed")  # coverage
        if prof.real_end_check_return and not addr:
            k.coverage.hit("real_end.fallback")  # coverage
            k.log.printk("warn", "Failed to release memory for alloc_low_pages()")
            return max(map_start, round_down(map_end, PMD_SIZE))
        mb.free(addr, PMD_SIZE)  # with addr == 0 this un-reserves [0, 2M) (kernel bug, H14)
        return addr + PMD_SIZE
    addr = mb.find_in_range(map_start, map_end, PMD_SIZE, PAGE_SIZE if prof.real_end_page_aligned else PMD_SIZE)
    if not addr:
        k.coverage.hit("real_end.not_found")  # coverage
    elif addr & (PMD_SIZE - 1):
        k.coverage.hit("real_end.unaligned")  # coverage
    return addr + PMD_SIZE


def _memory_top_below(k: Kernel, addr: int) -> int:
    """End of the highest memblock memory (as ``for_each_mem_pfn_range`` rounds it) below ``addr``."""
    top = 0
    for start_pfn, end_pfn in k.memblock.for_each_mem_pfn_range():
        if (start_pfn << PAGE_SHIFT) >= addr:
            break
        top = min(end_pfn << PAGE_SHIFT, addr)
    return top


def memory_map_top_down(k: Kernel, map_start: int, map_end: int, progress: Progress = None) -> None:
    """``memory_map_top_down``: first a free 2M block at the top, then windows
    growing downwards, each mapped with page tables from what is already
    mapped above it; finally the part above ``real_end``."""
    real_end = _find_real_end(k, map_start, map_end)
    step_size = k.mode.pmd_size
    k.max_pfn_mapped = 0
    k.min_pfn_mapped = real_end >> PAGE_SHIFT
    last_start = real_end
    mapped_ram_size = 0
    while last_start > map_start:
        if last_start > step_size:
            start = _round_down64(last_start - 1, step_size)
            if start < map_start:
                start = map_start
        else:
            start = map_start
        window = MappingWindow(start, last_start, step_size, len(k.calls))
        k.windows.append(window)
        new = init_range_memory_mapping(k, start, last_start)
        window.end_call = len(k.calls)
        last_start = start
        k.min_pfn_mapped = last_start >> PAGE_SHIFT
        grown = _grow(k, step_size, new, mapped_ram_size)
        if new == 0 and grown == step_size and step_size and last_start > map_start:
            # An empty window that left the step alone: every window down to the next
            # memblock memory is empty too and changes nothing but last_start (and
            # min_pfn_mapped).  Skip them in one go (emu's shortcut, same result).
            top = _memory_top_below(k, last_start)
            target = max(map_start, round_up(top, step_size)) if top > map_start else map_start
            if target < last_start:
                last_start = target
                k.min_pfn_mapped = last_start >> PAGE_SHIFT
        if grown != step_size:
            k.coverage.hit(f"step.top_down.{_size_name(grown)}")  # coverage: each step-size growth
        step_size = grown
        mapped_ram_size += new
        if progress is not None:
            progress(new)
    if real_end < map_end:
        k.coverage.hit("top_down.above_real_end")  # coverage
        window = MappingWindow(real_end, map_end, 0, len(k.calls))
        k.windows.append(window)
        new = init_range_memory_mapping(k, real_end, map_end)
        window.end_call = len(k.calls)
        if progress is not None:
            progress(new)


def _size_name(n: int) -> str:
    for shift, unit in ((60, "E"), (50, "P"), (40, "T"), (30, "G"), (20, "M"), (10, "K")):
        if n >= 1 << shift:
            return f"{n >> shift}{unit}"
    return str(n)


def memory_map_bottom_up(k: Kernel, map_start: int, map_end: int, progress: Progress = None) -> None:
    """``memory_map_bottom_up``: windows growing upwards from ``map_start``
    (memblock bottom-up, ``movable_node``)."""
    step_size = k.mode.pmd_size
    start = map_start
    k.min_pfn_mapped = start >> PAGE_SHIFT
    mapped_ram_size = 0
    while start < map_end:
        guard = step_size != 0 or not k.profile.bottom_up_step_guard
        if guard and map_end - start > step_size:
            nxt = round_up(start + 1, step_size) if step_size else 0
            if nxt > map_end:
                nxt = map_end
        else:
            nxt = map_end
        window = MappingWindow(start, nxt, step_size, len(k.calls))
        k.windows.append(window)
        new = init_range_memory_mapping(k, start, nxt)
        window.end_call = len(k.calls)
        start = nxt
        grown = _grow(k, step_size, new, mapped_ram_size)
        if grown != step_size:
            k.coverage.hit(f"step.bottom_up.{_size_name(grown)}")  # coverage
        elif new == 0 and step_size and start < map_end and start % step_size == 0:
            # An empty window that left the step alone: every window up to the next memblock
            # memory is empty too and changes nothing but start.  Skip them in one go (emu's
            # shortcut, as in memory_map_top_down; same result).
            nxt_mem = _memory_start_from(k, start)
            target = map_end if nxt_mem is None else round_down(nxt_mem, step_size)
            if target > start:
                start = min(target, map_end)
        step_size = grown
        mapped_ram_size += new
        if progress is not None:
            progress(new)


def _memory_start_from(k: Kernel, addr: int) -> Optional[int]:
    """The lowest address at or above ``addr`` in memblock memory (as ``for_each_mem_pfn_range``
    rounds it), or None."""
    for start_pfn, end_pfn in k.memblock.for_each_mem_pfn_range():
        if (end_pfn << PAGE_SHIFT) > addr:
            return max(start_pfn << PAGE_SHIFT, addr)
    return None


def init_mem_mapping(k: Kernel, progress: Progress = None) -> None:
    """``init_mem_mapping``: probe page sizes, map the ISA range, then all RAM
    top-down (or bottom-up with ``movable_node``).  For profiles before the
    rewrite, the two ``init_memory_mapping`` calls ``setup_arch`` made instead."""
    try:
        _init_mem_mapping(k, progress)
    finally:
        release_job(k)      # emu's bookkeeping: the mapping loop's state is not kept past the call


def release_job(k: Kernel) -> None:
    """Drop the x86-64 MapJob (``init_64._job``) and the engine's Mapper cached on it once
    ``init_mem_mapping`` is over (a later call makes a new one).  They refer to each other
    and to ``k``: kept, every emulation's state, tables included, waits for the cyclic
    garbage collector instead of going with its result, and the next emulation's store is
    fresh memory (page faults) instead of the memory just freed."""
    job = k.__dict__.pop("_mapjob", None)
    if job is not None:
        job.__dict__.pop("_mapper", None)


def _init_mem_mapping(k: Kernel, progress: Progress) -> None:
    if k.profile.scheme == "early_table_space":
        setup_arch_init_memory_mapping(k, progress)
        return
    probe_page_size_mask(k)
    end = (k.max_pfn if k.mode.is_64bit else k.max_low_pfn) << PAGE_SHIFT   # 32-bit: lowmem only
    init_memory_mapping(k, 0, ISA_END_ADDRESS)
    if k.memblock.bottom_up and k.profile.bottom_up_supported:
        k.coverage.hit("map.bottom_up")  # coverage
        kernel_end = k.kernel_end
        memory_map_bottom_up(k, kernel_end, end, progress)
        memory_map_bottom_up(k, ISA_END_ADDRESS, kernel_end, progress)
    else:
        memory_map_top_down(k, ISA_END_ADDRESS, end, progress)
    if k.mode.is_64bit:
        if k.max_pfn > k.max_low_pfn:
            k.max_low_pfn = k.max_pfn
    else:
        fixmap_tables = k.arch_mm.early_ioremap_page_table_range_init
        assert fixmap_tables is not None, "an i386 build makes the fixmap's page tables"
        fixmap_tables(k)


__all__ = [
    "ISA_END_ADDRESS", "LEVEL_INFO", "MapRange", "add_pfn_range_mapped", "adjust_range_page_size_mask",
    "alloc_low_pages", "early_alloc_pgt_buf", "init_mem_mapping", "init_memory_mapping",
    "init_range_memory_mapping", "memory_map_bottom_up", "memory_map_top_down", "probe_page_size_mask",
    "split_mem_range",
]
