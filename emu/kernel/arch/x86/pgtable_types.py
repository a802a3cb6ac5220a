"""Page-table entry formats and the kernel's protections.

Bit positions follow arch/x86/include/asm/pgtable_types.h (3.6 .. 6.6); the
composite protections are the kernel's ``__PAGE_KERNEL*`` / ``_PAGE_TABLE``
values.  ``massage_pgprot`` re-expresses the kernel's masking of a present
protection with ``__supported_pte_mask`` (pgtable.h), which is where the CPU
features (NX, PGE) enter the entries.
"""
from __future__ import annotations

from emu.machine import bits

# -- flag bits (pgtable_types.h) ---------------------------------------------
_PAGE_BIT_PRESENT = 0
_PAGE_BIT_RW = 1
_PAGE_BIT_USER = 2
_PAGE_BIT_PWT = 3
_PAGE_BIT_PCD = 4
_PAGE_BIT_ACCESSED = 5
_PAGE_BIT_DIRTY = 6
_PAGE_BIT_PSE = 7
_PAGE_BIT_PAT = 7  # on 4K PTEs
_PAGE_BIT_GLOBAL = 8
_PAGE_BIT_SOFTW1 = 9
_PAGE_BIT_SOFTW2 = 10
_PAGE_BIT_SOFTW3 = 11
_PAGE_BIT_PAT_LARGE = 12
_PAGE_BIT_NX = 63

_PAGE_PRESENT = 1 << _PAGE_BIT_PRESENT
_PAGE_RW = 1 << _PAGE_BIT_RW
_PAGE_USER = 1 << _PAGE_BIT_USER
_PAGE_PWT = 1 << _PAGE_BIT_PWT
_PAGE_PCD = 1 << _PAGE_BIT_PCD
_PAGE_ACCESSED = 1 << _PAGE_BIT_ACCESSED
_PAGE_DIRTY = 1 << _PAGE_BIT_DIRTY
_PAGE_PSE = 1 << _PAGE_BIT_PSE
_PAGE_PAT = 1 << _PAGE_BIT_PAT
_PAGE_GLOBAL = 1 << _PAGE_BIT_GLOBAL
_PAGE_SOFTW1 = 1 << _PAGE_BIT_SOFTW1
_PAGE_SOFTW2 = 1 << _PAGE_BIT_SOFTW2
_PAGE_SOFTW3 = 1 << _PAGE_BIT_SOFTW3
_PAGE_PAT_LARGE = 1 << _PAGE_BIT_PAT_LARGE
_PAGE_NX = 1 << _PAGE_BIT_NX

assert (_PAGE_PRESENT, _PAGE_RW, _PAGE_USER, _PAGE_PSE, _PAGE_GLOBAL, _PAGE_NX) == (
    bits.P, bits.RW, bits.US, bits.PS, bits.G, bits.XD), "the kernel's bits are the hardware's"

# -- composite protections ---------------------------------------------------
_KERNPG_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY            # 0x063
_PAGE_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY  # 0x067
__PAGE_KERNEL_EXEC = _PAGE_PRESENT | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED | _PAGE_GLOBAL  # 0x163
__PAGE_KERNEL = __PAGE_KERNEL_EXEC | _PAGE_NX                                      # 0x8000000000000163
__PAGE_KERNEL_LARGE = __PAGE_KERNEL | _PAGE_PSE                                    # 0x80000000000001e3
__PAGE_KERNEL_LARGE_EXEC = __PAGE_KERNEL_EXEC | _PAGE_PSE                          # 0x1e3

PAGE_KERNEL = __PAGE_KERNEL
PAGE_KERNEL_EXEC = __PAGE_KERNEL_EXEC
PAGE_KERNEL_LARGE = __PAGE_KERNEL_LARGE
PAGE_KERNEL_LARGE_EXEC = __PAGE_KERNEL_LARGE_EXEC
KERNPG_TABLE = _KERNPG_TABLE
PAGE_TABLE = _PAGE_TABLE

# -- geometry ------------------------------------------------------------------
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_MASK = ~(PAGE_SIZE - 1) & 0xFFFFFFFFFFFFFFFF
PMD_SHIFT = 21
PMD_SIZE = 1 << PMD_SHIFT
PUD_SHIFT = 30
PUD_SIZE = 1 << PUD_SHIFT
PGDIR_SHIFT = 39
PGDIR_SIZE = 1 << PGDIR_SHIFT
P4D_SHIFT = 39
PGDIR_SHIFT_L5 = 48
PTRS_PER_TABLE = 512

#: physical address bits the kernel supports (__PHYSICAL_MASK_SHIFT): 46 for
#: 4-level x86-64 until 4.x, 52 on current kernels.
PHYSICAL_MASK_SHIFT = 52
PTE_PFN_MASK = ((1 << PHYSICAL_MASK_SHIFT) - 1) & PAGE_MASK
PTE_FLAGS_MASK = ~PTE_PFN_MASK & 0xFFFFFFFFFFFFFFFF

# page_size_mask bits (PG_LEVEL_4K = 1, 2M = 2, 1G = 3)
PG_LEVEL_4K = 1
PG_LEVEL_2M = 2
PG_LEVEL_1G = 3
MASK_2M = 1 << PG_LEVEL_2M
MASK_1G = 1 << PG_LEVEL_1G

LEVEL_NAMES = {5: "PGD(L5)", 4: "PGD", 3: "PUD", 2: "PMD", 1: "PTE"}


def massage_pgprot(prot: int, supported_pte_mask: int) -> int:
    """The kernel's ``massage_pgprot``: a present protection is ANDed with
    ``__supported_pte_mask`` (arch/x86/include/asm/pgtable.h)."""
    if prot & _PAGE_PRESENT:
        return prot & supported_pte_mask
    return prot


def pfn_pte(pfn: int, prot: int, supported_pte_mask: int) -> int:
    """``pfn_pte``: entry for frame ``pfn`` with protection ``prot`` (64-bit/PAE)."""
    return ((pfn << PAGE_SHIFT) & PTE_PFN_MASK) | massage_pgprot(prot, supported_pte_mask)


def pte_pgprot(entry: int) -> int:
    """``pte_pgprot``: the flag bits of an entry (address bits removed)."""
    return entry & PTE_FLAGS_MASK


def pte_clrhuge(entry: int) -> int:
    return entry & ~_PAGE_PSE
