"""Real Debian kernels, offline: cases saved by ``emu oracle run --save`` (the guest's
console log with memblock=debug, the excerpts of the kernel's .config and System.map the
derivation reads, the real kernel's tree under CR3 when init_mem_mapping returned) are
replayed through the artefact path -- describe, then the emulation of ``emu run`` -- and
must equal the real kernel's tree entry for entry, with no assumption.  No QEMU needed."""
from __future__ import annotations

import copy
import gzip
import json
import os
import re

import pytest

from emu.boot.emulate import run
from emu.boot.record import DescribeError
from emu.tools.oracle.compare import (
    compare,
    describe_artefacts,
    emulate_artefacts,
    guest_artefacts,
    user_cpu,
)
from emu.tools.oracle.saved import excerpts, load_case
from emu.tools.oracle.tables import emu_tree

DATA = os.path.join(os.path.dirname(__file__), "data", "oracle")
CASES = sorted(d for d in os.listdir(DATA) if os.path.isfile(os.path.join(DATA, d, "case.json"))) \
    if os.path.isdir(DATA) else []
#: the profile each case's log resolves to (its Debian kernel's upstream stable base)
PROFILES = {"5.10": "5.10.", "6.1": "6.1.", "6.12": "6.12."}
#: ACCESSED | DIRTY: set by the MMU (QEMU) on use, never by init_mem_mapping
HW_BITS = 0x60


def test_the_cases_are_there_and_small():
    assert len(CASES) >= 3, CASES
    total = sum(os.path.getsize(os.path.join(DATA, c, f)) for c in CASES for f in os.listdir(os.path.join(DATA, c)))
    assert total < 1 << 20, total


@pytest.fixture(params=CASES)
def case(request):
    return request.param, load_case(os.path.join(DATA, request.param))


def test_artefacts_give_the_real_tree_with_no_assumption(case):
    name, g = case
    c = compare(g)   # the default: artefact inputs, the log's version
    assert c.inputs == "artefacts"
    assert c.identical, (name, c.differences[:5])
    assert c.assumptions == [], [a["text"] for a in c.assumptions]
    assert c.profile.startswith(PROFILES[name.split("-")[0]]), c.profile
    # nothing came from the guest's state: every input has an artefact as its source
    assert any("serial log" in s for s in c.sources.values())
    assert any(s.startswith(c.artefacts["config"]) or c.artefacts["config"] in s for s in c.sources.values())


def test_the_listing_equals_the_real_kernels_entry_for_entry(case):
    name, g = case
    r = emulate_artefacts(guest_artefacts(g))
    assert r.panic is None and r.assumptions == []
    t = emu_tree(r.kernel, g.tree.slots, pse=g.tree.mmu.pse)
    assert len(g.tree.entries) > 100
    assert set(t.entries) == set(g.tree.entries) and set(t.tables) == set(g.tree.tables)
    hw = 0
    for key, real in g.tree.entries.items():
        mine = t.entries[key]
        if real != mine and g.arch == "i386" and not (real ^ mine) & ~HW_BITS and real & (real ^ mine):
            hw += 1   # ACCESSED/DIRTY the MMU set on entries init_mem_mapping left alone (i386 only)
            continue
        assert real == mine, (hex(key[1]), hex(real), hex(mine))
    assert hw == 0 or g.arch == "i386"
    if g.arch != "i386":
        assert t.leaves() == g.tree.leaves()
    # the kernel's own counters too
    assert list(r.kernel.direct_pages_count[1:4]) == list(g.direct_pages_count[1:4])
    assert r.kernel.max_pfn_mapped == g.max_pfn_mapped and r.kernel.pgt_buf_end == g.pgt_buf_end


def test_a_changed_real_entry_is_a_difference(case):
    name, g = case
    key = max(k for k, v in g.tree.entries.items() if v & 1)
    g.tree.entries[key] ^= 1 << 1   # RW
    c = compare(g)
    assert not c.identical
    assert [(d["kind"] in ("leaf", "entry"), d["va"]) for d in c.differences] == [(True, hex(key[1]))]


def _with_log(g, fn):
    g = copy.copy(g)
    g.serial = fn(g.serial)
    return g


