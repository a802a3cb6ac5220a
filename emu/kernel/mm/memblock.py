"""memblock: the boot-time memory allocator (mm/memblock.c).

Two region lists, ``memory`` and ``reserved``; free memory is ``memory``
minus ``reserved``.  Regions are kept sorted and merged with touching
neighbours, as ``memblock_add_range`` does when node id and flags match (at
``init_mem_mapping`` time every region has nid MAX_NUMNODES and no flags).
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Tuple

PAGE_SIZE = 4096
PHYS_ADDR_MAX = (1 << 64) - 1
MEMBLOCK_ALLOC_ACCESSIBLE = 0


def round_down(x: int, a: int) -> int:
    return x - (x % a)


def round_up(x: int, a: int) -> int:
    return -(-x // a) * a


class RegionList:
    """A sorted list of disjoint, merged ``[base, end)`` regions (``struct memblock_type``)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.bases: List[int] = []
        self.ends: List[int] = []

    def __len__(self) -> int:
        return len(self.bases)

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        return iter(zip(self.bases, self.ends))

    def copy(self) -> "RegionList":
        r = RegionList(self.name)
        r.bases, r.ends = list(self.bases), list(self.ends)
        return r

    def add(self, base: int, size: int) -> None:
        """``memblock_add_range``: insert and merge with overlapping or touching regions."""
        if size <= 0:
            return
        end = min(base + size, PHYS_ADDR_MAX)  # memblock_cap_size
        # regions that overlap or touch [base, end)
        lo = bisect_left(self.ends, base)
        hi = bisect_right(self.bases, end)
        if lo < hi:
            base = min(base, self.bases[lo])
            end = max(end, self.ends[hi - 1])
        self.bases[lo:hi] = [base]
        self.ends[lo:hi] = [end]

    def remove(self, base: int, size: int) -> None:
        """``memblock_remove_range`` / ``memblock_free``: cut [base, base+size) out."""
        if size <= 0:
            return
        end = min(base + size, PHYS_ADDR_MAX)
        lo = bisect_right(self.ends, base)
        hi = bisect_left(self.bases, end)
        if lo >= hi:
            return
        nb: List[int] = []
        ne: List[int] = []
        if self.bases[lo] < base:
            nb.append(self.bases[lo])
            ne.append(base)
        if self.ends[hi - 1] > end:
            nb.append(end)
            ne.append(self.ends[hi - 1])
        self.bases[lo:hi] = nb
        self.ends[lo:hi] = ne

    def contains(self, base: int, size: int) -> bool:
        """True if one single region contains [base, base+size)."""
        i = bisect_right(self.bases, base) - 1
        return i >= 0 and self.ends[i] >= base + size and self.ends[i] > base

    def overlaps(self, base: int, size: int) -> bool:
        i = bisect_right(self.ends, base)
        return i < len(self.bases) and self.bases[i] < base + size

    def total(self) -> int:
        return sum(e - b for b, e in self)

    def to_json(self) -> List[List[int]]:
        return [[b, e - b] for b, e in self]


