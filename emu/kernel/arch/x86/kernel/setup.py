"""arch/x86/kernel/setup.c: the part of ``setup_arch`` that prepares ``init_mem_mapping``.

In the kernel's order (v3.9–6.x, x86-64): the e820 edits of the command
line and ``trim_bios_range``; ``max_pfn``/``max_low_pfn``; the memblock
reservations made in place (kernel image, initrd, user reservations);
``early_alloc_pgt_buf`` + ``reserve_brk``; ``memblock_x86_fill``
(``e820__memblock_setup``); ``trim_low_memory_range``; then
``init_mem_mapping``.  Nothing before ``init_mem_mapping`` allocates above
1 MiB on a native boot (``memblock.current_limit`` is ``ISA_END_ADDRESS``), so
only in-place reservations shape the top-down search.
"""
from __future__ import annotations

import dataclasses
import operator
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from emu.inputs.e820 import E820Map
from emu.kernel.arch.x86.kernel import head64
from emu.kernel.arch.x86.kernel.e820 import E820_RAM, E820_RESERVED, E820_RESERVED_KERN, E820Table, table_of
from emu.kernel.arch.x86.mm import init as mm_init
from emu.kernel.arch.x86.mm import init_32 as mm_init_32
from emu.kernel.arch.x86.mm import init_64 as mm_init_64
from emu.kernel.arch.x86.pgtable_types import KERNPG_TABLE, PAGE_KERNEL_LARGE_EXEC, PAGE_SHIFT, PAGE_SIZE
from emu.kernel.mm.memblock import round_up
from emu.kernel.params import Assumption, BootParams, assumption, copy_params, given, resolve_params
from emu.kernel.profiles import Profile
from emu.errors import EmuError
from emu.kernel import estimate
from emu.kernel.estimate import MemoryLimitError, available_memory  # noqa: F401  (re-exported)
from emu.kernel.validate import (  # noqa: F401  (check_boot_params re-exported)
    SetupError,
    check_boot_params,
    check_inputs,
    check_resolved_params,
    parse_memmap_one,
    parse_size_text,
)
from emu.kernel.state import ArchMM, Kernel
from emu.machine.abi import SRC_IMAGE
from emu.machine.engine import Engine, select

#: default physical address of the BRK page-table buffer, relative to the kernel start
#: (kernels older than the Debian builds below: a 32 MiB image with the buffer near its end)
DEFAULT_BRK_OFFSET = 0x1FE0000
#: x86-64 image layouts of the distribution kernels people run, the defaults for a release at
#: or after each: (release, init_top_pgt - _text, __brk_early_pgt_alloc - _text, the build).
#: Source: kallsyms of Debian's amd64 images (research/kernel_x86_64_more.md section 4);
#: the page-table buffer is 0x20000 into the BRK (after __brk_dmi_alloc)
TYPICAL_X86_64_LAYOUTS = (
    ((5, 10), 0x160A000, 0x3020000, "Debian 5.10.262 amd64"),
    ((6, 1), 0x1A10000, 0x3420000, "Debian 6.1.192 amd64"),
    ((6, 12), 0x1C22000, 0x2C20000, "Debian 6.12.118 amd64"),
)


def typical_x86_64_layout(profile: Profile) -> Tuple[int, int, str]:
    """(init_top_pgt offset, BRK page-table buffer offset, whose layout) for ``profile``:
    the newest :data:`TYPICAL_X86_64_LAYOUTS` entry at or before its release, else a 32 MiB
    image with init_top_pgt 10 MiB in."""
    got = _LAYOUTS.get(id(profile))
    if got is not None and got[0] is profile:       # profiles are frozen: once per profile
        return got[1]
    best = (0xA00000, DEFAULT_BRK_OFFSET, "a 32 MiB image")
    for rel, pgd, brk, who in TYPICAL_X86_64_LAYOUTS:
        if tuple(profile.version[:2]) >= rel and profile.by_version:
            best = (pgd, brk, who)
    if len(_LAYOUTS) < 1024:
        _LAYOUTS[id(profile)] = (profile, best)
    return best