def test_a_perturbed_input_differs_or_is_said(case):
    """Take one input away or change it: the tables differ, or the missing input is said."""
    name, g = case
    # 1. the CPU as described: another vendor/feature set changes GLOBAL/NX or the page sizes
    # (a description the log contradicts -- it printed 2M pieces -- is an error)
    g1 = copy.copy(g)
    g1.cpu = g.cpu + ",-pse"
    try:
        assert not describe_artefacts(guest_artefacts(g1)).params.cpu.pse
    except DescribeError as e:
        assert "--cpu" in str(e)
    g1.cpu = g.cpu + ",-pge"   # nothing in the log shows PGE: the GLOBAL bits differ (unless PTI drops them)
    c1 = compare(g1)
    if c1.params["pti"]:
        assert c1.identical
    else:
        assert not c1.identical and any(d["kind"] == "leaf" for d in c1.differences)
    # 2. no reserve_brk line (6.1+ prints no BRK lines; memblock=debug's line places the buffer)
    g2 = _with_log(g, lambda s: "\n".join(ln for ln in s.splitlines()
                                          if not re.search(r"memblock_reserve: \[[^]]*\] setup_arch", ln)))
    c2 = compare(g2)
    assert any(a["field"] in ("brk_base", "brk_end") for a in c2.assumptions), c2.assumptions
    # 3. no .config: CONFIG_DEBUG_PAGEALLOC (and more) is said
    a = guest_artefacts(g)
    a.config = None
    d = describe_artefacts(a)
    assert "debug_pagealloc" in {x.field for x in d.assumptions}
    if len(g.e820) >= 128:
        # a long e820 table: its capacity (E820_MAX_ENTRIES) comes from the config; without it, said
        assert "e820_max_entries" in {x.field for x in run(d, check=False).assumptions}
        assert describe_artefacts(guest_artefacts(g)).params.e820_max_entries == 131
    # 4. no System.map: where the image's tables are is said (x86-64) or the i386 addresses are
    a = guest_artefacts(g)
    a.sysmap = None
    r = run(describe_artefacts(a), check=False)
    assert r.assumptions, "a missing System.map must be said"


def test_excerpts_are_stable(case):
    """The saved excerpts are what the derivation reads of them (saving again gives the same)."""
    name, g = case
    ctext, stext = excerpts(g)
    cdir = os.path.join(DATA, name)
    meta = json.load(open(os.path.join(cdir, "case.json")))
    assert ctext == open(os.path.join(cdir, meta["artefacts"]["config"])).read()
    assert stext == open(os.path.join(cdir, meta["artefacts"]["system_map"])).read()
    assert "memblock=debug" in meta["guest"]["cmdline"]
    with gzip.open(os.path.join(cdir, "serial.log.gz"), "rt") as f:
        assert "memblock_reserve: [" in f.read()


def test_the_oracle_document_is_valid(case):
    jsonschema = pytest.importorskip("jsonschema")
    from emu.tools.formats import dumps, validate
    from emu.tools.oracle.cli import comparison_row, oracle_document
    from emu.tools.oracle.qemu import QemuLayout
    name, g = case
    c = compare(g)
    row = comparison_row(c, QemuLayout(g.layout, cpu=g.cpu), {"release": name.split("-")[0]}, full=True)
    doc = json.loads(dumps(oracle_document("run", [row], [], "artefacts")))
    validate(doc)
    assert doc["schema"] == "emu.oracle/1" and doc["counts"]["identical"] == 1
    comp = doc["comparisons"][0]
    assert re.fullmatch(r"0x[0-9a-f]+", comp["guest"]["cr3"]) and comp["assumptions"] == []
    # perturbed: the differences are in the document, valid too, and 64-bit values are strings
    key = max(k for k, v in g.tree.entries.items() if v & 1)
    g.tree.entries[key] ^= 2
    c = compare(g)
    row = comparison_row(c, QemuLayout(g.layout, cpu=g.cpu), {}, full=True)
    doc = json.loads(dumps(oracle_document("run", [row], [], "artefacts")))
    validate(doc)
    assert not doc["identical"] and doc["comparisons"][0]["differences"][0]["va"] == hex(key[1])
    bad = copy.deepcopy(doc)
    bad["comparisons"][0]["differences"][0]["va"] = key[1]
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)


