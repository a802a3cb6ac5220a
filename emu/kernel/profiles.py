"""Kernel versions as data: every behaviour change keyed by the commit that made it.

A :class:`Profile` is what the mapping code reads: one field per behaviour difference
(the code in :mod:`emu.kernel` never tests a version number).  The profile of a kernel
version is not written by hand: it is :func:`resolve` d from :data:`CHANGES`, the table of
behaviour changes, each with its commit, the mainline release that first has it, the
stable branches it was backported to (first sublevel), the Profile fields it sets, and
its sources.  A version carries a change when its mainline release is at or after the
change's, or when it is on a stable branch the change reached, at or after that sublevel
(5.10.223 carries 88e0a74902f8 from 6.0 through 5.10.138).  Distribution kernels that
carry extra backports are data too (:data:`DISTRO_BACKPORTS`).

Named profiles (``--profile 3.13``) are the mainline releases where a change lands;
``seed`` (the top-down patch as posted, never merged as such) is chosen by name only.
``emu profiles --version 5.10.223`` shows which changes a version carries and why.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

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
    #: phys_p4d_init walks by virtual address up to the end of the whole call (432c833218dd,
    #: v5.2-rc7): past the end of its P4D page the index wraps to 0 and the walk revisits the
    #: same page for every later PGD (PML5) region of the call, counting its present leaves
    #: again; before it (4.17-5.1) the loop stops at the end of the P4D page and clears entries
    #: past the end that hold no RAM, like the other levels
    p4d_walk_by_vaddr: bool = False
    #: FIXMAP_PMD_NUM: page tables of the permanent fixmap in level2_fixmap_pgt (level1_fixmap_pgt pages)
    fixmap_pmd_num: int = 1
    #: the level2_fixmap_pgt slot of fixmap index 0 (FIXADDR_TOP's PMD): 510 before 4.19
    #: (FIXADDR_TOP = VSYSCALL_END - 4K), 507 from 4.19
    fixmap_top_slot: int = 510

    #: e820 types whose presence in a block keeps a page-table entry past the end of a
    #: kernel_physical_mapping_init call (phys_p4d/pud/pmd/pte_init: e820__mapped_any of one of
    #: them, else the entry is written 0): 1 = E820_RAM, 3 = E820_ACPI, 128 = E820_RESERVED_KERN
    e820_keep_types: Tuple[int, ...] = (1, 128)

    #: debug_pagealloc_enabled() is asked at boot (debug_pagealloc=, 4.6+) instead of the build
    #: alone (CONFIG_DEBUG_PAGEALLOC)
    debug_pagealloc_runtime: bool = False

    # -- setup_arch ---------------------------------------------------------
    #: e820 types e820__end_of_ram_pfn / e820__end_of_low_ram_pfn count (max_pfn, max_low_pfn,
    #: the 'last_pfn =' line): 1 = E820_RAM, 3 = E820_ACPI
    end_pfn_types: Tuple[int, ...] = (1,)
    #: pti_check_boottime_disable's command-line precedence: "pti_first" (<= 6.6: pti=on/off/auto
    #: decide, else nopti or mitigations=off turn it off), "mitigations_first" (6.7-6.16:
    #: mitigations=off wins over pti=on), "attack_vectors" (6.17+: pti=on/off decide; auto and
    #: no option follow mitigations=off)
    pti_cmdline_rule: str = "pti_first"
    #: trim_bios_range turns [0, 4K) RAM into reserved and removes RAM in [640K, 1M)
    trim_bios_first_page: bool = True
    #: the e820 table's 3 * MAX_NUMNODES extra entries need CONFIG_EFI (E820_X_MAX, before
    #: 4.12); False: always there (E820_MAX_ENTRIES)
    e820_extra_entries_need_efi: bool = True
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
    #: 5-level paging support is not a build option any more (7212b58d6d71, 6.16): the BRK
    #: buffer is sized for it and level4_kernel_pgt is in every image
    x86_5level_always: bool = False

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
    #: the same line on x86-64 (KERN_DEBUG up to 3.8; 8170e6bed465 made it 32-bit only)
    log_initial_mapped_64: str = LEVEL_NONE

    # -- i386 fixmap / pkmap / lowmem geometry: arch/x86/include/asm/fixmap.h (enum
    #    fixed_addresses on X86_32), pgtable_32_types.h / pgtable_32_areas.h; read by
    #    emu.kernel.arch.x86.fixmap (the enum as data, layout_32).  Defaults: the 3.8/3.9 enum.
    #: FIX_VDSO (32-bit; gone with the compat vDSO in 3.15)
    i386_fix_vdso: bool = True
    #: PVCLOCK_FIXMAP_BEGIN..END on 32-bit too (CONFIG_PARAVIRT_CLOCK; 3.8-3.10)
    i386_fix_pvclock: bool = False
    #: FIX_CO_CPU, FIX_CO_APIC, FIX_LI_PCIA, FIX_LI_PCIB (CONFIG_X86_VISWS_APIC; <= 3.14)
    i386_fix_visws: bool = True
    #: FIX_F00F_IDT (CONFIG_X86_F00F_BUG; <= 3.9)
    i386_fix_f00f: bool = True
    #: FIX_CYCLONE_TIMER (CONFIG_X86_CYCLONE_TIMER; <= 3.9)
    i386_fix_cyclone: bool = True
    #: FIX_RO_IDT (3.10 .. 4.14 before the cpu_entry_area move)
    i386_fix_ro_idt: bool = False
    #: the kmap block: "km_type" (always on X86_32, KM_TYPE_NR x NR_CPUS slots, <= 5.10) or
    #: "kmap_local" (CONFIG_KMAP_LOCAL, which X86_32 selects; KM_MAX_IDX x NR_CPUS, 5.11+)
    i386_kmap_rule: str = "km_type"
    #: the option that adds FIX_PARAVIRT_BOOTMAP: "PARAVIRT" (<= 5.9) or "PARAVIRT_XXL" (5.10+)
    i386_paravirt_bootmap_option: str = "PARAVIRT"
    #: FIX_TEXT_POKE1, FIX_TEXT_POKE0 (<= 5.1)
    i386_fix_text_poke: bool = True
    #: FIX_LNW_VRTC (CONFIG_X86_INTEL_MID; <= 5.11)
    i386_fix_lnw_vrtc: bool = True
    #: FIX_GDT_REMAP_BEGIN..END, NR_CPUS pages (4.12 .. 4.14 before the cpu_entry_area move)
    i386_fix_gdt_remap: bool = False
    #: FIX_APEI_GHES_IRQ, FIX_APEI_GHES_NMI (CONFIG_ACPI_APEI_GHES; 4.15+, 4.14.y backport)
    i386_fix_ghes: bool = False
    #: FIX_BTMAPS_SLOTS: early_ioremap slots of NR_FIX_BTMAPS (64) pages each (4; 8 from 3.17)
    i386_btmaps_slots: int = 4
    #: PKMAP_BASE / VMALLOC_END: "boot" (below FIXADDR_BOOT_START, <= 3.18), "permanent" (below
    #: FIXADDR_START, 3.19-4.14), "cea" (a PMD below CPU_ENTRY_AREA_BASE, 4.15-4.18), "cea_ldt"
    #: (LDT_BASE_ADDR a PMD below the cpu_entry_area, PKMAP_BASE a PMD below that, 4.19+)
    i386_pkmap_rule: str = "boot"
    #: CPU_ENTRY_AREA_PAGES per CPU (40 in 4.15-5.3, 39 in 5.4, sizeof(struct cpu_entry_area)
    #: = 43 pages on i386 from 5.5); 0 before the cpu_entry_area left the fixmap
    i386_cea_pages_per_cpu: int = 0
    #: reserve_top_address rounds the new FIXADDR_TOP down to a PMD (3.16+); before, -reserve - 4K
    i386_reservetop_pmd_aligned: bool = False
    #: PDE_IDENT_ATTR of head_32's page-table entries and the initial_pg_fixmap entry:
    #: 0x067 (P RW USER A D, for the compat vDSO) up to 3.14, 0x063 from 3.15
    i386_pde_ident_attr: int = 0x067

    def pgt_buf_count(self, randomize_memory: bool, x86_5level_config: bool) -> int:
        """Number of BRK pages ``early_alloc_pgt_buf`` reserves for this configuration."""
        if (x86_5level_config or self.x86_5level_always) and self.pgt_buf_pages_5level is not None:
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


# ---------------------------------------------------------------------------
# behaviour changes
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    """One behaviour change of the kernel code emu re-expresses."""

    id: str
    #: the commit (12+ hex digits; "" when the commit could not be identified)
    commit: str
    subject: str
    #: first mainline release that has it: (major, minor), or (2, 6, N) for 2.6.N
    mainline: Tuple[int, ...]
    #: what it changes, in emu's terms
    summary: str
    #: the Profile fields it sets
    sets: Dict[str, object]
    #: stable branches it reached: "5.10" -> first sublevel carrying it
    stable: Dict[str, int] = field(default_factory=dict)
    #: stable branches checked that did NOT get it (when known)
    not_in_stable: Tuple[str, ...] = ()
    sources: Tuple[str, ...] = ()
    #: verified (commit, release and stable sublevels checked in sources), likely (commit or
    #: release from one source), corpus (what real boot logs require; commit not pinned)
    confidence: str = "likely"

    def carried_by(self, version: Tuple[int, ...]) -> Tuple[bool, str]:
        """Does kernel ``version`` carry this change, and why."""
        rel, sub = release_of(version)
        branch = _vtext(rel)
        if rel >= self.mainline:
            return True, "mainline %s <= %s" % (_vtext(self.mainline), branch)
        if branch in self.stable:
            first = self.stable[branch]
            if sub >= first:
                return True, "stable %s.y from %s.%d" % (branch, branch, first)
            return False, "stable %s.y has it from %s.%d only" % (branch, branch, first)
        return False, "mainline %s > %s%s" % (_vtext(self.mainline), branch,
                                              " (no %s.y backport)" % branch if branch in self.not_in_stable else "")

    def to_json(self) -> dict:
        return {"id": self.id, "commit": self.commit, "subject": self.subject,
                "mainline": _vtext(self.mainline), "stable": {k + ".y": v for k, v in self.stable.items()},
                "summary": self.summary, "sets": {k: _jsonable(v) for k, v in self.sets.items()},
                "sources": list(self.sources), "confidence": self.confidence}


def release_of(version: Tuple[int, ...]) -> Tuple[Tuple[int, ...], int]:
    """``(mainline release, stable sublevel)`` of a version: 3.x and later (3, 5, 7) ->
    ((3, 5), 7); 2.6 kernels (2, 6, 32, 5) -> ((2, 6, 32), 5)."""
    v = tuple(version)
    if v[:2] == (2, 6):
        return v[:3], (v[3] if len(v) > 3 else 0)
    return v[:2], (v[2] if len(v) > 2 else 0)


def _vtext(v: Tuple[int, ...]) -> str:
    return ".".join(str(x) for x in v)


def _jsonable(v: object) -> object:
    if isinstance(v, int) and not isinstance(v, bool) and v > (1 << 53):
        return "%#x" % v
    if isinstance(v, tuple):
        return list(v)
    return v


#: Linux 2.6.31's behaviour, the base every change applies to
BASE = Profile(
    name="2.6.31",
    version=(2, 6),
    summary="pre-patch, pre-memblock: setup_arch maps [0, max_low_pfn) then [4G, max_pfn), each call "
            "sizing its table buffer from 0 to end and placing it first-fit from 0x8000 (64-bit; 0x7000 "
            "on 32-bit) with find_e820_area",
    source="arch/x86/mm/init.c, init_64.c @ 2.6.31/2.6.32 (find_early_table_space(end, use_pse, use_gbpages), "
           "find_e820_area); corpus 2.6.31 and 2.6.32 logs",
    pgt_buf_pages=0,
    can_use_brk_pgt=False,
    memblock_trim=False,
    split_order="merge_adjust",
    scheme="early_table_space",
    table_space_formula="end",
    table_space_search="e820_bottom_up",
    log_style="hex",
    early_direct_map="ident_1g",
    early_max_pfn_mapped_64=0x20000,
    kpmi_rules="zero_rest",
    pgt_access_va=False,
    log_initial_mapped_64=LEVEL_DEBUG,
)

_TIP_39 = "v3.9-rc1 x86/mm pull of Yinghai Lu's series (index:29437457749)"

#: every behaviour change, in mainline order (see the module doc)
CHANGES: List[Change] = [
    Change("memblock_table_space", "", "x86: use memblock for early allocations (find_early_table_space)",
           (2, 6, 38), "find_early_table_space searches memblock top-down below max_pfn_mapped "
           "(memblock_find_in_range) instead of find_e820_area first fit",
           {"table_space_search": "memblock"},
           sources=("2.6.38 memblock conversion of arch/x86/mm/init.c (index:13117319057)",
                    "arch/x86/mm/init.c @ 3.0-3.4: memblock_find_in_range(start, good_end, tables, PAGE_SIZE)",
                    "corpus 3.0 and 3.2 logs",
                    "commit not pinned: x86's memblock allocations became top-down with the 2.6.37 memblock "
                    "merge ('changes the default memory allocation policy on x86 from bottom-up to top-down', "
                    "core-memblock-for-linus pull, index:13117319057; 'x86: Use memblock to replace early_res' and "
                    "'x86, memblock: Replace e820_/_early string with memblock_' are in its shortlog), and "
                    "4b239f458c22 'x86-64, mm: Put early page table high' (2.6.38; gitiles page of "
                    "4b239f458c229de044d6905c2b0f9fe16ed9e01e) shows in its 'before' log the tables top-down right "
                    "below the 512M initial mapping, i.e. this rule already in 2.6.37, and moves the 64-bit search "
                    "limit up. The release (2.6.37 or 2.6.38) and what 2.6.38-3.4 do on 64-bit were not checked "
                    "against trees; no corpus log lies between 2.6.32 and 3.0"),
           confidence="likely"),
    Change("mem_printk_and_range_sizing", "844ab6f993b1",
           "x86, mm: Find_early_table_space based on ranges that are actually being mapped "
           "(with the [mem %#010lx-%#010lx] printk style of 3.5)",
           (3, 5), "printk ranges as [mem a-b]; find_early_table_space sized from the map_range pieces",
           {"log_style": "mem", "table_space_formula": "ranges"},
           sources=("844ab6f993b1 (Jacob Shin, Oct 2012) 'Find_early_table_space based on ranges that are "
                    "actually being mapped'", "every 3.5-3.8 log of the corpus (3.5.0 Ubuntu, 3.6.0, 3.7.5, "
                    "3.8.0) needs the ranges sizing; 'end' sizing fails them all",
                    "3.5 [mem] printk style: arch/x86/kernel/setup.c, e820.c @ 3.5"),
           confidence="corpus"),
    Change("top_down_brk", "c9b3234a6aba",
           "x86, mm: the top-down direct mapping with BRK page tables (Yinghai Lu's series)",
           (3, 9), "init_mem_mapping maps RAM top-down from a free 2M block; page tables from a 5-page BRK "
           "buffer, then memblock inside what is mapped; BRK full when pgt_buf_end + num > top; "
           "can_use_brk_pgt; 'BRK [..] PGTABLE' printk; kernel_physical_mapping_init keeps scanning past "
           "the end and zeroes only non-RAM; 32-bit large pages aligned down",
           {"scheme": "brk_top_down", "table_space_formula": "ranges", "table_space_search": "memblock",
            "pgt_buf_pages": 5, "can_use_brk_pgt": True, "memblock_trim": True, "early_direct_map": "empty",
            "early_max_pfn_mapped_64": 0, "kpmi_rules": "zero_non_ram", "pgt_access_va": True,
            "i386_align_large_pfn": True, "log_initial_mapped_64": LEVEL_NONE},
           sources=(_TIP_39, "c9b3234a6aba (can_use_brk_pgt; Dave Hansen quoting its changelog, "
                    "index:41484242000)", "INIT_PGT_BUF_SIZE of 5 pages quoted from 3.9 in linux-mm (Aug 2013)",
                    "x86, mm: Align start address to correct big page size (same pull)",
                    "8170e6bed465 (same series): x86-64 no longer prints 'initial memory mapped'"),
           confidence="likely"),
    Change("adjust_before_merge", "", "x86: Fix adjust_range_size_mask calling position",
           (3, 10), "BRK buffer 6 pages (3 for the ISA range, 3 for the first 2M); split_mem_range adjusts "
           "page sizes before merging",
           {"pgt_buf_pages": 6, "split_order": "adjust_merge"},
           sources=("arch/x86/mm/init.c @ v3.10 (torvalds/linux 2606d244)", "commit not pinned: searched the reference index (exact-subject and diff-line string search over list archives: tip-bot, stable review, 0day blame) and the stored web pages; no mail with 'adjust_range_size_mask calling position' and an id was found"),
           confidence="likely"),
    Change("bottom_up_movable_node", "", "x86, mem-hotplug: memory_map_bottom_up (movable_node)",
           (3, 13), "init_mem_mapping split into memory_map_top_down/memory_map_bottom_up",
           {"bottom_up_supported": True},
           sources=("x86/mem-hotplug bottom-up series merged for v3.13 (index:46435840517); mm/memblock.c v3.13", "commit not pinned: searched the reference index (exact-subject and diff-line string search over list archives: tip-bot, stable review, 0day blame) and the stored web pages; the series' mails (Tang Chen, 'x86, mem-hotplug: Support initialize page tables in bottom-up') were found without the merged id"),
           confidence="likely"),
    Change("alloc_low_pages_panic_name", "", "arch/x86/mm/init.c: fix incorrect function name in alloc_low_pages()",
           (3, 13), "panic texts say 'alloc_low_pages: ...' instead of 'alloc_low_page: ...'",
           {"alloc_panic_prefix": "alloc_low_pages"},
           sources=("patch by Zhi Yong Wu 2013-10-31 (index:46919976630)",
                    "mm tree since-3.12 branch listing it with the 3.13 bottom-up series (index:46342130384)", "commit not pinned: searched the reference index (exact-subject and diff-line string search over list archives: tip-bot, stable review, 0day blame) and the stored web pages; only the patch and the mm tree listing were found, no merged id"),
           confidence="likely"),
    Change("step_size_rule", "132978b94e66", "x86: Fix step size adjustment during initial memory mapping",
           (3, 19), "memory_map_top_down grows step_size when mapped_ram_size >= step_size, by "
           "PMD_SHIFT-PAGE_SHIFT-1 bits; the bottom-up loop guards step_size != 0",
           {"step_rule": "new", "bottom_up_step_guard": True},
           sources=("torvalds/linux commit 132978b94e66 (index:26333497266)", "corpus 3.19/4.1/4.3 logs",
                    "SUSE-SU-2015:0178-1: SLES 12 3.12.36 carries it (index:20658066507)"),
           confidence="corpus"),
    Change("e820_pram", "ec776ef6bbe1", "x86/mm: Add support for the non-standard protected e820 type",
           (4, 1), "e820: E820_PRAM (type 12) printed 'persistent (type 12)' and never merged",
           {"e820_persistent_names": True, "e820_nomerge": (12,)},
           sources=("ec776ef6bbe1 (index:14433293582)", "arch/x86/kernel/e820.c @ 4.1-4.19"),
           confidence="likely"),
    Change("pge_clears_global", "", "probe_page_size_mask: __supported_pte_mask &= ~_PAGE_GLOBAL without PGE",
           (4, 4), "without PGE, _PAGE_GLOBAL leaves __supported_pte_mask (64-bit started from ~0 and only "
           "ORed it in)",
           {"pge_clears_global": True},
           sources=("arch/x86/mm/init.c with the cpu_has() form and the else branch (index:13429815095); "
                    "3.19 has no else branch", "commit not pinned: searched the reference index (exact-subject and diff-line string search over list archives: tip-bot, stable review, 0day blame) and the stored web pages; the commit adding the else branch was not identified"),
           confidence="likely"),
    Change("quiet_arch_add_memory", "", "x86, mm: quiet arch_add_memory()",
           (4, 5), "init_memory_mapping and ' [mem ...] page' lines become pr_debug",
           {"log_init_memory_mapping": LEVEL_PR_DEBUG, "log_page_lines": LEVEL_PR_DEBUG},
           sources=("[PATCH 04/15] x86, mm: quiet arch_add_memory(), Dan Williams, 2015-09-23, ZONE_DEVICE/dax "
                    "series merged for 4.5 (index:20282155706, 20251481938)", "corpus: 4.3 still prints them", "commit not pinned: searched the reference index (exact-subject and diff-line string search over list archives: tip-bot, stable review, 0day blame) and the stored web pages; the v1 patch and its review were found (above), not the merged id or its release"),
           confidence="likely"),
    Change("debug_pagealloc_runtime", "", "x86: query dynamic DEBUG_PAGEALLOC setting",
           (4, 6), "probe_page_size_mask asks debug_pagealloc_enabled() (debug_pagealloc=on|off, "
           "CONFIG_DEBUG_PAGEALLOC_ENABLE_DEFAULT) instead of CONFIG_DEBUG_PAGEALLOC alone",
           {"debug_pagealloc_runtime": True},
           sources=("shared/docs/kernel-reference.md C.1: 3.10 compile-time rule, v4.6 "
                    "'cpu_has_pse && !debug_pagealloc_enabled()' [K46i]", "commit not pinned: searched the reference index (exact-subject and diff-line string search over list archives: tip-bot, stable review, 0day blame) and the stored web pages; no mail with 'query dynamic DEBUG_PAGEALLOC setting' and an id was found"),
           confidence="likely"),
    Change("kaslr_pgt_buf", "0483e1fa6e09", "x86/mm: Implement ASLR for kernel memory regions",
           (4, 8), "CONFIG_RANDOMIZE_MEMORY doubles the BRK page-table buffer (INIT_PGD_PAGE_COUNT 6 -> 12)",
           {"pgt_buf_pages_randomize": 12, "default_randomize_memory": True},
           sources=("0483e1fa6e09 in Fixes: tags (index:39656188269, 17771115694)",
                    "arch/x86/mm/init.c @ v4.19 (0x88888888/Linux-4.19)"),
           confidence="likely"),
    Change("default_kernel_pte_mask", "", "x86/mm: introduce \"default\" kernel PTE mask",
           (4, 17), "PAGE_KERNEL masked by __default_kernel_pte_mask (no GLOBAL with PTI)",
           {"default_kernel_pte_mask": True},
           sources=("[PATCH 03/11] x86/mm: introduce \"default\" kernel PTE mask, Dave Hansen, v5 2018-04-02 "
                    "(index:28594216281)", "arch/x86/include/asm/pgtable_types.h @ v4.19", "commit not pinned: searched the reference index (exact-subject and diff-line string search over list archives: tip-bot, stable review, 0day blame) and the stored web pages; the v4/v5 patch mails were found (index:28775634018, 28594216281) but no tip-bot mail or Fixes: line with the merged id; stable backports not checked"),
           confidence="likely"),
    Change("alloc_low_pages_extend_brk", "", "alloc_low_pages: no 'ran out of memory' panic, extend_brk() fallback",
           (4, 19), "alloc_low_pages: memblock only while min_pfn_mapped < max_pfn_mapped, else extend_brk() "
           "when can_use_brk_pgt; only 'can not alloc memory' panics",
           {"alloc_ran_out_panic": False, "alloc_extend_brk_fallback": True},
           sources=("arch/x86/mm/init.c @ v4.19 (0x88888888/Linux-4.19), 5.10 (index:13031708560)", "commit not pinned: searched the reference index (exact-subject and diff-line string search over list archives: tip-bot, stable review, 0day blame) and the stored web pages; the commit that dropped the 'ran out of memory' panic was not identified; stable backports not checked"),
           confidence="likely"),
    Change("fixmap_two_pmds", "", "x86/mm: the fixmap below the vsyscall page in two PMDs (FIXMAP_PMD_NUM)",
           (4, 19), "level2_fixmap_pgt links FIXMAP_PMD_NUM = 2 pages of level1_fixmap_pgt ([506], [507]); "
           "FIXADDR_TOP moves to round_up(VSYSCALL_ADDR + 4K, 2M) - 4K (fixmap index 0 in slot 507)",
           {"fixmap_pmd_num": 2, "fixmap_top_slot": 507},
           sources=("arch/x86/include/asm/fixmap.h @ 4.19.0 lines 23-25, 53-54; head_64.S 448-461 "
                    "(research/kernel_x86_64.md A.2)", "commit not pinned: searched the reference index (exact-subject and diff-line string search over list archives: tip-bot, stable review, 0day blame) and the stored web pages; no mail for 'x86/mm: Expand static page table for fixmap space' (Feng Tang, 2018) was found in the index, so neither its id nor its stable backports (it was marked for stable) are checked here"),
           confidence="likely"),
    Change("direct_map_ffff888", "d52888aa2753", "x86/mm: Move LDT remap out of KASLR region on 5-level paging",
           (4, 20), "the direct map moves to 0xffff888000000000 (PGD slot 273; 5-level 0xff11000000000000); "
           "5-level paging available",
           {"page_offset": 0xFFFF888000000000, "page_offset_l5": 0xFF11000000000000, "la57_supported": True},
           stable={"4.19": 5, "4.14": 84},
           sources=("kexec list: 'merged into v4.20-rc2', 'backported to 4.19.5 as 4074ca7d8a18' "
                    "(index:10208260303)", "[PATCH 4.14 48/62] 2018-11-26 (index:23520648474)",
                    "arch/x86/include/asm/page_64_types.h @ v5.10"),
           confidence="likely"),
    Change("p4d_walk_by_vaddr", "432c833218dd",
           "x86/mm: Handle physical-virtual alignment mismatch in phys_p4d_init()",
           (5, 2), "phys_p4d_init walks by virtual address to the end of the call: with 5-level paging a call "
           "spanning PML5 regions walks a lower region's P4D page again (its leaves counted twice; holes "
           "there mapped with the higher region's addresses)",
           {"p4d_walk_by_vaddr": True},
           sources=("tip-bot x86/urgent 432c833218dd, 2019-06-26, shortlog beside 'Linux 5.2-rc7' "
                    "(research/kernel_x86_64.md B.3)", "arch/x86/mm/init_64.c @ 5.10.44, 6.1.119, 6.12 (vaddr "
                    "loop); 4.19.1, 4.20 (PTRS_PER_P4D loop)",
                    "unmerged fix: Yuntao Wang 2022-06-16, 'Fixes: 432c833218dd'"),
           confidence="likely"),
    Change("e820_max_entries", "", "x86/boot/e820: E820_MAX_ENTRIES in asm/e820/types.h (the e820 rework)",
           (4, 12), "the kernel's e820 table holds E820_MAX_ENTRIES_ZEROPAGE + 3 * MAX_NUMNODES entries "
           "whatever CONFIG_EFI says (before: E820_X_MAX, the extra entries only with CONFIG_EFI)",
           {"e820_extra_entries_need_efi": False},
           sources=("arch/x86/include/asm/e820/types.h @ 5.10, 6.1, 6.12: '#define E820_MAX_ENTRIES "
                    "(E820_MAX_ENTRIES_ZEROPAGE + 3*MAX_NUMNODES)' outside any #ifdef",
                    "oracle: Debian 6.1.192 686-pae (CONFIG_EFI=y, no NUMA) prints 131 'user:' entries and "
                    "'too many entries; ignoring ...' for the 132nd",
                    "before: 'the maximum size of e820 map array for EFI systems is defined as E820_X_MAX "
                    "(E820MAX + 3 * MAX_NUMNODES)' (x86/e820: Use much less memory for e820/e820_saved, "
                    "Denys Vlasenko, 2016-09-18, lkml 20160918182125.21000-1-dvlasenk)",
                    "commit not pinned: the rename to E820_MAX_ENTRIES in the 4.12 e820 rework (Ingo Molnar's "
                    "x86/boot/e820 series) was searched for, its commit id not found"),
           confidence="likely"),
    Change("e820_soft_reserved", "262b45ae3ab4", "x86/efi: EFI soft reservation to E820 enumeration",
           (5, 5), "e820: 'soft reserved' type; e820_nomerge() for PRAM and SOFT_RESERVED",
           {"e820_soft_reserved": True, "e820_nomerge": (12, 0xEFFFFFFF)},
           sources=("'has already shipped since v5.5: 262b45ae3ab4' (index:14115154430)",),
           confidence="verified"),
    Change("generic_ptdump", "2ae27137b2db", "x86: mm: convert dump_pagetables to use walk_page_range",
           (5, 6), "ptdump: top-level holes of 4-level paging shown as p4d",
           {"ptdump_generic": True},
           sources=("arch/x86/mm/dump_pagetables.c @ 5.10 (ptdump_walk_pgd)",
                    "2ae27137b2db named in Fixes: by Juergen Gross (index:4670106984) and Steven Price "
                    "(index:28629723107); Steven Price's generic ptdump series via the mm tree (mmotm 'Applying:' "
                    "log, index:18085198048) for 5.6; a rework, not backported"),
           confidence="likely"),
    Change("init_memory_mapping_prot", "c164fbb40c43", "x86/mm: thread pgprot_t through init_memory_mapping()",
           (5, 7), "init_memory_mapping takes prot; 1G leaves built as prot | __PAGE_KERNEL_LARGE (GLOBAL "
           "again under PTI)",
           {"pud_large_from_prot": True},
           sources=("0day blame 'c164fbb40c43f8 Logan Gunthorpe 2020-04-10' (index:38524516790)",
                    "v5.7-rc1 tagged 2020-04-12, the commit dated 2020-04-10 (index:2499227718)"),
           confidence="likely"),
    Change("brk_printk_removed", "67d631b7c05e", "x86/mm: Stop printing BRK addresses",
           (5, 8), "alloc_low_pages no longer prints 'BRK [..] PGTABLE'",
           {"log_brk": LEVEL_NONE},
           stable={"4.4": 228, "4.9": 228, "4.14": 185, "4.19": 129, "5.4": 48, "5.7": 5},
           sources=("tip-bot x86/cleanups Commit-ID 67d631b7c05e (index:47569444744)",
                    "AUTOSEL 2020-06-08 for 5.7/4.19/4.9/4.4 (index:31465040048, 31362353629, 32012338000, "
                    "31999329967)", "[PATCH 5.7 214/376], 5.7.5-rc1 review (index:30429698046, 30808987485)"),
           confidence="verified"),
    Change("memblock_bottom_up_no_kernel_end", "2dcb39645441",
           "memblock: do not start bottom-up allocations with kernel_end",
           (5, 11), "memblock bottom-up searches no longer start at kernel_end",
           {"memblock_bottom_up_clamp": False},
           stable={"4.4": 258, "4.9": 258, "4.14": 222, "4.19": 175, "5.4": 97, "5.10": 15},
           sources=("torvalds/linux v5.11-rc7 2dcb39645441 (index:18990913148)",
                    "[PATCH 4.4 14/35] '[ Upstream commit 2dcb39645441 ]' (index:2467879320)",
                    "review covers 4.9.258, 4.14.222, 4.19.175, 5.4.97 (index:3374746463, 2763345883, "
                    "13840899148, 13805719442)"),
           confidence="verified"),
    Change("pgt_buf_5level", "167dcfc08b0b", "x86/mm: Increase pgt_buf size for 5-level page tables",
           (5, 12), "BRK buffer 2 x INIT_PGD_PAGE_TABLES: 6 pages, 8 with CONFIG_X86_5LEVEL, doubled with "
           "RANDOMIZE_MEMORY",
           {"pgt_buf_pages": 6, "pgt_buf_pages_randomize": 12, "pgt_buf_pages_5level": 8,
            "pgt_buf_pages_5level_randomize": 16, "default_5level_config": True},
           not_in_stable=("5.10",),
           sources=("tip-bot x86/mm Commit-ID 167dcfc08b0b (index:37643012231)",
                    "Debian linux changelog 5.10.262-1: no pgt_buf entry in any 5.10.y section"),
           confidence="verified"),
    Change("memblock_find_in_range_private", "a7259df76702", "memblock: make memblock_find_in_range method private",
           (5, 15), "page tables and the real_end probe block via memblock_phys_alloc_range (the probe "
           "block is freed again)",
           {"alloc_uses_phys_alloc_range": True, "real_end_alloc_and_free": True},
           sources=("patch v3 with the arch/x86/mm/init.c hunk (index:46100203408)",
                    "Fixes: a7259df76702 (index:5666376935)"),
           confidence="likely"),
    Change("pud_leaf_pse_only", "88e0a74902f8", "x86/mm: Use proper mask when setting PUD mapping",
           (6, 0), "1G leaves built as prot | _PAGE_PSE again, so PTI's missing GLOBAL stays missing",
           {"pud_large_from_prot": False},
           stable={"5.10": 138, "5.15": 63, "5.19": 4},
           sources=("[PATCH 5.19 005/365], [PATCH 5.15 004/244], [PATCH 5.10 003/158] 2022-08-23 "
                    "(index:11121627158, 11163616437, 41796053913)",
                    "Debian linux changelog 5.10.262-1, upstream 5.10.138 entry",
                    "oracle: Debian 6.1.192 under QEMU with PTI: 1G leaves 0x...e3"),
           confidence="verified"),
    Change("pti_cmdline_early_param", "0bd7feb2df7e", "x86/pti: Fix kernel warnings for pti= and nopti cmdline options",
           (6, 7), "pti=/nopti become early parameters, the last one wins; mitigations=off now overrides pti=on",
           {"pti_cmdline_rule": "mitigations_first"},
           not_in_stable=("6.1",),
           sources=("tip-bot x86/bugs 0bd7feb2df7e, 2023-10-20 (index:21662518784)",
                    "absent from 6.1.187 arch/x86/mm/pti.c (Debian source; research/kernel_x86_64_more.md 2.4)"),
           confidence="likely"),
    Change("e820_zap_keep_acpi", "5574b368873d",
           "x86/mm: Do not zap page table entries mapping unaccepted memory table during kdump",
           (6, 11), "phys_p4d/pud/pmd/pte_init keep an entry past the end when its block has E820_ACPI too",
           {"e820_keep_types": (1, 3, 128)},
           not_in_stable=("5.10", "6.1"),
           sources=("tip-bot x86/cc 5574b368873d (index:48430786719); x86/cc pull for v6.11-rc1 "
                    "(index:31273368364)", "v2 covering all four levels (index:1211670658)",
                    "6.12.107 init_64.c 485-493, 542-550, 631-639, 719-728; absent from 5.10.262 and 6.1.187 "
                    "(Debian sources)"),
           confidence="verified"),
    Change("e820_end_ram_pfn_acpi", "06fa48d85b09", "x86/mm: Make e820__end_ram_pfn() cover E820_TYPE_ACPI ranges",
           (6, 11), "max_pfn, max_low_pfn and the 'last_pfn =' line count E820_ACPI entries as well as RAM",
           {"end_pfn_types": (1, 3)},
           not_in_stable=("5.10", "6.1"),
           sources=("tip-bot x86/cc 06fa48d85b09 (index:48360689655); x86/cc pull for v6.11-rc1 "
                    "(index:31273368364)", "6.12.107 e820.c 830-873 vs 6.1.187 829-872 (Debian sources)"),
           confidence="verified"),
    Change("real_end_alloc_check", "631ca8909fd5", "x86/mm: Check return value from memblock_phys_alloc_range()",
           (6, 15), "a failed real_end probe allocation warns 'Failed to release memory for "
           "alloc_low_pages()' and uses ALIGN_DOWN(end, PMD_SIZE)",
           {"real_end_check_return": True},
           stable={"6.1": 141, "6.6": 93, "6.12": 31, "6.14": 9},
           not_in_stable=("5.15", "5.10"),
           sources=("tip-bot x86/core Commit-ID 631ca8909fd5 (index:48301813823; fd5935f9c204 was its rebased-"
                    "away tip id)", "AUTOSEL 2025-05-05 for 6.14/6.12/6.6/6.1 (index:13160172489, 13673999976, "
                    "13472872425, 13575415174)", "oracle: Debian 6.1.192 prints 'Failed to release memory for "
                    "alloc_low_pages()'"),
           confidence="verified"),
    Change("e820_reserved_kern_removed", "efe659ac0146",
           "x86/e820: Drop obsolete E820_TYPE_RESERVED_KERN and related code",
           (6, 15), "no RESERVED_KERN any more (e820__reserve_setup_data is gone): the zap rule keeps RAM and "
           "ACPI only",
           {"e820_keep_types": (1, 3)},
           not_in_stable=("5.10", "6.1", "6.12"),
           sources=("tip-bot x86/boot efe659ac0146 (index:48619786836); x86/boot pull for v6.15 "
                    "(index:37048050884)", "6.18.15 init_64.c 485-491 (Debian trixie-backports source); absent "
                    "from 6.12.107"),
           confidence="verified"),
    Change("x86_5level_unconditional", "7212b58d6d71", "x86/mm/64: Make 5-level paging support unconditional",
           (6, 16), "no CONFIG_X86_5LEVEL: the BRK buffer is 8 pages (16 with RANDOMIZE_MEMORY) and "
           "level4_kernel_pgt is in every image",
           {"x86_5level_always": True},
           not_in_stable=("6.12",),
           sources=("tip-bot x86/merge 7212b58d6d71 (index:48731285581); LWN 6.16 merge window (index:62441323844)",
                    "6.18.15 arch/x86/mm/init.c 178-187; 6.12.107 still has the #ifndef CONFIG_X86_5LEVEL choice"),
           confidence="verified"),
    Change("pti_attack_vectors", "02c7d5b8e0d1", "x86/pti: Add attack vector controls for PTI",
           (6, 17), "only pti=auto follows mitigations=off (the user/kernel attack vector): pti=on wins again",
           {"pti_cmdline_rule": "attack_vectors"},
           sources=("tip-bot x86/bugs 02c7d5b8e0d1, 2025-07-11 (index:8436285225)", "6.17.8, 6.18.15 pti.c 88-107"),
           confidence="likely"),
]

# -- the i386 fixmap / pkmap / lowmem geometry (emu.kernel.arch.x86.fixmap) -----------
# Releases are checked against release trees (research/kernel_i386.md §0, and the trees named
# below); where two neighbouring checked trees bracket a change, the summary says so and the
# mainline release given is the first checked tree that has it.  A commit is given where a mail
# or report in the reference index names it (see each entry's sources); "" where none was found.
_FIXMAP_H = "arch/x86/include/asm/fixmap.h"
_PGT32 = "arch/x86/include/asm/pgtable_32_types.h"
I386_GEOMETRY_CHANGES: List[Change] = [
    Change("i386_pvclock_fixmap", "", "x86: pvclock vsyscall pages in the fixmap (PVCLOCK_FIXMAP_BEGIN..END)",
           (3, 8), "i386 fixmap: PVCLOCK_VSYSCALL_NR_PAGES slots after FIX_VDSO with CONFIG_PARAVIRT_CLOCK "
           "(the block sits outside the 64-bit-only #ifdef until 3.10)",
           {"i386_fix_pvclock": True},
           sources=(_FIXMAP_H + " @ 3.8.13 L85-88, 3.9.6 L85-88, 3.10.99 L84-88 (research/kernel_i386.md 1.1)",
                    "arch/x86/include/asm/pvclock.h @ 3.10.99 L94-100 (PVTI_SIZE, PVCLOCK_VSYSCALL_NR_PAGES)", "commit not pinned: searched the reference index (exact-subject and diff-line string search over list archives: tip-bot, stable review, 0day blame) and the stored web pages; the pvclock vsyscall series (Marcelo Tosatti, 3.8) was not found with its commit id"),
           confidence="likely"),
    Change("i386_ro_idt_fixmap", "", "x86: Use a read-only IDT alias on all CPUs (FIX_RO_IDT replaces FIX_F00F_IDT)",
           (3, 10), "i386 fixmap: FIX_RO_IDT (always) before the kmap block; FIX_F00F_IDT "
           "(CONFIG_X86_F00F_BUG) gone",
           {"i386_fix_ro_idt": True, "i386_fix_f00f": False},
           sources=(_FIXMAP_H + " @ 3.9.6 L107-109 (F00F), 3.10.99 L107 (RO_IDT)", "commit not pinned: searched the reference index (exact-subject and diff-line string search over list archives: tip-bot, stable review, 0day blame) and the stored web pages; no tip-bot mail or Fixes: line for 'x86: Use a read-only IDT alias on all CPUs' was found"),
           confidence="likely"),
    Change("i386_cyclone_fixmap_removed", "", "x86: FIX_CYCLONE_TIMER (Summit cyclone timer) leaves the fixmap",
           (3, 10), "i386 fixmap: no FIX_CYCLONE_TIMER (CONFIG_X86_CYCLONE_TIMER)",
           {"i386_fix_cyclone": False},
           sources=(_FIXMAP_H + " @ 3.9.6 L110-112 present, 3.10.99 absent", "commit not pinned: searched the reference index (exact-subject and diff-line string search over list archives: tip-bot, stable review, 0day blame) and the stored web pages; the commit removing FIX_CYCLONE_TIMER was not found"),
           confidence="likely"),
    Change("i386_pvclock_fixmap_64bit_only", "", "x86: the pvclock fixmap pages only on 64-bit",
           (3, 11), "i386 fixmap: no PVCLOCK pages (the block moved inside the 64-bit-only #ifdef)",
           {"i386_fix_pvclock": False},
           sources=(_FIXMAP_H + " @ 3.10.99 L84-88 (common part), 3.11.0 L84-88 (64-bit only)", "commit not pinned: searched the reference index (exact-subject and diff-line string search over list archives: tip-bot, stable review, 0day blame) and the stored web pages; the commit moving the PVCLOCK fixmap block under the 64-bit #ifdef was not found"),
           confidence="likely"),
    Change("i386_compat_vdso_removed", "", "x86, vdso: remove the compat vDSO (FIX_VDSO, USER bit in PDE_IDENT_ATTR)",
           (3, 15), "i386 fixmap: no FIX_VDSO; head_32's PDE_IDENT_ATTR loses _PAGE_USER (0x067 -> 0x063), "
           "in its page-table entries and the initial_pg_fixmap entry",
           {"i386_fix_vdso": False, "i386_pde_ident_attr": 0x063},
           not_in_stable=("3.10", "3.14"),
           sources=(_FIXMAP_H + " @ 3.14.1 L77 (FIX_VDSO), 3.15.5 (absent)",
                    "arch/x86/include/asm/pgtable_types.h @ 3.14.1 L218-223 (0x067, 'USER bit ... VDSO'), "
                    "3.15.5 L218 (0x063); 3.10.99 L192 and 3.14.65 L223 still 0x067 (no stable backport)", "commit not pinned: searched the reference index (exact-subject and diff-line string search over list archives: tip-bot, stable review, 0day blame) and the stored web pages; no mail naming the id of the compat-vDSO removal (Andy Lutomirski, 3.15) was found"),
           confidence="likely"),
    Change("i386_visws_removed", "", "x86: remove the SGI Visual Workstation (VISWS) fixmap slots",
           (3, 15), "i386 fixmap: no FIX_CO_CPU/FIX_CO_APIC/FIX_LI_PCIA/FIX_LI_PCIB (CONFIG_X86_VISWS_APIC)",
           {"i386_fix_visws": False},
           sources=(_FIXMAP_H + " @ 3.9.6 L101-106, 3.14.1 present; 3.15.5 absent", "commit not pinned: searched the reference index (exact-subject and diff-line string search over list archives: tip-bot, stable review, 0day blame) and the stored web pages; no mail naming the id of the VISWS removal was found"),
           confidence="likely"),
    Change("i386_reservetop_pmd", "", "x86: reserve_top_address rounds FIXADDR_TOP down to a PMD",
           (3, 16), "reservetop= (and Xen) set __FIXADDR_TOP = round_down(-reserve, PMD_SIZE) - PAGE_SIZE "
           "instead of -reserve - PAGE_SIZE",
           {"i386_reservetop_pmd_aligned": True},
           sources=("arch/x86/mm/pgtable.c @ 3.15.5 L454 (-reserve - PAGE_SIZE), 3.16.0 L459 (round_down); "
                    "6.1.119 L635-639", "commit not pinned: searched the reference index (exact-subject and diff-line string search over list archives: tip-bot, stable review, 0day blame) and the stored web pages; the commit that rounds reserve_top_address to a PMD was not identified"),
           confidence="likely"),
    Change("i386_btmaps_8_slots", "", "x86: FIX_BTMAPS_SLOTS 4 -> 8 (512 early_ioremap pages)",
           (3, 17), "i386 fixmap: TOTAL_FIX_BTMAPS = 512 (rounding unit of the early_ioremap block); "
           "the stable sublevels given are the first trees/logs seen with 8 slots (3.10.4 and 3.14.1 still have "
           "4): the backport may be older",
           {"i386_btmaps_slots": 8},
           stable={"3.10": 98, "3.14": 65, "3.16": 7},
           sources=(_FIXMAP_H + " @ 3.16.0 L116 (4), 3.17.0 L116 (8); 3.10.4 L146 (4), 3.10.99 L133 (8); "
                    "3.14.1 L133 (4), 3.14.65 L133 (8)",
                    "corpus: 3.10.98-poky-edison prints 'fixmap : 0xfff8b000' and 'pkmap : 0xff800000' (P = 116, "
                    "only 8 slots put the boot-time bottom below 0xffa00000); Ubuntu 3.16.0-57 (3.16.7-ckt20) "
                    "887MB LOWMEM with NR_CPUS 8 needs 8 slots", "commit not pinned: searched the reference index (exact-subject and diff-line string search over list archives: tip-bot, stable review, 0day blame) and the stored web pages; the commit raising FIX_BTMAPS_SLOTS to 8 was not identified"),
           confidence="corpus"),
    Change("i386_pkmap_below_permanent_fixmap", "", "x86: PKMAP_BASE below FIXADDR_START (FIXADDR_BOOT_START gone)",
           (3, 19), "PKMAP_BASE = (FIXADDR_START - (LAST_PKMAP+1) pages) & PMD_MASK: from the permanent "
           "fixmap only, the early_ioremap slots may overlap the pkmap window",
           {"i386_pkmap_rule": "permanent"},
           sources=(_PGT32 + " @ 3.18.19 (FIXADDR_BOOT_START), 3.19.8 L40-47, 4.4.178, 4.9.115, 4.14.5",
                    _FIXMAP_H + " @ 3.18 L139-141 (FIXADDR_BOOT_START), removed in 3.19.8", "commit not pinned: searched the reference index (exact-subject and diff-line string search over list archives: tip-bot, stable review, 0day blame) and the stored web pages; the commit removing FIXADDR_BOOT_START was not identified"),
           confidence="likely"),
    Change("i386_gdt_remap_fixmap", "69218e47994d", "x86: Remap GDT tables in the fixmap section",
           (4, 12), "i386 fixmap: FIX_GDT_REMAP_BEGIN..END (NR_CPUS pages) at the end of the permanent part",
           {"i386_fix_gdt_remap": True},
           sources=(_FIXMAP_H + " @ 4.9.76 / 4.9.115 absent, 4.12.0 (jason50123/linux-4.12) L103-105, "
                    "4.14.5 L103-105",
                    "commit 69218e47994da614e7af600bf06887750ab6657a (Thomas Garnier, 2017-03-14): 0day report "
                    "'first introduced by commit' (index:39638829498); 'in Linux 4.12' (index:34297623248); "
                    "not in 4.9.y (missing dependency of a 4.9.178 backport, index:33356126607)"),
           confidence="likely"),
    Change("i386_cpu_entry_area", "92a0f81d8957", "x86/cpu_entry_area: Move it out of the fixmap",
           (4, 15), "the cpu_entry_area (40 pages per CPU + the read-only IDT page) lies below "
           "FIXADDR_TOT_START, PMD-aligned; PKMAP_BASE a PMD below it; FIX_RO_IDT and FIX_GDT_REMAP gone. "
           "4.14.y: with the PTI backport (4.14.11; 4.14.5 without, 4.14.67 with)",
           {"i386_pkmap_rule": "cea", "i386_cea_pages_per_cpu": 40, "i386_fix_ro_idt": False,
            "i386_fix_gdt_remap": False},
           stable={"4.14": 11},
           sources=(_PGT32 + " @ 4.14.67 L41-58, 4.15.0 (FengQingQi/linux-4.15) L45-50",
                    _FIXMAP_H + " @ 4.15.0 and 4.14.67: no FIX_RO_IDT, no FIX_GDT_REMAP",
                    "'PTI v4.14 backporting base tree' merge: the PTI commits shared by 4.15 and 4.14 "
                    "(linux.googlesource.com gregkh/tty 779f4e1c6c7c^)",
                    "commit 92a0f81d8957 (Thomas Gleixner, 2017-12-20): named with its subject in a stable "
                    "backport's dependency list (index:33356126607); 0day blame '92a0f81d89571e Thomas Gleixner "
                    "2017-12-20' (index:46583398595); the 4.14.y sublevel is from trees, no review mail found"),
           confidence="likely"),
    Change("i386_ghes_fixmap", "", "ACPI / APEI: GHES mappings through the fixmap (FIX_APEI_GHES_IRQ/NMI)",
           (4, 15), "i386 fixmap: two GHES pages with CONFIG_ACPI_APEI_GHES at the end of the permanent part; "
           "the 4.14.y sublevel is the first tree seen with them",
           {"i386_fix_ghes": True},
           stable={"4.14": 67},
           sources=(_FIXMAP_H + " @ 4.14.5 absent, 4.14.67 and 4.15.0 L104 present, 4.19.72 L112-116", "commit not pinned: searched the reference index (exact-subject and diff-line string search over list archives: tip-bot, stable review, 0day blame) and the stored web pages; the GHES fixmap commit (James Morse, 'ACPI / APEI: Replace ioremap_page_range() with fixmap') was not found with its id; its release should be rechecked (4.14.5 without, 4.14.67 with the slots)"),
           confidence="likely"),
    Change("i386_ldt_area", "", "x86/ldt: Reserve address-space range on 32 bit for the LDT",
           (4, 19), "LDT_BASE_ADDR = a PMD below CPU_ENTRY_AREA_BASE, PKMAP_BASE a PMD below that; "
           "VMALLOC_END below LDT_BASE_ADDR without HIGHMEM",
           {"i386_pkmap_rule": "cea_ldt"},
           sources=(_PGT32 + " @ 4.16.13 (no LDT_BASE_ADDR), 4.19.72 L43-71",
                    "patch: Joerg Roedel's x86_32 PTI series, [PATCH 29/34] 2018-03-05 and [PATCH 31/37] 2018-04-23 "
                    "with the LDT_BASE_ADDR/PKMAP_BASE hunk (index:3733795525, 28246973276); the series' sibling "
                    "'x86/ldt: Define LDT_END_ADDR' is 8195d869d118 (0day blame 2018-07-18, index:46583398595); "
                    "commit not pinned: this commit's own id was not found (no tip-bot mail or blame line for it in the index)"),
           confidence="likely"),
    Change("i386_text_poke_fixmap_removed", "b3fd8e83ada0", "x86/alternatives: Use temporary mm for text poking",
           (5, 2), "i386 fixmap: no FIX_TEXT_POKE1/FIX_TEXT_POKE0",
           {"i386_fix_text_poke": False},
           sources=(_FIXMAP_H + " @ 5.0 (jacklin9/linux-5.0) present, 5.2.1 (wangliang-cs/linux-5.2.1) absent",
                    "tip-bot x86/mm Commit-ID b3fd8e83ada0d51b71a84297480187e2d40e5ded (Nadav Amit), CommitDate "
                    "2019-04-30, fixmap.h hunk dropping FIX_TEXT_POKE1/FIX_TEXT_POKE0 (index:44569191939); a "
                    "feature, not backported (4.19.y keeps the slots: research/kernel_i386.md, 4.19 P = 714)"),
           confidence="likely"),
    Change("i386_cea_39_pages", "05b042a19443",
           "x86/pti/32: Calculate the various PTI cpu_entry_area sizes correctly, make the "
           "CPU_ENTRY_AREA_PAGES assert precise",
           (5, 5), "the cpu_entry_area is 39 pages per CPU (with 880a98c33996's entry-stack guard page). "
           "No mainline release has 39: 5.4 has 40, and 5.5 merged it with the x86/iopl TSS growth (43, "
           "i386_cea_sizeof); only the stable branches carry 39",
           {"i386_cea_pages_per_cpu": 39},
           stable={"5.3": 14, "5.4": 1},
           sources=(_PGT32 + " @ 5.3.1 (github-lvbing/linux-5.3.1) L47 (40), 5.4.59 L47 (39)",
                    "tip x86/urgent 2019-11-24 (Commit-ID 4d6dd252b80e, later rebased): diff 40 -> 39, "
                    "'by accident CPU_ENTRY_AREA_PAGES is defined too large upstream (v5.4-rc8): NR_CPUS * 40' "
                    "(index:47823278897); mainline id 05b042a19443 named by Ingo Molnar in the 5.5 x86 pull "
                    "notes and in 0bcd7762727d's Fixes: (index:45471041716, 47903628487)",
                    "5.4.1: Debian linux changelog 5.10.262-1, entry 5.4.2-1~exp1, upstream 5.4.1; 'Linux 5.4.1' "
                    "shortlog (index:11395249583)",
                    "5.3.14: review cover 5.3.14-rc1 (index:11272231952); Debian entry 5.3.15-1, upstream 5.3.14",
                    "also in 4.14.157 and 4.19.87 (review covers index:10894275466, 10900337074, with 880a98c33996 "
                    "'Add guard page for entry stack on 32bit'), but the page count those backports define was not "
                    "read: not modelled for 4.14.y/4.19.y"),
           confidence="verified"),
    Change("i386_cea_sizeof", "", "x86/iopl TSS I/O bitmap (5.5, 43 pages); CPU_ENTRY_AREA_PAGES from "
           "sizeof(struct cpu_entry_area) since 186525bd6b83 (5.6)",
           (5, 5), "the cpu_entry_area is DIV_ROUND_UP(sizeof(struct cpu_entry_area), 4K) = 43 pages per CPU "
           "on i386 (GDT, guard, entry stack, guard, double-fault stack, 5-page TSS with the I/O bitmap, "
           "debug store, 32 pages of BTS/PEBS buffers); pgtable_32_areas.h. Bracket: 5.4.59 (39) .. 5.7.14",
           {"i386_cea_pages_per_cpu": 43},
           sources=("arch/x86/include/asm/pgtable_32_areas.h @ 5.7.14 L27, 5.8.1, 5.10.44 L27, 6.1.119 L27",
                    "arch/x86/include/asm/cpu_entry_area.h and processor.h: the 32-bit struct is the same in "
                    "5.7.14, 5.8.1 and 5.10.44",
                    "Debian 5.10.223/6.1.192 vmlinuz: get_cpu_entry_area steps 0x2b000 per CPU "
                    "(research/kernel_i386.md 2.6)",
                    "commit not pinned: the 43 reached mainline in the 5.5 merge window as a literal "
                    "'NR_CPUS * 43' (the base that 186525bd6b83 removes, index:47274874461) when the x86/iopl series "
                    "(111e7b15cf10 'x86/ioperm: Extend IOPL config to control ioperm() as well', named in tip "
                    "0bcd7762727d, index:47903628487) met 05b042a19443's exact-size rule; which commit or merge "
                    "wrote 43 was not found",
                    "186525bd6b83 'mm, x86/mm: Untangle address space layout definitions from basic pgtable type "
                    "definitions' (tip x86/mm 2020-01-10, index:47274874461; torvalds master per 0day "
                    "index:12472389419) moved it to pgtable_32_areas.h as the sizeof() form, same value",
                    "not in 5.4.y (5.4.59 has 39)"),
           confidence="likely"),
    Change("i386_paravirt_bootmap_xxl", "", "x86/paravirt: FIX_PARAVIRT_BOOTMAP only with CONFIG_PARAVIRT_XXL",
           (5, 10), "i386 fixmap: FIX_PARAVIRT_BOOTMAP needs CONFIG_PARAVIRT_XXL (Xen PV) instead of "
           "CONFIG_PARAVIRT",
           {"i386_paravirt_bootmap_option": "PARAVIRT_XXL"},
           sources=(_FIXMAP_H + " @ 5.9.1 (ach84/linux-5.9.1) L102 (PARAVIRT), 5.10.44 L102 (PARAVIRT_XXL)", "commit not pinned: searched the reference index (exact-subject and diff-line string search over list archives: tip-bot, stable review, 0day blame) and the stored web pages; the commit moving FIX_PARAVIRT_BOOTMAP under CONFIG_PARAVIRT_XXL was not found"),
           confidence="likely"),
    Change("i386_kmap_local", "157e118b5511", "x86/mm/highmem: Use generic kmap atomic implementation",
           (5, 11), "i386 fixmap: the kmap block is KM_MAX_IDX (16, 33 with DEBUG_KMAP_LOCAL) x NR_CPUS "
           "under CONFIG_KMAP_LOCAL, which X86_32 selects",
           {"i386_kmap_rule": "kmap_local"},
           sources=(_FIXMAP_H + " @ 5.10.44 L95-97 (KM_TYPE_NR), 5.11.0 L102-103 (KM_MAX_IDX), 6.1.119 L101-107",
                    "include/asm-generic/kmap_size.h @ 6.1.119 L6-10; arch/x86/Kconfig @ 6.1.119 L19",
                    "tip-bot core/mm Commit-ID 157e118b55113d1e6c7f8ddfcec0a1dbf3a69511, CommitterDate 2020-11-06, "
                    "fixmap.h KM_TYPE_NR -> KM_MAX_IDX and 'select KMAP_LOCAL' (index:37030983822); a feature, no "
                    "stable backport (not in Debian's 5.10.y changelog)"),
           confidence="likely"),
    Change("i386_lnw_vrtc_removed", "", "x86/platform/intel-mid: Remove unused leftovers (vRTC)",
           (5, 12), "i386 fixmap: no FIX_LNW_VRTC (CONFIG_X86_INTEL_MID)",
           {"i386_fix_lnw_vrtc": False},
           sources=(_FIXMAP_H + " @ 5.11.0 L112 present, 5.12.9 (zhangyinjun/linux-5.12.9) absent",
                    "patch: Andy Shevchenko, [PATCH v1 08/10] 2021-01-25, removes FIX_LNW_VRTC (index:28927664967); "
                    "commit not pinned: the merged id was not found in the index (no tip-bot or Fixes: mail names it)"),
           confidence="likely"),
]
CHANGES[:] = sorted(CHANGES + I386_GEOMETRY_CHANGES, key=lambda c: c.mainline)


@dataclass(frozen=True)
class DistroBackport:
    """A distribution kernel that carries a change its upstream base predates."""

    distro: str
    #: the upstream base versions (major, minor) it applies to
    base: Tuple[int, int]
    change: str
    why: str


#: distribution backports (beyond upstream stable); replay also detects 844ab6f9 from a
#: hex-style log's [mem ...] buffer line (emu.boot.describe.with_backports)
DISTRO_BACKPORTS: List[DistroBackport] = [
    DistroBackport("ubuntu", (3, 0), "mem_printk_and_range_sizing",
                   "Ubuntu's 3.0.0-32 (upstream 3.0.69) prints the buffer line in the [mem ...] form of 844ab6f9 "
                   "and needs its ranges sizing (corpus 3.0.0-32-generic-pae log); only the sizing, not the "
                   "printk style, is taken"),
]

_BY_ID = {c.id: c for c in CHANGES}

#: the top-down patch exactly as posted (v4, 2012-10-18), never merged in this form
SEED_CHANGES = ("memblock_table_space", "mem_printk_and_range_sizing", "top_down_brk")


# ---------------------------------------------------------------------------
# resolution
# ---------------------------------------------------------------------------
class ProfileError(EmuError):
    pass


def _apply(base: Profile, changes: Sequence[Change], **extra: Any) -> Profile:
    fields: Dict[str, Any] = {}
    for c in changes:
        fields.update(c.sets)
    fields.update(extra)
    return dataclasses.replace(base, **fields)


def carried(version: Tuple[int, ...]) -> List[Tuple[Change, bool, str]]:
    """Every change with whether ``version`` carries it and why."""
    return [(c,) + c.carried_by(version) for c in CHANGES]


#: releases named although no change lands in them (the kernels people run)
_EXTRA_NAMES = [(2, 6, 31), (6, 1), (6, 6), (6, 12), (6, 18)]


def _named_versions() -> List[Tuple[int, ...]]:
    return sorted({c.mainline for c in CHANGES} | set(_EXTRA_NAMES))


def _name(version: Tuple[int, ...], changes: Sequence[Change]) -> str:
    """The named release a version's behaviour is (the newest named release at or before its
    mainline release, when the version carries exactly the changes up to its release), else
    the version itself (a stable kernel carrying backports beyond its mainline base)."""
    rel, _ = release_of(version)
    base = [c.id for c in CHANGES if c.mainline <= rel]
    if [c.id for c in changes] == base:
        named = [v for v in _named_versions() if v <= rel]
        if named:
            return _vtext(named[-1])
    return _vtext(tuple(version[:4] if version[:2] == (2, 6) else version[:3]))


def resolve(version: Tuple[int, ...], extra_changes: Sequence[str] = ()) -> Profile:
    """The profile of kernel ``version`` (major, minor[, sublevel]): :data:`BASE` with every
    change the version carries (mainline or stable), plus ``extra_changes`` (ids; a
    distribution's backports), applied in mainline order."""
    if release_of(version)[0] < (2, 6, 31):
        raise ProfileError("no profile for kernel %s (emu models 2.6.31 and later)" % _vtext(tuple(version)))
    cs = [c for c in CHANGES if c.carried_by(tuple(version))[0]]
    name = _name(version, cs)
    for cid in extra_changes:
        if cid not in _BY_ID:
            raise ProfileError("unknown change %r" % cid)
        if all(c.id != cid for c in cs):
            cs.append(_BY_ID[cid])
            name += "+" + (_BY_ID[cid].commit[:8] or cid)
    cs.sort(key=lambda c: CHANGES.index(c))
    rel, _ = release_of(version)
    v = tuple(int(x) for x in name.split("+")[0].split("."))
    summary = "; ".join(c.summary for c in cs if c.mainline == rel) or "as the releases before"
    source = ", ".join(c.commit or c.id for c in cs[-3:])
    return dataclasses.replace(_apply(BASE, cs), name=name, version=v, summary=summary, source=source)


def _seed() -> Profile:
    cs = [_BY_ID[i] for i in SEED_CHANGES]
    return _apply(BASE, cs, name="seed", version=(3, 8), by_version=False,
                  summary="the top-down patch exactly as posted (v4, 2012-10-18): 5-page BRK buffer, "
                          "'pgt_buf_end + 1 >= pgt_buf_top', real_end PAGE_SIZE aligned, step <<= 5, no "
                          "can_use_brk_pgt, no BRK printk; static 1G identity map in the direct-map slot",
                  source="shared/seed/000_27b229a08bbd39d8.txt on tip x86/mm of Oct 2012 (the series' earlier "
                         "patches: Align start address, Use big page size for small memory range, Don't clear "
                         "page table if range is ram, Break down init_all_memory_mapping); head_64.S of 3.6 for "
                         "the early tables; 64-bit alloc_low_page maps its page with early_memremap",
                  brk_full_test="ge", can_use_brk_pgt=False, real_end_page_aligned=True,
                  split_order="merge_adjust", log_brk=LEVEL_NONE, early_direct_map="ident_1g",
                  early_max_pfn_mapped_64=0x20000, pgt_access_va=False)


def _build_named() -> Dict[str, Profile]:
    out: Dict[str, Profile] = {}
    for v in _named_versions():
        p = resolve(v)
        out[p.name] = p
    out["seed"] = _seed()
    return out


PROFILES: Dict[str, Profile] = _build_named()

DEFAULT_PROFILE = "6.18"


def parse_version(text: str) -> Tuple[int, int, int]:
    m = re.match(r"\s*v?(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not m:
        raise ProfileError(f"not a kernel version: {text!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def for_version(version: Tuple[int, ...]) -> Profile:
    """The profile of kernel ``version`` (see :func:`resolve`)."""
    v = tuple(version) + (0,) * (3 - len(version))
    return resolve(v)


def get_profile(name_or_version: str) -> Profile:
    """A profile by name (``3.13``, ``seed``) or by any kernel version (``4.1.0-040100-generic``,
    ``5.10.223``)."""
    if name_or_version in PROFILES:
        return PROFILES[name_or_version]
    return for_version(parse_version(name_or_version))


def profile_table() -> List[Tuple[str, str, Dict[str, Tuple[object, object]]]]:
    """(name, summary, differences from the previous profile), oldest first."""
    rows = []
    prev: Optional[Profile] = None
    for p in sorted(PROFILES.values(), key=lambda p: (p.version, p.by_version)):
        rows.append((p.name, p.summary, p.differences(prev) if prev else {}))
        prev = p
    return rows


def explain(version_text: str) -> dict:
    """What ``emu profiles --version V`` shows: the resolved profile and, per change, whether
    the version carries it and why."""
    v = parse_version(version_text)
    prof = for_version(v)
    return {"version": version_text, "resolved": v, "profile": prof.name,
            "changes": [{"id": c.id, "commit": c.commit, "carried": ok, "why": why, "summary": c.summary,
                         "confidence": c.confidence} for c, ok, why in carried(v)]}
