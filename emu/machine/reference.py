"""The pure-Python twin of ``emu/_fast.pyx`` (x86-64): the same functions under the same
names -- ``Mapper.kernel_physical_mapping_init``, ``phys_p4d_init``, ``phys_pud_init``,
``phys_pmd_init``, ``phys_pte_init``, ``alloc_low_page``; ``walk64``; ``enumerate64`` --
with the same results byte for byte (the tests compare them).

It is the readable specification of the compiled loops and their byte-for-byte baseline,
not a fallback: it runs only when asked for (``--pure``, ``EMU_PURE=1``,
``engine="python"``; see :mod:`emu.machine.engine`).
"""
from __future__ import annotations

from emu.machine.abi import EV_DESCEND, EV_NEW_TABLE, EV_SPLIT, SRC_MEMBLOCK
from emu.machine.abi import MapCoverage as C
from emu.machine.phys import BLOCK_SHIFT

FAULT_GP = -2
EV_NONE = 0
_PAGE_TABLE = 0x067
_MASK_2M, _MASK_1G = 4, 8   # page_size_mask bits (1 << PG_LEVEL_2M, 1 << PG_LEVEL_1G)

_PSE = 1 << 7
_M64 = (1 << 64) - 1


def _ram_any(ram_s, ram_e, start, end):
    i = _bisect_np(ram_e, start)
    return i < len(ram_s) and int(ram_s[i]) < end


def _bisect_np(arr, x):
    lo, hi = 0, len(arr)
    while lo < hi:
        mid = (lo + hi) // 2
        if int(arr[mid]) <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo




def _massage(prot, supported):
    """massage_pgprot: a present protection is masked with __supported_pte_mask."""
    return prot & supported if prot & 1 else prot


def alloc_page(j, phys, level, buf_src):
    """``alloc_low_pages(1)`` as the loops see it: the buffer (BRK or, <= 3.8, pgt_buf), else
    the current memblock run, else ``j.refill()``; backs and clears the frame and books it."""
    full = (j.brk_next + 1 >= j.brk_top) if j.brk_ge else (j.brk_next + 1 > j.brk_top)
    if j.brk_ok and not full:
        pfn = j.brk_next
        j.brk_next += 1
        src = buf_src
    else:
        if j.run_hi <= j.run_lo:
            j.refill()
        j.run_hi -= 1
        pfn = j.run_hi
        src = SRC_MEMBLOCK
    if (pfn >> BLOCK_SHIFT) >= phys.directory.shape[0]:
        raise ValueError(f"page-table page {pfn << 12:#x} outside emulated RAM")
    phys.frame(pfn)
    if j.nout == j.out_pfn.shape[0]:
        j.grow_out()
    j.out_pfn[j.nout] = pfn
    j.out_level[j.nout] = level
    j.out_src[j.nout] = src
    j.nout += 1
    return pfn


