# 32-bit (i386 PAE and non-PAE) loops of emu._fast; included at the end of _fast.pyx.
#
# * Mapper32: ``kernel_physical_mapping_init`` of arch/x86/mm/init_32.c (v3.9-6.1 form:
#   two ``mapping_iter`` passes) over swapper_pg_dir, PAE (8-byte entries, 4-entry PGD,
#   2 MiB pages) or non-PAE (4-byte entries, the PGD is the PMD, 4 MiB pages), with
#   ``one_md_table_init`` and ``one_page_table_init``.  Page-table pages come from
#   Mapper.alloc_low_page (BRK, then the memblock run Python hands over).
# * walk32: the MMU walk of Intel SDM vol. 3A 4.3 (32-bit paging) and 4.4 (PAE paging).
#
# The pure-Python twins are in emu.machine.reference32.

cdef uint64_t M32 = 0xFFFFFFFFULL
cdef uint64_t CR3_PDPT = 0xFFFFFFE0ULL
cdef uint64_t M32_PAGE = 0xFFFFF000ULL
cdef uint64_t M32_4M = 0xFFC00000ULL


cdef class Mapper32(Mapper):
    """``kernel_physical_mapping_init`` for i386; see emu.kernel.arch.x86.mm.init_32."""
    cdef public int64_t p2m, p4k
    cdef bint pae, use_pse, align_large, pass1
    cdef uint64_t po, text_lo, text_hi
    cdef uint64_t prot4k, prot4k_x, protl, protl_x, init4k, initl, emask

    def __init__(self, job):
        Mapper.__init__(self, job)
        self.pae = job.pae
        self.use_pse = job.use_pse
        self.align_large = job.align_large
        self.po = job.page_offset
        self.text_lo = job.text_lo
        self.text_hi = job.text_hi
        self.prot4k = job.prot4k
        self.prot4k_x = job.prot4k_x
        self.protl = job.protl
        self.protl_x = job.protl_x
        self.init4k = job.init4k
        self.initl = job.initl
        self.emask = job.entry_mask
        self.p2m = self.p4k = 0

    cdef inline uint64_t get(self, Py_ssize_t slot, int i) noexcept nogil:
        if self.pae:
            return self.frames[slot * 512 + i]
        return (<uint32_t*>&self.frames[slot * 512])[i]

    cdef inline void put(self, Py_ssize_t slot, int i, uint64_t v) noexcept nogil:
        if self.pae:
            self.frames[slot * 512 + i] = v
        else:
            (<uint32_t*>&self.frames[slot * 512])[i] = <uint32_t>v

    cdef inline bint is_kernel_text(self, uint64_t addr) noexcept nogil:
        return self.text_lo <= addr <= self.text_hi

    cdef Py_ssize_t table_of(self, uint64_t e) except -2:
        cdef Py_ssize_t s = self.slot_of((e & self.emask) >> 12)
        if s < 0:
            raise ValueError(f"entry {e:#x} points to a page-table page without backing")
        return s

    cdef Py_ssize_t one_md_table_init(self, uint64_t pgd_pfn, int pgd_idx) except -2:
        """``one_md_table_init``: PAE: the PMD page of PGD entry ``pgd_idx``, allocated (entry
        ``_PAGE_PRESENT``) when absent; non-PAE: the PGD itself (the PMD is folded)."""
        cdef Py_ssize_t pgd = self.slot_of(pgd_pfn), child
        cdef uint64_t e
        if not self.pae:
            return pgd
        e = self.frames[pgd * 512 + pgd_idx]
        if e & 1:
            return self.table_of(e)
        self.cov[<int>(COV_I386_PMD_ALLOC)] += 1
        child = self.alloc_low_page(2)
        pgd = self.slot_of(pgd_pfn)
        self.frames[pgd * 512 + pgd_idx] = ((self.frame_pfn[child] << 12) & self.emask) | 0x001
        return child

    cdef Py_ssize_t one_page_table_init(self, uint64_t pgd_pfn, int pgd_idx, int pmd_idx,
                                        uint64_t addr) except -2:
        """``one_page_table_init``: the page table of PMD entry ``pmd_idx`` (PAE: in the PMD
        page of ``pgd_idx``; non-PAE: PGD entry ``pgd_idx``), allocated (``_PAGE_TABLE``)
        when absent."""
        cdef Py_ssize_t pgd = self.slot_of(pgd_pfn), pmd, child
        cdef uint64_t e
        if self.pae:
            pmd = self.table_of(self.frames[pgd * 512 + pgd_idx])
            e = self.frames[pmd * 512 + pmd_idx]
        else:
            e = self.get(pgd, pgd_idx)
        if e & 1:
            if e & 0x80:
                raise NotEmulated(f"one_page_table_init for {addr:#x} finds a present large-page entry {e:#x}: the "
                                  f"kernel writes the PTEs into the large page's own frame (RAM at {e & 0xFFFFF000:#x} "
                                  "overwritten, the mapping left large); emu does not emulate writes into data pages")
            if self.pass1:
                self.cov[<int>(COV_I386_PT_REUSE)] += 1
            return self.table_of(e)
        child = self.alloc_low_page(1)
        pgd = self.slot_of(pgd_pfn)
        if self.pae:
            pmd = self.table_of(self.frames[pgd * 512 + pgd_idx])
            self.frames[pmd * 512 + pmd_idx] = ((self.frame_pfn[child] << 12) & self.emask) | 0x067
        else:
            self.put(pgd, pgd_idx, ((self.frame_pfn[child] << 12) & self.emask) | 0x067)
        return child

    cdef uint64_t mapping_pass(self, uint64_t pgd_pfn, uint64_t start_pfn, uint64_t end_pfn,
                               int mapping_iter) except? 1:
        """One ``mapping_iter`` pass of kernel_physical_mapping_init: pass 1 writes
        ``PTE_IDENT_ATTR``-style entries and counts the pages, pass 2 the final
        ``PAGE_KERNEL[_LARGE][_EXEC]`` (executable where ``is_kernel_text``)."""
        cdef uint64_t last = end_pfn << 12, pfn = start_pfn, addr, addr2, e, prot
        cdef int nptrs = 512 if self.pae else 1024
        cdef int npgd = 4 if self.pae else 1024
        cdef int pgd_idx, pmd_idx, pte_ofs, npmd = 512 if self.pae else 1
        cdef Py_ssize_t pmd, pte
        cdef int64_t n2m = 0, n4k = 0
        cdef uint64_t lmask = <uint64_t>(nptrs - 1)
        if self.slot_of(pgd_pfn) < 0:
            raise ValueError("the PGD page has no backing")
        self.pass1 = mapping_iter == 1
        pgd_idx = <int>((((pfn << 12) + self.po) & M32) >> (30 if self.pae else 22))
        while pgd_idx < npgd:
            pmd = self.one_md_table_init(pgd_pfn, pgd_idx)
            if pfn >= end_pfn:
                pgd_idx += 1
                continue
            if self.pae:
                pmd_idx = <int>((((pfn << 12) + self.po) >> 21) & 511)
            else:
                pmd_idx = 0
            while pmd_idx < npmd and pfn < end_pfn:
                addr = ((pfn << 12) + self.po) & M32
                if self.use_pse:
                    # a large page: the PMD entry (PAE) or the PGD entry itself (non-PAE)
                    if self.align_large:
                        pfn &= ~lmask
                    addr2 = ((pfn + <uint64_t>nptrs - 1) * 4096 + self.po + 4095) & M32
                    prot = self.protl_x if (self.is_kernel_text(addr) or self.is_kernel_text(addr2)) else self.protl
                    if mapping_iter == 2:
                        e = ((pfn << 12) & self.emask) | prot
                    else:
                        e = ((pfn << 12) & self.emask) | self.initl
                    n2m += 1
                    if self.pae:
                        if mapping_iter == 1 and (self.frames[pmd * 512 + pmd_idx] & 0x81) == 1:
                            self.cov[<int>(COV_I386_LARGE_OVER_TABLE)] += 1
                        self.frames[pmd * 512 + pmd_idx] = e
                    else:
                        if mapping_iter == 1 and (self.get(self.slot_of(pgd_pfn), pgd_idx) & 0x81) == 1:
                            self.cov[<int>(COV_I386_LARGE_OVER_TABLE)] += 1
                        self.put(self.slot_of(pgd_pfn), pgd_idx, e)
                    pfn += <uint64_t>nptrs
                    pmd_idx += 1
                    continue
                pte = self.one_page_table_init(pgd_pfn, pgd_idx, pmd_idx, addr)
                pte_ofs = <int>((addr >> 12) & lmask)
                while pte_ofs < nptrs and pfn < end_pfn:
                    n4k += 1
                    if mapping_iter == 1:
                        self.put(pte, pte_ofs, ((pfn << 12) & self.emask) | self.init4k)
                        last = (pfn << 12) + 4096
                    else:
                        prot = self.prot4k_x if self.is_kernel_text(addr) else self.prot4k
                        self.put(pte, pte_ofs, ((pfn << 12) & self.emask) | prot)
                    pte_ofs += 1
                    pfn += 1
                    addr = (addr + 4096) & M32
                pmd_idx += 1
            pgd_idx += 1
        if mapping_iter == 1:
            self.p2m += n2m
            self.p4k += n4k
        return last

    def kernel_physical_mapping_init(self, uint64_t pgd_pfn, uint64_t start, uint64_t end):
        """kernel_physical_mapping_init (init_32.c): both passes; returns last_map_addr."""
        cdef uint64_t last
        if start > end or end > (<uint64_t>1 << 36):
            raise ValueError(f"[{start:#x}, {end:#x}) is not a 32-bit physical range")
        try:
            last = self.mapping_pass(pgd_pfn, start >> 12, end >> 12, 1)
            self.mapping_pass(pgd_pfn, start >> 12, end >> 12, 2)
        finally:
            self._save()
        return last


