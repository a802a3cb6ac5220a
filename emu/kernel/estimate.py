"""The memory an emulation will take, known before anything is allocated.

``setup_arch`` calls :func:`guard` once the e820 edits are applied and before the physical
store (:class:`emu.machine.phys.PhysMem`) exists.  The estimate counts what the store will
hold:

* **page-table pages**, from the ranges the kernel maps and the page sizes it may use:
  one table per distinct aligned block a level needs (a PTE page per 2 MiB -- 4 MiB
  for i386 without PAE -- that is mapped with 4 KiB pages, a PMD page per 1 GiB mapped
  with pages below 1 GiB, a PUD page per 512 GiB, a P4D page per 256 TiB with 5-level
  paging), the PGD and the kernel image's static tables (x86-64 before 3.9: the identity
  tables; i386: ``swapper_pg_dir``, PAE's ``initial_pg_pmd``, the fixmap's static tables
  and head_32's page tables in BRK), the i386 fixmap's tables, a few pages of slack for
  the mapping windows' boundaries;
* the store's **index**: the directory (one int32 per 256 MiB of physical address space
  up to the store's limit, which the BRK address can raise) and the blocks (256 KiB per
  256 MiB block that holds a table page, in an array that grows by doubling), the frame
  numbers (8 bytes per frame) and the table-page log (about 15 bytes per page, doubling).

What the kernel maps: x86-64 3.9+ maps the ISA range and memblock memory below
``max_pfn`` (i386: below ``max_low_pfn``, lowmem); the kernels before 3.9 map
``[0, max_low_pfn)`` and ``[4 GiB, max_pfn)`` whole, holes included.  Which page sizes:
2 MiB / 4 MiB with PSE and without DEBUG_PAGEALLOC; 1 GiB with those and GB pages (CPU
and ``gbpages``); 4 KiB pieces at the ends of each range that are not aligned to the large
page (``split_mem_range``), and i386 always maps its first large page with 4 KiB pages.

The count is an upper bound that is exact for the table pages of large layouts (the
tests compare it with the pages an emulation takes, per paging mode, within 10 %).
:class:`emu.machine.phys.PhysMem` enforces the limit on every growth, so a layout the
estimate missed still stops at the limit with a :class:`MemoryLimitError`.
"""
from __future__ import annotations

import functools
import types
from dataclasses import dataclass
from typing import Iterable, List, Optional, Tuple

from emu.kernel.validate import SetupError, fmt_bytes
from emu.machine.phys import MemoryBudgetError

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
#: pfns per block of the store and bytes of one block (emu.machine.phys)
BLOCK_SHIFT = 16
BLOCK_BYTES = (1 << BLOCK_SHIFT) * 4
#: bytes of the store per frame: the frame and its pfn
FRAME_BYTES = PAGE_SIZE + 8
#: bytes of the table-page log per page (pfn, level, source, mapped, call), doubled for growth
LOG_BYTES = 2 * (8 + 1 + 1 + 1 + 4)
#: pages of slack: a mapping window's boundary inside a large page (real_end is page aligned),
#: 32-bit paging_init's pkmap table
SLACK_PAGES = 2
ISA_END = 0x100000


class MemoryLimitError(SetupError, MemoryBudgetError):
    """The layout's page tables would need more host memory than allowed."""