@dataclass
class Memblock:
    """``struct memblock``: memory and reserved lists plus allocation policy.

    ``bottom_up`` is memblock's direction (``movable_node``); ``kernel_end``
    is ``__pa_symbol(_end)``, the lower clamp of bottom-up searches in
    3.13–5.10 (``bottom_up_clamp``).
    """

    memory: RegionList = field(default_factory=lambda: RegionList("memory"))
    reserved: RegionList = field(default_factory=lambda: RegionList("reserved"))
    current_limit: int = PHYS_ADDR_MAX
    bottom_up: bool = False
    kernel_end: int = 0
    bottom_up_clamp: bool = True
    warnings: List[str] = field(default_factory=list)

    # -- region list operations -----------------------------------------------
    def add(self, base: int, size: int) -> None:
        self.memory.add(base, size)

    def reserve(self, base: int, size: int) -> None:
        self.reserved.add(base, size)

    def free(self, base: int, size: int) -> None:
        self.reserved.remove(base, size)

    def remove(self, base: int, size: int) -> None:
        self.memory.remove(base, size)

    def trim_memory(self, align: int) -> None:
        """``memblock_trim_memory``: shrink each region to ``align`` boundaries."""
        out = RegionList("memory")
        for b, e in self.memory:
            nb, ne = round_up(b, align), round_down(e, align)
            if ne > nb:
                out.add(nb, ne - nb)
        self.memory = out

    def is_region_memory(self, base: int, size: int) -> bool:
        """``memblock_is_region_memory``: one memory region holds [base, base+size)."""
        end = base + size
        if end > PHYS_ADDR_MAX:
            end = PHYS_ADDR_MAX
        # RegionList.contains(base, end - base), inlined (split_mem_range asks for each piece)
        mem = self.memory
        i = bisect_right(mem.bases, base) - 1
        if i < 0:
            return False
        e = mem.ends[i]
        return e >= end and e > base

    def is_region_reserved(self, base: int, size: int) -> bool:
        return self.reserved.overlaps(base, size)

    def for_each_mem_pfn_range(self) -> Iterator[Tuple[int, int]]:
        """Memory regions as pfn ranges ``[PFN_UP(base), PFN_DOWN(end))``, ascending."""
        for b, e in self.memory:
            s, t = -(-b // PAGE_SIZE), e // PAGE_SIZE
            if s < t:
                yield s, t

    def mem_pfn_ranges_meeting(self, start: int, end: int) -> List[Tuple[int, int]]:
        """:meth:`for_each_mem_pfn_range` restricted to the regions that meet ``[start, end)``
        (a list, taken now): the others' pfn ranges cannot meet it either, so a caller that
        clips each range to ``[start, end)`` and skips the empty ones sees the same ranges."""
        mem = self.memory
        lo = bisect_right(mem.ends, start)
        hi = bisect_left(mem.bases, end)
        out = []
        for b, e in zip(mem.bases[lo:hi], mem.ends[lo:hi]):
            s, t = -(-b // PAGE_SIZE), e // PAGE_SIZE
            if s < t:
                out.append((s, t))
        return out

    # -- free ranges ---------------------------------------------------------
    def free_ranges(self) -> Iterator[Tuple[int, int]]:
        """Free ranges (memory minus reserved), ascending (``for_each_free_mem_range``)."""
        rb, re_ = self.reserved.bases, self.reserved.ends
        for mb, me in self.memory:
            i = bisect_right(re_, mb)
            cur = mb
            while i < len(rb) and rb[i] < me:
                if rb[i] > cur:
                    yield cur, rb[i]
                cur = max(cur, re_[i])
                i += 1
            if cur < me:
                yield cur, me

    def free_ranges_reverse(self, start: int = 0, end: int = PHYS_ADDR_MAX) -> Iterator[Tuple[int, int]]:
        """Free ranges from the top down (``for_each_free_mem_range_reverse``), restricted to [start, end)."""
        rb, re_ = self.reserved.bases, self.reserved.ends
        mi = bisect_left(self.memory.bases, end) - 1
        while mi >= 0:
            mb, me = self.memory.bases[mi], self.memory.ends[mi]
            if me <= start:
                return
            i = bisect_left(rb, me) - 1
            cur = me
            while i >= 0 and re_[i] > mb:
                if re_[i] < cur:
                    yield re_[i], cur
                cur = min(cur, rb[i])
                i -= 1
            if cur > mb:
                yield mb, cur
            mi -= 1

    def free_range_containing(self, addr: int) -> Optional[Tuple[int, int]]:
        """The free range (memory minus reserved) that contains ``addr``, if any."""
        mi = bisect_right(self.memory.bases, addr) - 1
        if mi < 0 or self.memory.ends[mi] <= addr:
            return None
        lo, hi = self.memory.bases[mi], self.memory.ends[mi]
        rb, re_ = self.reserved.bases, self.reserved.ends
        i = bisect_right(rb, addr) - 1
        if i >= 0 and re_[i] > addr:
            return None  # addr itself is reserved
        if i >= 0:
            lo = max(lo, re_[i])
        if i + 1 < len(rb):
            hi = min(hi, rb[i + 1])
        return lo, hi

    # -- searches -------------------------------------------------------------
    def _find_top_down(self, start: int, end: int, size: int, align: int) -> int:
        for this_start, this_end in self.free_ranges_reverse(start, end):
            # clamp(this_start, start, end), clamp(this_end, start, end)
            if this_start < start:
                this_start = start
            if this_start > end:
                this_start = end
            if this_end < start:
                this_end = start
            if this_end > end:
                this_end = end
            if this_end < size:
                continue
            cand = round_down(this_end - size, align)
            if cand >= this_start:
                return cand
        return 0

    def _find_bottom_up(self, start: int, end: int, size: int, align: int) -> int:
        for this_start, this_end in self.free_ranges():
            this_start = min(max(this_start, start), end)
            this_end = min(max(this_end, start), end)
            cand = round_up(this_start, align)
            if cand < this_end and this_end - cand >= size:
                return cand
        return 0

    def find_bottom_up(self, start: int, end: int, size: int, align: int) -> int:
        """First fit from ``start`` upwards (2.6.x ``find_e820_area`` over free memory)."""
        return self._find_bottom_up(max(start, PAGE_SIZE), end, size, align)

    def find_in_range(self, start: int, end: int, size: int, align: int) -> int:
        """``memblock_find_in_range``: highest (top-down) or lowest (bottom-up)
        ``align``-aligned free block of ``size`` bytes in [start, end); 0 if none."""
        if end == MEMBLOCK_ALLOC_ACCESSIBLE:
            end = self.current_limit
        start = max(start, PAGE_SIZE)  # avoid allocating the first page
        end = max(start, end)
        if self.bottom_up:
            if self.bottom_up_clamp:
                if end > self.kernel_end:
                    bottom_up_start = max(start, self.kernel_end)
                    ret = self._find_bottom_up(bottom_up_start, end, size, align)
                    if ret:
                        return ret
                    msg = "memblock: bottom-up allocation failed, memory hotremove may be affected"
                    if msg not in self.warnings:
                        self.warnings.append(msg)
            else:
                return self._find_bottom_up(start, end, size, align)
        return self._find_top_down(start, end, size, align)

    def phys_alloc_range(self, size: int, align: int, start: int, end: int) -> int:
        """``memblock_phys_alloc_range``: find + reserve; 0 on failure."""
        addr = self.find_in_range(start, end, size, align)
        if addr:
            self.reserve(addr, size)
        return addr

    def copy(self) -> "Memblock":
        m = Memblock(self.memory.copy(), self.reserved.copy(), self.current_limit,
                     self.bottom_up, self.kernel_end, self.bottom_up_clamp, list(self.warnings))
        return m

    def to_json(self) -> dict:
        return {"memory": self.memory.to_json(), "reserved": self.reserved.to_json()}

