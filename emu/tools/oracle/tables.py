"""Both trees, the real kernel's and emu's, in one comparable form -- through ONE walk.

The guest's table pages (read over the gdbstub) are copied into an emu
:class:`~emu.machine.phys.PhysMem`; both trees are then listed entry by entry by the
machine layer's :func:`emu.machine.mmu.enumerate_entries` with the same :class:`MMU`
geometry, under the same top-level slots, following table pointers even where they
carry reserved bits (QEMU sets ACCESSED in PAE PDPTEs; the comparison shows such bits
as differences instead of losing the tree below).  Nothing here interprets an entry.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from emu.machine.mmu import MMU, enumerate_entries
from emu.machine.modes import MODES, PagingMode
from emu.machine.phys import PAGE_SHIFT, PhysMem, PhysMemError

#: direct-map PGD slots walked: PAGE_OFFSET's slot and the 127 after it (64 TiB /
#: 32 PiB, the direct map's reserved space in 4/5-level layouts)
DIRECT_MAP_SLOTS = 128
LEVEL_NAMES = {5: "pgd", 4: "p4d", 3: "pud", 2: "pmd", 1: "pte"}
#: enumerate_entries' kinds
NOT_PRESENT, POINTER, LEAF, RESERVED = 0, 1, 2, 3


class TableCopyError(ValueError):
    """A guest table pointer leads outside the memory the copy can hold, or the tree is too
    large to compare in this host's memory."""


#: bytes one listed entry costs in a :class:`Tree` (its dict item, the key tuple, the leaf
#: record; measured at 418 on CPython 3.11), with the construction's peak
TREE_BYTES_PER_ENTRY = 600


def check_tree_memory(entries: int, what: str) -> None:
    """A comparison holds the real tree and emu's, ``entries`` each at most: refuse it with one
    line, before allocating, when that would not fit in the memory available (a 100 GiB guest
    mapped with 4 KiB pages lists 26 M entries: ~30 GiB of Python objects)."""
    from emu.kernel.estimate import available_memory
    need = 2 * entries * TREE_BYTES_PER_ENTRY
    avail = available_memory()
    if need > avail:
        raise TableCopyError(f"{what}: comparing trees of up to {entries:,} entries needs ~{need / (1 << 30):.1f} GiB "
                             f"of memory, {avail / (1 << 30):.1f} GiB available (a layout with less RAM, or large pages)")


def paging_mode(arch: str, levels: int) -> PagingMode:
    """The machine layer's paging mode of a tree (``arch`` x86_64/i386, its levels)."""
    if arch == "i386":
        return MODES["i386-pae" if levels == 3 else "i386"]
    return MODES["x86_64-5level" if levels == 5 else "x86_64-4level"]


def tree_mmu(mode: PagingMode, root_pa: int, pse: bool = True) -> MMU:
    """The walk's CPU: ``mode``'s geometry and MAXPHYADDR (the entry format's width),
    the root at ``root_pa`` (a PAE PDPT may lie 32-byte aligned inside its page)."""
    cr3 = root_pa & (0xFFFFFFE0 if mode.levels == 3 else ~0xFFF & ((1 << 52) - 1))
    return MMU.for_mode(mode, cr3, nxe=True, pse=pse)


@dataclass
class Tree:
    """Every non-zero entry under the top table's ``slots``."""

    levels: int
    cr3_pfn: int
    slots: Tuple[int, int]
    mode: PagingMode
    #: the walk's CPU (root, geometry, CR4.PSE): the other side is listed with the same
    mmu: MMU
    #: (level, va) -> raw entry; level is the table's level (PTE = 1, top = levels)
    entries: Dict[Tuple[int, int], int] = field(default_factory=dict)
    #: pfn -> (level, va of the table's first entry); the top table excluded
    tables: Dict[int, Tuple[int, int]] = field(default_factory=dict)
    #: (va, pa, size, raw) of every present leaf, by address
    leaf_list: List[Tuple[int, int, int, int]] = field(default_factory=list)

    def name(self, level: int) -> str:
        if level == self.levels:
            return "pgd"
        return LEVEL_NAMES[level]

    def leaves(self) -> List[Tuple[int, int, int, int]]:
        return self.leaf_list

    def summary(self) -> dict:
        lv: Dict[str, int] = {}
        for _, (lvl, _) in self.tables.items():
            lv[self.name(lvl)] = lv.get(self.name(lvl), 0) + 1
        sizes = {"4k": 0, "2M": 0, "4M": 0, "1G": 0}
        for _, _, size, _ in self.leaf_list:
            sizes[{1 << 12: "4k", 1 << 21: "2M", 1 << 22: "4M", 1 << 30: "1G"}[size]] += size
        sizes = {k: v for k, v in sizes.items() if v or k in ("4k", "2M", "1G")}
        return {"cr3": self.cr3_pfn << 12, "levels": self.levels, "table_pages": lv,
                "entries": len(self.entries), "mapped_bytes": sizes}


