"""Map generators (emu.tools.generators), the fuzzer and its shrinker (emu.tools.fuzz), and the
minimal maps the fuzzer found, kept as regression tests (docs/findings.md)."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, assume, given, settings

from emu import emulate
from emu.tools.cli import main
from emu.tools.fuzz import fuzz, run_case, shrink
from emu.kernel.profiles import PROFILES
from emu.tools.generators import ADVERSARIAL, FAMILIES, REALISTIC, Case, case_for, cases, kernel_in_ram

M, G = 1 << 20, 1 << 30
MERGED = ["3.10", "3.13", "3.19", "4.4", "4.8", "4.17", "4.19", "4.20", "5.8", "5.11", "5.12", "5.15", "6.1", "6.6"]


def test_generator_is_reproducible_and_covers_every_family():
    assert case_for(3, 17) == case_for(3, 17)
    assert case_for(3, 17) != case_for(3, 18)
    seen = set()
    for i in range(400):
        c = case_for(11, i)
        seen.add(c.family)
        assert c.e820 and all(s > 0 and a >= 0 for a, s, t in c.e820)
        assert Case.from_json(json.loads(json.dumps(c.to_json()))) == c
    assert seen == set(FAMILIES) == set(REALISTIC + ADVERSARIAL)


def test_families_reach_their_extremes():
    rams = [case_for(5, i, family="server", max_ram=8 << 40).ram() for i in range(60)]
    assert max(rams) > 1 << 40                       # servers up to many TiB
    tiny = [case_for(5, i, family="tiny").ram() for i in range(40)]
    assert max(tiny) <= 300 * M
    efi = [len(case_for(5, i, family="efi").e820) for i in range(40)]
    assert max(efi) > 40                             # many small fragments


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(cases(max_ram=16 * G))
def test_property_merged_kernel_builds_correct_tables(case):
    """The hypothesis strategy users get: every map the merged 6.1 boots is correct."""
    assume(kernel_in_ram(case))
    r = emulate(case.table(), "6.1", case.boot_params(), max_memory=1 << 30)
    assert r.panic or r.verify.ok, r.verify.violations


def test_fuzz_finds_nothing_on_merged_profile_and_resumes(tmp_path, capsys):
    out = tmp_path / "f"
    s = fuzz("6.1", str(out), count=120, progress=False)
    assert s.maps == 120 and not s.findings, s.findings
    assert json.loads((out / "state.json").read_text())["next_index"] == 120
    assert main(["fuzz", "--profile", "6.1", "--count", "30", "--out", str(out)]) == 0
    assert json.loads((out / "state.json").read_text())["next_index"] == 150
    assert "fuzz 6.1: 30 maps" in capsys.readouterr().out


def test_shrinker_reduces_a_laptop_map_to_the_known_minimum():
    """3.9 merged adjust_range_page_size_mask after merging the ranges: with 2 GiB of
    RAM the last window loses [0x7c000000, 2G) (the fix moved the call, 3.10)."""
    big = Case([(0, 0x9F000, 1), (0x9F000, 0x1000, 2), (0xE0000, 0x20000, 2), (0x100000, 0x7FF00000, 1),
                (0xFEC00000, 0x1000, 2), (0xFEE00000, 0x1000, 2), (0xFFC00000, 0x400000, 2)],
               initrd=(0x70000000, 0x72000000))
    out = run_case(big, "3.9")
    assert out.signature == "check:acct.directmap,map.missing"
    small, tries = shrink(big, "3.9", out.signature, budget=600)
    assert len(small.e820) <= 2 and small.initrd is None and tries < 600
    assert run_case(small, "3.9").signature == out.signature


# ---------------------------------------------------------------------------
# regressions: the minimal maps of docs/findings.md
# ---------------------------------------------------------------------------
FINDINGS = [
    # (name, profile that fails, case, signature)
    ("mem2G-merge-before-adjust", ["seed", "3.9"],
     Case([(0, 0x80000000, 1)]), "check:acct.directmap,map.missing"),
    ("static-ident-leaf-over-partial-page", ["seed"],
     Case([(0, 0x10000400, 1)]), "check:map.hole"),
    ("brk-budget-4k-above-512G", ["3.9"],
     Case([(0, 0x4000000, 1), (0x8000000000, 0x200000, 1)], debug_pagealloc=True),
     "panic:Kernel panic - not syncing: alloc_low_page: ran out of memory"),
    ("old-step-rule-outgrows-mapped-memory", ["seed", "3.9", "3.10", "3.13"],
     Case([(0, 0xF0000000, 1)], debug_pagealloc=True, initrd=(0xEC100000, 0xEFE00000)),
     # the same failure; 3.13's panic text names alloc_low_pages (the function was renamed in the text)
     {"3.13": "panic:Kernel panic - not syncing: alloc_low_pages: can not alloc memory",
      None: "panic:Kernel panic - not syncing: alloc_low_page: can not alloc memory"}),
    ("unaligned-real-end-starves-allocator", ["seed"],
     Case([(0, 0x40000000, 1), (0x3FE01000, 0xFFC01FF000, 2)], debug_pagealloc=True),
     "panic:Kernel panic - not syncing: alloc_low_page: can not alloc memory"),
]


@pytest.mark.parametrize("name,bad,case,sig", FINDINGS, ids=[f[0] for f in FINDINGS])
def test_finding_fails_where_found(name, bad, case, sig):
    for p in bad:
        if p not in PROFILES:
            pytest.skip(f"profile {p} not available")
        want = sig.get(p, sig[None]) if isinstance(sig, dict) else sig
        assert run_case(case, p, reference=None).signature == want


@pytest.mark.parametrize("name,bad,case,sig", FINDINGS, ids=[f[0] for f in FINDINGS])
def test_finding_is_fixed_in_merged_kernels(name, bad, case, sig):
    for p in MERGED:
        if p in bad:
            continue
        out = run_case(case, p, reference=None)
        assert out.kind == "ok", (p, out)
