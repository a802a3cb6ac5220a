"""The hardware page walk (Intel SDM vol. 3A §4.5–4.7) over emulated physical RAM.

:func:`translate` takes one address or a numpy array of them and walks them
all in one compiled call; :func:`enumerate_tables` visits every present
entry below CR3 and returns maximal runs of leaves plus the table pages;
:func:`enumerate_entries` lists every non-zero entry of the same tree, one row each.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Union

import numpy as np

from emu.machine.bits import (  # noqa: F401  (re-exported: the walk's vocabulary)
    ACCESS_FETCH,
    ACCESS_READ,
    ACCESS_USER,
    ACCESS_WRITE,
    FAULT_GP,
    PF_INSTR,
    PF_PROT,
    PF_RSVD,
    PF_USER,
    PF_WRITE,
    PS,
    XD,
    flag_names,
)
from emu.machine.engine import Engine, select
from emu.machine.modes import PagingMode
from emu.machine.phys import PhysMem
from emu.machine.reference32 import enumerate32


@dataclass(frozen=True)
class MMU:
    """Paging configuration of the CPU doing the walk."""

    cr3: int
    levels: int = 4           # 4 (CR4.LA57=0) or 5; 3: i386 PAE paging, 2: i386 32-bit paging
    maxphyaddr: int = 46
    nxe: bool = True          # IA32_EFER.NXE (PAE and 64-bit only: 32-bit paging has no XD bit)
    wp: bool = True           # CR0.WP
    smep: bool = False        # CR4.SMEP
    pse: bool = True          # CR4.PSE: 4 MiB pages in 32-bit paging (PAE/64-bit ignore it)

    @classmethod
    def for_mode(cls, mode: "PagingMode", cr3: int, nxe: bool = True, pse: bool = True) -> "MMU":
        """The CPU a kernel of paging ``mode`` runs with: CR3, EFER.NXE (PAE and 64-bit
        only), CR4.PSE, and MAXPHYADDR as wide as the entry format holds."""
        return cls(cr3=cr3, levels=mode.levels, maxphyaddr=mode.phys_bits,
                   nxe=bool(nxe and mode.entry_bytes == 8), pse=pse)

    @property
    def is_32bit(self) -> bool:
        return self.levels in (2, 3)

    def validate(self) -> None:
        if self.levels not in (2, 3, 4, 5):
            raise ValueError(f"paging levels must be 2, 3 (i386) or 4, 5, not {self.levels}")
        if not 32 <= self.maxphyaddr <= 52:
            raise ValueError(f"MAXPHYADDR must be in [32, 52], not {self.maxphyaddr}")
        if self.is_32bit:
            if self.cr3 < 0 or self.cr3 >= 1 << 32:
                raise ValueError(f"CR3 {self.cr3:#x} does not fit a 32-bit register")
        elif self.cr3 < 0 or self.cr3 >= 1 << self.maxphyaddr:
            # a real CPU refuses such a CR3 (#GP on the MOV to CR3)
            raise ValueError(f"CR3 {self.cr3:#x} has bits at or above MAXPHYADDR ({self.maxphyaddr})")

    def check_pdptes(self, phys: PhysMem) -> None:
        """PAE: the CPU loads the four PDPTEs when CR3 is written and raises #GP if a present
        one has a reserved bit (63:MAXPHYADDR, 8:5, 2:1; Intel SDM 4.4.1): refuse such a CR3."""
        if self.levels != 3:
            return
        rsvd = (((1 << 64) - 1) & ~((1 << self.maxphyaddr) - 1)) | 0x1E6
        base = self.cr3 & 0xFFFFFFE0
        for i in range(4):
            e = phys.read64(base + 8 * i)
            if e & 1 and e & rsvd:
                raise ValueError(f"PDPTE {i} = {e:#x} has reserved bits set: loading CR3 {self.cr3:#x} "
                                 f"would raise #GP")


@dataclass(frozen=True)
class WalkStep:
    """One entry a walk read: the hardware ``level`` (5/4 ... 1 = page table; i386: 3 PDPT
    with PAE, 2 page directory, 1 page table), the physical address of the table,
    the entry's ``index`` in it and its raw value."""

    level: int
    table: int
    index: int
    entry: int


