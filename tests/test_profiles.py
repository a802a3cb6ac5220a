"""What makes each profile differ: a layout where the logs or tables differ, and the difference."""
import pytest

from emu.tools.diff import compare
from emu.kernel.arch.x86.kernel.e820 import E820_RESERVED
from emu.boot.emulate import emulate
from emu.kernel.params import BootParams
from emu.machine.cpu import CpuFeatures
from emu.kernel.profiles import CHANGES, PROFILES, get_profile, profile_table

from layouts import G, pc, table

NO_GB = BootParams(cpu=CpuFeatures(gbpages=False), gbpages=False)
# RAM with a reserved hole in the middle of low memory, and RAM above 4 GiB
HOLE = table((0, 0x9F000), (0x9F000, 0x100000, E820_RESERVED), (0x100000, 0x40000000),
             (0x40000000, 0x40400000, E820_RESERVED), (0x40400000, 0xBFF00000),
             (0xBFF00000, 1 << 32, E820_RESERVED), (1 << 32, 6 * G))


def lines(r, debug=True):
    return r.debug_log if debug else r.log


def test_version_lookup():
    assert get_profile("4.1.0-040100-generic").name == "4.1"
    assert get_profile("3.19.0-15-generic").name == "3.19"
    assert get_profile("3.8.0-29-generic").name == "3.8"      # i386: the pvclock fixmap pages (3.8)
    assert get_profile("2.6.32-22-generic-pae").name == "2.6.31"
    assert get_profile("3.0.0-15-generic").name == "2.6.38"     # memblock's table-space search
    assert get_profile("6.1.0-13-amd64").name == "6.1"
    assert get_profile("seed").name == "seed"            # only by name
    assert all(get_profile(p.name) is p for p in PROFILES.values())
    rows = profile_table()
    assert [r[0] for r in rows][0] == "2.6.31"
    # every named profile but the oldest changes something, except the releases people run
    assert all(r[2] for r in rows if r[0] not in ("2.6.31", "6.1", "6.6", "6.12", "6.18"))


def test_stable_kernels_resolve_by_the_changes_they_carry():
    """A stable kernel carries the backports its branch got (sources in emu.kernel.profiles)."""
    from emu.kernel.profiles import explain
    p = get_profile("5.10.223")                     # 88e0a74902f8 reached 5.10.y at 5.10.138
    assert p.name == "5.10.223" and p.pud_large_from_prot is False and p.pgt_buf_pages_5level is None
    assert get_profile("5.10.137").pud_large_from_prot is True
    assert get_profile("6.1.192").real_end_check_return and not get_profile("6.1.140").real_end_check_return
    assert get_profile("6.1.141").real_end_check_return                     # 631ca8909fd5 from 6.1.141
    assert get_profile("6.12.31").real_end_check_return and not get_profile("6.12.30").real_end_check_return
    assert get_profile("4.19.129").log_brk == "none" and get_profile("4.19.128").log_brk != "none"
    assert get_profile("4.19.5").page_offset == 0xFFFF888000000000 != get_profile("4.19.4").page_offset
    why = {c["id"]: (c["carried"], c["why"]) for c in explain("5.10.223")["changes"]}
    assert why["pud_leaf_pse_only"] == (True, "stable 5.10.y from 5.10.138")
    assert why["pgt_buf_5level"] == (False, "mainline 5.12 > 5.10 (no 5.10.y backport)")
    assert why["init_memory_mapping_prot"] == (True, "mainline 5.7 <= 5.10")


def test_every_change_names_its_source_and_fields():
    from emu.kernel.profiles import CHANGES, Profile
    import dataclasses
    names = {f.name for f in dataclasses.fields(Profile)}
    for c in CHANGES:
        assert c.sources and c.sets and set(c.sets) <= names, c.id
        assert c.confidence in ("verified", "likely", "corpus"), c.id
        assert not c.commit or len(c.commit) >= 12, c.id
    assert [c.mainline for c in CHANGES] == sorted(c.mainline for c in CHANGES)


def test_prepatch_maps_holes_top_down_does_not():
    old = emulate(HOLE, "3.5", NO_GB)
    new = emulate(HOLE, "3.9", NO_GB)
    assert [l for l in lines(old) if l.startswith("init_memory_mapping")] == [
        "init_memory_mapping: [mem 0x00000000-0xbfefffff]",
        "init_memory_mapping: [mem 0x100000000-0x17fffffff]"]
    assert "kernel direct mapping tables up to 0xbfefffff @ [mem 0x1fffb000-0x1fffffff]" in lines(old)
    diffs = compare(old, new)
    hole = [d for d in diffs if d.start <= 0x40000000 < d.end]
    assert hole and hole[0].a is not None and hole[0].b is None   # 3.5 maps the reserved hole


