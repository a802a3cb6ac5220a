"""Verification of a finished emulation, knowing nothing of how the tables were built.

It reads only the e820 map, memblock, the profile's protections and the
physical memory, walks the tables from CR3 as the MMU does
(:func:`emu.walk.enumerate_tables`, cross-checked with :func:`emu.walk.translate`)
and reports every violation with its address and rule:

* RAM the kernel maps (memblock memory below ``max_pfn``, and the ISA range)
  translates at ``PAGE_OFFSET + pa`` to ``pa`` with the expected flags;
* nothing outside RAM is mapped except inside the ISA range;
* page-table pages lie in RAM, are reserved (memblock or BRK), are disjoint,
  each referenced exactly once, and — the seed's rule — each page taken from
  memblock was inside the direct map already built when the kernel wrote it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from .kernel import Kernel
from .pgtable import _PAGE_GLOBAL, _PAGE_NX, _PAGE_PSE, PAGE_SHIFT, PAGE_SIZE
from .walk import MMU, enumerate_tables, translate

ISA_END = 0x100000
Interval = Tuple[int, int]


def _merge(iv: List[Interval]) -> List[Interval]:
    out: List[Interval] = []
    for s, e in sorted(iv):
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _subtract(a: List[Interval], b: List[Interval]) -> List[Interval]:
    """a minus b (both merged)."""
    out: List[Interval] = []
    j = 0
    for s, e in a:
        cur = s
        while j < len(b) and b[j][1] <= cur:
            j += 1
        k = j
        while k < len(b) and b[k][0] < e:
            if b[k][0] > cur:
                out.append((cur, b[k][0]))
            cur = max(cur, b[k][1])
            k += 1
        if cur < e:
            out.append((cur, e))
    return out


def expected_flags(k: Kernel, shift: int) -> int:
    """Flags of a direct-map leaf of size ``1 << shift`` for this CPU and profile."""
    cpu, prof, p = k.params.cpu, k.profile, k.params
    flags = 0x063  # P RW A D
    pge = cpu.pge or not prof.pge_clears_global
    glob = pge and not (p.pti and prof.default_kernel_pte_mask)
    if shift == 30 and prof.pud_large_from_prot:
        glob = pge
    if glob:
        flags |= _PAGE_GLOBAL
    if shift > PAGE_SHIFT:
        flags |= _PAGE_PSE
    if cpu.nx:
        flags |= _PAGE_NX
    return flags


@dataclass
class Report:
    ok: bool = True
    violations: List[str] = field(default_factory=list)
    violation_count: int = 0
    checked: Dict[str, int] = field(default_factory=dict)
    mapped: Dict[str, int] = field(default_factory=dict)

    def fail(self, msg: str) -> None:
        self.ok = False
        self.violation_count += 1
        if len(self.violations) < 50:
            self.violations.append(msg)

    def to_json(self) -> dict:
        return {"ok": self.ok, "violation_count": self.violation_count, "violations": self.violations,
                "checked": self.checked, "mapped_bytes": self.mapped}


def verify(k: Kernel) -> Report:
    r = Report()
    po = k.page_offset
    end = k.max_pfn << PAGE_SHIFT
    mmu = MMU(cr3=k.pgd_pfn << PAGE_SHIFT, levels=k.paging_levels, maxphyaddr=52, nxe=k.params.cpu.nx)
    top_shift = 48 if k.paging_levels == 5 else 39
    lo = (po >> top_shift) & 511
    tree = enumerate_tables(k.phys, mmu, lo, 512)
    runs = tree.runs

    # -- leaves: identity offset, flags ------------------------------------
    mapped: List[Interval] = []
    by_size = {12: 0, 21: 0, 30: 0}
    for va, va_end, pa, shift, flags, eff in (tuple(int(x) for x in row) for row in runs):
        if va < po:
            r.fail(f"leaf at {va:#x} lies below PAGE_OFFSET {po:#x}")
            continue
        if va - po != pa:
            r.fail(f"[{va:#x}-{va_end - 1:#x}] maps pa {pa:#x}, not {va - po:#x}")
        want = expected_flags(k, shift)
        got = (flags & 0x1FF) | (flags & _PAGE_NX)
        if got != want:
            r.fail(f"[mem {pa:#010x}-{pa + va_end - va - 1:#010x}] {1 << shift >> 10}K leaves have flags "
                   f"{got:#x}, expected {want:#x}")
        mapped.append((pa, pa + (va_end - va)))
        by_size[shift] = by_size.get(shift, 0) + (va_end - va)
    mapped = _merge(mapped)
    r.mapped = {"4k": by_size[12], "2M": by_size[21], "1G": by_size[30]}
    r.checked["leaf_runs"] = len(runs)
    if tree.reserved_entries:
        r.fail(f"{tree.reserved_entries} present entries have reserved bits set")

    # -- coverage ---------------------------------------------------------
    want: List[Interval] = [(0, ISA_END)]
    for s, e in k.memblock.for_each_mem_pfn_range():
        s, e = s << PAGE_SHIFT, min(e << PAGE_SHIFT, end)
        if s < e:
            want.append((s, e))
    want = _merge(want)
    for s, e in _subtract(want, mapped)[:20]:
        r.fail(f"RAM [mem {s:#010x}-{e - 1:#010x}] is not mapped")
    ram = _merge([(int(s) & ~(PAGE_SIZE - 1), -(-int(e) // PAGE_SIZE) * PAGE_SIZE)
                  for s, e in zip(k.ram_s, k.ram_e)] + [(0, ISA_END)])
    for s, e in _subtract(mapped, ram)[:20]:
        r.fail(f"non-RAM [mem {s:#010x}-{e - 1:#010x}] is mapped")
    beyond = _subtract(mapped, [(0, max(end, ISA_END))])
    for s, e in beyond[:5]:
        # large leaves may reach past max_pfn only inside RAM
        if _subtract([(s, e)], ram):
            r.fail(f"[mem {s:#010x}-{e - 1:#010x}] above max_pfn is mapped")
    r.checked["ram_bytes"] = sum(e - s for s, e in want)

    # -- the walk agrees with the enumeration -------------------------------
    if len(runs):
        probes = np.concatenate([runs[:, 0], runs[:, 1] - np.uint64(1)])
        t = translate(k.phys, mmu, probes)
        exp_pa = np.concatenate([runs[:, 2], runs[:, 2] + (runs[:, 1] - runs[:, 0]) - np.uint64(1)])
        bad = np.nonzero((t.error != -1) | (t.pa != exp_pa))[0]
        for i in bad[:10]:
            r.fail(f"walk of {int(probes[i]):#x} gives pa {int(t.pa[i]):#x} error {int(t.error[i])}, "
                   f"enumeration says {int(exp_pa[i]):#x}")
        r.checked["walks"] = int(probes.shape[0])

    # -- page-table pages (vectorised: a 1 TiB 4k layout has 500k of them) ---
    tp = k.table_pages
    pfn, src, mapped_at = tp.column("pfn"), tp.column("src"), tp.column("mapped")
    ref_pfn = np.sort(np.ascontiguousarray(tree.tables[:, 0])) if len(tree.tables) else np.zeros(0, np.uint64)
    all_pfn = np.sort(pfn)
    if not (ref_pfn.shape == all_pfn.shape and np.array_equal(ref_pfn, all_pfn)
            and (len(all_pfn) < 2 or bool((np.diff(all_pfn) > 0).all()))):
        uniq, counts = np.unique(ref_pfn, return_counts=True)
        for p in uniq[counts > 1][:10]:
            r.fail(f"page-table page {int(p) << PAGE_SHIFT:#x} is referenced {int(counts[uniq == p][0])} times")
        for p in np.setdiff1d(uniq, pfn)[:10]:
            r.fail(f"entry points to {int(p) << PAGE_SHIFT:#x}, which was never allocated as a page table")
        u, c = np.unique(pfn, return_counts=True)
        for p in u[c > 1][:10]:
            r.fail(f"page-table page {int(p) << PAGE_SHIFT:#x} allocated twice")
        for p in np.setdiff1d(pfn, uniq)[:10]:
            r.fail(f"page-table page {int(p) << PAGE_SHIFT:#x} is not reachable from CR3")
    ram_s = np.array([a for a, _ in ram], np.uint64)
    ram_e = np.array([b for _, b in ram], np.uint64)
    pa = pfn << np.uint64(PAGE_SHIFT)
    i = np.searchsorted(ram_s, pa, side="right") - 1
    in_ram = (i >= 0) & (pa + np.uint64(PAGE_SIZE) <= ram_e[np.maximum(i, 0)]) if len(ram_s) else np.zeros(len(pa), bool)
    for p in pa[~in_ram][:10]:
        r.fail(f"page-table page {int(p):#x} is not in RAM")
    is_brk = src == 1
    out_brk = is_brk & ((pfn < np.uint64(k.pgt_buf_start)) | (pfn >= np.uint64(k.pgt_buf_top)))
    for p in pa[out_brk][:10]:
        r.fail(f"page-table page {int(p):#x} is outside the BRK buffer")
    is_mb = src == 2
    rs = np.array(k.memblock.reserved.bases, np.uint64)
    re_ = np.array(k.memblock.reserved.ends, np.uint64)
    j = np.searchsorted(rs, pa, side="right") - 1
    reserved = (j >= 0) & (pa + np.uint64(PAGE_SIZE) <= re_[np.maximum(j, 0)]) if len(rs) else np.zeros(len(pa), bool)
    for p in pa[is_mb & ~reserved][:10]:
        r.fail(f"page-table page {int(p):#x} is not reserved in memblock")
    for p in pa[is_mb & ~mapped_at][:10]:
        r.fail(f"page-table page {int(p):#x} was not yet mapped when the kernel wrote it")
    r.checked["table_pages"] = len(k.table_pages)
    return r
