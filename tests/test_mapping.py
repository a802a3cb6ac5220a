"""init_mem_mapping end to end: windows, BRK and memblock allocation, entries, panics."""
import pytest

from emu.kernel.arch.x86.kernel.e820 import E820_RESERVED
from emu.boot.emulate import emulate
from emu.kernel.state import SOURCE_BRK, SOURCE_MEMBLOCK
from emu.kernel.params import BootParams
from emu.kernel.arch.x86.mm.init import alloc_low_pages
from emu.machine.cpu import CpuFeatures
from emu.kernel.printk import KernelPanic
from emu.kernel.profiles import get_profile
from emu.kernel.arch.x86.kernel.setup import setup_arch
from emu.machine.mmu import MMU, translate

from layouts import G, pc, table

# reference appendix: memory [0x1000,0x9f000) [1M,0xbffe0000) [4G,5G), 2M pages, no 1G
APPENDIX = table((0, 0x9F000), (0x9F000, 0x100000, E820_RESERVED), (0x100000, 0xBFFE0000),
                 (0xBFFE0000, 1 << 32, E820_RESERVED), (1 << 32, 5 * G))
NO_GB = BootParams(cpu=CpuFeatures(gbpages=False), gbpages=False)


def imm_lines(result):
    return [l for l in result.debug_log if l.startswith("init_memory_mapping")]


def test_old_step_rule_windows():
    r = emulate(APPENDIX, "3.13", NO_GB)
    assert imm_lines(r) == [
        "init_memory_mapping: [mem 0x00000000-0x000fffff]",
        "init_memory_mapping: [mem 0x13fe00000-0x13fffffff]",
        "init_memory_mapping: [mem 0x13c000000-0x13fdfffff]",
        "init_memory_mapping: [mem 0x100000000-0x13bffffff]",
        "init_memory_mapping: [mem 0x00100000-0xbffdffff]",
    ]
    assert r.verify.ok, r.verify.violations


def test_new_step_rule_windows():
    r = emulate(APPENDIX, "3.19", NO_GB)
    assert imm_lines(r) == [
        "init_memory_mapping: [mem 0x00000000-0x000fffff]",
        "init_memory_mapping: [mem 0x13fe00000-0x13fffffff]",
        "init_memory_mapping: [mem 0x120000000-0x13fdfffff]",
        "init_memory_mapping: [mem 0x00100000-0xbffdffff]",
        "init_memory_mapping: [mem 0x100000000-0x11fffffff]",
    ]
    assert r.verify.ok, r.verify.violations


def test_first_window_promoted_to_one_1g_leaf():
    gb = BootParams(cpu=CpuFeatures(gbpages=True), gbpages=True)
    r = emulate(APPENDIX, "3.19", gb)
    assert r.debug_log[:4] == ["Using GB pages for direct mapping", "init_memory_mapping: [mem 0x00000000-0x000fffff]",
                               " [mem 0x00000000-0x000fffff] page 4k", "BRK [0x02fe0000, 0x02fe0fff] PGTABLE"]
    assert " [mem 0x13fe00000-0x13fffffff] page 1G" in r.debug_log
    k = r.kernel
    # a single PUD entry maps [4G, 5G) with a 1G leaf
    pud = k.phys.table(int(k.phys.table(k.pgd_pfn)[272]) >> 12)
    assert int(pud[4]) == (4 << 30) | 0x80000000000001E3
    assert r.verify.ok


@pytest.mark.parametrize("profile,slot", [("3.13", 272), ("4.19", 272), ("4.20", 273), ("6.1", 273)])
def test_entries_are_the_kernels(profile, slot):
    r = emulate(APPENDIX, profile, NO_GB)
    k = r.kernel
    pgd = k.phys.table(k.pgd_pfn)
    # the direct-map slot, and PGD[511]: the kernel image's half (head_64.S)
    assert int(pgd[slot]) & 0xFFF == 0x067 and all(int(pgd[i]) == 0 for i in range(511) if i != slot)
    assert int(pgd[511]) & 0xFFF == 0x067
    pud = k.phys.table(int(pgd[slot]) >> 12)
    pmd0 = k.phys.table(int(pud[0]) >> 12)
    pte0 = k.phys.table(int(pmd0[0]) >> 12)
    # ISA range: 4K PTEs, PAGE_KERNEL (NX, G) for every page of [0, 1M), holes included
    assert [int(pte0[i]) for i in (0, 1, 0x9F, 0xFF)] == [(i << 12) | 0x8000000000000163 for i in (0, 1, 0x9F, 0xFF)]
    # [1M, 2M) 4K too; 2M leaves above
    assert int(pte0[0x100]) == 0x100000 | 0x8000000000000163
    assert int(pmd0[1]) == 0x200000 | 0x80000000000001E3