def test_hex_printk_and_end_based_sizing_before_3_5():
    r = emulate(HOLE, "3.0", NO_GB)
    assert lines(r)[:4] == ["initial memory mapped : 0 - 20000000",   # x86-64 printed it until 3.8
                            "init_memory_mapping: 0000000000000000-00000000bff00000",
                            " 0000000000 - 00bfe00000 page 2M", " 00bfe00000 - 00bff00000 page 4k"]
    # the second call sizes its buffer for [0, 6G), not for [4G, 6G): 1 PUD page + 6 PMD pages
    assert lines(r)[-1] == "kernel direct mapping tables up to 180000000 @ bfef9000-bff00000"
    r5 = emulate(HOLE, "3.5", NO_GB)
    assert lines(r5)[-1] == "kernel direct mapping tables up to 0x17fffffff @ [mem 0xbfefd000-0xbfefffff]"
    assert lines(r5)[0] == "initial memory mapped: [mem 0x00000000-0x1fffffff]"
    assert not any(l.startswith("initial memory mapped") for l in lines(emulate(HOLE, "3.9", NO_GB)))


def test_2_6_31_places_the_buffer_first_fit_from_0x8000():
    r = emulate(HOLE, "2.6.31", NO_GB)
    assert lines(r)[4] == "kernel direct mapping tables up to bff00000 @ 8000-d000"


def test_prepatch_clears_the_static_identity_map_past_lowmem():
    small = table((0, 0x9F000), (0x100000, 0x20000000))  # 512 MiB
    r = emulate(small, "3.5", NO_GB)
    k = r.kernel
    l2 = k.pgd_pfn + 2
    pmd = k.phys.table(l2)
    assert int(pmd[255]) == (255 << 21) | 0x1E3   # kept static leaf, no NX
    assert all(int(pmd[i]) == 0 for i in range(256, 512))


def test_seed_keeps_identity_leaves_and_splits_the_first():
    r = emulate(pc(6 * G), "seed", NO_GB)
    k = r.kernel
    t = k.phys.table(k.pgd_pfn + 2)
    assert int(t[1]) == (1 << 21) | 0x1E3
    pte0 = k.phys.table(int(t[0]) >> 12)
    assert int(pte0[0]) == 0x163 and int(pte0[0xFF]) == 0xFF000 | 0x163       # split: old flags, no PSE
    assert int(pte0[0x100]) == 0x100000 | 0x8000000000000163                   # mapped later, PAGE_KERNEL
    r10 = emulate(pc(6 * G), "3.10", NO_GB)
    assert not any(l.startswith("BRK") for l in r.log) and any(l.startswith("BRK") for l in r10.log)


def test_seed_brk_off_by_one_leaves_a_page_unused():
    p = BootParams(cpu=CpuFeatures(gbpages=False), gbpages=False, debug_pagealloc=True)
    seed = emulate(pc(6 * G), "seed", p)
    v310 = emulate(pc(6 * G), "3.10", p)
    assert seed.pgtable_pages["by_source"]["brk"] == 4      # 5 pages, '>=' test: the last is never used
    assert v310.pgtable_pages["by_source"]["brk"] == 6


def test_seed_real_end_is_only_page_aligned():
    # the top 2M-aligned block holds a reserved page: the seed's PAGE_SIZE-aligned search
    # still finds a 2M block ending at that page, the 3.10 search steps down a whole 2M
    p = BootParams(cpu=CpuFeatures(gbpages=False), gbpages=False, reserves=[(6 * G - 0x100000, 6 * G - 0xFF000)])
    seed = [l for l in emulate(pc(6 * G), "seed", p).debug_log if l.startswith("init_memory_mapping")]
    v310 = [l for l in emulate(pc(6 * G), "3.10", p).debug_log if l.startswith("init_memory_mapping")]
    assert seed[1] == "init_memory_mapping: [mem 0x17fe00000-0x17fefffff]"   # a 1M first window
    assert v310[1] == "init_memory_mapping: [mem 0x17fc00000-0x17fdfffff]"


def test_pr_debug_from_4_5_and_brk_line_gone_from_5_8():
    for name, imm, brk in (("3.19", True, True), ("4.4", True, True), ("4.5", False, True), ("5.8", False, False)):
        r = emulate(pc(6 * G), name, NO_GB)
        assert any(l.startswith("init_memory_mapping") for l in r.log) == imm, name
        assert any(l.startswith("BRK") for l in r.log) == brk, name
        assert any(l.startswith("init_memory_mapping") for l in r.debug_log)


