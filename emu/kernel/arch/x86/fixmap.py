"""arch/x86/include/asm/fixmap.h on X86_32, and the areas below the fixmap
(pgtable_32_types.h, pgtable_32_areas.h): the i386 fixmap / pkmap / lowmem geometry of a
build, from its ``.config`` and the kernel version's :class:`~emu.kernel.profiles.Profile`.

``enum fixed_addresses`` is data here (:data:`FIXMAP_32`): each member with the config
option(s) that add it, how many slots it takes, the Profile field that says whether this
kernel version's enum has it, and the release trees it was read from.  Index ``i`` lies at
``__fix_to_virt(i) = FIXADDR_TOP - i * PAGE_SIZE``.  After the permanent members
(``__end_of_permanent_fixed_addresses`` = P) come ``TOTAL_FIX_BTMAPS`` = 64 x
``FIX_BTMAPS_SLOTS`` early_ioremap slots (T), moved up to the next multiple of T when P and
P + T - 1 would lie in different page tables (PTRS_PER_PTE = N: 512 PAE, 1024 non-PAE);
then ``FIX_WP_TEST`` (X86_32) and ``FIX_TBOOT_BASE`` (CONFIG_INTEL_TXT), and
``__end_of_fixed_addresses`` = E (fixmap.h 6.1.119 L118-145, same rule in every tree from
3.9.6 L128-155).

Below the fixmap (:func:`layout_32`, by ``Profile.i386_pkmap_rule``):

* "boot" (<= 3.18, pgtable_32_types.h 3.10.99 L40-53): PKMAP_BASE = (FIXADDR_BOOT_START -
  (LAST_PKMAP + 1) pages) & PMD_MASK, FIXADDR_BOOT_START = TOP - E pages;
* "permanent" (3.19 - 4.14, 3.19.8 L40-47): the same from FIXADDR_START = TOP - P pages;
* "cea" (4.15 - 4.18, 4.14.67 L41-58): CPU_ENTRY_AREA_BASE = (FIXADDR_TOT_START -
  (pages + 1) pages) & PMD_MASK, PKMAP_BASE = (CEA - 4K) & PMD_MASK;
* "cea_ldt" (4.19+, 4.19.72 L43-71, pgtable_32_areas.h 6.1.119 L21-51): LDT_BASE_ADDR =
  (CEA - 4K) & PMD_MASK, PKMAP_BASE = (LDT_BASE_ADDR - 4K) & PMD_MASK;

VMALLOC_END = PKMAP_BASE - 2 pages with CONFIG_HIGHMEM, else 2 pages below FIXADDR_START /
CPU_ENTRY_AREA_BASE / LDT_BASE_ADDR; MAXMEM = VMALLOC_END - PAGE_OFFSET - __VMALLOC_RESERVE
(128 MiB, or ``vmalloc=X`` + 8 MiB: pgtable_32.c 3.10.99 L105-114, 6.1.119 L76-85).

What ``init_mem_mapping`` needs of this (BootParams): ``fixmap_bottom`` (the lowest
boot-time slot, E - 1: early_ioremap_page_table_range_init's first PMD), ``btmap_begin``
(FIX_BTMAP_BEGIN: the PMD early_ioremap_init gives ``bm_pte``), ``kmap_range`` (the kmap
slots: page_table_kmap_check copies their page tables when they span PMDs) and
``lowmem_limit`` (MAXMEM); before 3.9, ``fixmap_ptes`` (E: find_early_table_space's PTEs for
the fixmap).  :func:`i386_params_from_config` gives them with their sources.

The config is a plain mapping of option names (with or without ``CONFIG_``) to values as a
``.config`` writes them (``"y"``, ``"m"``, ``"n"``, ``"0x..."``, decimal) or Python bools and
ints; an :class:`emu.inputs.kconfig.KConfig` is read through its ``raw`` mapping.  An option
absent from the mapping is not set (what kconfig writes for an unmet dependency), except
that ``KMAP_LOCAL`` counts as set on i386 (``config X86_32`` selects it, arch/x86/Kconfig
6.1.119 L19) and ``NR_CPUS`` is 1 when absent (``default "1" if !SMP``).

The enum is read from release trees 3.8.13 to 6.1.119 (research/kernel_i386.md section 0
and the trees cited in :data:`emu.kernel.profiles.I386_GEOMETRY_CHANGES`); kernels before
3.8 get 3.8's enum (only ``fixmap_ptes`` is read there: table-space sizing in whole pages).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from emu.errors import EmuError
from emu.kernel.profiles import Profile

PAGE_SIZE = 4096
_M32 = 0xFFFFFFFF
#: __FIXADDR_TOP's initial value (-PAGE_SIZE; pgtable_32.c 3.10.99 L97, 6.1.119 L68)
FIXADDR_TOP = 0xFFFFF000
#: early_ioremap pages per slot (fixmap.h: NR_FIX_BTMAPS)
NR_FIX_BTMAPS = 64
#: MAX_IO_APICS on X86_32 (apicdef.h 3.10.99 L150-154, 6.1.119 L145-149)
MAX_IO_APICS_32 = 64
#: VMALLOC_OFFSET (8 MiB) and the default __VMALLOC_RESERVE (128 MiB), pgtable_32*.h / pgtable_32.c
VMALLOC_OFFSET = 8 << 20
VMALLOC_RESERVE = 128 << 20
#: CONFIG_PAGE_OFFSET of the 3G/1G split
DEFAULT_PAGE_OFFSET = 0xC0000000


#: a config: a mapping of option names to values, or an object with such a ``raw`` mapping
ConfigLike = Any


class FixmapConfigError(EmuError):
    """A config value the fixmap geometry cannot use (one line)."""


# ---------------------------------------------------------------------------
# the config
# ---------------------------------------------------------------------------
class _Config:
    """Uniform access to a config mapping (see the module docstring)."""

    def __init__(self, config: Any) -> None:
        self.values: Dict[str, Any] = {}
        if isinstance(config, _Config):
            self.values = config.values
            return
        raw = getattr(config, "raw", config)
        if not hasattr(raw, "items"):
            raise FixmapConfigError("kernel config must be a mapping of CONFIG_ names to values, not %s"
                                    % type(config).__name__)
        for k, v in raw.items():
            if not isinstance(k, str):
                raise FixmapConfigError("kernel config key %r is not an option name" % (k,))
            self.values[k[7:] if k.startswith("CONFIG_") else k] = v

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def on(self, name: str, default: bool = False) -> bool:
        v = self.values.get(name)
        if v is None:
            return default
        if isinstance(v, bool):
            return v
        if isinstance(v, int):
            return v != 0
        s = str(v).strip()
        if s in ("y", "m"):
            return True
        if s in ("n", ""):
            return False
        raise FixmapConfigError("CONFIG_%s=%s is not a bool or tristate" % (name, s[:40]))

    def int(self, name: str, default: int) -> int:
        v = self.values.get(name)
        if v is None:
            return default
        if isinstance(v, bool):
            raise FixmapConfigError("CONFIG_%s=%s is not a number" % (name, v))
        if isinstance(v, int):
            return v
        s = str(v).strip().strip('"')
        if s == "n":
            return default
        try:
            return int(s, 16) if s[:2].lower() == "0x" else int(s, 10)
        except ValueError:
            raise FixmapConfigError("CONFIG_%s=%s is not a number" % (name, s[:40])) from None


# ---------------------------------------------------------------------------
# enum fixed_addresses (X86_32) as data
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Member:
    """One member (or block) of ``enum fixed_addresses`` on X86_32, in enum order."""

    #: the kernel's name (a block: its first and last member)
    name: str
    #: how many slots: an int, or "MAX_IO_APICS", "PVCLOCK" (PVCLOCK_VSYSCALL_NR_PAGES),
    #: "KMAP" (KM_TYPE_NR or KM_MAX_IDX times NR_CPUS), "NR_CPUS"
    count: object
    #: config options that must all be set ((): always)
    options: Tuple[str, ...]
    #: the bool Profile field saying this kernel version's enum has the member (None: every version)
    present: Optional[str]
    #: where it was read
    cite: str
    #: the Profile field naming the option instead of ``options`` (FIX_PARAVIRT_BOOTMAP)
    option_field: Optional[str] = None
    #: nested inside the kmap block's #ifdef (FIX_PCIE_MCFG)
    inside_kmap: bool = False


#: enum fixed_addresses on X86_32 up to __end_of_permanent_fixed_addresses, in order
FIXMAP_32: Tuple[Member, ...] = (
    Member("FIX_HOLE", 1, (), None, "fixmap.h 3.9.6 L76, 6.1.119 L83"),
    Member("FIX_VDSO", 1, (), "i386_fix_vdso", "fixmap.h 3.9.6 L77, 3.14.1 L77; gone in 3.15.5"),
    Member("PVCLOCK_FIXMAP_BEGIN..PVCLOCK_FIXMAP_END", "PVCLOCK", ("PARAVIRT_CLOCK",), "i386_fix_pvclock",
           "fixmap.h 3.8.13/3.9.6/3.10.99 L85-88 (outside the 64-bit #ifdef); pvclock.h 3.10.99 L94-100"),
    Member("FIX_DBGP_BASE", 1, (), None, "fixmap.h 3.9.6 L89, 6.1.119 L89"),
    Member("FIX_EARLYCON_MEM_BASE", 1, (), None, "fixmap.h 3.9.6 L90, 6.1.119 L90"),
    Member("FIX_OHCI1394_BASE", 1, ("PROVIDE_OHCI1394_DMA_INIT",), None, "fixmap.h 3.9.6 L91-93, 6.1.119 L91-93"),
    Member("FIX_APIC_BASE", 1, ("X86_LOCAL_APIC",), None, "fixmap.h 3.9.6 L94-96, 6.1.119 L94-96"),
    Member("FIX_IO_APIC_BASE_0..FIX_IO_APIC_BASE_END", "MAX_IO_APICS", ("X86_IO_APIC",), None,
           "fixmap.h 3.9.6 L97-100, 6.1.119 L97-100; MAX_IO_APICS 64 (apicdef.h 6.1.119 L145-149)"),
    Member("FIX_CO_CPU..FIX_LI_PCIB", 4, ("X86_VISWS_APIC",), "i386_fix_visws", "fixmap.h 3.9.6 L101-106"),
    Member("FIX_F00F_IDT", 1, ("X86_F00F_BUG",), "i386_fix_f00f", "fixmap.h 3.9.6 L107-109"),
    Member("FIX_CYCLONE_TIMER", 1, ("X86_CYCLONE_TIMER",), "i386_fix_cyclone", "fixmap.h 3.9.6 L110-112"),
    Member("FIX_RO_IDT", 1, (), "i386_fix_ro_idt", "fixmap.h 3.10.99 L107, 4.14.5 L87"),
    Member("FIX_KMAP_BEGIN..FIX_KMAP_END", "KMAP", (), None,
           "fixmap.h 3.9.6 L113-115, 5.10.44 L95-97 (KM_TYPE_NR), 6.1.119 L101-103 (CONFIG_KMAP_LOCAL, "
           "KM_MAX_IDX); kmap_types.h 5.10.44 L5-9, kmap_size.h 6.1.119 L6-10"),
    Member("FIX_PCIE_MCFG", 1, ("PCI_MMCONFIG",), None, "fixmap.h 3.9.6 L116-118, 6.1.119 L104-106",
           inside_kmap=True),
    Member("FIX_PARAVIRT_BOOTMAP", 1, (), None, "fixmap.h 3.9.6 L120-122 (PARAVIRT), 5.10.44 L102 "
           "and 6.1.119 L108-110 (PARAVIRT_XXL)", option_field="i386_paravirt_bootmap_option"),
    Member("FIX_TEXT_POKE1, FIX_TEXT_POKE0", 2, (), "i386_fix_text_poke", "fixmap.h 3.9.6 L123-124, 4.19.72 L106-107"),
    Member("FIX_LNW_VRTC", 1, ("X86_INTEL_MID",), "i386_fix_lnw_vrtc", "fixmap.h 3.9.6 L125-127, 5.10.44 L105-107"),
    Member("FIX_GDT_REMAP_BEGIN..FIX_GDT_REMAP_END", "NR_CPUS", (), "i386_fix_gdt_remap", "fixmap.h 4.14.5 L103-105"),
    Member("FIX_APEI_GHES_IRQ, FIX_APEI_GHES_NMI", 2, ("ACPI_APEI_GHES",), "i386_fix_ghes",
           "fixmap.h 4.19.72 L112-116, 6.1.119 L112-116"),
)


def _nr_cpus(cfg: _Config) -> int:
    n = cfg.int("NR_CPUS", 1)
    if not 1 <= n <= 8192:
        raise FixmapConfigError("CONFIG_NR_CPUS=%d is outside 1..8192" % n)
    return n


def pvclock_vsyscall_nr_pages(nr_cpus: int, l1_cache_shift: int) -> int:
    """``PVCLOCK_VSYSCALL_NR_PAGES`` (pvclock.h 3.10.99 L94-100): ``struct
    pvclock_vsyscall_time_info`` is 36 bytes aligned to SMP_CACHE_BYTES (1 <<
    CONFIG_X86_L1_CACHE_SHIFT), so ``(NR_CPUS - 1) / (4096 / size) + 1`` pages."""
    line = 1 << l1_cache_shift
    size = -(-36 // line) * line
    return (nr_cpus - 1) // (PAGE_SIZE // size) + 1


def _kmap_slots(profile: Profile, cfg: _Config, nr_cpus: int) -> Tuple[int, str]:
    """(slots, why) of the kmap block, 0 when absent."""
    if profile.i386_kmap_rule == "kmap_local":
        if not cfg.on("KMAP_LOCAL", default=True):
            return 0, "CONFIG_KMAP_LOCAL is not set"
        dbg = cfg.on("DEBUG_KMAP_LOCAL") or cfg.on("DEBUG_HIGHMEM")
        per = 33 if dbg else 16
        return per * nr_cpus, "KM_MAX_IDX %d (%s) x NR_CPUS %d" % (
            per, "CONFIG_DEBUG_KMAP_LOCAL" if dbg else "no DEBUG_KMAP_LOCAL", nr_cpus)
    if profile.i386_kmap_rule != "km_type":
        raise ValueError("unknown i386_kmap_rule %r" % profile.i386_kmap_rule)
    fence = cfg.on("DEBUG_HIGHMEM")
    per = 41 if fence else 20
    return per * nr_cpus, "KM_TYPE_NR %d (%s) x NR_CPUS %d" % (
        per, "CONFIG_DEBUG_HIGHMEM's fence" if fence else "no DEBUG_HIGHMEM", nr_cpus)


def fixmap_members_32(profile: Profile, config: ConfigLike) -> List[Tuple[str, int, int, str]]:
    """The permanent part of this build's ``enum fixed_addresses``: ``(name, first index,
    last index, why)`` for every member present, in enum order."""
    cfg = _Config(config)
    nr_cpus = _nr_cpus(cfg)
    out: List[Tuple[str, int, int, str]] = []
    i = 0
    kmap_present = False
    for m in FIXMAP_32:
        if m.present is not None and not getattr(profile, m.present):
            continue
        options = (getattr(profile, m.option_field),) if m.option_field else m.options
        if m.inside_kmap and not kmap_present:
            continue
        if not all(cfg.on(o) for o in options):
            continue
        why = " && ".join("CONFIG_" + o for o in options) or "always"
        if m.count == "MAX_IO_APICS":
            n = MAX_IO_APICS_32
        elif m.count == "NR_CPUS":
            n, why = nr_cpus, why + ", NR_CPUS %d" % nr_cpus
        elif m.count == "PVCLOCK":
            shift = cfg.int("X86_L1_CACHE_SHIFT", 6)
            if not 4 <= shift <= 12:
                raise FixmapConfigError("CONFIG_X86_L1_CACHE_SHIFT=%d is outside 4..12" % shift)
            n = pvclock_vsyscall_nr_pages(nr_cpus, shift)
            why += ", PVCLOCK_VSYSCALL_NR_PAGES %d" % n
        elif m.count == "KMAP":
            n, kwhy = _kmap_slots(profile, cfg, nr_cpus)
            if not n:
                continue
            kmap_present = True
            why = kwhy
        else:
            n = int(m.count)  # type: ignore[call-overload]
        out.append((m.name, i, i + n - 1, why))
        i += n
    return out


# ---------------------------------------------------------------------------
# the layout
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout32:
    """The fixmap and the areas below it for one i386 build (indices and virtual addresses;
    ``why`` has one line per value)."""

    profile: str
    pae: bool
    #: CONFIG_NR_CPUS (None: not known, layout_from_end_permanent before 4.15)
    nr_cpus: Optional[int]
    highmem: bool
    page_offset: int
    #: __FIXADDR_TOP (0xfffff000 unless reservetop=)
    fixaddr_top: int
    #: the permanent members: (name, first index, last index, why)
    members: Tuple[Tuple[str, int, int, str], ...]
    #: P = __end_of_permanent_fixed_addresses
    end_permanent: int
    #: T = TOTAL_FIX_BTMAPS
    total_btmaps: int
    #: FIX_BTMAP_END, FIX_BTMAP_BEGIN (indices)
    btmap_end_idx: int
    btmap_begin_idx: int
    #: FIX_WP_TEST, FIX_TBOOT_BASE (None without CONFIG_INTEL_TXT)
    wp_test_idx: int
    tboot_idx: Optional[int]
    #: E = __end_of_fixed_addresses
    end: int
    #: FIX_KMAP_BEGIN, FIX_KMAP_END (indices), None without a kmap block
    kmap_idx: Optional[Tuple[int, int]]
    #: FIXADDR_START = TOP - P pages; FIXADDR_TOT_START (= FIXADDR_BOOT_START <= 3.18) = TOP - E pages
    fixaddr_start: int
    fixaddr_tot_start: int
    #: vaddr of the lowest boot-time slot (E - 1) and its PMD
    fixmap_bottom: int
    fixmap_bottom_pmd: int
    #: vaddr of FIX_BTMAP_BEGIN (early_ioremap's slot_virt[0]) and FIX_BTMAP_END
    btmap_begin: int
    btmap_end: int
    #: the kmap slots' [lowest vaddr, highest vaddr] (FIX_KMAP_END, FIX_KMAP_BEGIN)
    kmap_range: Optional[Tuple[int, int]]
    #: CPU_ENTRY_AREA_BASE and the end of its map (4.15+), LDT_BASE_ADDR (4.19+)
    cea_base: Optional[int]
    cea_end: Optional[int]
    ldt_base: Optional[int]
    pkmap_base: int
    vmalloc_end: int
    #: __VMALLOC_RESERVE
    vmalloc_reserve: int
    #: MAXMEM (BootParams.lowmem_limit)
    maxmem: int
    why: Dict[str, str] = field(default_factory=dict)

    def va(self, idx: int) -> int:
        """``__fix_to_virt(idx)``."""
        return (self.fixaddr_top - idx * PAGE_SIZE) & _M32

    def emu_params(self) -> Dict[str, object]:
        """The BootParams fields of this layout."""
        out: Dict[str, object] = {"fixmap_bottom": self.fixmap_bottom, "btmap_begin": self.btmap_begin,
                                  "lowmem_limit": self.maxmem, "fixmap_ptes": self.end}
        if self.highmem and self.kmap_range is not None:
            out["kmap_range"] = self.kmap_range
        return out

    def to_json(self) -> Dict[str, object]:
        def h(v: Optional[int]) -> Optional[str]:
            return None if v is None else "%#x" % v
        return {
            "profile": self.profile, "pae": self.pae, "nr_cpus": self.nr_cpus, "highmem": self.highmem,
            "page_offset": h(self.page_offset), "fixaddr_top": h(self.fixaddr_top),
            "members": [{"name": n, "first": a, "last": b, "why": w} for n, a, b, w in self.members],
            "end_permanent": self.end_permanent, "total_btmaps": self.total_btmaps,
            "btmap_end_idx": self.btmap_end_idx, "btmap_begin_idx": self.btmap_begin_idx,
            "wp_test_idx": self.wp_test_idx, "tboot_idx": self.tboot_idx, "end": self.end,
            "kmap_idx": list(self.kmap_idx) if self.kmap_idx else None,
            "fixaddr_start": h(self.fixaddr_start), "fixaddr_tot_start": h(self.fixaddr_tot_start),
            "fixmap_bottom": h(self.fixmap_bottom), "fixmap_bottom_pmd": h(self.fixmap_bottom_pmd),
            "btmap_begin": h(self.btmap_begin), "btmap_end": h(self.btmap_end),
            "kmap_range": [h(v) for v in self.kmap_range] if self.kmap_range else None,
            "cea_base": h(self.cea_base), "cea_end": h(self.cea_end), "ldt_base": h(self.ldt_base),
            "pkmap_base": h(self.pkmap_base), "vmalloc_end": h(self.vmalloc_end),
            "vmalloc_reserve": h(self.vmalloc_reserve), "maxmem": h(self.maxmem), "why": dict(self.why),
        }


def pmd_size_32(pae: bool) -> int:
    return (2 if pae else 4) << 20


def last_pkmap(pae: bool) -> int:
    """LAST_PKMAP (pgtable_32_types.h): 512 PAE, 1024 non-PAE."""
    return 512 if pae else 1024


def btmap_end_index(end_permanent: int, total: int, ptrs_per_pte: int) -> int:
    """``FIX_BTMAP_END``: P, or P rounded up to the next multiple of T when P and P + T - 1
    lie in different page tables (fixmap.h 6.1.119 L130-136)."""
    p = end_permanent
    if (p ^ (p + total - 1)) & -ptrs_per_pte:
        return p + total - (p & (total - 1))
    return p


def reserve_top_address(profile: Profile, pae: bool, reserve: int) -> int:
    """``reserve_top_address`` (arch/x86/mm/pgtable.c): the new ``__FIXADDR_TOP`` for
    ``reservetop=reserve``: ``-reserve - PAGE_SIZE`` (3.10.99 L437-443) or, from 3.16,
    ``round_down(-reserve, PMD_SIZE) - PAGE_SIZE`` (3.16.0 L459, 6.1.119 L635-639)."""
    if not 0 <= reserve < (1 << 30):
        raise FixmapConfigError("reservetop=%#x is not below 1 GiB" % reserve)
    top = (-reserve) & ((1 << 32) - 1) if reserve else 1 << 32
    if profile.i386_reservetop_pmd_aligned:
        top &= ~(pmd_size_32(pae) - 1)
    return (top - PAGE_SIZE) & _M32


def below_fixmap_32(profile: Profile, pae: bool, highmem: bool, nr_cpus: int, fixaddr_start: int,
                    fixaddr_tot_start: int) -> Dict[str, Tuple[Optional[int], str]]:
    """The areas below the fixmap by ``profile.i386_pkmap_rule``: ``cea_base``, ``cea_end``,
    ``ldt_base``, ``pkmap_base``, ``vmalloc_end``, each ``(value, why)``
    (pgtable_32_types.h 3.10.99 L40-47, 3.19.8 L40-47, 4.14.67 L41-58, 4.19.72 L43-71;
    pgtable_32_areas.h 6.1.119 L21-51)."""
    pmd = pmd_size_32(pae)
    mask = ~(pmd - 1) & _M32
    last = last_pkmap(pae)
    rule = profile.i386_pkmap_rule
    out: Dict[str, Tuple[Optional[int], str]] = {"cea_base": (None, "no cpu_entry_area below the fixmap "
                                                                  "before 4.15"),
                                                 "cea_end": (None, "no cpu_entry_area below the fixmap"),
                                                 "ldt_base": (None, "no LDT remap area on 32-bit before 4.19")}
    if rule in ("boot", "permanent"):
        src, name = ((fixaddr_tot_start, "FIXADDR_BOOT_START") if rule == "boot"
                     else (fixaddr_start, "FIXADDR_START"))
        pkmap = (src - PAGE_SIZE * (last + 1)) & mask
        out["pkmap_base"] = (pkmap, "(%s %#x - %d pages) & PMD_MASK" % (name, src, last + 1))
        floor, fname = fixaddr_start, "FIXADDR_START"
    elif rule in ("cea", "cea_ldt"):
        pages = profile.i386_cea_pages_per_cpu * nr_cpus
        cea = (fixaddr_tot_start - PAGE_SIZE * (pages + 1)) & mask
        out["cea_base"] = (cea, "(FIXADDR_TOT_START %#x - (%d x NR_CPUS %d + 1 IDT) pages) & PMD_MASK"
                           % (fixaddr_tot_start, profile.i386_cea_pages_per_cpu, nr_cpus))
        out["cea_end"] = (cea + PAGE_SIZE * (pages + 1), "CPU_ENTRY_AREA_BASE + %d pages (mapped in trap_init, "
                                                        "after init_mem_mapping)" % (pages + 1))
        if rule == "cea":
            pkmap = (cea - PAGE_SIZE) & mask
            out["pkmap_base"] = (pkmap, "a PMD below CPU_ENTRY_AREA_BASE")
            floor, fname = cea, "CPU_ENTRY_AREA_BASE"
        else:
            ldt = (cea - PAGE_SIZE) & mask
            out["ldt_base"] = (ldt, "a PMD below CPU_ENTRY_AREA_BASE")
            pkmap = (ldt - PAGE_SIZE) & mask
            out["pkmap_base"] = (pkmap, "a PMD below LDT_BASE_ADDR")
            floor, fname = ldt, "LDT_BASE_ADDR"
    else:
        raise ValueError("unknown i386_pkmap_rule %r" % rule)
    if highmem:
        out["vmalloc_end"] = (pkmap - 2 * PAGE_SIZE, "PKMAP_BASE - 2 pages (CONFIG_HIGHMEM)")
    else:
        out["vmalloc_end"] = (floor - 2 * PAGE_SIZE, "%s - 2 pages (no CONFIG_HIGHMEM)" % fname)
        out["pkmap_base"] = (pkmap, out["pkmap_base"][1] + "; unused without CONFIG_HIGHMEM")
    return out


def vmalloc_reserve(vmalloc: Optional[int]) -> int:
    """``__VMALLOC_RESERVE``: 128 MiB, or ``vmalloc=X`` -> X + VMALLOC_OFFSET (parse_vmalloc)."""
    if vmalloc is None:
        return VMALLOC_RESERVE
    if not 0 <= vmalloc < (1 << 32):
        raise FixmapConfigError("vmalloc=%#x does not fit a 32-bit address space" % vmalloc)
    return vmalloc + VMALLOC_OFFSET


def config_pae(config: ConfigLike, pae: Optional[bool]) -> bool:
    """PAE from CONFIG_X86_PAE (HIGHMEM64G selects it), checked against ``pae`` when given."""
    cfg = _Config(config)
    if cfg.on("X86_64"):
        raise FixmapConfigError("the kernel config is a 64-bit one (CONFIG_X86_64=y), not i386")
    # X86_PAE depends on !HIGHMEM4G; HIGHMEM64G selects it
    has = cfg.get("X86_PAE") is not None or cfg.get("HIGHMEM64G") is not None or cfg.on("HIGHMEM4G")
    conf = cfg.on("X86_PAE") or cfg.on("HIGHMEM64G")
    if pae is None:
        return conf
    if has and bool(pae) != conf:
        raise FixmapConfigError("the kernel config says %s but the boot is %s" % (
            "PAE (CONFIG_X86_PAE=y)" if conf else "no PAE (CONFIG_X86_PAE not set)",
            "PAE" if pae else "non-PAE"))
    return bool(pae)


def layout_32(profile: Profile, config: ConfigLike, pae: Optional[bool] = None,
              vmalloc: Optional[int] = None, reservetop: Optional[int] = None) -> Layout32:
    """The i386 fixmap and the areas below it for a build of ``profile``'s version with
    ``config`` (see the module docstring).  ``pae`` None: from the config; ``vmalloc``:
    the ``vmalloc=`` size in bytes; ``reservetop``: the ``reservetop=`` size in bytes."""
    cfg = _Config(config)
    pae = config_pae(cfg, pae)
    highmem = cfg.on("HIGHMEM") or cfg.on("HIGHMEM4G") or cfg.on("HIGHMEM64G")
    page_offset = cfg.int("PAGE_OFFSET", DEFAULT_PAGE_OFFSET)
    members = fixmap_members_32(profile, cfg)
    p = members[-1][2] + 1 if members else 0
    why_p = "P = %d: %s" % (p, ", ".join("%s %d" % (n.split("..")[0].split(",")[0], b - a + 1)
                                         for n, a, b, _ in members))
    return _layout(profile, pae, tuple(members), p, why_p, _nr_cpus(cfg), highmem, cfg.on("INTEL_TXT"),
                   page_offset, vmalloc, reservetop)


def end_permanent_from_fixaddr_start(fixaddr_start: int, fixaddr_top: int = FIXADDR_TOP) -> int:
    """P from a printed ``fixmap  : 0x%08lx - 0x%08lx`` line (mem_init's virtual kernel memory
    layout, 3.x - 5.4: FIXADDR_START - FIXADDR_TOP)."""
    d = fixaddr_top - fixaddr_start
    if d < 0 or d % PAGE_SIZE or d // PAGE_SIZE > 1 << 16:
        raise FixmapConfigError("fixmap start %#x is not a page below FIXADDR_TOP %#x" % (fixaddr_start, fixaddr_top))
    return d // PAGE_SIZE


def layout_from_end_permanent(profile: Profile, pae: bool, end_permanent: int, nr_cpus: Optional[int] = None,
                              highmem: bool = True, intel_txt: bool = False,
                              page_offset: int = DEFAULT_PAGE_OFFSET, vmalloc: Optional[int] = None,
                              reservetop: Optional[int] = None) -> Layout32:
    """The layout when only P (``__end_of_permanent_fixed_addresses``) is known, e.g. from
    a log's ``fixmap : 0x... - 0xfffff000`` line (:func:`end_permanent_from_fixaddr_start`):
    everything but the kmap slots follows; ``nr_cpus`` is needed from 4.15 (the
    cpu_entry_area's size)."""
    if not 0 < end_permanent < (1 << 16):
        raise FixmapConfigError("__end_of_permanent_fixed_addresses %d is out of range" % end_permanent)
    if nr_cpus is None and profile.i386_pkmap_rule in ("cea", "cea_ldt"):
        raise FixmapConfigError("the %s layout needs NR_CPUS (the cpu_entry_area is sized by it)" % profile.name)
    return _layout(profile, pae, (), end_permanent, "P = %d (given)" % end_permanent, nr_cpus, highmem, intel_txt,
                   page_offset, vmalloc, reservetop)


def _layout(profile: Profile, pae: bool, members: Tuple[Tuple[str, int, int, str], ...], p: int, why_p: str,
            nr_cpus: Optional[int], highmem: bool, intel_txt: bool, page_offset: int, vmalloc: Optional[int],
            reservetop: Optional[int]) -> Layout32:
    if page_offset & ((4 << 20) - 1) or not (1 << 30) <= page_offset <= 0xC0000000:
        raise FixmapConfigError("CONFIG_PAGE_OFFSET=%#x is not a 4 MiB-aligned split between 1G and 3G"
                                % page_offset)
    why: Dict[str, str] = {}
    top = FIXADDR_TOP if not reservetop else reserve_top_address(profile, pae, reservetop)
    why["fixaddr_top"] = ("__FIXADDR_TOP's initial -PAGE_SIZE" if not reservetop else
                          "reserve_top_address(%#x)%s" % (reservetop, ", PMD-rounded (3.16+)"
                                                          if profile.i386_reservetop_pmd_aligned else ""))

    def va(i: int) -> int:
        return (top - i * PAGE_SIZE) & _M32

    why["end_permanent"] = why_p
    t = NR_FIX_BTMAPS * profile.i386_btmaps_slots
    n = 512 if pae else 1024
    end_bt = btmap_end_index(p, t, n)
    why["btmap_end_idx"] = ("FIX_BTMAP_END = %d: %d..%d cross a %d-entry page table, rounded up to a multiple "
                            "of %d" % (end_bt, p, p + t - 1, n, t) if end_bt != p else
                            "FIX_BTMAP_END = P = %d: %d..%d fit one %d-entry page table" % (p, p, p + t - 1, n))
    begin_bt = end_bt + t - 1
    why["total_btmaps"] = "TOTAL_FIX_BTMAPS = 64 x FIX_BTMAPS_SLOTS %d" % profile.i386_btmaps_slots
    why["btmap_begin_idx"] = "FIX_BTMAP_BEGIN = FIX_BTMAP_END + %d" % (t - 1)
    wp = begin_bt + 1
    tboot = wp + 1 if intel_txt else None
    end = (tboot if tboot is not None else wp) + 1
    why["end"] = "E = %d: FIX_WP_TEST %d%s" % (end, wp, ", FIX_TBOOT_BASE %d (CONFIG_INTEL_TXT)" % tboot
                                               if tboot is not None else " (no CONFIG_INTEL_TXT)")
    kmap = next(((a, b) for nm, a, b, _ in members if nm.startswith("FIX_KMAP_BEGIN")), None)
    pmd = pmd_size_32(pae)
    fixaddr_start, tot = va(p), va(end)
    why["fixaddr_start"] = "FIXADDR_START = TOP - P pages"
    why["fixaddr_tot_start"] = ("FIXADDR_BOOT_START = TOP - E pages" if profile.i386_pkmap_rule == "boot"
                                else "FIXADDR_TOT_START = TOP - E pages")
    bottom = va(end - 1)
    why["fixmap_bottom"] = "__fix_to_virt(E - 1 = %d), the lowest boot-time slot" % (end - 1)
    why["fixmap_bottom_pmd"] = ("its PMD: early_ioremap_page_table_range_init's start "
                                "(PMD %s)" % ("2M" if pae else "4M"))
    why["btmap_begin"] = "__fix_to_virt(FIX_BTMAP_BEGIN = %d): slot_virt[0], bm_pte's PMD" % begin_bt
    why["btmap_end"] = "__fix_to_virt(FIX_BTMAP_END = %d)" % end_bt
    if kmap is not None:
        kr: Optional[Tuple[int, int]] = (va(kmap[1]), va(kmap[0]))
        why["kmap_range"] = ("[__fix_to_virt(FIX_KMAP_END = %d), __fix_to_virt(FIX_KMAP_BEGIN = %d)]%s"
                             % (kmap[1], kmap[0], "" if highmem else "; page_table_kmap_check needs "
                                "CONFIG_HIGHMEM, so no copies"))
    else:
        kr = None
        why["kmap_range"] = ("not known: only P given" if not members else
                             "no kmap block in this build's fixmap")
    below = below_fixmap_32(profile, pae, highmem, nr_cpus or 0, fixaddr_start, tot)
    for k, (_, w) in below.items():
        why[k] = w
    reserve = vmalloc_reserve(vmalloc)
    why["vmalloc_reserve"] = ("__VMALLOC_RESERVE's default 128 MiB" if vmalloc is None else
                              "vmalloc=%#x + VMALLOC_OFFSET 8 MiB" % vmalloc)
    vend = below["vmalloc_end"][0]
    assert vend is not None
    maxmem = vend - page_offset - reserve
    if maxmem <= 0:
        raise FixmapConfigError("vmalloc=%#x leaves no lowmem: VMALLOC_END %#x - PAGE_OFFSET %#x - __VMALLOC_RESERVE "
                                "%#x is not positive" % (vmalloc or 0, vend, page_offset, reserve))
    why["maxmem"] = "MAXMEM = VMALLOC_END %#x - PAGE_OFFSET %#x - __VMALLOC_RESERVE %#x (%dMB)" % (
        vend, page_offset, reserve, maxmem >> 20)
    pk = below["pkmap_base"][0]
    assert pk is not None
    return Layout32(profile=profile.name, pae=pae, nr_cpus=nr_cpus, highmem=highmem, page_offset=page_offset,
                    fixaddr_top=top, members=members, end_permanent=p, total_btmaps=t,
                    btmap_end_idx=end_bt, btmap_begin_idx=begin_bt, wp_test_idx=wp, tboot_idx=tboot, end=end,
                    kmap_idx=kmap, fixaddr_start=fixaddr_start, fixaddr_tot_start=tot, fixmap_bottom=bottom,
                    fixmap_bottom_pmd=bottom & ~(pmd - 1) & _M32, btmap_begin=va(begin_bt), btmap_end=va(end_bt),
                    kmap_range=kr, cea_base=below["cea_base"][0], cea_end=below["cea_end"][0],
                    ldt_base=below["ldt_base"][0], pkmap_base=pk, vmalloc_end=vend, vmalloc_reserve=reserve,
                    maxmem=maxmem, why=why)


# ---------------------------------------------------------------------------
# BootParams from a config
# ---------------------------------------------------------------------------
def _pae_source(cfg: _Config) -> str:
    if cfg.on("X86_PAE"):
        return "=y"
    if cfg.on("HIGHMEM64G"):
        return " (selected by CONFIG_HIGHMEM64G=y)"
    return " not set%s" % (" (CONFIG_HIGHMEM4G=y)" if cfg.on("HIGHMEM4G") else "")


def i386_params_from_config(profile: Profile, config: ConfigLike, pae: Optional[bool] = None,
                            cmdline_vmalloc: Optional[int] = None,
                            name: str = "config") -> Dict[str, Tuple[object, str]]:
    """The :class:`~emu.kernel.params.BootParams` fields an i386 build's config determines,
    each as ``(value, source)``: ``arch``, ``pae`` (CONFIG_X86_PAE / HIGHMEM64G; a
    contradicting ``pae`` is an error), ``page_offset_32`` (CONFIG_PAGE_OFFSET),
    ``highmem_config`` (CONFIG_HIGHMEM), ``fixmap_bottom``, ``btmap_begin``, ``kmap_range``
    (with CONFIG_HIGHMEM: page_table_kmap_check is compiled out without it),
    ``lowmem_limit`` (MAXMEM, with ``cmdline_vmalloc`` = the command line's ``vmalloc=``)
    and ``fixmap_ptes`` (E, what find_early_table_space adds before 3.9).  ``name`` prefixes
    the sources (a file name)."""
    cfg = _Config(config)
    if cfg.get("X86_32") is not None and not cfg.on("X86_32"):
        raise FixmapConfigError("%s: CONFIG_X86_32 is not set: not an i386 kernel config" % name)
    lay = layout_32(profile, cfg, pae, vmalloc=cmdline_vmalloc)
    conf_pae = cfg.get("X86_PAE") is not None or cfg.get("HIGHMEM64G") is not None or cfg.on("HIGHMEM4G")
    src = "%s (%s, profile %s)" % (name, "%s", profile.name)
    out: Dict[str, Tuple[object, str]] = {
        "arch": ("i386", "%s: CONFIG_X86_32" % name),
        "pae": (lay.pae, "%s: CONFIG_X86_PAE%s" % (name, _pae_source(cfg)) if conf_pae
                else "%s: no CONFIG_X86_PAE or HIGHMEM64G line; %s" % (
                    name, "the boot's paging mode" if pae is not None else "not set")),
        "page_offset_32": (lay.page_offset, "%s: CONFIG_PAGE_OFFSET%s" % (
            name, "" if cfg.get("PAGE_OFFSET") is not None else " absent, the 3G/1G split's 0xC0000000")),
        "highmem_config": (lay.highmem, "%s: CONFIG_HIGHMEM=%s" % (name, "y" if lay.highmem else "n")),
        "fixmap_bottom": (lay.fixmap_bottom, src % lay.why["fixmap_bottom"] + "; " + lay.why["end"]),
        "btmap_begin": (lay.btmap_begin, src % lay.why["btmap_begin"] + "; " + lay.why["btmap_end_idx"]),
        "lowmem_limit": (lay.maxmem, src % lay.why["maxmem"] + "; PKMAP_BASE %#x: %s" % (
            lay.pkmap_base, lay.why["pkmap_base"])),
        "fixmap_ptes": (lay.end, src % ("__end_of_fixed_addresses " + lay.why["end"])),
    }
    if lay.highmem and lay.kmap_range is not None:
        out["kmap_range"] = (lay.kmap_range, src % lay.why["kmap_range"])
    return out


# ---------------------------------------------------------------------------
# a typical build, for defaults
# ---------------------------------------------------------------------------
#: the fixmap-shaping options of a distribution's generic SMP i386 build: Debian 5.10/6.1
#: 686(-pae) (/boot/config-5.10.0-32-686*, config-6.1.0-57-686*: LOCAL_APIC, IO_APIC,
#: PCI_MMCONFIG, PARAVIRT, PARAVIRT_CLOCK, ACPI_APEI_GHES, HIGHMEM; no OHCI1394_DMA_INIT,
#: INTEL_MID, INTEL_TXT, DEBUG_HIGHMEM) with NR_CPUS at Kconfig's SMP default without
#: X86_BIGSMP, 8 (arch/x86/Kconfig 3.13 L836, 6.1.119 NR_CPUS_DEFAULT) -- the NR_CPUS of
#: Ubuntu's 3.x generic kernels (corpus: 3.13.0-24, 3.16.0-57 'setup_percpu: NR_CPUS:8'; the
#: 3.13 one prints 'fixmap : 0xfff14000', P = 235, this set plus one of OHCI1394/INTEL_MID)
TYPICAL_CONFIG_32: Dict[str, str] = {
    "X86_32": "y", "SMP": "y", "NR_CPUS": "8", "X86_LOCAL_APIC": "y", "X86_IO_APIC": "y",
    "PCI_MMCONFIG": "y", "PARAVIRT": "y", "PARAVIRT_CLOCK": "y", "ACPI_APEI_GHES": "y", "HIGHMEM": "y",
    "KMAP_LOCAL": "y", "X86_L1_CACHE_SHIFT": "6", "PAGE_OFFSET": "0xC0000000",
}
TYPICAL_CONFIG_WHY = ("a generic SMP distribution build: NR_CPUS 8 (Kconfig's default without X86_BIGSMP), "
                      "LOCAL_APIC, IO_APIC, PCI_MMCONFIG, PARAVIRT, ACPI_APEI_GHES, HIGHMEM")


def typical_config_32(pae: bool, nr_cpus: Optional[int] = None) -> Dict[str, str]:
    """:data:`TYPICAL_CONFIG_32` for a PAE (HIGHMEM64G) or non-PAE (HIGHMEM4G) build, with
    ``nr_cpus`` when known (a log's ``setup_percpu: NR_CPUS:64`` line)."""
    cfg = dict(TYPICAL_CONFIG_32)
    if nr_cpus is not None:
        cfg["NR_CPUS"] = str(int(nr_cpus))
    if pae:
        cfg.update({"X86_PAE": "y", "HIGHMEM64G": "y", "HIGHMEM4G": "n"})
    else:
        cfg.update({"X86_PAE": "n", "HIGHMEM64G": "n", "HIGHMEM4G": "y"})
    return cfg


def typical_layout_32(profile: Profile, pae: bool) -> Layout32:
    """:func:`layout_32` of :func:`typical_config_32`: what emu assumes without a config."""
    return layout_32(profile, typical_config_32(pae), pae)


# ---------------------------------------------------------------------------
# x86-64
# ---------------------------------------------------------------------------
# arch/x86/include/asm/fixmap.h on x86-64 (4.19 .. 6.18): ``enum fixed_addresses`` and the
# ``level2_fixmap_pgt`` slot ``early_ioremap_init`` links ``bm_pte`` into.
#
# Members in order, with the options that bring them: ``VSYSCALL_PAGE`` = 511
# (X86_VSYSCALL_EMULATION; the enum restarts there, else it starts at 0), ``FIX_DBGP_BASE``,
# ``FIX_EARLYCON_MEM_BASE``, ``FIX_OHCI1394_BASE`` (PROVIDE_OHCI1394_DMA_INIT),
# ``FIX_APIC_BASE`` (X86_LOCAL_APIC), ``FIX_IO_APIC_BASE_0..END`` (X86_IO_APIC, MAX_IO_APICS =
# 128), ``FIX_PARAVIRT_BOOTMAP`` (PARAVIRT_XXL; PARAVIRT before 4.20), ``FIX_LNW_VRTC``
# (X86_INTEL_MID), ``FIX_APEI_GHES_IRQ/NMI`` (ACPI_APEI_GHES): that is
# ``__end_of_permanent_fixed_addresses``.  The kmap slots are 32-bit only (or KMAP_LOCAL's
# forced mapping, not modelled).  ``FIX_BTMAP_END`` is that index, moved up to the next
# multiple of 512 when the 512 boot-time slots would cross a page table; ``FIX_BTMAP_BEGIN``
# = END + 511.  ``fix_to_virt(i) = FIXADDR_TOP - i * 4K`` with FIXADDR_TOP in PTE 511 of the
# profile's ``fixmap_top_slot``, so ``bm_pte``'s slot is ``fixmap_top_slot - BEGIN // 512``.
# Debian's amd64 5.10, 6.1 and 6.12 configs: 646 -> END 1024 -> slot 505 (checked against
# the constants in their images: research/kernel_x86_64_more.md section 3).
#: x86-64: 64 boot-time slots x 8 (NR_FIX_BTMAPS * FIX_BTMAPS_SLOTS), one page table of them
TOTAL_FIX_BTMAPS_64 = 512
PTRS_PER_PTE_64 = 512
#: MAX_IO_APICS on 64-bit
MAX_IO_APICS_64 = 128


def end_of_permanent_fixed_addresses(config: ConfigLike) -> int:
    """``__end_of_permanent_fixed_addresses`` of an x86-64 build (see above)."""
    cfg = _Config(config)
    i = 512 if cfg.on("X86_VSYSCALL_EMULATION") else 0
    i += 2                                                  # FIX_DBGP_BASE, FIX_EARLYCON_MEM_BASE
    i += 1 if cfg.on("PROVIDE_OHCI1394_DMA_INIT") else 0
    i += 1 if cfg.on("X86_LOCAL_APIC") else 0
    i += MAX_IO_APICS_64 if cfg.on("X86_IO_APIC") else 0
    pv = cfg.on("PARAVIRT_XXL") if cfg.get("PARAVIRT_XXL") is not None else cfg.on("PARAVIRT")
    i += 1 if pv else 0
    i += 1 if cfg.on("X86_INTEL_MID") else 0
    i += 2 if cfg.on("ACPI_APEI_GHES") else 0
    return i


def fix_btmap_end(permanent: int) -> int:
    """x86-64 ``FIX_BTMAP_END``: the boot-time slots may not cross a page table."""
    return btmap_end_index(permanent, TOTAL_FIX_BTMAPS_64, PTRS_PER_PTE_64)


def bm_pte_slot_64(profile: Profile, config: ConfigLike) -> Tuple[Optional[int], str]:
    """(slot of level2_fixmap_pgt that gets bm_pte, why); ``(None, why not)`` for a layout
    not modelled."""
    if profile.fixmap_top_slot != 507:
        return None, "the fixmap enum before 4.19 is not modelled"
    if _Config(config).on("KMAP_LOCAL"):
        return None, "KMAP_LOCAL on x86-64 (DEBUG_KMAP_LOCAL_FORCE_MAP) is not modelled"
    perm = end_of_permanent_fixed_addresses(config)
    begin = fix_btmap_end(perm) + TOTAL_FIX_BTMAPS_64 - 1
    slot = profile.fixmap_top_slot - begin // PTRS_PER_PTE_64
    return slot, "FIX_BTMAP_BEGIN = %d (__end_of_permanent_fixed_addresses %d): level2_fixmap_pgt[%d]" % (
        begin, perm, slot)



__all__ = ["FIXADDR_TOP", "FIXMAP_32", "FixmapConfigError", "Layout32", "Member", "TYPICAL_CONFIG_32",
           "VMALLOC_RESERVE", "below_fixmap_32", "btmap_end_index", "end_permanent_from_fixaddr_start",
           "fixmap_members_32", "i386_params_from_config", "layout_32", "layout_from_end_permanent",
           "pvclock_vsyscall_nr_pages", "reserve_top_address", "typical_config_32", "typical_layout_32",
           "bm_pte_slot_64", "end_of_permanent_fixed_addresses", "fix_btmap_end"]
