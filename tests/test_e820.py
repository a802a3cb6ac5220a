"""Tests for emu.kernel.arch.x86.kernel.e820 (arch/x86/kernel/e820.c semantics, formats) and the
e820 readers of emu.inputs.e820."""
from __future__ import annotations

import json
import re
import random
from pathlib import Path

import numpy as np
import pytest

from emu.inputs import e820 as I
from emu.kernel.arch.x86.kernel import e820 as E

from emu.kernel.arch.x86.kernel.e820 import (  # noqa: E402
    E820_ACPI, E820_NVS, E820_PMEM, E820_PRAM, E820_RAM, E820_RESERVED, E820_RESERVED_KERN,
    E820_SOFT_RESERVED, E820_UNUSABLE, U64_MAX, E820Entry, E820Error, E820Table,
)

K = 0x1000
M = 1 << 20
G = 1 << 30


def T(*triples):
    return E820Table([E820Entry(a, s, t) for a, s, t in triples])


def tuples(t):
    return [(e.addr, e.size, e.type) for e in t]


# ---------------------------------------------------------------------------
# sanitize
# ---------------------------------------------------------------------------
class TestSanitize:
    def test_overlap_higher_type_wins(self):
        t = T((0, 0x2000, E820_RAM), (0x1000, 0x2000, E820_RESERVED))
        assert tuples(t.sanitize()) == [(0, 0x1000, E820_RAM), (0x1000, 0x2000, E820_RESERVED)]

    def test_overlap_higher_type_wins_regardless_of_order(self):
        t = T((0x1000, 0x2000, E820_RESERVED), (0, 0x2000, E820_RAM))
        assert tuples(t.sanitize()) == [(0, 0x1000, E820_RAM), (0x1000, 0x2000, E820_RESERVED)]

    def test_contained_higher_type_splits(self):
        t = T((0, 0x10000, E820_RAM), (0x4000, 0x1000, E820_ACPI))
        assert tuples(t.sanitize()) == [(0, 0x4000, E820_RAM), (0x4000, 0x1000, E820_ACPI),
                                        (0x5000, 0xB000, E820_RAM)]

    def test_contained_lower_type_disappears(self):
        t = T((0, 0x10000, E820_RESERVED), (0x4000, 0x1000, E820_RAM))
        assert tuples(t.sanitize()) == [(0, 0x10000, E820_RESERVED)]

    def test_reserved_kern_beats_everything_below_128(self):
        t = T((0, 0x3000, E820_NVS), (0x1000, 0x1000, E820_RESERVED_KERN))
        assert tuples(t.sanitize()) == [(0, 0x1000, E820_NVS), (0x1000, 0x1000, E820_RESERVED_KERN),
                                        (0x2000, 0x1000, E820_NVS)]

    def test_adjacent_equal_types_merge(self):
        t = T((0, 0x1000, E820_RAM), (0x1000, 0x1000, E820_RAM), (0x2000, 0x1000, E820_RESERVED),
              (0x3000, 0x1000, E820_RESERVED))
        assert tuples(t.sanitize()) == [(0, 0x2000, E820_RAM), (0x2000, 0x2000, E820_RESERVED)]

    def test_gap_is_kept(self):
        t = T((0, 0x1000, E820_RAM), (0x2000, 0x1000, E820_RAM))
        assert tuples(t.sanitize()) == [(0, 0x1000, E820_RAM), (0x2000, 0x1000, E820_RAM)]

    def test_disorder_sorted(self):
        t = T((0x100000, 0x100000, E820_RAM), (0xF0000, 0x10000, E820_RESERVED), (0, 0x9F000, E820_RAM))
        assert tuples(t.sanitize()) == [(0, 0x9F000, E820_RAM), (0xF0000, 0x10000, E820_RESERVED),
                                        (0x100000, 0x100000, E820_RAM)]

    def test_zero_size_dropped(self):
        t = T((0, 0x1000, E820_RAM), (0x5000, 0, E820_RESERVED), (0x2000, 0x1000, E820_RAM), (0, 0, 0))
        assert tuples(t.sanitize()) == [(0, 0x1000, E820_RAM), (0x2000, 0x1000, E820_RAM)]

    def test_identical_duplicates(self):
        t = T((0, 0x1000, E820_RAM), (0, 0x1000, E820_RAM))
        assert tuples(t.sanitize()) == [(0, 0x1000, E820_RAM)]

    def test_overflow_leaves_table_untouched(self):
        # the kernel returns -1 without touching the map if any addr+size wraps
        t = T((0x2000, 0x1000, E820_RAM), (U64_MAX - 0xFFF, 0x2000, E820_RESERVED), (0, 0x1000, E820_RAM))
        s, done = t.sanitize_with_status()
        assert not done
        assert tuples(s) == tuples(t)
        assert s is not t

    def test_end_exactly_2_64_counts_as_overflow(self):
        t = T((0, 0x1000, E820_RAM), (U64_MAX - 0xFFF, 0x1000, E820_RESERVED))
        assert t.sanitize_with_status()[1] is False

    def test_single_entry_untouched(self):
        t = T((0x5000, 0, E820_RAM))
        s, done = t.sanitize_with_status()
        assert not done and tuples(s) == [(0x5000, 0, E820_RAM)]

    def test_returns_new_table(self):
        t = T((0x1000, 0x1000, E820_RAM), (0, 0x1000, E820_RAM))
        before = tuples(t)
        s = t.sanitize()
        assert tuples(t) == before and tuples(s) == [(0, 0x2000, E820_RAM)]

    def test_idempotent(self):
        t = T((0, 0x9F000, E820_RAM), (0x9F000, 0x1000, E820_RESERVED), (0x100000, 0x7FF00000, E820_RAM),
              (0x50000000, 0x100000, E820_NVS))
        s = t.sanitize()
        assert s.sanitize() == s

    def test_pram_not_merged_from_4_1(self):
        t = T((0, 0x1000, E820_PRAM), (0x1000, 0x1000, E820_PRAM))
        assert tuples(t.sanitize(version=(4, 1, 0))) == [(0, 0x1000, E820_PRAM), (0x1000, 0x1000, E820_PRAM)]
        assert tuples(t.sanitize(version=(3, 13, 0))) == [(0, 0x2000, E820_PRAM)]
        assert tuples(t.sanitize()) == [(0, 0x1000, E820_PRAM), (0x1000, 0x1000, E820_PRAM)]

    def test_soft_reserved_not_merged_from_5_5(self):
        t = T((0, 0x1000, E820_SOFT_RESERVED), (0x1000, 0x1000, E820_SOFT_RESERVED))
        assert len(t.sanitize(version=(5, 10, 0))) == 2
        assert len(t.sanitize(version=(4, 19, 0))) == 1

    def test_nomerge_splits_at_inner_change_points(self):
        # PRAM over a lower-type entry: the kernel starts a new PRAM piece at
        # every change point, even where the winning type stays PRAM
        t = T((0, 0x4000, E820_PRAM), (0x1000, 0x1000, E820_RAM))
        assert tuples(t.sanitize(nomerge=(E820_PRAM,))) == [
            (0, 0x1000, E820_PRAM), (0x1000, 0x1000, E820_PRAM), (0x2000, 0x2000, E820_PRAM)]
        assert tuples(t.sanitize(nomerge=())) == [(0, 0x4000, E820_PRAM)]

    def test_max_entries_stops_output(self):
        t = E820Table([(i * 0x2000, 0x1000, E820_RAM) for i in range(6)], max_entries=4)
        assert len(t.sanitize()) == 4

    @pytest.mark.parametrize("seed", range(40))
    def test_random_against_brute_force(self, seed):
        rng = random.Random(seed)
        kinds = [E820_RAM, E820_RESERVED, E820_ACPI, E820_NVS, E820_UNUSABLE, 20, E820_RESERVED_KERN]
        ents = []
        for _ in range(rng.randint(2, 12)):
            a = rng.randint(0, 40)
            n = rng.randint(0, 10)
            ents.append((a * K, n * K, rng.choice(kinds)))
        t = E820Table(ents)
        # brute force: per 4K cell the maximum covering type, then runs
        cells = [0] * 64
        for a, s, ty in ents:
            for c in range(a // K, (a + s) // K):
                cells[c] = max(cells[c], ty)
        want = []
        for c, ty in enumerate(cells):
            if not ty:
                continue
            if want and want[-1][2] == ty and want[-1][0] + want[-1][1] == c * K:
                want[-1] = (want[-1][0], want[-1][1] + K, ty)
            else:
                want.append((c * K, K, ty))
        assert tuples(t.sanitize(nomerge=())) == want


# ---------------------------------------------------------------------------
# update_range / remove_range
# ---------------------------------------------------------------------------
class TestUpdateRemove:
    def test_update_full_cover_in_place(self):
        t = T((0, 0x1000, E820_RAM), (0x1000, 0x1000, E820_RESERVED))
        assert t.update_range(0, 0x1000, E820_RAM, E820_RESERVED) == 0x1000
        assert tuples(t) == [(0, 0x1000, E820_RESERVED), (0x1000, 0x1000, E820_RESERVED)]

    def test_update_middle_splits_and_appends(self):
        t = T((0, 0x10000, E820_RAM), (0x20000, 0x1000, E820_RESERVED))
        assert t.update_range(0x4000, 0x1000, E820_RAM, E820_RESERVED) == 0x1000
        assert tuples(t) == [(0, 0x4000, E820_RAM), (0x20000, 0x1000, E820_RESERVED),
                             (0x4000, 0x1000, E820_RESERVED), (0x5000, 0xB000, E820_RAM)]
        assert tuples(t.sanitize()) == [(0, 0x4000, E820_RAM), (0x4000, 0x1000, E820_RESERVED),
                                        (0x5000, 0xB000, E820_RAM), (0x20000, 0x1000, E820_RESERVED)]

    def test_update_head(self):
        t = T((0, 0x10000, E820_RAM))
        assert t.update_range(0, 0x1000, E820_RAM, E820_RESERVED) == 0x1000
        assert tuples(t) == [(0x1000, 0xF000, E820_RAM), (0, 0x1000, E820_RESERVED)]

    def test_update_tail_partial(self):
        t = T((0, 0x10000, E820_RAM))
        assert t.update_range(0xC000, 0x8000, E820_RAM, E820_RESERVED) == 0x4000
        assert tuples(t) == [(0, 0xC000, E820_RAM), (0xC000, 0x4000, E820_RESERVED)]

    def test_update_spanning_several_entries(self):
        t = T((0, 0x3000, E820_RAM), (0x3000, 0x1000, E820_ACPI), (0x4000, 0x4000, E820_RAM))
        assert t.update_range(0x2000, 0x4000, E820_RAM, E820_UNUSABLE) == 0x3000
        assert tuples(t.sanitize()) == [(0, 0x2000, E820_RAM), (0x2000, 0x1000, E820_UNUSABLE),
                                        (0x3000, 0x1000, E820_ACPI), (0x4000, 0x2000, E820_UNUSABLE),
                                        (0x6000, 0x2000, E820_RAM)]

    def test_update_other_type_untouched(self):
        t = T((0, 0x10000, E820_ACPI))
        assert t.update_range(0, 0x10000, E820_RAM, E820_RESERVED) == 0
        assert tuples(t) == [(0, 0x10000, E820_ACPI)]

    def test_update_size_clamped_at_2_64(self):
        t = T((0, 0x10000, E820_RAM), (G, G, E820_RAM))
        assert t.update_range(0x8000, U64_MAX, E820_RAM, E820_RESERVED) == 0x8000 + G
        assert tuples(t.sanitize()) == [(0, 0x8000, E820_RAM), (0x8000, 0x8000, E820_RESERVED),
                                        (G, G, E820_RESERVED)]

    def test_update_same_type_is_bug(self):
        with pytest.raises(ValueError):
            T((0, 0x1000, E820_RAM)).update_range(0, 0x1000, E820_RAM, E820_RAM)

    def test_update_respects_max_entries(self):
        t = E820Table([(0, 0x10000, E820_RAM)], max_entries=2)
        t.update_range(0x4000, 0x1000, E820_RAM, E820_RESERVED)
        assert tuples(t) == [(0, 0x4000, E820_RAM), (0x4000, 0x1000, E820_RESERVED)]
        assert t.messages and "too many entries" in t.messages[0]

    def test_remove_full_cover_zeroes_entry(self):
        t = T((0, 0x9F000, E820_RAM), (0xA0000, 0x60000, E820_RAM), (0x100000, 0x100000, E820_RAM))
        assert t.remove_range(0xA0000, 0x60000, E820_RAM) == 0x60000
        assert tuples(t) == [(0, 0x9F000, E820_RAM), (0, 0, 0), (0x100000, 0x100000, E820_RAM)]
        assert tuples(t.sanitize()) == [(0, 0x9F000, E820_RAM), (0x100000, 0x100000, E820_RAM)]

    def test_remove_middle_appends_tail(self):
        t = T((0, 0x10000, E820_RAM), (0x10000, 0x1000, E820_NVS))
        assert t.remove_range(0x4000, 0x2000, E820_RAM) == 0x2000
        assert tuples(t) == [(0, 0x4000, E820_RAM), (0x10000, 0x1000, E820_NVS), (0x6000, 0xA000, E820_RAM)]

    def test_remove_partial_head_and_tail(self):
        t = T((0, 0x4000, E820_RAM), (0x6000, 0x4000, E820_RAM))
        assert t.remove_range(0x2000, 0x6000, E820_RAM) == 0x4000
        assert tuples(t) == [(0, 0x2000, E820_RAM), (0x8000, 0x2000, E820_RAM)]

    def test_remove_checks_type(self):
        t = T((0, 0x4000, E820_RESERVED), (0x4000, 0x4000, E820_RAM))
        assert t.remove_range(0, 0x8000, E820_RAM) == 0x4000
        assert tuples(t.sanitize()) == [(0, 0x4000, E820_RESERVED)]

    def test_remove_without_type_check(self):
        t = T((0, 0x4000, E820_RESERVED), (0x4000, 0x4000, E820_RAM), (0x10000, 0x1000, E820_ACPI))
        assert t.remove_range(0x2000, 0x4000, 0, check_type=False) == 0x4000
        assert tuples(t.sanitize()) == [(0, 0x2000, E820_RESERVED), (0x6000, 0x2000, E820_RAM),
                                        (0x10000, 0x1000, E820_ACPI)]

    def test_mem_equals_style_remove(self):
        t = T((0, 0x9F000, E820_RAM), (0x100000, 3 * G, E820_RAM), (4 * G, 4 * G, E820_RAM),
              (0xFEC00000, 0x1000, E820_RESERVED))
        t.remove_range(G, U64_MAX - G, E820_RAM)
        s = t.sanitize()
        assert tuples(s) == [(0, 0x9F000, E820_RAM), (0x100000, G - 0x100000, E820_RAM),
                             (0xFEC00000, 0x1000, E820_RESERVED)]
        assert s.end_of_ram_pfn(1 << 34) == G >> 12


# ---------------------------------------------------------------------------
# queries
# ---------------------------------------------------------------------------
class TestQueries:
    def test_end_pfn_max_of_entries(self):
        t = T((0, 0x9FC00, E820_RAM), (0x100000, 0x7FF00000, E820_RAM), (0xFEC00000, 0x1000, E820_RESERVED))
        assert t.end_of_ram_pfn(1 << 34) == 0x80000
        assert t.end_pfn(1 << 34, E820_RESERVED, 1 << 34) == 0xFEC01

    def test_end_pfn_floors_unaligned_end(self):
        assert T((0, 0x9FC00, E820_RAM), (0xA0000, 0, E820_RESERVED)).end_of_ram_pfn(1 << 20) == 0x9F

    def test_end_pfn_crossing_limit_returns_limit_and_stops(self):
        t = T((0, 6 * G, E820_RAM), (0x100000, 0x100000, E820_RAM), (8 * G, G, E820_RAM))
        assert t.end_of_low_ram_pfn() == 0x100000
        assert t.end_of_ram_pfn(1 << 34) == 9 * G >> 12

    def test_end_pfn_skips_entries_starting_at_or_above_limit(self):
        t = T((0, 0x7FF00000, E820_RAM), (4 * G, 4 * G, E820_RAM))
        assert t.end_of_low_ram_pfn() == 0x7FF00
        # 32-bit non-PAE: MAX_ARCH_PFN 1 << 20 hides RAM above 4 GiB
        assert t.end_of_ram_pfn(1 << 20) == 0x7FF00

    def test_end_pfn_limit_and_cap(self):
        t = T((0, 0x10000000, E820_RAM))
        assert t.end_pfn(0x8000, E820_RAM) == 0x8000
        assert t.end_pfn(1 << 30, E820_RAM, max_arch_pfn=0x4000) == 0x4000
        assert t.end_pfn(1 << 30, E820_RAM) == 0x10000

    def test_end_pfn_table_order_matters_only_via_stop(self):
        t = T((4 * G, G, E820_RAM), (0, 2 * G, E820_RAM))
        assert t.end_of_low_ram_pfn() == 0x80000
        t2 = T((0, 5 * G, E820_RAM), (0, G, E820_ACPI))
        assert t2.end_of_low_ram_pfn() == 0x100000
        assert t2.end_pfn(1 << 20, E820_ACPI) == G >> 12

    def test_end_pfn_no_ram(self):
        assert T((0, 0x1000, E820_RESERVED)).end_of_ram_pfn(1 << 34) == 0

    def test_max_arch_pfn_for(self):
        assert E.max_arch_pfn_for("x86_64") == 0x400000000
        assert E.max_arch_pfn_for("x86_64", la57=True) == 1 << 40
        assert E.max_arch_pfn_for("i686", pae=True) == 0x1000000
        assert E.max_arch_pfn_for("i686", pae=False) == 0x100000

    def test_mapped_any(self):
        t = T((0, 0x9F000, E820_RAM), (0x100000, 0x100000, E820_RAM), (0x200000, 0x1000, E820_ACPI))
        assert t.mapped_any(0x9E000, 0xA0000, E820_RAM)
        assert not t.mapped_any(0x9F000, 0x100000, E820_RAM)          # touching is not intersecting
        assert not t.mapped_any(0x9F000, 0x100000, None)
        assert t.mapped_any(0x1FF000, 0x201000, [E820_ACPI])
        assert not t.mapped_any(0x200000, 0x201000, (E820_RAM, E820_RESERVED_KERN))
        assert t.mapped_any(0x200000, 0x201000, 0)                    # type 0: any type
        assert t.mapped_any(0x200000, 0x201000, None)

    def test_mapped_any_zero_size_quirk(self):
        # like the kernel, a zero-size entry strictly inside the range counts
        t = T((0x5000, 0, E820_RAM))
        assert t.mapped_any(0x4000, 0x6000, E820_RAM)
        assert not t.mapped_any(0x5000, 0x6000, E820_RAM)

    def test_mapped_all(self):
        t = T((0, 0x1000, E820_RAM), (0x1000, 0x1000, E820_RAM), (0x3000, 0x1000, E820_RAM))
        assert t.mapped_all(0, 0x2000, E820_RAM)
        assert not t.mapped_all(0, 0x4000, E820_RAM)

    def test_ram_ranges(self):
        t = T((0x100000, 0x100000, E820_RAM), (0, 0x9F000, E820_RAM), (0x200000, 0x1000, E820_RESERVED_KERN),
              (0x201000, 0x1000, E820_RAM), (0x300000, 0x1000, E820_ACPI), (0x400000, 0, E820_RAM),
              (0x180000, 0x10000, E820_RAM))
        s, e = t.ram_ranges()
        assert s.dtype == np.uint64 and e.dtype == np.uint64
        assert s.tolist() == [0, 0x100000]
        assert e.tolist() == [0x9F000, 0x202000]

    def test_ram_ranges_empty(self):
        s, e = T((0, 0x1000, E820_RESERVED)).ram_ranges()
        assert len(s) == 0 and len(e) == 0 and s.dtype == np.uint64

    def test_ram_ranges_agree_with_mapped_any(self):
        rng = random.Random(7)
        t = E820Table([(rng.randint(0, 60) * K, rng.randint(1, 8) * K,
                        rng.choice([E820_RAM, E820_RESERVED, E820_RESERVED_KERN, E820_ACPI]))
                       for _ in range(15)])
        s, e = t.ram_ranges()
        for a in range(0, 70):
            for b in range(a + 1, min(a + 6, 71)):
                lo, hi = a * K, b * K
                want = t.mapped_any(lo, hi, E820_RAM) or t.mapped_any(lo, hi, E820_RESERVED_KERN)
                got = bool(np.any((s < hi) & (e > lo)))
                assert got == want, (hex(lo), hex(hi))


# ---------------------------------------------------------------------------
# output formats
# ---------------------------------------------------------------------------
class TestFormats:
    def test_print_lines_new(self):
        t = T((0, 0x9FC00, E820_RAM), (0x9FC00, 0x400, E820_RESERVED), (0x7FFE0000, 0x20000, E820_ACPI),
              (0x7FFF0000, 0x10000, E820_NVS), (0x100000000, 0x40000000, E820_RAM), (0x200000000, 0x1000, 20))
        assert t.print_lines() == [
            "BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable",
            "BIOS-e820: [mem 0x000000000009fc00-0x000000000009ffff] reserved",
            "BIOS-e820: [mem 0x000000007ffe0000-0x000000007fffffff] ACPI data",
            "BIOS-e820: [mem 0x000000007fff0000-0x000000007fffffff] ACPI NVS",
            "BIOS-e820: [mem 0x0000000100000000-0x000000013fffffff] usable",
            "BIOS-e820: [mem 0x0000000200000000-0x0000000200000fff] type 20",
        ]

    def test_print_lines_old_format(self):
        t = T((0, 0x9F400, E820_RAM), (0xF0000, 0x10000, E820_RESERVED), (0x7BEE0000, 0x3000, E820_NVS),
              (0x7BEE3000, 0xD000, E820_ACPI), (0x80000000, 0x1000, 20))
        assert t.print_lines(version=(3, 2, 0)) == [
            " BIOS-e820: 0000000000000000 - 000000000009f400 (usable)",
            " BIOS-e820: 00000000000f0000 - 0000000000100000 (reserved)",
            " BIOS-e820: 000000007bee0000 - 000000007bee3000 (ACPI NVS)",
            " BIOS-e820: 000000007bee3000 - 000000007bef0000 (ACPI data)",
            " BIOS-e820: 0000000080000000 - 0000000080001000 type 20",
        ]

    def test_print_lines_who(self):
        assert T((0, 0x1000, E820_RAM)).print_lines("user") == ["user: [mem 0x0000000000000000-0x0000000000000fff] usable"]

    def test_type_names_by_version(self):
        assert E.type_name(E820_RESERVED_KERN) == "usable"
        assert E.type_name(E820_PRAM, (3, 13, 0)) == "type 12"
        assert E.type_name(E820_PRAM, (4, 1, 0)) == "persistent (type 12)"
        assert E.type_name(E820_PMEM, (4, 3, 0)) == "persistent (type 7)"
        assert E.type_name(E820_SOFT_RESERVED, (5, 10, 0)) == "soft reserved"
        assert E.type_name(E820_SOFT_RESERVED, (4, 19, 0)) == "type 4026531839"
        assert E.type_name(E820_UNUSABLE, (3, 0, 0)) == "(unusable)"

    def test_type_from_name(self):
        assert I.type_from_name("usable") == E820_RAM
        assert I.type_from_name("(ACPI NVS)") == E820_NVS
        assert I.type_from_name("ACPI  data") == E820_ACPI
        assert I.type_from_name("persistent (type 12)") == 12
        assert I.type_from_name("type 20") == 20
        assert I.type_from_name("soft reserved") == E820_SOFT_RESERVED
        assert I.type_from_name("System RAM") == E820_RAM
        assert I.type_from_name("E820_TYPE_PMEM") == E820_PMEM
        assert I.type_from_name("reserved_kern") == E820_RESERVED_KERN
        assert I.type_from_name("0xefffffff") == E820_SOFT_RESERVED
        with pytest.raises(ValueError):
            I.type_from_name("banana")

    def test_edit_and_last_pfn_lines(self):
        assert E.format_update_line(0, 0x1000, E820_RAM, E820_RESERVED, (3, 13, 0)) == \
            "e820: update [mem 0x00000000-0x00000fff] usable ==> reserved"
        assert E.format_update_line(0, 0x10000, E820_RAM, E820_RESERVED, (3, 2, 0)) == \
            "e820 update range: 0000000000000000 - 0000000000010000 (usable) ==> (reserved)"
        assert E.format_remove_line(0xA0000, 0x60000, E820_RAM, True, (4, 1, 0)) == \
            "e820: remove [mem 0x000a0000-0x000fffff] usable"
        assert E.format_remove_line(G, U64_MAX - G, E820_RAM, True, (3, 9, 0)) == \
            "e820: remove [mem 0x40000000-0xfffffffffffffffe] usable"
        assert E.format_remove_line(0xA0000, 0x60000, 0, False) == "e820: remove [mem 0x000a0000-0x000fffff]"
        assert E.format_last_pfn_line(0x240000, 0x400000000, (4, 1, 0)) == \
            "e820: last_pfn = 0x240000 max_arch_pfn = 0x400000000"
        assert E.format_last_pfn_line(0x7bee0, 0x400000000, (3, 2, 0)) == \
            "last_pfn = 0x7bee0 max_arch_pfn = 0x400000000"

    def test_json_round_trip(self):
        t = I.EMBEDDED_DEFAULT
        j = t.to_json()
        assert all(set(d) == {"addr", "size", "type"} and all(isinstance(v, int) for v in d.values()) for d in j)
        assert I.parse_e820_json(json.dumps(j), "x.json") == t

    def test_repr_and_copy(self):
        t = T((0, 0x1000, E820_RAM))
        c = t.copy()
        c.add_region(0x1000, 0x1000, E820_RAM)
        assert len(t) == 1 and len(c) == 2 and "E820Table" in repr(t)
        assert E820Entry(0x1000, 0x1000, 1).end == 0x2000 and E820Entry(0x1000, 0x1000, 1).last == 0x1fff


# ---------------------------------------------------------------------------
# parsers
# ---------------------------------------------------------------------------
NEW_LOG = """\
[    0.000000] Linux version 4.1.0-foo (x@y) (gcc version 4.9.2) #1 SMP
[    0.000000] e820: BIOS-provided physical RAM map:
[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable
[    0.000000] BIOS-e820: [mem 0x000000000009fc00-0x000000000009ffff] reserved
[    0.000000] BIOS-e820: [mem 0x0000000000100000-0x00000000bffdffff] usable
[    0.000000] BIOS-e820: [mem 0x00000000bffe0000-0x00000000bfffffff] reserved
[    0.000000] BIOS-e820: [mem 0x0000000100000000-0x000000013fffffff] usable
[    0.000000] NX (Execute Disable) protection: active
[    0.000000] e820: [mem 0xc0000000-0xfeffbfff] available for PCI devices
"""
NEW_WANT = [(0, 0x9FC00, 1), (0x9FC00, 0x400, 2), (0x100000, 0xBFEE0000, 1), (0xBFFE0000, 0x20000, 2),
            (0x100000000, 0x40000000, 1)]


class TestParsers:
    def test_text_new_format_log(self):
        assert tuples(I.parse_e820_text(NEW_LOG, "x.log")) == NEW_WANT

    def test_text_old_format_with_syslog_prefix(self):
        text = (
            "Feb 18 23:12:18 ubuntu kernel: [    0.000000] BIOS-provided physical RAM map:\n"
            "Feb 18 23:12:18 ubuntu kernel: [    0.000000]  BIOS-e820: 0000000000000000 - 000000000009f400 (usable)\n"
            "Feb 18 23:12:18 ubuntu rsyslogd: [origin software=\"rsyslogd\"] start\n"
            "Feb 18 23:12:18 ubuntu kernel: [    0.000000]  BIOS-e820: 0000000000100000 - 000000007bee0000 (usable)\n"
            "Feb 18 23:12:18 ubuntu kernel: [    0.000000]  BIOS-e820: 000000007bee0000 - 000000007bee3000 (ACPI NVS)\n"
        )
        assert tuples(I.parse_e820_text(text, "syslog")) == [(0, 0x9F400, 1), (0x100000, 0x7BDE0000, 1),
                                                             (0x7BEE0000, 0x3000, 4)]

    def test_text_plain_file_both_formats_tabs_comments(self):
        text = ("# my map\n"
                "e820: BIOS-provided physical RAM map:\n"
                "\tBIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable\n"
                "   BIOS-e820: 0000000000100000 - 0000000040000000 (usable)\n"
                "\n"
                "BIOS-e820: [mem 0x00000000fec00000-0x00000000fec00fff] type 20   \n")
        assert tuples(I.parse_e820_text(text, "map.txt")) == [(0, 0x9FC00, 1), (0x100000, 0x3FF00000, 1),
                                                             (0xFEC00000, 0x1000, 20)]

    def test_text_xen_lines(self):
        text = ("[    0.000000] Xen: [mem 0x0000000000000000-0x000000000009ffff] usable\n"
                "[    0.000000] Xen: [mem 0x00000000000a0000-0x00000000000fffff] reserved\n"
                "[    0.000000] Xen: using vcpuop timer interface\n")
        assert tuples(I.parse_e820_text(text)) == [(0, 0xA0000, 1), (0xA0000, 0x60000, 2)]
        old = "Xen: 0000000000000000 - 000000000009ec00 (usable)\nXen: 0000000000100000 - 0000000040000000 (usable)\n"
        assert tuples(I.parse_e820_text(old)) == [(0, 0x9EC00, 1), (0x100000, 0x3FF00000, 1)]

    def test_text_ignores_user_lines_in_log(self):
        text = NEW_LOG + "[    0.000000] user: [mem 0x0000000000000000-0x000000000009fbff] usable\n"
        assert tuples(I.parse_e820_text(text)) == NEW_WANT
        assert tuples(I.parse_e820_text(text, who=("user",))) == [(0, 0x9FC00, 1)]

    def test_text_quoted_printable_log(self):
        text = ("[    0.000000] Linux version 3.10.0 (kbuild@xian) (gcc v=\nersion 4.8.1)\n"
                "[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable\n"
                "[    0.000000] BIOS-e820: [mem 0x000000000009fc00-0x000000000009ffff] reser=\nved\n"
                "[    0.000000] e820: last_pfn =3D 0xfffe max_arch_pfn =3D 0x100000\n")
        assert tuples(I.parse_e820_text(text)) == [(0, 0x9FC00, 1), (0x9FC00, 0x400, 2)]

    def test_text_strict_rejects_unparseable_line(self):
        text = "BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable\nhello world\n"
        with pytest.raises(E820Error, match=r"^map\.txt: line 2: unparseable e820 line: hello world$"):
            I.parse_e820_text(text, "map.txt")

    def test_text_damaged_bios_line_in_log(self):
        text = NEW_LOG + "[    0.000000] BIOS-e820: [mem 0x0000000140000000-0x000000014fff\n"
        with pytest.raises(E820Error, match=r"x\.log: line 10: unparseable BIOS-e820 line"):
            I.parse_e820_text(text, "x.log")

    def test_text_inverted_range(self):
        with pytest.raises(E820Error, match=r"m: line 1: inverted range"):
            I.parse_e820_text("BIOS-e820: [mem 0x0000000000002000-0x0000000000000fff] usable\n", "m")
        with pytest.raises(E820Error, match=r"m: line 1: inverted range"):
            I.parse_e820_text("BIOS-e820: 0000000000002000 - 0000000000001000 (usable)\n", "m")

    def test_text_zero_size(self):
        with pytest.raises(E820Error, match=r"m: line 1: zero size"):
            I.parse_e820_text("BIOS-e820: [mem 0x0000000000002000-0x0000000000001fff] usable\n", "m")
        with pytest.raises(E820Error, match=r"m: line 1: zero size"):
            I.parse_e820_text("BIOS-e820: 0000000000002000 - 0000000000002000 (usable)\n", "m")

    def test_text_unknown_type(self):
        with pytest.raises(E820Error, match=r"m: line 1: unknown e820 type 'bananas'"):
            I.parse_e820_text("BIOS-e820: [mem 0x0000000000000000-0x0000000000000fff] bananas\n", "m")

    def test_text_beyond_phys_limit(self):
        line = "BIOS-e820: [mem 0x0010000000000000-0x0010000000000fff] usable\n"
        with pytest.raises(E820Error, match=r"m: line 1: range .* beyond the 52-bit physical address limit"):
            I.parse_e820_text(line, "m")
        with pytest.raises(E820Error, match=r"46-bit"):
            I.parse_e820_text("BIOS-e820: [mem 0x0000400000000000-0x0000400000000fff] usable\n", "m",
                              max_phys_bits=46)

    def test_text_no_entries(self):
        with pytest.raises(E820Error, match=r"^x\.log: no e820 entries"):
            I.parse_e820_text("[    0.000000] Linux version 4.1.0\n[    0.000000] hello\n", "x.log")
        with pytest.raises(E820Error, match=r"^empty: no e820 entries"):
            I.parse_e820_text("", "empty")

    def test_parse_e820_line(self):
        assert I.parse_e820_line(" [mem 0x00000000-0x000fffff] page 4k") is None
        assert I.parse_e820_line("e820: [mem 0xc0000000-0xfeffbfff] available for PCI devices") is None
        assert I.parse_e820_line(" 0000000000 - 0000200000 page 4k") is None
        assert I.parse_e820_line("modified: 0000000000000000 - 0000000000010000 (reserved)") == \
            ("modified", 0, 0x10000, 2)

    def test_json_hex_strings_and_names(self):
        text = json.dumps([
            {"addr": "0x0", "size": "0x9fc00", "type": "usable"},
            {"addr": 654336, "size": 1024, "type": 2},
            {"addr": "0x100000", "size": "1072693248", "type": "ACPI NVS"},
            {"addr": "0x100000000", "size": "0x40000000", "type": "E820_RAM"},
            {"addr": "0x140000000", "size": "0x1000", "type": "persistent (type 12)"},
        ])
        assert tuples(I.parse_e820_json(text, "e820.json")) == [
            (0, 0x9FC00, 1), (0x9FC00, 0x400, 2), (0x100000, 0x3FF00000, 4), (0x100000000, 0x40000000, 1),
            (0x140000000, 0x1000, 12)]

    def test_json_object_with_e820_key(self):
        assert len(I.parse_e820_json('{"e820": [{"addr": 0, "size": 4096, "type": 1}]}')) == 1

    @pytest.mark.parametrize("doc,msg", [
        ('[{"addr": 0, "size": 4096, "type": 1}, {"addr": 8192, "size": 0, "type": 1}]',
         r"^e820\.json: entry 1: zero size$"),
        ('[{"addr": 0, "size": 4096}]', r"^e820\.json: entry 0: missing type$"),
        ('[{"addr": "0xzz", "size": 4096, "type": 1}]', r"^e820\.json: entry 0: addr '0xzz' is not a number$"),
        ('[{"addr": 0, "size": 4096, "type": "bananas"}]', r"^e820\.json: entry 0: unknown e820 type 'bananas'$"),
        ('[{"addr": 0, "size": true, "type": 1}]', r"^e820\.json: entry 0: size is a boolean$"),
        ('[{"addr": -4096, "size": 4096, "type": 1}]', r"^e820\.json: entry 0: negative address$"),
        ('[{"addr": "0x10000000000000", "size": 4096, "type": 1}]', r"^e820\.json: entry 0: range .* beyond"),
        ('[]', r"^e820\.json: no e820 entries$"),
        ('{"a": 1}', r"^e820\.json: expected a JSON list"),
        ('[1, 2]', r"^e820\.json: entry 0: expected an object"),
        ('[{"addr": 0,', r"^e820\.json: invalid JSON"),
    ])
    def test_json_errors(self, doc, msg):
        with pytest.raises(E820Error, match=msg):
            I.parse_e820_json(doc, "e820.json")

    def test_errors_are_one_line_value_errors(self):
        with pytest.raises(ValueError) as ei:
            I.parse_e820_json("[]", "e820.json")
        assert "\n" not in str(ei.value)

    def _memmap(self, root: Path, entries):
        for i, (start, end, typ) in entries:
            d = root / str(i)
            d.mkdir(parents=True)
            (d / "start").write_text("0x%x\n" % start)
            (d / "end").write_text("0x%x\n" % end)
            (d / "type").write_text(typ + "\n")

    def test_sysfs_memmap(self, tmp_path):
        self._memmap(tmp_path, [
            (0, (0, 0x9FBFF, "System RAM")),
            (1, (0x9FC00, 0x9FFFF, "Reserved")),
            (2, (0x100000, 0xBFFDFFFF, "System RAM")),
            (3, (0xBFFE0000, 0xBFFEFFFF, "ACPI Tables")),
            (4, (0xBFFF0000, 0xBFFFFFFF, "ACPI Non-volatile Storage")),
            (5, (0xC0000000, 0xC0000FFF, "Unusable memory")),
            (6, (0xC0001000, 0xC0001FFF, "Persistent Memory (legacy)")),
            (7, (0xC0002000, 0xC0002FFF, "Persistent Memory")),
            (8, (0xC0003000, 0xC0003FFF, "Soft Reserved")),
            (9, (0xC0004000, 0xC0004FFF, "reserved")),
            (10, (0x100000000, 0x13FFFFFFF, "System RAM")),
        ])
        (tmp_path / "README").write_text("not an entry")
        t = I.parse_sysfs_memmap(tmp_path)
        assert [e.type for e in t] == [1, 2, 1, 3, 4, 5, 12, 7, E820_SOFT_RESERVED, 2, 1]
        assert t[0] == E820Entry(0, 0x9FC00, 1)
        assert t[10] == E820Entry(0x100000000, 0x40000000, 1)   # numeric, not lexical, order
        assert I.load_e820(tmp_path) == t

    def test_sysfs_memmap_errors(self, tmp_path):
        with pytest.raises(E820Error, match="not a directory"):
            I.parse_sysfs_memmap(tmp_path / "nope")
        with pytest.raises(E820Error, match="no memmap entries"):
            I.parse_sysfs_memmap(tmp_path)
        self._memmap(tmp_path, [(0, (0, 0xFFF, "Bananas"))])
        with pytest.raises(E820Error, match=r": 0: unknown memmap type 'Bananas'"):
            I.parse_sysfs_memmap(tmp_path)

    def test_load_e820_dispatch(self, tmp_path):
        j = tmp_path / "e820.json"
        j.write_text(json.dumps([{"addr": 0, "size": 4096, "type": "usable"}], indent=2))
        assert tuples(I.load_e820(j)) == [(0, 4096, 1)]
        lg = tmp_path / "boot.log"
        lg.write_text(NEW_LOG)
        assert tuples(I.load_e820(lg)) == NEW_WANT   # starts with "[", but is a log
        b = tmp_path / "bin"
        b.write_bytes(b"\x7fELF\x00\x01\x02")
        with pytest.raises(E820Error, match=r"^%s: binary data" % re.escape(str(b))):   # the full path
            I.load_e820(b)
        with pytest.raises(E820Error, match=r"cannot read"):
            I.load_e820(tmp_path / "missing.json")


# ---------------------------------------------------------------------------
# default map
# ---------------------------------------------------------------------------
class TestEmbeddedDefault:
    def test_shape(self):
        t = E820Table(I.EMBEDDED_DEFAULT)
        assert t.sanitize() == t                         # already sorted, merged, non-overlapping
        assert t[0] == E820Entry(0, 0x9D000, E820_RAM)
        assert E820Entry(0xE0000000, 0x10000000, E820_RESERVED) in t.entries
        assert t[-1].type == E820_RAM and t[-1].addr == 4 * G
        assert t[-1].end == 0x46F000000 and t[-1].end % G != 0
        ram = t.total()
        assert 15 * G + G // 2 < ram <= 16 * G
        low_ram = [e for e in t if e.type == E820_RAM and e.end <= 4 * G]
        assert 0x80000000 <= max(e.end for e in low_ram) < 0x90000000
        islands = [e for e in t if e.type in (E820_ACPI, E820_NVS) and e.addr > M]
        assert islands and all(e.addr % K == 0 for e in islands)
        assert any(e.addr % (2 * M) for e in islands)
        for a in (0xFEC00000, 0xFEE00000, 0xFF000000):
            assert t.mapped_any(a, a + 1, E820_RESERVED)

    def test_pfns(self):
        t = E820Table(I.EMBEDDED_DEFAULT)
        assert t.end_of_ram_pfn(1 << 34) == 0x46F000
        assert t.end_of_low_ram_pfn() == 0x85D00


def test_a_user_map_the_kernel_cannot_sanitise_is_its_early_panic():
    """e820__finish_early_params: memmap=/mem= make the map user-defined, and one that
    e820__update_table refuses (fewer than two entries) is early_panic("Invalid user supplied
    memory map") -- seen on Debian 5.10, 6.1 and 6.12 booted with one memmap=exactmap entry.
    Without mem=/memmap= a one-entry firmware map is kept as it is."""
    import pytest
    from emu import BootParams, emulate
    from emu.inputs.e820 import E820Map
    from emu.kernel.validate import SetupError
    two = E820Map([(0, 0x9FC00, 1), (0x100000, 1 << 30, 1)])
    one = E820Map([(0x100000, 1 << 30, 1)])
    for e820, p in ((two, BootParams(memmap=["exactmap", "1023M@1M"])), (one, BootParams(mem_limit=512 << 20))):
        with pytest.raises(SetupError, match="Invalid user supplied memory map"):
            emulate(e820, "6.1", p)
        with pytest.raises(SetupError, match="Invalid user supplied memory map"):
            emulate(e820, "3.13", p)
    assert emulate(two, "6.1", BootParams(memmap=["exactmap", "639K@0", "1023M@1M"])).verify.ok
    assert emulate(one, "6.1", BootParams()).panic is None