#: typical_x86_64_layout's answers by profile identity (profile, answer): hashing a profile
#: costs more than the answer
_LAYOUTS: dict = {}
#: i386: BRK page-table buffer relative to the kernel start (a distro 3.13 PAE kernel: 0x1b88000)
DEFAULT_BRK_OFFSET_32 = 0xB88000
#: bytes from the end of the BRK page-table buffer to ``_end`` when no System.map gives ``_end``
#: (the rest of the BRK section and what follows it), x86-64; read by ``e820_add_kernel_range``
#: and by memblock's bottom-up search (``kernel_end``), and said as an assumption where it matters
BRK_TAIL = 0x100000
#: the same on i386, where head_32 maps up to ``_end`` + MAPPING_BEYOND_END (and says it always)
IMAGE_TAIL_32 = 0x1F0000
#: default low reservation (CONFIG_X86_RESERVE_LOW, KiB)
RESERVE_LOW = 64 << 10
BIOS_BEGIN = 0xA0000
BIOS_END = 0x100000


def default_image_end(profile: Profile, params: BootParams, brk_base: int) -> int:
    """``_end`` (its physical address) when no System.map gives it: ``BRK_TAIL`` (x86-64) or
    ``IMAGE_TAIL_32`` (i386) past the end of the BRK page-table buffer at ``brk_base`` (the
    buffer's pages as ``early_alloc_pgt_buf`` takes them).  One value for every reader of
    ``_end``: ``e820_add_kernel_range``, memblock's ``kernel_end``, head_32's mapping."""
    if params.arch == "i386":
        return brk_base + profile.pgt_buf_count(False, False) * PAGE_SIZE + IMAGE_TAIL_32
    randomize = profile.default_randomize_memory if params.randomize_memory is None else params.randomize_memory
    l5conf = profile.default_5level_config if params.x86_5level_config is None else params.x86_5level_config
    return brk_base + profile.pgt_buf_count(bool(randomize), bool(l5conf)) * PAGE_SIZE + BRK_TAIL


def parse_memparse(text: str) -> int:
    """A size or address as the kernel's ``memparse`` reads it (all of ``text``; not wrapped,
    at most 2^64-1): :func:`emu.kernel.validate.parse_size_text` with :class:`SetupError`."""
    try:
        return parse_size_text(text)
    except SetupError:
        raise
    except EmuError as e:
        raise SetupError(str(e)) from None


def apply_memmap(e820: E820Table, opts: Sequence[str], mem_limit: Optional[int]) -> E820Table:
    """``mem=`` and ``memmap=`` (``parse_memopt``/``parse_memmap_one``) applied to e820, then
    ``e820__finish_early_params`` (``finish_e820_parsing`` before 4.14): a user-defined map
    that ``e820__update_table`` cannot sanitise (fewer than two entries, an entry wrapping
    past 2^64) is the kernel's ``early_panic("Invalid user supplied memory map")`` before
    ``init_mem_mapping``, a :class:`SetupError` here (seen on real 5.10, 6.1 and 6.12 kernels
    with a one-entry ``memmap=exactmap``)."""
    t = e820
    if mem_limit is not None:
        t.remove_range(mem_limit, (1 << 64) - 1 - mem_limit, E820_RAM, True)
    for opt in opts:
        kind, size, start, typ = parse_memmap_one(opt)
        if kind == "exactmap":
            t = E820Table([])
        elif kind == "add":
            if typ != E820_RAM:
                t.remove_range(start, size, 0, False)
            t.add_region(start, size, typ)
        else:
            t.remove_range(size, (1 << 64) - 1 - size, E820_RAM, True)
    out, ok = t.sanitize_with_status()
    if not ok:
        live = sum(1 for e in t.entries if e.size)
        raise SetupError(f"the kernel panics before init_mem_mapping: \"Invalid user supplied memory map\" "
                         f"(mem=/memmap= leave {live} e820 entr{'y' if live == 1 else 'ies'}; "
                         f"e820__update_table needs two, none wrapping past 2^64)")
    return out


