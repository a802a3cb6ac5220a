"""The output layer (emu.tools.formats): every kernel format emu imitates, byte for byte
against the kernel's own format string, and every JSON document against its JSON Schema.

``cprintf`` renders a C format string the way the kernel's vsnprintf does for the
conversions these formats use (``%lu``, ``%8lu``, ``%#010lx``, ``%#018Lx``, ``%016Lx``,
``%0*lx``, ``%9lu%c``, ``%s``), so each test states the kernel's format string literally.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from emu import BootParams, CpuFeatures, emulate
from emu.inputs.e820 import EMBEDDED_DEFAULT
from emu.kernel.arch.x86.kernel.e820 import E820Table, type_name
from emu.machine.mmu import MMU, translate
from emu.tools import formats as F
from emu.tools.cli import main
from emu.tools.dump import ptdump_lines, table_entries
from layouts import G, pc, table

T = 1 << 40

_CONV = re.compile(r"%([-#0 +]*)(\*|\d+)?(?:\.(\d+))?(hh|h|ll|l|L|z)?([diouxXcs%])")


def cprintf(fmt: str, *args) -> str:
    """A C format string rendered as the kernel's printk/seq_printf would (the
    conversions used by the formats under test)."""
    def conv(m):
        flags, width, prec, _len, kind = m.groups()
        if kind == "%":
            return "%%"
        if kind == "u":
            kind = "d"
        return "%" + flags + (width or "") + (f".{prec}" if prec else "") + kind
    return _CONV.sub(conv, fmt) % args


def test_cprintf_itself():
    assert cprintf("%#010lx", 0x1000) == "0x00001000"
    assert cprintf("%#018Lx", 0) == "0x0000000000000000"      # the kernel's %#x prints 0x for 0 too
    assert cprintf("0x%0*lx", 8, 0xc0000000) == "0xc0000000"
    assert cprintf("%8lu kB", 123456789) == "123456789 kB"      # wider than 8: not cut


# ---------------------------------------------------------------------------
# /proc/meminfo
# ---------------------------------------------------------------------------
#: arch_report_meminfo (arch/x86/mm/pageattr.c 2.6.26-5.3, arch/x86/mm/pat/set_memory.c 5.4+)
MEMINFO_FMT = {name: name + ":    %8lu kB" for name in ("DirectMap4k", "DirectMap2M", "DirectMap4M", "DirectMap1G")}


@pytest.mark.parametrize("e820,profile,params", [
    (EMBEDDED_DEFAULT, "6.1", BootParams()),
    (EMBEDDED_DEFAULT, "3.13", BootParams(debug_pagealloc=True)),
    (pc(64 * T), "4.4", BootParams()),                                  # DirectMap1G: 11 digits
    (EMBEDDED_DEFAULT, "3.13", BootParams(arch="i386", pae=False)),    # DirectMap4M
    (EMBEDDED_DEFAULT, "3.13", BootParams(arch="i386", pae=True)),
], ids=["6.1", "4k-only", "64T", "i386", "i386-pae"])
def test_meminfo_lines_are_the_kernels(e820, profile, params):
    r = emulate(e820.copy(), profile, params, check=False)
    kb = r.meminfo
    assert F.meminfo_lines(kb) == [cprintf(MEMINFO_FMT[name], v) for name, v in kb.items()]
    assert ("DirectMap4M" in kb) == (params.arch == "i386" and not params.pae)
    assert sum(kb.values()) << 10 == sum(r.direct_map.values())


# ---------------------------------------------------------------------------
# ptdump (arch/x86/mm/dump_pagetables.c, note_page + printk_prot; 2.6.26-6.15)
# ---------------------------------------------------------------------------
#: printk_prot's columns, in order: (bit, text when set, text when clear); PSE only above
#: the pte level, PAT: bit 7 on a pte, bit 12 on a pmd/pud leaf
PRINTK_PROT = [(0x4, "USR ", "    "), (0x2, "RW ", "ro "), (0x8, "PWT ", "    "), (0x10, "PCD ", "    "),
               ("PSE", "PSE ", "    "), ("PAT", "PAT ", "    "), (0x100, "GLB ", "    "), (1 << 63, "NX ", "x  ")]


def kernel_ptdump_line(start, end, prot, level, width):
    s = cprintf("0x%0*lx-0x%0*lx   ", width, start, width, end)
    delta, unit = end - start, 0
    while not delta & 1023 and unit < 6:
        delta >>= 10
        unit += 1
    s += cprintf("%9lu%c ", delta, ord("BKMGTPE"[unit]))
    if not prot & 1:
        s += cprintf("                              ")
    else:
        for bit, yes, no in PRINTK_PROT:
            if bit == "PSE":
                on = level != "pte" and prot & 0x80
            elif bit == "PAT":
                on = (level == "pte" and prot & 0x80) or (level in ("pmd", "pud") and prot & 0x1000)
            else:
                on = prot & bit
            s += yes if on else no
    return s + cprintf("%s", level)


@pytest.mark.parametrize("width", [16, 8])
def test_ptdump_line_is_the_kernels(width):
    rng = np.random.default_rng(7)
    bits = [0x1, 0x2, 0x4, 0x8, 0x10, 0x80, 0x100, 0x1000, 1 << 63]
    for level in ("pgd", "p4d", "pud", "pmd", "pte"):
        for _ in range(60):
            prot = 0
            for b in bits:
                prot |= b if rng.random() < 0.5 else 0
            start = int(rng.integers(0, 1 << (4 * width - 13))) << 12
            end = start + (int(rng.integers(1, 1 << 20)) << 12)
            if width == 8:
                end = min(end, (1 << 32) - 4096)
                start = min(start, end - 4096)
            assert F.ptdump_line(start, end, prot, level, width) == kernel_ptdump_line(start, end, prot, level,
                                                                                       width)
    assert F.ptdump_marker("Low Kernel Mapping") == cprintf("---[ %s ]---", "Low Kernel Mapping")


_PT = re.compile(r"^0x([0-9a-f]+)-0x([0-9a-f]+)   .{10} (.{30})(\w+)$")


@pytest.mark.parametrize("profile,params", [("6.1", BootParams()), ("4.4", BootParams()),
                                            ("3.13", BootParams(arch="i386", pae=True)),
                                            ("3.13", BootParams(arch="i386", pae=False))],
                         ids=["6.1", "4.4", "i386-pae", "i386"])
def test_ptdump_lines_come_from_the_kernel_format(profile, params):
    r = emulate(EMBEDDED_DEFAULT.copy(), profile, params, check=False)
    lines = ptdump_lines(r)
    width = 16 if params.arch == "x86_64" else 8
    for ln in lines[1:-1]:
        m = _PT.match(ln)
        assert m, ln
        cols = m.group(3)
        prot = 0
        if cols.strip():
            prot = 1
            for bit, yes, _no in PRINTK_PROT:
                piece, cols = cols[:len(yes)], cols[len(yes):]
                if piece == yes and isinstance(bit, int):
                    prot |= bit
                elif piece == yes:
                    prot |= 0x80 if (bit == "PSE" or m.group(4) == "pte") else 0x1000
        assert ln == kernel_ptdump_line(int(m.group(1), 16), int(m.group(2), 16), prot, m.group(4), width)


# ---------------------------------------------------------------------------
# e820 (arch/x86/kernel/e820.c e820_print_map / e820__print_table)
# ---------------------------------------------------------------------------
def test_e820_lines_are_the_kernels():
    t = E820Table(EMBEDDED_DEFAULT.entries)
    # 3.5+: printk(KERN_INFO "%s: [mem %#018Lx-%#018Lx] ", who, start, end - 1) + e820_print_type
    new = F.e820_lines(t, "BIOS-e820", (6, 1))
    assert new == [cprintf("%s: [mem %#018Lx-%#018Lx] ", "BIOS-e820", e.addr, e.addr + e.size - 1)
                   + type_name(e.type, (6, 1)) for e in t.entries]
    # before 3.5: printk(KERN_INFO " %s: %016Lx - %016Lx ", who, start, end) + "(usable)" ...
    old = F.e820_lines(t, "BIOS-e820", (3, 2))
    assert old == [cprintf(" %s: %016Lx - %016Lx ", "BIOS-e820", e.addr, e.addr + e.size)
                   + type_name(e.type, (3, 2)) for e in t.entries]
    assert any(ln.endswith(" (usable)") for ln in old) and any(ln.endswith("] usable") for ln in new)
    assert F.e820_lines(t, "BIOS-e820", (6, 1)) == t.print_lines("BIOS-e820", (6, 1))    # one implementation


# ---------------------------------------------------------------------------
# the emulated kernel's own printk lines (arch/x86/mm/init.c)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("profile", ["3.13", "4.4", "6.1", "3.0"])
def test_kernel_printk_lines_are_the_kernels(profile):
    r = emulate(EMBEDDED_DEFAULT.copy(), profile, check=False)
    k = r.kernel
    log = r.debug_log
    from emu.kernel.arch.x86.mm.init import MapRange, page_size_string
    for c in k.calls:
        if k.profile.log_style == "mem":
            # init.c 3.5+: "init_memory_mapping: [mem %#010lx-%#010lx]\n" (start, end - 1)
            assert cprintf("init_memory_mapping: [mem %#010lx-%#010lx]", c.start, c.end - 1) in log
            for s, e, m in c.ranges:
                # " [mem %#010lx-%#010lx] page %s\n"
                assert cprintf(" [mem %#010lx-%#010lx] page %s", s, e - 1,
                               page_size_string(k, MapRange(s, e, m))) in log
        else:
            # <= 3.4: "init_memory_mapping: %016lx-%016lx\n", " %010lx - %010lx page %s\n"
            assert cprintf("init_memory_mapping: %016lx-%016lx", c.start, c.end) in log
            for s, e, m in c.ranges:
                assert cprintf(" %010lx - %010lx page %s", s, e, page_size_string(k, MapRange(s, e, m))) in log
    brk = [ln for ln in log if ln.startswith("BRK [")]
    assert bool(brk) == (k.profile.log_brk != "none" and k.profile.scheme != "early_table_space")
    for ln in brk:
        a, b = (int(x, 16) for x in re.findall(r"0x[0-9a-f]+", ln))
        # "BRK [%#010lx, %#010lx] PGTABLE\n" (3.9 .. 5.7)
        assert ln == cprintf("BRK [%#010lx, %#010lx] PGTABLE", a, b)


# ---------------------------------------------------------------------------
# JSON: one encoder, one schema per document type
# ---------------------------------------------------------------------------
jsonschema = pytest.importorskip("jsonschema")


def test_every_schema_is_a_valid_draft_2020_12_schema():
    for kind in F.KINDS + ("common",):
        s = F.schema(kind) if kind != "common" else json.load(open(f"{F.SCHEMA_DIR}/common.json"))
        jsonschema.Draft202012Validator.check_schema(s)
        assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        if kind != "common":
            assert s["properties"]["schema"]["const"] == F.schema_id(kind)


def _valid(doc, kind):
    assert doc["schema"] == F.schema_id(kind)
    F.validate(json.loads(F.dumps(doc)))
    return doc


def _big_numbers(o):
    if isinstance(o, dict):
        return any(_big_numbers(v) for v in o.values())
    if isinstance(o, list):
        return any(_big_numbers(v) for v in o)
    return isinstance(o, int) and not isinstance(o, bool) and abs(o) > 1 << 53


@pytest.mark.parametrize("e820,profile,params", [
    (EMBEDDED_DEFAULT, "6.1", BootParams()),
    (EMBEDDED_DEFAULT, "seed", BootParams()),
    (pc(64 * T), "3.13", BootParams()),
    (pc(6 * G), "6.1", BootParams(la57=True, cpu=CpuFeatures(la57=True))),
    (EMBEDDED_DEFAULT, "3.13", BootParams(arch="i386", pae=True)),
    (EMBEDDED_DEFAULT, "3.5", BootParams(arch="i386", pae=False)),
    (table((0, 0x9F000), (0x100000, 0x80000000), (1 << 40, (1 << 40) + (1 << 30))), "3.9",
     BootParams(debug_pagealloc=True)),
], ids=["6.1", "seed", "64T", "la57", "i386-pae", "i386", "panic"])
def test_run_check_dump_translate_documents(e820, profile, params):
    r = emulate(e820.copy(), profile, params)
    d = _valid(F.run_document(r), "run")
    assert not _big_numbers(d)
    k = r.kernel
    assert int(d["cr3"], 16) == k.pgd_pfn << 12 and int(d["page_offset"], 16) == k.page_offset
    assert [int(c["start"], 16) for c in d["calls"]] == [c.start for c in k.calls]
    assert [int(w["step_size"], 16) for w in d["windows"]] == [w.step_size for w in k.windows]
    if r.panic:
        assert d["panic"] and d["verify"] is None
        return
    _valid(F.check_document(r, r.verify), "check")
    ents = table_entries(r)
    dd = F.dump_document(k, ents)
    assert [int(e["entry"], 16) for e in dd["entries"]] == [e["entry"] for e in ents]
    # the schema holds per entry: a sample of a big dump (jsonschema takes ~0.5 ms an entry)
    _valid(dict(dd, entries=dd["entries"][:1500] + dd["entries"][-500:]), "dump")
    assert not _big_numbers(dd)
    mmu = MMU.for_mode(k.mode, k.pgd_pfn << 12, k.params.cpu.nx, k.params.cpu.pse)
    vas = [k.page_offset + 0x1000, k.page_offset + (k.max_low_pfn << 12) - 1, 0x1000, k.page_offset + (3 << 30)]
    if k.mode.is_64bit:
        vas.append(0x8000000000000000)
    vas = [v & ((1 << (64 if k.mode.is_64bit else 32)) - 1) for v in vas]
    for access in ("r", "w", "u", "x"):
        acc = {"r": 0, "w": 1, "u": 2, "x": 4}[access]
        t = translate(k.phys, mmu, np.array(vas, np.uint64), acc, trace=True)
        td = _valid(F.translate_document(k, t, access), "translate")
        for rec, err in zip(td["translations"], t.error.tolist()):
            assert (rec["fault"] is None) == (err == -1)
            if err >= 0:
                assert rec["fault_level"] is not None and rec["error_code"] == err


def test_translate_fault_level_is_the_denying_level():
    r = emulate(EMBEDDED_DEFAULT.copy(), "6.1", check=False)
    k = r.kernel
    mmu = MMU.for_mode(k.mode, k.pgd_pfn << 12)
    # a user read of the direct map: the table pointers carry US, the leaf does not
    t = translate(k.phys, mmu, np.array([k.page_offset + 0x100000, k.page_offset + (8 << 30)], np.uint64), 2,
                  trace=True)
    recs = [F.translation_record(k, t, i) for i in range(2)]
    assert [x["fault_level"] for x in recs] == ["pte", "pud"]            # a 4K leaf, a 1G leaf
    assert recs[0]["error"] == "protection read (user)" and recs[0]["error_code"] == 5
    # a fetch from the direct map (NX leaf)
    t = translate(k.phys, mmu, np.array([k.page_offset + 0x100000], np.uint64), 4, trace=True)
    assert F.translation_record(k, t, 0)["fault_level"] == "pte"


def test_diff_profiles_replay_fuzz_and_meta_documents(tmp_path, capsys):
    from emu.tools.diff import compare
    a = emulate(EMBEDDED_DEFAULT.copy(), "seed", check=False)
    b = emulate(EMBEDDED_DEFAULT.copy(), "3.10", check=False)
    diffs = compare(a, b)
    d = _valid(F.diff_document(a, b, F.unified_diff(a.debug_log, b.debug_log, "seed", "3.10"), diffs), "diff")
    assert not d["identical"] and d["differences"][0]["a"]["page_size"] == "4K"
    assert d["log_diff"][:2] == ["--- seed", "+++ 3.10"]
    from emu.kernel.profiles import PROFILES
    p = _valid(F.profiles_document(PROFILES), "profiles")
    assert set(p["profiles"]) == set(PROFILES)
    from emu.tools.campaign import Summary
    from emu.tools.fuzz import write_finding
    from emu.tools.generators import case_for
    s = Summary("seed", 3, maps=10, seconds=1.5, outcomes={"ok": 10})
    _valid(F.fuzz_summary_document(s.to_json()), "fuzz-summary")
    case = case_for(3, 0).to_json()
    path = write_finding(str(tmp_path), "seed", "panic:x", case, case, ["detail"], 3, 0, 5, "3.19")
    _valid(json.load(open(path)), "fuzz-finding")
    from emu.tools.dump import write_raw
    meta = write_raw(a, str(tmp_path / "raw"))
    assert json.loads((tmp_path / "raw" / "meta.json").read_text()) == meta
    _valid(meta, "raw-meta")
    assert F.raw_meta_document(meta) == meta                      # one producer: nothing left to convert
    from emu.kernel.profiles import CHANGES, explain
    ch = _valid(F.changes_document(CHANGES), "changes")
    assert [c["id"] for c in ch["changes"]] == [c.id for c in CHANGES]
    ex = _valid(F.explain_document(explain("5.10.223")), "profile-explain")
    assert ex["resolved"] == "5.10.223" and len(ex["changes"]) == len(CHANGES)
    from emu.tools.replay import ReplayResult
    rr = ReplayResult("x.log", True, profile="3.13", expected=["a"], got=["a"], verify_ok=True)
    _valid(F.replay_document([rr], 1, 0), "replay")


def test_cli_json_documents_validate(capsys):
    for argv, kind in ((["run", "--json"], "run"), (["check", "--json"], "check"),
                       (["dump", "--format", "json"], "dump"), (["translate", "--json", "0xffff888000000000"],
                                                                 "translate"),
                       (["diff", "--json", "--profile", "seed", "--profile", "3.10"], "diff"),
                       (["profiles", "--json"], "profiles")):
        main(argv)
        _valid(json.loads(capsys.readouterr().out), kind)


def test_schemas_reject_what_they_should():
    r = emulate(EMBEDDED_DEFAULT.copy(), "6.1")
    d = json.loads(F.dumps(F.run_document(r)))
    bad = dict(d, cr3=int(d["cr3"], 16))                     # a number where a "0x..." string belongs
    with pytest.raises(jsonschema.ValidationError):
        F.validate(bad)
    with pytest.raises(jsonschema.ValidationError):
        F.validate(dict(d, surprise=1))                      # no undocumented keys
    with pytest.raises(jsonschema.ValidationError):
        F.validate(dict(d, schema="emu.run/1", direct_map={"8K": 1}))


def test_encoder_never_rounds():
    doc = F.document("run", {"x": (1 << 53) + 1, "y": [np.uint64(1 << 63)], "z": 5, "t": (1, 2)})
    assert doc["x"] == "0x20000000000001" and doc["y"] == ["0x8000000000000000"] and doc["z"] == 5
    assert doc["t"] == [1, 2] and list(doc)[:2] == ["schema", "emu_version"]
    with pytest.raises(ValueError):
        F.dumps({"no": "schema"})
    with pytest.raises(ValueError):
        F.schema_id("nonsense")


# ---------------------------------------------------------------------------
# the walk trace: one walk, both engines
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("profile,params", [
    ("6.1", BootParams()), ("6.1", BootParams(la57=True, cpu=CpuFeatures(la57=True))),
    ("3.13", BootParams(arch="i386", pae=True)), ("3.13", BootParams(arch="i386", pae=False)),
    ("3.13", BootParams(debug_pagealloc=True)),
], ids=["4level", "5level", "pae", "non-pae", "4k"])
def test_walk_trace_same_in_both_engines_and_consistent(profile, params):
    e820 = pc(6 * G) if params.la57 else EMBEDDED_DEFAULT.copy()
    r = emulate(e820, profile, params, check=False)
    k = r.kernel
    mmu = MMU.for_mode(k.mode, k.pgd_pfn << 12, k.params.cpu.nx, k.params.cpu.pse)
    rng = np.random.default_rng(11)
    if k.mode.is_64bit:
        vas = np.concatenate([np.uint64(k.page_offset) + rng.integers(0, 24 << 30, 3000, dtype=np.uint64),
                              rng.integers(0, 1 << 63, 500, dtype=np.uint64)])
    else:
        vas = rng.integers(0, 1 << 32, 3000, dtype=np.uint64)
    for access in (0, 1, 2, 4, 7):
        a = translate(k.phys, mmu, vas, access, engine="cython", trace=True)
        b = translate(k.phys, mmu, vas, access, engine="python", trace=True)
        plain = translate(k.phys, mmu, vas, access, engine="cython")
        assert np.array_equal(a.trace, b.trace)
        for f in ("pa", "shift", "leaf", "flags", "error"):
            assert np.array_equal(getattr(a, f), getattr(plain, f)), f       # tracing changes no result
    amask = (1 << k.mode.phys_bits) - 1 & ~0xFFF
    for i in range(len(vas)):
        steps = a.steps(i)
        err = int(a.error[i])
        if err == -2:
            assert steps == []
            continue
        assert steps[0].level == k.paging_levels and steps[0].table == (k.pgd_pfn << 12) & ~0x1F
        for s, nxt in zip(steps, steps[1:]):
            assert nxt.level == s.level - 1 and nxt.table == s.entry & amask
        if err == -1:
            assert steps[-1].entry == int(a.leaf[i])


def test_trace_shape_is_checked():
    from emu.machine import engine
    r = emulate(EMBEDDED_DEFAULT.copy(), "6.1", check=False)
    k = r.kernel
    vas = np.array([k.page_offset], np.uint64)
    for eng in (engine.compiled(), engine.PYTHON):
        out = [np.zeros(1, np.uint64), np.zeros(1, np.uint8), np.zeros(1, np.uint64), np.zeros(1, np.uint64),
               np.zeros(1, np.int32)]
        with pytest.raises(ValueError, match="trace must have shape"):
            eng.walk64(k.phys.directory, k.phys.blocks[: k.phys.nblocks], k.phys.frames, k.pgd_pfn << 12, 4, 52,
                       True, True, False, 0, vas, *out, np.zeros((1, 4, 4), np.uint64))


def test_fuzz_campaign_files_validate(tmp_path, capsys, monkeypatch):
    """Every file a real campaign leaves (finding, its --e820 map, corpus entries, state) and
    ``emu fuzz --json`` are emu documents that validate; the finding's map replays with --e820."""
    out = tmp_path / "f"
    assert main(["fuzz", "--profile", "seed", "--count", "60", "--out", str(out), "--modes", "x86_64",
                 "--seed", "0", "--json"]) in (0, 1)
    summary = _valid(json.loads(capsys.readouterr().out), "fuzz-summary")
    assert summary["maps"] == 60
    st = _valid(json.loads((out / "state.json").read_text()), "fuzz-state")
    assert st["next_index"] == 60 and st["findings"] == {k: {"file": v, "index": st["findings"][k]["index"]}
                                                         for k, v in summary["findings"].items()}
    corpus = sorted((out / "corpus").iterdir())
    assert corpus and [_valid(json.loads(p.read_text()), "fuzz-corpus")["index"] for p in corpus] == \
        [e["index"] for e in st["corpus"]]
    assert summary["findings"], "the seed patch fails on some of the first 60 maps"
    for name in summary["findings"].values():
        f = _valid(json.loads((out / name).read_text()), "fuzz-finding")
        e = _valid(json.loads((out / name.replace(".json", ".e820.json")).read_text()), "e820")
        assert e["e820"] == [{"addr": hex(int(x["addr"], 16)), "size": hex(int(x["size"], 16)), "type": x["type"]}
                             for x in f["case"]["e820"]]
        from emu.inputs.e820 import load_e820
        assert len(load_e820(str(out / name.replace(".json", ".e820.json")))) == len(e["e820"])
        with monkeypatch.context() as m:                          # the command the finding says replays it
            m.chdir(out)
            argv = f["command"].split()
            assert argv[:2] == ["emu", "check"] and main(argv[1:]) in (0, 1)
        capsys.readouterr()
    # a rerun resumes from the state file it wrote
    assert main(["fuzz", "--profile", "seed", "--count", "8", "--out", str(out), "--modes", "x86_64", "--json"]) in (0, 1)
    assert json.loads(capsys.readouterr().out)["next_index"] == 68


def test_profiles_cli_json(capsys):
    for argv, kind in ((["profiles", "--json"], "profiles"), (["profiles", "--changes", "--json"], "changes"),
                       (["profiles", "--version", "6.1.0-26-amd64 Debian 6.1.112-1", "--json"], "profile-explain")):
        assert main(argv) == 0
        _valid(json.loads(capsys.readouterr().out), kind)


def test_only_formats_writes_json():
    """Every JSON document emu writes goes through :mod:`emu.tools.formats` (the oracle
    tools' files are theirs, and the benchmark harness lives in bench/)."""
    import ast
    import pathlib
    root = pathlib.Path(F.__file__).resolve().parents[1]
    offenders = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).as_posix()
        if rel == "emu/tools/formats.py" or rel.startswith("emu/tools/oracle/"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and node.attr in ("dump", "dumps")
                    and isinstance(node.value, ast.Name) and node.value.id == "json"):
                offenders.append(f"{rel}:{node.lineno}")
    assert offenders == []
