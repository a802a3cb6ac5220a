"""Emulated physical RAM: a sparse store of 4 KiB page frames.

Only frames that the emulated kernel writes (its page-table pages) get backing
storage, so a 64 TiB layout costs only its page tables.  Every other physical
address reads as zero, like freshly cleared RAM.

Layout (all numpy, so the Cython loops in :mod:`emu._fast` can read it with
typed memoryviews and no Python objects):

``directory[pfn >> 16]``
    int32 index of a *block* (one block covers 256 MiB of physical address
    space), or -1.
``blocks[block, pfn & 0xffff]``
    int32 index of the frame's *slot*, or -1.  Only the first ``nblocks`` rows are
    blocks: a row is filled with -1 when it is handed out (the directory never points
    at a row beyond them), so a store does not write rows it never uses.
``frames[slot]``
    the frame's 4096 bytes, as 512 uint64 (8-byte entries: x86-64, PAE) or,
    through :meth:`PhysMem.table32`, as 1024 uint32 (32-bit non-PAE entries).

Lookup from a physical address is two array reads (O(1)); frames and blocks
come from pools that grow geometrically, so allocation is amortised O(1) and
never per-entry Python work.

A store may have a byte **budget** (``PhysMem(limit, budget=...)`` or
:meth:`PhysMem.set_budget`): the directory it is created with and every growth of the
frame and block pools are checked against it first, so a store never holds more than its
budget (:class:`MemoryBudgetError`, one line); a doubling that would pass the budget grows
to the budget instead.
"""
from __future__ import annotations

from typing import Iterator, Optional

import numpy as np

from emu.errors import EmuError

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
BLOCK_SHIFT = 16  # pfns per block: 2**16 pages = 256 MiB of address space, 256 KiB of slots
BLOCK_PFNS = 1 << BLOCK_SHIFT
_BLOCK_MASK = BLOCK_PFNS - 1


class PhysMemError(ValueError):
    """An access outside the emulated physical address space (a caller's bug: inputs are
    checked before a store is made)."""


class MemoryBudgetError(EmuError):
    """The store would grow past its byte budget (``--max-memory``)."""


#: bytes of one block of slots, one frame with its pfn
BLOCK_BYTES = BLOCK_PFNS * 4
FRAME_BYTES = PAGE_SIZE + 8
#: a store covers at most the 64-bit physical address space
MAX_LIMIT = 1 << 64


def _fmt(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.4g} {unit}"
    return f"{n} B"


