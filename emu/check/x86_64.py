"""Verification of a finished emulation, knowing nothing of how the tables were built.

The checker reads the e820 map (after the kernel's own edits), the profile's
rules (flags, page-size policy, counting), memblock's final reservations, the
kernel log's ``init_memory_mapping`` calls and their ``[mem ...] page`` pieces,
and the physical memory.  It walks the tables from CR3 as the MMU does
(:func:`emu.machine.mmu.enumerate_tables`, cross-checked with :func:`emu.machine.mmu.translate`)
and reports every violation with its address and the rule it breaks.

Rules (the ``rule`` field of a :class:`Violation`):

``map.offset``       a leaf of the direct map translates ``va`` to something else than ``va - PAGE_OFFSET``
``map.flags``        a leaf's flags differ from the profile's ``PAGE_KERNEL``/``PAGE_KERNEL_LARGE``
``map.size``         a leaf is larger than the log's ``page`` size for that range, or smaller
                     without another logged piece that explains the smaller table
``map.missing``      RAM the kernel maps (memblock memory below ``max_pfn``, and the ISA range) is not mapped
``map.hole``         a page that is not entirely e820 RAM is mapped outside the ISA range
``map.beyond``       something at or above ``max_pfn`` is mapped (beyond what a large leaf over RAM reaches)
``map.outside``      a leaf outside the direct-map region of the top-level table
``walk.mismatch``    the MMU walk disagrees with the enumeration
``pt.reserved-bits`` a present entry has reserved bits set (including low pfn bits of a large leaf)
``pt.entry-flags``   a table entry (pointer to a lower table) has other flags than ``_PAGE_TABLE``
``pt.not-ram``       a page-table page is not in e820 RAM
``pt.not-reserved``  a page-table page is not reserved in memblock
``pt.image``         a page-table page from memblock overlaps the kernel image
``pt.initrd``        a page-table page overlaps the initrd
``pt.duplicate``     a page was handed out twice as a page table
``pt.multi-ref``     a table page is referenced by more than one entry
``pt.unknown``       an entry points to a page never allocated as a page table (outside the kernel image)
``pt.unreachable``   an allocated page-table page is not reachable from CR3
``pt.outside-brk``   a page counted as BRK lies outside ``[pgt_buf_start, pgt_buf_top)``
``pt.unmapped-write`` (the seed's rule) a page-table page taken from memblock was not yet mapped by an
                     earlier ``init_memory_mapping`` call when the kernel wrote it
``acct.directmap``   ``DirectMap4k/2M/1G`` differ from the count derived from the leaves and the logged pieces
``acct.tables``      page-table pages per level differ between the allocation log, the walk and the
                     number of distinct slots the leaves need
``image.*``          the kernel image's half of the root table (PGD[511]): see :mod:`emu.check.image`

This module checks x86-64 (4- and 5-level paging); :mod:`emu.check.i386` checks PAE and
32-bit paging with the same rules where they apply.  The checker imports nothing of the
emulated kernel: it reads the machine (physical memory, the MMU walk), the kernel's
printed lines (with the boot-log reader of :mod:`emu.inputs`) and the state the boot
left (:mod:`emu.check.view` lists every field it reads), and knows each version only
through its profile's data.  It works on maximal leaf runs and numpy columns, so a
1 TiB layout mapped with 4 KiB pages (500,000 table pages) is checked in well under a
second; a small map (at most :data:`SMALL` runs and table pages, the usual case) has its
runs, pages and logged pieces checked as Python lists instead, by the same rules with the
same messages in the same order, because there each numpy call costs more than the loop.
"""
from __future__ import annotations

import bisect
from typing import Any, Dict, List, Optional, Set, Tuple

import numpy as np

from emu.check.intervals import (
    Interval,
    arrays as _arrays,
    bytes_below as _bytes_below,
    first_cover as _first_cover,
    inside as _inside,
    intersect as _intersect,
    merge as _merge,
    subtract as _subtract,
)
from emu.check.image import verify_kernel_image
from emu.check.report import MAX_PER_RULE, Report, Violation
from emu.inputs.dmesg import PIECE_SHIFTS, page_pieces
from emu.machine import bits
from emu.machine.mmu import MMU, TreeSummary, enumerate_tables, translate
from emu.machine.phys import BLOCK_SHIFT
from emu.machine.abi import SRC_BRK, SRC_IMAGE, SRC_NAMES

PAGE_SHIFT = bits.PAGE_SHIFT
PAGE_SIZE = bits.PAGE_SIZE
ISA_END = 0x100000
_U64 = np.uint64
#: e820 types the kernel maps as RAM (E820_RAM, E820_RESERVED_KERN)
RAM_TYPES = (1, 128)
#: top-level slots of the direct map (2^46 bytes of 2^39-byte slots, or 2^55 of 2^48)
DIRECT_MAP_SLOTS = 128
#: flags of an entry that points to a lower table: _PAGE_TABLE (P RW US A D)
TABLE_ENTRY_FLAGS = 0x067
#: _KERNPG_TABLE (P RW A D): entries of the static tables in the kernel image
KERNPG_TABLE_FLAGS = 0x063
_SIZE_NAMES = {12: "4K", 21: "2M", 30: "1G"}
#: up to this many leaf runs (and table pages) the checks run on Python lists: a numpy call
#: costs about a microsecond whatever its size, more than a loop over a few dozen rows, and
#: a small map has 5-50 runs and table pages; above it, the same rules on numpy columns
SMALL = 256


# ---------------------------------------------------------------------------
# what the profile says the entries look like
# ---------------------------------------------------------------------------
def expected_flags(k: Any, shift: int) -> int:
    """Flags of a direct-map leaf of size ``1 << shift`` for this CPU and profile.

    ``PAGE_KERNEL`` (P RW A D G NX) for 4K, ``| PSE`` for 2M/1G; NX only with
    CPU NX; GLOBAL dropped without PGE (profiles that clear it) or with PTI on
    profiles with ``__default_kernel_pte_mask`` -- except 1G leaves built as
    ``prot | __PAGE_KERNEL_LARGE`` (5.8+), which carry G again.
    """
    cpu, prof, p = k.params.cpu, k.profile, k.params
    flags = bits.P | bits.RW | bits.A | bits.D
    pge = cpu.pge or not prof.pge_clears_global
    glob = pge and not (p.pti and prof.default_kernel_pte_mask)
    if shift == 30 and prof.pud_large_from_prot:
        glob = pge
    if glob:
        flags |= bits.G
    if shift > PAGE_SHIFT:
        flags |= bits.PS
    if cpu.nx:
        flags |= bits.XD
    return flags


def prepopulated_ident(k: Any) -> bool:
    """Does the profile's kernel image pre-populate the direct map's first GiB
    (static ``level3_ident_pgt``/``level2_ident_pgt``: 512 executable 2M leaves)?"""
    prof = k.profile
    return getattr(prof, "early_direct_map", "empty") == "ident_1g" or bool(getattr(prof, "prepopulated_ident", False))


def allowed_leaf_flags(k: Any, shift: int, pa: int) -> Tuple[int, ...]:
    """All flag values a leaf of this size at ``pa`` may carry under the profile.

    Where the kernel image pre-populates the first GiB of the direct map with
    ``__PAGE_KERNEL_IDENT_LARGE_EXEC`` 2M leaves (0x1E3, written by head_64.S,
    not masked), the kernel may keep them, or split them into 4K PTEs carrying
    the leaf's flags minus PSE (0x163, masked by ``__supported_pte_mask``).
    """
    out = [expected_flags(k, shift)]
    if prepopulated_ident(k) and pa < (1 << 30):
        if shift == 21:
            out.append(0x1E3)
        elif shift == 12:
            glob = bits.G if (k.params.cpu.pge or not k.profile.pge_clears_global) else 0
            out.append(0x063 | glob)
    return tuple(out)