def test_cpu_features_mask_the_entries():
    p = BootParams(cpu=CpuFeatures(gbpages=False, nx=False, pge=False), gbpages=False)
    r = emulate(APPENDIX, "6.1", p)
    k = r.kernel
    t = translate(k.phys, MMU(k.pgd_pfn << 12, nxe=False), [k.page_offset + 0x1000, k.page_offset + 0x40000000])
    assert [int(x) for x in t.leaf] == [0x1000 | 0x063, 0x40000000 | 0x0E3]
    assert r.verify.ok


def test_pti_drops_global_but_1g_leaves_keep_it_from_5_8():
    p = BootParams(cpu=CpuFeatures(gbpages=True), gbpages=True, pti=True)
    # 5.8 built 1G leaves as prot | __PAGE_KERNEL_LARGE (GLOBAL back in); 6.0 went back to
    # prot | _PAGE_PSE (88e0a74902f8), which the real 6.1 kernel shows under QEMU
    for profile, g1 in (("4.19", 0), ("5.8", 0x100), ("6.1", 0)):
        r = emulate(APPENDIX, profile, p)
        k = r.kernel
        t = translate(k.phys, MMU(k.pgd_pfn << 12), [k.page_offset + 0x1000, k.page_offset + (4 << 30)])
        assert int(t.leaf[0]) == 0x1000 | 0x8000000000000063
        assert int(t.shift[1]) == 30 and int(t.leaf[1]) & 0x1FF == 0x0E3 | g1
        assert r.verify.ok, (profile, r.verify.violations)


def test_brk_first_then_memblock_inside_mapped_memory():
    # 4K pages only: the big windows need many PTE pages; BRK (6 pages) runs out fast
    p = BootParams(cpu=CpuFeatures(gbpages=False), gbpages=False, debug_pagealloc=True)
    r = emulate(APPENDIX, "3.19", p)
    k = r.kernel
    assert r.verify.ok, r.verify.violations
    brk = [t for t in k.table_pages if t.source == SOURCE_BRK]
    mb = [t for t in k.table_pages if t.source == SOURCE_MEMBLOCK]
    assert len(brk) == 6 and len(mb) > 500
    assert sum(l.startswith("BRK [") for l in r.log) == 6
    # fallback pages are taken top-down from memory already mapped, and reserved
    assert max(t.pfn for t in mb) == (5 * G >> 12) - 1
    assert all(t.mapped_at_alloc for t in mb)
    assert all(k.memblock.reserved.contains(t.pfn << 12, 4096) for t in mb)


def test_window_holding_brk_takes_memblock_pages():
    r = emulate(APPENDIX, "3.19", NO_GB)
    k = r.kernel
    # [1M, 0xbffe0000) holds the BRK buffer: its PTE page for [1M, 2M) exists (ISA), but the
    # tail [0xbfe00000, 0xbffe0000) needs a new PTE page, which must not come from BRK
    call = next(i for i, c in enumerate(k.calls) if c.start == 0x100000)
    pages = [t for t in k.table_pages if t.call == call]
    assert pages and all(t.source == SOURCE_MEMBLOCK for t in pages)


def test_3_9_brk_too_small_for_4k_top_outside_first_512g():
    e820 = table((0, 0x9F000), (0x100000, 0x80000000), (1 << 40, (1 << 40) + G))
    p = BootParams(cpu=CpuFeatures(gbpages=False), gbpages=False, debug_pagealloc=True)
    r9 = emulate(e820, "3.9", p)
    assert r9.panic == "Kernel panic - not syncing: alloc_low_page: ran out of memory"
    assert r9.log[-1] == r9.panic
    r10 = emulate(e820, "3.10", p)
    assert r10.panic is None and r10.verify.ok, r10.verify.violations
    assert sum(l.startswith("BRK [") for l in r10.log) == 6


def _full_brk_kernel(profile):
    k = setup_arch(get_profile(profile), BootParams(), pc(2 * G))
    k.pgt_buf_end = k.pgt_buf_top
    return k