@dataclass
class Translations:
    """Results of :func:`translate`, one element per address."""

    va: np.ndarray
    pa: np.ndarray       # uint64, 0 on a fault
    shift: np.ndarray    # uint8: 12, 21, 30; 0 on a fault
    leaf: np.ndarray     # raw leaf entry
    flags: np.ndarray    # effective flags (RW/US ANDed, NX ORed over the levels)
    error: np.ndarray    # int32: -1 ok, #PF error code, or -2 for #GP
    #: with ``translate(..., trace=True)``: (n, 5, 4) uint64, the walk level by level, rows
    #: ``(level, table_pa, index, entry)`` top level first, level 0 after the last entry read
    trace: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return int(self.va.shape[0])

    def ok(self) -> np.ndarray:
        return self.error == -1

    def steps(self, i: int) -> List[WalkStep]:
        """The walk of address ``i`` level by level (needs ``translate(..., trace=True)``):
        the entries read, top level first; the last one ended the walk."""
        if self.trace is None:
            raise ValueError("no walk trace: translate(..., trace=True)")
        return [WalkStep(int(lvl), int(table), int(index), int(entry))
                for lvl, table, index, entry in self.trace[i].tolist() if lvl]

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


def _translate32(phys: PhysMem, mmu: MMU, arr: np.ndarray, access: int, out: "Translations",
                 eng: Engine) -> "Translations":
    """i386 walks (``emu._fast.walk32``): PAE (levels 3) or 32-bit paging (levels 2)."""
    n = arr.shape[0]
    if n and int(arr.max()) >> 32:
        raise ValueError("32-bit paging translates 32-bit linear addresses only")
    mmu.check_pdptes(phys)
    if out.shift.shape[0] != n:   # full=False: the walk still writes every column
        out.shift, out.leaf, out.flags = np.zeros(n, np.uint8), np.zeros(n, np.uint64), np.zeros(n, np.uint64)
    eng.walk32(phys.directory, phys.blocks[: max(phys.nblocks, 1)], phys.frames,
                             mmu.cr3, mmu.levels == 3, _phys_bits_32(mmu), mmu.pse, mmu.nxe, mmu.wp,
                             mmu.smep, access, arr, out.pa, out.shift, out.leaf, out.flags, out.error,
                             out.trace)
    return out


def _phys_bits_32(mmu: MMU) -> int:
    """Physical-address width of a 32-bit walk: PAE uses MAXPHYADDR; 32-bit paging's
    4 MiB pages reach at most 40 bits (PSE-36: M = min(MAXPHYADDR, 40), Intel SDM 4.3)."""
    return mmu.maxphyaddr if mmu.levels == 3 else min(mmu.maxphyaddr, 40)


#: the maximum of a large directory (ndarray.max without its Python-level wrapper)
_MAX = np.maximum.reduce


def _check_store(phys: PhysMem) -> None:
    d, b, f = phys.directory, phys.blocks, phys.frames
    if d.dtype != np.int32 or b.dtype != np.int32 or f.dtype != np.uint64 or f.shape[1] != 512:
        raise TypeError("corrupt physical memory store")
    # (a small machine's few directory entries as a Python list: a numpy reduction right after
    # an emulation, which runs none, costs ~9 us the first time against ~1 us for the list)
    if d.size and (max(d.tolist()) if d.ndim == 1 and d.size <= 256 else int(_MAX(d, axis=None))) >= phys.nblocks:
        raise ValueError("corrupt physical memory store: directory points past the blocks")


def translate(phys: PhysMem, mmu: MMU, vas: Union[int, Sequence[int], np.ndarray],
              access: int = ACCESS_READ, full: bool = True, engine: Union[None, str, Engine] = None,
              trace: bool = False, store_checked: bool = False) -> Translations:
    """Walk ``vas`` (an int or an array) with ``access`` bits (write, user, fetch).

    With ``full=False`` only ``pa`` and ``error`` are filled (``shift``, ``leaf``
    and ``flags`` are empty arrays): 12 bytes of output per address instead of 29.
    With ``trace=True`` the walk also records every entry it read
    (:attr:`Translations.trace`, :meth:`Translations.steps`).
    ``store_checked``: the caller has already had ``phys`` checked by an earlier walk or
    enumeration and changed nothing since (the checker: one check per verify, not three).
    """
    mmu.validate()
    if not store_checked:
        _check_store(phys)
    if not 0 <= access <= 7:
        raise ValueError("access must combine ACCESS_WRITE, ACCESS_USER, ACCESS_FETCH")
    if type(vas) is np.ndarray and vas.dtype == np.uint64 and vas.ndim == 1 and vas.flags.c_contiguous:
        arr = vas        # (what the conversions below return for it, without their three calls)
    else:
        arr = np.ascontiguousarray(np.atleast_1d(np.asarray(vas, dtype=np.uint64)))
    n = arr.shape[0]
    m = n if full else 0
    out = Translations(arr, np.zeros(n, np.uint64), np.zeros(m, np.uint8), np.zeros(m, np.uint64),
                       np.zeros(m, np.uint64), np.zeros(n, np.int32),
                       np.zeros((n, 5, 4), np.uint64) if trace else None)
    eng = select(engine)
    if mmu.is_32bit:
        return _translate32(phys, mmu, arr, access, out, eng)
    eng.walk64(phys.directory, phys.blocks[: max(phys.nblocks, 1)], phys.frames,
                             mmu.cr3, mmu.levels, mmu.maxphyaddr, mmu.nxe, mmu.wp, mmu.smep, access, arr,
                             out.pa, out.shift, out.leaf, out.flags, out.error, out.trace)
    return out


