"""The emulated kernel's state: everything ``init_mem_mapping`` reads and writes.

One :class:`Kernel` object replaces the kernel's globals (``max_pfn``,
``pgt_buf_*``, ``min_pfn_mapped``, ``pfn_mapped[]``, ``page_size_mask``,
``__supported_pte_mask``, ``direct_pages_count[]`` ...), so several
emulations can run side by side and every run is reproducible.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple

import numpy as np

from emu.machine.modes import I386, I386_PAE, X86_64_4LEVEL, X86_64_5LEVEL, PagingMode
from emu.kernel.arch.x86.kernel.e820 import E820Table
from emu.kernel.mm.memblock import Memblock
from emu.machine.engine import Engine
from emu.machine.phys import PhysMem
from emu.kernel.printk import KernelLog
from emu.kernel.params import Assumption, BootParams, given
from emu.machine.cpu import CpuFeatures
from emu.kernel.profiles import Profile

SOURCE_BRK = "brk"
SOURCE_MEMBLOCK = "memblock"
SOURCE_PGT_BUF = "pgt_buf"  # find_early_table_space's buffer (<= 3.8)
SOURCE_IMAGE = "image"  # swapper_pg_dir / init_top_pgt inside the kernel image


class Coverage:
    """The kernel's decision points one emulation reached, with how often (for campaigns
    steered by coverage; cheap enough to be always on).  Python code counts named points
    with :meth:`hit`; the compiled loops (and their twins) count theirs in ``loops``, an
    int64 array indexed by :class:`emu.machine.abi.MapCoverage`."""

    __slots__ = ("points", "loops")

    def __init__(self) -> None:
        self.points: dict = {}
        self.loops: Optional[np.ndarray] = None

    def hit(self, name: str) -> None:
        self.points[name] = self.points.get(name, 0) + 1

    def loop_counters(self, n: int) -> np.ndarray:
        """The loops' counters of this emulation (one array, shared by every mapping job)."""
        if self.loops is None:
            self.loops = np.zeros(n, np.int64)
        return self.loops

    def as_dict(self) -> dict:
        """Every point reached: the named ones, and ``loop.<name>`` for the loops' counters."""
        out = dict(self.points)
        if self.loops is not None and self.loops.any():
            from emu.machine.abi import COVERAGE_POINTS
            for i in np.nonzero(self.loops)[0].tolist():
                out["loop." + COVERAGE_POINTS[i]] = int(self.loops[i])
        return out


@dataclass
class TablePage:
    """One page-table page: where it is, what level, where it came from."""

    pfn: int
    level: int
    source: str
    #: the page lay inside pfn_mapped (the new direct map) when it was allocated
    mapped_at_alloc: bool
    #: ``init_memory_mapping`` call (index into Kernel.calls) that allocated it
    call: int


#: above every pfn: ``(pfn, _NO_END)`` sorts after every range starting at or below pfn
_NO_END = 1 << 64


def _column(name: str) -> Any:
    """A :class:`TablePageLog` column as a read-only property: the rows still pending as
    Python lists are joined into the arrays first."""
    attr = "_" + name

    def get(self: "TablePageLog") -> np.ndarray:
        if self._pending:
            self._join()
        return getattr(self, attr)
    return property(get, doc=f"the ``{name}`` column")


