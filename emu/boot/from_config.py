"""What a kernel's .config fixes about its boot (the options that change the tables are
listed in :data:`emu.inputs.kconfig.TABLE_OPTIONS`): where the image is loaded when it
is not randomised, the 32-bit split and highmem, the fixmap slot ``bm_pte`` goes into
on x86-64.  The options decided together with the log and the CPU (GB pages, PTI,
debug_pagealloc, 5-level paging, the BRK buffer's size) are in :mod:`emu.boot.decide`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from emu.boot.record import Inputs
from emu.kernel.profiles import Profile

if TYPE_CHECKING:
    from emu.inputs.dmesg import BootLog
    from emu.inputs.kconfig import KConfig


def load_physical_addr(config: "KConfig") -> Optional[int]:
    """``LOAD_PHYSICAL_ADDR``: CONFIG_PHYSICAL_START rounded up to CONFIG_PHYSICAL_ALIGN
    (arch/x86/include/asm/page_types.h / boot.h), None when the config does not say."""
    start = config.int("PHYSICAL_START")
    if start is None:
        return None
    align = config.int("PHYSICAL_ALIGN", default=0x200000 if config.arch == "x86_64" else 0x2000) or 1
    return -(-start // align) * align


def from_config(inp: Inputs, config: "KConfig", prof: Profile, log: Optional["BootLog"]) -> None:
    """Set what ``config`` fixes (see the module doc) unless a log already said it."""
    p = inp.params
    c = config.name
    # where the image runs: LOAD_PHYSICAL_ADDR unless KASLR moved it
    if "kernel_start" not in inp.sources:
        lpa = load_physical_addr(config)
        kaslr = config.bool("RANDOMIZE_BASE", default=False)
        nokaslr = log is not None and log.options.kaslr is False
        if lpa is not None and (not kaslr or nokaslr):
            why = "CONFIG_RANDOMIZE_BASE is not set" if not kaslr else "nokaslr on the command line"
            inp.set("kernel_start", lpa, f"{c}: CONFIG_PHYSICAL_START/ALIGN ({why})")
        elif lpa is not None:
            inp.kaslr_unknown = True
            p.kernel_start = lpa
            inp.assume("kernel_start", "%#x" % lpa,
                       "LOAD_PHYSICAL_ADDR of the config, but CONFIG_RANDOMIZE_BASE=y may have moved the image: "
                       "no memblock=debug log (its image reservation) and no nokaslr")
    if p.arch == "x86_64":
        from emu.kernel.arch.x86.fixmap64 import bm_pte_slot_64
        slot, why = bm_pte_slot_64(prof, config)
        if slot is not None:
            inp.set("bm_pte_slot", slot, f"{c}: {why}")
        return
    # i386: the split, highmem and the fixmap geometry
    po = config.int("PAGE_OFFSET")
    if po is not None and "page_offset_32" not in inp.sources:
        inp.set("page_offset_32", po, f"{c}: CONFIG_PAGE_OFFSET")
    hm = config.bool("HIGHMEM", default=False)
    if "highmem_config" not in inp.sources:
        inp.set("highmem_config", bool(hm), f"{c}: CONFIG_HIGHMEM")


__all__ = ["from_config", "load_physical_addr"]
