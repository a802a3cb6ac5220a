"""What a System.map (or a kallsyms list) fixes: where the kernel image's static page
tables, its BRK and its root table lie.

Symbols are link-time virtual addresses.  x86-64: ``pa = va - __START_KERNEL_map +
phys_base``, with ``phys_base`` = where the image runs (``kernel_start``) less where it is
linked (``_text - __START_KERNEL_map``); i386: ``pa = va - PAGE_OFFSET`` moved by the same
relocation.  When nothing says where the image runs (KASLR without a memblock=debug log),
the link address is used and that is said.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict

from emu.boot.record import DescribeError, Inputs
from emu.kernel.params import DEFAULT_PAGE_OFFSET_32

if TYPE_CHECKING:
    from emu.inputs.sysmap import SystemMap

#: __START_KERNEL_map (x86-64)
START_KERNEL_MAP = 0xFFFFFFFF80000000

#: x86-64: the image's static tables (head_64.S) emu writes
IMAGE_TABLES_64 = ("level4_kernel_pgt", "level3_kernel_pgt", "level2_kernel_pgt", "level2_fixmap_pgt",
                   "level1_fixmap_pgt", "bm_pte")
#: i386: BootParams field -> symbol
FIELDS_32 = (("swapper_pg_dir_addr", "swapper_pg_dir"), ("head_brk_base", "__brk_base"),
             ("initial_pg_pmd_addr", "initial_pg_pmd"), ("initial_pg_fixmap_addr", "initial_pg_fixmap"),
             ("bm_pte_addr", "bm_pte"), ("image_end", "_end"), ("init_end", "__init_end"))


def from_sysmap(inp: Inputs, sm: "SystemMap") -> None:
    """Set the addresses ``sm`` fixes (see the module doc)."""
    p = inp.params
    src = sm.name if hasattr(sm, "name") else "System.map"
    if "_text" not in sm:
        raise DescribeError(f"{src}: no _text symbol: not a kernel's System.map")
    if p.arch == "x86_64":
        link = sm["_text"] - START_KERNEL_MAP
        if not 0 <= link < (1 << 31):
                raise DescribeError(f"{src}: _text = {sm['_text']:#x} is not an x86-64 kernel address")
        inp.set("kernel_link_start", link, f"{src}: _text")
        base = _running_start(inp, link, src) - link

        def pa(name: str) -> int:
            return sm[name] - START_KERNEL_MAP + base
        for root in ("init_top_pgt", "init_level4_pgt"):
            if root in sm:
                inp.set("swapper_pg_dir_addr", pa(root), f"{src}: {root}")
                break
        if "_end" in sm and "image_end" not in inp.sources:
            # __pa_symbol(_end): e820_add_kernel_range's end, and where bottom-up mapping splits
            inp.set("image_end", pa("_end"), f"{src}: _end")
        tables: Dict[str, int] = {n: pa(n) for n in IMAGE_TABLES_64 if n in sm}
        if tables:
            inp.set("image_tables", tables, f"{src}: {', '.join(sorted(tables))}")
        if "brk_base" not in inp.sources and "brk_end" not in inp.sources and "__brk_base" in sm:
            # extend_brk hands out BRK from __brk_base in call order: dmi_alloc's copy of the
            # SMBIOS tables (a few hundred bytes to some KiB), then early_alloc_pgt_buf's pages
            # (page aligned); the RESERVE_BRK symbols only size the section
            at = pa("__brk_base") + 0x1000
            p.brk_base = at
            inp.assume("brk_base", "%#x" % at, f"{src}: __brk_base + one page for dmi_alloc's SMBIOS copy "
                                               "(its size is not in the System.map; no memblock=debug reserve_brk line)")
        return
    po = p.page_offset_32 if p.page_offset_32 is not None else DEFAULT_PAGE_OFFSET_32
    link = sm["_text"] - po
    if not 0 <= link < (1 << 30):
        raise DescribeError(f"{src}: _text = {sm['_text']:#x} is not below a 32-bit kernel's PAGE_OFFSET "
                            f"{po:#x} + 1 GiB")
    delta = _running_start(inp, link, src) - link
    for field, sym in FIELDS_32:
        if sym in sm and field not in inp.sources:
            inp.set(field, sm[sym] - po + delta, f"{src}: {sym}")
    if "brk_base" not in inp.sources and "brk_end" not in inp.sources and "__brk_base" in sm and "_end" in sm:
        # extend_brk hands out BRK from __brk_base in call order: head_32's page tables (as many
        # as it needs to map _end and its margin), dmi_alloc's copy of the SMBIOS tables (its
        # size is not in the System.map: one page assumed), then early_alloc_pgt_buf's pages
        from emu.kernel.arch.x86.kernel import head_32
        pae = p.pae if p.pae is not None else True
        head = sm["__brk_base"] - po + delta
        n = head_32.head_tables(pae, head_32.initial_mapping_end(pae, po, sm["_end"] - po + delta))
        at = head + (n + 1) * 0x1000
        p.brk_base = at
        inp.assumptions[:] = [a for a in inp.assumptions if a.field != "brk_base"]   # a log's rougher guess
        inp.assume("brk_base", "%#x" % at, f"{src}: __brk_base + head_32's {n} page tables + one page for "
                                           "dmi_alloc's SMBIOS copy (its size is not in the System.map; no "
                                           "memblock=debug reserve_brk line)")


def _running_start(inp: Inputs, link: int, src: str) -> int:
    """Where the image runs: ``kernel_start`` when something said it, else the link address
    (said: KASLR may have moved it)."""
    p = inp.params
    if "kernel_start" in inp.sources and p.kernel_start is not None:
        return p.kernel_start
    if getattr(inp, "kaslr_unknown", False):
        inp.assumptions[:] = [a for a in inp.assumptions if a.field != "kernel_start"]
    p.kernel_start = link
    inp.assume("kernel_start", "%#x" % link, f"where {src} links _text; the image may have been moved "
                                            "(KASLR, a relocating loader): no memblock=debug log")
    return link


__all__ = ["from_sysmap", "START_KERNEL_MAP"]