@pytest.mark.parametrize("qemu,text", [
    ("qemu64", "amd,pse,pge,nx"),
    ("qemu64,+pdpe1gb", "amd,pse,pge,gbpages,nx"),
    ("qemu64,vendor=GenuineIntel,+pdpe1gb", "intel,pse,pge,gbpages,nx"),
    ("qemu64,-pse", "amd,pge,nx"),
    ("qemu64,+pdpe1gb,+la57,phys-bits=52", "amd,pse,pge,gbpages,nx,la57"),
    ("qemu64,-pse,-pge,-nx", "amd,-pse,-pge,-gbpages,-nx,-la57"),
])
def test_user_cpu_is_the_qemu_model_as_a_user_writes_it(qemu, text):
    from emu.inputs.cpu import parse_cpu
    assert user_cpu(qemu) == text
    assert parse_cpu(text) == parse_cpu(",".join(w for w in qemu.split(",") if not w.startswith("phys-bits")))


def _fake_boots(monkeypatch):
    """The matrix's boots replaced by saved cases (earlier layouts take longer, so a pool
    finishes them out of matrix order); 128M has no saved boot and fails."""
    import time as _time
    from emu.tools.oracle import qemu
    from emu.tools.oracle.qemu import OracleError
    cases = {"512M": ("6.1-amd64-512M", 0.6), "6G-gb": ("5.10-amd64-6G-gb", 0.3),
             "6G-gb-pti": ("6.12-amd64-6G-gb-pti", 0.0)}

    def boot(lay, bz, syms, timeout=None, config=None):
        if lay.name not in cases:
            raise OracleError(f"no saved boot for {lay.name}")
        name, delay = cases[lay.name]
        _time.sleep(delay)
        return load_case(os.path.join(DATA, name))
    monkeypatch.setattr(qemu, "run_guest", boot)


def test_the_matrix_runs_on_workers_with_the_same_rows(monkeypatch):
    """``emu oracle matrix -j 2``: the layouts boot on a forked pool (one QEMU per worker; here
    the boot is the saved case of the layout) and the rows are those of a run one after the
    other, in matrix order, a failed boot included, whatever order they finish in."""
    from emu.tools.batches import open_runner
    from emu.tools.oracle.cli import run_matrix
    from emu.tools.oracle.layouts import matrix_layouts
    _fake_boots(monkeypatch)
    lays = [lay for lay in matrix_layouts() if lay.name in ("512M", "128M", "6G-gb", "6G-gb-pti")]
    assert [lay.name for lay in lays] == ["128M", "512M", "6G-gb", "6G-gb-pti"]

    def strip(rows):
        return [{k: v for k, v in r.items() if k not in ("boot_seconds", "emu_seconds")} for r in rows]
    seen = []
    one = run_matrix(lays, "bz", "syms", "auto", 60.0, extra={"release": "x"})
    with open_runner(2) as runner:
        two = run_matrix(lays, "bz", "syms", "auto", 60.0, extra={"release": "x"}, runner=runner,
                         progress=seen.append)
    assert strip(one) == strip(two)
    assert [r["layout"] for r in two] == [lay.name for lay in lays]
    assert [r["layout"] for r in seen] != [lay.name for lay in lays]      # they did finish out of order
    assert sorted(r["layout"] for r in seen) == sorted(lay.name for lay in lays)
    assert [r["identical"] for r in two] == [None, True, True, True]
    assert "no saved boot for 128M" in two[0]["error"]


def test_the_matrix_keeps_a_missing_kernel_in_its_place(monkeypatch, capsys):
    """A kernel that cannot be had is one error row where its release stands: printed in
    matrix order one after the other, and in the JSON rows with -j 2 too."""
    import json as _json
    from emu.tools.cli import main
    from emu.tools.oracle import cli
    from emu.tools.oracle.qemu import OracleError
    _fake_boots(monkeypatch)

    def kernel(args, release=None, flavour=None):
        if release == "5.10":
            raise OracleError("no 5.10 kernel here")
        return f"bz-{release}", None, None, f"label-{release}"
    monkeypatch.setattr(cli, "_kernel", kernel)
    argv = ["oracle", "matrix", "--release", "6.1,5.10,6.12", "--only", "512M,6G-gb"]
    assert main(argv) == 1
    lines = [ln.split()[:3] for ln in capsys.readouterr().out.splitlines()[1:6]]
    assert lines == [["6.1", "amd64", "512M"], ["6.1", "amd64", "6G-gb"], ["5.10", "amd64", "(all)"],
                     ["6.12", "amd64", "512M"], ["6.12", "amd64", "6G-gb"]]
    assert main(argv + ["-j", "2", "--json"]) == 1
    doc = _json.loads(capsys.readouterr().out)
    pytest.importorskip("jsonschema")
    from emu.tools.formats import validate
    validate(doc)                                  # error rows included
    assert [(r["release"], r["layout"]) for r in doc["comparisons"]] == [
        ("6.1", "512M"), ("6.1", "6G-gb"), ("5.10", "(all)"), ("6.12", "512M"), ("6.12", "6G-gb")]
    assert [r["identical"] for r in doc["comparisons"]] == [True, True, None, True, True]
    assert [k["kernel"] for k in doc["kernels"]] == [os.path.abspath("bz-6.1"), os.path.abspath("bz-6.12")]


