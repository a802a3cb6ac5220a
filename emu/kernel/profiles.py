"""Kernel-version profiles: every behaviour difference between kernels, as data.

A :class:`Profile` is one kernel behaviour (named after the first release that
has it).  The mapping code in :mod:`emu.mm` never tests a version number; it
reads the profile's fields.  Adding a kernel means adding a profile here.

Sources for each field are kernel files, cited per profile in ``source``;
``emu profiles`` prints the table of differences.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from emu.errors import EmuError


# printk visibility levels of a line
LEVEL_INFO = "info"         # pr_info / KERN_INFO: in the default dmesg
LEVEL_DEBUG = "debug"       # printk(KERN_DEBUG): in the default dmesg
LEVEL_PR_DEBUG = "pr_debug"  # pr_debug: compiled out unless dynamic debug
LEVEL_NONE = "none"          # not printed by this kernel at all


@dataclass(frozen=True)
class Profile:
    """How one kernel version builds the direct mapping.

    Field groups follow the kernel functions that read them.
    """

    name: str
    version: Tuple[int, ...]  # (major, minor) or, for a stable-only change, (major, minor, sublevel)
    summary: str
    source: str

    # -- early_alloc_pgt_buf / alloc_low_pages (arch/x86/mm/init.c) ---------
    #: BRK pages for page tables (INIT_PGT_BUF_SIZE / INIT_PGD_PAGE_COUNT)
    pgt_buf_pages: int = 6
    #: pages with CONFIG_RANDOMIZE_MEMORY (None: option does not exist)
    pgt_buf_pages_randomize: Optional[int] = None
    #: pages with CONFIG_X86_5LEVEL=y (compile time; None: same as 4-level)
    pgt_buf_pages_5level: Optional[int] = None
    #: pages with both CONFIG_X86_5LEVEL=y and CONFIG_RANDOMIZE_MEMORY=y
    pgt_buf_pages_5level_randomize: Optional[int] = None
    #: BRK is full when ``pgt_buf_end + num`` is ``>`` (gt) or ``>=`` (ge) ``pgt_buf_top``
    brk_full_test: str = "gt"
    #: can_use_brk_pgt (c9b3234a6aba): no BRK page tables for a range holding free BRK
    can_use_brk_pgt: bool = True
    #: panic() prefix of alloc_low_page(s)
    alloc_panic_prefix: str = "alloc_low_page"
    #: panic when min_pfn_mapped >= max_pfn_mapped ("ran out of memory"); else only "can not alloc memory"
    alloc_ran_out_panic: bool = True
    #: 4.19+: when memblock fails and can_use_brk_pgt, fall back to extend_brk()
    alloc_extend_brk_fallback: bool = False
    #: 5.15+: memblock_phys_alloc_range (find + reserve) instead of find + memblock_reserve
    alloc_uses_phys_alloc_range: bool = False

    # -- init_mem_mapping / memory_map_top_down ---------------------------
    #: the first PMD_SIZE block searched for real_end is only PAGE_SIZE aligned (seed, tip of early
    #: 2013); PMD_SIZE aligned from 3.10 on
    real_end_page_aligned: bool = False
    #: 5.15+: real_end block taken with memblock_phys_alloc_range and freed again
    real_end_alloc_and_free: bool = False
    #: fd5935f9c204: a failed real_end allocation warns and falls back to ALIGN_DOWN(end, PMD_SIZE)
    real_end_check_return: bool = False
    #: "old": grow when new > mapped (before adding), step <<= 5;
    #: "new": grow when mapped >= step (after adding), step <<= PMD_SHIFT-PAGE_SHIFT-1
    step_rule: str = "old"
    #: memory_map_bottom_up exists (movable_node)
    bottom_up_supported: bool = False
    #: bottom-up loop checks step_size != 0 (overflow guard)
    bottom_up_step_guard: bool = False
    #: memblock bottom-up searches start at kernel_end (3.13–5.10)
    memblock_bottom_up_clamp: bool = True

    # -- split_mem_range ---------------------------------------------------
    #: "adjust_merge" (3.10+) or "merge_adjust" (tip snapshot of early 2013)
    split_order: str = "adjust_merge"
    #: 1G pages (PG_LEVEL_1G) exist in the page-size string table
    page_size_4m_string: bool = False

    # -- kernel_physical_mapping_init (init_64.c) --------------------------
    #: probe_page_size_mask clears _PAGE_GLOBAL from __supported_pte_mask without PGE
    #: (3.x 64-bit starts from ~0 and only ORs it in; cleared by 4.6 [K46i])
    pge_clears_global: bool = False
    #: 1G leaves written as ``prot | __PAGE_KERNEL_LARGE`` (5.8+) instead of PAGE_KERNEL_LARGE
    pud_large_from_prot: bool = False
    #: PAGE_KERNEL masked by __default_kernel_pte_mask (no G with PTI), 4.17+
    default_kernel_pte_mask: bool = False
    #: __PAGE_OFFSET of the direct map (without KASLR)
    page_offset: int = 0xFFFF880000000000
    #: __PAGE_OFFSET with 5-level paging
    page_offset_l5: int = 0xFF10000000000000
    #: MAX_PHYSMEM_BITS with 4-level paging (MAX_ARCH_PFN = 1 << (bits - 12))
    max_physmem_bits: int = 46
    max_physmem_bits_l5: int = 52
    #: 5-level paging supported (CONFIG_X86_5LEVEL)
    la57_supported: bool = False

    # -- setup_arch ---------------------------------------------------------
    #: trim_bios_range turns [0, 4K) RAM into reserved and removes RAM in [640K, 1M)
    trim_bios_first_page: bool = True
    #: memblock_trim_memory(PAGE_SIZE) after memblock_x86_fill
    memblock_trim: bool = True

    # -- printk visibility -----------------------------------------------
    log_init_memory_mapping: str = LEVEL_INFO
    log_page_lines: str = LEVEL_DEBUG
    log_brk: str = LEVEL_DEBUG
    log_gbpages: str = LEVEL_INFO

    # -- defaults of the kernel configuration a distribution build uses ----
    default_randomize_memory: bool = False
    default_5level_config: bool = False

    # -- before the top-down rewrite: pre-patch kernels and the posted seed -----
    #: how page tables are provided: "brk_top_down" (seed and 3.9+: BRK buffer, RAM mapped
    #: top-down) or "early_table_space" (<= 3.8: a buffer sized and found per
    #: init_memory_mapping call by find_early_table_space, called from setup_arch)
    scheme: str = "brk_top_down"
    #: find_early_table_space sizing: "end" (from 0 to end, 2.6.x-3.4), or "ranges"
    #: (sum over the map_range pieces: 844ab6f9 "Find_early_table_space based on ranges
    #: that are actually being mapped", 3.7, in 3.5.x stable)
    table_space_formula: str = "ranges"
    #: where find_early_table_space looks: "memblock" (top-down in [0, max_pfn_mapped)) or
    #: "e820_bottom_up" (2.6.x find_e820_area from 0x8000, first fit)
    table_space_search: str = "memblock"
    #: printk formats: "mem" ([mem %#010lx-%#010lx], 3.5+) or "hex" (%016lx-%016lx, <= 3.4)
    log_style: str = "mem"
    #: the direct-map PGD slot before init_mem_mapping: "empty" (3.9+ native: #PF-handler
    #: early tables elsewhere) or "ident_1g" (static level3/level2_ident_pgt: 512 2M leaves,
    #: __PAGE_KERNEL_IDENT_LARGE_EXEC, for [0, 1G))
    early_direct_map: str = "empty"
    #: max_pfn_mapped when setup_arch starts (64-bit: KERNEL_IMAGE_SIZE >> 12 before 3.9)
    early_max_pfn_mapped_64: int = 0
    #: kernel_physical_mapping_init rules: "zero_non_ram" (3.9+: keep scanning past the end,
    #: zero only non-RAM blocks; leaves aligned to their size; kept leaves counted) or
    #: "zero_rest" (<= 3.8: zero every remaining entry of the table past the end and stop;
    #: PUD skipped when no e820 entry of any type is in it; leaves built from the unaligned
    #: address; kept 2M/1G leaves not counted)
    kpmi_rules: str = "zero_non_ram"
    #: page-table pages reached through __va (the direct map itself must already map them)
    #: or through early_memremap (seed on 64-bit, <= 3.8)
    pgt_access_va: bool = True
    #: chosen by --profile VERSION / a log's version (False: only by name, e.g. "seed")
    by_version: bool = True

    # -- e820.c printing and sanitising, ptdump -----------------------------------
    #: e820_print_type names types 7 and 12 "persistent (type N)" (4.1+)
    e820_persistent_names: bool = False
    #: ... and E820_TYPE_SOFT_RESERVED "soft reserved" (5.5+)
    e820_soft_reserved: bool = False
    #: types sanitize never merges with a touching entry of the same type
    #: (4.1: E820_PRAM; 5.5: e820_nomerge(), PRAM or SOFT_RESERVED)
    e820_nomerge: Tuple[int, ...] = ()
    #: ptdump of the generic mm/ptdump.c (5.6+): top-level holes of 4-level paging are "p4d"
    ptdump_generic: bool = False

    # -- i386 (init_32.c, head_32.S) --
    #: kernel_physical_mapping_init (init_32.c) aligns a large page's pfn down to the
    #: large-page boundary (4.19 and, with "Align start address to correct big page
    #: size", 3.9+); 3.6 writes the (then always aligned) pfn as is
    i386_align_large_pfn: bool = True
    #: setup_arch's ``initial memory mapped: [mem 0x00000000-%#010lx]`` (printk KERN_DEBUG, 3.6-4.19)
    i386_log_initial_mapped: str = LEVEL_DEBUG

    def pgt_buf_count(self, randomize_memory: bool, x86_5level_config: bool) -> int:
        """Number of BRK pages ``early_alloc_pgt_buf`` reserves for this configuration."""
        if x86_5level_config and self.pgt_buf_pages_5level is not None:
            if randomize_memory and self.pgt_buf_pages_5level_randomize is not None:
                return self.pgt_buf_pages_5level_randomize
            return self.pgt_buf_pages_5level
        if randomize_memory and self.pgt_buf_pages_randomize is not None:
            return self.pgt_buf_pages_randomize
        return self.pgt_buf_pages

    def differences(self, other: "Profile") -> Dict[str, Tuple[object, object]]:
        """Fields whose values differ from ``other`` (name -> (other's, ours))."""
        skip = {"name", "version", "summary", "source"}
        out: Dict[str, Tuple[object, object]] = {}
        for f in dataclasses.fields(self):
            if f.name in skip:
                continue
            a, b = getattr(other, f.name), getattr(self, f.name)
            if a != b:
                out[f.name] = (a, b)
        return out

    def to_json(self) -> Dict[str, object]:
        d = dataclasses.asdict(self)
        d["version"] = ".".join(map(str, self.version))
        return d


def _derive(base: Profile, **changes: object) -> Profile:
    return dataclasses.replace(base, **changes)


# ---------------------------------------------------------------------------
# x86-64, merged forms of the seed patch and later changes.
# ---------------------------------------------------------------------------
V3_9 = Profile(
    name="3.9",
    version=(3, 9),
    summary="seed series as merged (top-down from a free 2M block, BRK then memblock), "
            "BRK off-by-one fixed (c9b3234a6aba), can_use_brk_pgt, BRK printk; 5-page BRK buffer; "
            "split_mem_range merges before adjusting",
    source="v3.9-rc1 x86/mm pull (index:29437457749); INIT_PGT_BUF_SIZE of 5 pages quoted from 3.9 "
           "in linux-mm (Aug 2013); merge/adjust order swapped by 'x86: Fix adjust_range_size_mask "
           "calling position' for 3.10",
    pgt_buf_pages=5,
    split_order="merge_adjust",
)

V3_10 = _derive(
    V3_9,
    name="3.10",
    version=(3, 10),
    summary="BRK buffer 6 pages (3 for the ISA range, 3 for the first 2M); adjust_range_page_size_mask "
            "before merging",
    source="arch/x86/mm/init.c @ v3.10 (torvalds/linux 2606d244)",
    pgt_buf_pages=6,
    split_order="adjust_merge",
)

V3_13 = _derive(
    V3_10,
    name="3.13",
    version=(3, 13),
    summary="init_mem_mapping split into memory_map_top_down/memory_map_bottom_up (movable_node)",
    source="index:46435840517 (x86/mem-hotplug bottom-up, merged for v3.13); mm/memblock.c v3.13",
    bottom_up_supported=True,
)

V3_19 = _derive(
    V3_13,
    name="3.19",
    version=(3, 19),
    summary="step size rule: grow when mapped_ram_size >= step_size, by PMD_SHIFT-PAGE_SHIFT-1 bits "
            "('x86: Fix step size adjustment during initial memory mapping')",
    source="arch/x86/mm/init.c: old rule in android 3.18 trees, new rule in 4.2 and 4.6.2 "
           "(JasonLeeLJQ/kernel-4.6.2); corpus 3.19/4.1/4.3 logs",
    step_rule="new",
    bottom_up_step_guard=True,
)

V4_1 = _derive(
    V3_19,
    name="4.1",
    version=(4, 1),
    summary="e820: E820_PRAM (type 12) printed as 'persistent (type 12)' and never merged",
    source="arch/x86/kernel/e820.c @ 4.1-4.19 (e820_print_type, sanitize_e820_map)",
    e820_persistent_names=True,
    e820_nomerge=(12,),
)

V4_4 = _derive(
    V4_1,
    name="4.4",
    version=(4, 4),
    summary="init_memory_mapping and page lines become pr_debug ('x86, mm: quiet arch_add_memory()')",
    source="index:20282155706; arch/x86/mm/init.c @ v4.6.2",
    log_init_memory_mapping=LEVEL_PR_DEBUG,
    log_page_lines=LEVEL_PR_DEBUG,
    alloc_panic_prefix="alloc_low_pages",
    pge_clears_global=True,
)

V4_8 = _derive(
    V4_4,
    name="4.8",
    version=(4, 8),
    summary="KASLR memory randomization doubles the BRK page-table buffer (INIT_PGD_PAGE_COUNT 6 -> 12)",
    source="arch/x86/mm/init.c @ v4.19 (0x88888888/Linux-4.19)",
    pgt_buf_pages_randomize=12,
    default_randomize_memory=True,
)

V4_17 = _derive(
    V4_8,
    name="4.17",
    version=(4, 17),
    summary="PAGE_KERNEL masked by __default_kernel_pte_mask (no GLOBAL with PTI)",
    source="arch/x86/include/asm/pgtable_types.h @ v4.19",
    default_kernel_pte_mask=True,
)

V4_19 = _derive(
    V4_17,
    name="4.19",
    version=(4, 19),
    summary="alloc_low_pages: no 'ran out of memory' panic, extend_brk fallback",
    source="arch/x86/mm/init.c @ v4.19 (0x88888888/Linux-4.19)",
    alloc_ran_out_panic=False,
    alloc_extend_brk_fallback=True,
)

V4_20 = _derive(
    V4_19,
    name="4.20",
    version=(4, 20),
    summary="direct map moves to 0xffff888000000000 (PGD slot 273); 5-level paging available",
    source="arch/x86/include/asm/page_64_types.h @ v5.10",
    page_offset=0xFFFF888000000000,
    page_offset_l5=0xFF11000000000000,
    la57_supported=True,
)

V5_5 = _derive(
    V4_20,
    name="5.5",
    version=(5, 5),
    summary="e820: EFI soft reservation: 'soft reserved' type, e820_nomerge() (PRAM, SOFT_RESERVED)",
    source="arch/x86/kernel/e820.c @ 5.10 (MrGeek-zrh/linux-5.10)",
    e820_soft_reserved=True,
    e820_nomerge=(12, 0xEFFFFFFF),
)

V5_6 = _derive(
    V5_5,
    name="5.6",
    version=(5, 6),
    summary="ptdump moves to the generic mm/ptdump.c (top-level holes of 4-level paging shown as p4d)",
    source="arch/x86/mm/dump_pagetables.c @ 5.10 (ptdump_walk_pgd)",
    ptdump_generic=True,
)

V5_8 = _derive(
    V5_6,
    name="5.8",
    version=(5, 8),
    summary="BRK printk removed (67d631b7c05e); init_memory_mapping takes prot; "
            "1G leaves built as prot | __PAGE_KERNEL_LARGE",
    source="index:47569444744; arch/x86/mm/init.c, init_64.c @ v5.10",
    log_brk=LEVEL_NONE,
    pud_large_from_prot=True,
)

V5_11 = _derive(
    V5_8,
    name="5.11",
    version=(5, 11),
    summary="memblock bottom-up allocations no longer start at kernel_end",
    source="index:13079177823 (memblock: do not start bottom-up allocations with kernel_end)",
    memblock_bottom_up_clamp=False,
)

V5_12 = _derive(
    V5_11,
    name="5.12",
    version=(5, 12),
    summary="BRK buffer sized for 5-level tables (167dcfc08b0b): 2 x INIT_PGD_PAGE_TABLES (3, or 4 "
            "with CONFIG_X86_5LEVEL), doubled with RANDOMIZE_MEMORY",
    source="index:37643012231; arch/x86/mm/init.c @ 6.1",
    pgt_buf_pages=6,
    pgt_buf_pages_randomize=12,
    pgt_buf_pages_5level=8,
    pgt_buf_pages_5level_randomize=16,
    default_5level_config=True,
)

V5_15 = _derive(
    V5_12,
    name="5.15",
    version=(5, 15),
    summary="memblock_find_in_range made private: real_end block and page tables via "
            "memblock_phys_alloc_range (real_end block freed again)",
    source="index:46100203408; arch/x86/mm/init.c @ 6.1 (GrapheneOS/kernel_common-6.1)",
    alloc_uses_phys_alloc_range=True,
    real_end_alloc_and_free=True,
)

V6_0 = _derive(
    V5_15,
    name="6.0",
    version=(6, 0),
    summary="1G leaves built as prot | _PAGE_PSE again, so PTI's missing GLOBAL stays missing "
            "(88e0a74902f8 'x86/mm: Use proper mask when setting PUD mapping', also in 5.10.y stable)",
    source="oracle: Debian 6.1.0-56 (6.1.192) under QEMU with PTI: 1G leaves 0x...e3; commit 88e0a74902f8",
    pud_large_from_prot=False,
)

V6_1 = _derive(
    V6_0,
    name="6.1",
    version=(6, 1),
    summary="as 6.0 (6.1.0 as released)",
    source="arch/x86/mm/init.c, init_64.c @ 6.1; matched raw entry for raw entry against Debian's 6.1 "
           "under QEMU (emu oracle)",
)

V6_1_137 = _derive(
    V6_1,
    name="6.1.137",
    version=(6, 1, 137),
    summary="6.1.y stable with the real_end allocation check (fd5935f9c204, backported as 631ca8909fd5 "
            "in May 2025 on top of 6.1.136; first sublevel approximate)",
    source="oracle: Debian 6.1.0-56 (6.1.192) prints 'Failed to release memory for alloc_low_pages()'; "
           "AUTOSEL mail (index:46627380276)",
    real_end_check_return=True,
)

V6_6 = _derive(
    V6_1,
    name="6.6",
    version=(6, 6),
    summary="as 6.1 (6.6.0 as released)",
    source="arch/x86/mm/init.c @ 6.6 (GrapheneOS/kernel_common-6.6)",
)

V6_15 = _derive(
    V6_6,
    name="6.15",
    version=(6, 15),
    summary="real_end allocation failure handled (fd5935f9c204, also in late 6.1.y/6.6.y stable)",
    source="index:48871009006",
    real_end_check_return=True,
)

# ---------------------------------------------------------------------------
# Before the top-down rewrite, and the rewrite as posted.
# ---------------------------------------------------------------------------
V2_6_31 = _derive(
    V3_9,
    name="2.6.31",
    version=(2, 6),
    summary="pre-patch, pre-memblock: setup_arch maps [0, max_low_pfn) then [4G, max_pfn), each call "
            "sizing its table buffer from 0 to end and placing it first-fit from 0x8000 (find_e820_area)",
    source="arch/x86/mm/init.c, init_64.c @ 2.6.31/2.6.32 (find_early_table_space(end, use_pse, "
           "use_gbpages), find_e820_area); corpus 2.6.31 log",
    scheme="early_table_space",
    table_space_formula="end",
    table_space_search="e820_bottom_up",
    log_style="hex",
    early_direct_map="ident_1g",
    early_max_pfn_mapped_64=0x20000,
    kpmi_rules="zero_rest",
    pgt_access_va=False,
    can_use_brk_pgt=False,
    memblock_trim=False,
    pgt_buf_pages=0,
)

V3_0 = _derive(
    V2_6_31,
    name="3.0",
    version=(3, 0),
    summary="pre-patch with memblock (2.6.38+): the table buffer is found top-down below max_pfn_mapped",
    source="arch/x86/mm/init.c @ 3.0-3.4 (memblock_find_in_range(0, good_end, tables, PAGE_SIZE)); "
           "corpus 3.0 and 3.2 logs",
    table_space_search="memblock",
)

V3_5 = _derive(
    V3_0,
    name="3.5",
    version=(3, 5),
    summary="pre-patch, [mem ...] printk format; buffer sized from the map_range pieces "
            "(844ab6f9, 3.7, also in 3.5.x/3.6.x stable)",
    source="arch/x86/mm/init.c @ 3.6 (New-B/Linux3.6) + 844ab6f9; corpus 3.5 and 3.8 logs",
    log_style="mem",
    table_space_formula="ranges",
)

SEED = _derive(
    V3_9,
    name="seed",
    version=(3, 8),
    by_version=False,
    summary="the top-down patch exactly as posted (v4, 2012-10-18): 5-page BRK buffer, "
            "'pgt_buf_end + 1 >= pgt_buf_top', real_end PAGE_SIZE aligned, step <<= 5, no "
            "can_use_brk_pgt, no BRK printk; static 1G identity map in the direct-map slot",
    source="shared/seed/000_27b229a08bbd39d8.txt on tip x86/mm of Oct 2012 (the series' earlier "
           "patches: Align start address, Use big page size for small memory range, Don't clear "
           "page table if range is ram, Break down init_all_memory_mapping); head_64.S of 3.6 for "
           "the early tables; 64-bit alloc_low_page maps its page with early_memremap",
    pgt_buf_pages=5,
    brk_full_test="ge",
    can_use_brk_pgt=False,
    real_end_page_aligned=True,
    split_order="merge_adjust",
    log_brk=LEVEL_NONE,
    early_direct_map="ident_1g",
    early_max_pfn_mapped_64=0x20000,
    pgt_access_va=False,
)

PROFILES: Dict[str, Profile] = {
    p.name: p
    for p in (V2_6_31, V3_0, V3_5, SEED, V3_9, V3_10, V3_13, V3_19, V4_1, V4_4, V4_8, V4_17, V4_19, V4_20, V5_5, V5_6, V5_8, V5_11, V5_12, V5_15,
              V6_0, V6_1, V6_1_137, V6_6, V6_15)
}

DEFAULT_PROFILE = "6.1"


class ProfileError(EmuError):
    pass


def parse_version(text: str) -> Tuple[int, int, int]:
    m = re.match(r"\s*v?(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not m:
        raise ProfileError(f"not a kernel version: {text!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def _applies(pv: Tuple[int, ...], version: Tuple[int, ...]) -> bool:
    """A profile named (M, m) applies from M.m on; one named (M, m, s) only to the M.m.y stable
    series from sublevel s (a stable backport does not reach the next mainline release
    through that profile: the mainline profile that has the change covers it)."""
    if len(pv) == 2:
        return tuple(version[:2]) >= pv
    return tuple(version[:2]) == pv[:2] and tuple(version[:3]) >= pv


def for_version(version: Tuple[int, ...]) -> Profile:
    """The profile of the newest behaviour at or before ``version`` (x86-64 and i386 alike:
    what differs between the architectures is in :mod:`emu.machine.modes`)."""
    best: Optional[Profile] = None
    for p in PROFILES.values():
        if not p.by_version:
            continue
        if _applies(p.version, version) and (best is None or p.version > best.version):
            best = p
    if best is None:
        known = ", ".join(sorted(PROFILES, key=lambda n: PROFILES[n].version))
        raise ProfileError(f"no profile for kernel {'.'.join(map(str, version))} (profiles: {known})")
    return best


def get_profile(name_or_version: str) -> Profile:
    """A profile by name (``3.13``) or by any kernel version (``4.1.0-040100-generic``)."""
    if name_or_version in PROFILES:
        return PROFILES[name_or_version]
    return for_version(parse_version(name_or_version))


def profile_table() -> List[Tuple[str, str, Dict[str, Tuple[object, object]]]]:
    """(name, summary, differences from the previous profile)."""
    rows = []
    prev: Optional[Profile] = None
    for p in sorted(PROFILES.values(), key=lambda p: (p.version, p.by_version)):
        rows.append((p.name, p.summary, p.differences(prev) if prev else {}))
        prev = p
    return rows
