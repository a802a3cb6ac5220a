"""emu dump (ptdump text, JSON entries, raw image) and translation; the raw image is
walked by independent walkers (a numpy walker here, volatility3's Intel32e layer when
installed) and must agree with emu on >= 100,000 addresses."""
from __future__ import annotations

import json
import mmap
import os
import re

import numpy as np
import pytest

from emu import BootParams, CpuFeatures, emulate
from emu.tools.cli import main
from emu.tools.dump import ptdump_lines, table_entries, translate, write_raw
from emu.inputs.e820 import EMBEDDED_DEFAULT
from layouts import G, pc

LINE = re.compile(r"^0x[0-9a-f]{16}-0x[0-9a-f]{16}   [ \d]{8}\d[BKMGTPE] "
                  r"(( {30})|((USR |    )(RW |ro )(PWT |    )(PCD |    )(PSE |    )(PAT |    )(GLB |    )(NX |x  )))"
                  r"(pgd|p4d|pud|pmd|pte)$")


def _mixed():
    """A layout mapped with 4K, 2M and 1G leaves."""
    return emulate(EMBEDDED_DEFAULT, "6.1")


def test_ptdump_format():
    lines = ptdump_lines(_mixed())
    assert lines[0] == "---[ Low Kernel Mapping ]---" and lines[-1] == "---[ vmalloc() Area ]---"
    body = lines[1:-1]
    for ln in body:
        assert LINE.match(ln), ln
    # contiguous, from PAGE_OFFSET to VMALLOC_START
    spans = [tuple(int(x, 16) for x in ln.split()[0].split("-")) for ln in body]
    assert spans[0][0] == 0xFFFF888000000000 and spans[-1][1] == 0xFFFFC90000000000
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert body[0] == "0xffff888000000000-0xffff888000200000           2M     RW                 GLB NX pte"
    assert any(ln.endswith("RW         PSE     GLB NX pud") for ln in body)
    assert any(ln.endswith("RW         PSE     GLB NX pmd") for ln in body)
    assert body[-1].endswith("p4d")          # generic ptdump (5.6+): top-level holes are p4d


def test_ptdump_old_kernel_names_top_holes_pgd():
    lines = ptdump_lines(emulate(EMBEDDED_DEFAULT, "4.4"))
    assert lines[1].startswith("0xffff880000000000-") and lines[-2].endswith("pgd")


def test_ptdump_no_nx_and_sizes():
    r = emulate(pc(3 * G), "6.1", BootParams(cpu=CpuFeatures(nx=False)))
    lines = ptdump_lines(r)
    assert all(" NX " not in ln for ln in lines)
    total = 0
    for ln in lines[1:-1]:
        a, b = (int(x, 16) for x in ln.split()[0].split("-"))
        total += b - a
        size = ln.split()[1]
        n, unit = int(size[:-1]), "BKMGTPE".index(size[-1])
        assert n << (10 * unit) == b - a
    assert total == 0xFFFFC90000000000 - 0xFFFF888000000000


def test_json_entries_match_the_walk():
    r = _mixed()
    ents = table_entries(r)
    leaves = [e for e in ents if e["leaf"]]
    assert {e["level"] for e in leaves} == {"pte", "pmd", "pud"}
    va = np.array([e["va"] for e in leaves], np.uint64)
    t = translate(r, va)
    assert (t.error == -1).all()
    assert all(int(p) == e["entry"] & 0x000FFFFFFFFFF000 & ~((1 << int(s)) - 1) for p, e, s in zip(t.pa, leaves, t.shift))