F8_CASES = [c for c in CASES if c.endswith("-16G-movable-node-f8")]


@pytest.mark.parametrize("name", F8_CASES)
def test_f8_the_real_kernel_takes_a_page_before_it_is_mapped(name):
    """docs/findings.md F8 on real Debian kernels (5.10.262 carries 2dcb39645441 from 5.10.15):
    with movable_node, [0, 0x4a0000) reserved and no GB pages, the second bottom-up pass takes
    page 0x4a0000 for a page table before any call mapped it; the kernel reaches the end of
    init_mem_mapping (the early #PF handler maps __va on demand), and emu builds its tree entry
    for entry while its checker names the broken rule."""
    from emu.check import verify
    g = load_case(os.path.join(DATA, name))
    # (6.1+ names memblock's own allocator, after a memblock_phys_alloc_range line from alloc_low_pages)
    assert re.search(r"memblock_reserve: \[0x0+4a0000-0x0+4a0fff\] (alloc_low_pages|memblock_alloc_range_nid)",
                     g.serial), name
    r = emulate_artefacts(guest_artefacts(g))
    assert r.assumptions == [] and r.kernel.kernel_end == g.image_end   # __pa_symbol(_end), from the System.map
    assert compare(g).identical
    v = verify(r.kernel)
    assert [x.split(":")[0] for x in v.violations] == ["pt.unmapped-write"]
    assert "page-table page 0x4a0000" in v.violations[0]


def test_highmem_from_the_command_line():
    """An i686 boot with highmem=34M (a random oracle layout, 128 MiB of RAM): lowmem_pfn_init
    carves 34 MiB of highmem out of lowmem.  The option is read from the log's 'Kernel command
    line:' (i386 prints no early one); the derivation once dropped it, and emu mapped lowmem to
    128 MiB where the kernel stopped at 94 MiB."""
    g = load_case(os.path.join(DATA, "6.1-686-pae-128M-highmem34M"))
    assert "highmem=34M" in g.cmdline
    d = describe_artefacts(guest_artefacts(g))
    assert d.params.highmem == 34 << 20 and "highmem=" in d.sources["highmem"]
    c = compare(g)
    assert c.identical and c.assumptions == []
    assert g.max_low_pfn == (128 - 34) << 8


def test_highmem_below_maxmem_is_not_read_as_maxmem():
    """5.10 non-PAE, 700 MiB of RAM, highmem=165M: lowmem ends at 535 MiB, below MAXMEM.  The
    'N MB LOWMEM available' line gives MAXMEM only when highmem= did not carve lowmem; the
    derivation took 535 MiB for MAXMEM and mapped to 0x217fe000 where the kernel stopped at
    0x21700000.  Without the .config, MAXMEM is now the typical build's, and said."""
    g = load_case(os.path.join(DATA, "5.10-686-700M-highmem165M"))
    assert re.search(r"^\[[ .0-9]+\] 535MB LOWMEM available\.$", g.serial, re.M) and "highmem=165M" in g.cmdline
    c = compare(g)
    assert c.identical and c.assumptions == []
    assert g.max_low_pfn == 0x21700
    a = guest_artefacts(g)
    a.config = None
    d = describe_artefacts(a)
    assert d.params.lowmem_limit is None or d.params.lowmem_limit != 0x217FE000
    r = run(d, check=False)
    assert r.kernel.max_low_pfn == 0x21700