class Mapper:
    """Pure-Python twin of ``emu._fast.Mapper``: the same functions under the same names,
    the same order of writes and allocations (tables are named by pfn instead of slot)."""

    def __init__(self, job):
        self.job = job
        self.phys = job.phys
        self.pages4k = self.pages2m = self.pages1g = 0
        if job.levels not in (4, 5):
            raise ValueError(f"x86-64 paging has 4 or 5 levels, not {job.levels}")

    def alloc_low_page(self, level):
        return alloc_page(self.job, self.phys, level, self.job.buf_src)

    def table(self, pfn):
        return self.phys.table(pfn)

    def populate(self, pfn, i, child):
        """pud_populate / pmd_populate / p4d_populate / pgd_populate with ``_PAGE_TABLE``."""
        self.table(pfn)[i] = ((child << 12) & self.job.pfn_mask) | _PAGE_TABLE

    def phys_pte_init(self, pfn, paddr, paddr_end, prot):
        """``phys_pte_init``: see emu/_fast.pyx."""
        j = self.job
        t = self.table(pfn)
        flags = _massage(prot, j.supported)
        last = paddr_end
        pages = 0
        i = (paddr >> 12) & 511
        while i < 512:
            nxt = (paddr & ~0xFFF) + 0x1000
            if paddr >= paddr_end:
                if j.zero_rest:
                    if not j.after_bootmem:
                        j.cov[C.COV_ZERO_REST_PTE] += 1
                        t[i:] = 0
                    break
                if not j.after_bootmem and not _ram_any(j.ram_s, j.ram_e, paddr & ~0xFFF, nxt):
                    if int(t[i]) != 0:
                        j.cov[C.COV_CLEAR_PTE] += 1
                    t[i] = 0
                elif int(t[i]) != 0:
                    j.cov[C.COV_KEEP_PAST_END] += 1
            elif int(t[i]) != 0:
                j.cov[C.COV_KEEP_4K] += 1
                if not j.after_bootmem or j.zero_rest:
                    pages += 1
            else:
                t[i] = (paddr & j.pfn_mask) | flags
                last = nxt
                pages += 1
            paddr = nxt
            i += 1
        self.pages4k += pages
        return last

    def scan_large(self, level, pfn, i, paddr, paddr_end, large_ok, leaf_flags, acc):
        """The allocation-free part of ``phys_pmd_init``/``phys_pud_init``; returns
        ``(event, i, paddr)``; ``acc`` is ``[last, pages]``."""
        j = self.job
        shift = 21 if level == 2 else 30
        size = 1 << shift
        amask = _M64 & ~(size - 1)
        t = self.table(pfn)
        while i < 512:
            nxt = (paddr & amask) + size
            e = int(t[i])
            if paddr >= paddr_end:
                if j.zero_rest:
                    if level == 2 and not j.after_bootmem:
                        j.cov[C.COV_ZERO_REST_PMD] += 1
                        t[i:] = 0
                    i = 512
                    break
                if not j.after_bootmem and not _ram_any(j.ram_s, j.ram_e, paddr & amask, nxt):
                    if e != 0:
                        j.cov[C.COV_CLEAR_PMD if level == 2 else C.COV_CLEAR_PUD] += 1
                    t[i] = 0
                elif e != 0:
                    j.cov[C.COV_KEEP_PAST_END] += 1
            elif j.zero_rest and level == 3 and not j.after_bootmem and not _ram_any(j.any_s, j.any_e, paddr, nxt):
                j.cov[C.COV_PUD_NO_E820] += 1
                t[i] = 0
            elif e != 0:
                if not e & _PSE:
                    return EV_DESCEND, i, paddr
                if large_ok:
                    j.cov[C.COV_KEEP_2M if level == 2 else C.COV_KEEP_1G] += 1
                    if not j.after_bootmem and not j.zero_rest:
                        acc[1] += 1
                    acc[0] = nxt
                else:
                    return EV_SPLIT, i, paddr
            elif large_ok:
                if j.zero_rest and paddr & ~amask:
                    j.cov[C.COV_UNALIGNED_LEAF] += 1
                addr = paddr if j.zero_rest else paddr & amask
                t[i] = (addr & j.pfn_mask) | leaf_flags
                acc[1] += 1
                acc[0] = nxt
            else:
                return EV_NEW_TABLE, i, paddr
            paddr = nxt
            i += 1
        return EV_NONE, i, paddr

    def _large_init(self, level, pfn, paddr, paddr_end, mask, prot, i, large_ok, leaf_flags, lower):
        j = self.job
        size = 1 << (21 if level == 2 else 30)
        acc = [paddr_end, 0]
        while True:
            ev, i, paddr = self.scan_large(level, pfn, i, paddr, paddr_end, large_ok, leaf_flags, acc)
            if ev == EV_NONE:
                break
            nxt = (paddr & ~(size - 1)) + size
            e = int(self.table(pfn)[i])
            if ev == EV_DESCEND:
                j.cov[C.COV_DESCEND_PTE if level == 2 else C.COV_DESCEND_PMD] += 1
                acc[0] = lower((e & j.pfn_mask) >> 12, paddr, paddr_end, mask, prot)
            else:
                if ev == EV_SPLIT:
                    j.cov[C.COV_SPLIT_2M if level == 2 else C.COV_SPLIT_1G] += 1
                # a split keeps the old leaf's flags minus PSE (pte_pgprot(pte_clrhuge()))
                child_prot = prot if ev == EV_NEW_TABLE else (e & ~j.pfn_mask & ~_PSE & _M64)
                child = self.alloc_low_page(level - 1)
                acc[0] = lower(child, paddr, paddr_end, mask, child_prot)
                self.populate(pfn, i, child)
            paddr = nxt
            i += 1
        return acc

    def phys_pmd_init(self, pfn, paddr, paddr_end, mask, prot):
        """``phys_pmd_init``: see emu/_fast.pyx."""
        leaf = _massage(prot | _PSE, self.job.supported)
        last, pages = self._large_init(2, pfn, paddr, paddr_end, mask, prot, (paddr >> 21) & 511,
                                       bool(mask & _MASK_2M), leaf,
                                       lambda c, a, b, m, p: self.phys_pte_init(c, a, b, p))
        self.pages2m += pages
        return last

    def phys_pud_init(self, pfn, paddr, paddr_end, mask, prot):
        """``phys_pud_init``: see emu/_fast.pyx."""
        j = self.job
        last, pages = self._large_init(3, pfn, paddr, paddr_end, mask, prot, ((j.page_offset + paddr) >> 30) & 511,
                                       bool(mask & _MASK_1G), j.pud_leaf_flags, self.phys_pmd_init)
        self.pages1g += pages
        return last

    def phys_p4d_init(self, pfn, paddr, paddr_end, mask, prot):
        """``phys_p4d_init`` (5-level): see emu/_fast.pyx."""
        j = self.job
        vaddr, vend = j.page_offset + paddr, j.page_offset + paddr_end
        size = 1 << 39
        last = paddr_end
        if not j.p4d_by_vaddr:
            i = (vaddr >> 39) & 511
            while i < 512:
                pnext = (paddr & ~(size - 1)) + size
                e = int(self.table(pfn)[i])
                if paddr >= paddr_end:
                    if not j.after_bootmem and not _ram_any(j.ram_s, j.ram_e, paddr & ~(size - 1), pnext):
                        if e:
                            j.cov[C.COV_CLEAR_P4D] += 1
                        self.table(pfn)[i] = 0
                elif e:
                    last = self.phys_pud_init((e & j.pfn_mask) >> 12, paddr, paddr_end, mask, prot)
                else:
                    child = self.alloc_low_page(3)
                    last = self.phys_pud_init(child, paddr, paddr_end, mask, prot)
                    self.populate(pfn, i, child)
                i += 1
                paddr = pnext
            if paddr < paddr_end:
                j.cov[C.COV_P4D_STOP] += 1
            return last
        while vaddr < vend:
            i = (vaddr >> 39) & 511
            if i == 0 and vaddr != j.page_offset + paddr:
                j.cov[C.COV_P4D_WRAP] += 1
            vnext = (vaddr & ~(size - 1)) + size
            e = int(self.table(pfn)[i])
            if e:
                last = self.phys_pud_init((e & j.pfn_mask) >> 12, vaddr - j.page_offset, paddr_end, mask, prot)
            else:
                child = self.alloc_low_page(3)
                last = self.phys_pud_init(child, vaddr - j.page_offset, paddr_end, mask, prot)
                self.populate(pfn, i, child)
            vaddr = vnext
        return last

    def kernel_physical_mapping_init(self, pgd_pfn, paddr_start, paddr_end, mask, prot):
        """``kernel_physical_mapping_init``: see emu/_fast.pyx."""
        j = self.job
        if not self.phys.is_backed(pgd_pfn):
            raise ValueError("the PGD page has no backing")
        if paddr_start > paddr_end:
            raise ValueError(f"inverted range [{paddr_start:#x}, {paddr_end:#x})")
        vaddr, vend = j.page_offset + paddr_start, j.page_offset + paddr_end
        shift = 48 if j.levels == 5 else 39
        size = 1 << shift
        last = paddr_end
        lower = self.phys_p4d_init if j.levels == 5 else self.phys_pud_init
        while vaddr < vend:
            i = (vaddr >> shift) & 511
            vnext = (vaddr & ~(size - 1)) + size
            e = int(self.table(pgd_pfn)[i])
            pa = vaddr - j.page_offset
            if e:
                last = lower((e & j.pfn_mask) >> 12, pa, paddr_end, mask, prot)
            else:
                child = self.alloc_low_page(4 if j.levels == 5 else 3)
                # <= 3.8: a new PUD page is filled only up to the next PGD boundary
                child_end = min(vnext, vend) - j.page_offset if j.zero_rest else paddr_end
                if child_end < paddr_end:
                    j.cov[C.COV_PGD_CHILD_END] += 1
                last = lower(child, pa, child_end, mask, prot)
                self.populate(pgd_pfn, i, child)
            vaddr = vnext
        return last


