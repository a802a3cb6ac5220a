"""x86 paging-structure entries as the hardware reads them (Intel SDM vol. 3A, 4.3-4.7).

Bit positions of the entry formats (the same in 4- and 5-level, PAE and, for the low 12
bits, 32-bit paging), the access types of a walk and the bits of a #PF error code.  The
kernel's names for these bits and its composite protections (``_PAGE_*``,
``PAGE_KERNEL``) belong to the emulated kernel (:mod:`emu.kernel.arch.x86.pgtable_types`),
which builds on this module; the checker reads only this one.
"""
from __future__ import annotations

from typing import List

# -- entry bits ----------------------------------------------------------------
P = 1 << 0            # present
RW = 1 << 1           # read/write
US = 1 << 2           # user/supervisor
PWT = 1 << 3
PCD = 1 << 4
A = 1 << 5            # accessed
D = 1 << 6            # dirty (leaves)
PS = 1 << 7           # page size (PDE/PDPTE); PAT on a 4 KiB PTE
PAT_4K = 1 << 7
G = 1 << 8            # global (leaves)
PAT_LARGE = 1 << 12   # PAT on a 2 MiB / 1 GiB / 4 MiB leaf
XD = 1 << 63          # execute-disable (PAE and 64-bit entries, with EFER.NXE)

#: the flag bits of an 8-byte entry (bits 0-11 and XD)
FLAGS_LOW_AND_XD = 0x8000000000000FFF

U64 = (1 << 64) - 1

# -- geometry --------------------------------------------------------------------
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT

# -- a walk's access type (bits of ``access``) ---------------------------------------
ACCESS_READ = 0
ACCESS_WRITE = 1
ACCESS_USER = 2
ACCESS_FETCH = 4

# -- #PF error code (SDM 4.7) ----------------------------------------------------------
PF_PROT = 1      # P: the fault was a protection violation (0: not present)
PF_WRITE = 2     # W/R
PF_USER = 4      # U/S
PF_RSVD = 8      # a reserved bit was set in some paging-structure entry
PF_INSTR = 16    # I/D: instruction fetch
#: not a #PF: the address is not canonical (#GP)
FAULT_GP = -2

_NAMES = [(P, "P"), (RW, "RW"), (US, "US"), (PWT, "PWT"), (PCD, "PCD"), (A, "A"), (D, "D"),
          (PS, "PSE"), (G, "G"), (XD, "NX")]


def flag_names(value: int, shift: int = 21) -> List[str]:
    """Names of the bits set in an entry; on a 4 KiB leaf (``shift == 12``) bit 7 is PAT,
    on a larger leaf bit 12 is PAT (PAT_LARGE).  The names are those ptdump and the
    kernel use (PSE, NX)."""
    names = []
    for bit, name in _NAMES:
        if value & bit:
            names.append("PAT" if (bit == PS and shift == 12) else name)
    if shift > 12 and value & PAT_LARGE:
        names.append("PAT")
    return names


def error_code_text(err: int) -> str:
    """A #PF error code in words, e.g. ``not-present read (kernel)``."""
    if err == FAULT_GP:
        return "#GP (non-canonical address)"
    what = "protection" if err & PF_PROT else "not-present"
    kind = "fetch" if err & PF_INSTR else ("write" if err & PF_WRITE else "read")
    mode = "user" if err & PF_USER else "kernel"
    extra = ", reserved bit" if err & PF_RSVD else ""
    return f"{what} {kind} ({mode}{extra})"