def e820_add_kernel_range(e820: E820Table, profile: Profile, params: BootParams, log: list,
                          assumptions: Optional[List[Assumption]] = None) -> E820Table:
    """``e820_add_kernel_range`` (3.9+): if the kernel image ``[_text, _end)`` is not all RAM,
    complain and make it RAM (remove the range, add it back as RAM).  ``params`` resolved;
    ``_end`` is ``params.image_end`` (a System.map's ``_end``), else :func:`default_image_end`,
    which is then said in ``assumptions`` when the edit is made."""
    brk_base = given(params.brk_base, "brk_base")
    start = min(given(params.kernel_start, "kernel_start"), brk_base)
    # __pa_symbol(_end)
    end = params.image_end if params.image_end is not None else default_image_end(profile, params, brk_base)
    if _all_ram(e820, start, end):
        return e820
    log.append(".text .data .bss are not marked as E820_TYPE_RAM!")
    if params.image_end is None and assumptions is not None:
        assumptions.append(Assumption("image_end", "%#x" % end, "_end (no System.map): past the BRK page-table "
                                      "buffer; e820_add_kernel_range made [_text, _end) RAM"))
    e820.remove_range(start, end - start, 0, False)
    e820.add_region(start, end - start, E820_RAM)
    return e820.sanitize()


_ADDR = operator.attrgetter("addr")


def _all_ram(e820: E820Table, start: int, end: int) -> bool:
    cur = start
    for e in sorted([x for x in e820.entries if x.type == E820_RAM], key=_ADDR):
        if e.addr <= cur < e.end:
            cur = e.end
        if cur >= end:
            return True
    return cur >= end


def trim_bios_range(e820: E820Table) -> E820Table:
    """``trim_bios_range`` (3.9+): [0, 4K) RAM becomes reserved; RAM in [640K, 1M) is removed."""
    e820.update_range(0, PAGE_SIZE, E820_RAM, E820_RESERVED)
    e820.remove_range(BIOS_BEGIN, BIOS_END - BIOS_BEGIN, E820_RAM, True)
    return e820.sanitize()


def memblock_x86_fill(k: Kernel) -> None:
    """``memblock_x86_fill`` / ``e820__memblock_setup``: RAM and RESERVED_KERN entries
    become memblock memory, then ``memblock_trim_memory(PAGE_SIZE)``."""
    for e in k.e820.entries:
        if e.type in (E820_RAM, E820_RESERVED_KERN):
            k.memblock.add(e.addr, e.size)
    if k.profile.memblock_trim:
        k.memblock.trim_memory(PAGE_SIZE)


#: the toolstack's slack above a PV guest's memory (xend: maxmem + 8 MiB)
XEN_DEFAULT_EXTRA = 8 << 20


def xen_add_extra_mem(k: Kernel, extra: int) -> None:
    """``xen_memory_setup`` + ``xen_add_extra_mem`` for a PV domU (arch/x86/xen/setup.c, 3.12-3.15):
    the e820 RAM above the guest's ``nr_pages`` stays RAM but is reserved in memblock
    (the balloon driver owns it), so it is mapped last and never holds page tables."""
    top = max((e.end for e in k.e820.entries if e.type == E820_RAM), default=0)
    if extra <= 0 or extra >= top:
        raise SetupError(f"Xen extra memory {extra:#x} does not fit below the top of RAM {top:#x}")
    k.memblock.reserve(top - extra, extra)


#: what each build links into init_mem_mapping (CONFIG_X86_64 / CONFIG_X86_32)
ARCH_MM_64 = ArchMM(mm_init_64.map_pieces)
ARCH_MM_32 = ArchMM(mm_init_32.map_pieces, mm_init_32.early_ioremap_page_table_range_init)


def resolve_brk(profile: Profile, params: BootParams, assumptions: List[Assumption]) -> BootParams:
    """Where the BRK page-table buffer lies, when nobody said: a distribution build's layout of
    that release (x86-64: :func:`typical_x86_64_layout`; i386 PAE: a distro 3.13 build)."""
    if params.brk_base is not None:
        return params
    if params.brk_end is not None:
        # early_alloc_pgt_buf's extend_brk is the last BRK user before reserve_brk
        is64 = params.arch == "x86_64"
        pages = profile.pgt_buf_count(bool(params.randomize_memory) and is64, bool(params.x86_5level_config) and is64)
        end = round_up(params.brk_end, PAGE_SIZE)   # 2.6.3x early_res BRK ends mid-page
        return copy_params(params, brk_base=end - (pages << PAGE_SHIFT))
    if params.arch == "i386":
        off, who = DEFAULT_BRK_OFFSET_32, "a distribution 3.13 PAE build"
    else:
        _, off, who = typical_x86_64_layout(profile)
    brk = given(params.kernel_start, "kernel_start") + off
    assumptions.append(assumption("brk_base", "%#x" % brk, "kernel_start + %#x, the layout of %s; "
                                  "no BRK line, no memblock=debug reserve_brk line, no --system-map"
                                  % (off, who)))
    return copy_params(params, brk_base=brk)


