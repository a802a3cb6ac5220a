"""The checker for i386 (PAE and 32-bit paging), on ``swapper_pg_dir``.

Rules (the ``rule`` field of each violation; the x86-64 names where the rule is the same):

``map.outside``      a leaf outside ``[PAGE_OFFSET, start of the fixmap)``
``map.offset``       a leaf does not translate ``PAGE_OFFSET + pa`` to ``pa``
``map.flags``        a leaf's flags are not ``PAGE_KERNEL[_LARGE]`` (on the kernel text the
                     ``_EXEC`` forms) as this CPU and profile make them; leaves head_32 left
                     (``PTE_IDENT_ATTR``, P RW) are counted in ``checked["head32_leftover"]``
``map.missing``      RAM below ``max_low_pfn`` (and the ISA range) is not mapped
``map.hole``         a page that is not e820 RAM is mapped (beyond head_32's leftovers)
``map.beyond``       something at or above ``max_low_pfn`` is mapped by the kernel
``walk.mismatch``    the MMU walk disagrees with the enumeration
``pt.reserved-bits`` a present entry has reserved bits set
``pt.multi-ref``     a table page is referenced more than once
``pt.unknown``       an entry points to a page never allocated as a page table
``pt.unreachable``   an allocated page-table page is not reachable from CR3
``pt.not-ram``       a page-table page is not in e820 RAM
``pt.outside-brk``   a page counted as BRK lies outside the BRK buffer
``pt.not-reserved``  a memblock page-table page is not reserved
``pt.unmapped-write`` a memblock page-table page was not mapped when the kernel wrote it

Like :mod:`emu.check.x86_64` this module imports nothing of the emulated kernel; the
entry flags are derived here from the hardware bits, the CPU, and the profile's data.
"""
from __future__ import annotations

from typing import Any, List, Tuple

import numpy as np

from emu.check.intervals import Interval, merge, subtract
from emu.check.report import Report
from emu.machine import bits
from emu.machine.abi import SRC_BRK, SRC_IMAGE, SRC_MEMBLOCK
from emu.machine.mmu import MMU, enumerate_tables, translate

PAGE_SHIFT = bits.PAGE_SHIFT
PAGE_SIZE = bits.PAGE_SIZE
ISA_END = 0x100000
#: head_32's PTE_IDENT_ATTR (P RW): entries init_mem_mapping may leave behind
IDENT_ATTR = bits.P | bits.RW


def expected_flags_32(k: Any, shift: int, text: bool) -> int:
    """Flags of an i386 direct-map leaf: ``PAGE_KERNEL`` (P RW A D G, NX with PAE and a CPU
    with NX) or, on kernel text, ``PAGE_KERNEL_EXEC``; PS on large pages.  GLOBAL needs PGE
    (i386's ``__supported_pte_mask`` starts without it) and is dropped under PTI where the
    profile masks PAGE_KERNEL with ``__default_kernel_pte_mask``."""
    cpu, prof, p = k.params.cpu, k.profile, k.params
    flags = bits.P | bits.RW | bits.A | bits.D
    if cpu.pge and not (p.pti and prof.default_kernel_pte_mask):
        flags |= bits.G
    if shift > PAGE_SHIFT:
        flags |= bits.PS
    if not text and k.mode.entry_bytes == 8 and cpu.nx:
        flags |= bits.XD
    return flags