class PhysMem:
    """Sparse physical memory of ``limit`` bytes (a multiple of 1 GiB is used), holding at
    most ``budget`` bytes of host memory (None: unbounded)."""

    def __init__(self, limit: int, initial_frames: int = 64, budget: Optional[int] = None) -> None:
        if not 0 < limit <= MAX_LIMIT:
            raise PhysMemError(f"physical memory size {limit:#x} outside (0, 2^64]")
        self.limit = int(limit)
        self.budget = budget
        ndir = ((self.limit - 1) >> (PAGE_SHIFT + BLOCK_SHIFT)) + 1
        n0 = max(1, initial_frames)
        self._charge(ndir * 4 + 2 * BLOCK_BYTES + n0 * FRAME_BYTES, "the store's index")
        self.directory = np.full(ndir, -1, dtype=np.int32)
        # a run needs two: BRK and the top of RAM (rows filled when handed out: _block_for)
        self.blocks = np.empty((2, BLOCK_PFNS), dtype=np.int32)
        self.nblocks = 0
        self.frames = np.zeros((max(1, initial_frames), 512), dtype=np.uint64)
        self.frame_pfn = np.zeros(max(1, initial_frames), dtype=np.uint64)
        self.nframes = 0

    # -- the budget -----------------------------------------------------
    def _charge(self, total: int, what: str) -> None:
        """Raise :class:`MemoryBudgetError` when the store would hold ``total`` bytes."""
        if self.budget is not None and total > self.budget:
            raise MemoryBudgetError(
                f"the emulated RAM store would grow to {_fmt(total)} ({what}), over its limit of "
                f"{_fmt(self.budget)} (--max-memory)")

    def set_budget(self, budget: Optional[int]) -> None:
        """Bound the store from now on (it must already fit)."""
        self.budget = budget
        self._charge(self.nbytes, "as it is")

    def _frames_allowed(self, want: int) -> int:
        """The largest frame pool up to ``want`` frames the budget allows (at least one more
        frame than now, else :class:`MemoryBudgetError`)."""
        if self.budget is None:
            return want
        rest = self.nbytes - self.frames.nbytes - self.frame_pfn.nbytes
        fit = (self.budget - rest) // FRAME_BYTES
        if fit <= self.frames.shape[0]:
            self._charge(rest + (self.frames.shape[0] + 1) * FRAME_BYTES, f"{self.frames.shape[0] + 1} frames")
        return min(want, fit)

    # -- lookup ---------------------------------------------------------
    def _check_pfn(self, pfn: int) -> None:
        if pfn < 0 or (pfn << PAGE_SHIFT) >= self.limit:
            raise PhysMemError(
                f"physical address {pfn << PAGE_SHIFT:#x} outside emulated RAM "
                f"[0, {self.limit:#x})"
            )

    def slot(self, pfn: int) -> int:
        """Slot of frame ``pfn`` or -1 when it has no backing (reads as zero)."""
        d = pfn >> BLOCK_SHIFT
        if pfn < 0 or d >= self.directory.shape[0]:
            return -1
        b = self.directory.item(d)
        if b < 0 or b >= self.nblocks:     # (rows past nblocks are not initialised)
            return -1
        return self.blocks.item(b, pfn & _BLOCK_MASK)

    def is_backed(self, pfn: int) -> bool:
        return self.slot(pfn) >= 0

    # -- allocation -----------------------------------------------------
    def _grow_frames(self) -> None:
        cap = self._frames_allowed(self.frames.shape[0] * 2)
        frames = np.zeros((cap, 512), dtype=np.uint64)
        frames[: self.nframes] = self.frames[: self.nframes]
        pfns = np.zeros(cap, dtype=np.uint64)
        pfns[: self.nframes] = self.frame_pfn[: self.nframes]
        self.frames, self.frame_pfn = frames, pfns

    def reserve_frames(self, n: int) -> None:
        """Size the frame pool for ``n`` frames up front (no regrowth while mapping).

        The pool is zero-filled lazily by the OS, so an over-estimate costs
        address space, not resident memory.  With a budget the pool grows at most to the
        budget (and at least by one frame, else :class:`MemoryBudgetError`).  A slot never
        handed out is zero (the compiled loops rely on it and do not clear fresh frames twice).
        """
        if n > self.frames.shape[0]:
            n = self._frames_allowed(n)
            frames = np.zeros((n, 512), dtype=np.uint64)
            frames[: self.nframes] = self.frames[: self.nframes]
            pfns = np.zeros(n, dtype=np.uint64)
            pfns[: self.nframes] = self.frame_pfn[: self.nframes]
            self.frames, self.frame_pfn = frames, pfns

    def block_for(self, pfn: int) -> int:
        """The block index covering ``pfn``, created when missing."""
        self._check_pfn(pfn)
        return self._block_for(pfn)

    def _block_for(self, pfn: int) -> int:
        d = pfn >> BLOCK_SHIFT
        b = self.directory.item(d)
        if b < 0:
            if self.nblocks == self.blocks.shape[0]:
                cap = self.blocks.shape[0] * 2
                if self.budget is not None:
                    rest = self.nbytes - self.blocks.nbytes
                    cap = max(self.nblocks + 1, min(cap, (self.budget - rest) // BLOCK_BYTES))
                    self._charge(rest + cap * BLOCK_BYTES, f"{cap} blocks of its index")
                blocks = np.empty((cap, BLOCK_PFNS), dtype=np.int32)
                blocks[: self.nblocks] = self.blocks[: self.nblocks]
                self.blocks = blocks
            b = self.nblocks
            self.blocks[b].view(np.uint8).fill(0xFF)     # every slot -1 (a byte fill: memset)
            self.nblocks += 1
            self.directory[d] = b
        return b

    def frame(self, pfn: int) -> int:
        """Back frame ``pfn`` (zeroed, like the kernel's ``clear_page``) and return its slot.

        Backing an already backed frame clears it again.
        """
        if pfn < 0 or (pfn << PAGE_SHIFT) >= self.limit:
            self._check_pfn(pfn)
        b = self._block_for(pfn)
        s = self.blocks.item(b, pfn & _BLOCK_MASK)
        if s < 0:
            if self.nframes == self.frames.shape[0]:
                self._grow_frames()
            s = self.nframes
            self.nframes += 1
            self.blocks[b, pfn & _BLOCK_MASK] = s
            self.frame_pfn[s] = pfn
            # a slot never handed out is zero (the pools are zero-filled: reserve_frames)
        else:
            self.frames[s].fill(0)  # clear_page: a frame backed again is cleared too
        return s

    clear_page = frame

    # -- access -----------------------------------------------------------
    def table(self, pfn: int) -> np.ndarray:
        """The 512 8-byte entries of a backed frame (a writable view)."""
        s = self.slot(pfn)
        if s < 0:
            raise PhysMemError(f"frame {pfn << PAGE_SHIFT:#x} has no backing")
        return self.frames[s]

    def table32(self, pfn: int) -> np.ndarray:
        """The 1024 4-byte entries of a backed frame (32-bit non-PAE format)."""
        return self.table(pfn).view(np.uint32)

    def read64(self, pa: int) -> int:
        if pa & 7:
            raise PhysMemError(f"unaligned 8-byte read at {pa:#x}")
        s = self.slot(pa >> PAGE_SHIFT)
        return 0 if s < 0 else int(self.frames[s, (pa & 0xFFF) >> 3])

    def read32(self, pa: int) -> int:
        if pa & 3:
            raise PhysMemError(f"unaligned 4-byte read at {pa:#x}")
        s = self.slot(pa >> PAGE_SHIFT)
        return 0 if s < 0 else int(self.frames[s].view(np.uint32)[(pa & 0xFFF) >> 2])

    def write64(self, pa: int, value: int) -> None:
        if pa & 7:
            raise PhysMemError(f"unaligned 8-byte write at {pa:#x}")
        pfn = pa >> PAGE_SHIFT
        s = self.slot(pfn)
        if s < 0:
            s = self.frame(pfn)
        self.frames[s, (pa & 0xFFF) >> 3] = np.uint64(value & 0xFFFFFFFFFFFFFFFF)

    def backed_pfns(self) -> np.ndarray:
        """Physical frame numbers that have backing, in allocation order."""
        return self.frame_pfn[: self.nframes].copy()

    def __iter__(self) -> Iterator[int]:
        return iter(int(p) for p in self.frame_pfn[: self.nframes])

    @property
    def nbytes(self) -> int:
        """Bytes of host memory held by the store (what the budget bounds)."""
        return int(self.directory.nbytes + self.blocks.nbytes + self.frames.nbytes + self.frame_pfn.nbytes)

    @property
    def used_bytes(self) -> int:
        """Bytes the store has touched: its index and the frames in use (a reserved but
        unused frame pool is address space the OS has not backed)."""
        return int(self.directory.nbytes + self.blocks.nbytes + self.nframes * FRAME_BYTES)

    def image_bytes(self, pfn: int) -> bytes:
        s = self.slot(pfn)
        return bytes(PAGE_SIZE) if s < 0 else self.frames[s].tobytes()