@dataclass
class TreeSummary:
    runs: np.ndarray     # (n, 6) uint64: va, va_end, pa, shift, leaf_flags, eff
    tables: np.ndarray   # (n, 4) uint64: pfn, level, parent_pfn, parent_index
    leaves_4k: int
    leaves_2m: int
    leaves_1g: int
    reserved_entries: int
    #: (table_pfn, index, entry, kind): 1 = table pointer without the expected flags,
    #: 2 = large leaf with reserved low address bits; at most 256 kept
    odd: Optional[np.ndarray] = None
    odd_count: int = 0


def enumerate_tables(phys: PhysMem, mmu: MMU, top_lo: int = 0, top_hi: int = 512,
                     capacity: Optional[int] = None, ptr_flags: int = 0x067,
                     engine: Union[None, str, Engine] = None, store_checked: bool = False) -> TreeSummary:
    """Visit every present entry under CR3 (top-level slots [top_lo, top_hi));
    ``store_checked`` as for :func:`translate`."""
    mmu.validate()
    if not store_checked:
        _check_store(phys)
    if mmu.is_32bit:
        # i386: top_lo/top_hi are PGD slots (4 with PAE, 1024 without)
        shift = 30 if mmu.levels == 3 else 22
        n_top = 4 if mmu.levels == 3 else 1024
        top_hi = min(top_hi, n_top)
        mmu.check_pdptes(phys)
        runs, tables, (n4k, nlarge, nrsv) = enumerate32(phys, mmu.cr3, mmu.levels == 3, _phys_bits_32(mmu), mmu.pse,
                                                        top_lo << shift, top_hi << shift)
        return TreeSummary(runs, tables, n4k, nlarge, 0, nrsv)
    if not 0 <= top_lo <= top_hi <= 512:
        raise ValueError("top-level slot range must lie in [0, 512]")
    cap_r = capacity or 1024
    cap_t = max(phys.nframes + 16, 16)
    fast = select(engine)
    while True:
        # (both engines write every count and read no row they have not written: the rows
        # past the counts are cut off, so the buffers need no zeroing)
        runs = np.empty((cap_r, 6), np.uint64)
        tables = np.empty((cap_t, 4), np.uint64)
        counts = np.zeros(7, np.int64)
        odd = np.empty((256, 4), np.uint64)
        ok = fast.enumerate64(phys.directory, phys.blocks[: max(phys.nblocks, 1)], phys.frames,
                              mmu.cr3 >> 12, mmu.levels, top_lo, top_hi, mmu.maxphyaddr,
                              runs, tables, counts, ptr_flags, odd)
        n = counts.tolist()
        if ok:
            break
        cap_r = max(cap_r, n[0])
        cap_t = max(cap_t, n[1])
    return TreeSummary(runs[: n[0]], tables[: n[1]], n[2], n[3], n[4], n[5], odd[: min(n[6], 256)], n[6])


