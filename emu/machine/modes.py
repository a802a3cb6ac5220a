"""Paging modes: what differs between x86-64 (4/5-level) and i386 (PAE / non-PAE).

The kernel expresses these differences with ``#ifdef CONFIG_X86_32`` /
``CONFIG_X86_PAE`` / ``pgtable_l5_enabled()``; emu keeps them here as data, next
to the version profiles (:mod:`emu.kernel.profiles`), so the mapping code reads a
field instead of testing an architecture.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict


@dataclass(frozen=True)
class PagingMode:
    name: str              # as in dumps' meta.json: x86_64-4level, x86_64-5level, i386-pae, i386
    arch: str              # "x86_64" or "i386"
    levels: int            # paging-structure levels the MMU walks
    entry_bytes: int       # 8, or 4 for 32-bit non-PAE
    ptrs_per_table: int    # 512, or 1024 for non-PAE
    pmd_shift: int         # large-page shift: 21 (2M), or 22 (4M non-PAE)
    has_1g: bool           # PUD-level leaves (PG_LEVEL_1G)
    nr_range_mr: int       # NR_RANGE_MR of split_mem_range: 5 (64-bit) or 3 (32-bit)
    #: split_mem_range's 32-bit rules: the first PMD_SIZE is never a large page,
    #: the 2M piece runs to round_down(end, PMD_SIZE) (no 1G / tail-2M pieces)
    split_32bit: bool
    #: init_mem_mapping maps up to max_pfn (64-bit) or max_low_pfn (32-bit, lowmem only)
    map_to_max_low_pfn: bool
    phys_bits: int         # physical address bits the entry format can hold

    @property
    def pmd_size(self) -> int:
        return 1 << self.pmd_shift

    @property
    def is_64bit(self) -> bool:
        return self.arch == "x86_64"


X86_64_4LEVEL = PagingMode("x86_64-4level", "x86_64", 4, 8, 512, 21, True, 5, False, False, 52)
X86_64_5LEVEL = PagingMode("x86_64-5level", "x86_64", 5, 8, 512, 21, True, 5, False, False, 52)
I386_PAE = PagingMode("i386-pae", "i386", 3, 8, 512, 21, False, 3, True, True, 36)
I386 = PagingMode("i386", "i386", 2, 4, 1024, 22, False, 3, True, True, 32)

MODES: Dict[str, PagingMode] = {m.name: m for m in (X86_64_4LEVEL, X86_64_5LEVEL, I386_PAE, I386)}
