"""Raw dumps any size can hold (chunked flat image + LiME), complete or absent, the path in
every error; volatility3 reads them."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from emu import BootParams, CpuFeatures, emulate
from emu.tools import rawimage
from emu.tools.cli import main
from emu.tools.dump import table_pfns, translate, write_raw

from layouts import G, pc, table

T = 1 << 40


def _check_against_store(r, d):
    meta = json.loads((d / "meta.json").read_text())
    k = r.kernel
    for p in table_pfns(k).tolist():
        assert rawimage.read_physical(str(d), p << 12, 4096) == k.phys.image_bytes(p)
    for e in meta["files"]:
        st = os.stat(d / e["path"])
        assert st.st_size == int(e["size"], 16) <= int(meta["chunk_size"], 16)
    return meta


def _volatility_agrees(r, lime_path, cr3, n=20_000):
    pytest.importorskip("volatility3")
    from volatility3.framework import contexts, exceptions
    from volatility3.framework.layers import intel, lime, physical
    ctx = contexts.Context()
    ctx.config["file.location"] = "file://" + str(lime_path)
    ctx.add_layer(physical.FileLayer(ctx, "file", "file"))
    ctx.config["phys.base_layer"] = "file"
    ctx.add_layer(lime.LimeLayer(ctx, "phys", "phys"))
    ctx.config["virt.memory_layer"] = "phys"
    ctx.config["virt.page_map_offset"] = cr3
    ctx.add_layer(intel.Intel32e(ctx, "virt", "virt"))
    layer = ctx.layers["virt"]
    k = r.kernel
    rng = np.random.default_rng(11)
    vas = np.uint64(k.page_offset) + rng.integers(0, (k.max_pfn << 12) + (4 << 30), n, dtype=np.uint64)
    t = translate(r, vas)
    agree = 0
    for va, p, err in zip(vas.tolist(), t.pa.tolist(), t.error.tolist()):
        try:
            got = layer._translate(va)[0]
        except exceptions.InvalidAddressException:
            got = None
        agree += got == (p if err == -1 else None)
    return agree, int((t.error == -1).sum())


def test_dump_over_16_tib_is_chunked_and_read_by_volatility(tmp_path):
    """24 TiB: no single file (ext4 stops at 16 TiB); chunks of 1 TiB holding the tables,
    a LiME image volatility3 walks to the same translations as emu."""
    r = emulate(table((0, 0x9F000), (0x100000, 24 * T)), "6.1", check=False)
    d = tmp_path / "raw"
    meta = write_raw(r, str(d))
    assert meta["format"] == "emu-raw-2" and meta["image_size"] > 16 * T
    assert meta["lime"] == "memory.lime" and len(meta["files"]) >= 2
    assert all(e["path"].startswith("memory.img.") for e in meta["files"])
    assert sorted(os.listdir(d)) == sorted([e["path"] for e in meta["files"]] + ["memory.lime", "meta.json"])
    _check_against_store(r, d)
    agree, mapped = _volatility_agrees(r, d / "memory.lime", int(meta["cr3"], 16))
    assert agree == 20_000 and mapped > 10_000


def test_small_chunks_and_the_cli(tmp_path, capsys):
    r = emulate(pc(6 * G), "6.1", BootParams(cpu=CpuFeatures(gbpages=False)), check=False)
    d = tmp_path / "c"
    meta = rawimage.write_raw(r, str(d), table_pfns(r.kernel), chunk_size=1 << 30)
    assert len(meta["files"]) >= 2 and meta["lime"]
    _check_against_store(r, d)
    agree, mapped = _volatility_agrees(r, d / "memory.lime", int(meta["cr3"], 16), 5000)
    assert agree == 5000 and mapped > 2000
    assert main(["dump", "--format", "raw", str(tmp_path / "cli")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["files"] == [{"path": "memory.img", "phys_start": "0x0", "size": hex(out["image_size"])}]


def test_a_failed_dump_leaves_the_old_one_complete(tmp_path, monkeypatch):
    r = emulate(pc(6 * G), "6.1", check=False)
    d = tmp_path / "raw"
    old = write_raw(r, str(d))
    before = {n: (d / n).read_bytes() for n in os.listdir(d) if n != "memory.img"}
    calls = {"n": 0}
    real = type(r.kernel.phys).image_bytes

    def failing(self, pfn):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(28, "No space left on device")
        return real(self, pfn)
    monkeypatch.setattr(type(r.kernel.phys), "image_bytes", failing)
    with pytest.raises(rawimage.RawImageError, match=f"{d / 'memory.img'}: No space left on device"):
        write_raw(r, str(d))
    assert sorted(os.listdir(d)) == ["memory.img", "meta.json"]        # no temporary file left
    assert {n: (d / n).read_bytes() for n in before} == before
    assert json.loads((d / "meta.json").read_text()) == old


def test_a_chunked_dump_replaced_by_a_small_one_leaves_no_stale_chunk(tmp_path):
    d = tmp_path / "raw"
    big = emulate(pc(6 * G), "6.1", check=False)
    rawimage.write_raw(big, str(d), table_pfns(big.kernel), chunk_size=1 << 30)
    small = emulate(pc(2 * G), "6.1", check=False)
    write_raw(small, str(d))
    assert sorted(os.listdir(d)) == ["memory.img", "meta.json"]


def test_errors_name_the_path(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    r = emulate(pc(2 * G), "6.1", check=False)
    with pytest.raises(rawimage.RawImageError, match=str(f)):
        write_raw(r, str(f / "sub"))
    assert main(["dump", "--format", "raw", str(f)]) == 2          # refused before emulating
    err = capsys.readouterr().err
    assert err == f"emu: error: {f}: exists and is not a directory\n"
    assert main(["dump", "--format", "raw", str(f / "sub")]) == 2
    assert capsys.readouterr().err == f"emu: error: {f / 'sub'}: {f} is not a directory\n"