def kernel_physical_mapping_init(job, pgd_pfn, paddr_start, paddr_end, mask, prot):
    """Twin of ``emu._fast.kernel_physical_mapping_init``: ``(paddr_last, (0, 4k, 2M, 1G))``."""
    m = Mapper(job)
    last = m.kernel_physical_mapping_init(pgd_pfn, paddr_start, paddr_end, mask, prot)
    return last, (0, m.pages4k, m.pages2m, m.pages1g)


def map_pieces(job, pgd_pfn, pieces, prot):
    """Twin of ``emu._fast.map_pieces``: each ``(start, end, page_size_mask)`` piece in order
    with one Mapper; ``(paddr_last of the last piece, (0, 4k, 2M, 1G over all of them))``."""
    if not pieces:
        return 0, (0, 0, 0, 0)
    m = Mapper(job)
    last = 0
    for start, end, mask in pieces:
        last = m.kernel_physical_mapping_init(pgd_pfn, start, end, mask, prot)
    return last, (0, m.pages4k, m.pages2m, m.pages1g)


def permission_fault(access, eff_rw, eff_us, no_exec, wp, smep):
    """Intel SDM 4.6 for a translation that reached a leaf: does ``access`` (1 write,
    2 user, 4 fetch) violate the accumulated RW/US bits, XD (``no_exec``: NXE and XD
    set at some level), CR0.WP or CR4.SMEP?"""
    if access & 2:
        return (not eff_us) or bool(access & 1 and not eff_rw) or bool(access & 4 and no_exec)
    return bool(access & 1 and wp and not eff_rw) or bool(access & 4 and (no_exec or (smep and eff_us)))