def enumerate_entries(phys: PhysMem, mmu: MMU, top_lo: int = 0, top_hi: Optional[int] = None,
                      follow_reserved: bool = False):
    """Every non-zero entry under CR3, one row each: the per-entry listing of the tree
    the hardware walk (:func:`translate`) and :func:`enumerate_tables` see.

    From the top table's slots ``[top_lo, top_hi)`` (4 PDPT slots with PAE, 1024 PGD
    slots with 32-bit paging, 512 otherwise) down through every present entry that
    points to a table; each table page is read once (a page two entries point to is
    listed under the first).  An entry with reserved bits set (bits at or above
    MAXPHYADDR, PS in a PML4E/PML5E, a PAE PDPTE's reserved bits, a 4 MiB PDE's bit 21)
    is listed; the hardware faults there, so it is not followed unless
    ``follow_reserved`` (a listing of what was written: QEMU's TCG walker, unlike a
    real CPU, sets ACCESSED in PAE PDPTEs, one of their reserved bits).  Frames without
    backing read as zero.

    Returns ``(entries, tables)``: ``entries`` a numpy structured array sorted by
    (``va``, level from the top down) with fields ``level`` (1 = PTE .. ``mmu.levels``
    = the top table), ``va`` (the first linear address the entry covers, sign-extended
    on x86-64), ``value`` (the raw entry), ``table`` (pfn of the page holding it),
    ``index`` and ``kind`` (0 not present, 1 pointer to a table, 2 leaf, 3 present
    with reserved bits); ``tables`` rows ``(pfn, level, parent_pfn, parent_index)``
    of every table pointer followed, as :attr:`TreeSummary.tables`.
    """
    mmu.validate()
    _check_store(phys)
    dtype = np.dtype([("level", np.uint8), ("va", np.uint64), ("value", np.uint64), ("table", np.uint64),
                      ("index", np.uint32), ("kind", np.uint8)])
    pae, legacy = mmu.levels == 3, mmu.levels == 2
    bits = 10 if legacy else 9
    ptrs = 1 << bits
    n_top = 4 if pae else ptrs
    top_hi = n_top if top_hi is None else min(top_hi, n_top)
    if not 0 <= top_lo <= top_hi:
        raise ValueError(f"top-level slot range [{top_lo}, {top_hi}) is empty or negative")
    maxphy = _phys_bits_32(mmu) if mmu.is_32bit else mmu.maxphyaddr
    if legacy:
        amask = 0xFFFFF000
        rsvd = 0
    else:
        amask = ((1 << maxphy) - 1) & ~0xFFF
        rsvd = (((1 << (63 if pae else 52)) - 1) & ~((1 << maxphy) - 1))
    vabits = 57 if mmu.levels == 5 else 48
    sign = np.uint64(1 << (vabits - 1))
    ext = np.uint64(((1 << 64) - 1) & ~((1 << vabits) - 1))

    def shift(level: int) -> int:
        return 12 + bits * (level - 1)

    def read(pfn: int) -> np.ndarray:
        if not phys.is_backed(pfn):
            return np.zeros(ptrs, np.uint64)
        t = phys.table(pfn)
        return t.view(np.uint32).astype(np.uint64) if legacy else t

    rows, tables = [], []
    root = mmu.cr3 >> 12
    seen = {root}
    stack = [(root, mmu.levels, 0, top_lo, top_hi)]
    while stack:
        pfn, lvl, base, lo, hi = stack.pop()
        ents = read(pfn)
        if pae and lvl == 3:
            off = (mmu.cr3 & 0xFE0) >> 3
            ents = ents[off: off + 4]
        idx = np.nonzero(ents[lo:hi])[0] + lo
        vals = ents[idx]
        va = np.uint64(base) + (idx.astype(np.uint64) << np.uint64(shift(lvl)))
        if not mmu.is_32bit:
            va = np.where(va & sign, va | ext, va)
        present = (vals & np.uint64(1)) != 0
        ps = (vals & np.uint64(PS)) != 0
        bad = (vals & np.uint64(rsvd)) != 0
        if mmu.is_32bit and pae and lvl == 3:
            bad |= (vals & np.uint64(XD | 0x1E6)) != 0
        elif not mmu.is_32bit and lvl >= 4:
            bad |= ps
        if legacy and lvl == 2 and mmu.pse:
            hi_bits = (vals >> np.uint64(13)) & np.uint64(0xFF)
            bad |= ps & (((vals & np.uint64(1 << 21)) != 0) | ((hi_bits >> np.uint64(maxphy - 32)) != 0))
        if lvl == 1:
            leaf = np.ones(len(vals), bool)
        elif (lvl in (2, 3) and not mmu.is_32bit) or (lvl == 2 and (pae or mmu.pse)):
            leaf = ps
        else:
            leaf = np.zeros(len(vals), bool)
        kind = np.where(~present, 0, np.where(bad, 3, np.where(leaf, 2, 1))).astype(np.uint8)
        follow = (kind == 1) | ((kind == 3) & ~leaf) if follow_reserved else kind == 1
        chunk = np.zeros(len(vals), dtype)
        chunk["level"], chunk["va"], chunk["value"] = lvl, va, vals
        chunk["table"], chunk["index"], chunk["kind"] = pfn, idx, kind
        rows.append(chunk)
        for j in np.nonzero(follow)[0].tolist():
            child = (int(vals[j]) & amask) >> 12
            tables.append((child, lvl - 1, pfn, int(idx[j])))
            if child not in seen:
                seen.add(child)
                stack.append((child, lvl - 1, int(va[j]), 0, ptrs))
    entries = np.concatenate(rows) if rows else np.zeros(0, dtype)
    entries = entries[np.lexsort((-entries["level"].astype(np.int16), entries["va"]))]
    return entries, np.array(tables, np.uint64).reshape(-1, 4)
