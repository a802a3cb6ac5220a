"""arch/x86/kernel/head_64.S, head64.c: the kernel image's half of the x86-64 root table.

At ``init_mem_mapping``'s return CR3 points to ``init_top_pgt`` (``init_level4_pgt``
before 4.x).  Besides the direct map it holds one present entry, PGD[511], which
``x86_64_start_kernel`` copied from the early table; below it lie the image's static
tables as ``__startup_64`` relocated them and ``cleanup_highmap`` trimmed them:

* PGD[511] -> ``level4_kernel_pgt`` (5-level only; its [511] ->) ``level3_kernel_pgt``,
  ``_PAGE_TABLE`` (0x067);
* ``level3_kernel_pgt[510]`` -> ``level2_kernel_pgt`` (``_KERNPG_TABLE``, 0x063),
  ``[511]`` -> ``level2_fixmap_pgt`` (0x067);
* ``level2_kernel_pgt``: 2 MiB leaves ``__PAGE_KERNEL_LARGE_EXEC`` (0x1e3, not masked by
  ``__supported_pte_mask``) exactly for ``[_text, roundup(_brk_end, 2M))``, mapping
  ``vaddr - __START_KERNEL_map + phys_base`` (``cleanup_highmap`` zeroed the rest; it runs
  after ``reserve_brk`` and before ``init_mem_mapping`` from 3.0 on);
* ``level2_fixmap_pgt``: ``FIXMAP_PMD_NUM`` pages of ``level1_fixmap_pgt`` from slot 506
  (0x067), and ``bm_pte`` in the slot of ``FIX_BTMAP_BEGIN`` (``early_ioremap_init``'s
  ``pmd_populate_kernel``); their PTEs are all clear at this point.

Sources: head_64.S, head64.c, init_64.c ``cleanup_highmap``, ioremap.c
``early_ioremap_init`` @ 3.10, 4.19, 5.10, 6.1, 6.12 (docs/versions.md); the PTI user
half of ``init_top_pgt`` is still all zero.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from emu.errors import EmuError
from emu.kernel.arch.x86.pgtable_types import KERNPG_TABLE, PAGE_KERNEL_LARGE_EXEC, PAGE_SHIFT, PAGE_TABLE
from emu.kernel.params import assumption

#: __START_KERNEL_map: the kernel image's virtual base
START_KERNEL_MAP = 0xFFFFFFFF80000000
PMD_SIZE = 1 << 21
#: CONFIG_PHYSICAL_START of the default configs: where _text is linked to run
DEFAULT_LINK_START = 0x1000000
#: the static tables of head_64.S, in the order the image lays them out after init_top_pgt
IMAGE_TABLES = ("level4_kernel_pgt", "level3_kernel_pgt", "level2_kernel_pgt", "level2_fixmap_pgt",
                "level1_fixmap_pgt", "bm_pte")
#: FIX_BTMAP_BEGIN's slot of a build with vsyscall emulation and a few hundred permanent slots
DEFAULT_BM_PTE_SLOT = 505


def image_table_addresses(k, first_free_pfn: int) -> Dict[str, int]:
    """pfn of each static table: the ``image_tables`` input, else the pages from
    ``first_free_pfn`` on, in head_64.S's order (an assumption, said once)."""
    given = {n: a >> PAGE_SHIFT for n, a in k.params.image_tables.items()}
    out: Dict[str, int] = {}
    nxt = first_free_pfn
    missing = []
    for name in IMAGE_TABLES:
        if name == "level4_kernel_pgt" and not (k.paging_levels == 5 or k.params.x86_5level_config):
            continue   # head_64.S builds it with CONFIG_X86_5LEVEL (every image from 6.16)
        n_pages = k.profile.fixmap_pmd_num if name == "level1_fixmap_pgt" else 1
        if name in given:
            out[name] = given[name]
        else:
            out[name] = nxt
            nxt += n_pages
            if name != "level4_kernel_pgt" or k.paging_levels == 5:   # unused with 4 levels
                missing.append(name)
    if missing:
        k.assumptions.append(assumption(
            "image_tables", "the pages after init_top_pgt (%#x...)" % (first_free_pfn << PAGE_SHIFT),
            "no --system-map for " + ", ".join(missing)))
    return out