# ---------------------------------------------------------------------------
# the checker
# ---------------------------------------------------------------------------
def ram_ranges(k: Any) -> List[Interval]:
    """e820 RAM and RESERVED_KERN (the final table), merged, each range rounded inward to
    whole pages."""
    out = []
    for s, e in _merge([(x.addr, x.addr + x.size) for x in k.e820.entries if x.type in RAM_TYPES and x.size]):
        s2 = -(-s // PAGE_SIZE) * PAGE_SIZE
        e2 = e // PAGE_SIZE * PAGE_SIZE
        if s2 < e2:
            out.append((s2, e2))
    return out


def end_of_low_ram(k: Any) -> int:
    """The end of e820 RAM below 4 GiB (what ``e820_end_of_low_ram_pfn`` gives, in bytes)."""
    four_g = 1 << 32
    ends = [min(x.addr + x.size, four_g) for x in k.e820.entries if x.type == 1 and x.addr < four_g]
    return max(ends, default=0) // PAGE_SIZE * PAGE_SIZE


def pre_top_down(k: Any) -> bool:
    """Profiles before the top-down rewrite (<= 3.8): ``setup_arch`` maps whole ranges."""
    return getattr(k.profile, "scheme", "brk_top_down") == "early_table_space"


def kernel_maps(k: Any, ram: Optional[List[Interval]] = None) -> List[Interval]:
    """What the kernel promises to map (``ram``: :func:`ram_ranges`, when the caller has it).

    3.9+ and the seed: the ISA range, and memblock memory (e820 RAM and
    RESERVED_KERN, merged, trimmed to whole pages) below ``max_pfn``.  Before the
    top-down rewrite: all of ``[0, max_low_pfn)`` and ``[4G, max_pfn)``, holes
    included, except GiB blocks no e820 entry touches (``phys_pud_init`` skips them).
    """
    end = k.max_pfn << PAGE_SHIFT
    if pre_top_down(k):
        four_g = 1 << 32
        low = end_of_low_ram(k) if k.max_pfn > (four_g >> PAGE_SHIFT) else k.max_pfn << PAGE_SHIFT
        want = [(0, max(low, ISA_END))]
        if end > four_g:
            want.append((four_g, end))
        empty = []
        ents = [(e.addr, e.addr + e.size) for e in k.e820.entries if e.size]
        for s, e in want:
            g = s >> 30 << 30
            while g < e:
                if not any(a < g + (1 << 30) and b > g for a, b in ents):
                    empty.append((g, g + (1 << 30)))
                g += 1 << 30
        return _subtract(_merge(want), _merge(empty))
    want = [(0, ISA_END)]
    for s, e in (ram_ranges(k) if ram is None else ram):
        e = min(e, end)
        if s < e:
            want.append((s, e))
    return _merge(want)


def may_map(k: Any, want: Optional[List[Interval]] = None) -> List[Interval]:
    """Where the kernel may map pages that are not entirely RAM: the ISA range
    (3.9+), or everything it promises to map (before the rewrite; ``want``:
    :func:`kernel_maps`, when the caller has it)."""
    if pre_top_down(k):
        return _merge((kernel_maps(k) if want is None else want) + [(0, ISA_END)])
    return [(0, ISA_END)]


def _slot_lookup(k: Any, pfns: np.ndarray) -> np.ndarray:
    """Frame slots of ``pfns`` in the sparse store (-1 when unbacked)."""
    phys = k.phys
    d = (pfns >> _U64(BLOCK_SHIFT)).astype(np.int64)
    ok = d < phys.directory.shape[0]
    b = np.full(len(pfns), -1, np.int64)
    b[ok] = phys.directory[d[ok]]
    out = np.full(len(pfns), -1, np.int64)
    good = (b >= 0) & (b < phys.nblocks)      # (the index's rows past nblocks are not initialised)
    out[good] = phys.blocks[b[good], (pfns[good] & _U64((1 << BLOCK_SHIFT) - 1)).astype(np.int64)]
    return out


class _Ctx:
    def __init__(self, k: Any, r: Report, engine: Any = None) -> None:
        self.k, self.r, self.mode = k, r, k.mode
        self.po = k.page_offset
        self.end = k.max_pfn << PAGE_SHIFT
        self.engine = engine
        self.mmu = MMU(cr3=k.pgd_pfn << PAGE_SHIFT, levels=k.mode.levels, maxphyaddr=52, nxe=k.params.cpu.nx)
        #: leaves counted again by the 5.2+ P4D wrap, by leaf shift (reported in a note)
        self.wrap_counts: Dict[int, int] = {}
        #: e820 RAM, merged and page-trimmed: three checks read it, computed once
        self.ram = ram_ranges(k)
        #: the enumeration's leaf runs as Python rows ``[va, va_end, pa, shift, flags, eff]``
        #: when there are at most :data:`SMALL` of them (set by :func:`verify_x86_64`), else None
        self.rows: Optional[List[List[int]]] = None
        #: the allocation log's pfn and level columns as Python lists, when
        #: :func:`_check_table_pages` read them for a small map (the table counts reuse them)
        self.pages: Optional[Tuple[List[int], List[int]]] = None
        #: the top-level slots of the direct map: 64 TiB (4-level) or 32 PiB (5-level) from
        #: PAGE_OFFSET, 128 slots either way
        lo = (self.po >> self.mode.top_shift) & 511
        self.direct_slots = range(lo, min(512, lo + DIRECT_MAP_SLOTS))

    def enumerate(self) -> TreeSummary:
        """Every present entry of the direct map's top-level slots."""
        sl = self.direct_slots
        return enumerate_tables(self.k.phys, self.mmu, sl.start, sl.stop, engine=self.engine)

    def translate(self, vas: np.ndarray):
        """The MMU walk of ``vas``; only ``pa`` and ``error`` are filled (all the checks read).
        The store was checked by :meth:`enumerate`, which runs first; the checker changes nothing."""
        return translate(self.k.phys, self.mmu, vas, full=False, engine=self.engine, store_checked=True)

    def dm_rows(self) -> List[List[int]]:
        """The rows of the direct map's runs (``va >= PAGE_OFFSET``), small maps only."""
        assert self.rows is not None
        po = self.po
        return [row for row in self.rows if row[0] >= po]


def _check_leaves(c: _Ctx, tree: TreeSummary) -> List[Interval]:
    """map.offset / map.flags / map.outside; returns the mapped physical ranges."""
    k, r, po = c.k, c.r, c.po
    runs = tree.runs
    n = len(runs)
    r.checked["leaf_runs"] = n
    if n == 0:
        return []
    if c.rows is not None:
        return _check_leaves_small(c, c.rows)
    va, va_end, pa, shift, flags = runs[:, 0], runs[:, 1], runs[:, 2], runs[:, 3], runs[:, 4]
    below = va < _U64(po)
    for i in np.nonzero(below)[0][:MAX_PER_RULE]:
        r.fail(f"leaf at {int(va[i]):#x} lies below PAGE_OFFSET {po:#x}", "map.outside", int(va[i]))
    r.count("map.outside", int(below.sum()) - min(int(below.sum()), MAX_PER_RULE))
    off = va - _U64(po)
    bad = ~below & (off != pa)
    for i in np.nonzero(bad)[0][:MAX_PER_RULE]:
        r.fail(f"[{int(va[i]):#x}-{int(va_end[i]) - 1:#x}] maps pa {int(pa[i]):#x}, not {int(off[i]):#x}",
               "map.offset", int(va[i]))
    r.count("map.offset", int(bad.sum()) - min(int(bad.sum()), MAX_PER_RULE))
    # flags: one comparison per run (runs break on any flag change)
    okf = np.zeros(n, bool)
    for s in (12, 21, 30):
        sel = shift == _U64(s)
        if not sel.any():
            continue
        allowed = allowed_leaf_flags(k, s, 0)
        strict = allowed[:1]
        lowpa = pa < _U64(1 << 30)
        for a in allowed:
            ok_here = flags == _U64(a)
            if a not in strict:
                ok_here &= lowpa
            okf |= sel & ok_here
    badf = ~okf
    for i in np.nonzero(badf)[0][:MAX_PER_RULE]:
        s = int(shift[i])
        r.fail(f"[mem {int(pa[i]):#010x}-{int(pa[i]) + int(va_end[i] - va[i]) - 1:#010x}] {1 << s >> 10}K leaves "
               f"have flags {int(flags[i]):#x}, expected {expected_flags(k, s):#x}", "map.flags", int(pa[i]))
    r.count("map.flags", int(badf.sum()) - min(int(badf.sum()), MAX_PER_RULE))
    sizes = (va_end - va)
    r.mapped = {"4k": int(sizes[shift == _U64(12)].sum()), "2M": int(sizes[shift == _U64(21)].sum()),
                "1G": int(sizes[shift == _U64(30)].sum())}
    keep = ~below
    return _merge(list(zip(pa[keep].tolist(), (pa[keep] + sizes[keep]).tolist())))


def _check_leaves_small(c: _Ctx, rows: List[List[int]]) -> List[Interval]:
    """:func:`_check_leaves` on Python rows (a small map): the same rules, messages and order."""
    k, r, po = c.k, c.r, c.po
    below = [row for row in rows if row[0] < po]
    for va, *_ in below[:MAX_PER_RULE]:
        r.fail(f"leaf at {va:#x} lies below PAGE_OFFSET {po:#x}", "map.outside", va)
    r.count("map.outside", len(below) - min(len(below), MAX_PER_RULE))
    above = [row for row in rows if row[0] >= po] if below else rows
    bad = [row for row in above if row[0] - po != row[2]]
    for va, va_end, pa, *_ in bad[:MAX_PER_RULE]:
        r.fail(f"[{va:#x}-{va_end - 1:#x}] maps pa {pa:#x}, not {va - po:#x}", "map.offset", va)
    r.count("map.offset", len(bad) - min(len(bad), MAX_PER_RULE))
    # flags: the profile's value, or (first GiB only) one of the others it allows; in the same
    # pass, the bytes mapped by each leaf size
    allowed: Dict[int, Tuple[int, ...]] = {}      # by leaf shift, read at its first leaf
    low = 1 << 30
    badf = []
    by = {12: 0, 21: 0, 30: 0}
    for row in rows:
        sh = row[3]
        a = allowed.get(sh)
        if a is None and sh in by:
            a = allowed[sh] = allowed_leaf_flags(k, sh, 0)
        if a is not None:
            by[sh] += row[1] - row[0]
        fl = row[4]
        if a is None or not (fl == a[0] or (fl in a[1:] and row[2] < low)):
            badf.append(row)
    for va, va_end, pa, s, fl, _ in badf[:MAX_PER_RULE]:
        r.fail(f"[mem {pa:#010x}-{pa + (va_end - va) - 1:#010x}] {1 << s >> 10}K leaves "
               f"have flags {fl:#x}, expected {expected_flags(k, s):#x}", "map.flags", pa)
    r.count("map.flags", len(badf) - min(len(badf), MAX_PER_RULE))
    r.mapped = {"4k": by[12], "2M": by[21], "1G": by[30]}
    return _merge([(row[2], row[2] + row[1] - row[0]) for row in above])


def _check_coverage(c: _Ctx, mapped: List[Interval]) -> None:
    k, r = c.k, c.r
    want = kernel_maps(k, c.ram)
    missing = _subtract(want, mapped)
    for s, e in missing[:MAX_PER_RULE]:
        r.fail(f"RAM [mem {s:#010x}-{e - 1:#010x}] is not mapped", "map.missing", s)
    r.count("map.missing", len(missing) - min(len(missing), MAX_PER_RULE))
    ram = _merge(c.ram + may_map(k, want))
    holes = _subtract(mapped, ram)
    for s, e in holes[:MAX_PER_RULE]:
        r.fail(f"non-RAM [mem {s:#010x}-{e - 1:#010x}] is mapped", "map.hole", s)
    r.count("map.hole", len(holes) - min(len(holes), MAX_PER_RULE))
    lim = max(c.end, ISA_END)
    # (mapped is merged and sorted: nothing lies beyond unless its last range ends past the limit)
    beyond = _subtract(mapped, [(0, lim)]) if mapped and mapped[-1][1] > lim else []
    nb = 0
    for s, e in beyond:
        if _subtract([(s, e)], ram):
            continue  # reported as map.hole
        # a large leaf that starts below max_pfn may reach past it, over RAM only
        if s == c.end and e - s < (1 << 30):
            continue
        nb += 1
        if nb <= MAX_PER_RULE:
            r.fail(f"[mem {s:#010x}-{e - 1:#010x}] above max_pfn {k.max_pfn:#x} is mapped", "map.beyond", s)
    r.count("map.beyond", nb - min(nb, MAX_PER_RULE))
    r.checked["ram_bytes"] = sum(e - s for s, e in want)


def _check_walk(c: _Ctx, tree: TreeSummary) -> None:
    """The MMU walk of the first and last byte of every run agrees with the enumeration."""
    runs, r = tree.runs, c.r
    if not len(runs):
        r.checked["walks"] = 0
        return
    if c.rows is not None:
        rows = c.rows
        probe_l = [row[0] for row in rows] + [row[1] - 1 for row in rows]
        exp_l = [row[2] for row in rows] + [row[2] + (row[1] - row[0]) - 1 for row in rows]
        t = c.translate(np.array(probe_l, _U64))
        pa_l, err_l = t.pa.tolist(), t.error.tolist()
        # (every walk agrees, the usual case: two list comparisons instead of a loop)
        if pa_l == exp_l and err_l.count(-1) == len(err_l):
            bad_l = []
        else:
            bad_l = [i for i, (p, e, x) in enumerate(zip(pa_l, err_l, exp_l)) if e != -1 or p != x]
        for i in bad_l[:MAX_PER_RULE]:
            r.fail(f"walk of {probe_l[i]:#x} gives pa {pa_l[i]:#x} error {err_l[i]}, "
                   f"enumeration says {exp_l[i]:#x}", "walk.mismatch", probe_l[i])
        r.count("walk.mismatch", len(bad_l) - min(len(bad_l), MAX_PER_RULE))
        r.checked["walks"] = len(probe_l)
        return
    probes = np.concatenate([runs[:, 0], runs[:, 1] - _U64(1)])
    t = c.translate(probes)
    exp_pa = np.concatenate([runs[:, 2], runs[:, 2] + (runs[:, 1] - runs[:, 0]) - _U64(1)])
    bad = np.nonzero((t.error != -1) | (t.pa != exp_pa))[0]
    for i in bad[:MAX_PER_RULE]:
        r.fail(f"walk of {int(probes[i]):#x} gives pa {int(t.pa[i]):#x} error {int(t.error[i])}, "
               f"enumeration says {int(exp_pa[i]):#x}", "walk.mismatch", int(probes[i]))
    r.count("walk.mismatch", len(bad) - min(len(bad), MAX_PER_RULE))
    r.checked["walks"] = int(probes.shape[0])


def _check_upper_entries(c: _Ctx, tree: TreeSummary, image_lo: int, image_hi: int) -> None:
    """Every present entry of the non-PTE tables: table pointers carry _PAGE_TABLE,
    large leaves have no low pfn bits (reserved)."""
    k, r = c.k, c.r
    if tree.reserved_entries:
        r.fail(f"{tree.reserved_entries} present entries have reserved bits set", "pt.reserved-bits")
    if tree.odd is not None:
        _check_odd_entries(c, tree, image_lo, image_hi)
        return
    tabs = tree.tables
    root = np.array([[k.pgd_pfn, c.mode.levels]], _U64)
    upper = np.concatenate([root, tabs[tabs[:, 1] >= _U64(2), :2]]) if len(tabs) else root
    slots = _slot_lookup(k, upper[:, 0])
    good = slots >= 0
    upper, slots = upper[good], slots[good]
    if not len(upper):
        return
    # in chunks of 512 table pages: a 64 TiB map has 65k of them (256 MiB of entries)
    n_bad_ptr = n_bad_low = 0
    for c0 in range(0, len(upper), 512):
        up, sl = upper[c0:c0 + 512], slots[c0:c0 + 512]
        n1, n2 = _check_upper_chunk(c, up, sl, image_lo, image_hi, n_bad_ptr, n_bad_low)
        n_bad_ptr, n_bad_low = n_bad_ptr + n1, n_bad_low + n2
    r.count("pt.entry-flags", n_bad_ptr - min(n_bad_ptr, MAX_PER_RULE))
    r.count("pt.reserved-bits", n_bad_low - min(n_bad_low, MAX_PER_RULE))


def _check_odd_entries(c: _Ctx, tree: TreeSummary, image_lo: int, image_hi: int) -> None:
    """The same rules as :func:`_check_upper_chunk`, on the entries the C enumeration already
    singled out while visiting every entry (pointers without ``_PAGE_TABLE``, large leaves
    with low address bits), instead of re-reading every upper table page."""
    k, r = c.k, c.r
    tp = k.table_pages
    static: Optional[Set[int]] = None        # the image's static tables, read at the first pointer
    n_ptr = n_low = 0
    odd = tree.odd if tree.odd is not None else np.empty((0, 4), _U64)
    for table_pfn, index, e, kind in odd.tolist():
        lvl = _level_of(k, tree, table_pfn)
        if kind == 1:
            if static is None:
                static = set(tp.column("pfn")[tp.column("src") == SRC_IMAGE].tolist())
            fl = e & 0x8000000000000FFF
            target = (e & 0x000FFFFFFFFFF000) >> 12
            in_image = (target in static) if static else (
                image_lo <= target < image_hi and not (k.pgt_buf_start <= target < k.pgt_buf_top))
            if in_image and fl == KERNPG_TABLE_FLAGS:
                continue
            n_ptr += 1
            if n_ptr <= MAX_PER_RULE:
                r.fail(f"entry {index} of table page {table_pfn << 12:#x} (level {lvl}) has flags {fl:#x}, "
                       f"expected {TABLE_ENTRY_FLAGS:#x}", "pt.entry-flags", table_pfn << 12)
        else:
            n_low += 1
            if n_low <= MAX_PER_RULE:
                r.fail(f"large leaf {e:#x} (entry {index} of {table_pfn << 12:#x}) has low pfn bits set",
                       "pt.reserved-bits", table_pfn << 12)
    extra = max(0, tree.odd_count - len(odd))
    r.count("pt.entry-flags", max(0, n_ptr - MAX_PER_RULE) + extra)
    r.count("pt.reserved-bits", max(0, n_low - MAX_PER_RULE))


def _level_of(k: Any, tree: TreeSummary, table_pfn: int) -> int:
    if table_pfn == k.pgd_pfn:
        return k.paging_levels
    hit = np.nonzero(tree.tables[:, 0] == _U64(table_pfn))[0] if len(tree.tables) else np.empty(0, np.intp)
    return int(tree.tables[hit[0], 1]) if len(hit) else 0


def _check_upper_chunk(c: _Ctx, upper: np.ndarray, slots: np.ndarray, image_lo: int, image_hi: int,
                       seen_ptr: int, seen_low: int) -> tuple:
    """One chunk of :func:`_check_upper_entries`; returns the counts of bad pointers and bad leaves."""
    k, r = c.k, c.r
    ents2 = k.phys.frames[slots]                             # (n, 512)
    row, col = np.nonzero(ents2 & _U64(1))                   # present entries only
    ents = ents2[row, col]
    lvl = upper[row, 1].astype(np.int64)                     # level of the page holding each entry
    large = ((ents & _U64(bits.PS)) != _U64(0)) & (lvl <= 3)
    pointer = ~large
    fl = ents & _U64(0x8000000000000FFF)
    target = (ents & _U64(0x000FFFFFFFFFF000)) >> _U64(12)
    tp = k.table_pages
    static = tp.column("pfn")[tp.column("src") == SRC_IMAGE]
    if len(static):
        in_image = np.zeros(len(ents), bool)
        for p in static.tolist():
            in_image |= target == _U64(p)
    else:
        in_image = (target >= _U64(image_lo)) & (target < _U64(image_hi)) & \
            ((target < _U64(k.pgt_buf_start)) | (target >= _U64(k.pgt_buf_top)))
    bad_ptr = pointer & (fl != _U64(TABLE_ENTRY_FLAGS)) & ~(in_image & (fl == _U64(KERNPG_TABLE_FLAGS)))
    # the top level covers other regions too: judge only the direct map's slots
    lo = (c.po >> c.mode.top_shift) & 511
    bad_ptr &= ~((lvl == c.mode.levels) & (col < lo))
    idx = np.nonzero(bad_ptr)[0]
    n_ptr = len(idx)
    for i in idx[:max(0, MAX_PER_RULE - seen_ptr)]:
        r.fail(f"entry {int(col[i])} of table page {int(upper[row[i], 0]) << 12:#x} (level {int(lvl[i])}) has flags "
               f"{int(fl[i]):#x}, expected {TABLE_ENTRY_FLAGS:#x}", "pt.entry-flags", int(upper[row[i], 0]) << 12)
    lowmask = np.where(lvl == 2, (1 << 21) - 1, (1 << 30) - 1).astype(_U64) & _U64(~0x1FFF & 0xFFFFFFFFFFFFFFFF)
    idx = np.nonzero(large & ((ents & lowmask) != _U64(0)))[0]
    for i in idx[:max(0, MAX_PER_RULE - seen_low)]:
        r.fail(f"large leaf {int(ents[i]):#x} (entry {int(col[i])} of {int(upper[row[i], 0]) << 12:#x}) has low pfn "
               f"bits set", "pt.reserved-bits", int(upper[row[i], 0]) << 12)
    return n_ptr, len(idx)


def image_range(k: Any) -> Tuple[int, int]:
    """The kernel image as the boot placed it, as pfns [lo, hi): ``_text`` .. ``_brk_end``
    (the boot's ``image`` input, as resolved for this emulation)."""
    lo, hi = k.image
    return lo >> PAGE_SHIFT, -(-max(hi, lo + PAGE_SIZE) // PAGE_SIZE)


def early_mapped(k: Any) -> List[Interval]:
    """What the direct map covers before ``init_mem_mapping`` writes anything: the
    static identity tables of the kernel image where the profile has them."""
    return [(0, 1 << 30)] if prepopulated_ident(k) else []


def _check_table_pages(c: _Ctx, tree: TreeSummary) -> Tuple[int, int]:
    k, r = c.k, c.r
    tp = k.table_pages
    pfn, src, call, level = tp.column("pfn"), tp.column("src"), tp.column("call"), tp.column("level")
    r.checked["table_pages"] = len(tp)
    brk_lo, brk_hi = k.pgt_buf_start, k.pgt_buf_top
    image_lo, image_hi = image_range(k)
    root = _U64(k.pgd_pfn)

    small = len(pfn) <= SMALL and len(tree.tables) <= SMALL
    # allocation log vs what the walk reaches (the root PGD is reached through CR3)
    if small:
        pfn_l, level_l = pfn.tolist(), level.tolist()
        c.pages = (pfn_l, level_l)
        ref_l = sorted(tree.tables[:, 0].tolist())
        alloc_l = sorted(p for p in pfn_l if p != k.pgd_pfn)
        same = ref_l == alloc_l and len(set(alloc_l)) == len(alloc_l)
    else:
        ref = np.sort(np.ascontiguousarray(tree.tables[:, 0])) if len(tree.tables) else np.zeros(0, _U64)
        alloc = np.sort(pfn[pfn != root])
        same = (ref.shape == alloc.shape and np.array_equal(ref, alloc)
                and (len(alloc) < 2 or bool((np.diff(alloc) > 0).all())))
    if not same:
        logged = pfn[pfn != root]
        ref = np.sort(np.ascontiguousarray(tree.tables[:, 0])) if len(tree.tables) else np.zeros(0, _U64)
        uniq, counts = np.unique(ref, return_counts=True)
        multi = uniq[counts > 1]
        r.fail_each(multi, "pt.multi-ref", lambda p: f"page-table page {p << 12:#x} is referenced "
                    f"{int(counts[uniq == p][0])} times")
        unknown = np.setdiff1d(uniq, logged)
        unknown = unknown[(unknown < _U64(image_lo)) | (unknown >= _U64(image_hi))]
        r.fail_each(unknown, "pt.unknown",
                    lambda p: f"entry points to {p << 12:#x}, which was never allocated as a page table")
        u, cnt = np.unique(logged, return_counts=True)
        r.fail_each(u[cnt > 1], "pt.duplicate",
                    lambda p: f"page-table page {p << 12:#x} allocated {int(cnt[u == p][0])} times")
        r.fail_each(np.setdiff1d(logged, uniq), "pt.unreachable",
                    lambda p: f"page-table page {p << 12:#x} is not reachable from CR3")
    if not len(pfn):
        return image_lo, image_hi
    if small:
        _check_table_pages_small(c, pfn_l, src.tolist(), call.tolist(), level_l, image_lo, image_hi)
        return image_lo, image_hi
    pa = pfn << _U64(PAGE_SHIFT)
    pa_end = pa + _U64(PAGE_SIZE)

    def flag(mask: np.ndarray, rule: str, text: str) -> None:
        idx = np.nonzero(mask)[0]
        for i in idx[:MAX_PER_RULE]:
            r.fail(text.format(int(pa[i])), rule, int(pa[i]))
        r.count(rule, len(idx) - min(len(idx), MAX_PER_RULE))

    ram_s, ram_e = _arrays(c.ram)
    is_image = src == SRC_IMAGE
    flag(~is_image & ~_inside(ram_s, ram_e, pa, pa_end), "pt.not-ram", "page-table page {:#x} is not in e820 RAM")
    rs = np.array(k.memblock.reserved.bases, _U64)
    re_ = np.array(k.memblock.reserved.ends, _U64)
    flag(~_inside(rs, re_, pa, pa_end), "pt.not-reserved", "page-table page {:#x} is not reserved in memblock")
    is_brk = src == SRC_BRK
    in_image = (pfn >= _U64(image_lo)) & (pfn < _U64(image_hi))
    flag(is_brk & ((pfn < _U64(brk_lo)) | (pfn >= _U64(brk_hi))), "pt.outside-brk",
         "page-table page {:#x} counted as BRK lies outside the BRK buffer "
         f"[{brk_lo << 12:#x}-{(brk_hi << 12) - 1:#x}]")
    flag(~is_brk & ~is_image & in_image, "pt.image",
         "page-table page {:#x} lies inside the kernel image "
         f"[{image_lo << 12:#x}-{(image_hi << 12) - 1:#x}]")
    flag(is_image & ~in_image, "pt.image",
         "static page-table page {:#x} lies outside the kernel image "
         f"[{image_lo << 12:#x}-{(image_hi << 12) - 1:#x}]")
    dynamic = ~is_brk & ~is_image
    if k.params.initrd is not None:
        s, e = k.params.initrd
        e = -(-e // PAGE_SIZE) * PAGE_SIZE
        # (BRK pages are part of the kernel image: where the loader put the initrd is its business)
        flag(dynamic & (pa < _U64(e)) & (pa_end > _U64(s)), "pt.initrd",
             "page-table page {:#x} overlaps the initrd " f"[{s:#x}-{e - 1:#x}]")

    # the seed's rule: a page found in memory (memblock, the pre-3.9 buffer) was
    # already mapped -- by the image's static tables or by an earlier
    # init_memory_mapping call -- when the kernel cleared and filled it
    calls = k.calls
    if calls and dynamic.any():
        early = early_mapped(k)
        cs = np.array([a for a, _ in early] + [cl.start for cl in calls], _U64)
        ce = np.array([b for _, b in early] + [max(cl.end, cl.ret) for cl in calls], _U64)
        first = _first_cover(cs, ce, pa[dynamic]) - len(early)
        bad = first >= call[dynamic].astype(np.int64)
        idx = np.nonzero(dynamic)[0][bad]
        via = "__va" if getattr(k.profile, "pgt_access_va", True) else "early_memremap"
        for i in idx[:MAX_PER_RULE]:
            ci = int(call[i])
            cl = calls[ci] if 0 <= ci < len(calls) else None
            where = f"init_memory_mapping [mem {cl.start:#010x}-{cl.end - 1:#010x}]" if cl else "?"
            r.fail(f"page-table page {int(pa[i]):#x} ({SRC_NAMES.get(int(src[i]), '?')}, level {int(level[i])}, "
                   f"reached through {via}) was written during {where} before any earlier call mapped it",
                   "pt.unmapped-write", int(pa[i]))
        r.count("pt.unmapped-write", len(idx) - min(len(idx), MAX_PER_RULE))
    return image_lo, image_hi


def _check_table_pages_small(c: _Ctx, pfn: List[int], src: List[int], call: List[int], level: List[int],
                             image_lo: int, image_hi: int) -> None:
    """The page rules of :func:`_check_table_pages` on Python lists (a small map): the same
    rules, in the same order, with the same messages."""
    k, r = c.k, c.r
    brk_lo, brk_hi = k.pgt_buf_start, k.pgt_buf_top
    pa = [p << PAGE_SHIFT for p in pfn]
    n = len(pfn)

    def flag(bad: List[int], rule: str, text: str) -> None:
        for i in bad[:MAX_PER_RULE]:
            r.fail(text.format(pa[i]), rule, pa[i])
        r.count(rule, len(bad) - min(len(bad), MAX_PER_RULE))

    # one pass over the pages collects every rule's offenders; reported below rule by rule
    ram, res = c.ram, list(zip(k.memblock.reserved.bases, k.memblock.reserved.ends))
    ram_starts, res_starts = [s for s, _ in ram], [s for s, _ in res]
    initrd = k.params.initrd
    if initrd is not None:
        rd_s, rd_e = initrd[0], -(-initrd[1] // PAGE_SIZE) * PAGE_SIZE
    not_ram: List[int] = []
    not_res: List[int] = []
    outside_brk: List[int] = []
    in_image: List[int] = []
    static_out: List[int] = []
    on_initrd: List[int] = []
    dynamic: List[int] = []
    br = bisect.bisect_right
    for i in range(n):
        p, a, x = pfn[i], pa[i], src[i]
        # (inside a sorted disjoint interval list: the last interval starting at or before
        # the page must reach its end)
        if x != SRC_IMAGE:
            j = br(ram_starts, a) - 1
            if j < 0 or a + PAGE_SIZE > ram[j][1]:
                not_ram.append(i)
        j = br(res_starts, a) - 1
        if j < 0 or a + PAGE_SIZE > res[j][1]:
            not_res.append(i)
        if x == SRC_BRK:
            if not brk_lo <= p < brk_hi:
                outside_brk.append(i)
        elif x == SRC_IMAGE:
            if not image_lo <= p < image_hi:
                static_out.append(i)
        else:
            if image_lo <= p < image_hi:
                in_image.append(i)
            dynamic.append(i)
            if initrd is not None and a < rd_e and a + PAGE_SIZE > rd_s:
                on_initrd.append(i)
    flag(not_ram, "pt.not-ram", "page-table page {:#x} is not in e820 RAM")
    flag(not_res, "pt.not-reserved", "page-table page {:#x} is not reserved in memblock")
    flag(outside_brk, "pt.outside-brk",
         "page-table page {:#x} counted as BRK lies outside the BRK buffer "
         f"[{brk_lo << 12:#x}-{(brk_hi << 12) - 1:#x}]")
    flag(in_image, "pt.image",
         "page-table page {:#x} lies inside the kernel image "
         f"[{image_lo << 12:#x}-{(image_hi << 12) - 1:#x}]")
    flag(static_out, "pt.image",
         "static page-table page {:#x} lies outside the kernel image "
         f"[{image_lo << 12:#x}-{(image_hi << 12) - 1:#x}]")
    if initrd is not None:
        flag(on_initrd, "pt.initrd", "page-table page {:#x} overlaps the initrd " f"[{rd_s:#x}-{rd_e - 1:#x}]")
    # the seed's rule (see _check_table_pages): the first interval, in order, that maps the
    # page must come from the image or a call before the one that allocated it
    calls = k.calls
    if calls and dynamic:
        early = early_mapped(k)
        cover = early + [(cl.start, max(cl.end, cl.ret)) for cl in calls]
        bad = []
        for i in dynamic:
            p = pa[i]
            first = next((j for j, (a, b) in enumerate(cover) if a <= p < b), len(cover)) - len(early)
            if first >= call[i]:
                bad.append(i)
        via = "__va" if getattr(k.profile, "pgt_access_va", True) else "early_memremap"
        for i in bad[:MAX_PER_RULE]:
            ci = call[i]
            cl = calls[ci] if 0 <= ci < len(calls) else None
            where = f"init_memory_mapping [mem {cl.start:#010x}-{cl.end - 1:#010x}]" if cl else "?"
            r.fail(f"page-table page {pa[i]:#x} ({SRC_NAMES.get(src[i], '?')}, level {level[i]}, "
                   f"reached through {via}) was written during {where} before any earlier call mapped it",
                   "pt.unmapped-write", pa[i])
        r.count("pt.unmapped-write", len(bad) - min(len(bad), MAX_PER_RULE))


class _LeafIndex:
    """The direct map's leaf runs by size, as physical intervals with running byte sums, so
    the bytes of leaves of one size inside any physical range are two lookups.

    ``rows`` (a small map: the runs as Python rows) builds the lists only; the numpy
    columns are made when a lookup needs them (more than 64 ranges at once)."""

    def __init__(self, runs: Optional[np.ndarray], rows: Optional[List[List[int]]] = None) -> None:
        self.runs, self.rows = runs, rows
        self.by: Dict[int, Tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        #: by size: starts, ends and ``base[i]`` (the bytes of the runs before run i, minus its start)
        self.by_list: Dict[int, Tuple[List[int], List[int], List[int]]] = {}
        if rows is not None:
            # one pass over the rows, each to the lists of its size (other sizes: none exist)
            by = self.by_list = {12: ([], [], []), 21: ([], [], []), 30: ([], [], [])}
            total = {12: 0, 21: 0, 30: 0}        # bytes of the runs so far, by size
            for va, va_end, pa, shift, _, _ in rows:
                lists = by.get(shift)
                if lists is not None:
                    lists[0].append(pa)
                    lists[1].append(pa + (va_end - va))
                    lists[2].append(total[shift] - pa)
                    total[shift] += va_end - va
            return
        assert runs is not None
        for s in (12, 21, 30):
            sel = runs[:, 3] == _U64(s) if len(runs) else np.zeros(0, bool)
            st = runs[sel, 2] if len(runs) else np.zeros(0, _U64)
            en = (runs[sel, 2] + (runs[sel, 1] - runs[sel, 0])) if len(runs) else np.zeros(0, _U64)
            self.by[s] = (st, en, np.cumsum((en - st).astype(np.int64)))
            if len(st) <= 256:
                stl, enl = st.tolist(), en.tolist()
                base, acc = [], 0
                for a_, b_ in zip(stl, enl):
                    base.append(acc - a_)
                    acc += b_ - a_
                self.by_list[s] = (stl, enl, base)

    def arrays(self, s: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The runs of ``1 << s`` leaves as numpy columns: starts, ends, running byte sums."""
        if s not in self.by:
            stl, enl, _ = self.by_list[s]
            st, en = np.array(stl, _U64), np.array(enl, _U64)
            self.by[s] = (st, en, np.cumsum((en - st).astype(np.int64)))
        return self.by[s]

    def has(self, s: int) -> bool:
        """Are there leaves of size ``1 << s``?"""
        return bool(self.by_list[s][0]) if s in self.by_list else len(self.by[s][0]) > 0

    def lists(self, s: int) -> Tuple[List[int], List[int]]:
        """The runs of ``1 << s`` leaves as Python lists: physical starts and ends."""
        if s in self.by_list:
            return self.by_list[s][0], self.by_list[s][1]
        st, en, _ = self.by[s]
        return st.tolist(), en.tolist()

    def cover(self, s: int, a: List[int], b: List[int]) -> List[int]:
        """Bytes of ``1 << s`` leaves inside each physical range ``[a[i], b[i])``."""
        if s in self.by_list and len(a) <= 64:   # a few runs and pieces: plain Python is cheaper
            stl, enl, base = self.by_list[s]
            if not stl:
                return [0] * len(a)
            if len(stl) == 1:     # one run (often so): the same sums without the searches
                s0, e0 = stl[0], enl[0]
                return [((y if y < e0 else e0) - s0 if y >= s0 else 0) - ((x if x < e0 else e0) - s0 if x >= s0 else 0)
                        for x, y in zip(a, b)]
            out = []
            br = bisect.bisect_right
            for x, y in zip(a, b):   # bytes below y minus bytes below x
                # bytes below x, in run i (the last starting at or before x): the bytes of the
                # runs before it, base[i] + stl[i], plus min(x, enl[i]) - stl[i] (never negative)
                i = br(stl, y) - 1
                v = base[i] + (y if y < enl[i] else enl[i]) if i >= 0 else 0
                i = br(stl, x) - 1
                if i >= 0:
                    v -= base[i] + (x if x < enl[i] else enl[i])
                out.append(v)
            return out
        st, en, cum = self.arrays(s)
        aa, bb = np.array(a, _U64), np.array(b, _U64)
        return (_bytes_below(st, cum, en, bb) - _bytes_below(st, cum, en, aa)).tolist()


def _direct_map_runs(c: _Ctx, tree: TreeSummary) -> np.ndarray:
    runs = tree.runs
    keep = runs[:, 0] >= _U64(c.po) if len(runs) else np.zeros(0, bool)
    return runs[keep]


def _logged_pieces(c: _Ctx) -> List[Tuple[int, int, int]]:
    """The pieces as the kernel printed them (`` [mem a-b] page 2M``, pr_debug lines included):
    ``(start, end, leaf shift)``, one per ``kernel_physical_mapping_init`` call."""
    # (every piece line has " page " in it: the others need not go through the parser)
    pieces = [(s, e, PIECE_SHIFTS[z]) for s, e, z in page_pieces([t for _, t in c.k.log.records if " page " in t])]
    c.r.checked["pieces"] = len(pieces)
    return pieces


def _check_page_sizes(c: _Ctx, pieces: List[Tuple[int, int, int]], leaves: _LeafIndex) -> None:
    """map.size: a leaf larger than its piece's logged size is wrong; a smaller one needs a
    lower table that a piece logged with that smaller size created."""
    k, r = c.k, c.r
    for leaf in (21, 30):
        if not leaves.has(leaf):
            continue                      # no leaf of this size: none is too big
        # (only pieces logged smaller than the leaf can be too small for it)
        sel = [p for p in pieces if p[2] < leaf]
        cov = leaves.cover(leaf, [p[0] for p in sel], [p[1] for p in sel])
        too_big = [p for p, v in zip(sel, cov) if v > 0]
        for ps, pe, psz in too_big[:MAX_PER_RULE]:
            r.fail(f"[mem {ps:#010x}-{pe - 1:#010x}] is logged as page "
                   f"{ {12: '4k', 21: '2M', 30: '1G'}[psz]} but mapped with {1 << leaf >> 10}K leaves",
                   "map.size", ps)
        r.count("map.size", len(too_big) - min(len(too_big), MAX_PER_RULE))
    for leaf in (12, 21):
        st, en = leaves.lists(leaf)
        if not st:
            continue
        # leaves of this size inside pieces logged larger, outside slots explained by smaller pieces
        # (the PMD slots of 4k pieces for 4K leaves, the PUD slots of 4k and 2M pieces for 2M ones)
        big = _merge([(s, e) for s, e, z in pieces if z > leaf])
        inside_big = _intersect(_merge(list(zip(st, en))), big) if big else []
        if not inside_big:
            continue
        if leaf == 12:
            small = _merge([(s // (1 << 21) * (1 << 21), -(-e // (1 << 21)) * (1 << 21))
                            for s, e, z in pieces if z == 12])
        else:
            small = _merge([(s >> 30 << 30, -(-e >> 30) << 30) for s, e, z in pieces if z <= 21] + early_mapped(k))
        unexplained = _subtract(inside_big, small)
        for s, e in unexplained[:MAX_PER_RULE]:
            r.fail(f"[mem {s:#010x}-{e - 1:#010x}] is mapped with {1 << leaf >> 10}K leaves, but the log "
                   f"says larger pages and no smaller piece shares its table", "map.size", s)
        r.count("map.size", len(unexplained) - min(len(unexplained), MAX_PER_RULE))


def _piece_arrays(pieces: List[Tuple[int, int, int]]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.array([p[0] for p in pieces], _U64), np.array([p[1] for p in pieces], _U64),
            np.array([p[2] for p in pieces], np.int64))


def p4d_wrap_pieces(k: Any, pieces: List[Tuple[int, int, int]]) -> List[Tuple[int, int, int]]:
    """The ranges whose leaves ``phys_p4d_init`` counts a second (third ...) time when it walks
    by virtual address (``p4d_walk_by_vaddr``, 432c833218dd, 5.2+) with 5-level paging.

    A call ``[s, e)`` spanning PGD (PML5) regions ``g0 < ... < gn`` runs ``phys_p4d_init`` on
    each region's P4D page with the end of the whole call; past the end of the page the index
    wraps to 0, so for every later region ``gk`` the walk goes over the P4D page of ``gj``
    again with ``gk``'s addresses, finds its entries present and counts their leaves once
    more (research/kernel_x86_64.md, B.3).  Returned as pieces of ``gj``'s own addresses
    (``(start, end, shift)``); empty for 4-level paging and for kernels before 5.2."""
    if k.mode.levels != 5 or not getattr(k.profile, "p4d_walk_by_vaddr", False):
        return []
    po = k.page_offset
    region = 1 << 48
    out = []
    for s, e, z in pieces:
        g0, gn = (po + s) >> 48, (po + e - 1) >> 48
        for j in range(g0, gn + 1):
            for kk in range(j + 1, gn + 1):
                ks = ((kk << 48) - po) & ((1 << 64) - 1)
                ke = min(e, ks + region)
                back = (kk - j) * region
                out.append((ks - back, ke - back, z))
    return out


def _expected_directmap(c: _Ctx, pieces: List[Tuple[int, int, int]], leaves: _LeafIndex,
                        runs: Optional[np.ndarray]) -> Tuple[Dict[int, int], set]:
    """DirectMap4k/2M/1G as the kernel counts them: every piece counts the leaves it covers
    (present leaves kept from an earlier call are counted again, 3.9+; before, kept 2M/1G
    leaves are not counted), plus the 5.2+ P4D wrap's second counts.  Returns the expected
    page counts by leaf shift and the shifts that cannot be checked."""
    k, r = c.k, c.r
    count_kept = getattr(k.profile, "kpmi_rules", "zero_non_ram") != "zero_rest"
    wrap = p4d_wrap_pieces(k, pieces)
    ends = [([p[0] for p in pieces], [p[1] for p in pieces])]
    if wrap:
        # (as unsigned 64-bit addresses, which the wrap's arithmetic must give)
        ps_a, pe_a, _ = _piece_arrays(wrap)
        ends.append((ps_a.tolist(), pe_a.tolist()))
    exp: Dict[int, int] = {}
    skip: set = set()
    for leaf in (12, 21, 30):
        total = 0
        for gi, (ps, pe) in enumerate(ends):
            if leaf == 12:
                n = sum(leaves.cover(12, ps, pe)) >> 12 if leaves.has(12) else 0
            elif count_kept and not leaves.has(leaf):
                n = 0                     # no leaves of this size: nothing to count
            else:
                m = 1 << leaf
                a = [x // m * m for x in ps]
                b = [(x + m - 1) // m * m for x in pe]
                if count_kept:
                    n = sum(leaves.cover(leaf, a, b)) >> leaf
                else:
                    # kept leaves are not counted: each leaf once, and the image's static
                    # identity leaves (0x1E3, which NX-capable kernels never write) not at all
                    iv = _merge(list(zip(a, b)))
                    n = sum(leaves.cover(leaf, [x for x, _ in iv], [y for _, y in iv])) >> leaf
                    if leaf == 21 and prepopulated_ident(k):
                        if not k.params.cpu.nx:
                            skip.add(leaf)
                            r.notes.append("DirectMap2M not checked: without NX the static identity leaves "
                                           "look like the kernel's own")
                        else:
                            if leaves.rows is not None:
                                ident = [(row[2], row[2] + row[1] - row[0]) for row in leaves.rows
                                         if row[3] == 21 and row[4] == 0x1E3 and row[2] < 1 << 30]
                            else:
                                assert runs is not None
                                st_ = runs[(runs[:, 3] == _U64(21)) & (runs[:, 4] == _U64(0x1E3))
                                           & (runs[:, 2] < _U64(1 << 30))]
                                ident = list(zip(st_[:, 2].tolist(), (st_[:, 2] + st_[:, 1] - st_[:, 0]).tolist()))
                            sv = _merge(ident)
                            n -= sum(e - s for s, e in _intersect(sv, iv)) >> 21
            if gi and n:                  # the wrap's second counts
                c.wrap_counts[leaf] = n
            total += n
        exp[leaf] = total
    if c.wrap_counts:
        r.notes.append("DirectMap counters exceed the mapped leaves: phys_p4d_init walks past the end of its "
                       "P4D page and counts present leaves again for every later PML5 region of a call "
                       "(the kernel's own counting since 432c833218dd, v5.2): "
                       + ", ".join(f"{n} {_SIZE_NAMES[s]}" for s, n in sorted(c.wrap_counts.items())) + " extra")
    return exp, skip


def _check_directmap(c: _Ctx, exp: Dict[int, int], skip: set) -> None:
    """acct.directmap: ``direct_pages_count[PG_LEVEL_4K/2M/1G]`` against the expected counts."""
    k = c.k
    got = {12: k.direct_pages_count[1], 21: k.direct_pages_count[2], 30: k.direct_pages_count[3]}
    for leaf, name in ((12, "DirectMap4k"), (21, "DirectMap2M"), (30, "DirectMap1G")):
        if leaf not in skip and got[leaf] != exp[leaf]:
            c.r.fail(f"{name} counts {got[leaf]} pages, the leaves and logged pieces give {exp[leaf]}",
                     "acct.directmap")


def _pud_slots_pre_top_down(c: _Ctx, pieces: List[Tuple[int, int, int]], off_s: np.ndarray,
                            off_e: np.ndarray, shifts: np.ndarray) -> int:
    """PUD pages a kernel before the top-down rewrite (<= 3.8) has: its
    ``kernel_physical_mapping_init`` gives every PGD slot of a call's range a PUD page before
    ``phys_pud_init`` looks at e820 (arch/x86/mm/init_64.c, v3.5), so a hole the range
    spans (``setup_arch`` maps ``[4G, max_pfn)`` whole) has empty PUD pages.  The slots of
    the logged pieces, with those of the mapped leaves."""
    slots: Set[int] = set()
    for s, e, _ in pieces:
        slots.update(range(s >> 39, ((e - 1) >> 39) + 1))
    sel = shifts < _U64(39)
    if sel.any():
        for a, b in zip((off_s[sel] >> _U64(39)).tolist(), ((off_e[sel] - _U64(1)) >> _U64(39)).tolist()):
            slots.update(range(a, b + 1))
    return len(slots)


def _level_counts(levels: np.ndarray, top: int) -> Dict[int, int]:
    """How many of ``levels`` are 1, 2, ... ``top - 1``."""
    if len(levels) <= SMALL:
        lv = levels.tolist()
        return {L: lv.count(L) for L in range(1, top)}
    return {L: int((levels == L).sum()) for L in range(1, top)}


def _check_table_counts(c: _Ctx, tree: TreeSummary, runs: Optional[np.ndarray],
                        pieces: Optional[List[Tuple[int, int, int]]] = None,
                        rows: Optional[List[List[int]]] = None) -> None:
    """acct.tables: page-table pages per level, allocated (the log) = reachable (the walk) =
    needed (distinct slots of the mapped leaves; before 3.9 the PUD pages of every PGD slot
    a logged piece meets, see :func:`_pud_slots_pre_top_down`).  ``rows``: the same runs
    as Python rows (a small map; ``runs`` may then be None)."""
    k, r, po = c.k, c.r, c.po
    levels = c.mode.levels
    need = {}

    def offsets() -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        nonlocal runs
        if runs is None:
            runs = np.array(rows, _U64).reshape(-1, 6)
        off_s = (runs[:, 0] - _U64(po)).astype(np.uint64) if len(runs) else np.zeros(0, _U64)
        off_e = (runs[:, 1] - _U64(po)).astype(np.uint64) if len(runs) else np.zeros(0, _U64)
        return off_s, off_e, (runs[:, 3] if len(runs) else np.zeros(0, _U64))

    # a table at level L (1 = PTE) covers 1 << (12 + 9 * L) bytes and is needed by leaves smaller
    # than that: the slots the runs span, a slot shared by neighbouring runs counted once
    if rows is not None:
        spans = [(L, 12 + 9 * L) for L in range(1, levels)]
        prev = {L: -1 for L in range(1, levels)}
        need = {L: 0 for L in range(1, levels)}
        for va, va_end, _, shift, _, _ in rows:
            a, b = va - po, va_end - po - 1
            for L, span in spans:
                if shift < span:
                    first, last = a >> span, b >> span
                    need[L] += last - first + (first != prev[L])
                    prev[L] = last
    else:
        off_s, off_e, shifts = offsets()
        for L in range(1, levels):
            span = 12 + 9 * L
            sel = shifts < _U64(span)
            if not sel.any():
                need[L] = 0
                continue
            first = off_s[sel] >> _U64(span)
            last = (off_e[sel] - _U64(1)) >> _U64(span)
            need[L] = int((last - first).sum()) + int(sel.sum()) - int((first[1:] == last[:-1]).sum())
    if pieces and levels == 4 and pre_top_down(k):
        need[3] = _pud_slots_pre_top_down(c, pieces, *offsets())
    walked = _level_counts(tree.tables[:, 1], levels)
    if c.pages is not None:
        pgd = k.pgd_pfn
        lv = [lvl for p, lvl in zip(*c.pages) if p != pgd]
        logged = {L: lv.count(L) for L in range(1, levels)}
    else:
        tp = k.table_pages
        logged = _level_counts(tp.column("level")[tp.column("pfn") != _U64(k.pgd_pfn)], levels)
    names = {1: "PTE", 2: "PMD", 3: "PUD", 4: "P4D"}
    for L in range(1, levels):
        if not (need[L] == walked[L] == logged[L]):
            # the static tables of the kernel image are reachable but not allocated
            if need[L] == walked[L] and logged[L] < walked[L] and prepopulated_ident(k):
                continue
            r.fail(f"{names[L]} pages: {logged[L]} allocated, {walked[L]} reachable, {need[L]} needed by the "
                   f"mapped leaves", "acct.tables")
    r.checked["tables_needed"] = sum(need.values())


def _check_sizes_and_accounting(c: _Ctx, tree: TreeSummary) -> None:
    """map.size against the logged pieces; acct.directmap; acct.tables."""
    rows = c.dm_rows() if c.rows is not None else None
    # (numpy rows only for a large map: the small one's checks read the Python rows)
    runs = _direct_map_runs(c, tree) if rows is None else None
    pieces = _logged_pieces(c)
    if pieces:
        leaves = _LeafIndex(runs, rows)
        _check_page_sizes(c, pieces, leaves)
        exp, skip = _expected_directmap(c, pieces, leaves, runs)
        _check_directmap(c, exp, skip)
    _check_table_counts(c, tree, runs, pieces, rows)


def verify_x86_64(k: Any, accounting: bool = True, engine: Any = None) -> Report:
    """Check a finished x86-64 emulation (no panic) against every rule; see the module doc."""
    r = Report(mode=k.mode.name)
    c = _Ctx(k, r, engine)
    tree = c.enumerate()
    if len(tree.runs) <= SMALL:
        c.rows = tree.runs.tolist()
    mapped = _check_leaves(c, tree)
    _check_coverage(c, mapped)
    _check_walk(c, tree)
    image_lo, image_hi = _check_table_pages(c, tree)
    _check_upper_entries(c, tree, image_lo, image_hi)
    if accounting:
        _check_sizes_and_accounting(c, tree)
    verify_kernel_image(k, r, c.direct_slots, engine, c.mmu, store_checked=True)
    return r


__all__ = ["Report", "Violation", "expected_flags", "allowed_leaf_flags", "kernel_maps", "ram_ranges", "p4d_wrap_pieces",
           "verify_x86_64"]