@pytest.mark.parametrize("profile,randomize,l5,pages", [
    ("3.10", None, None, 6), ("4.8", None, None, 12), ("4.8", False, None, 6),
    ("5.12", None, None, 16), ("5.12", False, False, 6), ("5.12", True, False, 12), ("3.9", None, None, 5)])
def test_brk_buffer_size(profile, randomize, l5, pages):
    p = BootParams(randomize_memory=randomize, x86_5level_config=l5)
    k = emulate(pc(2 * G), profile, p).kernel
    assert k.pgt_buf_top - k.pgt_buf_start == pages


def test_5level_maps_beyond_64t():
    e = table((0, 0x9F000), (0x100000, 0x80000000), (80 << 40, (80 << 40) + G))
    r = emulate(e, "6.1", BootParams(la57=True))
    assert r.panic is None and r.verify.ok, r.verify.violations
    assert r.kernel.paging_levels == 5 and r.pgtable_pages["by_level"]["p4d"] == 1
    # 4-level: MAX_PHYSMEM_BITS 46 caps max_pfn below 64 TiB; the RAM above is not mapped
    r4 = emulate(e, "6.1", BootParams())
    assert r4.kernel.max_pfn == 0x80000


def test_6_11_to_6_17_changes():
    """The e820 type sets, the 5-level BRK size and the PTI command-line rule of 6.7-6.17
    (research/kernel_x86_64_more.md), and which stable kernels do not carry them."""
    assert get_profile("6.10").e820_keep_types == (1, 128) and get_profile("6.10").end_pfn_types == (1,)
    assert get_profile("6.12.118").e820_keep_types == (1, 3, 128)
    assert get_profile("6.12.118").end_pfn_types == (1, 3)
    assert get_profile("6.1.192").end_pfn_types == (1,)             # 06fa48d85b09 not in 6.1.y
    assert get_profile("6.15").e820_keep_types == (1, 3)
    assert get_profile("6.15").pgt_buf_count(False, False) == 6
    assert get_profile("6.16").pgt_buf_count(False, False) == 8      # 7212b58d6d71
    assert get_profile("6.16").pgt_buf_count(True, False) == 16
    assert get_profile("6.1").pti_cmdline_rule == "pti_first"
    assert get_profile("6.7").pti_cmdline_rule == "mitigations_first"
    assert get_profile("6.17").pti_cmdline_rule == "attack_vectors"


def test_max_pfn_counts_acpi_from_6_11():
    """06fa48d85b09: an ACPI-data range above the last RAM raises max_pfn (and the
    'last_pfn' line) from 6.11 on; the direct map is the same."""
    from emu import emulate
    from emu.inputs.e820 import E820Map
    e820 = E820Map([(0, 0x9f000, 1), (0x100000, 0x7ee00000, 1), (0x7ef00000, 0x100000, 3)])
    old, new = emulate(e820, "6.10"), emulate(e820, "6.11")
    assert old.kernel.max_pfn == 0x7ef00 and new.kernel.max_pfn == 0x7f000
    assert old.direct_map == new.direct_map and new.verify.ok


def test_every_change_since_memblock_has_a_commit_or_says_why_not():
    """Issue 10 item 3: a change carries its commit (12+ hex digits), or a source saying it was
    searched for and not pinned; 'verified' needs a commit."""
    import re
    for c in CHANGES:
        if c.commit:
            assert re.fullmatch(r"[0-9a-f]{12,40}", c.commit), c.id
        elif c.mainline >= (2, 6, 38):
            assert any("commit not pinned" in s for s in c.sources), c.id
        assert c.confidence != "verified" or c.commit, c.id
        assert set(c.stable).isdisjoint(c.not_in_stable), c.id


def test_cea_39_pages_only_in_stable():
    """05b042a19443 (39 pages per CPU) is a 5.5 commit that mainline overrode with 43; only 5.3.14+
    and 5.4.1+ carry 39 (review cover 5.3.14-rc1, Debian changelog upstream 5.4.1)."""
    cea = next(c for c in CHANGES if c.id == "i386_cea_39_pages")
    assert cea.carried_by((5, 4, 0))[0] is False and cea.carried_by((5, 4, 1))[0] is True
    assert cea.carried_by((5, 3, 13))[0] is False and cea.carried_by((5, 3, 14))[0] is True
    assert [get_profile(v).i386_cea_pages_per_cpu for v in ("5.4", "5.4.1", "5.4.59", "5.5")] == [40, 39, 39, 43]