#: the smallest E820_MAX_ENTRIES any build has (E820_MAX_ENTRIES_ZEROPAGE, no NUMA nodes)
E820_MAX_ENTRIES_MIN = 128


def setup_memory_map(profile: Profile, params: BootParams, e820: E820Map, log_edits: Optional[List],
                     early_log: List[str], assumptions: Optional[List[Assumption]] = None) -> E820Table:
    """``e820__memory_setup`` and the edits ``setup_arch`` makes before the mapping:
    the command line's ``mem=``/``memmap=`` (``parse_early_param``), ``e820_add_kernel_range``,
    ``trim_bios_range`` -- or, for a boot log, the edits the log shows.  The table holds
    ``params.e820_max_entries`` entries (``E820_MAX_ENTRIES``; None: unbounded): an edit
    that needs one more is ignored, as ``__e820__range_add`` does ("too many entries")."""
    table = table_of(e820.entries, params.e820_max_entries).sanitize()
    if log_edits is not None:
        for ed in log_edits:
            ed.apply(table)
        table = table.sanitize()
    else:
        if params.mem_limit is not None or params.memmap:
            table = apply_memmap(table, params.memmap, params.mem_limit)
        if profile.scheme == "brk_top_down":
            table = e820_add_kernel_range(table, profile, params, early_log, assumptions)
        if profile.trim_bios_first_page:
            table = trim_bios_range(table)
    if not any(e.type in (E820_RAM, E820_RESERVED_KERN) for e in table.entries):
        raise SetupError("e820 map has no usable RAM")
    return table


def end_pfns(profile: Profile, params: BootParams, table: E820Table) -> tuple:
    """``max_pfn = e820__end_of_ram_pfn()`` (capped at MAX_ARCH_PFN) and, with RAM above
    4 GiB, ``max_low_pfn = e820__end_of_low_ram_pfn()``."""
    if params.arch == "i386":
        max_arch_pfn = 1 << ((36 if params.pae else 32) - PAGE_SHIFT)  # MAX_ARCH_PFN (sparsemem.h)
    else:
        bits = profile.max_physmem_bits_l5 if params.la57 else profile.max_physmem_bits
        max_arch_pfn = 1 << (bits - PAGE_SHIFT)
    max_pfn = table.end_of_ram_pfn(max_arch_pfn, profile.end_pfn_types)
    if max_pfn == 0:
        raise SetupError("e820 map has no usable RAM")
    max_low_pfn = table.end_of_low_ram_pfn(types=profile.end_pfn_types) if max_pfn > (1 << (32 - PAGE_SHIFT)) else max_pfn
    return max_pfn, max_low_pfn