class TablePageLog:
    """Every page-table page allocated, as numpy columns (one row per page).

    Rows come in two ways: :meth:`append` (numpy columns, any number of rows) and
    :meth:`append_rows` (Python lists, the few pages one ``init_memory_mapping`` call
    allocates).  The latter wait in lists and join the columns the next time a column
    (or :meth:`append`) is asked for, in the order they were appended."""

    SOURCES = {1: SOURCE_BRK, 2: SOURCE_MEMBLOCK, 3: SOURCE_PGT_BUF, 4: SOURCE_IMAGE}

    def __init__(self) -> None:
        self._pfn = np.zeros(0, np.uint64)
        self._level = np.zeros(0, np.uint8)
        self._src = np.zeros(0, np.uint8)      # 1 BRK, 2 memblock, 3 pgt_buf (<= 3.8), 4 kernel image
        self._mapped = np.zeros(0, bool)       # inside pfn_mapped when allocated
        self._call = np.zeros(0, np.int32)     # index into Kernel.calls
        self._n = 0
        # rows appended as Python lists, not yet in the columns: (pfns, levels, srcs, mapped, call)
        self._pending: List[Tuple[List[int], List[int], List[int], List[bool], int]] = []
        self._npending = 0

    # the columns (rows pending in lists joined first)
    pfn = _column("pfn")
    level = _column("level")
    src = _column("src")
    mapped = _column("mapped")
    call = _column("call")

    def _reserve(self, need: int) -> None:
        if need > self._pfn.shape[0]:
            cap = max(need, 2 * self._pfn.shape[0], 64)
            for name in ("_pfn", "_level", "_src", "_mapped", "_call"):
                old = getattr(self, name)
                new = np.zeros(cap, old.dtype)
                new[: self._n] = old[: self._n]
                setattr(self, name, new)

    def _join(self) -> None:
        """Move the rows waiting in lists into the columns."""
        n = self._npending
        if not n:
            return
        need = self._n + n
        self._reserve(need)
        pfn: List[int] = []
        level: List[int] = []
        src: List[int] = []
        mapped: List[bool] = []
        call: List[int] = []
        for p, lv, s, m, c in self._pending:
            pfn += p
            level += lv
            src += s
            mapped += m
            call += [c] * len(p)
        sl = slice(self._n, need)
        self._pfn[sl] = pfn
        self._level[sl] = level
        self._src[sl] = src
        self._mapped[sl] = mapped
        self._call[sl] = call
        self._n = need
        self._pending = []
        self._npending = 0

    def append_rows(self, pfns: List[int], levels: List[int], srcs: List[int],
                    pfn_mapped: List[Tuple[int, int]], call: int) -> None:
        """:meth:`append` for a few rows given as Python lists (joined to the columns later).
        The lists are kept, not copied, until then: the caller hands them over and must not
        change them afterwards."""
        n = len(pfns)
        if n == 0:
            return
        mapped: List[bool] = []
        if not pfn_mapped:
            mapped = [False] * n
        else:
            # pfn_mapped is ascending and disjoint (as append's searchsorted also takes it):
            # the range that may hold p is the last one starting at or below it
            for p in pfns:
                i = bisect_right(pfn_mapped, (p, _NO_END))
                mapped.append(i > 0 and p < pfn_mapped[i - 1][1])
        self._pending.append((pfns, levels, srcs, mapped, call))
        self._npending += n

    def append(self, pfns: np.ndarray, levels: np.ndarray, srcs: np.ndarray,
               pfn_mapped: List[Tuple[int, int]], call: int) -> None:
        n = len(pfns)
        if n == 0:
            return
        self._join()
        if not pfn_mapped:
            mapped = np.zeros(n, bool)
        elif n <= 16 and len(pfn_mapped) <= 16:
            mapped = np.array([any(a <= p < b for a, b in pfn_mapped) for p in pfns.tolist()], bool)
        else:
            starts = np.array([a for a, _ in pfn_mapped], np.uint64)
            ends = np.array([b for _, b in pfn_mapped], np.uint64)
            i = np.searchsorted(starts, pfns, side="right") - 1
            mapped = (i >= 0) & (pfns < ends[np.maximum(i, 0)])
        need = self._n + n
        self._reserve(need)
        sl = slice(self._n, need)
        self._pfn[sl], self._level[sl], self._src[sl], self._mapped[sl] = pfns, levels, srcs, mapped
        self._call[sl] = call
        self._n = need

    def __len__(self) -> int:
        return self._n + self._npending

    def column(self, name: str) -> np.ndarray:
        if self._pending:
            self._join()
        return getattr(self, "_" + name)[: self._n]

    def __iter__(self):
        self._join()
        for i in range(self._n):
            yield TablePage(int(self._pfn[i]), int(self._level[i]), self.SOURCES[int(self._src[i])],
                            bool(self._mapped[i]), int(self._call[i]))


