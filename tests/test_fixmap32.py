"""The i386 fixmap / pkmap / lowmem geometry (emu.kernel.arch.x86.fixmap) against Debian's
shipped configs (tests/data/i386), the worked examples of research/kernel_i386.md, the
corpus logs that print their fixmap, and the emulation's defaults per era."""
from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import numpy as np
import pytest

from emu.boot.emulate import emulate
from emu.errors import EmuError
from emu.kernel.arch.x86 import fixmap as fx
from emu.kernel.arch.x86.kernel.e820 import E820Entry, E820Table
from emu.kernel.params import BootParams
from emu.kernel.profiles import CHANGES, I386_GEOMETRY_CHANGES, Profile, get_profile
from emu.machine import engine as backend
from emu.machine.cpu import CpuFeatures

DATA = Path(__file__).resolve().parent / "data" / "i386"
TOP = 0xFFFFF000


def read_config(name: str) -> dict:
    """CONFIG_X=value lines of a gzip'd .config (``# ... is not set`` -> "n")."""
    out = {}
    with gzip.open(DATA / (name + ".gz"), "rt", encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("CONFIG_") and "=" in line:
                k, v = line.split("=", 1)
                out[k] = v
            elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
                out[line[2:-11]] = "n"
    return out


DEBIAN = {  # config, version, PAE, P, FIXADDR_START, kmap [lowest, highest], LDT, PKMAP_BASE, VMALLOC_END, MAXMEM, MB
    "config-5.10.0-32-686-pae": ("5.10.223", True, 711, 0xFFD38000, (0xFFD3C000, 0xFFFBB000),
                                 0xFF200000, 0xFF000000, 0xFEFFE000, 0x36FFE000, 879),
    "config-5.10.0-32-686": ("5.10.223", False, 711, 0xFFD38000, (0xFFD3C000, 0xFFFBB000),
                             0xFF000000, 0xFEC00000, 0xFEBFE000, 0x36BFE000, 875),
    "config-6.1.0-57-686-pae": ("6.1.192", True, 583, 0xFFDB8000, (0xFFDBC000, 0xFFFBB000),
                                0xFF200000, 0xFF000000, 0xFEFFE000, 0x36FFE000, 879),
    "config-6.1.0-57-686": ("6.1.192", False, 583, 0xFFDB8000, (0xFFDBC000, 0xFFFBB000),
                            0xFF000000, 0xFEC00000, 0xFEBFE000, 0x36BFE000, 875),
}


# ---------------------------------------------------------------------------
# Debian 5.10 / 6.1 (research/kernel_i386.md 1.5, 2.4, 2.6, 8)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(DEBIAN))
def test_debian_layouts(name):
    ver, pae, p, start, kmap, ldt, pkmap, vend, maxmem, mb = DEBIAN[name]
    lay = fx.layout_32(get_profile(ver), read_config(name))
    assert lay.pae is pae and lay.nr_cpus == 32 and lay.highmem
    assert (lay.end_permanent, lay.btmap_end_idx, lay.btmap_begin_idx, lay.wp_test_idx, lay.end) == \
        (p, 1024, 1535, 1536, 1537)
    assert lay.tboot_idx is None and lay.total_btmaps == 512
    assert lay.fixmap_bottom == 0xFF9FF000 and lay.fixmap_bottom_pmd == 0xFF800000
    assert lay.btmap_begin == 0xFFA00000 and lay.btmap_end == 0xFFBFF000
    assert lay.fixaddr_start == start and lay.fixaddr_tot_start == 0xFF9FE000
    assert lay.kmap_range == kmap
    assert (lay.cea_base, lay.cea_end) == (0xFF400000, 0xFF961000)        # 1376 + 1 pages
    assert (lay.ldt_base, lay.pkmap_base, lay.vmalloc_end, lay.maxmem) == (ldt, pkmap, vend, maxmem)
    assert lay.maxmem >> 20 == mb                                        # "879MB/875MB LOWMEM available"
    # the shipped vmlinuz (research 2.6): get_cpu_entry_area subtracts 0xb62000 = (E + 43*32 + 1) pages,
    # early_ioremap uses TOP - 0x5ff000 (FIX_BTMAP_BEGIN), kmap end and FIXADDR_SIZE constants
    assert (lay.end + 43 * 32 + 1) * 4096 == 0xB62000
    assert TOP - lay.btmap_begin == 0x5FF000
    assert (lay.kmap_idx[1] * 4096, lay.end_permanent * 4096) == (
        (0x2C3000, 0x2C7000) if ver.startswith("5.10") else (0x243000, 0x247000))
    # every value says why
    for k in ("end_permanent", "end", "btmap_end_idx", "fixmap_bottom", "btmap_begin", "kmap_range", "cea_base",
              "ldt_base", "pkmap_base", "vmalloc_end", "maxmem"):
        assert lay.why[k], k
    assert "FIX_KMAP_BEGIN %d," % (640 if ver.startswith("5.10") else 512) in lay.why["end_permanent"]
    assert "FIX_APEI_GHES_IRQ 2" in lay.why["end_permanent"]


def test_debian_members_in_enum_order():
    lay = fx.layout_32(get_profile("5.10.223"), read_config("config-5.10.0-32-686-pae"))
    assert [(n.split("..")[0].split(",")[0], a, b) for n, a, b, _ in lay.members] == [
        ("FIX_HOLE", 0, 0), ("FIX_DBGP_BASE", 1, 1), ("FIX_EARLYCON_MEM_BASE", 2, 2), ("FIX_APIC_BASE", 3, 3),
        ("FIX_IO_APIC_BASE_0", 4, 67), ("FIX_KMAP_BEGIN", 68, 707), ("FIX_PCIE_MCFG", 708, 708),
        ("FIX_APEI_GHES_IRQ", 709, 710)]
    assert "KM_TYPE_NR 20" in lay.members[5][3]
    lay = fx.layout_32(get_profile("6.1.192"), read_config("config-6.1.0-57-686"))
    assert [b - a + 1 for _, a, b, _ in lay.members] == [1, 1, 1, 1, 64, 512, 1, 2]
    assert "KM_MAX_IDX 16" in lay.members[5][3]


@pytest.mark.parametrize("name", sorted(DEBIAN))
def test_params_from_debian_config(name):
    ver, pae, p, start, kmap, ldt, pkmap, vend, maxmem, mb = DEBIAN[name]
    prof = get_profile(ver)
    d = fx.i386_params_from_config(prof, read_config(name), name=name)
    vals = {k: v for k, (v, _) in d.items()}
    assert vals == {"arch": "i386", "pae": pae, "page_offset_32": 0xC0000000, "highmem_config": True,
                    "fixmap_bottom": 0xFF9FF000, "btmap_begin": 0xFFA00000, "kmap_range": kmap,
                    "lowmem_limit": maxmem, "fixmap_ptes": 1537}
    assert all(src.startswith(name) for _, src in d.values())
    assert ("CONFIG_X86_PAE=y" if pae else "CONFIG_X86_PAE not set (CONFIG_HIGHMEM4G=y)") in d["pae"][1]
    # the boot says the other paging mode: one clear error
    with pytest.raises(EmuError, match="kernel config says"):
        fx.i386_params_from_config(prof, read_config(name), pae=not pae)
    # vmalloc= on the command line: __VMALLOC_RESERVE = size + 8 MiB
    v = fx.i386_params_from_config(prof, read_config(name), cmdline_vmalloc=256 << 20)["lowmem_limit"][0]
    assert v == vend - 0xC0000000 - (264 << 20)


# ---------------------------------------------------------------------------
# other eras (research 2.5) and the corpus logs that print their fixmap
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("pae,pkmap,mb", [(True, 0xFFA00000, 889), (False, 0xFF800000, 887)])
def test_313_with_debians_option_set(pae, pkmap, mb):
    cfg = read_config("config-5.10.0-32-686-pae" if pae else "config-5.10.0-32-686")
    lay = fx.layout_32(get_profile("3.13"), cfg)
    # + FIX_VDSO, FIX_RO_IDT, FIX_PARAVIRT_BOOTMAP (CONFIG_PARAVIRT), FIX_TEXT_POKE1/0; no GHES yet
    assert (lay.end_permanent, lay.btmap_end_idx, lay.btmap_begin_idx, lay.end) == (714, 714, 969, 971)
    assert lay.fixaddr_tot_start == 0xFFC34000 and lay.pkmap_base == pkmap and lay.maxmem >> 20 == mb
    assert lay.cea_base is None and lay.ldt_base is None


@pytest.mark.parametrize("pae", [True, False])
def test_419_with_debians_option_set(pae):
    lay = fx.layout_32(get_profile("4.19"), read_config("config-5.10.0-32-686-pae" if pae else "config-5.10.0-32-686"))
    assert lay.end_permanent == 714 and lay.end == 1537
    assert lay.cea_base == 0xFF400000 and lay.cea_end == 0xFF400000 + (40 * 32 + 1) * 4096
    assert (lay.pkmap_base, lay.maxmem >> 20) == ((0xFF000000, 879) if pae else (0xFEC00000, 875))


@pytest.mark.parametrize("version,slots,pae,mb", [
    ("3.13", 4, True, 891), ("3.13", 4, False, 887),   # E 492: the top PMD
    ("3.17", 8, True, 887),                            # the same P with 512 early_ioremap slots: E 1025
    ("3.19", 8, True, 891)])                           # 3.19: PKMAP_BASE from FIXADDR_START again
def test_p235(version, slots, pae, mb):
    lay = fx.layout_from_end_permanent(get_profile(version), pae, 235)
    assert lay.total_btmaps == 64 * slots
    assert lay.end == (492 if slots == 4 else 1025)
    assert lay.maxmem >> 20 == mb


@pytest.mark.parametrize("log_name,version,pae,fixmap,pkmap,vend", [
    # "virtual kernel memory layout" of the corpus: fixmap : START - 0xfffff000, pkmap : BASE - ..., vmalloc
    ("3.13.0-24-generic_i686_id56786116951.log", "3.13", True, 0xFFF14000, 0xFFC00000, 0xFFBFE000),
    ("3.10.98-poky-edison+_i686_id8495680862.log", "3.10.98", True, 0xFFF8B000, 0xFF800000, 0xFF7FE000),
    ("3.10.0-rc6-00397-gee17608_i686_id34821109701.log", "3.10", False, 0xFFFE0000, 0xFF800000, 0xFF7FE000),
])
def test_printed_layouts(corpus, log_name, version, pae, fixmap, pkmap, vend):
    text = (corpus / log_name).read_text(errors="replace")
    assert "fixmap  : %#010x - 0xfffff000" % fixmap in text and "pkmap   : %#010x" % pkmap in text
    assert "- %#010x" % vend in text
    p = fx.end_permanent_from_fixaddr_start(fixmap)
    lay = fx.layout_from_end_permanent(get_profile(version), pae, p)
    assert (lay.pkmap_base, lay.vmalloc_end) == (pkmap, vend)


def test_stable_310_needs_eight_slots():
    """3.10.98 prints P = 116 and PKMAP_BASE 0xff800000: only 8 early_ioremap slots give it
    (the backport to 3.10.y); 3.10's 4 slots would leave the fixmap in the top PMD."""
    assert get_profile("3.10.98").i386_btmaps_slots == 8 and get_profile("3.10.4").i386_btmaps_slots == 4
    assert fx.layout_from_end_permanent(get_profile("3.10.4"), True, 116).pkmap_base == 0xFFC00000


@pytest.mark.parametrize("version,present,absent", [
    ("3.9", {"FIX_VDSO", "PVCLOCK_FIXMAP_BEGIN", "FIX_F00F_IDT", "FIX_PARAVIRT_BOOTMAP", "FIX_TEXT_POKE1"},
     {"FIX_RO_IDT", "FIX_APEI_GHES_IRQ"}),
    ("3.10", {"FIX_VDSO", "PVCLOCK_FIXMAP_BEGIN", "FIX_RO_IDT"}, {"FIX_F00F_IDT"}),
    ("3.11", {"FIX_VDSO", "FIX_RO_IDT"}, {"PVCLOCK_FIXMAP_BEGIN"}),
    ("3.15", {"FIX_RO_IDT"}, {"FIX_VDSO", "FIX_CO_CPU"}),
    ("4.14.5", {"FIX_RO_IDT", "FIX_GDT_REMAP_BEGIN"}, {"FIX_APEI_GHES_IRQ"}),
    ("4.14.67", {"FIX_APEI_GHES_IRQ"}, {"FIX_RO_IDT", "FIX_GDT_REMAP_BEGIN"}),
    ("5.1", {"FIX_TEXT_POKE1", "FIX_PARAVIRT_BOOTMAP"}, set()),
    ("5.9", {"FIX_PARAVIRT_BOOTMAP", "FIX_LNW_VRTC"}, {"FIX_TEXT_POKE1"}),
    ("5.11", {"FIX_LNW_VRTC"}, {"FIX_PARAVIRT_BOOTMAP"}),
    ("5.12", set(), {"FIX_LNW_VRTC"}),
])
def test_enum_members_per_version(version, present, absent):
    cfg = {"CONFIG_X86_32": "y", "CONFIG_NR_CPUS": "4", "CONFIG_X86_LOCAL_APIC": "y", "CONFIG_X86_IO_APIC": "y",
           "CONFIG_PARAVIRT": "y", "CONFIG_PARAVIRT_CLOCK": "y", "CONFIG_X86_VISWS_APIC": "y",
           "CONFIG_X86_F00F_BUG": "y", "CONFIG_X86_INTEL_MID": "y", "CONFIG_ACPI_APEI_GHES": "y"}
    names = {n.split("..")[0].split(",")[0] for n, _, _, _ in fx.fixmap_members_32(get_profile(version), cfg)}
    assert present <= names and not (absent & names), (present - names, absent & names)


def test_kmap_block_sizes():
    base = {"X86_32": "y", "NR_CPUS": 8, "HIGHMEM": True}

    def kmap(version, **opts):
        m = fx.fixmap_members_32(get_profile(version), dict(base, **opts))
        return [b - a + 1 for n, a, b, _ in m if n.startswith("FIX_KMAP")]

    assert kmap("5.10") == [160] and kmap("5.10", DEBUG_HIGHMEM="y") == [41 * 8]      # KM_TYPE_NR 20 / 41
    assert kmap("6.1") == [128] and kmap("6.1", DEBUG_KMAP_LOCAL="y") == [33 * 8]     # KM_MAX_IDX 16 / 33
    assert kmap("6.1", DEBUG_HIGHMEM="y") == [33 * 8]            # DEBUG_HIGHMEM selects DEBUG_KMAP_LOCAL
    assert kmap("6.1", KMAP_LOCAL="n") == []                     # (X86_32 selects it: only said explicitly)
    # FIX_PCIE_MCFG is inside the kmap #ifdef
    assert not [n for n, *_ in fx.fixmap_members_32(get_profile("6.1"), dict(base, KMAP_LOCAL="n", PCI_MMCONFIG="y"))
                if n == "FIX_PCIE_MCFG"]


def test_pvclock_pages():
    assert fx.pvclock_vsyscall_nr_pages(32, 6) == 1            # 64-byte entries, 64 per page
    assert fx.pvclock_vsyscall_nr_pages(100, 7) == 4           # 128-byte entries (P4): 32 per page
    assert fx.pvclock_vsyscall_nr_pages(64, 4) == 1            # 48-byte entries: 85 per page
    m = fx.fixmap_members_32(get_profile("3.10"), {"NR_CPUS": 100, "PARAVIRT_CLOCK": "y", "X86_L1_CACHE_SHIFT": 7})
    assert [b - a + 1 for n, a, b, _ in m if n.startswith("PVCLOCK")] == [4]


def test_btmap_block_stays_in_one_page_table():
    """fixmap.h's rounding keeps FIX_BTMAP_BEGIN..END in one page table (the BUILD_BUG_ON of
    early_ioremap_init) for every P, with the rounding unit T and the test unit N."""
    for t in (256, 512):
        for n in (512, 1024):
            for p in range(0, 4 * n):
                end = fx.btmap_end_index(p, t, n)
                assert p <= end < p + t and end // n == (end + t - 1) // n, (p, t, n)
    assert fx.btmap_end_index(711, 512, 512) == 1024 and fx.btmap_end_index(199, 512, 1024) == 199
    assert fx.btmap_end_index(235, 256, 512) == 235 and fx.btmap_end_index(235, 512, 512) == 512


def test_intel_txt_adds_the_tboot_slot():
    cfg = dict(read_config("config-6.1.0-57-686-pae"), CONFIG_INTEL_TXT="y")
    lay = fx.layout_32(get_profile("6.1"), cfg)
    assert (lay.tboot_idx, lay.end) == (1537, 1538) and lay.fixmap_bottom == TOP - 1537 * 4096


def test_reservetop():
    """reserve_top_address: -reserve - 4K before 3.16, rounded down to a PMD from 3.16."""
    assert fx.reserve_top_address(get_profile("3.15"), True, 0x1234000) == 0xFEDCB000
    assert fx.reserve_top_address(get_profile("3.16"), True, 0x1234000) == 0xFEBFF000
    assert fx.reserve_top_address(get_profile("3.16"), False, 0x1234000) == 0xFEBFF000
    lay = fx.layout_32(get_profile("6.1"), read_config("config-6.1.0-57-686-pae"), reservetop=0x1234000)
    assert lay.fixaddr_top == 0xFEBFF000 and lay.btmap_begin == 0xFEBFF000 - 1535 * 4096


def test_non_highmem_build():
    cfg = dict(read_config("config-6.1.0-57-686"), CONFIG_HIGHMEM="n", CONFIG_HIGHMEM4G="n", CONFIG_NOHIGHMEM="y")
    lay = fx.layout_32(get_profile("6.1"), cfg)
    assert not lay.highmem and lay.vmalloc_end == lay.ldt_base - 0x2000       # below LDT_BASE_ADDR
    d = fx.i386_params_from_config(get_profile("6.1"), cfg)
    assert "kmap_range" not in d and d["highmem_config"][0] is False
    lay = fx.layout_from_end_permanent(get_profile("3.13"), False, 235, highmem=False)
    assert lay.vmalloc_end == lay.fixaddr_start - 0x2000                     # below FIXADDR_START


def test_bad_configs_are_one_line_errors():
    prof = get_profile("6.1")
    for cfg, msg in (({"CONFIG_NR_CPUS": "lots"}, "not a number"), ({"CONFIG_NR_CPUS": "0"}, "outside"),
                     ({"CONFIG_X86_64": "y"}, "64-bit"), ({"CONFIG_HIGHMEM": "maybe"}, "not a bool"),
                     ({"CONFIG_PAGE_OFFSET": "0xC0100000"}, "PAGE_OFFSET")):
        with pytest.raises(EmuError, match=msg) as e:
            fx.layout_32(prof, cfg, pae=True)
        assert "\n" not in str(e.value)
    with pytest.raises(EmuError, match="not an i386"):
        fx.i386_params_from_config(prof, {"CONFIG_X86_32": "n"})
    with pytest.raises(EmuError, match="no lowmem"):
        fx.layout_32(prof, {}, pae=True, vmalloc=0x40000000)
    with pytest.raises(EmuError, match="mapping"):
        fx.layout_32(prof, ["CONFIG_X86_32=y"], pae=True)
    with pytest.raises(EmuError, match="NR_CPUS"):
        fx.layout_from_end_permanent(prof, True, 235)


def test_config_forms():
    """Keys with or without CONFIG_, bools and ints, and an object with a ``raw`` mapping
    (emu.inputs.kconfig.KConfig) give the same layout."""
    a = fx.layout_32(get_profile("6.1"), {"CONFIG_NR_CPUS": "32", "CONFIG_X86_IO_APIC": "y", "CONFIG_HIGHMEM": "y"},
                     pae=True)
    b = fx.layout_32(get_profile("6.1"), {"NR_CPUS": 32, "X86_IO_APIC": True, "HIGHMEM": True}, pae=True)

    class Raw:
        raw = {"CONFIG_NR_CPUS": "0x20", "CONFIG_X86_IO_APIC": "m", "CONFIG_HIGHMEM": "y"}
    c = fx.layout_32(get_profile("6.1"), Raw(), pae=True)
    assert a == b == c
    assert a.to_json()["fixmap_bottom"] == "%#x" % a.fixmap_bottom


# ---------------------------------------------------------------------------
# the Profile data
# ---------------------------------------------------------------------------
def test_geometry_changes_are_data():
    fields = {f.name for f in dataclasses.fields(Profile)}
    for c in I386_GEOMETRY_CHANGES:
        assert c in CHANGES and c.sources and set(c.sets) <= fields and c.summary, c.id
        assert all(k.startswith("i386_") for k in c.sets), c.id
    rule = {v: get_profile(v).i386_pkmap_rule for v in ("3.18", "3.19", "4.14.10", "4.14.11", "4.15", "4.18", "4.19")}
    assert rule == {"3.18": "boot", "3.19": "permanent", "4.14.10": "permanent", "4.14.11": "cea", "4.15": "cea",
                    "4.18": "cea", "4.19": "cea_ldt"}
    # 39 pages only in stable (05b042a19443 reached 5.3.14 and 5.4.1; mainline 5.4 has 40, 5.5 has 43)
    assert [get_profile(v).i386_cea_pages_per_cpu for v in ("4.15", "5.3", "5.3.14", "5.4", "5.4.1", "5.5", "6.1")] == [
        40, 40, 39, 40, 39, 43, 43]
    assert [hex(get_profile(v).i386_pde_ident_attr) for v in ("3.9", "3.14", "3.14.65", "3.15", "6.1")] == [
        "0x67", "0x67", "0x67", "0x63", "0x63"]
    assert get_profile("4.14.66").i386_fix_ghes is False and get_profile("4.14.67").i386_fix_ghes is True


# ---------------------------------------------------------------------------
# the emulation: defaults per era (said), the config's geometry, PDE_IDENT_ATTR, both engines
# ---------------------------------------------------------------------------
def _e820(top):
    return E820Table([E820Entry(0, 0x9F000, 1), E820Entry(0x9F000, 0x1000, 2), E820Entry(0xF0000, 0x10000, 2),
                      E820Entry(0x100000, top - 0x100000, 1)])


def _said(r):
    return {a.field: a for a in r.kernel.assumptions}


@pytest.mark.parametrize("version,pae,maxmem,bottom,btmap", [
    ("3.13", True, 0x37BFE000, TOP - 490 * 4096, TOP - 489 * 4096),   # E 491: one PMD
    ("3.19", True, 0x37BFE000, TOP - 1024 * 4096, TOP - 1023 * 4096),  # 8 slots: E 1025, FIXADDR_START rule
    ("3.19", False, 0x377FE000, TOP - 745 * 4096, TOP - 744 * 4096),
    ("6.1", True, 0x375FE000, TOP - 1024 * 4096, TOP - 1023 * 4096),   # CEA 43 x 8 + LDT
    ("6.1", False, 0x36FFE000, TOP - 711 * 4096, TOP - 710 * 4096),
])
def test_defaults_follow_the_era_and_are_said(version, pae, maxmem, bottom, btmap):
    r = emulate(_e820(0xDFE86000), version, BootParams(arch="i386", pae=pae, brk_base=0x1B88000))
    k = r.kernel
    assert r.panic is None and r.verify.ok, r.verify.violations
    assert k.max_low_pfn == maxmem >> 12
    assert (k.params.fixmap_bottom, k.params.btmap_begin) == (bottom, btmap)
    said = _said(r)
    assert said["lowmem_limit"].value == "%#x" % maxmem and "MAXMEM" in said["lowmem_limit"].why
    assert said["fixmap_bottom"].value == "%#x" % bottom and "typical %s build" % version in said["fixmap_bottom"].why
    assert "btmap_begin" in said and "kmap_range" in said
    # below MAXMEM the limit changes nothing and is not said
    r = emulate(_e820(0x10000000), version, BootParams(arch="i386", pae=pae, brk_base=0x1B88000))
    assert "lowmem_limit" not in _said(r) and "fixmap_bottom" in _said(r)


def test_given_geometry_is_not_an_assumption():
    d = fx.i386_params_from_config(get_profile("6.1.192"), read_config("config-6.1.0-57-686-pae"))
    p = BootParams(brk_base=0x1B88000, **{k: v for k, (v, _) in d.items()})
    r = emulate(_e820(0xDFE86000), "6.1.192", p)
    assert r.verify.ok and r.kernel.max_low_pfn == 0x36FFE
    said = _said(r)
    assert not {"fixmap_bottom", "btmap_begin", "kmap_range", "lowmem_limit"} & set(said)
    # only fixmap_bottom given: FIX_BTMAP_BEGIN is the slot above it, the kmap slots in one PMD -- both said
    r = emulate(_e820(0xDFE86000), "6.1", BootParams(arch="i386", brk_base=0x1B88000, fixmap_bottom=0xFF9FF000))
    said = _said(r)
    assert said["btmap_begin"].value == "0xffa00000" and said["kmap_range"].value == "one PMD"


DEBIAN_61_IMAGE = {   # tests/test_i386.py DEBIAN_61: System.map addresses of Debian 6.1.0-50 (oracle)
    True: dict(kernel_start=0x1000000, brk_base=0x1F1E000, head_brk_base=0x1F0B000, image_end=0x2135000,
               swapper_pg_dir_addr=0x1E98000, initial_pg_pmd_addr=0x1E94000,
               initial_pg_fixmap_addr=0x1E96000, bm_pte_addr=0x1E9C000),
    False: dict(kernel_start=0x1000000, brk_base=0x1EF0000, head_brk_base=0x1EE6000, image_end=0x200C000,
                swapper_pg_dir_addr=0x1E74000, initial_pg_fixmap_addr=0x1E73000, bm_pte_addr=0x1E77000),
}


@pytest.mark.parametrize("pae", [True, False])
def test_debian_61_tables_from_the_config(pae):
    """The config's geometry builds the fixmap tables the oracle saw the real 6.1 kernels build
    (tests/test_i386.py test_build_layout_as_debian_61 gives the same values by hand)."""
    from emu.kernel.arch.x86.mm.init_32 import _pmd_slot, _read
    cfg = read_config("config-6.1.0-57-686-pae" if pae else "config-6.1.0-57-686")
    d = {k: v for k, (v, _) in fx.i386_params_from_config(get_profile("6.1.192"), cfg).items()}
    e820 = E820Table([E820Entry(0, 0x9FC00, 1), E820Entry(0x9FC00, 0x400, 2), E820Entry(0xF0000, 0x10000, 2),
                      E820Entry(0x100000, 0x7FE0000 - 0x100000, 1)])
    p = BootParams(cpu=CpuFeatures(nx=pae, gbpages=False), gbpages=False, randomize_memory=False,
                   x86_5level_config=False, **DEBIAN_61_IMAGE[pae], **d)
    r = emulate(e820, "6.1.192", p)
    k = r.kernel
    assert r.panic is None and r.verify.ok, r.verify.violations
    ent = {v: _read(k, *_pmd_slot(k, v, None)) for v in range(0xFF800000, 1 << 32, k.mode.pmd_size)}
    if pae:
        assert ent == {0xFF800000: 0x1F21067, 0xFFA00000: 0x1E9C067, 0xFFC00000: 0x1F1F067, 0xFFE00000: 0x1F20067}
    else:
        assert ent == {0xFF800000: 0x1E77067, 0xFFC00000: 0x1E73063}


@pytest.mark.parametrize("version,attr", [("3.14", 0x067), ("3.15", 0x063)])
@pytest.mark.parametrize("pae", [True, False])
def test_pde_ident_attr_by_era(version, attr, pae):
    """head_32's page-table entries and the initial_pg_fixmap entry carry PDE_IDENT_ATTR:
    P RW USER A D up to 3.14, P RW A D from 3.15."""
    from emu.kernel.arch.x86.mm.init_32 import _pmd_slot, _read
    btmap = 0xFFC00000 if pae else 0xFF800000                        # bm_pte below the top PMD
    r = emulate(_e820(0x20000000), version, BootParams(arch="i386", pae=pae, brk_base=0x1B88000,
                                                       btmap_begin=btmap, fixmap_bottom=btmap - 0x1000))
    k = r.kernel
    assert r.verify.ok, r.verify.violations
    head = [pfn for pfn, lvl, src in k.i386_static if src == "head_32"]
    fix = [pfn for pfn, lvl, src in k.i386_static if src == "image"][-2]      # initial_pg_fixmap, then bm_pte
    top = _read(k, *_pmd_slot(k, 0xFFE00000 if pae else 0xFFC00000, None))
    assert top == (fix << 12) | attr                                 # initial_pg_fixmap
    assert _read(k, *_pmd_slot(k, btmap, None)) & 0xFFF == 0x067     # bm_pte: _PAGE_TABLE in every version
    # the PDE of the first head_32 table above PAGE_OFFSET (kept where nothing replaced it: [0, 2M/4M))
    first = _read(k, *_pmd_slot(k, 0xC0000000, None))
    assert first >> 12 == head[0] and first & 0xFFF == attr


@pytest.mark.skipif(not backend.compiled_available(), reason="emu._fast is not built")
@pytest.mark.parametrize("version,pae", [("3.14", True), ("5.10.223", False), ("6.1.192", True)])
def test_both_engines_agree(version, pae):
    cfg = read_config("config-5.10.0-32-686" if version.startswith("5.10") else "config-6.1.0-57-686-pae")
    d = {k: v for k, (v, _) in fx.i386_params_from_config(get_profile(version), cfg, pae=pae).items()} \
        if not version.startswith("3.") else {}
    p = BootParams(**dict(dict(arch="i386", pae=pae, brk_base=0x1B88000), **d))
    a = emulate(_e820(0xDFE86000), version, p, engine="cython", until="paging_init")
    b = emulate(_e820(0xDFE86000), version, p, engine="python", until="paging_init")
    assert a.debug_log == b.debug_log and a.verify.ok and b.verify.ok
    fa, fb = a.kernel.phys, b.kernel.phys
    assert np.array_equal(np.sort(fa.backed_pfns()), np.sort(fb.backed_pfns()))
    for pfn in fa.backed_pfns().tolist():
        assert np.array_equal(fa.table(pfn), fb.table(pfn)), hex(pfn)
    assert [x.text() for x in a.kernel.assumptions] == [x.text() for x in b.kernel.assumptions]


# ---------------------------------------------------------------------------
# the corpus logs that needed --param fixmap geometry
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("log_name,version,pae,nr_cpus", [
    # Ubuntu 3.19 generic (NR_CPUS 8, the typical build): the era's own default
    ("3.19.0-18-generic_i686_id57113470949.log", "3.19.6", True, None),
    # ROSA's i586 3.14.44: non-PAE, NR_CPUS 64 (its own 'setup_percpu: NR_CPUS:64' line)
    ("3.14.44-nrj-desktop-2rosa-i586_i686_B3CC6B4BAD.log", "3.14.44", False, 64),
])
def test_plausible_configs_explain_the_corpus_logs(corpus, log_name, version, pae, nr_cpus):
    from emu.inputs.dmesg import load_boot_log
    from emu.tools.replay import replay
    log = load_boot_log(corpus / log_name)
    if nr_cpus is not None:
        assert "setup_percpu: NR_CPUS:%d " % nr_cpus in (corpus / log_name).read_text()
    cfg = fx.typical_config_32(pae, nr_cpus)
    d = fx.i386_params_from_config(get_profile(version), cfg)
    over = {k: v for k, (v, _) in d.items() if k in ("fixmap_bottom", "btmap_begin", "kmap_range")}
    r = replay(log, params_override=over)
    assert r.passed and r.verify_ok, r.line()
    # a kmap block in one PMD does not explain ROSA's two-page copy
    if nr_cpus is not None:
        d8 = fx.i386_params_from_config(get_profile(version), fx.typical_config_32(pae))
        over8 = {k: v for k, (v, _) in d8.items() if k in ("fixmap_bottom", "btmap_begin", "kmap_range")}
        assert not replay(log, params_override=over8).passed


def test_pkmap_window_keeps_a_guard_page():
    """PKMAP_BASE leaves LAST_PKMAP + 1 pages below FIXADDR_BOOT_START/FIXADDR_START: with
    FIXADDR_BOOT_START exactly LAST_PKMAP pages above a PMD boundary the window moves a PMD
    lower (P = 254 on 3.13 PAE: E = 511, FIXADDR_BOOT_START 0xffe00000)."""
    lay = fx.layout_from_end_permanent(get_profile("3.13"), True, 254)
    assert (lay.end, lay.fixaddr_tot_start, lay.pkmap_base) == (511, 0xFFE00000, 0xFFA00000)
    lay = fx.layout_from_end_permanent(get_profile("3.19"), True, 512)   # FIXADDR_START 0xffdff000
    assert lay.pkmap_base == 0xFFA00000
    lay = fx.layout_from_end_permanent(get_profile("3.19"), True, 511)   # FIXADDR_START 0xffe00000
    assert lay.pkmap_base == 0xFFA00000
    lay = fx.layout_from_end_permanent(get_profile("3.19"), True, 510)   # 0xffe01000 - 513 pages = 0xffc00000
    assert lay.pkmap_base == 0xFFC00000


@pytest.mark.parametrize("name", sorted(DEBIAN))
def test_kconfig_reader_objects_are_accepted(name):
    """emu.inputs.kconfig.load_kconfig reads the gzip'd file; its KConfig goes in as is."""
    from emu.inputs.kconfig import load_kconfig
    kc = load_kconfig(DATA / (name + ".gz"))
    ver = DEBIAN[name][0]
    assert fx.layout_32(get_profile(ver), kc) == fx.layout_32(get_profile(ver), read_config(name))
    assert fx.i386_params_from_config(get_profile(ver), kc)["lowmem_limit"][0] == DEBIAN[name][8]