def setup_arch(profile: Profile, params: BootParams, e820: E820Map,
               log_edits: Optional[List] = None, max_memory: Optional[int] = None,
               engine: Union[None, str, Engine] = None) -> Kernel:
    """Build the state the kernel has when ``setup_arch`` calls ``init_mem_mapping``.

    ``params`` may leave inputs out (``None``): they are set to a typical build's values
    and each is recorded in ``Kernel.assumptions``.  ``log_edits`` are the ``e820:
    update``/``remove`` edits of a boot log; they replace the emulator's own
    ``mem=``/``memmap=``/``trim_bios_range`` edits (the log already shows them).
    """
    checked = check_inputs(profile, params, e820, max_memory)       # before anything reads them
    params, assumptions = resolve_params(profile, checked)
    # the fields the resolution filled in, checked as the inputs were, and every limit again
    params = check_resolved_params(resolve_brk(profile, params, assumptions), checked, profile)
    early_log: List[str] = []   # lines printed before the state object exists
    table = setup_memory_map(profile, params, e820, log_edits, early_log, assumptions)
    if params.e820_max_entries is None and len(table.entries) >= E820_MAX_ENTRIES_MIN:
        # a table this long may have met the kernel's limit, which the .config sets
        assumptions.append(Assumption("e820_max_entries", "unbounded",
                                      "the e820 table has %d entries and no --config gives E820_MAX_ENTRIES "
                                      "(128 + 3 * MAX_NUMNODES): edits beyond it would be ignored"
                                      % len(table.entries)))
    max_pfn, max_low_pfn = end_pfns(profile, params, table)
    i386 = params.arch == "i386"
    brk_base = given(params.brk_base, "brk_base")
    kernel_start = min(given(params.kernel_start, "kernel_start"), brk_base)

    # the physical space the store must cover: RAM up to max_pfn, the kernel image, BRK
    # (and every page of the image a System.map or --param may place elsewhere: the root table,
    # the static tables, head_32's BRK start)
    image_top = brk_base
    for a in (params.kernel_start, params.swapper_pg_dir_addr, params.head_brk_base, params.initial_pg_pmd_addr,
              params.initial_pg_fixmap_addr, params.bm_pte_addr, params.image_end, params.init_end,
              *params.image_tables.values()):
        if a is not None and a > image_top:
            image_top = a
    limit = round_up(max(max_pfn << PAGE_SHIFT, image_top + (64 << 20)), 1 << 30)
    eng = select(engine)
    host = estimate.effective_limit(max_memory)      # once: the guard's limit is the store's budget
    est = estimate.guard(profile, params, table, max_pfn, max_low_pfn, brk_base, limit, max_memory, eng.name,
                         host=host)
    # the frame pool sized by the estimate from the start (within the budget: the guard's
    # estimate counts the pool, the store's index and more)
    k = Kernel(profile, params, table, limit, eng, ARCH_MM_32 if i386 else ARCH_MM_64, est.table_pages)
    k.phys.set_budget(host[0])
    k.phys.reserve_frames(est.table_pages)
    k.assumptions.extend(assumptions)
    for line in early_log:
        k.log.printk("warn", line)
    k.max_pfn, k.max_low_pfn = max_pfn, max_low_pfn
    if i386:
        # init_gbpages is 64-bit only: an i386 kernel never maps with 1G pages
        k.params = params = dataclasses.replace(params, gbpages=False,
                                                cpu=dataclasses.replace(k.cpu, gbpages=False))
        k.page_offset = given(params.page_offset_32, "page_offset_32")
        k.max_physmem_bits = 36 if params.pae else 32
        k.max_low_pfn, k.max_pfn = mm_init_32.find_low_pfn_range(k, max_pfn)
        max_pfn = k.max_pfn
    k.refresh_e820_ranges()
    reserve_early(k, kernel_start, brk_base)
    if i386 and k.max_low_pfn << PAGE_SHIFT < k.pgt_buf_top << PAGE_SHIFT:
        # the kernel reaches its own image and first page tables through lowmem; a MAXMEM
        # (vmalloc=, the build's fixmap) or RAM ending below them is a kernel that cannot boot
        raise SetupError(f"lowmem ends at {k.max_low_pfn << PAGE_SHIFT:#x} (MAXMEM {mm_init_32.maxmem(k):#x}"
                         f"{'' if params.lowmem_limit is None else ', the lowmem_limit input'}), below the end "
                         f"of the kernel image and its BRK at {k.pgt_buf_top << PAGE_SHIFT:#x}: the kernel "
                         f"could not map itself")
    memblock_setup(k, max_memory)
    k.image = (kernel_start, k.pgt_buf_top << PAGE_SHIFT)
    if i386:
        setup_i386_tables(k, kernel_start, brk_base)
    else:
        setup_x86_64_tables(k, kernel_start, brk_base)
    return k


