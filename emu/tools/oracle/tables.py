"""Walk the direct-map part of a page-table tree, wherever its pages come from
(guest-physical memory through QEMU, or emu's physical store), into one
comparable form."""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Tuple

PTE_PFN_MASK = 0x000FFFFFFFFFF000
PRESENT = 1
PSE = 1 << 7
#: direct-map PGD slots walked: PAGE_OFFSET's slot and the 127 after it (64 TiB /
#: 32 PiB, the direct map's reserved space in 4/5-level layouts)
DIRECT_MAP_SLOTS = 128
LEVEL_NAMES = {5: "pgd", 4: "p4d", 3: "pud", 2: "pmd", 1: "pte"}


def _shift(level: int, bits: int = 9) -> int:
    return 12 + bits * (level - 1)


@dataclass(frozen=True)
class Format:
    """Entry format of a paging mode."""

    levels: int
    entry_bytes: int = 8
    bits: int = 9              # index bits per level (10 for 32-bit non-PAE)
    top_entries: int = 512     # 4 for the PAE PDPT
    pfn_mask: int = PTE_PFN_MASK
    canonical: bool = True     # 64-bit: sign-extend virtual addresses
    large_levels: Tuple[int, ...] = (2, 3)

    @property
    def ptrs(self) -> int:
        return 1 << self.bits


def format_for(levels: int, pae: bool = True, arch: str = "x86_64") -> Format:
    if arch == "x86_64":
        return Format(levels)
    if pae:
        return Format(3, 8, 9, 4, PTE_PFN_MASK, False, (2,))
    return Format(2, 4, 10, 1024, 0xFFFFF000, False, (2,))


def _canon(va: int, levels: int) -> int:
    top = 47 if levels == 4 else 56
    if va & (1 << top):
        va |= ((1 << 64) - 1) ^ ((1 << (top + 1)) - 1)
    return va


@dataclass
class Tree:
    """Every non-zero entry below the direct-map slots of the top table."""

    levels: int
    cr3_pfn: int
    slots: Tuple[int, int] = (0, 0)
    fmt: Format = None
    #: (level, va) -> raw entry; level is the table's level (PTE = 1, top = levels)
    entries: Dict[Tuple[int, int], int] = field(default_factory=dict)
    #: pfn -> (level, va of the table's first entry); the top table excluded
    tables: Dict[int, Tuple[int, int]] = field(default_factory=dict)

    def name(self, level: int) -> str:
        if level == self.levels:
            return "pgd"
        if self.levels == 4 and level == 4:
            return "p4d"  # not reached
        return LEVEL_NAMES[level]

    def leaves(self) -> List[Tuple[int, int, int, int]]:
        """(va, pa, size, raw) of every present leaf, by address."""
        out = []
        for (lvl, va), raw in self.entries.items():
            if not raw & PRESENT:
                continue
            fmt = self.fmt or Format(self.levels)
            if lvl == 1 or (lvl in fmt.large_levels and raw & PSE):
                pa = raw & fmt.pfn_mask
                size = 1 << _shift(lvl, fmt.bits)
                if lvl > 1:
                    pa &= ~(size - 1)
                out.append((va, pa, size, raw))
        out.sort()
        return out

    def summary(self) -> dict:
        lv: Dict[str, int] = {}
        for _, (lvl, _) in self.tables.items():
            lv[self.name(lvl)] = lv.get(self.name(lvl), 0) + 1
        sizes = {"4k": 0, "2M": 0, "4M": 0, "1G": 0}
        for _, _, size, _ in self.leaves():
            sizes[{1 << 12: "4k", 1 << 21: "2M", 1 << 22: "4M", 1 << 30: "1G"}[size]] += size
        sizes = {k: v for k, v in sizes.items() if v or k in ("4k", "2M", "1G")}
        return {"cr3": self.cr3_pfn << 12, "levels": self.levels, "table_pages": lv,
                "entries": len(self.entries), "mapped_bytes": sizes}


def direct_map_slots(levels: int, page_offset: int = 0) -> Tuple[int, int]:
    """Top-level slots [first, end) holding the direct map: PAGE_OFFSET's slot and the
    127 after it; without a known PAGE_OFFSET, the whole kernel half except slot 511
    (the kernel image), which at ``init_mem_mapping`` holds nothing else."""
    if page_offset:
        first = (page_offset >> _shift(levels)) & 511
        return first, min(512, first + DIRECT_MAP_SLOTS)
    return 256, 511


def walk_tree(read_page: Callable[[int], bytes], cr3_pfn: int, levels: int, page_offset: int = 0,
              slots: Tuple[int, int] = None, fmt: Format = None, top_offset: int = 0) -> Tree:
    """Walk from the top table at ``cr3_pfn`` (``top_offset`` bytes into the page: the
    PAE PDPT is 32-byte aligned) through the top-level ``slots`` [first, end)
    (default: :func:`direct_map_slots`), reading each table page once."""
    fmt = fmt or Format(levels)
    top_shift = _shift(levels, fmt.bits)
    first, end = slots or direct_map_slots(levels, page_offset)
    tree = Tree(levels, cr3_pfn, (first, end), fmt)
    code = "<%d%s" % (fmt.ptrs, "Q" if fmt.entry_bytes == 8 else "I")
    page = read_page(cr3_pfn)
    top = struct.unpack_from("<%d%s" % (fmt.top_entries, code[-1]), page, top_offset)
    stack = []
    for i in range(first, min(end, fmt.top_entries)):
        if top[i]:
            va = i << top_shift
            stack.append((levels, _canon(va, levels) if fmt.canonical else va, top[i]))
    while stack:
        lvl, va, raw = stack.pop()
        tree.entries[(lvl, va)] = raw
        if not raw & PRESENT or lvl == 1 or (lvl in fmt.large_levels and raw & PSE):
            continue
        pfn = (raw & fmt.pfn_mask) >> 12
        if pfn in tree.tables:  # shared table: record, do not loop
            continue
        tree.tables[pfn] = (lvl - 1, va)
        ents = struct.unpack(code, read_page(pfn))
        sh = _shift(lvl - 1, fmt.bits)
        for j in range(fmt.ptrs - 1, -1, -1):
            if ents[j]:
                stack.append((lvl - 1, va + (j << sh), ents[j]))
    return tree


def emu_tree(kernel, slots: Tuple[int, int] = None) -> Tree:
    """The same walk over an emulated kernel's tables (``slots``: as the guest's walk)."""
    phys = kernel.phys
    mode = getattr(kernel, "mode", None)
    fmt = None
    if mode is not None and mode.arch == "i386":
        fmt = format_for(mode.levels, mode.entry_bytes == 8, "i386")

    def read_page(pfn: int) -> bytes:
        return phys.image_bytes(pfn)

    return walk_tree(read_page, kernel.pgd_pfn, kernel.paging_levels, kernel.page_offset, slots, fmt)
