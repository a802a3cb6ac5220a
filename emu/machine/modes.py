"""Paging modes as the MMU sees them: x86-64 4- and 5-level, i386 PAE and 32-bit paging.

Only the hardware's geometry lives here (levels, entry size, entries per table, the
large-page size, physical and linear address widths).  What the kernel does differently
per mode (``#ifdef CONFIG_X86_32``) is written where the kernel writes it, reading
:attr:`PagingMode.is_64bit`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict


@dataclass(frozen=True)
class PagingMode:
    name: str              # as in dumps' meta.json: x86_64-4level, x86_64-5level, i386-pae, i386
    arch: str              # "x86_64" or "i386"
    levels: int            # paging-structure levels the MMU walks
    entry_bytes: int       # 8, or 4 for 32-bit paging
    ptrs_per_table: int    # 512, or 1024 for 32-bit paging
    pmd_shift: int         # large-page shift: 21 (2M), or 22 (4M, 32-bit paging)
    has_1g: bool           # PDPTE leaves (1 GiB pages)
    phys_bits: int         # physical address bits the entry format can hold
    va_bits: int           # linear address bits: 48, 57, or 32

    @property
    def pmd_size(self) -> int:
        return 1 << self.pmd_shift

    @property
    def is_64bit(self) -> bool:
        return self.arch == "x86_64"

    @property
    def top_shift(self) -> int:
        """The span of one top-level entry, as a shift."""
        if self.is_64bit:
            return 12 + 9 * (self.levels - 1)
        return 30 if self.entry_bytes == 8 else 22


X86_64_4LEVEL = PagingMode("x86_64-4level", "x86_64", 4, 8, 512, 21, True, 52, 48)
X86_64_5LEVEL = PagingMode("x86_64-5level", "x86_64", 5, 8, 512, 21, True, 52, 57)
I386_PAE = PagingMode("i386-pae", "i386", 3, 8, 512, 21, False, 36, 32)
I386 = PagingMode("i386", "i386", 2, 4, 1024, 22, False, 32, 32)

MODES: Dict[str, PagingMode] = {m.name: m for m in (X86_64_4LEVEL, X86_64_5LEVEL, I386_PAE, I386)}