def reserve_early(k: Kernel, kernel_start: int, brk_base: int) -> None:
    """The memblock reservations made in place before ``init_mem_mapping``: the kernel image
    (``_text`` .. ``__bss_stop``), ``early_alloc_pgt_buf`` + ``reserve_brk``, the initrd
    (``early_reserve_initrd``), the other reservations the inputs list, Xen's extra memory."""
    params, mb = k.params, k.memblock
    mm_init.early_alloc_pgt_buf(k, brk_base)
    brk_end = k.pgt_buf_top << PAGE_SHIFT
    # __pa_symbol(_end): memblock's bottom-up searches start there (3.13-5.10) and
    # memory_map_bottom_up splits at it
    if params.image_end is not None and params.image_end < brk_end:
        raise SetupError(f"kernel image end (_end) {params.image_end:#x} lies below the end of the BRK "
                         f"page-table buffer {brk_end:#x}")
    k.kernel_end = params.image_end if params.image_end is not None else default_image_end(k.profile, params,
                                                                                           brk_base)
    mb.reserve(kernel_start, brk_end - kernel_start)  # _text .. __bss_stop, then reserve_brk()
    if params.initrd is not None:
        s, e = params.initrd
        mb.reserve(s, round_up(e, PAGE_SIZE) - s)
    for s, e in params.reserves:
        mb.reserve(s, e - s)
    if params.xen_extra_mem:
        xen_add_extra_mem(k, params.xen_extra_mem)


def memblock_setup(k: Kernel, max_memory: Optional[int]) -> None:
    """``e820__memblock_setup`` (``memblock_x86_fill``), ``trim_low_memory_range`` and
    memblock's direction.  (emu's memory guard ran before the store was made:
    :func:`emu.kernel.estimate.guard`.)"""
    params, profile, mb = k.params, k.profile, k.memblock
    if k.mode.is_64bit:
        memblock_x86_fill(k)
    else:
        mm_init_32.memblock_x86_fill_32(k)
    if profile.table_space_search != "e820_bottom_up":
        mb.reserve(0, RESERVE_LOW)  # trim_low_memory_range (2.6.x: low memory was an e820 edit)
    mb.kernel_end = k.kernel_end
    mb.bottom_up = bool(params.movable_node) and profile.bottom_up_supported
    if mb.bottom_up and params.image_end is None and k.mode.is_64bit:
        # (i386 says its image_end default in setup_i386_tables, for head_32's mapping)
        k.assumptions.append(Assumption("image_end", "%#x" % k.kernel_end,
                                        "_end (no System.map): the BRK page-table buffer's end + 1 MiB; "
                                        "bottom-up mapping splits at it and memblock's bottom-up search "
                                        "starts there (3.13-5.10)"))


def setup_x86_64_tables(k: Kernel, kernel_start: int, brk_base: int) -> None:
    """The root table (``init_top_pgt``, a page of the kernel image's data) and, before
    3.9, head_64's static identity tables in the direct-map slot and setup_arch's
    ``initial memory mapped`` line."""
    p, profile, phys = k.params, k.profile, k.phys
    # the image's pages depend only on these values (the profile by identity: profiles are
    # frozen): on a fresh store, the same pages come out with the same contents, so a second
    # emulation with them copies the first one's pages (_IMAGES) instead of writing them again
    key = (id(profile), kernel_start, brk_base, k.pgt_buf_start, k.pgt_buf_top, k.paging_levels, k.page_offset,
           p.swapper_pg_dir_addr, p.kernel_start, p.kernel_link_start, p.bm_pte_slot, p.x86_5level_config,
           tuple(sorted(p.image_tables.items())) if p.image_tables else ())
    got = _IMAGES.get(key) if phys.nframes == 0 else None
    if got is not None and got[0] is profile:
        _, k.pgd_pfn, made, image, k.image_tables, k.phys_base, pfns, rows = got
        k.image_tables = list(k.image_tables)
        k.assumptions.extend(made)
        for pfn in pfns:
            phys.clear_page(pfn)            # the same slots, in the same order
        phys.frames[:len(pfns)] = rows
    else:
        fresh, n_assumed = phys.nframes == 0, len(k.assumptions)
        image = _x86_64_image(k, kernel_start, brk_base)
        if fresh and len(_IMAGES) < 256:
            n = phys.nframes
            _IMAGES[key] = (profile, k.pgd_pfn, tuple(k.assumptions[n_assumed:]), tuple(image), tuple(k.image_tables),
                            k.phys_base, phys.frame_pfn[:n].tolist(), phys.frames[:n].copy())
    k.max_pfn_mapped = profile.early_max_pfn_mapped_64
    printk_initial_memory_mapped(k, profile.log_initial_mapped_64)
    k.table_pages.append_rows([q for q, _ in image], [lv for _, lv in image], [SRC_IMAGE] * len(image), [], -1)


