"""Dumping the emulated tables: the kernel's ptdump format, JSON, and a raw physical image.

* :func:`ptdump_lines` -- the direct-map section of ``/sys/kernel/debug/page_tables/kernel``
  (``arch/x86/mm/dump_pagetables.c``): one line per run of entries with the same
  protection, effective protection and level, between the ``---[ Low Kernel Mapping ]---``
  and ``---[ vmalloc() Area ]---`` markers (i386: ``---[ Kernel Mapping ]---``); the
  lines themselves are written by :func:`emu.tools.formats.ptdump_line`.  Kernels
  from 5.6 on walk with the generic ptdump, which reports holes of the top level
  of 4-level paging as ``p4d``; older ones say ``pgd`` (``Profile.ptdump_generic``).
* :func:`table_entries` -- every present entry: level, table page, index, raw entry
  (``emu dump --format json``: :func:`emu.tools.formats.dump_document`).
* :func:`write_raw` -- a sparse physical image ``memory.img`` holding the table
  pages at their physical addresses, and ``meta.json`` (``cr3``, ``mode``,
  ``page_offset``) for other tools (volatility3's Intel32e layer, Unicorn, ...).
* :func:`translate` -- walk a numpy array of virtual addresses through an
  emulation's tables.
"""
from __future__ import annotations

import argparse
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from emu.kernel.state import Kernel
from emu.tools import rawimage
from emu.kernel.arch.x86.pgtable_types import _PAGE_NX, _PAGE_PSE, _PAGE_RW, _PAGE_USER, PAGE_SHIFT
from emu.machine.mmu import MMU, Translations, enumerate_tables
from emu.machine.mmu import translate as walk_translate
from emu.tools.formats import dump_document, dumps, level_names, ptdump_line, ptdump_marker

_U64 = np.uint64
PTE_FLAGS_MASK = 0xFFF0000000000FFF       # flags of an entry: everything outside the pfn (52-bit)
VMALLOC_START_L4 = 0xFFFFC90000000000
VMALLOC_START_L5 = 0xFFA0000000000000
VMALLOC_OFFSET_32 = 8 << 20


def _kernel(obj) -> Kernel:
    return obj.kernel if hasattr(obj, "kernel") else obj


def _is_x86_64(k: Kernel) -> bool:
    return getattr(getattr(k, "mode", None), "arch", "x86_64") == "x86_64"


def translate(result_or_kernel, vas: Union[int, Sequence[int], np.ndarray], access: Union[int, str] = 0) -> Translations:
    """Walk ``vas`` (an int, a list or a numpy uint64 array) through an emulation's tables.

    ``access`` is an ``ACCESS_*`` combination or a string of ``r``/``w``/``x``/``u``.
    ``Translations.records()`` gives the JSON form of ``emu translate --json``.
    """
    from emu.tools.values import access_bits, address_array
    k = _kernel(result_or_kernel)
    arr = address_array(vas, 64 if k.mode.is_64bit else 32)
    return walk_translate(k.phys, _mmu(k), arr, access_bits(access), engine=k.engine)


def _mmu(k: Kernel) -> MMU:
    return MMU.for_mode(k.mode, k.pgd_pfn << PAGE_SHIFT, k.cpu.nx, k.cpu.pse)


# ---------------------------------------------------------------------------
# walking the tree, entry by entry (vectorised per table page)
# ---------------------------------------------------------------------------
def _sext(va: int, bits: int) -> int:
    va &= (1 << 64) - 1
    if va & (1 << (bits - 1)):
        va |= ((1 << 64) - 1) ^ ((1 << bits) - 1)
    return va


def _table(k: Kernel, pfn: int) -> Optional[np.ndarray]:
    s = k.phys.slot(pfn)
    return None if s < 0 else k.phys.frames[s]


