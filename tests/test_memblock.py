"""memblock: region lists, merging, and the kernel's searches (mm/memblock.c)."""
from emu.kernel.mm.memblock import PAGE_SIZE, Memblock, RegionList


def regions(rl):
    return list(rl)


def test_add_merges_touching_and_overlapping():
    r = RegionList("memory")
    r.add(0x1000, 0x1000)
    r.add(0x3000, 0x1000)
    assert regions(r) == [(0x1000, 0x2000), (0x3000, 0x4000)]
    r.add(0x2000, 0x1000)  # touches both
    assert regions(r) == [(0x1000, 0x4000)]
    r.add(0x0, 0x10000)  # covers all
    assert regions(r) == [(0, 0x10000)]


def test_remove_splits():
    r = RegionList("reserved")
    r.add(0, 0x10000)
    r.remove(0x4000, 0x2000)
    assert regions(r) == [(0, 0x4000), (0x6000, 0x10000)]
    r.remove(0, 0x5000)
    assert regions(r) == [(0x6000, 0x10000)]


def test_top_down_returns_highest_aligned_fit():
    m = Memblock()
    m.add(0x100000, 0x7F00000)        # [1M, 128M)
    m.reserve(0x7E00000, 0x100000)    # [126M, 127M) reserved
    # highest 2M-aligned 2M block: [124M,126M) (the top [127M,128M) is only 1M)
    assert m.find_in_range(0x100000, 0x8000000, 2 << 20, 2 << 20) == 124 << 20
    # page-aligned page: just below the top
    assert m.find_in_range(0x100000, 0x8000000, PAGE_SIZE, PAGE_SIZE) == 0x8000000 - PAGE_SIZE
    # window clamp
    assert m.find_in_range(0x100000, 0x7E00000, PAGE_SIZE, PAGE_SIZE) == 0x7E00000 - PAGE_SIZE


def test_find_avoids_first_page_and_fails_with_zero():
    m = Memblock()
    m.add(0, 0x2000)
    assert m.find_in_range(0, 0x2000, 0x2000, PAGE_SIZE) == 0  # page 0 never returned
    assert m.find_in_range(0, 0x2000, PAGE_SIZE, PAGE_SIZE) == 0x1000
    assert m.find_in_range(0x1000, 0x2000, 0x2000, PAGE_SIZE) == 0


def test_free_ranges_reverse_and_forward_agree():
    m = Memblock()
    m.add(0x1000, 0x9E000)
    m.add(0x100000, 0x1000000)
    m.reserve(0x200000, 0x10000)
    m.reserve(0x90000, 0x20000)
    fwd = list(m.free_ranges())
    rev = list(m.free_ranges_reverse())
    assert fwd == sorted(rev)
    assert fwd == [(0x1000, 0x90000), (0x100000, 0x200000), (0x210000, 0x1100000)]


def test_bottom_up_clamps_at_kernel_end_then_falls_back():
    m = Memblock(bottom_up=True, kernel_end=0x3000000)
    m.add(0x100000, 0x4000000 - 0x100000)
    assert m.find_in_range(0x100000, 0x4000000, PAGE_SIZE, PAGE_SIZE) == 0x3000000
    # nothing free above kernel_end: WARN once and search top-down
    m.reserve(0x3000000, 0x1000000)
    assert m.find_in_range(0x100000, 0x4000000, PAGE_SIZE, PAGE_SIZE) == 0x3000000 - PAGE_SIZE
    assert m.warnings == ["memblock: bottom-up allocation failed, memory hotremove may be affected"]
    m2 = Memblock(bottom_up=True, kernel_end=0x3000000, bottom_up_clamp=False)
    m2.add(0x100000, 0x4000000 - 0x100000)
    assert m2.find_in_range(0x100000, 0x4000000, PAGE_SIZE, PAGE_SIZE) == 0x100000


def test_is_region_memory_needs_one_region():
    m = Memblock()
    m.memory.bases, m.memory.ends = [0x0, 0x200000], [0x200000, 0x400000]  # touching, unmerged
    assert m.is_region_memory(0x0, 0x200000)
    assert not m.is_region_memory(0x100000, 0x200000)
    m.add(0, 0x400000)  # merged now
    assert m.is_region_memory(0x100000, 0x200000)


def test_for_each_mem_pfn_range_rounds_inward_and_trim():
    m = Memblock()
    m.add(0x1800, 0x2000)   # [0x1800, 0x3800)
    assert list(m.for_each_mem_pfn_range()) == [(2, 3)]
    m.trim_memory(PAGE_SIZE)
    assert list(m.memory) == [(0x2000, 0x3000)]