#: setup_x86_64_tables' pages by the values they depend on: (profile, pgd_pfn, assumptions,
#: (pfn, level) of the root and identity tables, image_tables, phys_base, the pfns in the order
#: they were backed, their contents)
_IMAGES: dict = {}


def _x86_64_image(k: Kernel, kernel_start: int, brk_base: int) -> List[Tuple[int, int]]:
    """:func:`setup_x86_64_tables`' pages: ``init_top_pgt``, head_64's identity tables before
    3.9, ``x86_64_start_kernel``'s; returns (pfn, level) of the first two."""
    p, profile = k.params, k.profile
    if p.swapper_pg_dir_addr is not None:
        k.pgd_pfn = p.swapper_pg_dir_addr >> PAGE_SHIFT
    else:
        off, _, who = typical_x86_64_layout(profile)
        k.pgd_pfn = ((kernel_start + off) >> PAGE_SHIFT if kernel_start + off + 0x10000 <= brk_base
                     else k.pgt_buf_start - 16)
        k.assumptions.append(assumption("swapper_pg_dir_addr", "%#x" % (k.pgd_pfn << PAGE_SHIFT),
                                        "init_top_pgt %#x into the image, the layout of %s; no --system-map"
                                        % (off, who)))
    k.phys.clear_page(k.pgd_pfn)
    image = [(k.pgd_pfn, k.paging_levels)]
    if profile.early_direct_map == "ident_1g":
        image += head64_ident_tables(k)
    # the image's half (PGD[511]): unless the System.map says, its tables follow init_top_pgt
    # (2 pages with PTI's user half), level3_ident_pgt and level2_ident_pgt, as head_64.S lays
    # them out (Debian's 5.10-6.12 images)
    first = k.pgd_pfn + 4 if profile.early_direct_map != "ident_1g" else max(q for q, _ in image) + 2
    k.image_tables = head64.x86_64_start_kernel(k, first)
    return image


def printk_initial_memory_mapped(k: Kernel, level: str) -> None:
    """``setup_arch``'s ``printk(KERN_DEBUG "initial memory mapped: [mem 0x00000000-%#010lx]\n",
    (max_pfn_mapped<<PAGE_SHIFT) - 1)`` (3.5+; before: ``"initial memory mapped : 0 - %08lx\n"``
    with the end); arch/x86/kernel/setup.c.  x86-64 prints it up to 3.8 (8170e6bed465 made it
    32-bit only), i386 up to 4.19."""
    end = k.max_pfn_mapped << PAGE_SHIFT
    if k.profile.log_style == "hex":
        line = "initial memory mapped : 0 - %08x" % end
    else:
        line = "initial memory mapped: [mem 0x00000000-%#010x]" % (end - 1)
    k.log.printk(level, line)


