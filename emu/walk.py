"""The hardware page walk (Intel SDM vol. 3A §4.5–4.7) over emulated physical RAM.

:func:`translate` takes one address or a numpy array of them and walks them
all in one compiled call; :func:`enumerate_tables` visits every present
entry below CR3 and returns maximal runs of leaves plus the table pages.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Union

import numpy as np

from . import backend
from .pgtable import flag_names
from .phys import PhysMem

ACCESS_READ = 0
ACCESS_WRITE = 1
ACCESS_USER = 2
ACCESS_FETCH = 4

PF_PROT = 1
PF_WRITE = 2
PF_USER = 4
PF_RSVD = 8
PF_INSTR = 16
FAULT_GP = -2


@dataclass(frozen=True)
class MMU:
    """Paging configuration of the CPU doing the walk."""

    cr3: int
    levels: int = 4           # 4 (CR4.LA57=0) or 5
    maxphyaddr: int = 46
    nxe: bool = True          # IA32_EFER.NXE
    wp: bool = True           # CR0.WP
    smep: bool = False        # CR4.SMEP

    def validate(self) -> None:
        if self.levels not in (4, 5):
            raise ValueError(f"paging levels must be 4 or 5, not {self.levels}")
        if not 32 <= self.maxphyaddr <= 52:
            raise ValueError(f"MAXPHYADDR must be in [32, 52], not {self.maxphyaddr}")
        if self.cr3 < 0 or self.cr3 >= 1 << self.maxphyaddr:
            # a real CPU refuses such a CR3 (#GP on the MOV to CR3)
            raise ValueError(f"CR3 {self.cr3:#x} has bits at or above MAXPHYADDR ({self.maxphyaddr})")


@dataclass
class Translations:
    """Results of :func:`translate`, one element per address."""

    va: np.ndarray
    pa: np.ndarray       # uint64, 0 on a fault
    shift: np.ndarray    # uint8: 12, 21, 30; 0 on a fault
    leaf: np.ndarray     # raw leaf entry
    flags: np.ndarray    # effective flags (RW/US ANDed, NX ORed over the levels)
    error: np.ndarray    # int32: -1 ok, #PF error code, or -2 for #GP

    def __len__(self) -> int:
        return int(self.va.shape[0])

    def ok(self) -> np.ndarray:
        return self.error == -1

    def records(self) -> List[dict]:
        """JSON-ready records: ``va``, ``pa`` (None on a fault), ``size``, ``flags``, ``fault``."""
        out = []
        for i in range(len(self)):
            err = int(self.error[i])
            ok = err == -1
            out.append({
                "va": int(self.va[i]),
                "pa": int(self.pa[i]) if ok else None,
                "size": (1 << int(self.shift[i])) if ok else None,
                "flags": flag_names(int(self.flags[i]), int(self.shift[i])) if ok else [],
                "fault": None if ok else ("#GP" if err == FAULT_GP else err),
            })
        return out


def _check_store(phys: PhysMem) -> None:
    d, b, f = phys.directory, phys.blocks, phys.frames
    if d.dtype != np.int32 or b.dtype != np.int32 or f.dtype != np.uint64 or f.shape[1] != 512:
        raise TypeError("corrupt physical memory store")
    if d.size and int(d.max()) >= phys.nblocks:
        raise ValueError("corrupt physical memory store: directory points past the blocks")


def translate(phys: PhysMem, mmu: MMU, vas: Union[int, Sequence[int], np.ndarray],
              access: int = ACCESS_READ) -> Translations:
    """Walk ``vas`` (an int or an array) with ``access`` bits (write, user, fetch)."""
    mmu.validate()
    _check_store(phys)
    if not 0 <= access <= 7:
        raise ValueError("access must combine ACCESS_WRITE, ACCESS_USER, ACCESS_FETCH")
    arr = np.atleast_1d(np.asarray(vas, dtype=np.uint64))
    arr = np.ascontiguousarray(arr)
    n = arr.shape[0]
    out = Translations(arr, np.zeros(n, np.uint64), np.zeros(n, np.uint8), np.zeros(n, np.uint64),
                       np.zeros(n, np.uint64), np.zeros(n, np.int32))
    backend.current().walk64(phys.directory, phys.blocks[: max(phys.nblocks, 1)], phys.frames,
                             mmu.cr3, mmu.levels, mmu.maxphyaddr, mmu.nxe, mmu.wp, mmu.smep, access, arr,
                             out.pa, out.shift, out.leaf, out.flags, out.error)
    return out


@dataclass
class TreeSummary:
    runs: np.ndarray     # (n, 6) uint64: va, va_end, pa, shift, leaf_flags, eff
    tables: np.ndarray   # (n, 4) uint64: pfn, level, parent_pfn, parent_index
    leaves_4k: int
    leaves_2m: int
    leaves_1g: int
    reserved_entries: int


def enumerate_tables(phys: PhysMem, mmu: MMU, top_lo: int = 0, top_hi: int = 512,
                     capacity: Optional[int] = None) -> TreeSummary:
    """Visit every present entry under CR3 (top-level slots [top_lo, top_hi))."""
    mmu.validate()
    _check_store(phys)
    if not 0 <= top_lo <= top_hi <= 512:
        raise ValueError("top-level slot range must lie in [0, 512]")
    cap_r = capacity or 1024
    cap_t = max(phys.nframes + 16, 16)
    fast = backend.current()
    while True:
        runs = np.zeros((cap_r, 6), np.uint64)
        tables = np.zeros((cap_t, 4), np.uint64)
        counts = np.zeros(6, np.int64)
        ok = fast.enumerate64(phys.directory, phys.blocks[: max(phys.nblocks, 1)], phys.frames,
                              mmu.cr3 >> 12, mmu.levels, top_lo, top_hi, mmu.maxphyaddr,
                              runs, tables, counts)
        if ok:
            break
        cap_r = max(cap_r, int(counts[0]))
        cap_t = max(cap_t, int(counts[1]))
    return TreeSummary(runs[: counts[0]], tables[: counts[1]], int(counts[2]), int(counts[3]),
                       int(counts[4]), int(counts[5]))
