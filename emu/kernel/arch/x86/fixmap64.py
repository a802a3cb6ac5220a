"""arch/x86/include/asm/fixmap.h on x86-64 (4.19 .. 6.18): ``enum fixed_addresses`` and the
``level2_fixmap_pgt`` slot ``early_ioremap_init`` links ``bm_pte`` into.

Members in order, with the options that bring them: ``VSYSCALL_PAGE`` = 511
(X86_VSYSCALL_EMULATION; the enum restarts there, else it starts at 0), ``FIX_DBGP_BASE``,
``FIX_EARLYCON_MEM_BASE``, ``FIX_OHCI1394_BASE`` (PROVIDE_OHCI1394_DMA_INIT),
``FIX_APIC_BASE`` (X86_LOCAL_APIC), ``FIX_IO_APIC_BASE_0..END`` (X86_IO_APIC, MAX_IO_APICS =
128), ``FIX_PARAVIRT_BOOTMAP`` (PARAVIRT_XXL; PARAVIRT before 4.20), ``FIX_LNW_VRTC``
(X86_INTEL_MID), ``FIX_APEI_GHES_IRQ/NMI`` (ACPI_APEI_GHES): that is
``__end_of_permanent_fixed_addresses``.  The kmap slots are 32-bit only (or KMAP_LOCAL's
forced mapping, not modelled).  ``FIX_BTMAP_END`` is that index, moved up to the next
multiple of 512 when the 512 boot-time slots would cross a page table; ``FIX_BTMAP_BEGIN``
= END + 511.  ``fix_to_virt(i) = FIXADDR_TOP - i * 4K`` with FIXADDR_TOP in PTE 511 of the
profile's ``fixmap_top_slot``, so ``bm_pte``'s slot is ``fixmap_top_slot - BEGIN // 512``.
Debian's amd64 5.10, 6.1 and 6.12 configs: 646 -> END 1024 -> slot 505 (checked against
the constants in their images: research/kernel_x86_64_more.md section 3).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Tuple

from emu.kernel.profiles import Profile

if TYPE_CHECKING:
    from emu.inputs.kconfig import KConfig

#: 64 boot-time slots per CPU slot x 8 (NR_FIX_BTMAPS * FIX_BTMAPS_SLOTS)
TOTAL_FIX_BTMAPS = 512
PTRS_PER_PTE = 512
#: MAX_IO_APICS on 64-bit
MAX_IO_APICS = 128


def end_of_permanent_fixed_addresses(config: "KConfig") -> int:
    """``__end_of_permanent_fixed_addresses`` of an x86-64 build (see the module doc)."""
    i = 512 if config.bool("X86_VSYSCALL_EMULATION", default=False) else 0
    i += 2                                                  # FIX_DBGP_BASE, FIX_EARLYCON_MEM_BASE
    i += 1 if config.bool("PROVIDE_OHCI1394_DMA_INIT", default=False) else 0
    i += 1 if config.bool("X86_LOCAL_APIC", default=False) else 0
    i += MAX_IO_APICS if config.bool("X86_IO_APIC", default=False) else 0
    pv = config.bool("PARAVIRT_XXL", default=None)
    if pv is None:
        pv = config.bool("PARAVIRT", default=False)
    i += 1 if pv else 0
    i += 1 if config.bool("X86_INTEL_MID", default=False) else 0
    i += 2 if config.bool("ACPI_APEI_GHES", default=False) else 0
    return i


def fix_btmap_end(permanent: int) -> int:
    """``FIX_BTMAP_END``: the boot-time slots may not cross a page table."""
    if (permanent ^ (permanent + TOTAL_FIX_BTMAPS - 1)) & -PTRS_PER_PTE:
        return permanent + TOTAL_FIX_BTMAPS - (permanent & (TOTAL_FIX_BTMAPS - 1))
    return permanent


def bm_pte_slot_64(profile: Profile, config: "KConfig") -> Tuple[Optional[int], str]:
    """(slot of level2_fixmap_pgt that gets bm_pte, why); ``(None, why not)`` for a layout
    not modelled."""
    if profile.fixmap_top_slot != 507:
        return None, "the fixmap enum before 4.19 is not modelled"
    if config.bool("KMAP_LOCAL", default=False):
        return None, "KMAP_LOCAL on x86-64 (DEBUG_KMAP_LOCAL_FORCE_MAP) is not modelled"
    perm = end_of_permanent_fixed_addresses(config)
    begin = fix_btmap_end(perm) + TOTAL_FIX_BTMAPS - 1
    slot = profile.fixmap_top_slot - begin // PTRS_PER_PTE
    return slot, "FIX_BTMAP_BEGIN = %d (__end_of_permanent_fixed_addresses %d): level2_fixmap_pgt[%d]" % (
        begin, perm, slot)


__all__ = ["bm_pte_slot_64", "end_of_permanent_fixed_addresses", "fix_btmap_end"]
