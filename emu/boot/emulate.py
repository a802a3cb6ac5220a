"""The public entry point: emulate one boot's direct-mapping setup.

>>> from emu import emulate
>>> from emu.kernel.arch.x86.kernel.e820 import EMBEDDED_DEFAULT
>>> r = emulate(EMBEDDED_DEFAULT, profile="4.1")
>>> r.log[0]
'Using GB pages for direct mapping'
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Union

from emu.errors import EmuError
from emu.boot.describe import BootDescription
from emu.check import Report, verify
from emu.inputs.e820 import E820Map
from emu.kernel.arch.x86.kernel.setup import setup_arch
from emu.kernel.arch.x86.mm import init as mm_init
from emu.kernel.arch.x86.mm import init_32 as mm_init_32
from emu.kernel.arch.x86.mm.pageattr import arch_report_meminfo
from emu.kernel.arch.x86.pgtable_types import (
    PAGE_SHIFT,
    PG_LEVEL_1G,
    PG_LEVEL_2M,
    PG_LEVEL_4K,
)
from emu.kernel.params import Assumption, BootParams
from emu.kernel.printk import KernelPanic
from emu.kernel.profiles import Profile, get_profile
from emu.kernel.state import Kernel
from emu.machine.engine import Engine

LEVEL_KEYS = {4: "p4d", 3: "pud", 2: "pmd", 1: "pte"}


@dataclass
class Result:
    """What one emulation produced."""

    profile: str
    arch: str
    log: List[str]
    debug_log: List[str]
    panic: Optional[str]
    kernel: Kernel
    verify: Optional[Report]
    seconds: float
    warnings: List[str] = field(default_factory=list)
    #: inputs nobody gave, set to a default (the description's and the kernel's)
    assumptions: List[Assumption] = field(default_factory=list)
    #: the description this emulation ran (when it came from emu.boot.describe)
    description: Optional[Any] = None

    @property
    def pgtable_pages(self) -> Dict[str, Any]:
        """Page-table pages per level and per source (BRK, memblock, the <= 3.8 pgt_buf,
        the kernel image's static tables: the PGD, and before 3.9 the identity tables)."""
        k = self.kernel
        tp = k.table_pages
        levels, src = tp.column("level"), tp.column("src")
        by_level: Dict[str, int] = {}
        for lvl in range(k.paging_levels, 0, -1):
            n = int((levels == lvl).sum())
            if n:
                by_level["pgd" if lvl == k.paging_levels else LEVEL_KEYS[lvl]] = n
        by_source = {name: int((src == code).sum()) for code, name in tp.SOURCES.items()}
        return {"by_level": by_level, "by_source": by_source, "total": len(tp)}

    @property
    def direct_map(self) -> Dict[str, int]:
        """Bytes per page size from the kernel's own counters (``direct_pages_count``)."""
        k = self.kernel
        c = k.direct_pages_count
        large = "4M" if k.mode.pmd_shift == 22 else "2M"
        return {"4k": c[PG_LEVEL_4K] << 12, large: c[PG_LEVEL_2M] << k.mode.pmd_shift, "1G": c[PG_LEVEL_1G] << 30}

    @property
    def meminfo(self) -> Dict[str, int]:
        return arch_report_meminfo(self.kernel)

    def to_json(self) -> dict:
        k = self.kernel
        return {
            "profile": self.profile,
            "arch": self.arch,
            "log": self.log,
            "debug_log": self.debug_log,
            "panic": self.panic,
            "pgtable_pages": self.pgtable_pages,
            "direct_map": self.direct_map,
            "meminfo_kB": self.meminfo,
            "max_pfn": k.max_pfn,
            "max_pfn_mapped": k.max_pfn_mapped,
            "brk": {"start": k.pgt_buf_start << PAGE_SHIFT, "end": k.pgt_buf_end << PAGE_SHIFT,
                    "top": k.pgt_buf_top << PAGE_SHIFT},
            "cr3": k.pgd_pfn << PAGE_SHIFT,
            "page_offset": k.page_offset,
            "verify": self.verify.to_json() if self.verify is not None else None,
            "warnings": self.warnings,
            "assumptions": [a.to_json() for a in self.assumptions],
            "seconds": round(self.seconds, 6),
        }


def emulate(e820: E820Map, profile: Union[str, Profile] = "6.1", params: Optional[BootParams] = None,
            log_edits: Optional[list] = None, check: bool = True, max_memory: Optional[int] = None,
            progress: Optional[Callable[[int, int], None]] = None,
            engine: Union[None, str, Engine] = None, until: str = "init_mem_mapping") -> Result:
    """Run ``setup_arch``'s preparation and ``init_mem_mapping`` for ``e820``.

    A kernel panic is part of the result (``Result.panic``), not an exception.
    Input errors raise ``ValueError`` subclasses with a one-line message.  ``progress``,
    when given, is called as ``progress(bytes mapped so far, bytes of RAM to map)``;
    ``engine`` picks the loops (``"cython"``, ``"python"``; default: compiled unless
    ``EMU_PURE=1``).  ``until="paging_init"`` (i386, 3.9+) goes on after the check with what
    ``setup_arch`` does next to the tables (``initmem_init``, ``native_pagetable_init``,
    ``paging_init``).  Inputs left out of ``params`` are set to defaults, each recorded in
    ``Result.assumptions``.
    """
    if until not in ("init_mem_mapping", "paging_init"):
        raise EmuError(f"until must be init_mem_mapping or paging_init, not {until!r}")
    prof = get_profile(profile) if isinstance(profile, str) else profile
    params = BootParams() if params is None else params
    t0 = time.perf_counter()
    k = setup_arch(prof, params, e820, log_edits, max_memory=max_memory, engine=engine)
    step = None
    if progress is not None:
        total = ram_to_map(k)
        done = [0]

        def step(nbytes: int) -> None:
            done[0] += nbytes
            progress(done[0], total)
    try:
        mm_init.init_mem_mapping(k, step)
    except KernelPanic as p:
        k.panic = p.text
    seconds = time.perf_counter() - t0
    report = verify(k, engine=k.engine) if check and k.panic is None else None
    if until == "paging_init" and k.panic is None and not k.mode.is_64bit and prof.scheme == "brk_top_down":
        after_init_mem_mapping_32(k)
    elif until not in ("init_mem_mapping", "paging_init"):
        raise ValueError(f"until must be init_mem_mapping or paging_init, not {until!r}")
    warnings = list(k.memblock.warnings)
    return Result(prof.name, k.mode.arch, k.log.lines(debug=False), k.log.lines(debug=True), k.panic,
                  k, report, seconds, warnings, list(k.assumptions))


def after_init_mem_mapping_32(k: Kernel) -> None:
    """What ``setup_arch`` does to the i386 tables after ``init_mem_mapping`` (3.9+):
    ``initmem_init`` (its ``N MB LOWMEM/HIGHMEM available`` lines), then
    ``x86_init.paging.pagetable_init`` = ``native_pagetable_init`` (clears head_32's PTEs
    above max_low_pfn) and ``paging_init`` (the pkmap page table).  A BUG is a result."""
    try:
        mm_init_32.initmem_init(k)
        mm_init_32.native_pagetable_init(k)
    except KernelPanic as p:
        k.panic = p.text


def run(desc: BootDescription, check: bool = True, max_memory: Optional[int] = None,
        progress: Optional[Callable[[int, int], None]] = None,
        engine: Union[None, str, Engine] = None) -> Result:
    """Emulate a described boot (:func:`emu.boot.describe.describe`): the one path every
    command takes.  ``Result.assumptions`` holds the description's and the kernel's."""
    r = emulate(desc.e820, desc.profile, desc.params, log_edits=desc.log_edits, check=check,
                max_memory=max_memory, progress=progress, engine=engine, until=desc.until)
    r.assumptions = list(desc.assumptions) + r.assumptions
    r.description = desc
    return r


def ram_to_map(k: Kernel) -> int:
    """Bytes of memblock memory below the end ``init_mem_mapping`` maps to (for progress)."""
    end = (k.max_pfn if k.mode.is_64bit else k.max_low_pfn) << PAGE_SHIFT
    return sum(min(e, end) - s for s, e in k.memblock.memory if s < end)