def _read_entry(directory, blocks, frames, pa):
    pfn = pa >> 12
    d = pfn >> BLOCK_SHIFT
    if d >= directory.shape[0]:
        return 0
    b = int(directory[d])
    if b < 0:
        return 0
    s = int(blocks[b, pfn & ((1 << BLOCK_SHIFT) - 1)])
    if s < 0:
        return 0
    return int(frames[s, (pa & 0xFFF) >> 3])


def walk64(directory, blocks, frames, cr3, levels, maxphyaddr, nxe, wp, smep, access, vas,
           out_pa, out_shift, out_leaf, out_flags, out_err, trace=None):
    """``emu._fast.walk64`` in pure Python (the same outputs; ``trace``: the walk level by
    level, rows ``(level, table_pa, index, entry)``, top level first, level 0 after the
    last entry read)."""
    if trace is not None and (trace.shape[0] < len(vas) or tuple(trace.shape[1:]) != (5, 4)):
        raise ValueError(f"walk64: trace must have shape ({len(vas)}, 5, 4)")
    addr_mask = ((1 << maxphyaddr) - 1) & ~0xFFF
    rsvd_hi = ((1 << 52) - 1) & ~((1 << maxphyaddr) - 1)
    if not nxe:
        rsvd_hi |= 1 << 63
    vabits = 57 if levels == 5 else 48
    full = len(out_shift) == len(vas)
    if not full:  # address and error only
        out_shift, out_leaf, out_flags = [0] * len(vas), [0] * len(vas), [0] * len(vas)
    for k in range(len(vas)):
        va = int(vas[k])
        out_pa[k] = 0
        out_shift[k] = 0
        out_leaf[k] = 0
        out_flags[k] = 0
        top = va >> (vabits - 1)
        if top != 0 and top != (1 << (65 - vabits)) - 1:
            out_err[k] = FAULT_GP
            continue
        table = cr3 & addr_mask
        eff_rw, eff_us, eff_nx = 2, 4, 0
        err = -1
        lvl = levels
        if trace is not None:
            trace[k] = 0
        step = 0
        while True:
            shift = 12 + 9 * (lvl - 1)
            e = _read_entry(directory, blocks, frames, table + (((va >> shift) & 0x1FF) << 3))
            if trace is not None:
                trace[k, step] = (lvl, table, (va >> shift) & 0x1FF, e)
                step += 1
            if not e & 1:
                err = 0
                break
            rsvd = (e & rsvd_hi) != 0
            if e & _PSE:
                if lvl >= 4:
                    rsvd = True
                elif lvl == 3:
                    rsvd = rsvd or (e & 0x3FFFE000) != 0
                elif lvl == 2:
                    rsvd = rsvd or (e & 0x1FE000) != 0
            if rsvd:
                err = 1 | 8
                break
            eff_rw &= e
            eff_us &= e
            if e >> 63:
                eff_nx = 1 << 63
            if lvl == 1 or (lvl <= 3 and e & _PSE):
                break
            table = e & addr_mask
            lvl -= 1
        if err < 0:
            if permission_fault(access, eff_rw, eff_us, nxe and eff_nx, wp, smep):
                err = 1
            else:
                low = (1 << shift) - 1
                out_pa[k] = (e & addr_mask & ~low) | (va & low)
                out_shift[k] = shift
                out_leaf[k] = e
                out_flags[k] = (e & ~(addr_mask & ~low) & ~6 & ~(1 << 63) & _M64) | eff_rw | eff_us | eff_nx
                out_err[k] = -1
                continue
        if access & 1:
            err |= 2
        if access & 2:
            err |= 4
        if access & 4 and (nxe or smep):
            err |= 16
        out_err[k] = err


