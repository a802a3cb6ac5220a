"""The i386 fixmap layout of a build (``enum fixed_addresses``, arch/x86/include/asm/fixmap.h
@ 5.11-6.x, re-expressed), from its ``.config``; checked against the running kernel.

What ``init_mem_mapping`` needs of it on i386: the lowest boot-time slot
(``__end_of_fixed_addresses - 1``: early_ioremap_page_table_range_init's first PMD),
``FIX_BTMAP_BEGIN`` (the PMD early_ioremap_init gives ``bm_pte``) and the kmap slots
``[FIX_KMAP_END, FIX_KMAP_BEGIN]`` (page_table_kmap_check copies their page tables when
they span more than one PMD).  Index ``i`` lies at ``FIXADDR_TOP - i * PAGE_SIZE``.

The 32-bit enum, in order: a hole page; the DBGP and early-console pages; the OHCI1394
page (CONFIG_PROVIDE_OHCI1394_DMA_INIT); the local APIC page (CONFIG_X86_LOCAL_APIC);
``MAX_IO_APICS`` (64 on i386) IO-APIC pages (CONFIG_X86_IO_APIC); with CONFIG_KMAP_LOCAL
``KM_MAX_IDX * NR_CPUS`` kmap pages (``KM_MAX_IDX`` 16, 33 with CONFIG_DEBUG_KMAP_LOCAL)
and then the PCIe MMCONFIG page (CONFIG_PCI_MMCONFIG); the paravirt bootmap page
(CONFIG_PARAVIRT_XXL); two GHES pages (CONFIG_ACPI_APEI_GHES); that ends the permanent
part.  Then 512 early_ioremap slots, moved up to the next multiple of 512 when they would
cross a 512-slot boundary; the WP-test page (i386); the tboot page (CONFIG_INTEL_TXT).
"""
from __future__ import annotations

from typing import Dict, Optional

PAGE = 4096
FIXADDR_TOP = 0xFFFFF000
TOTAL_FIX_BTMAPS = 512
MAX_IO_APICS_32 = 64


def read_kconfig(path: str) -> Dict[str, str]:
    """``CONFIG_X=value`` lines of a .config (``# ... is not set`` lines are absent)."""
    out: Dict[str, str] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if line.startswith("CONFIG_") and "=" in line:
                k, v = line.split("=", 1)
                out[k[len("CONFIG_"):]] = v.strip('"')
    return out


def fixmap_indices_32(cfg: Dict[str, str], pae: bool = True) -> Dict[str, int]:
    """Indices of the i386 fixmap slots emu needs, from a build's config."""
    def on(name: str) -> bool:
        return cfg.get(name) in ("y", "m")

    i = 3                                   # FIX_HOLE, FIX_DBGP_BASE, FIX_EARLYCON_MEM_BASE
    if on("PROVIDE_OHCI1394_DMA_INIT"):
        i += 1
    if on("X86_LOCAL_APIC"):
        i += 1
    if on("X86_IO_APIC"):
        i += MAX_IO_APICS_32
    out: Dict[str, int] = {}
    if on("KMAP_LOCAL"):
        km_max_idx = 33 if on("DEBUG_KMAP_LOCAL") else 16
        out["kmap_begin"] = i
        i += km_max_idx * int(cfg.get("NR_CPUS", "1"))
        out["kmap_end"] = i - 1
        if on("PCI_MMCONFIG"):
            i += 1
    if on("PARAVIRT_XXL"):
        i += 1
    if on("ACPI_APEI_GHES"):
        i += 2
    permanent = i
    if (permanent ^ (permanent + TOTAL_FIX_BTMAPS - 1)) & -(512 if pae else 1024):   # PTRS_PER_PTE
        btmap_end = permanent + TOTAL_FIX_BTMAPS - (permanent & (TOTAL_FIX_BTMAPS - 1))
    else:
        btmap_end = permanent
    out["btmap_begin"] = btmap_end + TOTAL_FIX_BTMAPS - 1
    i = out["btmap_begin"] + 1
    i += 1                                  # FIX_WP_TEST (CONFIG_X86_32)
    if on("INTEL_TXT"):
        i += 1
    out["end_of_fixed_addresses"] = i
    return out


def fixmap_layout_32(cfg: Optional[Dict[str, str]], pae: bool = True, fixaddr_top: int = FIXADDR_TOP,
                     btmap_begin_va: Optional[int] = None) -> Dict[str, object]:
    """emu's fixmap inputs (``fixmap_bottom``, ``btmap_begin``, ``kmap_range``) for a build:
    from its config when there is one, checked against ``btmap_begin_va`` (the running
    kernel's ``slot_virt[0]``); without a config, only what ``slot_virt[0]`` gives.
    ``notes`` says what could not be determined or did not agree."""
    def va(idx: int) -> int:
        return (fixaddr_top - idx * PAGE) & 0xFFFFFFFF

    out: Dict[str, object] = {"notes": []}
    notes = out["notes"]
    if fixaddr_top != FIXADDR_TOP:
        notes.append(f"__FIXADDR_TOP is {fixaddr_top:#x}, emu assumes {FIXADDR_TOP:#x}")
    if cfg:
        ix = fixmap_indices_32(cfg, pae)
        out["fixmap_bottom"] = va(ix["end_of_fixed_addresses"] - 1)
        out["btmap_begin"] = va(ix["btmap_begin"])
        if "kmap_begin" in ix:
            out["kmap_range"] = (va(ix["kmap_end"]), va(ix["kmap_begin"]))
        if btmap_begin_va is not None and btmap_begin_va != out["btmap_begin"]:
            notes.append(f"slot_virt[0] is {btmap_begin_va:#x}, the config gives FIX_BTMAP_BEGIN at "
                         f"{out['btmap_begin']:#x}: the fixmap enum differs from 6.1's")
            out["btmap_begin"] = btmap_begin_va
            out["fixmap_bottom"] = btmap_begin_va - PAGE
        out["source"] = "config"
    elif btmap_begin_va is not None:
        out["btmap_begin"] = btmap_begin_va
        out["fixmap_bottom"] = btmap_begin_va - PAGE       # FIX_WP_TEST only (no CONFIG_INTEL_TXT)
        out["source"] = "slot_virt"
        notes.append("no kernel config: the kmap slots' PMDs are unknown (emu assumes one PMD)")
    else:
        out["source"] = None
        notes.append("no kernel config and no slot_virt: emu's default fixmap geometry")
    return out