def x86_64_start_kernel(k, first_free_pfn: int) -> List[Tuple[int, int, str]]:
    """Write PGD[511] and the image's static tables (see the module doc); returns their
    ``(pfn, level, name)``.  Reads the resolved inputs: ``kernel_start`` (_text's physical
    address), ``kernel_link_start`` (phys_base), the BRK buffer's end (``_brk_end``)."""
    p, prof, phys = k.params, k.profile, k.phys
    link = p.kernel_link_start
    if link is None:
        # CONFIG_PHYSICAL_START's default; a kernel loaded elsewhere was relocated (phys_base)
        link = DEFAULT_LINK_START if p.kernel_start >= DEFAULT_LINK_START else p.kernel_start & ~(PMD_SIZE - 1)
        k.assumptions.append(assumption("kernel_link_start", "%#x" % link,
                                        "_text linked at CONFIG_PHYSICAL_START's default; no --system-map"))
    if link & (PMD_SIZE - 1) or (p.kernel_start - link) & (PMD_SIZE - 1):
        raise EmuError(f"kernel_start {p.kernel_start:#x} (linked at {link:#x}) is not 2 MiB aligned: x86-64 "
                       f"images are (CONFIG_PHYSICAL_ALIGN)")
    k.phys_base = p.kernel_start - link
    t = image_table_addresses(k, first_free_pfn)
    tables: List[Tuple[int, int, str]] = []
    slot_of: Dict[int, int] = {}     # the frame slot of each page cleared here

    def page(name: str, level: int, pfn: int) -> int:
        slot_of[pfn] = phys.clear_page(pfn)
        tables.append((pfn, level, name))
        return pfn

    l3 = page("level3_kernel_pgt", 3, t["level3_kernel_pgt"])
    top = phys.table(k.pgd_pfn)
    if k.paging_levels == 5:
        l4 = page("level4_kernel_pgt", 4, t["level4_kernel_pgt"])
        top[511] = (l4 << PAGE_SHIFT) | PAGE_TABLE
        phys.frames[slot_of[l4], 511] = (l3 << PAGE_SHIFT) | PAGE_TABLE
    else:
        top[511] = (l3 << PAGE_SHIFT) | PAGE_TABLE
    l2 = page("level2_kernel_pgt", 2, t["level2_kernel_pgt"])
    fix = page("level2_fixmap_pgt", 2, t["level2_fixmap_pgt"])
    phys.frames[slot_of[l3], 510] = (l2 << PAGE_SHIFT) | KERNPG_TABLE
    phys.frames[slot_of[l3], 511] = (fix << PAGE_SHIFT) | PAGE_TABLE
    # cleanup_highmap: the image's 2M leaves from _text to roundup(_brk_end, 2M)
    brk_end = k.pgt_buf_top << PAGE_SHIFT
    first = link >> 21
    last = -(-(brk_end - k.phys_base) // PMD_SIZE)
    if not 0 <= first < last <= 512:
        raise EmuError(f"the kernel image [{p.kernel_start:#x}, {brk_end:#x}) does not fit the 1 GiB "
                       f"kernel mapping")
    pb = k.phys_base
    phys.frames[slot_of[l2], first:last] = [((i << 21) + pb) | PAGE_KERNEL_LARGE_EXEC for i in range(first, last)]
    # the fixmap's page tables (empty at this point) and early_ioremap's bm_pte
    fixt = phys.table(fix)
    for j in range(prof.fixmap_pmd_num):
        pte = page("level1_fixmap_pgt", 1, t["level1_fixmap_pgt"] + j)
        fixt[506 + j] = (pte << PAGE_SHIFT) | PAGE_TABLE
    slot = p.bm_pte_slot
    if slot is None:
        slot = DEFAULT_BM_PTE_SLOT
        k.assumptions.append(assumption("bm_pte_slot", str(slot), "FIX_BTMAP_BEGIN of a build with vsyscall "
                                        "emulation; no --config to compute the fixmap enum from"))
    if not 0 <= slot < 512:
        raise EmuError(f"bm_pte slot {slot} is not a level2_fixmap_pgt slot (0-511)")
    if fixt[slot] & 1:
        # no permanent fixmap lives in that 2 MiB: bm_pte replaces the link (4.19+ without
        # vsyscall emulation); level1_fixmap_pgt's page is then referenced no more
        tables[:] = [tb for tb in tables if tb[0] != (int(fixt[slot]) >> PAGE_SHIFT)]
    bm = page("bm_pte", 1, t["bm_pte"])
    fixt[slot] = (bm << PAGE_SHIFT) | PAGE_TABLE
    return tables


__all__ = ["IMAGE_TABLES", "START_KERNEL_MAP", "x86_64_start_kernel"]


def check_la57_support(profile, built: Optional[bool], cpu_la57: Optional[bool], no5lvl: bool,
                       cmdline_known: bool = True) -> Tuple[Optional[bool], str]:
    """5-level paging at boot (``check_la57_support``/``__pgtable_l5_enabled``, head64.c):
    a build with CONFIG_X86_5LEVEL (every build from 6.16), a CPU with LA57, and no ``no5lvl``.
    ``(None, what is missing)`` when unknown."""
    if not profile.la57_supported:
        return False, "kernel %s has no 5-level paging" % profile.name
    if built is False and not profile.x86_5level_always:
        return False, "CONFIG_X86_5LEVEL is not set"
    if cpu_la57 is False:
        return False, "the CPU has no LA57"
    if no5lvl:
        return False, "no5lvl on the command line"
    missing = [w for w, v in (("the build (CONFIG_X86_5LEVEL)", True if profile.x86_5level_always else built),
                              ("the CPU (LA57)", cpu_la57)) if v is None]
    if not cmdline_known:
        missing.append("the command line (no5lvl)")
    if missing:
        return None, " and ".join(missing)
    return True, "a CPU with LA57 and a kernel built for 5-level paging"