def direct_map_slots(levels: int, page_offset: int = 0) -> Tuple[int, int]:
    """Top-level slots [first, end) holding the direct map: PAGE_OFFSET's slot and the
    127 after it; without a known PAGE_OFFSET, the whole kernel half except slot 511
    (the kernel image), which at ``init_mem_mapping`` holds nothing else."""
    if page_offset:
        first = (page_offset >> (12 + 9 * (levels - 1))) & 511
        return first, min(512, first + DIRECT_MAP_SLOTS)
    return 256, 511


def kernel_slots(mode: PagingMode, page_offset: int) -> Tuple[int, int]:
    """The top-level slots compared: the kernel's part of the tree, from PAGE_OFFSET up.
    x86-64: the direct map (:func:`direct_map_slots`) through PGD 511, the kernel image
    (level3/level2_kernel_pgt, the fixmap tables; at ``init_mem_mapping``'s return the
    slots in between -- vmalloc, vmemmap, cpu_entry_area, ESPFIX, EFI -- are still
    empty); i386: PDPT slot 3 with PAE, PGD 768-1023 without (the direct map and the
    fixmap/kmap tables)."""
    if mode.is_64bit:
        return direct_map_slots(mode.levels, page_offset)[0], 512
    return page_offset >> mode.top_shift, 4 if mode.levels == 3 else 1024


def tree_of(phys: PhysMem, mmu: MMU, mode: PagingMode, slots: Tuple[int, int]) -> Tree:
    """The tree under ``mmu.cr3`` in ``phys``, from the machine layer's listing (refused by
    :func:`check_tree_memory` when too large for this host)."""
    check_tree_memory(int(np.count_nonzero(phys.frames[:phys.nframes])), "page-table tree")
    ents, tables = enumerate_entries(phys, mmu, slots[0], slots[1], follow_reserved=True)
    tree = Tree(mode.levels, mmu.cr3 >> 12, (slots[0], slots[1]), mode, mmu)
    lv, va, val, kind = (ents[f].tolist() for f in ("level", "va", "value", "kind"))
    tree.entries = dict(zip(zip(lv, va), val))
    ptr_va = {(t, i): v for t, i, v, k in zip(ents["table"].tolist(), ents["index"].tolist(), va, kind)
              if k in (POINTER, RESERVED)}
    for pfn, level, parent, index in tables.tolist():
        tree.tables.setdefault(pfn, (level, ptr_va[(parent, index)]))
    bits = 10 if mode.entry_bytes == 4 else 9
    amask = ((1 << mmu.maxphyaddr) - 1) & ~0xFFF
    for lvl, v, raw, k in zip(lv, va, val, kind):
        if k != LEAF:
            continue
        size = 1 << (12 + bits * (lvl - 1))
        if mode.entry_bytes == 4 and lvl == 2:   # 4 MiB page: PSE-36 bits 13..20 are PA 32..39
            pa = (raw & 0xFFC00000) | (((raw >> 13) & 0xFF) << 32)
        elif mode.entry_bytes == 4:
            pa = raw & 0xFFFFF000
        else:
            pa = raw & amask & ~(size - 1)
        tree.leaf_list.append((v, pa, size, raw))
    tree.leaf_list.sort()
    return tree


def copy_tables(read_page: Callable[[int], bytes], mmu: MMU, slots: Tuple[int, int], limit: int) -> PhysMem:
    """The guest's tree under ``mmu.cr3`` copied into a PhysMem of ``limit`` bytes:
    the root page, then, level by level, every table page the listing reaches that is
    not copied yet (``read_page(pfn)`` -> 4096 bytes)."""
    phys = PhysMem(limit)

    def copy(pfn: int) -> None:
        data = read_page(pfn)
        if len(data) != 1 << PAGE_SHIFT:
            raise TableCopyError(f"read {len(data)} bytes of table page {pfn << PAGE_SHIFT:#x}, not 4096")
        try:
            slot = phys.frame(pfn)
        except PhysMemError:
            raise TableCopyError(f"a table pointer leads to {pfn << PAGE_SHIFT:#x}, beyond the guest's "
                                 f"memory ({limit:#x})") from None
        phys.frames[slot] = np.frombuffer(data, "<u8")

    copy(mmu.cr3 >> PAGE_SHIFT)
    for _ in range(mmu.levels + 1):
        _, tables = enumerate_entries(phys, mmu, slots[0], slots[1], follow_reserved=True)
        missing = sorted({int(p) for p in tables[:, 0].tolist()} - {int(p) for p in phys})
        if not missing:
            return phys
        # before reading them: the tree these pages hold must be comparable here
        per_page = 1024 if mmu.levels == 2 else 512          # 4-byte entries only without PAE
        check_tree_memory((phys.nframes + len(missing)) * per_page, "the guest's page tables")
        for pfn in missing:
            copy(pfn)
    raise TableCopyError("the guest's tree is deeper than its paging mode")  # pragma: no cover


def emu_tree(kernel, slots: Optional[Tuple[int, int]] = None, pse: Optional[bool] = None) -> Tree:
    """The same listing over an emulated kernel's tables (``slots``: as the guest's)."""
    mode = kernel.mode
    mmu = tree_mmu(mode, kernel.pgd_pfn << PAGE_SHIFT, kernel.params.cpu.pse if pse is None else pse)
    return tree_of(kernel.phys, mmu, mode, slots or kernel_slots(mode, kernel.page_offset))