def test_phys_alloc_range_reserves():
    m = Memblock()
    m.add(0x100000, 0x100000)
    a = m.phys_alloc_range(PAGE_SIZE, PAGE_SIZE, 0x100000, 0x200000)
    assert a == 0x1FF000 and m.is_region_reserved(a, PAGE_SIZE)
    b = m.phys_alloc_range(PAGE_SIZE, PAGE_SIZE, 0x100000, 0x200000)
    assert b == 0x1FE000
    assert list(m.reserved) == [(0x1FE000, 0x200000)]


def _bottom_up_16g(**kw):
    from emu import BootParams, emulate
    from emu.inputs.e820 import E820Map
    e = E820Map([(0, 0x4A0000, 2), (0x4A0000, (16 << 30) - 0x4A0000, 1)])
    return emulate(e, "6.1", BootParams(gbpages=False, movable_node=True, **kw), check=True)


def test_kernel_end_is_the_system_maps_end_and_its_default_is_said():
    """memblock's bottom-up start and memory_map_bottom_up's split are __pa_symbol(_end)
    (``image_end``, a System.map's ``_end``); without it the default is said (an oracle boot
    of 6.1 with these inputs took its first memblock pages at _end, 0x4430000)."""
    r = _bottom_up_16g()
    said = [a for a in r.assumptions if a.field == "image_end"]
    assert len(said) == 1 and said[0].value == "%#x" % r.kernel.kernel_end
    k = r.kernel
    brk_end = k.pgt_buf_top << 12
    given = _bottom_up_16g(image_end=brk_end + 0x1F000)
    assert given.kernel.kernel_end == brk_end + 0x1F000
    assert "image_end" not in {a.field for a in given.assumptions}
    # the first window of the bottom-up pass starts at _end
    assert given.kernel.calls[0].start < brk_end + 0x200000
    assert given.kernel.calls != r.kernel.calls


def test_kernel_end_below_the_brk_buffer_is_refused():
    import pytest
    from emu.kernel.validate import SetupError
    r = _bottom_up_16g()
    with pytest.raises(SetupError, match="below the end of the BRK"):
        _bottom_up_16g(image_end=(r.kernel.pgt_buf_top << 12) - 0x1000)


def test_no_image_end_assumption_when_top_down():
    from emu import BootParams, emulate
    from emu.inputs.e820 import E820Map
    r = emulate(E820Map([(0, 0x9FC00, 1), (0x100000, (1 << 30) - 0x100000, 1)]), "6.1", BootParams(), check=True)
    assert "image_end" not in {a.field for a in r.assumptions}


def test_one_default_end_for_every_reader_of_end():
    """default_image_end is the BRK page-table buffer's end + the arch's tail, the value
    e820_add_kernel_range, memblock's kernel_end and head_32's image_end all take."""
    from emu import BootParams, emulate
    from emu.inputs.e820 import E820Map
    from emu.kernel.arch.x86.kernel.setup import BRK_TAIL, IMAGE_TAIL_32, default_image_end
    e = E820Map([(0, 0x9FC00, 1), (0x100000, (2 << 30) - 0x100000, 1)])
    for arch, prof in (("x86_64", "6.1"), ("x86_64", "5.4"), ("i386", "6.1"), ("i386", "3.13")):
        kw = {"arch": arch, "pae": True} if arch == "i386" else {}
        r = emulate(e, prof, BootParams(**kw), check=False)
        k = r.kernel
        tail = IMAGE_TAIL_32 if arch == "i386" else BRK_TAIL
        assert k.kernel_end == (k.pgt_buf_top << 12) + tail == default_image_end(k.profile, k.params,
                                                                                  k.pgt_buf_start << 12)
        if arch == "i386":
            said = {a.field: a.value for a in r.assumptions}
            assert said["image_end"] == "%#x" % k.kernel_end


def test_the_default_end_is_said_when_the_kernel_range_is_made_ram():
    """e820_add_kernel_range reads _end too: RAM ending inside the image makes it print the
    '.text .data .bss' line and add [_text, _end) as RAM, with the default _end said."""
    from emu import BootParams, emulate
    from emu.inputs.e820 import E820Map
    r = emulate(E820Map([(0, 0x9FC00, 1), (0x100000, 0x1080000, 1)]), "6.1", BootParams(), check=False)
    assert ".text .data .bss are not marked as E820_TYPE_RAM!" in r.log
    said = [a for a in r.assumptions if a.field == "image_end"]
    assert len(said) == 1 and "e820_add_kernel_range" in said[0].why
    assert int(said[0].value, 16) == r.kernel.kernel_end