def kernel_physical_mapping_init_32(job, uint64_t pgd_pfn, uint64_t paddr_start, uint64_t paddr_end):
    """Run the i386 ``kernel_physical_mapping_init`` for ``job`` (an
    ``emu.kernel.arch.x86.mm.init_32.MapJob32``).  Returns ``(last_map_addr, pages_2m,
    pages_4k)`` (counts of the first pass)."""
    cdef Mapper32 m = Mapper32(job)
    last = m.kernel_physical_mapping_init(pgd_pfn, paddr_start, paddr_end)
    return last, m.p2m, m.p4k


def walk32(const int32_t[:] directory, const int32_t[:, :] blocks, const uint64_t[:, :] frames,
           uint64_t cr3, bint pae, int maxphyaddr, bint pse, bint nxe, bint wp, bint smep,
           int access, const uint64_t[:] vas,
           uint64_t[:] out_pa, uint8_t[:] out_shift, uint64_t[:] out_leaf,
           uint64_t[:] out_flags, int32_t[:] out_err, uint64_t[:, :, ::1] trace=None):
    """Translate 32-bit ``vas`` through PAE paging (``pae``) or 32-bit paging.

    Outputs as in ``walk64``; ``out_shift`` is 12, 21 (PAE 2 MiB) or 22 (4 MiB).
    32-bit paging: 4-byte entries, PDE.PS honoured only with CR4.PSE (``pse``), a 4 MiB
    page takes PA bits 39:32 from PDE bits 20:13 (PSE-36; bits 21 and those above
    MAXPHYADDR reserved), no XD bit.  PAE: the PDPTE (bits 63:M and 62:52 reserved;
    RW/US/XD do not exist in it), then 8-byte PDE/PTE with bits 62:M reserved, XD
    reserved unless EFER.NXE, bits 20:13 reserved in a 2 MiB leaf.

    ``trace`` (optional, shape ``(n, 5, 4)``): the walk level by level as in ``walk64``
    (``level``: 3 PDPT, 2 page directory, 1 page table; ``table_pa`` of the PDPT is
    CR3's 32-byte aligned address; 4-byte entries without PAE).
    """
    cdef Py_ssize_t n = vas.shape[0], k
    cdef bint tracing = trace is not None
    cdef int step = 0
    cdef uint64_t tpa = 0
    if tracing and (trace.shape[0] < n or trace.shape[1] != 5 or trace.shape[2] != 4):
        raise ValueError(f"walk32: trace must have shape ({n}, 5, 4)")
    cdef uint64_t va, e, pa, eff_rw, eff_us, eff_nx, amask, rsvd, table, off_mask, base
    cdef int err, shift, lvl
    cdef bint fault
    cdef uint64_t NXB = (<uint64_t>1) << 63
    if not 32 <= maxphyaddr <= 52:
        raise ValueError(f"walk32: MAXPHYADDR must be in [32, 52], not {maxphyaddr}")
    if out_pa.shape[0] < n or out_shift.shape[0] < n or out_leaf.shape[0] < n or out_flags.shape[0] < n \
            or out_err.shape[0] < n:
        raise ValueError(f"walk32: every output array must hold {n} results")
    if directory.shape[0] == 0 or blocks.shape[0] == 0 or frames.shape[0] == 0 or blocks.shape[1] != BLK_PFNS \
            or frames.shape[1] != 512:
        raise ValueError("walk32: malformed physical store")
    amask = ((<uint64_t>1 << maxphyaddr) - 1) & ~<uint64_t>0xFFF
    # PAE: bits 62:M reserved in every entry; bit 63 (XD) reserved without NXE (always in PDPTEs)
    rsvd = ((<uint64_t>1 << 63) - 1) & ~((<uint64_t>1 << maxphyaddr) - 1)
    with nogil:
        for k in range(n):
            va = vas[k] & M32
            out_pa[k] = 0
            out_shift[k] = 0
            out_leaf[k] = 0
            out_flags[k] = 0
            eff_rw = 2
            eff_us = 4
            eff_nx = 0
            err = -1
            shift = 12
            e = 0
            if tracing:
                for step in range(5):
                    trace[k, step, 0] = 0
                    trace[k, step, 1] = 0
                    trace[k, step, 2] = 0
                    trace[k, step, 3] = 0
                step = 0
            if pae:
                e = read_entry(directory, blocks, frames, (cr3 & CR3_PDPT) + ((va >> 30) << 3))
                if tracing:
                    trace[k, 0, 0] = 3
                    trace[k, 0, 1] = cr3 & CR3_PDPT
                    trace[k, 0, 2] = va >> 30
                    trace[k, 0, 3] = e
                    step = 1
                if not (e & 1):
                    err = 0
                elif e & (rsvd | NXB | 0x1E6):
                    err = PF_PROT | PF_RSVD
                else:
                    table = e & amask
                    lvl = 2
                    while True:
                        shift = 21 if lvl == 2 else 12
                        e = read_entry(directory, blocks, frames, table + (((va >> shift) & 0x1FF) << 3))
                        if tracing:
                            trace[k, step, 0] = lvl
                            trace[k, step, 1] = table
                            trace[k, step, 2] = (va >> shift) & 0x1FF
                            trace[k, step, 3] = e
                            step += 1
                        if not (e & 1):
                            err = 0
                            break
                        if (e & rsvd) or ((e & NXB) and not nxe) or (lvl == 2 and (e & _PSE) and (e & 0x1FE000)):
                            err = PF_PROT | PF_RSVD
                            break
                        eff_rw &= e
                        eff_us &= e
                        if e & NXB:
                            eff_nx = NXB
                        if lvl == 1 or (e & _PSE):
                            break
                        table = e & amask
                        lvl = 1
            else:
                e = read_entry32(directory, blocks, frames, (cr3 & M32_PAGE) + ((va >> 22) << 2))
                if tracing:
                    trace[k, 0, 0] = 2
                    trace[k, 0, 1] = cr3 & M32_PAGE
                    trace[k, 0, 2] = va >> 22
                    trace[k, 0, 3] = e
                if not (e & 1):
                    err = 0
                elif pse and (e & _PSE):
                    shift = 22
                    # bit 21 reserved; PA bits 39:32 in PDE bits 20:13, those at or above M reserved
                    if (e & 0x200000) or (((e >> 13) & 0xFF) >> (maxphyaddr - 32)):
                        err = PF_PROT | PF_RSVD
                    else:
                        eff_rw &= e
                        eff_us &= e
                else:
                    eff_rw &= e
                    eff_us &= e
                    tpa = e & M32_PAGE
                    e = read_entry32(directory, blocks, frames, tpa + (((va >> 12) & 0x3FF) << 2))
                    if tracing:
                        trace[k, 1, 0] = 1
                        trace[k, 1, 1] = tpa
                        trace[k, 1, 2] = (va >> 12) & 0x3FF
                        trace[k, 1, 3] = e
                    if not (e & 1):
                        err = 0
                    else:
                        eff_rw &= e
                        eff_us &= e
            if err < 0:
                fault = False
                if access & ACC_USER:
                    if not eff_us:
                        fault = True
                    elif (access & ACC_WRITE) and not eff_rw:
                        fault = True
                    elif (access & ACC_FETCH) and pae and nxe and eff_nx:
                        fault = True
                else:
                    if (access & ACC_WRITE) and wp and not eff_rw:
                        fault = True
                    elif (access & ACC_FETCH) and ((pae and nxe and eff_nx) or (smep and eff_us)):
                        fault = True
                if fault:
                    err = PF_PROT
                else:
                    off_mask = ((<uint64_t>1) << shift) - 1
                    if shift == 22:
                        base = (e & M32_4M) | (((e >> 13) & 0xFF) << 32)
                        out_flags[k] = (e & 0x1FFF & ~(<uint64_t>6)) | eff_rw | eff_us
                    elif pae:
                        base = e & amask & ~off_mask
                        out_flags[k] = (e & ~(amask & ~off_mask) & ~(<uint64_t>6) & ~NXB) | eff_rw | eff_us | eff_nx
                    else:
                        base = e & M32_PAGE
                        out_flags[k] = (e & 0xFFF & ~(<uint64_t>6)) | eff_rw | eff_us
                    out_pa[k] = base | (va & off_mask)
                    out_shift[k] = shift
                    out_leaf[k] = e
                    out_err[k] = -1
                    continue
            if access & ACC_WRITE:
                err |= PF_WRITE
            if access & ACC_USER:
                err |= PF_USER
            if (access & ACC_FETCH) and ((pae and nxe) or smep):
                err |= PF_INSTR
            out_err[k] = err
    return None
