# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The machine's hot loops: the kernel's table-writing functions and the MMU walks.

* ``Mapper``: ``kernel_physical_mapping_init`` of arch/x86/mm/init_64.c with its level
  functions ``phys_p4d_init``, ``phys_pud_init``, ``phys_pmd_init``, ``phys_pte_init``
  (and ``alloc_low_page``), writing 8-byte entries into the emulated physical memory;
  ``Mapper32`` (``_fast32.pxi``) the two ``mapping_iter`` passes of init_32.c.
* ``walk64``/``walk32``: the Intel SDM page walk; ``enumerate64``: every present entry
  below a root, as leaf runs and table pages.

The layer is thin and typed: typed memoryviews and raw pointers, ``nogil`` loops, no
Python objects in the hot loops.  The walks release the GIL for their whole batch; the
table writers' inner loops (``phys_pte_init``, ``scan_large``) are ``nogil`` functions called
with the GIL held (``alloc_low_page`` between two pages may call into Python), since
releasing it per page cost ~5 % of a 4 KiB map.
Every entry point checks its own preconditions (array shapes and lengths, levels, index
bounds) and raises ``ValueError`` instead of touching memory it does not own.  The pure-Python twins, under the same names, are in
``emu.machine.reference`` and ``emu.machine.reference32`` (byte-for-byte the same
results; the tests compare them).  Physical memory layout: see ``emu.machine.phys``.
"""
from libc.stdint cimport uint64_t, uint32_t, int32_t, int64_t, uint8_t

from libc.string cimport memset

from emu.errors import NotEmulated

cdef uint64_t _PSE = 1 << 7
cdef uint64_t _PAGE_TABLE = 0x067
DEF BLK_SHIFT = 16          # pfns per block of the sparse store (emu.machine.phys.BLOCK_SHIFT)
DEF BLK_MASK = (1 << 16) - 1
DEF BLK_PFNS = 1 << 16
DEF MASK_2M = 4             # page_size_mask bits: 1 << PG_LEVEL_2M, 1 << PG_LEVEL_1G
DEF MASK_1G = 8


cpdef enum TableSource:
    """Where a page-table page came from (the table-page log's ``src`` column)."""
    SRC_BRK = 1             # the BRK buffer (early_alloc_pgt_buf)
    SRC_MEMBLOCK = 2        # alloc_low_pages' memblock fallback
    SRC_PGT_BUF = 3         # the buffer find_early_table_space set aside (<= 3.8)
    SRC_IMAGE = 4           # a static table of the kernel image (init_top_pgt, head code tables)


cpdef enum MapEvent:
    """Why phys_pud_init / phys_pmd_init stopped scanning a table page."""
    EV_NONE = 0             # the page is done
    EV_DESCEND = 1          # a present entry points to a lower table: walk into it
    EV_NEW_TABLE = 2        # an empty entry the page size does not allow as a leaf: new table
    EV_SPLIT = 3            # a large leaf the page size does not allow: split it into a new table


cpdef enum MapCoverage:
    """Decision points of the table-writing loops, counted where they happen (the kernel's
    coverage: ``job.cov[point]``, an int64 array of ``COV_COUNT`` counters per emulation)."""
    COV_SPLIT_2M = 0        # phys_pmd_init: a 2M leaf the page size no longer allows, split into PTEs
    COV_SPLIT_1G = 1        # phys_pud_init: a 1G leaf split into a PMD page
    COV_KEEP_4K = 2         # a present 4K entry kept (and counted again)
    COV_KEEP_2M = 3         # a present 2M leaf kept (and counted again)
    COV_KEEP_1G = 4         # a present 1G leaf kept (and counted again)
    COV_CLEAR_PTE = 5       # past the end, no RAM: a present PTE cleared
    COV_CLEAR_PMD = 6       # past the end, no RAM: a present PMD entry cleared
    COV_CLEAR_PUD = 7       # past the end, no RAM: a present PUD entry cleared
    COV_CLEAR_P4D = 8       # past the end, no RAM: a present P4D entry cleared (4.17-5.1)
    COV_KEEP_PAST_END = 9   # past the end, RAM in the block: a present entry kept
    COV_ZERO_REST_PTE = 10  # <= 3.8: the rest of a PTE page cleared past the end
    COV_ZERO_REST_PMD = 11  # <= 3.8: the rest of a PMD page cleared past the end
    COV_PUD_NO_E820 = 12    # <= 3.8: a PUD entry with no e820 entry of any type cleared
    COV_UNALIGNED_LEAF = 13 # <= 3.8: a large leaf written from an unaligned address
    COV_P4D_WRAP = 14       # 5.2+: phys_p4d_init's index wrapped over its P4D page
    COV_PGD_CHILD_END = 15  # <= 3.8: a new PUD page filled only up to the next PGD boundary
    COV_DESCEND_PMD = 16    # a present PMD page reused (phys_pud_init descends)
    COV_DESCEND_PTE = 17    # a present PTE page reused (phys_pmd_init descends)
    COV_P4D_STOP = 18       # 4.17-5.1: phys_p4d_init stopped at the end of its P4D page
    COV_I386_LARGE_OVER_TABLE = 19  # i386: a large PDE replaced a present page-table entry
    COV_I386_PT_REUSE = 20  # i386: one_page_table_init found a present page table
    COV_I386_PMD_ALLOC = 21 # i386 PAE: one_md_table_init allocated a PMD page
    COV_COUNT = 22


cdef inline bint ram_any(const uint64_t* rs, const uint64_t* re, Py_ssize_t n, uint64_t start, uint64_t end) noexcept nogil:
    """True if any RAM range [rs[k], re[k]) intersects [start, end) (sorted, disjoint)."""
    cdef Py_ssize_t lo = 0, hi = n, mid
    while lo < hi:  # first range whose end is > start
        mid = (lo + hi) >> 1
        if re[mid] <= start:
            lo = mid + 1
        else:
            hi = mid
    return lo < n and rs[lo] < end


cdef inline Py_ssize_t fill_leaves(uint64_t* t, int i, uint64_t base, uint64_t paddr_end, int shift,
                                    uint64_t pfn_mask, uint64_t flags) noexcept nogil:
    """The leaves of a page just allocated (all zero), from entry ``i``: entry ``i + k`` maps
    ``base + (k << shift)`` while that is below ``paddr_end`` and the page lasts (``base`` is
    aligned to the page size, ``base < paddr_end``; ``pfn_mask`` clears the bits below the
    page, so an unaligned first address writes the same entry as its aligned base).  Returns
    how many were written.  A counted loop with no carried state, so the compiler turns it into
    vector stores."""
    cdef uint64_t n = ((paddr_end - 1 - base) >> shift) + 1     # (no overflow: base < paddr_end)
    cdef Py_ssize_t k, cnt = 512 - i
    if n < <uint64_t>cnt:
        cnt = <Py_ssize_t>n
    for k in range(cnt):
        t[i + k] = ((base + (<uint64_t>k << shift)) & pfn_mask) | flags
    return cnt


cdef inline uint64_t massage(uint64_t prot, uint64_t supported) noexcept nogil:
    """massage_pgprot: a present protection is masked with __supported_pte_mask."""
    if prot & 1:
        return prot & supported
    return prot


def check_store(directory, blocks, frames, frame_pfn=None):
    """The preconditions every loop relies on: the sparse store's arrays have the
    expected dtypes, shapes and contiguity (O(1); the loops bound-check every block and
    frame index they read from the directory and the blocks).  Raises ``ValueError``."""
    import numpy as np
    if not (isinstance(directory, np.ndarray) and directory.dtype == np.int32 and directory.ndim == 1
            and directory.flags.c_contiguous):
        raise ValueError("physical store: directory must be a contiguous 1-d int32 array")
    if not (isinstance(blocks, np.ndarray) and blocks.dtype == np.int32 and blocks.ndim == 2
            and blocks.shape[1] == BLK_PFNS and blocks.flags.c_contiguous):
        raise ValueError(f"physical store: blocks must be a contiguous (n, {BLK_PFNS}) int32 array")
    if not (isinstance(frames, np.ndarray) and frames.dtype == np.uint64 and frames.ndim == 2
            and frames.shape[1] == 512 and frames.flags.c_contiguous):
        raise ValueError("physical store: frames must be a contiguous (n, 512) uint64 array")
    if frame_pfn is not None and not (isinstance(frame_pfn, np.ndarray) and frame_pfn.dtype == np.uint64
                                      and frame_pfn.ndim == 1 and frame_pfn.shape[0] >= frames.shape[0]
                                      and frame_pfn.flags.c_contiguous):
        raise ValueError("physical store: frame_pfn must be a contiguous uint64 array, one per frame")


cdef class Mapper:
    """``kernel_physical_mapping_init`` for x86-64 (4- and 5-level), entirely in C.

    Tables are addressed by frame slot, never by a cached pointer, so the frame pool
    may grow (a rare callback to Python) in the middle of a walk.  Page-table pages come
    from ``alloc_low_page``: the BRK buffer while it may be used, then a run of free
    memblock pages handed over by Python (``job.refill()``, the kernel's memblock
    fallback); every allocation is recorded in ``job.out_*`` for Python to log, reserve
    and account.
    """
    cdef object job, phys
    cdef object ranges          # the e820 arrays whose data the raw pointers below read
    cdef int32_t* dir_
    cdef Py_ssize_t ndir
    cdef int32_t* blocks
    cdef Py_ssize_t nblocks, blocks_rows
    cdef uint64_t* frames
    cdef uint64_t* frame_pfn
    cdef Py_ssize_t nframes, fcap
    cdef const uint64_t* ram_s
    cdef const uint64_t* ram_e
    cdef Py_ssize_t nram
    cdef uint64_t* out_pfn
    cdef uint8_t* out_level
    cdef uint8_t* out_src
    cdef Py_ssize_t nout, ocap
    cdef public int64_t pages4k, pages2m, pages1g
    cdef uint64_t brk_next, brk_top, run_lo, run_hi
    cdef bint brk_ok, brk_ge, after_bootmem, zero_rest
    cdef uint8_t buf_src
    cdef const uint64_t* any_s
    cdef const uint64_t* any_e
    cdef Py_ssize_t nany
    cdef uint64_t pfn_mask, supported, pud_leaf_flags, page_offset
    cdef int levels
    cdef int64_t* cov           # job.cov: the coverage counters (MapCoverage)
    cdef bint p4d_by_vaddr
    cdef object _dir_obj, _blk_obj, _frm_obj, _fp_obj, _out_obj, _ol_obj, _os_obj   # arrays the pointers point into

    def __init__(self, job):
        self.job = job
        self.phys = job.phys
        self._load_store()
        self._load_out()
        cdef const uint64_t[::1] rs = job.ram_s
        cdef const uint64_t[::1] re = job.ram_e
        if rs.shape[0] != re.shape[0]:
            raise ValueError("RAM range arrays differ in length")
        self.nram = rs.shape[0]
        self.ram_s = &rs[0] if self.nram else NULL
        self.ram_e = &re[0] if self.nram else NULL
        cdef const uint64_t[::1] as_ = job.any_s
        cdef const uint64_t[::1] ae = job.any_e
        if as_.shape[0] != ae.shape[0]:
            raise ValueError("e820 range arrays differ in length")
        self.nany = as_.shape[0]
        self.any_s = &as_[0] if self.nany else NULL
        self.any_e = &ae[0] if self.nany else NULL
        # keep the arrays alive as long as the pointers: the job may drop or replace its own
        self.ranges = (job.ram_s, job.ram_e, job.any_s, job.any_e, rs, re, as_, ae)
        self.zero_rest = job.zero_rest
        self.buf_src = job.buf_src
        self.pfn_mask = job.pfn_mask
        self.supported = job.supported
        self.pud_leaf_flags = job.pud_leaf_flags
        self.page_offset = job.page_offset
        self.levels = job.levels
        if not 2 <= self.levels <= 5:
            raise ValueError(f"paging has 2 to 5 levels, not {self.levels}")
        self.after_bootmem = job.after_bootmem
        self.pages4k = self.pages2m = self.pages1g = 0
        self._load_alloc()
        cdef int64_t[::1] cv = job.cov
        if cv.shape[0] < COV_COUNT:
            raise ValueError(f"coverage counters: {COV_COUNT} needed, {cv.shape[0]} given")
        self.cov = &cv[0]
        self.p4d_by_vaddr = job.p4d_by_vaddr

    cdef void rearm(self) except *:
        """Reload what may have changed since the last call (the store may have grown, the
        buffer and the protections are per call); the e820 arrays and the mode stay.  The
        store's and the record's pointers are taken again only when their arrays were
        replaced (the Mapper holds references to them, so an unchanged identity is the same
        memory); the counts are re-read and checked every time."""
        self._reload_store()
        if (self.job.out_pfn is not self._out_obj or self.job.out_level is not self._ol_obj
                or self.job.out_src is not self._os_obj):
            self._load_out()
        else:
            self.nout = self.job.nout
            if not 0 <= self.nout <= self.ocap:
                raise ValueError("allocation record count outside its arrays")
        self._load_alloc()
        self.supported = self.job.supported
        self.pud_leaf_flags = self.job.pud_leaf_flags
        self.after_bootmem = self.job.after_bootmem
        self.pages4k = self.pages2m = self.pages1g = 0

    cdef void _reload_store(self) except *:
        """After Python ran (a call, a callback): the store's pointers taken again only where
        its arrays were replaced (the Mapper holds references to the old ones, so an unchanged
        identity is the same memory; a new block only writes the directory in place); the frame
        count re-read and checked every time."""
        if (self.phys.directory is not self._dir_obj or self.phys.blocks is not self._blk_obj
                or self.phys.frames is not self._frm_obj or self.phys.frame_pfn is not self._fp_obj):
            self._load_store()
        else:
            self.nframes = self.phys.nframes
            if not 0 <= self.nframes <= self.fcap:
                raise ValueError("physical store: frame count outside the frame pool")
            self._load_nblocks(self.blocks_rows)

    cdef void _load_nblocks(self, Py_ssize_t rows) except *:
        """The blocks handed out (``phys.nblocks``): only their rows are initialised (the rest
        of the array is spare capacity), so a directory entry at or past it reads as unbacked."""
        self.blocks_rows = rows
        self.nblocks = self.phys.nblocks
        if not 0 <= self.nblocks <= rows:
            raise ValueError("physical store: block count outside the block array")

    cdef void _load_store(self) except *:
        check_store(self.phys.directory, self.phys.blocks, self.phys.frames, self.phys.frame_pfn)
        cdef int32_t[::1] d = self.phys.directory
        cdef int32_t[:, ::1] b = self.phys.blocks
        cdef uint64_t[:, ::1] f = self.phys.frames
        cdef uint64_t[::1] fp = self.phys.frame_pfn
        if d.shape[0] == 0 or b.shape[0] == 0 or f.shape[0] == 0:
            raise ValueError("physical store is empty")
        self._dir_obj, self._blk_obj = self.phys.directory, self.phys.blocks
        self._frm_obj, self._fp_obj = self.phys.frames, self.phys.frame_pfn
        self.dir_ = &d[0]
        self.ndir = d.shape[0]
        self.blocks = &b[0, 0]
        self._load_nblocks(b.shape[0])
        self.frames = &f[0, 0]
        self.frame_pfn = &fp[0]
        self.fcap = f.shape[0]
        self.nframes = self.phys.nframes
        if not 0 <= self.nframes <= self.fcap:
            raise ValueError("physical store: frame count outside the frame pool")

    cdef void _load_out(self) except *:
        cdef uint64_t[::1] op = self.job.out_pfn
        cdef uint8_t[::1] ol = self.job.out_level
        cdef uint8_t[::1] os = self.job.out_src
        if op.shape[0] == 0 or ol.shape[0] != op.shape[0] or os.shape[0] != op.shape[0]:
            raise ValueError("allocation record arrays must be non-empty and of one length")
        self._out_obj, self._ol_obj, self._os_obj = self.job.out_pfn, self.job.out_level, self.job.out_src
        self.out_pfn = &op[0]
        self.out_level = &ol[0]
        self.out_src = &os[0]
        self.ocap = op.shape[0]
        self.nout = self.job.nout
        if not 0 <= self.nout <= self.ocap:
            raise ValueError("allocation record count outside its arrays")

    cdef void _load_alloc(self) except *:
        self.brk_next = self.job.brk_next
        self.brk_top = self.job.brk_top
        self.brk_ok = self.job.brk_ok
        self.brk_ge = self.job.brk_ge
        self.run_lo = self.job.run_lo
        self.run_hi = self.job.run_hi

    cdef void _save(self) except *:
        self.phys.nframes = self.nframes
        self.job.nout = self.nout
        self.job.brk_next = self.brk_next
        self.job.run_lo = self.run_lo
        self.job.run_hi = self.run_hi

    cdef Py_ssize_t slot_of(self, uint64_t pfn) noexcept nogil:
        """The frame slot of ``pfn``, or -1 (no backing; also for a corrupt index)."""
        cdef uint64_t d = pfn >> BLK_SHIFT
        cdef int32_t b, s
        if d >= <uint64_t>self.ndir:
            return -1
        b = self.dir_[d]
        if b < 0 or b >= self.nblocks:
            return -1
        s = self.blocks[(<Py_ssize_t>b << BLK_SHIFT) + <Py_ssize_t>(pfn & BLK_MASK)]
        if s >= self.nframes:
            return -1
        return s

    cdef Py_ssize_t child_slot(self, uint64_t e) except -1:
        """The slot of the table a present entry points to (it must have backing)."""
        cdef Py_ssize_t s = self.slot_of((e & self.pfn_mask) >> 12)
        if s < 0:
            raise ValueError(f"entry {e:#x} points to a page-table page without backing")
        return s

    cdef Py_ssize_t alloc_low_page(self, int level) except -1:
        """``alloc_low_pages(1)``: the BRK buffer, else the memblock run, else ask Python
        (``job.refill()``: the kernel's memblock fallback and its panics).  The page is
        backed and cleared (``clear_page``) and recorded; returns its frame slot."""
        cdef uint64_t pfn
        cdef uint8_t src
        cdef Py_ssize_t s
        cdef int32_t b
        cdef bint full = (self.brk_next + 1 >= self.brk_top) if self.brk_ge else (self.brk_next + 1 > self.brk_top)
        if self.brk_ok and not full:
            pfn = self.brk_next
            self.brk_next += 1
            src = self.buf_src
        else:
            if self.run_hi <= self.run_lo:
                self._save()
                self.job.refill()          # may raise the kernel's panic
                self._reload_store()       # Python ran: reload what it replaced
                self._load_alloc()
                self._load_out()
            self.run_hi -= 1
            pfn = self.run_hi
            src = SRC_MEMBLOCK
        # back the frame (clear_page)
        if (pfn >> BLK_SHIFT) >= <uint64_t>self.ndir:
            self._save()
            raise ValueError(f"page-table page {pfn << 12:#x} outside emulated RAM")
        b = self.dir_[pfn >> BLK_SHIFT]
        if b < 0:
            self._save()
            self.phys.block_for(pfn)
            self._reload_store()
            b = self.dir_[pfn >> BLK_SHIFT]
        if b < 0 or b >= self.nblocks:
            self._save()
            raise ValueError(f"physical store: corrupt directory entry for {pfn << 12:#x}")
        s = self.blocks[(<Py_ssize_t>b << BLK_SHIFT) + <Py_ssize_t>(pfn & BLK_MASK)]
        if s >= self.nframes:
            self._save()
            raise ValueError(f"physical store: corrupt block entry for {pfn << 12:#x}")
        if s < 0:
            if self.nframes == self.fcap:
                self._save()
                self.phys.reserve_frames(2 * self.fcap)
                self._reload_store()
            s = self.nframes
            self.nframes += 1
            self.blocks[(<Py_ssize_t>b << BLK_SHIFT) + <Py_ssize_t>(pfn & BLK_MASK)] = <int32_t>s
            self.frame_pfn[s] = pfn
            # a slot never used before is zero already (the pool comes from calloc'd, lazily
            # zeroed memory: emu.machine.phys): the loops' writes are its first touch
        else:
            memset(&self.frames[s * 512], 0, 4096)   # clear_page of a frame backed before
        if self.nout == self.ocap:
            self._save()
            self.job.grow_out()
            self._reload_store()
            self._load_out()
        self.out_pfn[self.nout] = pfn
        self.out_level[self.nout] = level
        self.out_src[self.nout] = src
        self.nout += 1
        return s

    cdef inline void populate(self, Py_ssize_t slot, int i, Py_ssize_t child) noexcept nogil:
        """pud_populate / pmd_populate / p4d_populate / pgd_populate: point entry ``i`` of
        the table in ``slot`` at the table in ``child`` with ``_PAGE_TABLE``."""
        self.frames[slot * 512 + i] = ((self.frame_pfn[child] << 12) & self.pfn_mask) | _PAGE_TABLE

    cdef uint64_t phys_pte_init(self, Py_ssize_t slot, uint64_t paddr, uint64_t paddr_end,
                                uint64_t prot, bint fresh) noexcept nogil:
        """``phys_pte_init``: the 4 KiB entries of one PTE page from ``paddr``; returns
        ``paddr_last``.  Past ``paddr_end`` an entry is cleared unless e820 has RAM in
        its page (``!after_bootmem``), or (<= 3.8) every remaining entry is cleared; a
        present entry is kept (and counted); an empty one gets ``pfn | prot``.
        ``fresh``: the page was just allocated (all zero), so no entry is present and the
        entries past the end are zero already: the entries are written without being read
        (the same bytes, counts and coverage)."""
        cdef uint64_t last = paddr_end, nxt
        cdef uint64_t flags = massage(prot, self.supported)
        cdef int64_t pages = 0
        cdef int i
        cdef uint64_t* t = &self.frames[slot * 512]
        i = (paddr >> 12) & 511
        if fresh and not self.zero_rest:
            if paddr < paddr_end:
                pages = fill_leaves(t, i, paddr & ~<uint64_t>0xFFF, paddr_end, 12, self.pfn_mask, flags)
                last = (paddr & ~<uint64_t>0xFFF) + (<uint64_t>pages << 12)
            i = 512
        while i < 512:
            nxt = (paddr & ~<uint64_t>0xFFF) + 0x1000
            if paddr >= paddr_end:
                if self.zero_rest:
                    # <= 3.8: clear the rest of the page and stop
                    if not self.after_bootmem:
                        self.cov[<int>(COV_ZERO_REST_PTE)] += 1
                        while i < 512:
                            t[i] = 0
                            i += 1
                    break
                # an empty entry past the end stays empty either way (as in scan_large)
                if t[i] != 0:
                    if not self.after_bootmem and not ram_any(self.ram_s, self.ram_e, self.nram,
                                                              paddr & ~<uint64_t>0xFFF, nxt):
                        self.cov[<int>(COV_CLEAR_PTE)] += 1
                        t[i] = 0
                    else:
                        self.cov[<int>(COV_KEEP_PAST_END)] += 1
            elif t[i] != 0:
                self.cov[<int>(COV_KEEP_4K)] += 1
                if not self.after_bootmem or self.zero_rest:
                    pages += 1
            else:
                t[i] = (paddr & self.pfn_mask) | flags
                last = nxt
                pages += 1
            paddr = nxt
            i += 1
        self.pages4k += pages
        return last

    cdef MapEvent scan_large(self, int level, Py_ssize_t slot, int* pi, uint64_t* ppaddr,
                             uint64_t paddr_end, bint large_ok, uint64_t leaf_flags,
                             uint64_t* plast, int64_t* ppages, bint fresh) noexcept nogil:
        """The part of ``phys_pmd_init`` (level 2) / ``phys_pud_init`` (level 3) that needs
        no allocation: from entry ``*pi`` on, clear entries past the end that hold no RAM,
        keep (and count) present leaves the page size allows, write new leaves, and stop
        at the first entry that needs a lower table (returning why), or at the end of the
        page (``EV_NONE``)."""
        cdef int shift = 21 if level == 2 else 30
        cdef uint64_t size = (<uint64_t>1) << shift
        cdef uint64_t amask = ~(size - 1)
        cdef uint64_t nxt, e
        cdef uint64_t* t = &self.frames[slot * 512]
        cdef int i = pi[0]
        cdef uint64_t paddr = ppaddr[0]
        cdef MapEvent ev = EV_NONE
        cdef Py_ssize_t n
        if fresh and large_ok and not self.zero_rest:
            # a page just allocated: entries from i on are zero, so every one below the end gets
            # a leaf and those past it stay zero (written without being read: same result)
            if i < 512 and paddr < paddr_end:
                n = fill_leaves(t, i, paddr & amask, paddr_end, shift, self.pfn_mask, leaf_flags)
                ppages[0] += n
                paddr = (paddr & amask) + (<uint64_t>n << shift)
                plast[0] = paddr
            pi[0] = 512
            ppaddr[0] = paddr
            return EV_NONE
        while i < 512:
            nxt = (paddr & amask) + size
            e = t[i]
            if paddr >= paddr_end:
                if self.zero_rest:
                    # <= 3.8: a PMD page is cleared past the end; a PUD loop just stops
                    if level == 2 and not self.after_bootmem:
                        self.cov[<int>(COV_ZERO_REST_PMD)] += 1
                        while i < 512:
                            t[i] = 0
                            i += 1
                    i = 512
                    break
                # an empty entry past the end stays empty either way: only a present one
                # asks whether e820 has RAM under it (a binary search)
                if e != 0:
                    if not self.after_bootmem and not ram_any(self.ram_s, self.ram_e, self.nram, paddr & amask, nxt):
                        self.cov[<int>(COV_CLEAR_PMD if level == 2 else COV_CLEAR_PUD)] += 1
                        t[i] = 0
                    else:
                        self.cov[<int>(COV_KEEP_PAST_END)] += 1
            elif (self.zero_rest and level == 3 and not self.after_bootmem
                  and not ram_any(self.any_s, self.any_e, self.nany, paddr, nxt)):
                # <= 3.8: a PUD with no e820 entry of any type is cleared
                self.cov[<int>(COV_PUD_NO_E820)] += 1
                t[i] = 0
            elif e != 0:
                if not (e & _PSE):
                    ev = EV_DESCEND
                    break
                if large_ok:
                    self.cov[<int>(COV_KEEP_2M if level == 2 else COV_KEEP_1G)] += 1
                    if not self.after_bootmem and not self.zero_rest:
                        ppages[0] += 1
                    plast[0] = nxt
                else:
                    ev = EV_SPLIT
                    break
            elif large_ok:
                if self.zero_rest:   # <= 3.8: the leaf takes the unaligned address
                    if paddr & ~amask:
                        self.cov[<int>(COV_UNALIGNED_LEAF)] += 1
                    t[i] = (paddr & self.pfn_mask) | leaf_flags
                else:
                    t[i] = (paddr & amask & self.pfn_mask) | leaf_flags
                ppages[0] += 1
                plast[0] = nxt
            else:
                ev = EV_NEW_TABLE
                break
            paddr = nxt
            i += 1
        pi[0] = i
        ppaddr[0] = paddr
        return ev

    cdef uint64_t phys_pmd_init(self, Py_ssize_t slot, uint64_t paddr, uint64_t paddr_end, int mask,
                                uint64_t prot, bint fresh) except? 1:
        """``phys_pmd_init``: the 2 MiB entries of one PMD page from ``paddr``; 2M leaves
        where ``page_size_mask`` allows them, else a PTE page (``phys_pte_init``) -- the
        present one, a new one, or one splitting a leaf with that leaf's flags minus PSE."""
        cdef int i = <int>((paddr >> 21) & 511)
        cdef uint64_t last = paddr_end, e, nxt, child_prot
        cdef int64_t pages = 0
        cdef bint large_ok = (mask & MASK_2M) != 0
        cdef uint64_t leaf_flags = massage(prot | _PSE, self.supported)
        cdef Py_ssize_t child
        cdef MapEvent ev
        while True:
            ev = self.scan_large(2, slot, &i, &paddr, paddr_end, large_ok, leaf_flags, &last, &pages, fresh)
            if ev == EV_NONE:
                break
            nxt = (paddr & ~((<uint64_t>1 << 21) - 1)) + (<uint64_t>1 << 21)
            e = self.frames[slot * 512 + i]
            if ev == EV_DESCEND:
                self.cov[<int>(COV_DESCEND_PTE)] += 1
                last = self.phys_pte_init(self.child_slot(e), paddr, paddr_end, prot, False)
            else:
                if ev == EV_SPLIT:
                    self.cov[<int>(COV_SPLIT_2M)] += 1
                # a split keeps the old leaf's flags minus PSE (pte_pgprot(pte_clrhuge()))
                child_prot = prot if ev == EV_NEW_TABLE else (e & ~self.pfn_mask & ~_PSE)
                child = self.alloc_low_page(1)
                last = self.phys_pte_init(child, paddr, paddr_end, child_prot, True)
                self.populate(slot, i, child)
            paddr = nxt
            i += 1
        self.pages2m += pages
        return last

    cdef uint64_t phys_pud_init(self, Py_ssize_t slot, uint64_t paddr, uint64_t paddr_end, int mask,
                                uint64_t prot, bint fresh) except? 1:
        """``phys_pud_init``: the 1 GiB entries of one PUD page (indexed by the virtual
        address); 1G leaves where allowed (flags ``pud_leaf_flags``: PAGE_KERNEL_LARGE, or
        ``prot``-based from 5.8), else a PMD page (``phys_pmd_init``)."""
        cdef int i = <int>(((self.page_offset + paddr) >> 30) & 511)
        cdef uint64_t last = paddr_end, e, nxt, child_prot
        cdef int64_t pages = 0
        cdef bint large_ok = (mask & MASK_1G) != 0
        cdef Py_ssize_t child
        cdef MapEvent ev
        while True:
            ev = self.scan_large(3, slot, &i, &paddr, paddr_end, large_ok, self.pud_leaf_flags, &last, &pages,
                                 fresh)
            if ev == EV_NONE:
                break
            nxt = (paddr & ~((<uint64_t>1 << 30) - 1)) + (<uint64_t>1 << 30)
            e = self.frames[slot * 512 + i]
            if ev == EV_DESCEND:
                self.cov[<int>(COV_DESCEND_PMD)] += 1
                last = self.phys_pmd_init(self.child_slot(e), paddr, paddr_end, mask, prot, False)
            else:
                if ev == EV_SPLIT:
                    self.cov[<int>(COV_SPLIT_1G)] += 1
                child_prot = prot if ev == EV_NEW_TABLE else (e & ~self.pfn_mask & ~_PSE)
                child = self.alloc_low_page(2)
                last = self.phys_pmd_init(child, paddr, paddr_end, mask, child_prot, True)
                self.populate(slot, i, child)
            paddr = nxt
            i += 1
        self.pages1g += pages
        return last

    cdef uint64_t phys_p4d_init(self, Py_ssize_t slot, uint64_t paddr, uint64_t paddr_end, int mask,
                                uint64_t prot) except? 1:
        """``phys_p4d_init`` (5-level): the P4D entries the range covers, each with its PUD
        page (``phys_pud_init``), present or new.  5.2+ (``p4d_walk_by_vaddr``) walks by
        virtual address to the end of the call, the index wrapping over this page for every
        later PGD region; before, the loop ends with the page, clearing entries past the end
        that hold no RAM."""
        cdef uint64_t vaddr = self.page_offset + paddr, vend = self.page_offset + paddr_end
        cdef uint64_t size = (<uint64_t>1) << 39, vnext, e, last = paddr_end, pnext
        cdef int i
        cdef Py_ssize_t child
        if not self.p4d_by_vaddr:
            i = <int>((vaddr >> 39) & 511)
            while i < 512:
                pnext = (paddr & ~(size - 1)) + size
                e = self.frames[slot * 512 + i]
                if paddr >= paddr_end:
                    if not self.after_bootmem and not ram_any(self.ram_s, self.ram_e, self.nram,
                                                              paddr & ~(size - 1), pnext):
                        if e != 0:
                            self.cov[<int>(COV_CLEAR_P4D)] += 1
                        self.frames[slot * 512 + i] = 0
                    i += 1
                    paddr = pnext
                    continue
                if e != 0:
                    last = self.phys_pud_init(self.child_slot(e), paddr, paddr_end, mask, prot, False)
                else:
                    child = self.alloc_low_page(3)
                    last = self.phys_pud_init(child, paddr, paddr_end, mask, prot, True)
                    self.populate(slot, i, child)
                i += 1
                paddr = pnext
            if paddr < paddr_end:
                self.cov[<int>(COV_P4D_STOP)] += 1
            return last
        while vaddr < vend:
            i = <int>((vaddr >> 39) & 511)
            if i == 0 and vaddr != self.page_offset + paddr:
                self.cov[<int>(COV_P4D_WRAP)] += 1
            vnext = (vaddr & ~(size - 1)) + size
            e = self.frames[slot * 512 + i]
            if e != 0:
                child = self.child_slot(e)
                last = self.phys_pud_init(child, vaddr - self.page_offset, paddr_end, mask, prot, False)
            else:
                child = self.alloc_low_page(3)
                last = self.phys_pud_init(child, vaddr - self.page_offset, paddr_end, mask, prot, True)
                self.populate(slot, i, child)
            vaddr = vnext
        return last

    def kernel_physical_mapping_init(self, uint64_t pgd_pfn, uint64_t paddr_start, uint64_t paddr_end,
                                     int mask, uint64_t prot):
        """``kernel_physical_mapping_init`` (``__kernel_physical_mapping_init`` from 5.8):
        map ``[paddr_start, paddr_end)`` at ``PAGE_OFFSET + pa`` below the PGD page
        ``pgd_pfn``; returns ``paddr_last``."""
        cdef uint64_t vaddr = self.page_offset + paddr_start, vend = self.page_offset + paddr_end
        cdef int shift = 48 if self.levels == 5 else 39
        cdef uint64_t size = (<uint64_t>1) << shift, vnext, e, last = paddr_end, child_end
        cdef int i
        cdef Py_ssize_t pgd = self.slot_of(pgd_pfn), child
        if pgd < 0:
            raise ValueError("the PGD page has no backing")
        if self.levels != 4 and self.levels != 5:
            raise ValueError(f"x86-64 paging has 4 or 5 levels, not {self.levels}")
        if paddr_start > paddr_end:
            raise ValueError(f"inverted range [{paddr_start:#x}, {paddr_end:#x})")
        try:
            while vaddr < vend:
                i = <int>((vaddr >> shift) & 511)
                vnext = (vaddr & ~(size - 1)) + size
                e = self.frames[pgd * 512 + i]
                if e != 0:
                    child = self.child_slot(e)
                    if self.levels == 5:
                        last = self.phys_p4d_init(child, vaddr - self.page_offset, paddr_end, mask, prot)
                    else:
                        last = self.phys_pud_init(child, vaddr - self.page_offset, paddr_end, mask, prot, False)
                else:
                    child = self.alloc_low_page(4 if self.levels == 5 else 3)
                    # <= 3.8: a new PUD page is filled only up to the next PGD boundary
                    child_end = (vnext if vnext < vend else vend) - self.page_offset if self.zero_rest else paddr_end
                    if child_end < paddr_end:
                        self.cov[<int>(COV_PGD_CHILD_END)] += 1
                    if self.levels == 5:
                        last = self.phys_p4d_init(child, vaddr - self.page_offset, child_end, mask, prot)
                    else:
                        last = self.phys_pud_init(child, vaddr - self.page_offset, child_end, mask, prot, True)
                    pgd = self.slot_of(pgd_pfn)
                    self.populate(pgd, i, child)
                vaddr = vnext
        finally:
            self._save()
        return last


cdef Mapper _mapper_for(job):
    """The job's Mapper, made once per job and re-armed for each call."""
    cdef Mapper m
    cached = getattr(job, "_mapper", None)
    if isinstance(cached, Mapper):
        m = cached
        m.rearm()
    else:
        m = Mapper(job)
        job._mapper = m
    return m


def kernel_physical_mapping_init(job, uint64_t pgd_pfn, uint64_t paddr_start, uint64_t paddr_end, int mask,
                                 uint64_t prot):
    """Run ``kernel_physical_mapping_init`` for ``job`` (an
    ``emu.kernel.arch.x86.mm.init_64.MapJob``); returns ``(paddr_last, (0, 4k, 2M, 1G
    pages counted))``.  The Mapper is made once per job and re-armed for each call."""
    cdef Mapper m = _mapper_for(job)
    last = m.kernel_physical_mapping_init(pgd_pfn, paddr_start, paddr_end, mask, prot)
    return last, (0, m.pages4k, m.pages2m, m.pages1g)


def map_pieces(job, uint64_t pgd_pfn, list pieces, uint64_t prot):
    """``kernel_physical_mapping_init`` for each ``(start, end, page_size_mask)`` piece of
    one ``init_memory_mapping`` call (arch/x86/mm/init.c), in order, with one re-arming of
    the job's Mapper: no Python runs between the pieces (a memblock refill is a callback
    from inside a piece, as in a single call).  Returns ``(paddr_last of the last piece,
    (0, 4k, 2M, 1G pages counted over all of them))``; ``(0, (0, 0, 0, 0))`` for none."""
    cdef Mapper m
    cdef uint64_t start, end, last = 0
    cdef int mask
    if not pieces:
        return 0, (0, 0, 0, 0)
    m = _mapper_for(job)
    for piece in pieces:
        start, end, mask = piece
        last = m.kernel_physical_mapping_init(pgd_pfn, start, end, mask, prot)
    return last, (0, m.pages4k, m.pages2m, m.pages1g)


# ---------------------------------------------------------------------------
# The hardware walk (Intel SDM vol. 3A, 4.5 "4-level and 5-level paging").
# ---------------------------------------------------------------------------

cdef inline uint64_t read_entry(const int32_t[:] directory, const int32_t[:, :] blocks,
                                const uint64_t[:, :] frames, uint64_t pa) noexcept nogil:
    cdef uint64_t pfn = pa >> 12
    cdef uint64_t d = pfn >> BLK_SHIFT
    cdef int32_t b, s
    if d >= <uint64_t>directory.shape[0]:
        return 0
    b = directory[d]
    if b < 0 or b >= blocks.shape[0]:
        return 0
    s = blocks[b, pfn & BLK_MASK]
    if s < 0 or s >= frames.shape[0]:
        return 0
    return frames[s, (pa & 0xFFF) >> 3]


cdef inline const uint64_t* frame_ptr(const int32_t[:] directory, const int32_t[:, :] blocks,
                                     const uint64_t[:, :] frames, uint64_t pfn) noexcept nogil:
    """The 512 entries of frame ``pfn``, or NULL when it has no backing."""
    cdef uint64_t d = pfn >> BLK_SHIFT
    cdef int32_t b, s
    if d >= <uint64_t>directory.shape[0]:
        return NULL
    b = directory[d]
    if b < 0 or b >= blocks.shape[0]:
        return NULL
    s = blocks[b, pfn & BLK_MASK]
    if s < 0 or s >= frames.shape[0]:
        return NULL
    return &frames[s, 0]


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


cdef inline const uint64_t* frame_at(const int32_t* dir_, Py_ssize_t ndir, const int32_t* blocks,
                                    Py_ssize_t nblk, const uint64_t* frames, Py_ssize_t nfrm,
                                    uint64_t pfn) noexcept nogil:
    """The 512 entries of frame ``pfn``, or NULL where RAM has no backing (or the store's
    indices point outside its arrays)."""
    cdef uint64_t d = pfn >> BLK_SHIFT
    cdef int32_t b, s
    if d >= <uint64_t>ndir:
        return NULL
    b = dir_[d]
    if b < 0 or b >= nblk:
        return NULL
    s = blocks[(<Py_ssize_t>b << BLK_SHIFT) + <Py_ssize_t>(pfn & BLK_MASK)]
    if s < 0 or s >= nfrm:
        return NULL
    return &frames[<Py_ssize_t>s << 9]


cdef inline uint64_t entry_at(const int32_t* dir_, Py_ssize_t ndir, const int32_t* blocks, Py_ssize_t nblk,
                              const uint64_t* frames, Py_ssize_t nfrm, uint64_t pa) noexcept nogil:
    """The 8-byte entry at physical address ``pa`` (zero where RAM has no backing)."""
    cdef const uint64_t* f = frame_at(dir_, ndir, blocks, nblk, frames, nfrm, pa >> 12)
    if f == NULL:
        return 0
    return f[(pa & 0xFFF) >> 3]


def walk64(const int32_t[::1] directory, const int32_t[:, ::1] blocks, const uint64_t[:, ::1] frames,
           uint64_t cr3, int levels, int maxphyaddr, bint nxe, bint wp, bint smep,
           int access, const uint64_t[::1] vas,
           uint64_t[::1] out_pa, uint8_t[::1] out_shift, uint64_t[::1] out_leaf,
           uint64_t[::1] out_flags, int32_t[::1] out_err, uint64_t[:, :, ::1] trace=None):
    """Translate ``vas`` through 4-level (levels=4) or 5-level (levels=5) paging.

    Per address: ``out_pa`` physical address, ``out_shift`` leaf size as a
    shift (12, 21, 30; 0 on a fault), ``out_leaf`` the raw leaf entry,
    ``out_flags`` the effective flags (bit 1 RW and bit 2 US ANDed over all
    levels, bit 63 XD ORed, other bits from the leaf), ``out_err`` -1 when the
    translation succeeds, else the #PF error code, or -2 (#GP) for a
    non-canonical address.  ``out_shift``, ``out_leaf`` and ``out_flags`` may
    be empty arrays: then only the address and the error are produced.

    Like a TLB for the upper levels, the walk down to the page directory is
    remembered for the last 2 MiB region: consecutive addresses read one
    entry each.  Nothing is cached across calls.

    ``trace`` (optional, shape ``(n, 5, 4)`` uint64): the walk level by level, one row
    per entry read, top level first: ``(level, table_pa, index, entry)`` with ``level``
    the hardware level (5/4 ... 1 = page table); rows after the last entry read have
    level 0.  The last row is the entry that ended the walk (the leaf, or the entry
    that faulted: not present or with a reserved bit).  Tracing reads every level for
    every address (no region cache).
    """
    cdef Py_ssize_t n = vas.shape[0], k
    cdef bint full = out_shift.shape[0] == n and out_leaf.shape[0] == n and out_flags.shape[0] == n
    cdef bint tracing = trace is not None
    cdef int step = 0
    cdef uint64_t epa = 0
    if tracing and (trace.shape[0] < n or trace.shape[1] != 5 or trace.shape[2] != 4):
        raise ValueError(f"walk64: trace must have shape ({n}, 5, 4)")
    if levels != 4 and levels != 5:
        raise ValueError(f"walk64: levels must be 4 or 5, not {levels}")
    if not 32 <= maxphyaddr <= 52:
        raise ValueError(f"walk64: MAXPHYADDR must be in [32, 52], not {maxphyaddr}")
    if out_pa.shape[0] < n or out_err.shape[0] < n:
        raise ValueError(f"walk64: output arrays hold {min(out_pa.shape[0], out_err.shape[0])} results, "
                         f"{n} addresses given")
    if directory.shape[0] == 0 or blocks.shape[0] == 0 or frames.shape[0] == 0 or blocks.shape[1] != BLK_PFNS \
            or frames.shape[1] != 512:
        raise ValueError("walk64: malformed physical store")
    cdef const int32_t* dir_ = &directory[0]
    cdef Py_ssize_t ndir = directory.shape[0]
    cdef const int32_t* blk = &blocks[0, 0]
    cdef Py_ssize_t nblk = blocks.shape[0]
    cdef const uint64_t* frm = &frames[0, 0]
    cdef Py_ssize_t nfrm = frames.shape[0]
    cdef uint64_t va, table, e, addr_mask, rsvd_hi, pa, eff_rw, eff_us, eff_nx
    cdef int lvl, shift, err, vabits
    cdef uint64_t top, region, c_region = ~(<uint64_t>0)
    cdef uint64_t c_e = 0, c_rw = 0, c_us = 0, c_nx = 0
    cdef const uint64_t* c_pt = NULL     # the page table of the cached region (NULL: reads as zero)
    cdef uint64_t c_ptpa = 0
    cdef int c_lvl = 0, c_err = -1
    cdef bint rsvd, fault, cached = False
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
            if full:
                out_shift[k] = 0
                out_leaf[k] = 0
                out_flags[k] = 0
            # canonical check: bits 63..vabits-1 all equal
            top = va >> (vabits - 1)
            if top != 0 and top != ((<uint64_t>1 << (65 - vabits)) - 1):
                out_err[k] = FAULT_GP_C
                continue
            region = va >> 21
            if tracing:
                for step in range(5):
                    trace[k, step, 0] = 0
                    trace[k, step, 1] = 0
                    trace[k, step, 2] = 0
                    trace[k, step, 3] = 0
                step = 0
            if tracing or not cached or region != c_region:
                # walk the levels above the page table (PML5/PML4, PDPT, PD)
                table = cr3 & addr_mask
                eff_rw = 2
                eff_us = 4
                eff_nx = 0
                err = -1
                lvl = levels
                while True:
                    shift = 12 + 9 * (lvl - 1)
                    epa = table + (((va >> shift) & 0x1FF) << 3)
                    e = entry_at(dir_, ndir, blk, nblk, frm, nfrm, epa)
                    if tracing:
                        trace[k, step, 0] = lvl
                        trace[k, step, 1] = table
                        trace[k, step, 2] = (va >> shift) & 0x1FF
                        trace[k, step, 3] = e
                        step += 1
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
                    if lvl == 2 or (lvl == 3 and (e & _PSE)):
                        break
                    table = e & addr_mask
                    lvl -= 1
                cached = True
                c_region = region
                c_pt = NULL
                if err < 0 and lvl == 2 and not (e & _PSE):
                    c_ptpa = e & addr_mask
                    c_pt = frame_at(dir_, ndir, blk, nblk, frm, nfrm, c_ptpa >> 12)
                c_e = e
                c_lvl = lvl
                c_err = err
                c_rw = eff_rw
                c_us = eff_us
                c_nx = eff_nx
            e = c_e
            lvl = c_lvl
            err = c_err
            eff_rw = c_rw
            eff_us = c_us
            eff_nx = c_nx
            if err < 0 and lvl == 2 and not (e & _PSE):
                # the page table
                lvl = 1
                e = c_pt[(va >> 12) & 0x1FF] if c_pt != NULL else 0
                if tracing:
                    trace[k, step, 0] = 1
                    trace[k, step, 1] = c_ptpa
                    trace[k, step, 2] = (va >> 12) & 0x1FF
                    trace[k, step, 3] = e
                if not (e & 1):
                    err = 0
                elif (e & rsvd_hi) != 0:
                    err = PF_PROT | PF_RSVD
                else:
                    eff_rw &= e
                    eff_us &= e
                    if e & ((<uint64_t>1) << 63):
                        eff_nx = (<uint64_t>1) << 63
            shift = 12 + 9 * (lvl - 1)
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
                    if full:
                        out_shift[k] = shift
                        out_leaf[k] = e
                        # flags: the leaf's bits outside its address field (so PAT_LARGE, bit 12,
                        # stays on 2M/1G leaves), RW/US/NX as accumulated over the levels
                        out_flags[k] = (e & ~(addr_mask & ~((((<uint64_t>1) << shift) - 1)))
                                        & ~(<uint64_t>6) & ~((<uint64_t>1) << 63)) | eff_rw | eff_us | eff_nx
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
                uint64_t[:, :] runs, uint64_t[:, :] tables, int64_t[:] counts,
                uint64_t ptr_flags=0x067, uint64_t[:, :] odd=None):
    """Walk every present entry below ``root_pfn`` (top-level indices [top_lo, top_hi)).

    ``runs[r] = (va, va_end, pa, shift, leaf_flags, eff)``: maximal runs of
    contiguous leaves of one size whose physical addresses are contiguous and
    whose flags (leaf flags, and effective RW/US/NX in ``eff``) are equal.
    ``tables[t] = (pfn, level, parent_pfn, parent_index)`` for every table page
    referenced by a present non-leaf entry.  ``counts`` receives
    (nruns, ntables, n4k, n2m, n1g, nreserved): leaves counted by size and
    entries with reserved bits set (skipped), then (counts[6]) the number of
    *odd* entries, the first ``len(odd)`` of them in ``odd[o] = (table_pfn,
    index, entry, kind)``: kind 1, a table pointer whose flags (bits 0-11 and
    63) are not ``ptr_flags``; kind 2, a 2M/1G leaf with address bits below its
    page size set (reserved bits 13-20 / 13-29; the leaf is still enumerated).
    Returns False when ``runs`` or ``tables`` is too small (counts then hold
    the sizes needed).  A walk that enters backed table pages more than ``4 * len(frames)
    + 64`` times is not walking a tree (tables that reference each other in a cycle, or
    shared many times over, would take exponential time): ``ValueError``.
    """
    cdef uint64_t addr_mask = ((<uint64_t>1 << maxphyaddr) - 1) & ~<uint64_t>0xFFF
    cdef uint64_t rsvd_hi = ((((<uint64_t>1) << 52) - 1) & ~(((<uint64_t>1) << maxphyaddr) - 1))
    cdef int vabits = 57 if levels == 5 else 48
    cdef uint64_t tbl[6]
    cdef const uint64_t* tp[6]
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
    cdef uint64_t cur_parent_eff = 0, expect, va0
    cdef int j
    cdef Py_ssize_t nodd = 0, cap_o = odd.shape[0] if odd is not None else 0
    cdef Py_ssize_t visits = 0, max_visits = 4 * frames.shape[0] + 64
    cdef bint not_tree = False
    if levels != 4 and levels != 5:
        raise ValueError(f"enumerate64: levels must be 4 or 5, not {levels}")
    if not 32 <= maxphyaddr <= 52:
        raise ValueError(f"enumerate64: MAXPHYADDR must be in [32, 52], not {maxphyaddr}")
    if not 0 <= top_lo <= top_hi <= 512:
        raise ValueError(f"enumerate64: top-level slots [{top_lo}, {top_hi}) outside [0, 512]")
    if runs.shape[1] < 6 or tables.shape[1] < 4 or counts.shape[0] < 6 or (odd is not None and odd.shape[1] < 4):
        raise ValueError("enumerate64: output arrays need 6 run columns, 4 table columns, 6 counts, 4 odd columns")
    if blocks.shape[1] != BLK_PFNS or frames.shape[1] != 512 or frames.strides[1] != sizeof(uint64_t):
        # (each frame's 512 entries are read through a pointer: they must be contiguous)
        raise ValueError("enumerate64: malformed physical store")
    signbit = (<uint64_t>1) << (vabits - 1)
    with nogil:
        tbl[lvl] = root_pfn << 12
        tp[lvl] = frame_ptr(directory, blocks, frames, root_pfn)
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
            if tp[lvl] == NULL:
                idx[lvl] = 512   # no backing: every entry reads as zero
                continue
            if lvl <= 2 and have and cur_shift == 3 + 9 * lvl and effv[lvl] == cur_parent_eff:
                # fast path: 4K (2M) leaves continuing the current run, compared as raw values: an
                # entry equal to the next one of the run is present, a leaf of the run's size with
                # its flags (no reserved bit: the run's first entry had none, and the address is
                # checked against MAXPHYADDR), so the slow path below would extend the run with it
                shift = 3 + 9 * lvl
                va0 = vabase[lvl] | (<uint64_t>idx[lvl] << shift)
                if va0 & signbit:
                    va0 |= ~(signbit * 2 - 1)
                if va0 == cur_end:
                    expect = (cur_pa + (cur_end - cur_va)) | cur_flags
                    j = idx[lvl]
                    while j < 512 and tp[lvl][j] == expect and (expect & rsvd_hi) == 0:
                        expect += (<uint64_t>1) << shift
                        j += 1
                    if j > idx[lvl]:
                        cur_end += <uint64_t>(j - idx[lvl]) << shift
                        if lvl == 1:
                            n4k += j - idx[lvl]
                        else:
                            n2m += j - idx[lvl]
                        idx[lvl] = j
                        continue
            e = tp[lvl][i]
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
            if not leaf and (e & <uint64_t>0x8000000000000FFF) != ptr_flags:
                if nodd < cap_o:
                    odd[nodd, 0] = tbl[lvl] >> 12
                    odd[nodd, 1] = i
                    odd[nodd, 2] = e
                    odd[nodd, 3] = 1
                nodd += 1
            elif leaf and lvl > 1 and (e & (<uint64_t>0x1FE000 if lvl == 2 else <uint64_t>0x3FFFE000)) != 0:
                if nodd < cap_o:
                    odd[nodd, 0] = tbl[lvl] >> 12
                    odd[nodd, 1] = i
                    odd[nodd, 2] = e
                    odd[nodd, 3] = 2
                nodd += 1
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
                tp[lvl] = frame_ptr(directory, blocks, frames, (e & addr_mask) >> 12)
                if tp[lvl] != NULL:
                    visits += 1
                    if visits > max_visits:
                        not_tree = True
                        break
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
                cur_parent_eff = effv[lvl]
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
    if not_tree:
        raise ValueError(f"enumerate64: more than {max_visits} visits of table pages below {root_pfn << 12:#x} "
                         f"(a store of {frames.shape[0]} frames): the tables are not a tree")
    counts[0] = nr
    counts[1] = nt
    counts[2] = n4k
    counts[3] = n2m
    counts[4] = n1g
    counts[5] = nrsv
    if counts.shape[0] > 6:
        counts[6] = nodd
    return ok

include "_fast32.pxi"