class _Geometry:
    """How to read one paging mode's tables: entries per table and shift per level, the
    entry width, which entries are leaves, where a table pointer's address is."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.levels = k.paging_levels
        mode = getattr(k, "mode", None)
        self.i386 = mode is not None and not mode.is_64bit
        self.pae = mode is not None and self.i386 and mode.entry_bytes == 8
        if not self.i386:
            self.vabits = 57 if self.levels == 5 else 48
            self.addr_mask, self.flags_mask = 0x000FFFFFFFFFF000, PTE_FLAGS_MASK
        else:
            self.vabits = 32
            self.addr_mask = 0x0000000FFFFFF000 if self.pae else 0xFFFFF000
            self.flags_mask = 0x8000000000000FFF if self.pae else 0xFFF

    def shift(self, lvl: int) -> int:
        if self.i386 and not self.pae:
            return 12 + 10 * (lvl - 1)
        return 12 + 9 * (lvl - 1)

    def entries(self, lvl: int) -> int:
        if self.i386:
            return 4 if (self.pae and lvl == 3) else (512 if self.pae else 1024)
        return 512

    def table(self, pfn: int) -> Optional[np.ndarray]:
        t = _table(self.k, pfn)
        if t is None:
            return None
        return t.view(np.uint32).astype(_U64) if (self.i386 and not self.pae) else t

    def is_leaf(self, lvl: int, value: int) -> bool:
        if lvl == 1:
            return True
        if self.i386:
            return lvl == 2 and bool(value & _PAGE_PSE)
        return lvl <= 3 and bool(value & _PAGE_PSE)


def walk_segments(k: Kernel, va_lo: int, va_hi: int) -> Iterator[Tuple[int, int, int, int, int, int]]:
    """Segments ``(va, va_end, hw_level, prot, eff, value)`` of consecutive entries of one
    table with equal protection, covering ``[va_lo, va_hi)`` in address order.

    ``hw_level``: 1 PTE .. the top level; ``prot`` is the entry's flags (0 for a hole);
    ``eff`` is the effective protection as ptdump computes it (0 for a hole); ``value``
    the first entry's raw value.  x86-64 (4/5-level) and i386 (PAE, non-PAE).
    """
    g = _Geometry(k)
    vabits = g.vabits
    m = (1 << vabits) - 1

    def rec(pfn: int, lvl: int, base: int, parent_eff: Optional[int]) -> Iterator[tuple]:
        shift = g.shift(lvl)
        size = 1 << shift
        n_ent = g.entries(lvl)
        lo = max(0, (va_lo & m) - base) >> shift if (va_lo & m) > base else 0
        hi_b = (va_hi - 1) & m
        hi = min(n_ent - 1, (hi_b - base) >> shift) + 1 if hi_b >= base else 0
        if lo >= hi:
            return
        t = g.table(pfn)
        ents = t[lo:hi] if t is not None else np.zeros(hi - lo, _U64)
        present = (ents & _U64(1)) != _U64(0)
        prot = np.where(present, ents & _U64(g.flags_mask), _U64(0))
        if parent_eff is None:
            # PAE PDPTEs carry no RW/US/NX: the walk starts from "all allowed"
            eff = (prot | _U64(_PAGE_USER | _PAGE_RW)) & ~_U64(_PAGE_NX) if (g.pae and lvl == 3) else prot.copy()
        else:
            pe = _U64(parent_eff)
            eff = (pe & prot & _U64(_PAGE_USER | _PAGE_RW)) | ((pe | prot) & _U64(_PAGE_NX))
        eff = np.where(present, eff, _U64(0))
        if lvl == 1:
            leaf = present
        elif g.i386:
            leaf = present & (lvl == 2) & ((ents & _U64(_PAGE_PSE)) != _U64(0))
        else:
            leaf = present & ((lvl <= 3) & ((ents & _U64(_PAGE_PSE)) != _U64(0)))
        table = present & ~leaf
        n = hi - lo
        # segment boundaries: every table entry, and every change of (prot, eff)
        brk = np.ones(n, bool)
        if n > 1:
            brk[1:] = (prot[1:] != prot[:-1]) | (eff[1:] != eff[:-1]) | table[1:] | table[:-1]
        starts = np.nonzero(brk)[0]
        ends = np.append(starts[1:], n)
        for a, b in zip(starts.tolist(), ends.tolist()):
            i = lo + a
            va = base + i * size
            if table[a]:
                child = int(ents[a] & _U64(g.addr_mask)) >> 12
                yield from rec(child, lvl - 1, va, int(eff[a]))
            else:
                yield (_sext(va, vabits) if vabits < 64 and not g.i386 else va,
                       (_sext(base + (lo + b) * size, vabits) if not g.i386 else base + (lo + b) * size)
                       if base + (lo + b) * size <= m else 0, lvl, int(prot[a]), int(eff[a]), int(ents[a]))

    yield from rec(k.pgd_pfn, g.levels, 0, None)


def _level_names(k: Kernel, generic_ptdump: bool) -> Dict[int, str]:
    names = level_names(k.paging_levels, k.mode.is_64bit)
    if k.mode.is_64bit and k.paging_levels == 4 and generic_ptdump:
        names[4] = "p4d"
    return names


def ptdump_lines(k, generic_ptdump: Optional[bool] = None) -> List[str]:
    """The direct-map section of the kernel's ptdump, as a list of lines.

    ``generic_ptdump``: kernels 5.6+ (mm/ptdump.c) name top-level holes of 4-level
    paging ``p4d``; None picks it from the profile's version.
    """
    k = _kernel(k)
    if generic_ptdump is None:
        generic_ptdump = k.profile.ptdump_generic
    names = _level_names(k, generic_ptdump)
    start = k.page_offset
    if _Geometry(k).i386:
        # 32-bit: "Kernel Mapping" from PAGE_OFFSET to VMALLOC_START, which lies 8 MiB
        # (VMALLOC_OFFSET) above high_memory, aligned to it
        high = (k.page_offset + (k.max_low_pfn << PAGE_SHIFT)) & 0xFFFFFFFF
        end = (high + 2 * VMALLOC_OFFSET_32 - 1) & ~(VMALLOC_OFFSET_32 - 1)
        out = [ptdump_marker("Kernel Mapping")]
        width = 8
    else:
        end = VMALLOC_START_L5 if k.paging_levels == 5 else VMALLOC_START_L4
        out = [ptdump_marker("Low Kernel Mapping")]
        width = 16
    cur: Optional[list] = None   # [start, end, lvl, prot, eff]

    def flush(c: list) -> None:
        out.append(ptdump_line(c[0], c[1], c[3], names[c[2]], width))

    for va, va_end, lvl, prot, eff, _ in walk_segments(k, start, end):
        if va_end == 0 or va_end > end:
            va_end = end
        if cur is not None and cur[2] == lvl and cur[3] == prot and cur[4] == eff and cur[1] == va:
            cur[1] = va_end
            continue
        if cur is not None:
            flush(cur)
        cur = [va, va_end, lvl, prot, eff]
    if cur is not None:
        flush(cur)
    out.append(ptdump_marker("vmalloc() Area"))
    return out


def count_entries(k) -> int:
    """How many present entries the table pages under CR3 hold (at least what
    :func:`table_entries` lists), counted without building them."""
    k = _kernel(k)
    g = _Geometry(k)
    n = 0
    for pfn in table_pfns(k):
        t = g.table(pfn)
        if t is not None:
            n += int(np.count_nonzero(t & _U64(1)))
    return n


def table_entries(k, direct_map_only: bool = True) -> List[dict]:
    """Every present entry under CR3: ``level`` (pgd/p4d/pud/pmd/pte), ``table`` (physical
    address of the table page), ``index``, ``entry`` (raw), ``va`` (first address it maps),
    ``leaf``."""
    k = _kernel(k)
    g = _Geometry(k)
    names = level_names(k.paging_levels, k.mode.is_64bit)
    top_shift = g.shift(g.levels)
    lo_slot = ((k.page_offset & ((1 << g.vabits) - 1)) >> top_shift) % g.entries(g.levels) if direct_map_only else 0
    out: List[dict] = []

    def rec(pfn: int, lvl: int, base: int, first: int) -> None:
        t = g.table(pfn)
        if t is None:
            return
        shift = g.shift(lvl)
        n = g.entries(lvl)
        idx = np.nonzero(t[first:n] & _U64(1))[0] + first
        for i in idx.tolist():
            v = int(t[i])
            va = base + (i << shift)
            leaf = g.is_leaf(lvl, v)
            out.append({"level": names[lvl], "table": pfn << PAGE_SHIFT, "index": i, "entry": v,
                        "va": va if g.i386 else _sext(va, g.vabits), "leaf": leaf})
            if not leaf:
                rec((v & g.addr_mask) >> 12, lvl - 1, va, 0)

    rec(k.pgd_pfn, g.levels, 0, lo_slot)
    return out


def table_pfns(k) -> np.ndarray:
    """Physical frame numbers of every table page reachable from CR3 (the root included)."""
    k = _kernel(k)
    if not _is_x86_64(k):
        return np.unique(k.phys.backed_pfns())       # i386: every frame emu wrote is a table page
    tree = enumerate_tables(k.phys, _mmu(k), (k.page_offset >> k.mode.top_shift) & 511, 512, engine=k.engine)
    pf = tree.tables[:, 0] if len(tree.tables) else np.zeros(0, _U64)
    return np.unique(np.concatenate([np.array([k.pgd_pfn], _U64), pf]))


def write_raw(k, directory: str) -> dict:
    """``directory/meta.json`` and the flat image (``memory.img``, or 1 TiB chunks plus a LiME
    file): :func:`emu.tools.rawimage.write_raw`; returns the metadata."""
    return rawimage.write_raw(k, directory, table_pfns(k))


# ---------------------------------------------------------------------------
# emu dump
# ---------------------------------------------------------------------------
EXAMPLES_DUMP = """examples:
  emu dump                                   ptdump of the default layout's direct map (profile 6.1)
  emu dump --profile 4.19 --e820 map.json    diff it against /sys/kernel/debug/page_tables/kernel
  emu dump --format json > entries.json      every present entry: level, table page, index, value
  emu dump --format raw out/                 out/memory.img (sparse) + out/meta.json for volatility3