@functools.lru_cache(maxsize=1)
def available_memory() -> int:
    """MemAvailable of this machine (bytes), or 8 GiB when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) << 10
    except (OSError, ValueError, IndexError):
        pass
    return 8 << 30


try:
    import resource as _resource
except ImportError:             # not a Unix
    _resource = None            # type: ignore[assignment]

def address_space_room() -> Optional[int]:
    """Bytes this process may still map under its ``RLIMIT_AS``/``RLIMIT_DATA`` (``ulimit
    -v``/``-d``), or None when unlimited.  Read afresh every time: the process may have grown
    by gigabytes since the last emulation (a caller's arrays, another thread's result), and a
    stale figure would let through a layout that then fails in numpy instead of here."""
    if _resource is None:
        return None
    res = _resource
    limits = (res.getrlimit(res.RLIMIT_AS)[0], res.getrlimit(res.RLIMIT_DATA)[0])
    if limits[0] == res.RLIM_INFINITY and limits[1] == res.RLIM_INFINITY:
        return None
    room = None
    for soft, field in zip(limits, ("VmSize:", "VmData:")):
        if soft == res.RLIM_INFINITY:
            continue
        used = 0
        try:
            with open("/proc/self/status") as f:
                used = next((int(ln.split()[1]) << 10 for ln in f if ln.startswith(field)), 0)
        except (OSError, ValueError, IndexError):
            pass
        r = max(0, soft - used)
        room = r if room is None else min(room, r)
    return room


def default_limit() -> int:
    """The limit without ``--max-memory``: half of the memory available, and of what this
    process may still map under its resource limits (the checker and the rest need room
    too)."""
    limit = available_memory() // 2
    room = address_space_room()
    if room is not None:
        limit = min(limit, room // 2)
    return limit


def host_ceiling() -> int:
    """What this host can give at all: the memory available, and what this process may
    still map under its resource limits."""
    limit = available_memory()
    room = address_space_room()
    return limit if room is None else min(limit, room)


def effective_limit(max_memory: Optional[int]) -> Tuple[int, str]:
    """The limit a guard applies and how to name it: ``--max-memory`` (default
    :func:`default_limit`), never above what the host can give (:func:`host_ceiling`: a
    limit of 16 EiB must not let a layout run into the host's out-of-memory)."""
    if max_memory is None:
        return default_limit(), "--max-memory"
    ceiling = host_ceiling()
    if max_memory > ceiling:
        return ceiling, "what this host can give: MemAvailable and ulimit, whatever --max-memory says"
    return max_memory, "--max-memory"


@dataclass(frozen=True)
class Estimate:
    """What one emulation's physical store will hold, at most."""

    table_pages: int        # page-table pages (frames of the store)
    index_bytes: int        # the store's directory and blocks, the table-page log
    phys_limit: int         # bytes of physical address space the store covers

    @property
    def frame_bytes(self) -> int:
        return self.table_pages * FRAME_BYTES

    @property
    def store_bytes(self) -> int:
        """Bytes of host memory the store and its bookkeeping take."""
        return self.frame_bytes + self.index_bytes


def distinct_blocks(ranges: Iterable[Tuple[int, int]], shift: int) -> int:
    """The number of distinct ``2^shift``-aligned blocks that meet the union of ``ranges``."""
    n, last = 0, -1
    for s, e in sorted(ranges):
        if e <= s:
            continue
        b0, b1 = s >> shift, (e - 1) >> shift
        if b0 <= last:
            b0 = last + 1
        if b1 >= b0:
            n += b1 - b0 + 1
        if b1 > last:
            last = b1
    return n


def merge(ranges: Iterable[Tuple[int, int]]) -> List[Tuple[int, int]]:
    starts: List[int] = []
    ends: List[int] = []
    for s, e in sorted(r for r in ranges if r[1] > r[0]):
        if starts and s <= ends[-1]:
            if e > ends[-1]:
                ends[-1] = e
        else:
            starts.append(s)
            ends.append(e)
    return list(zip(starts, ends))


def clip(ranges: Iterable[Tuple[int, int]], lo: int, hi: int) -> List[Tuple[int, int]]:
    out = []
    for s, e in ranges:
        if s < lo:
            s = lo
        if e > hi:
            e = hi
        if e > s:
            out.append((s, e))
    return out


def unaligned_ends(ranges: Iterable[Tuple[int, int]], size: int) -> List[Tuple[int, int]]:
    """The parts of each range that a ``size`` page cannot map: ``[s, round_up(s))`` and
    ``[round_down(e), e)`` (``split_mem_range``'s head and tail pieces)."""
    out = []
    for s, e in ranges:
        a = -(-s // size) * size
        if a > e:
            a = e
        b = e // size * size
        if b < a:
            b = a
        if a > s:
            out.append((s, a))
        if e > b:
            out.append((b, e))
    return out


def memory_ranges(table, trim: bool, end_32bit: bool = False) -> List[Tuple[int, int]]:
    """memblock memory as ``memblock_x86_fill`` makes it: RAM and RESERVED_KERN entries
    (i386 non-PAE: only those ending within 32 bits), trimmed to page boundaries
    (``memblock_trim_memory``) when the profile does."""
    out = []
    for e in table.entries:
        if e.type in (1, 128) and e.size > 0:
            s, t = e.addr, e.addr + e.size
            if end_32bit and t > 0xFFFFFFFF:
                continue
            if trim:
                s, t = -(-s // PAGE_SIZE) * PAGE_SIZE, t // PAGE_SIZE * PAGE_SIZE
            if t > s:
                out.append((s, t))
    return merge(out)


def mapping_calls(profile, table, lo_end: int, end: int, is_64bit: bool,
                  end_32bit: bool = False) -> List[Tuple[int, int]]:
    """The ranges ``init_memory_mapping`` is called for (before the mapping windows cut
    them): 3.9+ the ISA range, then every memblock memory range in ``[1 MiB, end)``;
    before 3.9 ``[0, max_low_pfn)`` and (x86-64) ``[4 GiB, max_pfn)``, holes included."""
    if profile.scheme == "early_table_space":
        r = [(0, lo_end)]
        if is_64bit and end > 1 << 32:
            r.append((1 << 32, end))
        return r
    return [(0, ISA_END)] + clip(memory_ranges(table, profile.memblock_trim, end_32bit), ISA_END, end)


def _kview(params, profile):
    """The few fields the i386 layout helpers read from a kernel, before there is one."""
    from emu.kernel.state import paging_mode
    return types.SimpleNamespace(params=params, profile=profile, mode=paging_mode(params),
                                 page_offset=params.page_offset_32, assumptions=[])


def table_pages_64(profile, params, table, max_pfn: int, max_low_pfn: int) -> int:
    """Upper bound of the page-table pages of an x86-64 emulation."""
    end = max_pfn << PAGE_SHIFT
    mapped = mapping_calls(profile, table, max_low_pfn << PAGE_SHIFT, end, True)
    cpu = params.cpu
    large = cpu.pse and not params.debug_pagealloc
    giant = large and cpu.gbpages and params.gbpages is not False
    small = unaligned_ends(mapped, 1 << 21) if large else mapped
    below_1g = unaligned_ends(mapped, 1 << 30) if giant else mapped
    pages = distinct_blocks(small, 21) + distinct_blocks(below_1g, 30) + distinct_blocks(mapped, 39)
    if params.la57:
        pages += distinct_blocks(mapped, 48)
    pages += 1                                               # the PGD (init_top_pgt)
    # the image's half (head_64.S): level3/level2_kernel_pgt, level2_fixmap_pgt, the fixmap's
    # level1 pages, bm_pte, and level4_kernel_pgt with 5 levels
    pages += 4 + profile.fixmap_pmd_num + (1 if params.la57 else 0)
    if profile.early_direct_map == "ident_1g":
        pages += 2                                           # level3/level2_ident_pgt
    return pages + SLACK_PAGES


def table_pages_32(profile, params, table, max_pfn: int, brk_base: int) -> int:
    """Upper bound of the page-table pages of an i386 emulation: head_32's and the image's
    static tables, the direct map of lowmem, the fixmap's tables."""
    from emu.kernel.arch.x86.kernel import head_32
    from emu.kernel.arch.x86.mm import init_32 as mm_init_32
    kv = _kview(params, profile)
    pae = params.pae
    po = params.page_offset_32
    pmd_shift = 21 if pae else 22
    pmd = 1 << pmd_shift
    low_end = min(max_pfn << PAGE_SHIFT, mm_init_32.maxmem(kv), (1 << 32) - po)
    mapped = mapping_calls(profile, table, low_end, low_end, False, end_32bit=not pae)
    large = params.cpu.pse and not params.debug_pagealloc
    small = (unaligned_ends(mapped, pmd) + [(0, min(pmd, low_end))]) if large else mapped
    # head_32: whole page tables up to _end + MAPPING_BEYOND_END (the estimate assumes the
    # default _end when the build's is not given: the BRK buffer's end + 0x1f0000)
    image_end = params.image_end
    if image_end is None:
        image_end = brk_base + profile.pgt_buf_count(False, False) * PAGE_SIZE + 0x1F0000
    mapped_end = head_32.initial_mapping_end(pae, po, image_end)
    head = head_32.head_tables(pae, mapped_end)
    beyond_head = [(max(s, mapped_end), e) for s, e in small if e > mapped_end]
    pages = head + distinct_blocks(beyond_head, pmd_shift)
    # swapper_pg_dir, initial_pg_pmd (PAE: one page per GiB of the kernel half), the fixmap's
    # static tables
    kpmds = (((-po) >> 30) & 3 or 4) if pae else 0
    fixmap = mm_init_32.fixmap_static_tables(kv)
    pages += 1 + kpmds + len({v for v, _, _ in fixmap})
    # the fixmap's page tables (early_ioremap_page_table_range_init) and kmap copies
    start = mm_init_32.fixmap_start(kv)
    pages += ((1 << 32) - start + pmd - 1) // pmd
    if params.kmap_range is not None:
        lo, hi = params.kmap_range
        pages += (hi >> pmd_shift) - (lo >> pmd_shift) + 1
    return pages + SLACK_PAGES


def estimate(profile, params, table, max_pfn: int, max_low_pfn: int, brk_base: int, phys_limit: int) -> Estimate:
    """The store an emulation of ``table`` (the e820 table after the command line's edits)
    needs, with the BRK page-table buffer at ``brk_base``, for a store covering
    ``[0, phys_limit)``."""
    if params.arch == "i386":
        pages = table_pages_32(profile, params, table, max_pfn, brk_base)
    else:
        pages = table_pages_64(profile, params, table, max_pfn, max_low_pfn)
    ndir = ((phys_limit - 1) >> (PAGE_SHIFT + BLOCK_SHIFT)) + 1
    # blocks: the image's and BRK's, and those the memblock pages (allocated in runs going
    # down from the top of what is mapped) fall into; the array grows by doubling
    image = {params.kernel_start >> (PAGE_SHIFT + BLOCK_SHIFT), brk_base >> (PAGE_SHIFT + BLOCK_SHIFT)}
    nblocks = min(ndir, len(image) + 1 + (pages >> BLOCK_SHIFT))
    cap = 2
    while cap < nblocks:
        cap *= 2
    index = ndir * 4 + cap * BLOCK_BYTES + pages * LOG_BYTES
    return Estimate(pages, index, phys_limit)


#: the pure-Python loops write about half a million entries a second: more table pages than
#: this (2^23 entries, about 15 s) is refused with them
PURE_MAX_TABLE_PAGES = 1 << 14


def guard(profile, params, table, max_pfn: int, max_low_pfn: int, brk_base: int, phys_limit: int,
          max_memory: Optional[int] = None, engine: str = "cython",
          host: Optional[Tuple[int, str]] = None) -> Estimate:
    """The estimate, or :class:`MemoryLimitError` when it exceeds ``max_memory`` (default:
    half of the memory available) -- or, with the pure-Python engine, when its tables would
    take it more than about 15 s (:data:`PURE_MAX_TABLE_PAGES`).  ``host``: what
    :func:`effective_limit` says for ``max_memory``, when the caller has it already."""
    est = estimate(profile, params, table, max_pfn, max_low_pfn, brk_base, phys_limit)
    if engine == "python" and est.table_pages > PURE_MAX_TABLE_PAGES:
        raise MemoryLimitError(
            f"layout needs up to {est.table_pages} page-table pages, over the {PURE_MAX_TABLE_PAGES} the "
            f"pure-Python engine writes in about 15 s (--pure, EMU_PURE=1); use the compiled engine")
    limit, named = effective_limit(max_memory) if host is None else host
    if est.store_bytes > limit:
        raise MemoryLimitError(
            f"layout needs up to {fmt_bytes(est.store_bytes)} of page tables and their index "
            f"({est.table_pages} pages), over the limit of {fmt_bytes(limit)} ({named})")
    return est


#: host bytes one page-table entry takes at the peak of ``emu dump --json`` (its dict, the
#: document's, the text; measured 1150 on 1 M entries of a 4 GiB 4 KiB-page map)
JSON_ENTRY_BYTES = 1280


def guard_entries(entries: int, max_memory: Optional[int] = None, what: str = "emu dump --json") -> int:
    """The host memory a listing of ``entries`` page-table entries takes, or
    :class:`MemoryLimitError` when it exceeds ``max_memory`` (default: :func:`default_limit`)."""
    need = entries * JSON_ENTRY_BYTES
    limit, named = effective_limit(max_memory)
    if need > limit:
        raise MemoryLimitError(
            f"{what} of {entries} page-table entries needs about {fmt_bytes(need)}, over the limit "
            f"of {fmt_bytes(limit)} ({named}); --format ptdump or --format raw DIR write any size")
    return need


__all__ = ["Estimate", "MemoryLimitError", "JSON_ENTRY_BYTES", "guard_entries", "available_memory", "default_limit",
           "host_ceiling", "effective_limit",
           "distinct_blocks", "estimate", "guard", "table_pages_32", "table_pages_64"]
