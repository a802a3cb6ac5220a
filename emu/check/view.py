"""What the checker reads of a finished boot: the fields, as protocols.

The emulated kernel's state object (:class:`emu.kernel.state.Kernel`) provides them; the
checker never imports it.  Each field is either the machine (physical memory, the paging
mode), an input of the boot as resolved for this emulation (e820, where the kernel image
and the initrd lie, the CPU), the kernel's printed lines, or a record the kernel keeps of
what it did (its table-page log, its ``init_memory_mapping`` calls, ``direct_pages_count``).
The profile is read as data (its fields), never run.
"""
from __future__ import annotations

from typing import Iterable, Iterator, List, Optional, Protocol, Sequence, Set, Tuple

import numpy as np

from emu.machine.cpu import CpuFeatures
from emu.machine.modes import PagingMode
from emu.machine.phys import PhysMem


class E820EntryView(Protocol):
    addr: int
    size: int
    type: int


class E820View(Protocol):
    entries: Sequence[E820EntryView]


class RegionsView(Protocol):
    def __iter__(self) -> Iterator[Tuple[int, int]]: ...   # (base, end) pairs, ascending


class MemblockView(Protocol):
    memory: RegionsView
    reserved: RegionsView


class CallView(Protocol):
    start: int   # init_memory_mapping(start, end)
    end: int
    ret: int     # the last physical address kernel_physical_mapping_init mapped


class TablePagesView(Protocol):
    def __len__(self) -> int: ...
    def column(self, name: str) -> np.ndarray: ...   # pfn, level, src (emu.machine.abi), mapped, call


class LogView(Protocol):
    records: List[Tuple[str, str]]   # (printk level, text), pr_debug lines included


class ParamsView(Protocol):
    cpu: CpuFeatures
    pti: bool
    initrd: Optional[Tuple[int, int]]


class ProfileView(Protocol):
    """The profile fields the checker reads (data only)."""
    pge_clears_global: bool
    default_kernel_pte_mask: bool
    pud_large_from_prot: bool
    early_direct_map: str
    kpmi_rules: str
    scheme: str
    pgt_access_va: bool


class BootView(Protocol):
    mode: PagingMode
    phys: PhysMem
    pgd_pfn: int
    page_offset: int
    max_pfn: int
    max_low_pfn: int
    e820: E820View
    memblock: MemblockView
    calls: Sequence[CallView]
    log: LogView
    table_pages: TablePagesView
    pgt_buf_start: int
    pgt_buf_top: int
    direct_pages_count: Sequence[int]
    params: ParamsView
    profile: ProfileView
    #: the kernel image as placed: physical [_text, _brk_end)
    image: Tuple[int, int]
    #: x86-64: phys_base (where _text lies minus where it is linked to run)
    phys_base: int
    #: x86-64: the image's static tables below PGD[511], (pfn, level, name)
    image_tables: Sequence[Tuple[int, int, str]]
    #: i386: is_kernel_text's physical [_text, __init_end] (inclusive)
    kernel_text: Tuple[int, int]
    #: i386: the lowest virtual address of the fixmap's page tables
    fixmap_start: int
    #: i386: page-table pages the kernel replaced and no longer references (kmap copies)
    i386_orphans: Set[int]


def fields(view: type = BootView) -> Iterable[str]:
    """The names of the fields a protocol declares (for tests and documentation)."""
    return tuple(getattr(view, "__annotations__", {}))
