"""Pure-Python twins of the 32-bit loops in ``emu/_fast32.pxi`` (i386 PAE and non-PAE).

Same names, signatures and results as ``emu._fast.kernel_physical_mapping_init_32`` / ``walk32`` (the tests
compare them byte for byte); :mod:`emu.machine.engine` pairs them with
the 64-bit twins of :mod:`emu.machine.reference`.  :func:`enumerate32` (used by
:mod:`emu.machine.mmu` with both backends) lists the leaves and table pages of a
32-bit tree.
"""
from __future__ import annotations

import numpy as np

from emu.errors import NotEmulated

from emu.machine.abi import MapCoverage as C
from emu.machine.reference import _read_entry, alloc_page, permission_fault

_PSE = 1 << 7
_NX = 1 << 63


class Mapper32:
    """Twin of ``emu._fast.Mapper32``: arch/x86/mm/init_32.c ``kernel_physical_mapping_init``
    with ``one_md_table_init``/``one_page_table_init``, under the same names."""

    def __init__(self, job):
        self.job = job
        self.phys = job.phys
        self.p2m = 0
        self.p4k = 0

    def alloc_low_page(self, level):
        return alloc_page(self.job, self.phys, level, self.job.buf_src)

    def tab(self, pfn):
        t = self.phys.table(pfn)
        return t if self.job.pae else t.view(np.uint32)

    def table_of(self, e):
        pfn = (e & self.job.entry_mask) >> 12
        if not self.phys.is_backed(pfn):
            raise ValueError(f"entry {e:#x} points to a page-table page without backing")
        return pfn

    def is_kernel_text(self, addr):
        return self.job.text_lo <= addr <= self.job.text_hi

    def one_md_table_init(self, pgd_pfn, pgd_idx):
        """PAE: the PMD page of PGD entry ``pgd_idx`` (allocated when absent); non-PAE: the PGD."""
        j = self.job
        if not j.pae:
            return pgd_pfn
        e = int(self.tab(pgd_pfn)[pgd_idx])
        if e & 1:
            return self.table_of(e)
        j.cov[C.COV_I386_PMD_ALLOC] += 1
        pmd = self.alloc_low_page(2)
        self.tab(pgd_pfn)[pgd_idx] = ((pmd << 12) & j.entry_mask) | 0x001
        return pmd

    def one_page_table_init(self, pgd_pfn, pgd_idx, pmd_idx, addr):
        """The page table of a PMD entry (allocated with ``_PAGE_TABLE`` when absent)."""
        j = self.job
        pmd = self.table_of(int(self.tab(pgd_pfn)[pgd_idx])) if j.pae else pgd_pfn
        i = pmd_idx if j.pae else pgd_idx
        e = int(self.tab(pmd)[i])
        if e & 1:
            if e & _PSE:
                raise NotEmulated(f"one_page_table_init for {addr:#x} finds a present large-page entry {e:#x}: the "
                                  f"kernel writes the PTEs into the large page's own frame (RAM at {e & 0xFFFFF000:#x} "
                                  "overwritten, the mapping left large); emu does not emulate writes into data pages")
            if self.pass1:
                j.cov[C.COV_I386_PT_REUSE] += 1
            return self.table_of(e)
        pte = self.alloc_low_page(1)
        self.tab(pmd)[i] = ((pte << 12) & j.entry_mask) | 0x067
        return pte

    def mapping_pass(self, pgd_pfn, start_pfn, end_pfn, mapping_iter):
        """One ``mapping_iter`` pass (see emu/_fast32.pxi)."""
        j = self.job
        pae = j.pae
        po = j.page_offset
        nptrs = 512 if pae else 1024
        npgd = 4 if pae else 1024
        emask = j.entry_mask
        last = end_pfn << 12
        pfn = start_pfn
        n2m = n4k = 0
        if not self.phys.is_backed(pgd_pfn):
            raise ValueError("the PGD page has no backing")
        self.pass1 = mapping_iter == 1
        pgd_idx = ((((pfn << 12) + po) & 0xFFFFFFFF) >> (30 if pae else 22))
        while pgd_idx < npgd:
            pmd = self.one_md_table_init(pgd_pfn, pgd_idx)
            if pfn >= end_pfn:
                pgd_idx += 1
                continue
            pmd_idx = ((((pfn << 12) + po) >> 21) & 511) if pae else 0
            npmd = 512 if pae else 1
            while pmd_idx < npmd and pfn < end_pfn:
                addr = ((pfn << 12) + po) & 0xFFFFFFFF
                if j.use_pse:
                    if j.align_large:
                        pfn &= ~(nptrs - 1)
                    addr2 = ((pfn + nptrs - 1) * 4096 + po + 4095) & 0xFFFFFFFF
                    text = self.is_kernel_text(addr) or self.is_kernel_text(addr2)
                    prot = (j.protl_x if text else j.protl) if mapping_iter == 2 else j.initl
                    if mapping_iter == 1 and int(self.tab(pmd)[pmd_idx if pae else pgd_idx]) & 0x81 == 1:
                        j.cov[C.COV_I386_LARGE_OVER_TABLE] += 1
                    self.tab(pmd)[pmd_idx if pae else pgd_idx] = ((pfn << 12) & emask) | prot
                    n2m += 1
                    pfn += nptrs
                    pmd_idx += 1
                    continue
                t = self.tab(self.one_page_table_init(pgd_pfn, pgd_idx, pmd_idx, addr))
                pte_ofs = (addr >> 12) & (nptrs - 1)
                while pte_ofs < nptrs and pfn < end_pfn:
                    n4k += 1
                    if mapping_iter == 1:
                        t[pte_ofs] = ((pfn << 12) & emask) | j.init4k
                        last = (pfn << 12) + 4096
                    else:
                        prot = j.prot4k_x if self.is_kernel_text(addr) else j.prot4k
                        t[pte_ofs] = ((pfn << 12) & emask) | prot
                    pte_ofs += 1
                    pfn += 1
                    addr = (addr + 4096) & 0xFFFFFFFF
                pmd_idx += 1
            pgd_idx += 1
        if mapping_iter == 1:
            self.p2m += n2m
            self.p4k += n4k
        return last

    def kernel_physical_mapping_init(self, pgd_pfn, start, end):
        if start > end or end > 1 << 36:
            raise ValueError(f"[{start:#x}, {end:#x}) is not a 32-bit physical range")
        last = self.mapping_pass(pgd_pfn, start >> 12, end >> 12, 1)
        self.mapping_pass(pgd_pfn, start >> 12, end >> 12, 2)
        return last