@dataclass(frozen=True)
class ArchMM:
    """What the build links into ``init_mem_mapping`` (arch/x86/mm/init.c calls functions
    that init_64.c or init_32.c define): ``map_pieces(k, pieces, prot)`` runs
    ``kernel_physical_mapping_init`` for each ``(start, end, page_size_mask)`` piece of one
    ``init_memory_mapping`` call and returns the last ``paddr_last``; 32-bit builds also
    build the fixmap's page tables at the end (``early_ioremap_page_table_range_init``)."""

    map_pieces: Callable[..., int]
    early_ioremap_page_table_range_init: Optional[Callable[[Any], None]] = None


@dataclass
class MappingCall:
    """One ``init_memory_mapping(start, end)`` call."""

    start: int
    end: int
    ranges: List[Tuple[int, int, int]]  # (start, end, page_size_mask)
    ret: int = 0


@dataclass
class MappingWindow:
    """One step of ``memory_map_top_down``/``memory_map_bottom_up``: the window
    ``[start, end)`` mapped with ``step_size`` in force (0: the part above ``real_end``,
    mapped after the loop), and the ``init_memory_mapping`` calls it made
    (``Kernel.calls[first_call:end_call]``; ``end_call`` None: the kernel panicked in it)."""

    start: int
    end: int
    step_size: int
    first_call: int
    end_call: Optional[int] = None


def paging_mode(params: "BootParams") -> PagingMode:
    if params.arch == "i386":
        return I386_PAE if params.pae else I386
    if params.arch != "x86_64":
        raise ValueError(f"unknown architecture {params.arch!r} (x86_64 or i386)")
    return X86_64_5LEVEL if params.la57 else X86_64_4LEVEL


#: what ``E820Table.ram_ranges`` takes by default (E820_RAM, E820_RESERVED_KERN)
_RAM_TYPES = frozenset((1, 128))
#: the e820 range arrays of a Kernel before refresh_e820_ranges (empty)
_NO_RANGES = np.zeros(0, dtype=np.uint64)
_NO_RANGES.setflags(write=False)     # shared by every Kernel until its e820 ranges are set