def test_alloc_low_pages_panics():
    k = _full_brk_kernel("3.10")
    k.min_pfn_mapped, k.max_pfn_mapped = 0x1000, 0x1000
    with pytest.raises(KernelPanic, match="^Kernel panic - not syncing: alloc_low_page: ran out of memory$"):
        alloc_low_pages(k, 1, 1)
    k = _full_brk_kernel("4.4")
    k.min_pfn_mapped, k.max_pfn_mapped = 0x1000, 0x1010
    k.memblock.reserve(0x1000000, 0x10000)  # nothing free in the window
    with pytest.raises(KernelPanic, match="alloc_low_pages: can not alloc memory$"):
        alloc_low_pages(k, 1, 1)
    k = _full_brk_kernel("4.19")
    k.min_pfn_mapped = k.max_pfn_mapped = 0x1000
    with pytest.raises(KernelPanic, match="extend_brk"):
        alloc_low_pages(k, 1, 1)
    k = _full_brk_kernel("4.19")
    k.min_pfn_mapped = k.max_pfn_mapped = 0x1000
    k.can_use_brk_pgt = False
    with pytest.raises(KernelPanic, match="alloc_low_pages: can not alloc memory$"):
        alloc_low_pages(k, 1, 1)


def test_real_end_without_free_block_5_15_vs_chkret():
    # 6 MiB of RAM above 1M, all of it reserved but [1M, 2M) (the kernel image from 2M): no free
    # 2M-aligned 2M block
    e820 = table((0, 0x9F000), (0x100000, 0x600000))
    p = BootParams(cpu=CpuFeatures(gbpages=False), gbpages=False, kernel_start=0x200000, brk_base=0x5F0000)
    r = emulate(e820, "5.15", p)
    # memblock_phys_free(0, PMD_SIZE) un-reserves [0, 2M): the kernel bug H14
    assert not r.kernel.memblock.reserved.overlaps(0, 0x10000)
    assert "Failed to release memory for alloc_low_pages()" not in r.debug_log
    r2 = emulate(e820, "6.15", p)
    assert "Failed to release memory for alloc_low_pages()" in r2.log
    assert r2.kernel.memblock.reserved.overlaps(0, 0x10000)


def test_direct_map_counters_match_meminfo_units():
    r = emulate(APPENDIX, "3.19", NO_GB)
    m = r.meminfo
    assert set(m) == {"DirectMap4k", "DirectMap2M"}
    assert m["DirectMap4k"] * 1024 == r.direct_map["4k"]
    assert r.direct_map["4k"] + r.direct_map["2M"] >= 0xBFFE0000 - 0x1000 + G - 0x61000


def test_deterministic_bytes():
    a = emulate(APPENDIX, "6.1").kernel.phys
    b = emulate(APPENDIX, "6.1").kernel.phys
    assert a.nframes == b.nframes
    assert (a.frames[: a.nframes] == b.frames[: b.nframes]).all()
    assert (a.backed_pfns() == b.backed_pfns()).all()


def test_no_pge_keeps_global_on_3x_but_not_4x():
    p = BootParams(cpu=CpuFeatures(gbpages=False, pge=False), gbpages=False)
    for profile, g in (("3.13", 0x100), ("4.4", 0)):
        r = emulate(APPENDIX, profile, p)
        k = r.kernel
        t = translate(k.phys, MMU(k.pgd_pfn << 12), [k.page_offset + 0x1000])
        assert int(t.leaf[0]) & 0x100 == g, profile
        assert r.verify.ok


def test_e820_add_kernel_range_makes_the_image_ram():
    # a reserved hole over the kernel image: 3.9+ complains and turns it into RAM
    e = table((0, 0x9F000), (0x100000, 0x1800000), (0x1800000, 0x1900000, E820_RESERVED), (0x1900000, 0x40000000))
    r = emulate(e, "4.4", NO_GB)
    assert ".text .data .bss are not marked as E820_TYPE_RAM!" in r.log
    assert r.kernel.memblock.is_region_memory(0x1000000, 0x1000000)
    r36 = emulate(e, "3.5", NO_GB)   # before 3.9: nothing of the kind
    assert not any("not marked" in l for l in r36.log)


def test_late_6_1_stable_checks_the_real_end_allocation():
    from emu.kernel.profiles import get_profile
    assert get_profile("6.1.192").real_end_check_return and not get_profile("6.1.0").real_end_check_return
    assert get_profile("6.6.0").name == "6.6"


def test_i386_brk_buffer_ignores_64bit_only_options():
    k = emulate(table((0, 0x9F000), (0x100000, 0x20000000)), "6.1", BootParams(arch="i386", pae=True)).kernel
    assert k.pgt_buf_top - k.pgt_buf_start == 6