def kernel_physical_mapping_init_32(job, pgd_pfn, paddr_start, paddr_end):
    """Twin of ``emu._fast.kernel_physical_mapping_init_32``."""
    m = Mapper32(job)
    last = m.kernel_physical_mapping_init(pgd_pfn, paddr_start, paddr_end)
    return last, m.p2m, m.p4k


def _read64(directory, blocks, frames, pa):
    return _read_entry(directory, blocks, frames, pa)


def _read32(directory, blocks, frames, pa):
    v = _read64(directory, blocks, frames, pa & ~7)
    return (v >> 32) if pa & 4 else v & 0xFFFFFFFF


def walk32(directory, blocks, frames, cr3, pae, maxphyaddr, pse, nxe, wp, smep, access, vas,
           out_pa, out_shift, out_leaf, out_flags, out_err, trace=None):
    """``emu._fast.walk32`` in pure Python (the same outputs, ``trace`` as in ``walk64``)."""
    if trace is not None and (trace.shape[0] < len(vas) or tuple(trace.shape[1:]) != (5, 4)):
        raise ValueError(f"walk32: trace must have shape ({len(vas)}, 5, 4)")
    amask = ((1 << maxphyaddr) - 1) & ~0xFFF
    rsvd = ((1 << 63) - 1) & ~((1 << maxphyaddr) - 1)
    for k in range(len(vas)):
        va = int(vas[k]) & 0xFFFFFFFF
        out_pa[k] = 0
        out_shift[k] = 0
        out_leaf[k] = 0
        out_flags[k] = 0
        eff_rw, eff_us, eff_nx = 2, 4, 0
        err = -1
        shift = 12
        e = 0
        if trace is not None:
            trace[k] = 0
        if pae:
            e = _read64(directory, blocks, frames, (cr3 & 0xFFFFFFE0) + ((va >> 30) << 3))
            if trace is not None:
                trace[k, 0] = (3, cr3 & 0xFFFFFFE0, va >> 30, e)
            if not e & 1:
                err = 0
            elif e & (rsvd | _NX | 0x1E6):
                err = 1 | 8
            else:
                table = e & amask
                lvl = 2
                while True:
                    shift = 21 if lvl == 2 else 12
                    e = _read64(directory, blocks, frames, table + (((va >> shift) & 0x1FF) << 3))
                    if trace is not None:
                        trace[k, 3 - lvl] = (lvl, table, (va >> shift) & 0x1FF, e)
                    if not e & 1:
                        err = 0
                        break
                    if e & rsvd or (e & _NX and not nxe) or (lvl == 2 and e & _PSE and e & 0x1FE000):
                        err = 1 | 8
                        break
                    eff_rw &= e
                    eff_us &= e
                    if e & _NX:
                        eff_nx = _NX
                    if lvl == 1 or e & _PSE:
                        break
                    table = e & amask
                    lvl = 1
        else:
            e = _read32(directory, blocks, frames, (cr3 & 0xFFFFF000) + ((va >> 22) << 2))
            if trace is not None:
                trace[k, 0] = (2, cr3 & 0xFFFFF000, va >> 22, e)
            if not e & 1:
                err = 0
            elif pse and e & _PSE:
                shift = 22
                if e & 0x200000 or (((e >> 13) & 0xFF) >> (maxphyaddr - 32)):
                    err = 1 | 8
                else:
                    eff_rw &= e
                    eff_us &= e
            else:
                eff_rw &= e
                eff_us &= e
                table = e & 0xFFFFF000
                e = _read32(directory, blocks, frames, table + (((va >> 12) & 0x3FF) << 2))
                if trace is not None:
                    trace[k, 1] = (1, table, (va >> 12) & 0x3FF, e)
                if not e & 1:
                    err = 0
                else:
                    eff_rw &= e
                    eff_us &= e
        if err < 0:
            if permission_fault(access, eff_rw, eff_us, pae and nxe and eff_nx, wp, smep):
                err = 1
            else:
                low = (1 << shift) - 1
                if shift == 22:
                    base = (e & 0xFFC00000) | (((e >> 13) & 0xFF) << 32)
                    out_flags[k] = (e & 0x1FFF & ~6) | eff_rw | eff_us
                elif pae:
                    base = e & amask & ~low
                    out_flags[k] = (e & ~(amask & ~low) & ~6 & ~_NX & ((1 << 64) - 1)) | eff_rw | eff_us | eff_nx
                else:
                    base = e & 0xFFFFF000
                    out_flags[k] = (e & 0xFFF & ~6) | eff_rw | eff_us
                out_pa[k] = base | (va & low)
                out_shift[k] = shift
                out_leaf[k] = e
                out_err[k] = -1
                continue
        if access & 1:
            err |= 2
        if access & 2:
            err |= 4
        if access & 4 and ((pae and nxe) or smep):
            err |= 16
        out_err[k] = err


