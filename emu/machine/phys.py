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
    int32 index of the frame's *slot*, or -1.
``frames[slot]``
    the frame's 4096 bytes, as 512 uint64 (8-byte entries: x86-64, PAE) or,
    through :meth:`PhysMem.table32`, as 1024 uint32 (32-bit non-PAE entries).

Lookup from a physical address is two array reads (O(1)); frames and blocks
come from pools that grow geometrically, so allocation is amortised O(1) and
never per-entry Python work.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
BLOCK_SHIFT = 16  # pfns per block: 2**16 pages = 256 MiB of address space, 256 KiB of slots
BLOCK_PFNS = 1 << BLOCK_SHIFT
_BLOCK_MASK = BLOCK_PFNS - 1


class PhysMemError(ValueError):
    """An access outside the emulated physical address space."""


class PhysMem:
    """Sparse physical memory of ``limit`` bytes (a multiple of 1 GiB is used)."""

    def __init__(self, limit: int, initial_frames: int = 64) -> None:
        if limit <= 0:
            raise PhysMemError("physical memory size must be positive")
        self.limit = int(limit)
        ndir = ((self.limit - 1) >> (PAGE_SHIFT + BLOCK_SHIFT)) + 1
        self.directory = np.full(ndir, -1, dtype=np.int32)
        self.blocks = np.full((2, BLOCK_PFNS), -1, dtype=np.int32)  # a run needs two: BRK and the top of RAM
        self.nblocks = 0
        self.frames = np.zeros((max(1, initial_frames), 512), dtype=np.uint64)
        self.frame_pfn = np.zeros(max(1, initial_frames), dtype=np.uint64)
        self.nframes = 0

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
        b = int(self.directory[d])
        if b < 0:
            return -1
        return int(self.blocks[b, pfn & _BLOCK_MASK])

    def is_backed(self, pfn: int) -> bool:
        return self.slot(pfn) >= 0

    # -- allocation -----------------------------------------------------
    def _grow_frames(self) -> None:
        cap = self.frames.shape[0] * 2
        frames = np.zeros((cap, 512), dtype=np.uint64)
        frames[: self.nframes] = self.frames[: self.nframes]
        pfns = np.zeros(cap, dtype=np.uint64)
        pfns[: self.nframes] = self.frame_pfn[: self.nframes]
        self.frames, self.frame_pfn = frames, pfns

    def reserve_frames(self, n: int) -> None:
        """Size the frame pool for ``n`` frames up front (no regrowth while mapping).

        The pool is zero-filled lazily by the OS, so an over-estimate costs
        address space, not resident memory; a slot never handed out is zero (the compiled
        loops rely on it and do not clear fresh frames a second time).
        """
        if n > self.frames.shape[0]:
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
        b = int(self.directory[d])
        if b < 0:
            if self.nblocks == self.blocks.shape[0]:
                blocks = np.full((self.blocks.shape[0] * 2, BLOCK_PFNS), -1, dtype=np.int32)
                blocks[: self.nblocks] = self.blocks[: self.nblocks]
                self.blocks = blocks
            b = self.nblocks
            self.nblocks += 1
            self.directory[d] = b
        return b

    def frame(self, pfn: int) -> int:
        """Back frame ``pfn`` (zeroed, like the kernel's ``clear_page``) and return its slot.

        Backing an already backed frame clears it again.
        """
        self._check_pfn(pfn)
        b = self._block_for(pfn)
        s = int(self.blocks[b, pfn & _BLOCK_MASK])
        if s < 0:
            if self.nframes == self.frames.shape[0]:
                self._grow_frames()
            s = self.nframes
            self.nframes += 1
            self.blocks[b, pfn & _BLOCK_MASK] = s
            self.frame_pfn[s] = pfn
        self.frames[s].fill(0)  # the pool is not pre-zeroed
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
        """Bytes of host memory held by the store."""
        return int(self.directory.nbytes + self.blocks.nbytes + self.frames.nbytes + self.frame_pfn.nbytes)

    def image_bytes(self, pfn: int) -> bytes:
        s = self.slot(pfn)
        return bytes(PAGE_SIZE) if s < 0 else self.frames[s].tobytes()