def _check_leaves(k: Any, r: Report, runs: np.ndarray) -> List[Tuple[int, int, bool]]:
    """map.outside / map.offset / map.flags; returns ``(pa, pa_end, head32_leftover)`` runs."""
    po = k.page_offset
    tlo, thi = ((po + a) & 0xFFFFFFFF for a in k.kernel_text)
    mapped = []
    leftover = 0
    by = {12: 0, 21: 0, 22: 0}
    for va, va_end, pa, sh, flags, _eff in (tuple(int(x) for x in row) for row in runs):
        if va < po or va >= k.fixmap_start:
            r.fail(f"leaf at {va:#x} lies outside the direct map", "map.outside", va)
            continue
        if va - po != pa:
            r.fail(f"[{va:#x}-{va_end - 1:#x}] maps pa {pa:#x}, not {va - po:#x}", "map.offset", va)
        got = (flags & 0x1FF) | (flags & bits.XD)
        if sh == 12 and got == IDENT_ATTR:
            leftover += (va_end - va) >> 12
            mapped.append((pa, pa + va_end - va, True))
            continue
        # flags are uniform in a run; the text range is one interval, so checking the run's
        # ends and the pages at the text boundaries covers every page
        size = 1 << sh
        cands = {va, va_end - size}
        for b in (tlo, thi):
            if va <= b < va_end:
                a = b - (b - va) % size
                cands.update(x for x in (a - size, a, a + size) if va <= x < va_end)
        for a in sorted(cands):
            text = tlo <= a <= thi or (sh > 12 and tlo <= a + size - 1 <= thi)
            want = expected_flags_32(k, sh, text)
            if got != want and not (sh > 12 and got == expected_flags_32(k, sh, not text)):
                r.fail(f"[mem {a - po:#010x}-{a - po + size - 1:#010x}] {size >> 10}K leaf has flags {got:#x}, "
                       f"expected {want:#x}", "map.flags", a - po)
                break
        mapped.append((pa, pa + va_end - va, False))
        by[sh] = by.get(sh, 0) + va_end - va
    r.mapped = {"4k": by[12], "2M": by[21], "4M": by[22]}
    r.checked["leaf_runs"] = len(runs)
    r.checked["head32_leftover"] = leftover
    return mapped


