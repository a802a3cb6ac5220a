"""arch/x86/mm/pageattr.c: the DirectMap counters of /proc/meminfo."""
from __future__ import annotations

from typing import Dict

from emu.kernel.arch.x86.pgtable_types import PG_LEVEL_1G, PG_LEVEL_2M, PG_LEVEL_4K


def update_page_count(k, level: int, pages: int) -> None:
    """``update_page_count``: ``direct_pages_count[level] += pages`` (pageattr.c, 3.x–6.x)."""
    k.direct_pages_count[level] += pages


def arch_report_meminfo(k) -> Dict[str, int]:
    """DirectMap lines of ``arch_report_meminfo`` in kB, as /proc/meminfo shows them.

    DirectMap1G is shown only when ``direct_gbpages`` is set (pageattr.c).
    """
    out = {"DirectMap4k": k.direct_pages_count[PG_LEVEL_4K] << 2}
    if k.mode.pmd_shift == 22:   # i386 non-PAE: "DirectMap4M" (pageattr.c, !X86_64 && !X86_PAE)
        out["DirectMap4M"] = k.direct_pages_count[PG_LEVEL_2M] << 12
    else:
        out["DirectMap2M"] = k.direct_pages_count[PG_LEVEL_2M] << 11
    if k.direct_gbpages:
        out["DirectMap1G"] = k.direct_pages_count[PG_LEVEL_1G] << 20
    return out