"""


def register(sub) -> None:
    from emu.tools.options import add_layout_options, layout
    import argparse as _a
    p = sub.add_parser("dump", help="dump the emulated tables (ptdump text, JSON entries, raw physical image)",
                       epilog=EXAMPLES_DUMP, formatter_class=_a.RawDescriptionHelpFormatter)
    p.add_argument("--format", choices=["ptdump", "json", "raw"], default="ptdump")
    p.add_argument("dir", nargs="?", metavar="DIR", help="output directory for --format raw")
    p.add_argument("--json", action="store_true", help="same as --format json")
    p.add_argument("--generic-ptdump", choices=["auto", "yes", "no"], default="auto",
                   help="name top-level holes p4d (5.6+ generic ptdump) or pgd (older); default: by profile")
    add_layout_options(p)
    p.set_defaults(func=lambda args: cmd_dump(args, layout))


def cmd_dump(args: argparse.Namespace, layout) -> int:
    from emu.tools.options import CliError, engine_of
    from emu.boot.emulate import run
    fmt = "json" if args.json else args.format
    if fmt == "raw" and not args.dir:
        raise CliError("--format raw needs an output directory")
    if fmt == "raw":
        rawimage.check_directory(args.dir)          # before anything runs
    desc = layout(args)
    result = run(desc, check=False, max_memory=args.max_memory,
                     engine=engine_of(args))
    from emu.tools.options import say_assumptions
    say_assumptions(result)
    if result.panic:
        raise CliError(f"the emulated kernel panicked, no tables to dump: {result.panic}")
    k = result.kernel
    if fmt == "ptdump":
        gen = None if args.generic_ptdump == "auto" else args.generic_ptdump == "yes"
        print("\n".join(ptdump_lines(k, gen)))
    elif fmt == "json":
        from emu.kernel.estimate import guard_entries
        guard_entries(count_entries(k), args.max_memory)     # the listing is held whole: refuse first
        print(dumps(dump_document(k, table_entries(k)), indent=None))
    else:
        print(dumps(write_raw(k, args.dir)))
    return 0


__all__ = ["translate", "walk_segments", "ptdump_lines", "table_entries", "count_entries", "table_pfns", "write_raw", "register"]