def enumerate64(directory, blocks, frames, root_pfn, levels, top_lo, top_hi, maxphyaddr,
                runs, tables, counts, ptr_flags=0x067, odd=None):
    addr_mask = ((1 << maxphyaddr) - 1) & ~0xFFF
    rsvd_hi = ((1 << 52) - 1) & ~((1 << maxphyaddr) - 1)
    vabits = 57 if levels == 5 else 48
    signbit = 1 << (vabits - 1)
    state = {"nr": 0, "nt": 0, "n": [0, 0, 0], "rsv": 0, "cur": None, "ok": True, "odd": 0, "visits": 0}
    max_visits = 4 * frames.shape[0] + 64

    def backed(pfn):
        d = pfn >> BLOCK_SHIFT
        if d >= directory.shape[0]:
            return False
        b = int(directory[d])
        return b >= 0 and int(blocks[b, pfn & ((1 << BLOCK_SHIFT) - 1)]) >= 0

    def note_odd(table_pa, i, e, kind):
        if odd is not None and state["odd"] < odd.shape[0]:
            odd[state["odd"]] = (table_pa >> 12, i, e, kind)
        state["odd"] += 1

    def flush():
        cur = state["cur"]
        if cur is not None:
            if state["nr"] < runs.shape[0]:
                runs[state["nr"]] = cur
            else:
                state["ok"] = False
            state["nr"] += 1

    def visit(table_pa, lvl, lo, hi, vabase, effv):
        shift = 12 + 9 * (lvl - 1)
        for i in range(lo, hi):
            e = _read_entry(directory, blocks, frames, table_pa + (i << 3))
            if not e & 1:
                continue
            if e & rsvd_hi or (lvl >= 4 and e & _PSE):
                state["rsv"] += 1
                continue
            va = vabase | (i << shift)
            leaf = lvl == 1 or (lvl <= 3 and e & _PSE)
            eff = (effv & (e & 6)) | ((1 << 63) if (e >> 63 or effv >> 63) else 0)
            if not leaf and (e & 0x8000000000000FFF) != ptr_flags:
                note_odd(table_pa, i, e, 1)
            elif leaf and lvl > 1 and e & (0x1FE000 if lvl == 2 else 0x3FFFE000):
                note_odd(table_pa, i, e, 2)
            if not leaf:
                if state["nt"] < tables.shape[0]:
                    tables[state["nt"]] = ((e & addr_mask) >> 12, lvl - 1, table_pa >> 12, i)
                else:
                    state["ok"] = False
                state["nt"] += 1
                if backed((e & addr_mask) >> 12):
                    state["visits"] += 1
                    if state["visits"] > max_visits:
                        raise ValueError(f"enumerate64: more than {max_visits} visits of table pages below "
                                         f"{root_pfn << 12:#x} (a store of {frames.shape[0]} frames): the "
                                         f"tables are not a tree")
                visit(e & addr_mask, lvl - 1, 0, 512, va, eff)
                continue
            size = 1 << shift
            pa = e & addr_mask & ~(size - 1)
            if lvl == 1:
                flags = e & ~addr_mask & _M64
                state["n"][0] += 1
            else:
                flags = e & ~(addr_mask & ~0x1000) & _M64
                state["n"][lvl - 1] += 1
            if va & signbit:
                va |= ~(signbit * 2 - 1) & _M64
            cur = state["cur"]
            if (cur is not None and va == cur[1] and pa == cur[2] + (cur[1] - cur[0]) and shift == cur[3]
                    and flags == cur[4] and eff == cur[5]):
                state["cur"] = (cur[0], (va + size) & _M64, cur[2], cur[3], cur[4], cur[5])
            else:
                flush()
                state["cur"] = (va, (va + size) & _M64, pa, shift, flags, eff)

    visit(root_pfn << 12, levels, top_lo, top_hi, 0, 6)
    flush()
    vals = [state["nr"], state["nt"], state["n"][0], state["n"][1], state["n"][2], state["rsv"], state["odd"]]
    counts[:] = vals[: len(counts)]
    return state["ok"]