class Kernel:
    """The state of one emulated boot, from ``setup_arch`` to the end of ``init_mem_mapping``."""

    def __init__(self, profile: Profile, params: BootParams, e820: E820Table, phys_limit: int,
                 engine: Engine, arch_mm: "ArchMM", initial_frames: int = 64) -> None:
        self.profile = profile
        #: the loop implementation this emulation runs on (compiled or pure Python)
        self.engine = engine
        #: the build's kernel_physical_mapping_init (init_64.c or init_32.c)
        self.arch_mm = arch_mm
        self.params = params
        self.e820 = e820
        self.memblock = Memblock(bottom_up_clamp=profile.memblock_bottom_up_clamp)
        #: the store, its frame pool sized for ``initial_frames`` (setup_arch: the estimate)
        self.phys = PhysMem(phys_limit, initial_frames)
        self.log = KernelLog()
        self.mode = paging_mode(params)
        self.paging_levels = self.mode.levels
        self.page_offset = profile.page_offset_l5 if params.la57 else profile.page_offset
        self.max_physmem_bits = profile.max_physmem_bits_l5 if params.la57 else profile.max_physmem_bits
        # setup_arch results
        self.max_pfn = 0
        self.max_low_pfn = 0
        self.kernel_end = 0
        self.pgd_pfn = 0
        # init.c globals
        self.page_size_mask = 0
        self.direct_gbpages = True
        self.supported_pte_mask = 0xFFFFFFFFFFFFFFFF
        self.default_kernel_pte_mask = 0xFFFFFFFFFFFFFFFF
        self.pgt_buf_start = 0
        self.pgt_buf_end = 0
        self.pgt_buf_top = 0
        self.can_use_brk_pgt = True
        self.after_bootmem = False
        self.min_pfn_mapped = 0
        self.max_pfn_mapped = 0
        self.max_low_pfn_mapped = 0
        self.pfn_mapped: List[Tuple[int, int]] = []
        # pageattr.c
        self.direct_pages_count = [0, 0, 0, 0, 0]
        # bookkeeping for reports and verification
        self.table_pages = TablePageLog()
        self.calls: List[MappingCall] = []
        self.windows: List[MappingWindow] = []
        self.panic: Optional[str] = None
        #: the decision points this emulation reached (campaign coverage)
        self.coverage = Coverage()
        #: inputs that were not given and set to a default by the emulation itself
        self.assumptions: List[Assumption] = []
        # where the boot put things, as resolved for this emulation (the checker reads them)
        #: the kernel image, physical [_text, _brk_end)
        self.image: Tuple[int, int] = (0, 0)
        #: i386: is_kernel_text's physical [_text, __init_end] (inclusive)
        self.kernel_text: Tuple[int, int] = (0, 0)
        #: i386: the lowest virtual address of the fixmap's page tables
        self.fixmap_start = 0
        #: x86-64: the image's static tables below PGD[511], (pfn, level, name)
        self.image_tables: List[Tuple[int, int, str]] = []
        #: x86-64: phys_base (where _text lies minus where it is linked to run)
        self.phys_base = 0
        #: i386: static tables of head_32 and the image, (pfn, level, name)
        self.i386_static: List[Tuple[int, int, str]] = []
        #: i386: page-table pages replaced by copies (page_table_kmap_check) and no longer referenced
        self.i386_orphans: set = set()
        # no ranges until refresh_e820_ranges (one empty array serves: nothing writes into them)
        self.ram_s = self.ram_e = self.keep_s = self.keep_e = self.any_s = self.any_e = _NO_RANGES

    # -- helpers the mm code shares -------------------------------------
    @property
    def cpu(self) -> CpuFeatures:
        """The CPU the kernel booted on (``params.cpu``, resolved)."""
        return given(self.params.cpu, "cpu")

    def refresh_e820_ranges(self) -> None:
        """Cache e820 RAM/RESERVED_KERN ranges (memblock's memory), the ranges whose entries
        kernel_physical_mapping_init keeps past a call's end (the profile's ``e820_keep_types``)
        and the ranges of entries of any type, as sorted arrays for the Cython loops."""
        self.ram_s, self.ram_e = self.e820.ram_ranges()
        if set(self.profile.e820_keep_types) == _RAM_TYPES:     # the same ranges (own copies)
            self.keep_s, self.keep_e = self.ram_s.copy(), self.ram_e.copy()
        else:
            self.keep_s, self.keep_e = self.e820.ram_ranges(self.profile.e820_keep_types)
        rs = [(x.addr, x.addr + x.size) for x in self.e820.entries if x.size > 0]
        rs.sort()
        starts: List[int] = []
        ends: List[int] = []
        last = -1
        for s, e in rs:
            if starts and s <= last:
                if e > last:
                    ends[-1] = last = e
            else:
                starts.append(s)
                ends.append(e)
                last = e
        self.any_s = np.array(starts, dtype=np.uint64)
        self.any_e = np.array(ends, dtype=np.uint64)

    def pfn_is_mapped(self, pfn: int) -> bool:
        return any(s <= pfn < e for s, e in self.pfn_mapped)

    def brk_pages_used(self) -> int:
        return self.pgt_buf_end - self.pgt_buf_start
