"""The checker's rules for the kernel image's half of an x86-64 root table (PGD[511]).

At ``init_mem_mapping``'s return the only present entry of the root table outside the
direct map is PGD[511] (the early table's copy), and what it leads to is fixed by where
the image lies:

``image.text``     the 2 MiB leaves map exactly ``[_text, roundup(_brk_end, 2M))`` of the
                   image at ``__START_KERNEL_map + (pa - phys_base)``, each ``P RW A D PS G``
                   (executable, global: head_64's ``__PAGE_KERNEL_LARGE_EXEC``, not masked)
``image.extra``    no other leaf below PGD[511] (the fixmap's page tables are still empty),
                   no other present entry of the root table outside the direct map
``image.tables``   every table below PGD[511] is one of the image's static tables, each
                   referenced once; pointers carry P RW A D (and US on all but the
                   level2_kernel_pgt pointer, which head_64.S writes as _KERNPG_TABLE)

Re-derived here from the hardware bits and the image's placement (``image``,
``phys_base``); nothing of the emulated kernel is imported.
"""
from __future__ import annotations

from typing import Any, Optional

from emu.check.report import MAX_PER_RULE, Report
from emu.machine import bits
from emu.machine.mmu import MMU, enumerate_tables

START_KERNEL_MAP = 0xFFFFFFFF80000000
PMD = 1 << 21
#: a kernel image leaf: P RW A D PS G, no NX
TEXT_FLAGS = bits.P | bits.RW | bits.A | bits.D | bits.PS | bits.G
#: table pointers: _PAGE_TABLE (P RW US A D), and _KERNPG_TABLE (no US) for level2_kernel_pgt
PTR_FLAGS = (bits.P | bits.RW | bits.US | bits.A | bits.D, bits.P | bits.RW | bits.A | bits.D)


def verify_kernel_image(k: Any, r: Report, direct_slots: range, engine: Any = None,
                        mmu: Optional[MMU] = None, store_checked: bool = False) -> None:
    """Check PGD[511] and what it leads to (see the module doc).  ``mmu``: the walker the
    caller already has for this boot (the same CR3, levels, MAXPHYADDR 52 and NXE);
    ``store_checked``: the caller's own walk already checked the physical memory store."""
    if mmu is None:
        mmu = MMU(cr3=k.pgd_pfn << 12, levels=k.mode.levels, maxphyaddr=52, nxe=k.params.cpu.nx)
    root = k.phys.table(k.pgd_pfn)
    # (the few non-zero entries, then their present bit in Python: right after an emulation
    # a masking ufunc and np.flatnonzero's wrappers cost more than the scan of 512 entries)
    present = [i for i in root.nonzero()[0].tolist() if root.item(i) & 1]
    stray = [i for i in present if i not in direct_slots and i != 511]
    for i in stray[:MAX_PER_RULE]:
        r.fail(f"root table entry {i} is present (outside the direct map and PGD[511])", "image.extra",
               k.pgd_pfn << 12)
    if 511 not in present:
        r.fail("PGD[511] (the kernel image's mapping) is not present", "image.tables", k.pgd_pfn << 12)
        return
    tree = enumerate_tables(k.phys, mmu, 511, 512, engine=engine, ptr_flags=PTR_FLAGS[0],
                            store_checked=store_checked)
    runs = tree.runs
    start_pa, brk_end = k.image
    want_lo = START_KERNEL_MAP + (start_pa - k.phys_base)
    want_hi = START_KERNEL_MAP + (-(-(brk_end - k.phys_base) // PMD) * PMD)
    got = runs[:, :5].tolist()
    if len(got) != 1 or got[0][0] != want_lo or got[0][1] != want_hi:
        r.fail(f"the image's leaves cover {', '.join(f'[{a:#x}-{b - 1:#x}]' for a, b, *_ in got) or 'nothing'}, "
               f"not [{want_lo:#x}-{want_hi - 1:#x}] (_text .. roundup(_brk_end, 2M))", "image.text", want_lo)
    for a, b, pa, sh, fl in got:
        if sh != 21 and want_lo <= a < want_hi:
            r.fail(f"[{a:#x}-{b - 1:#x}] is mapped with {1 << sh >> 10}K leaves, not 2M", "image.text", a)
        if pa != a - START_KERNEL_MAP + k.phys_base:
            r.fail(f"[{a:#x}-{b - 1:#x}] maps pa {pa:#x}, not {a - START_KERNEL_MAP + k.phys_base:#x}",
                   "image.text", a)
        if fl != TEXT_FLAGS:
            r.fail(f"[{a:#x}-{b - 1:#x}] has flags {fl:#x}, not {TEXT_FLAGS:#x}", "image.text", a)
        if not want_lo <= a < want_hi:
            r.fail(f"leaf [{a:#x}-{b - 1:#x}] below PGD[511] outside the image", "image.extra", a)
    # the tables: each referenced once, all of them the image's static tables
    static = {int(p) for p, _, _ in k.image_tables}
    walked = tree.tables[:, 0].tolist()
    walked_set = set(walked)
    if len(walked_set) != len(walked):       # (some page is listed twice: find which)
        for p in sorted({p for p in walked if walked.count(p) > 1}):
            r.fail(f"image table page {p << 12:#x} is referenced more than once", "image.tables", p << 12)
    for p in sorted(walked_set - static):
        r.fail(f"entry below PGD[511] points to {p << 12:#x}, not a static table of the image", "image.tables",
               p << 12)
    for p in sorted(static - walked_set):
        r.fail(f"static table {p << 12:#x} of the image is not reachable from PGD[511]", "image.tables", p << 12)
    # pointer flags: the odd ones the enumeration singled out (not _PAGE_TABLE); only
    # level3_kernel_pgt[510] may be _KERNPG_TABLE
    for table_pfn, index, e, kind in (tree.odd.tolist() if tree.odd is not None else ()):
        fl = e & bits.FLAGS_LOW_AND_XD
        if kind == 1 and not (index == 510 and fl == PTR_FLAGS[1]):
            r.fail(f"entry {index} of image table {table_pfn << 12:#x} has flags {fl:#x}", "image.tables",
                   table_pfn << 12)
    r.checked["image_tables"] = len(walked_set)


__all__ = ["verify_kernel_image", "START_KERNEL_MAP"]
