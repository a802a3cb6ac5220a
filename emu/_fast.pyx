# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Hot loops of emu: filling page-table pages and walking page tables.

This layer is thin and typed: it sees only numpy arrays through typed
memoryviews, runs its loops without the GIL and never allocates.  Python
(``emu.mm.init_64``, ``emu.walk``) validates every argument before calling in:
table arrays are exactly one page, indices are in range, RAM range arrays are
sorted and disjoint.  The same functions exist in pure Python in
``emu._reference`` (byte-for-byte identical results; the tests compare them).

Physical memory layout: see ``emu.phys``.
"""
from libc.stdint cimport uint64_t, uint32_t, int32_t, int64_t, uint8_t

# Events returned by level_scan (a 2M/1G-capable level: PUD or PMD).
DEF EV_DONE = 0
DEF EV_DESCEND = 1   # present entry pointing to a table: Python descends
DEF EV_ALLOC = 2     # empty entry, large page not allowed: Python allocates a table
DEF EV_SPLIT = 3     # present large leaf, large page not allowed: split it

EVENT_DONE = EV_DONE
EVENT_DESCEND = EV_DESCEND
EVENT_ALLOC = EV_ALLOC
EVENT_SPLIT = EV_SPLIT

cdef uint64_t _PSE = 1 << 7


cdef inline bint ram_any(const uint64_t[:] rs, const uint64_t[:] re, uint64_t start, uint64_t end) noexcept nogil:
    """True if any RAM range [rs[k], re[k]) intersects [start, end) (sorted, disjoint)."""
    cdef Py_ssize_t lo = 0, hi = rs.shape[0], mid
    # first range whose end is > start
    while lo < hi:
        mid = (lo + hi) >> 1
        if re[mid] <= start:
            lo = mid + 1
        else:
            hi = mid
    return lo < rs.shape[0] and rs[lo] < end


def pte_fill(uint64_t[:] table, int idx, uint64_t paddr, uint64_t paddr_end,
             uint64_t flags, uint64_t pfn_mask, bint after_bootmem,
             const uint64_t[:] ram_s, const uint64_t[:] ram_e):
    """phys_pte_init over one PTE page from entry ``idx``.

    ``flags`` is the PTE protection already masked by ``__supported_pte_mask``.
    Returns ``(paddr_last, pages)``: the kernel's return value and the
    number of 4K pages counted for ``update_page_count``.
    """
    cdef uint64_t last = paddr_end, nxt
    cdef int64_t pages = 0
    cdef int i
    with nogil:
        for i in range(idx, 512):
            nxt = (paddr & ~<uint64_t>0xFFF) + 0x1000
            if paddr >= paddr_end:
                if not after_bootmem and not ram_any(ram_s, ram_e, paddr & ~<uint64_t>0xFFF, nxt):
                    table[i] = 0
            elif table[i] != 0:
                if not after_bootmem:
                    pages += 1
            else:
                table[i] = (paddr & pfn_mask) | flags
                last = nxt
                pages += 1
            paddr = nxt
    return last, pages


def level_scan(uint64_t[:] table, int idx, uint64_t paddr, uint64_t paddr_end,
               int shift, bint large_ok, uint64_t leaf_flags, uint64_t pfn_mask,
               bint after_bootmem, const uint64_t[:] ram_s, const uint64_t[:] ram_e,
               uint64_t last):
    """phys_pmd_init / phys_pud_init over one table page, up to the next event.

    Handles, without leaving C, the entries the kernel fills by itself at this
    level: beyond-end zeroing of non-RAM slots, kept large leaves, new large
    leaves (``leaf_flags`` already masked, PSE included).  Stops at an entry
    that needs Python (descend into a table, allocate one, split a leaf).

    Returns ``(event, index, paddr, last, pages)``: ``paddr`` is the address
    the kernel loop holds at ``index``; ``last`` the running ``paddr_last``;
    ``pages`` the large pages counted so far in this call.
    """
    cdef uint64_t size = (<uint64_t>1) << shift
    cdef uint64_t mask = ~(size - 1)
    cdef uint64_t nxt, e
    cdef int64_t pages = 0
    cdef int i = idx
    cdef int ev = EV_DONE
    with nogil:
        while i < 512:
            nxt = (paddr & mask) + size
            e = table[i]
            if paddr >= paddr_end:
                if not after_bootmem and not ram_any(ram_s, ram_e, paddr & mask, nxt):
                    table[i] = 0
            elif e != 0:
                if not (e & _PSE):
                    ev = EV_DESCEND
                    break
                if large_ok:
                    if not after_bootmem:
                        pages += 1
                    last = nxt
                else:
                    ev = EV_SPLIT
                    break
            elif large_ok:
                table[i] = (paddr & mask & pfn_mask) | leaf_flags
                pages += 1
                last = nxt
            else:
                ev = EV_ALLOC
                break
            paddr = nxt
            i += 1
    return ev, i, paddr, last, pages


# ---------------------------------------------------------------------------
# The hardware walk (Intel SDM vol. 3A, 4.5 "4-level and 5-level paging").
# ---------------------------------------------------------------------------

cdef inline uint64_t read_entry(const int32_t[:] directory, const int32_t[:, :] blocks,
                                const uint64_t[:, :] frames, uint64_t pa) noexcept nogil:
    cdef uint64_t pfn = pa >> 12
    cdef uint64_t d = pfn >> 18
    cdef int32_t b, s
    if d >= <uint64_t>directory.shape[0]:
        return 0
    b = directory[d]
    if b < 0:
        return 0
    s = blocks[b, pfn & 0x3FFFF]
    if s < 0:
        return 0
    return frames[s, (pa & 0xFFF) >> 3]


cdef inline uint32_t read_entry32(const int32_t[:] directory, const int32_t[:, :] blocks,
                                  const uint64_t[:, :] frames, uint64_t pa) noexcept nogil:
    cdef uint64_t v = read_entry(directory, blocks, frames, pa & ~<uint64_t>7)
    if pa & 4:
        return <uint32_t>(v >> 32)
    return <uint32_t>v


# access bits
DEF ACC_WRITE = 1
DEF ACC_USER = 2
DEF ACC_FETCH = 4
# page-fault error code bits
DEF PF_PROT = 1
DEF PF_WRITE = 2
DEF PF_USER = 4
DEF PF_RSVD = 8
DEF PF_INSTR = 16
DEF FAULT_GP_C = -2
FAULT_GP = FAULT_GP_C


def walk64(const int32_t[:] directory, const int32_t[:, :] blocks, const uint64_t[:, :] frames,
           uint64_t cr3, int levels, int maxphyaddr, bint nxe, bint wp, bint smep,
           int access, const uint64_t[:] vas,
           uint64_t[:] out_pa, uint8_t[:] out_shift, uint64_t[:] out_leaf,
           uint64_t[:] out_flags, int32_t[:] out_err):
    """Translate ``vas`` through 4-level (levels=4) or 5-level (levels=5) paging.

    Per address: ``out_pa`` physical address, ``out_shift`` leaf size as a
    shift (12, 21, 30; 0 on a fault), ``out_leaf`` the raw leaf entry,
    ``out_flags`` the effective flags (bit 1 RW and bit 2 US ANDed over all
    levels, bit 63 XD ORed, other bits from the leaf), ``out_err`` -1 when the
    translation succeeds, else the #PF error code, or -2 (#GP) for a
    non-canonical address.
    """
    cdef Py_ssize_t n = vas.shape[0], k
    cdef uint64_t va, table, e, addr_mask, rsvd_hi, pa, eff_rw, eff_us, eff_nx, leaf_rsvd
    cdef int lvl, shift, err, vabits
    cdef uint64_t top
    cdef bint rsvd, fault
    addr_mask = ((<uint64_t>1 << maxphyaddr) - 1) & ~<uint64_t>0xFFF
    # bits maxphyaddr..51 are reserved in every paging-structure entry
    rsvd_hi = (((<uint64_t>1) << 52) - 1) & ~(((<uint64_t>1) << maxphyaddr) - 1)
    if not nxe:
        rsvd_hi |= (<uint64_t>1) << 63
    vabits = 57 if levels == 5 else 48
    with nogil:
        for k in range(n):
            va = vas[k]
            out_pa[k] = 0
            out_shift[k] = 0
            out_leaf[k] = 0
            out_flags[k] = 0
            # canonical check: bits 63..vabits-1 all equal
            top = va >> (vabits - 1)
            if top != 0 and top != ((<uint64_t>1 << (65 - vabits)) - 1):
                out_err[k] = FAULT_GP_C
                continue
            table = cr3 & addr_mask
            eff_rw = 2
            eff_us = 4
            eff_nx = 0
            err = -1
            lvl = levels
            while True:
                shift = 12 + 9 * (lvl - 1)
                e = read_entry(directory, blocks, frames, table + (((va >> shift) & 0x1FF) << 3))
                if not (e & 1):
                    err = 0
                    break
                rsvd = (e & rsvd_hi) != 0
                if e & _PSE:
                    if lvl >= 4:
                        rsvd = True           # PS is reserved in PML4E/PML5E
                    elif lvl == 3:
                        rsvd = rsvd or (e & 0x3FFFE000) != 0   # bits 29:13
                    elif lvl == 2:
                        rsvd = rsvd or (e & 0x1FE000) != 0     # bits 20:13
                if rsvd:
                    err = PF_PROT | PF_RSVD
                    break
                eff_rw &= e
                eff_us &= e
                if e & ((<uint64_t>1) << 63):
                    eff_nx = (<uint64_t>1) << 63
                if lvl == 1 or (lvl <= 3 and (e & _PSE)):
                    break
                table = e & addr_mask
                lvl -= 1
            if err < 0:
                # permission checks (SDM 4.6)
                fault = False
                if access & ACC_USER:
                    if not eff_us:
                        fault = True
                    elif (access & ACC_WRITE) and not eff_rw:
                        fault = True
                    elif (access & ACC_FETCH) and nxe and eff_nx:
                        fault = True
                else:
                    if (access & ACC_WRITE) and wp and not eff_rw:
                        fault = True
                    elif (access & ACC_FETCH) and ((nxe and eff_nx) or (smep and eff_us)):
                        fault = True
                if fault:
                    err = PF_PROT
                else:
                    pa = (e & addr_mask & ~((((<uint64_t>1) << shift) - 1))) | (va & (((<uint64_t>1) << shift) - 1))
                    out_pa[k] = pa
                    out_shift[k] = shift
                    out_leaf[k] = e
                    out_flags[k] = (e & ~(<uint64_t>6) & ~addr_mask & ~((<uint64_t>1) << 63)) | eff_rw | eff_us | eff_nx
                    out_err[k] = -1
                    continue
            if access & ACC_WRITE:
                err |= PF_WRITE
            if access & ACC_USER:
                err |= PF_USER
            if (access & ACC_FETCH) and (nxe or smep):
                err |= PF_INSTR
            out_err[k] = err
    return None


# ---------------------------------------------------------------------------
# Enumerating a tree: runs of leaves and the table pages, for verification,
# dumps and accounting.  One pass over every present entry, no recursion.
# ---------------------------------------------------------------------------
def enumerate64(const int32_t[:] directory, const int32_t[:, :] blocks, const uint64_t[:, :] frames,
                uint64_t root_pfn, int levels, int top_lo, int top_hi, int maxphyaddr,
                uint64_t[:, :] runs, uint64_t[:, :] tables, int64_t[:] counts):
    """Walk every present entry below ``root_pfn`` (top-level indices [top_lo, top_hi)).

    ``runs[r] = (va, va_end, pa, shift, leaf_flags, eff)``: maximal runs of
    contiguous leaves of one size whose physical addresses are contiguous and
    whose flags (leaf flags, and effective RW/US/NX in ``eff``) are equal.
    ``tables[t] = (pfn, level, parent_pfn, parent_index)`` for every table page
    referenced by a present non-leaf entry.  ``counts`` receives
    (nruns, ntables, n4k, n2m, n1g, nreserved): leaves counted by size and
    entries with reserved bits set (skipped).  Returns False when ``runs`` or
    ``tables`` is too small (counts then hold the sizes needed).
    """
    cdef uint64_t addr_mask = ((<uint64_t>1 << maxphyaddr) - 1) & ~<uint64_t>0xFFF
    cdef uint64_t rsvd_hi = ((((<uint64_t>1) << 52) - 1) & ~(((<uint64_t>1) << maxphyaddr) - 1))
    cdef int vabits = 57 if levels == 5 else 48
    cdef uint64_t tbl[6]
    cdef int idx[6]
    cdef uint64_t vabase[6]
    cdef uint64_t effv[6]
    cdef int lvl = levels, shift, i
    cdef uint64_t e, va, pa, size, flags, eff, signbit
    cdef Py_ssize_t nr = 0, nt = 0, cap_r = runs.shape[0], cap_t = tables.shape[0]
    cdef int64_t n4k = 0, n2m = 0, n1g = 0, nrsv = 0
    cdef bint leaf, ok = True
    cdef uint64_t cur_va = 0, cur_end = 0, cur_pa = 0, cur_shift = 0, cur_flags = 0, cur_eff = 0
    cdef bint have = False
    signbit = (<uint64_t>1) << (vabits - 1)
    with nogil:
        tbl[lvl] = root_pfn << 12
        idx[lvl] = top_lo
        vabase[lvl] = 0
        effv[lvl] = 6  # RW|US, NX clear
        while True:
            if (lvl == levels and idx[lvl] >= top_hi) or idx[lvl] >= 512:
                if lvl == levels:
                    break
                lvl += 1
                idx[lvl] += 1
                continue
            shift = 12 + 9 * (lvl - 1)
            i = idx[lvl]
            e = read_entry(directory, blocks, frames, tbl[lvl] + (<uint64_t>i << 3))
            if not (e & 1):
                idx[lvl] += 1
                continue
            if (e & rsvd_hi) != 0 or (lvl >= 4 and (e & _PSE)):
                nrsv += 1
                idx[lvl] += 1
                continue
            va = vabase[lvl] | (<uint64_t>i << shift)
            leaf = lvl == 1 or (lvl <= 3 and (e & _PSE))
            eff = effv[lvl] & (e & 6)
            if e & ((<uint64_t>1) << 63):
                eff |= (<uint64_t>1) << 63
            else:
                eff |= effv[lvl] & ((<uint64_t>1) << 63)
            if not leaf:
                if nt < cap_t:
                    tables[nt, 0] = (e & addr_mask) >> 12
                    tables[nt, 1] = lvl - 1
                    tables[nt, 2] = tbl[lvl] >> 12
                    tables[nt, 3] = i
                else:
                    ok = False
                nt += 1
                lvl -= 1
                tbl[lvl] = e & addr_mask
                idx[lvl] = 0
                vabase[lvl] = va
                effv[lvl] = eff
                continue
            size = (<uint64_t>1) << shift
            pa = e & addr_mask & ~(size - 1)
            if lvl == 1:
                flags = e & ~addr_mask
                n4k += 1
            else:
                flags = e & ~(addr_mask & ~(<uint64_t>0x1000))
                if lvl == 2:
                    n2m += 1
                else:
                    n1g += 1
            # sign-extend the virtual address
            if va & signbit:
                va |= ~(signbit * 2 - 1)
            if have and va == cur_end and pa == cur_pa + (cur_end - cur_va) and shift == cur_shift \
                    and flags == cur_flags and eff == cur_eff:
                cur_end = va + size
            else:
                if have:
                    if nr < cap_r:
                        runs[nr, 0] = cur_va
                        runs[nr, 1] = cur_end
                        runs[nr, 2] = cur_pa
                        runs[nr, 3] = cur_shift
                        runs[nr, 4] = cur_flags
                        runs[nr, 5] = cur_eff
                    else:
                        ok = False
                    nr += 1
                have = True
                cur_va = va
                cur_end = va + size
                cur_pa = pa
                cur_shift = shift
                cur_flags = flags
                cur_eff = eff
            idx[lvl] += 1
        if have:
            if nr < cap_r:
                runs[nr, 0] = cur_va
                runs[nr, 1] = cur_end
                runs[nr, 2] = cur_pa
                runs[nr, 3] = cur_shift
                runs[nr, 4] = cur_flags
                runs[nr, 5] = cur_eff
            else:
                ok = False
            nr += 1
    counts[0] = nr
    counts[1] = nt
    counts[2] = n4k
    counts[3] = n2m
    counts[4] = n1g
    counts[5] = nrsv
    return ok