def _walk_image(img: bytes, cr3: int, levels: int, vas: np.ndarray):
    """An independent 4/5-level walker over a raw physical image (numpy, vectorised)."""
    mem = np.frombuffer(img, dtype=np.uint64)
    n = len(vas)
    table = np.full(n, cr3 & ~0xFFF, np.uint64)
    pa = np.zeros(n, np.uint64)
    ok = np.ones(n, bool)
    done = np.zeros(n, bool)
    for lvl in range(levels, 0, -1):
        shift = np.uint64(12 + 9 * (lvl - 1))
        idx = (vas >> shift) & np.uint64(511)
        addr = table + idx * np.uint64(8)
        inb = addr < np.uint64(len(img))
        e = np.where(inb, mem[np.minimum(addr, np.uint64(len(img) - 8)) // np.uint64(8)], np.uint64(0))
        act = ok & ~done
        ok &= ~(act & ((e & np.uint64(1)) == 0))
        leaf = act & ok & ((lvl == 1) | ((e & np.uint64(0x80)) != 0))
        size_mask = (np.uint64(1) << shift) - np.uint64(1)
        pa = np.where(leaf, (e & np.uint64(0x000FFFFFFFFFF000) & ~size_mask) | (vas & size_mask), pa)
        done |= leaf
        table = np.where(act & ok & ~leaf, e & np.uint64(0x000FFFFFFFFFF000), table)
    return pa, ok & done


def _addresses(r, n=100_000):
    rng = np.random.default_rng(4)
    k = r.kernel
    top = (k.max_pfn << 12) + (2 << 30)
    vas = np.uint64(k.page_offset) + rng.integers(0, top, n, dtype=np.uint64)
    return vas


def test_raw_image_independent_walk(tmp_path):
    r = _mixed()
    meta = write_raw(r, str(tmp_path))
    assert meta["mode"] == "x86_64-4level" and int(meta["cr3"], 16) == r.kernel.pgd_pfn << 12
    assert int(meta["page_offset"], 16) == r.kernel.page_offset
    path = tmp_path / "memory.img"
    st = os.stat(path)
    assert st.st_size == meta["image_size"] and st.st_blocks * 512 < 16 << 20   # sparse
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as img:
        vas = _addresses(r)
        pa, ok = _walk_image(img, int(meta["cr3"], 16), meta["levels"], vas)
    t = translate(r, vas)
    assert ok.sum() > 50_000 and (~ok).sum() > 1000
    assert np.array_equal(ok, t.error == -1)
    assert np.array_equal(pa[ok], t.pa[ok])


def test_raw_image_volatility3(tmp_path):
    pytest.importorskip("volatility3")
    from volatility3.framework import contexts, exceptions
    from volatility3.framework.layers import intel, physical
    r = emulate(pc(6 * G), "6.1", BootParams(cpu=CpuFeatures(gbpages=False)))
    meta = write_raw(r, str(tmp_path))
    ctx = contexts.Context()
    ctx.config["phys.location"] = "file://" + str(tmp_path / "memory.img")
    ctx.add_layer(physical.FileLayer(ctx, "phys", "phys"))
    ctx.config["virt.memory_layer"] = "phys"
    ctx.config["virt.page_map_offset"] = int(meta["cr3"], 16)
    ctx.add_layer(intel.Intel32e(ctx, "virt", "virt"))
    layer = ctx.layers["virt"]
    vas = _addresses(r)
    t = translate(r, vas)
    agree = 0
    for va, p, err in zip(vas.tolist(), t.pa.tolist(), t.error.tolist()):
        try:
            got = layer._translate(va)[0]
        except exceptions.InvalidAddressException:
            got = None
        agree += got == (p if err == -1 else None)
    assert agree == len(vas) >= 100_000


def test_translate_api_and_cli(capsys):
    r = _mixed()
    t = translate(r, np.array([r.kernel.page_offset + 0x1000, r.kernel.page_offset + (1 << 45)], np.uint64))
    recs = t.records()
    assert recs[0]["pa"] == 0x1000 and recs[0]["size"] == 4096 and "RW" in recs[0]["flags"]
    assert recs[1]["pa"] is None and recs[1]["fault"] == 0
    assert main(["translate", "--json", hex(0xFFFF888000001000), "0x1234"]) == 0
    out = json.loads(capsys.readouterr().out)["translations"]
    assert [set(o) for o in out] == [{"va", "pa", "page_size", "flags", "fault", "error_code", "error",
                                      "fault_level", "walk"}] * 2
    assert out[0]["pa"] == "0x1000" and out[1]["fault"] == "#PF"


def test_dump_cli(tmp_path, capsys):
    assert main(["dump", "--profile", "4.19"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "---[ Low Kernel Mapping ]---" and out[1].startswith("0xffff880000000000")
    assert main(["dump", "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["schema"] == "emu.dump/1" and {"cr3", "mode", "page_offset", "entries"} <= set(d)
    assert {"level", "table", "index", "entry", "va", "leaf"} == set(d["entries"][0])
    assert main(["dump", "--format", "raw", str(tmp_path / "raw")]) == 0
    printed = json.loads(capsys.readouterr().out)
    meta = json.loads((tmp_path / "raw" / "meta.json").read_text())
    assert {"cr3", "mode", "page_offset"} <= set(meta)
    assert printed["schema"] == "emu.raw-meta/1" and printed == meta


def test_dump_json_round_trips_every_entry(capsys):
    """``emu dump --format json | python -c json.load``: every entry, address and CR3 comes
    back exactly (64-bit values are "0x..." strings, not numbers a reader rounds)."""
    import subprocess
    import sys
    from emu.tools.formats import dump_document, dumps
    r = _mixed()
    raw = table_entries(r)
    text = dumps(dump_document(r.kernel, raw), indent=None)       # what `emu dump --format json` prints
    assert main(["dump", "--format", "json", "--profile", "6.1"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert cli["schema"] == "emu.dump/1" and len(cli["entries"]) > 100
    back = subprocess.run([sys.executable, "-c", "import json, sys; d = json.load(sys.stdin); "
                           "print(json.dumps(d['entries']))"], input=text, capture_output=True, text=True, check=True)
    ents = json.loads(back.stdout)
    assert len(ents) == len(raw) > 100
    for e, x in zip(ents, raw):
        assert (int(e["entry"], 16), int(e["table"], 16), int(e["va"], 16), e["index"], e["level"], e["leaf"]) == \
            (x["entry"], x["table"], x["va"], x["index"], x["level"], x["leaf"])
    assert any(x["entry"] >> 53 for x in raw)                      # NX entries: beyond a double's 53 bits
    d = json.loads(text)
    assert int(d["page_offset"], 16) == r.kernel.page_offset and int(d["cr3"], 16) == r.kernel.pgd_pfn << 12

    def numbers(o):
        if isinstance(o, dict):
            for v in o.values():
                yield from numbers(v)
        elif isinstance(o, list):
            for v in o:
                yield from numbers(v)
        elif isinstance(o, (int, float)) and not isinstance(o, bool):
            yield o
    assert all(abs(n) <= 1 << 53 for n in numbers(d))


def test_check_cli(capsys):
    assert main(["check", "-q"]) == 0
    assert capsys.readouterr().out.startswith("check: OK")
    assert main(["check", "--json", "--profile", "3.13"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["check"]["ok"] is True and d["check"]["mode"] == "x86_64-4level"


@pytest.mark.parametrize("pae", [True, False])
def test_i386_ptdump_json_and_translate(pae):
    """emu dump works on i386 too: ptdump lines with 32-bit addresses, every present entry
    (4-byte entries without PAE), and the Python translate API."""
    from emu import BootParams, emulate
    from emu.tools.dump import ptdump_lines, table_entries, translate as dump_translate
    from emu.inputs.e820 import EMBEDDED_DEFAULT
    r = emulate(EMBEDDED_DEFAULT, "3.13", BootParams(arch="i386", pae=pae))
    lines = ptdump_lines(r)
    assert lines[0] == "---[ Kernel Mapping ]---" and lines[-1] == "---[ vmalloc() Area ]---"
    assert lines[1].startswith("0xc0000000-0x")
    big = "pmd" if pae else "pgd"
    assert any(l.endswith(big) and " PSE " in l for l in lines)
    ents = table_entries(r)
    assert ents and all(e["entry"] < (1 << 32) for e in ents if not pae)
    leaves = [e for e in ents if e["leaf"]]
    assert leaves and leaves[0]["va"] == 0xC0000000
    t = dump_translate(r, [0xC0000000 + 0x123456, 0xC0000000 + (r.kernel.max_low_pfn << 12) + 0x1000000])
    assert int(t.pa[0]) == 0x123456 and int(t.error[0]) == -1 and int(t.error[1]) >= 0