def _ram(k: Any) -> List[Interval]:
    """e820 RAM (and RESERVED_KERN) in whole pages, with the ISA range."""
    iv = []
    for x in k.e820.entries:
        if x.type in (1, 128) and x.size:
            s, e = -(-x.addr // PAGE_SIZE) * PAGE_SIZE, (x.addr + x.size) // PAGE_SIZE * PAGE_SIZE
            if s < e:
                iv.append((s, e))
    return merge(iv + [(0, ISA_END)])


def _check_coverage(k: Any, r: Report, mapped: List[Tuple[int, int, bool]]) -> None:
    low_end = k.max_low_pfn << PAGE_SHIFT
    want = [(0, ISA_END)]
    for base, end in k.memblock.memory:
        s, e = -(-base // PAGE_SIZE) * PAGE_SIZE, min(end // PAGE_SIZE * PAGE_SIZE, low_end)
        if s < e:
            want.append((s, e))
    want = merge(want)
    allm = merge([(a, b) for a, b, _ in mapped])
    for s, e in subtract(want, allm)[:20]:
        r.fail(f"RAM [mem {s:#010x}-{e - 1:#010x}] is not mapped", "map.missing", s)
    kernel_mapped = merge([(a, b) for a, b, left in mapped if not left])
    allowed = _ram(k)
    if getattr(k.profile, "scheme", "brk_top_down") == "early_table_space":
        # before the top-down rewrite (<= 3.8) setup_arch maps [0, max_low_pfn) in one
        # init_memory_mapping call, holes included (arch/x86/kernel/setup.c, v3.5-v3.8:
        # init_memory_mapping(0, max_low_pfn<<PAGE_SHIFT); init_32.c's
        # kernel_physical_mapping_init does not look at e820)
        allowed = merge(allowed + [(0, low_end)])
    for s, e in subtract(kernel_mapped, allowed)[:20]:
        r.fail(f"non-RAM [mem {s:#010x}-{e - 1:#010x}] is mapped", "map.hole", s)
    for s, e in subtract(kernel_mapped, [(0, max(low_end, ISA_END))])[:5]:
        r.fail(f"[mem {s:#010x}-{e - 1:#010x}] at or above max_low_pfn is mapped", "map.beyond", s)
    r.checked["ram_bytes"] = sum(e - s for s, e in want)


def _check_walk(k: Any, r: Report, mmu: MMU, runs: np.ndarray, engine: Any) -> None:
    if not len(runs):
        r.checked["walks"] = 0
        return
    probes = np.concatenate([runs[:, 0], runs[:, 1] - np.uint64(1)])
    t = translate(k.phys, mmu, probes, engine=engine)
    exp_pa = np.concatenate([runs[:, 2], runs[:, 2] + (runs[:, 1] - runs[:, 0]) - np.uint64(1)])
    bad = np.nonzero((t.error != -1) | (t.pa != exp_pa))[0]
    for i in bad[:10]:
        r.fail(f"walk of {int(probes[i]):#x} gives pa {int(t.pa[i]):#x} error {int(t.error[i])}, "
               f"enumeration says {int(exp_pa[i]):#x}", "walk.mismatch", int(probes[i]))
    r.checked["walks"] = int(probes.shape[0])


def _check_table_pages(k: Any, r: Report, tables: np.ndarray) -> None:
    tp = k.table_pages
    pfn, src, mapped_at = tp.column("pfn"), tp.column("src"), tp.column("mapped")
    static = set(pfn[src == SRC_IMAGE].tolist())
    allocated = set(pfn.tolist())
    seen: dict = {}
    for p in (int(x) for x in tables[:, 0]) if len(tables) else ():
        seen[p] = seen.get(p, 0) + 1
    for p, c in seen.items():
        if c > 1:
            r.fail(f"page-table page {p << PAGE_SHIFT:#x} is referenced {c} times", "pt.multi-ref", p << PAGE_SHIFT)
        if p not in static and p not in allocated:
            r.fail(f"entry points to {p << PAGE_SHIFT:#x}, which was never allocated as a page table",
                   "pt.unknown", p << PAGE_SHIFT)
    orphans = k.i386_orphans
    for p in pfn[src != SRC_IMAGE].tolist():
        if p not in seen and p not in orphans:
            r.fail(f"page-table page {p << PAGE_SHIFT:#x} is not reachable from CR3", "pt.unreachable",
                   p << PAGE_SHIFT)
    ram = _ram(k)
    ram_s = np.array([a for a, _ in ram], np.uint64)
    ram_e = np.array([b for _, b in ram], np.uint64)
    pa_ = pfn << np.uint64(PAGE_SHIFT)
    i = np.searchsorted(ram_s, pa_, side="right") - 1
    in_ram = (i >= 0) & (pa_ + np.uint64(PAGE_SIZE) <= ram_e[np.maximum(i, 0)])
    for p in pa_[~in_ram][:10]:
        r.fail(f"page-table page {int(p):#x} is not in RAM", "pt.not-ram", int(p))
    out_brk = (src == SRC_BRK) & ((pfn < np.uint64(k.pgt_buf_start)) | (pfn >= np.uint64(k.pgt_buf_top)))
    for p in pa_[out_brk][:10]:
        r.fail(f"page-table page {int(p):#x} is outside the BRK buffer", "pt.outside-brk", int(p))
    reserved = merge(list(k.memblock.reserved))
    is_mb = src == SRC_MEMBLOCK
    for p, ok in zip(pa_[is_mb].tolist(), mapped_at[is_mb].tolist()):
        if subtract([(p, p + PAGE_SIZE)], reserved):
            r.fail(f"page-table page {p:#x} is not reserved in memblock", "pt.not-reserved", p)
        if not ok:
            r.fail(f"page-table page {p:#x} was not yet mapped when the kernel wrote it", "pt.unmapped-write", p)
    r.checked["table_pages"] = len(tp) + len(static)


def verify_i386(k: Any, engine: Any = None) -> Report:
    """Check a finished i386 emulation (PAE or 32-bit paging): see the module doc."""
    pae = k.mode.entry_bytes == 8
    r = Report(mode=k.mode.name)
    mmu = MMU(cr3=k.pgd_pfn << PAGE_SHIFT, levels=k.mode.levels, maxphyaddr=36 if pae else 32,
              nxe=k.params.cpu.nx and pae, pse=True)
    shift = k.mode.top_shift
    tree = enumerate_tables(k.phys, mmu, k.page_offset >> shift, 1 << (32 - shift), engine=engine)
    if tree.reserved_entries:
        r.fail(f"{tree.reserved_entries} present entries have reserved bits set", "pt.reserved-bits")
    mapped = _check_leaves(k, r, tree.runs)
    _check_coverage(k, r, mapped)
    _check_walk(k, r, mmu, tree.runs, engine)
    _check_table_pages(k, r, tree.tables)
    return r


__all__ = ["expected_flags_32", "verify_i386"]
