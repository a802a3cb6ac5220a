"""The inputs of one emulated boot besides the e820 map and the version, and their defaults.

:class:`BootParams` holds what the firmware, the boot loader, the kernel's build and its
command line fix about the boot.  A field left ``None`` was not given: :func:`resolve_params`
fills it with what a typical build of that version does and records an
:class:`Assumption` for it -- but only where the value changes the tables of this paging
mode and profile (a kernel without PTI support needs no PTI assumption).  The boot layer
(:mod:`emu.boot.describe`) derives as much as it can from artefacts first (boot log,
``.config``, System.map, the CPU), so what is left here is what nobody said.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, TypeVar

from emu.kernel.profiles import Profile
from emu.machine.cpu import CpuFeatures

#: CONFIG_PHYSICAL_START of the default configs (16 MiB): where the image is linked and loaded
DEFAULT_KERNEL_START = 0x1000000
#: CONFIG_PAGE_OFFSET of the 3G/1G split (i386)
DEFAULT_PAGE_OFFSET_32 = 0xC0000000


@dataclass(frozen=True)
class Assumption:
    """An input that changes the tables, not given, and set to a default."""

    #: the BootParams field (or "e820", "profile", "command line", ...)
    field: str
    #: the value used, as text
    value: str
    #: why this value, and which inputs would have told
    why: str

    def text(self) -> str:
        return f"assumed {self.field} = {self.value} ({self.why})"

    def to_json(self) -> dict:
        return {"field": self.field, "value": self.value, "why": self.why, "text": self.text()}


#: ``Assumption(field, value, why)``, made once per distinct text (frozen: one object serves
#: every emulation that assumes the same; a batch of maps assumes the same few dozen things)
assumption = functools.lru_cache(maxsize=1024)(Assumption)


@dataclass
class BootParams:
    """What the user (or a boot log, a .config, a System.map) fixes about the boot besides
    e820 and the profile.  ``None``: not given (see :func:`resolve_params`)."""

    #: "x86_64" or "i386"
    arch: str = "x86_64"
    #: i386 only: PAE (3-level, 8-byte entries) or not (2-level, 4-byte entries)
    pae: bool = True
    #: the CPU's features (what the hardware offers)
    cpu: Optional[CpuFeatures] = None
    #: direct_gbpages: the kernel's choice (``gbpages``/``nogbpages``, CONFIG_X86_DIRECT_GBPAGES);
    #: 1G pages need it and the CPU's
    gbpages: Optional[bool] = None
    #: CONFIG_DEBUG_PAGEALLOC active (built in and enabled): 4 KiB pages only
    debug_pagealloc: Optional[bool] = None
    #: CONFIG_RANDOMIZE_MEMORY (BRK buffer size only; page_offset_base is not randomized)
    randomize_memory: Optional[bool] = None
    #: CONFIG_X86_5LEVEL (compile time; BRK buffer size)
    x86_5level_config: Optional[bool] = None
    #: boot with 5-level paging (LA57: the CPU has it, the build supports it, no ``no5lvl``)
    la57: Optional[bool] = None
    #: page-table isolation active (drops GLOBAL from PAGE_KERNEL where the profile says so)
    pti: Optional[bool] = None
    #: memblock bottom-up (``movable_node``)
    movable_node: Optional[bool] = None
    #: physical start of the kernel image (_text; CONFIG_PHYSICAL_START when not relocated)
    kernel_start: Optional[int] = None
    #: physical address of the page-table BRK buffer (pgt_buf_start << 12)
    brk_base: Optional[int] = None
    #: _brk_end when setup_arch's reserve_brk ran (the end of its memblock reservation, as a
    #: memblock=debug log shows it): the page-table buffer is the BRK's last pages, so
    #: brk_base = brk_end - the profile's buffer size (used when brk_base is None)
    brk_end: Optional[int] = None
    #: initrd [start, end) as reserved by early_reserve_initrd (None: no initrd)
    initrd: Optional[Tuple[int, int]] = None
    #: other memblock reservations made before init_mem_mapping, [start, end)
    reserves: List[Tuple[int, int]] = field(default_factory=list)
    #: Xen PV domU: bytes of "extra memory" above nr_pages at the top of the e820 RAM, which
    #: xen_memory_setup/xen_add_extra_mem reserve in memblock (arch/x86/xen/setup.c, 3.x)
    xen_extra_mem: Optional[int] = None
    #: i386: __end_of_fixed_addresses (PTEs find_early_table_space adds for the fixmap, <= 3.8)
    fixmap_ptes: int = 0
    #: command-line memory options (``mem=``, ``memmap=``) applied to e820
    mem_limit: Optional[int] = None
    #: capacity of the kernel's e820 table (``ARRAY_SIZE(e820_table->entries)``: E820_MAX_ENTRIES,
    #: from the .config's NODES_SHIFT and EFI; see emu.boot.from_config.e820_max_entries); an
    #: edit that needs one more entry is ignored ("too many entries").  None: unbounded
    e820_max_entries: Optional[int] = None
    memmap: List[str] = field(default_factory=list)
    #: pa(swapper_pg_dir) / pa(init_top_pgt): the root table CR3 points to.
    #: None (x86-64): a distribution build's layout of that release (setup.typical_x86_64_layout);
    #: (i386): kernel_start + 1 MiB
    swapper_pg_dir_addr: Optional[int] = None

    # -- x86-64: the kernel image's half of init_top_pgt (head_64.S, head64.c) --------
    #: where _text is linked to run, as a physical address (_text - __START_KERNEL_map:
    #: CONFIG_PHYSICAL_START); phys_base = kernel_start - this.  None: kernel_start (not relocated)
    kernel_link_start: Optional[int] = None
    #: physical addresses of the image's static page tables (System.map: level4_kernel_pgt,
    #: level3_kernel_pgt, level2_kernel_pgt, level2_fixmap_pgt, level1_fixmap_pgt, bm_pte).
    #: Missing ones: the pages after init_top_pgt, in head_64.S's order
    image_tables: Dict[str, int] = field(default_factory=dict)
    #: the level2_fixmap_pgt slot early_ioremap_init links bm_pte into (pmd_index of
    #: FIX_BTMAP_BEGIN, from the .config's fixmap enum).  None: 505 (a build with vsyscall
    #: emulation and a few hundred permanent fixmap slots)
    bm_pte_slot: Optional[int] = None

    # -- i386 (arch="i386"): init_32.c, head_32.S, setup.c --------------------
    #: CONFIG_PAGE_OFFSET (__PAGE_OFFSET): 0xC0000000 for the default 3G/1G split
    page_offset_32: Optional[int] = None
    #: MAXMEM in bytes (VMALLOC_END - PAGE_OFFSET - __VMALLOC_RESERVE): lowmem ends here when
    #: RAM goes further. None: from the fixmap/pkmap layout (0x37bfe000 PAE, 0x377fe000)
    lowmem_limit: Optional[int] = None
    #: ``highmem=`` (bytes)
    highmem: Optional[int] = None
    #: pa(_end): head_32 maps [0, _end + MAPPING_BEYOND_END). None: the BRK buffer's end + 0x1f0000
    image_end: Optional[int] = None
    #: pa(__init_end): is_kernel_text is [_text, __init_end] with _text = kernel_start. None: 2/3 of
    #: the way from _text to the BRK
    init_end: Optional[int] = None
    #: vaddr of the lowest boot-time fixmap slot (__fix_to_virt(__end_of_fixed_addresses - 1)).
    #: None: 0xffe13000 (~492 slots, fits the top PMD)
    fixmap_bottom: Optional[int] = None
    #: CONFIG_HIGHMEM kmap fixmap slots [lowest vaddr, highest vaddr]; page_table_range_init copies
    #: their page tables when they span more than one PMD. None: inside one PMD
    kmap_range: Optional[Tuple[int, int]] = None
    #: fixmap PMDs (vaddrs) with a static page table before init_mem_mapping (initial_pg_fixmap,
    #: bm_pte). None: the top PMD and the PMD above fixmap_bottom
    fixmap_static_pmds: Optional[List[int]] = None
    #: CONFIG_HIGHMEM (paging_init's permanent_kmaps_init builds the pkmap page table)
    highmem_config: Optional[bool] = None
    #: pa(__brk_base): head_32's page tables start here (other BRK users, e.g. DMI, may lie
    #: between them and the page-table buffer). None: right below the page-table buffer
    head_brk_base: Optional[int] = None
    #: PAE: pa(initial_pg_pmd) (KPMDS pages). None: right after swapper_pg_dir
    initial_pg_pmd_addr: Optional[int] = None
    #: pa(initial_pg_fixmap): head_32's page table of the top fixmap PMD (PDE_IDENT_ATTR)
    initial_pg_fixmap_addr: Optional[int] = None
    #: pa(bm_pte): early_ioremap_init's page table of the FIX_BTMAP_BEGIN PMD (_PAGE_TABLE)
    bm_pte_addr: Optional[int] = None
    #: vaddr of FIX_BTMAP_BEGIN (early_ioremap's first slot; its PMD gets bm_pte).
    #: None: the slot above fixmap_bottom
    btmap_begin: Optional[int] = None


_T = TypeVar("_T")

#: BootParams' field names (what ``dataclasses.replace`` passes to ``__init__``)
_FIELDS = frozenset(f.name for f in dataclasses.fields(BootParams))


# copy_params bypasses __init__: it must stay a plain dataclass without __post_init__
assert not hasattr(BootParams, "__post_init__"), "BootParams gained __post_init__: copy_params would skip it"


def copy_params(params: BootParams, **changes) -> BootParams:
    """``dataclasses.replace(params, **changes)``, without the keyword round trip through
    ``__init__`` for a plain :class:`BootParams` (no ``__post_init__``, every field in
    ``__init__``): a new object whose fields are ``params``' with ``changes`` applied
    (a shallow copy, as ``replace`` makes).  Subclasses and objects with extra or missing
    attributes go through ``dataclasses.replace``."""
    d = params.__dict__
    if type(params) is not BootParams or d.keys() != _FIELDS or not _FIELDS.issuperset(changes):
        return dataclasses.replace(params, **changes)
    new = object.__new__(BootParams)
    new.__dict__ = d | changes
    return new


def given(value: Optional[_T], name: str) -> _T:
    """A field :func:`resolve_params` (or ``resolve_brk``) has set: the emulation reads
    resolved parameters only, so None here is an emu bug, said as one."""
    if value is None:
        raise AssertionError(f"BootParams.{name} read before resolve_params set it (an emu bug)")
    return value


def resolve_params(profile: Profile, params: BootParams) -> Tuple[BootParams, List[Assumption]]:
    """A copy of ``params`` with every ``None`` the emulation reads filled in, and the
    assumptions made (for the inputs that change this mode's and profile's tables).
    Defaults that need the emulated state (the i386 geometry, the BRK and root-table
    addresses) are resolved, and said, where ``setup_arch`` computes them."""
    p = copy_params(params, reserves=list(params.reserves), memmap=list(params.memmap))
    out: List[Assumption] = []
    is64 = p.arch == "x86_64"

    def say(name: str, value: str, why: str) -> None:
        out.append(assumption(name, value, why))

    if p.cpu is None:
        p.cpu = CpuFeatures()
        feats = "PSE, PGE" + (", 1G pages" if is64 else "") + (", NX" if (is64 or p.pae) else "")
        say("cpu", "a CPU with " + feats, "no --cpu and no CPU facts in the inputs")
    if p.kernel_start is None:
        p.kernel_start = DEFAULT_KERNEL_START
        say("kernel_start", "%#x" % p.kernel_start,
            "CONFIG_PHYSICAL_START's default; no memblock=debug image reservation, no --kernel-start")
    if p.debug_pagealloc is None:
        p.debug_pagealloc = False
        say("debug_pagealloc", "off", "no --config (CONFIG_DEBUG_PAGEALLOC) and no debug_pagealloc= option")
    if p.gbpages is None:
        p.gbpages = True
        if is64 and p.cpu.gbpages and not p.debug_pagealloc:
            say("gbpages", "on", "direct_gbpages is on in default builds (CONFIG_X86_DIRECT_GBPAGES=y) "
                                 "and no nogbpages option was given")
    if p.randomize_memory is None:
        p.randomize_memory = bool(profile.default_randomize_memory)
        if is64 and profile.pgt_buf_pages_randomize is not None:
            say("randomize_memory", "CONFIG_RANDOMIZE_MEMORY=%s" % ("y" if p.randomize_memory else "n"),
                "a distribution build's default; it sizes the BRK page-table buffer; no --config")
    if profile.x86_5level_always:
        p.x86_5level_config = True   # not a build option any more (7212b58d6d71)
    if p.x86_5level_config is None:
        p.x86_5level_config = bool(profile.default_5level_config)
        if is64 and profile.pgt_buf_pages_5level is not None:
            say("x86_5level_config", "CONFIG_X86_5LEVEL=%s" % ("y" if p.x86_5level_config else "n"),
                "a distribution build's default; it sizes the BRK page-table buffer; no --config")
    if p.la57 is None:
        p.la57 = False
        if is64 and profile.la57_supported:
            say("la57", "4-level paging", "no --la57 and no '5-level paging' in the inputs")
    if p.pti is None:
        p.pti = False
        if profile.default_kernel_pte_mask:
            say("pti", "off", "no page-table isolation line in the log, no --pti (PTI clears GLOBAL)")
    if p.movable_node is None:
        p.movable_node = False
    if p.highmem_config is None:
        p.highmem_config = True
    if p.page_offset_32 is None:
        p.page_offset_32 = DEFAULT_PAGE_OFFSET_32
        if not is64:
            say("page_offset_32", "%#x" % p.page_offset_32, "the 3G/1G split (CONFIG_VMSPLIT_3G); no --config")
    return p, out


__all__ = ["Assumption", "BootParams", "assumption", "DEFAULT_KERNEL_START", "copy_params", "given", "resolve_params"]