def setup_i386_tables(k: Kernel, kernel_start: int, brk_base: int) -> None:
    """i386: head_32's initial tables in BRK from ``__brk_base`` (``head_brk_base``; default
    just below the page-table buffer), ``swapper_pg_dir`` (+ PAE ``initial_pg_pmd``, the
    static fixmap page tables ``initial_pg_fixmap`` and ``bm_pte``) in the kernel image (at
    the ``*_addr`` inputs, else from ``kernel_start + 1 MiB`` on), ``max_pfn_mapped`` from
    head_32, and setup_arch's ``initial memory mapped`` line (arch/x86/kernel/head_32.S,
    head32.c, setup.c @ 3.6-6.1; see :mod:`emu.kernel.arch.x86.kernel.head_32`)."""
    from emu.kernel.arch.x86.kernel import head_32
    p = k.params
    pae = k.mode.entry_bytes == 8
    image_end = p.image_end if p.image_end is not None else k.kernel_end    # default_image_end
    if image_end < k.pgt_buf_top << PAGE_SHIFT:
        raise SetupError(f"kernel image end {image_end:#x} lies below the BRK page-table buffer")
    mapped_end = head_32.initial_mapping_end(pae, k.page_offset, image_end)
    n = head_32.head_tables(pae, mapped_end)
    if p.head_brk_base is not None:                           # __brk_base of the build
        head_base = p.head_brk_base
        if head_base & (PAGE_SIZE - 1) or head_base + n * PAGE_SIZE > brk_base:
            raise SetupError(f"head_32's {n} page tables from __brk_base {head_base:#x} do not fit below "
                             f"the BRK page-table buffer at {brk_base:#x}")
    else:
        head_base = brk_base - n * PAGE_SIZE                  # __brk_base right below pgt_buf
    addrs = head_32.static_addresses(p)
    n_static = head_32.static_pages_needed(k)
    if "swapper_pg_dir" in addrs:
        image_pfn = (addrs["swapper_pg_dir"] >> PAGE_SHIFT) + 1
    else:
        image_pfn = (kernel_start >> PAGE_SHIFT) + 0x100     # static data of the image (.bss)
    for name, a in addrs.items():
        if a & (PAGE_SIZE - 1) or not kernel_start <= a < head_base:
            raise SetupError(f"{name} at {a:#x} does not lie page-aligned in the kernel image "
                             f"[{kernel_start:#x}, {head_base:#x})")
    if (image_pfn + n_static) << PAGE_SHIFT > head_base or head_base < kernel_start:
        raise SetupError(f"kernel image [{kernel_start:#x}, {brk_base:#x}) too small for head_32's "
                         f"{n} page tables below the BRK buffer")
    if mapped_end > (1 << 32) - k.page_offset:
        raise SetupError(f"head_32 mapping [0, {mapped_end:#x}) does not fit above PAGE_OFFSET {k.page_offset:#x}")
    head_32.build_initial_tables(k, head_base, image_end, image_pfn, mm_init_32.fixmap_static_tables(k), addrs)
    # where the build put what no input said (the System.map says it: __brk_base, _end,
    # swapper_pg_dir, initial_pg_pmd, initial_pg_fixmap, bm_pte)
    if p.head_brk_base is None:
        k.assumptions.append(Assumption("head_brk_base", "%#x" % head_base,
                                        "__brk_base right below the page-table buffer (head_32's %d tables); "
                                        "no --system-map" % n))
    if p.image_end is None:
        k.assumptions.append(Assumption("image_end", "%#x" % image_end,
                                        "_end 0x1f0000 above the page-table buffer; no --system-map (head_32 "
                                        "maps up to it; memblock's bottom-up search starts there)"))
    missing = [name for name in ("swapper_pg_dir", "initial_pg_pmd", "initial_pg_fixmap", "bm_pte")
               if name not in addrs and (pae or name != "initial_pg_pmd")]
    if missing:
        k.assumptions.append(Assumption("static page tables", "from %#x" % (image_pfn << PAGE_SHIFT),
                                        "%s in the image's data in that order; no --system-map"
                                        % ", ".join(missing)))
    k.table_pages.append(np.array([q for q, _, _ in k.i386_static], np.uint64),
                         np.array([lv for _, lv, _ in k.i386_static], np.uint8),
                         np.full(len(k.i386_static), 4, np.uint8), [], -1)
    printk_initial_memory_mapped(k, k.profile.i386_log_initial_mapped)
    k.kernel_text = mm_init_32.kernel_text(k)
    k.fixmap_start = mm_init_32.fixmap_start(k)


def head64_ident_tables(k: Kernel) -> List:
    """The direct-map slot as head_64.S left it before 3.9: ``init_level4_pgt[L4_PAGE_OFFSET]``
    -> ``level3_ident_pgt`` -> ``level2_ident_pgt``, 512 2 MiB leaves of
    ``__PAGE_KERNEL_IDENT_LARGE_EXEC`` (0x1e3) for [0, 1 GiB); entries are ``_KERNPG_TABLE``
    (arch/x86/kernel/head_64.S @ 3.6).  Returns the (pfn, level) of the two tables."""
    l3, l2 = k.pgd_pfn + 1, k.pgd_pfn + 2
    k.phys.clear_page(l3)
    k.phys.clear_page(l2)
    k.phys.table(k.pgd_pfn)[(k.page_offset >> 39) & 511] = (l3 << PAGE_SHIFT) | KERNPG_TABLE
    k.phys.table(l3)[0] = (l2 << PAGE_SHIFT) | KERNPG_TABLE
    k.phys.table(l2)[:] = (np.arange(512, dtype=np.uint64) << np.uint64(21)) | np.uint64(PAGE_KERNEL_LARGE_EXEC)
    return [(l3, 3), (l2, 2)]