def enumerate32(phys, cr3, pae, maxphyaddr, pse, va_lo=0, va_hi=1 << 32):
    """Every present entry of a 32-bit tree whose span meets ``[va_lo, va_hi)``.

    Returns ``(runs, tables, counts)``: ``runs`` rows ``(va, va_end, pa, shift,
    leaf_flags, eff)`` (maximal runs of same-size leaves with contiguous PAs and
    equal flags), ``tables`` rows ``(pfn, level, parent_pfn, parent_index)``,
    ``counts`` = (n4k, n_large, n_reserved).  Vectorised per table page (numpy).
    """
    amask = ((1 << maxphyaddr) - 1) & ~0xFFF
    rsvd = ((1 << 63) - 1) & ~((1 << maxphyaddr) - 1)
    leaves = []    # (va array, pa array, shift, flags array, eff array)
    tables = []
    n4k = nlarge = nrsv = 0

    def entries(pfn, n):
        if not phys.is_backed(pfn):
            return np.zeros(n, np.uint64)
        t = phys.table(pfn)
        return t.astype(np.uint64) if pae else t.view(np.uint32).astype(np.uint64)

    def leaf_block(va0, shift, idx, ents, eff_parent_rw_us, eff_parent_nx):
        size = 1 << shift
        vas = np.uint64(va0) + idx.astype(np.uint64) * np.uint64(size)
        if shift == 22:
            pa = (ents & np.uint64(0xFFC00000)) | (((ents >> np.uint64(13)) & np.uint64(0xFF)) << np.uint64(32))
            flags = ents & np.uint64(0x1FFF)
        elif pae:
            pa = ents & np.uint64(amask & ~(size - 1))
            flags = ents & ~np.uint64(amask & ~(size - 1))
        else:
            pa = ents & np.uint64(0xFFFFF000)
            flags = ents & np.uint64(0xFFF)
        eff = (ents & np.uint64(6)) & np.uint64(eff_parent_rw_us)
        if pae:
            eff = eff | ((ents | np.uint64(eff_parent_nx)) & np.uint64(_NX))
        leaves.append((vas, pa, shift, flags, eff))

    if pae:
        top = entries(cr3 >> 12, 512)[((cr3 & 0xFE0) >> 3): ((cr3 & 0xFE0) >> 3) + 4]
        for i in range(4):
            e = int(top[i])
            va = i << 30
            if not e & 1 or va + (1 << 30) <= va_lo or va >= va_hi:
                continue
            if e & (rsvd | _NX | 0x1E6):
                nrsv += 1
                continue
            pmd_pfn = (e & amask) >> 12
            tables.append((pmd_pfn, 2, cr3 >> 12, i))
            pmd = entries(pmd_pfn, 512)
            present = (pmd & np.uint64(1)) != 0
            bad = present & (((pmd & np.uint64(rsvd)) != 0) | (((pmd & np.uint64(_PSE)) != 0)
                                                              & ((pmd & np.uint64(0x1FE000)) != 0)))
            nrsv += int(bad.sum())
            ok = present & ~bad
            large = ok & ((pmd & np.uint64(_PSE)) != 0)
            li = np.nonzero(large)[0]
            if li.size:
                leaf_block(va, 21, li, pmd[li], 6, 0)
                nlarge += li.size
            for j in np.nonzero(ok & ~large)[0].tolist():
                pe = int(pmd[j])
                pva = va | (j << 21)
                if pva + (1 << 21) <= va_lo or pva >= va_hi:
                    continue
                pt_pfn = (pe & amask) >> 12
                tables.append((pt_pfn, 1, pmd_pfn, j))
                pt = entries(pt_pfn, 512)
                p = (pt & np.uint64(1)) != 0
                b = p & ((pt & np.uint64(rsvd)) != 0)
                nrsv += int(b.sum())
                ti = np.nonzero(p & ~b)[0]
                if ti.size:
                    leaf_block(pva, 12, ti, pt[ti], pe & 6, pe & _NX)
                    n4k += ti.size
    else:
        pd_pfn = cr3 >> 12
        pd = entries(pd_pfn, 1024)
        pd_list = pd.tolist()
        large_js = []     # the 4 MiB leaves, gathered into one block (runs are sorted by va below)
        for j in np.nonzero((pd & np.uint64(1)) != 0)[0].tolist():
            pe = pd_list[j]
            pva = j << 22
            if pva + (1 << 22) <= va_lo or pva >= va_hi:
                continue
            if pse and pe & _PSE:
                if pe & 0x200000 or (((pe >> 13) & 0xFF) >> (maxphyaddr - 32)):
                    nrsv += 1
                    continue
                large_js.append(j)
                continue
            pt_pfn = pe >> 12
            tables.append((pt_pfn, 1, pd_pfn, j))
            pt = entries(pt_pfn, 1024)
            ti = np.nonzero((pt & np.uint64(1)) != 0)[0]
            if ti.size:
                leaf_block(pva, 12, ti, pt[ti], pe & 6, 0)
                n4k += ti.size
        if large_js:
            lj = np.array(large_js)
            leaf_block(0, 22, lj, pd[lj], 6, 0)
            nlarge += len(large_js)
    # merge into runs
    rows = []
    if leaves:
        va = np.concatenate([x[0] for x in leaves])
        pa = np.concatenate([x[1] for x in leaves])
        sh = np.concatenate([np.full(x[0].shape[0], x[2], np.uint64) for x in leaves])
        fl = np.concatenate([x[3] for x in leaves])
        ef = np.concatenate([x[4] for x in leaves])
        order = np.argsort(va, kind="stable")
        va, pa, sh, fl, ef = va[order], pa[order], sh[order], fl[order], ef[order]
        size = np.uint64(1) << sh
        brk = np.ones(va.shape[0], bool)
        if va.shape[0] > 1:
            brk[1:] = ~((va[1:] == va[:-1] + size[:-1]) & (pa[1:] == pa[:-1] + size[:-1])
                        & (sh[1:] == sh[:-1]) & (fl[1:] == fl[:-1]) & (ef[1:] == ef[:-1]))
        starts = np.nonzero(brk)[0]
        last = np.append(starts[1:], va.shape[0]) - 1
        rows = np.stack([va[starts], va[last] + size[last], pa[starts], sh[starts], fl[starts], ef[starts]], axis=1)
    runs = np.ascontiguousarray(np.asarray(rows, np.uint64).reshape(-1, 6))
    tabs = np.array(tables, np.uint64).reshape(-1, 4)
    return runs, tabs, (n4k, nlarge, nrsv)
