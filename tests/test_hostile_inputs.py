"""Regression tests for the failure classes the long bad-input campaign found on the new
channels (tests/badinput/campaign.py; figures in docs/hostile.md), and the boundary's
knowledge of every BootParams field: each field says how it is checked
(``validate.FIELD_LIMITS``), every integer of every field is refused outside [0, 2^64) in
every mode, and ``brk_end`` is checked against the mode's window and the BRK buffer."""
from __future__ import annotations

import dataclasses
import json
import os

import pytest

from emu import BootParams
from emu.kernel import validate as V
from emu.kernel.profiles import get_profile
from emu.tools.cli import main

MODES = [dict(arch="x86_64"), dict(arch="x86_64", la57=True), dict(arch="i386", pae=True),
         dict(arch="i386", pae=False)]


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if not ln.startswith("emu: assumed ")]
    assert len(lines) == 1 and lines[0].startswith("emu: error: "), err
    return lines[0]


# ---------------------------------------------------------------------------
# the boundary knows every field
# ---------------------------------------------------------------------------
def test_every_bootparams_field_says_how_it_is_checked():
    fields = {f.name for f in dataclasses.fields(BootParams)}
    assert set(V.FIELD_LIMITS) == fields, (fields - set(V.FIELD_LIMITS), set(V.FIELD_LIMITS) - fields)


def _int_fields():
    out = []
    for f, hint in V.param_types().items():
        inner, _ = V.unwrap_optional(hint)
        if inner is int:
            out.append(f)
    return out


@pytest.mark.parametrize("mode", MODES, ids=["x86_64", "la57", "i386-pae", "i386"])
@pytest.mark.parametrize("field", _int_fields())
@pytest.mark.parametrize("value", [-1, -4096, 1 << 64, (1 << 64) + 4096])
def test_every_int_field_is_refused_outside_u64(field, mode, value):
    """A negative value or one of 2^64 and more: refused, naming the field, in every mode
    (also where the mode does not read the field)."""
    prof = get_profile("6.1")
    with pytest.raises(V.ParamError) as e:
        V.check_boot_params(BootParams(**mode, **{field: value}), prof)
    assert e.value.field.startswith(field) and "\n" not in str(e.value)


def test_none_able_fields_accept_none_and_reject_wrong_types():
    prof = get_profile("6.1")
    for f, hint in V.param_types().items():
        inner, opt = V.unwrap_optional(hint)
        if opt:
            V.check_boot_params(BootParams(**{f: None}), prof)
        with pytest.raises(V.ParamError):
            V.check_boot_params(BootParams(**{f: object()}), prof)


@pytest.mark.parametrize("mode,bad", [
    (dict(arch="x86_64"), [0, 0x1000, 0x100000, 0x400000000001, 1 << 60]),
    (dict(arch="x86_64", la57=True), [0x1000, (1 << 52) + 1]),
    (dict(arch="i386", pae=True), [0x1000, 0x40000001, 0x100000000]),
    (dict(arch="i386", pae=False), [0x1000, 0x40000001]),
])
def test_brk_end_is_checked_against_the_mode(mode, bad):
    """brk_end (the end of reserve_brk's reservation, from a memblock=debug log or --param):
    in (ISA end, window], and room below it for the BRK page-table buffer -- named as
    brk_end, not as the --brk it would become."""
    prof = get_profile("6.1")
    for v in bad:
        with pytest.raises(V.ParamError) as e:
            V.check_boot_params(BootParams(**mode, brk_end=v), prof)
        assert e.value.field == "brk_end", (v, str(e.value))
    V.check_boot_params(BootParams(**mode, brk_end=0x3000000), prof)


def test_brk_end_too_low_for_the_buffer():
    with pytest.raises(V.ParamError, match="no room below it for the .*BRK page-table buffer"):
        V.check_boot_params(BootParams(brk_end=0x102000), get_profile("6.1"))


def test_cli_brk_end_message_names_brk_end(capsys):
    assert main(["run", "--param", "brk_end=0x1000"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "brk_end 0x1000" in line and "--brk" not in line


# ---------------------------------------------------------------------------
# classes found by the campaign on the new channels
# ---------------------------------------------------------------------------
def test_profiles_json_changes(capsys):
    """`emu profiles --json --changes` was a NameError (json not imported): exit 70."""
    assert main(["profiles", "--json", "--changes"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "emu.changes/1" and doc["changes"]


def test_dask_backend_without_dask_is_one_line(tmp_path, capsys):
    """--backend dask or --scheduler without dask installed was an internal error
    (ModuleNotFoundError, exit 70)."""
    try:
        import dask  # noqa: F401
        import distributed  # noqa: F401
        pytest.skip("dask is installed")
    except ImportError:
        pass
    for extra in (["--backend", "dask"], ["--scheduler", "tcp://127.0.0.1:1"]):
        assert main(["fuzz", "--count", "1", "--out", str(tmp_path / "o"), "--modes", "x86_64"] + extra) == 2
        assert "dask" in _one_error_line(capsys.readouterr().err)


def test_fuzz_error_is_the_only_line(tmp_path, capsys, monkeypatch):
    """fuzz printed its defaulted profile and directory before validating the rest: a bad
    --modes, --families or --out gave two or three stderr lines.  Defaults are 'emu:
    assumed' lines, said once everything is checked."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("x")
    for bad in (["--modes", "nope"], ["--families", ","], ["--max-ram", "1GG"], ["--resume"],
                ["--reference", "x"], ["--families", ""], ["--modes", ""]):     # (empty ones meant 'all')
        assert main(["fuzz", "--count", "1"] + bad) == 2, bad
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("emu: error: "), (bad, err)


def test_fuzz_runs_no_more_local_workers_than_maps(tmp_path, monkeypatch):
    """--jobs 4096 --count 1 forked 4096 workers for one map (minutes on a small machine)."""
    from emu.tools import batches, fuzz
    seen = []
    real = batches.open_runner

    def spy(jobs=1, scheduler=None, backend=None):
        seen.append(jobs)
        return real(1, scheduler, "inline")
    monkeypatch.setattr(batches, "open_runner", spy)
    fuzz.fuzz("6.1", str(tmp_path / "o"), count=2, jobs=4096, modes=["x86_64"], progress=False)
    assert seen == [2]


def test_plot_output_checked_by_type_and_written_whole(tmp_path, monkeypatch):
    """A picture to a directory, a FIFO, or a file that cannot be written: one line naming
    the full path, before the emulation runs; a failed write leaves no partial file
    ('File or stream is not seekable.' named nothing)."""
    pytest.importorskip("matplotlib")
    from emu.tools.plot import PlotError, check_output, save
    (tmp_path / "d.png").mkdir()
    os.mkfifo(tmp_path / "f.png")
    for name, text in (("d.png", "is a directory"), ("f.png", "not a regular file")):
        with pytest.raises(PlotError, match=text) as e:
            check_output(str(tmp_path / name))
        assert str(tmp_path / name) in str(e.value)
    from matplotlib.figure import Figure
    fig = Figure()
    out = tmp_path / "ok.png"
    save(fig, str(out))
    assert out.read_bytes()[:4] == b"\x89PNG" and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    def full(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(Figure, "savefig", full)
    with pytest.raises(PlotError, match="No space left on device") as e:
        save(fig, str(tmp_path / "new.png"))
    assert str(tmp_path / "new.png") in str(e.value)
    assert not (tmp_path / "new.png").exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("argv", [
    ["run", "--plot", "DIR.png"], ["run", "--plot", "FIFO.png"], ["plot", "DIR.png"],
    ["diff", "--profile", "3.13", "--profile", "4.1", "--plot", "FIFO.png"],
])
def test_plot_bad_outputs_on_the_command_line(argv, tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "DIR.png").mkdir()
    os.mkfifo(tmp_path / "FIFO.png")
    assert main(argv) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(tmp_path) in line


def test_config_gzip_bomb_and_sparse_files(tmp_path, capsys):
    """A .config.gz inflating past the cap and a sparse 6 GiB System.map: one line each, no
    more memory than the cap."""
    import zlib
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"CONFIG_X86_PAE=y\n" * 65536
    (tmp_path / "bomb.gz").write_bytes(b"".join(c.compress(chunk) for _ in range(80)) + c.flush())
    with open(tmp_path / "big.map", "wb") as f:
        f.truncate(6 << 30)
    assert main(["run", "--config", str(tmp_path / "bomb.gz")]) == 2
    assert "inflates to more than" in _one_error_line(capsys.readouterr().err)
    assert main(["run", "--system-map", str(tmp_path / "big.map")]) == 2
    assert str(tmp_path / "big.map") in _one_error_line(capsys.readouterr().err)


def test_fuzz_smallest_max_ram(tmp_path):
    """--max-ram 64M (the smallest it takes) was 'empty range for randrange() (512, 65, -447)'
    in every family whose smallest machine is larger (an internal error, exit 70)."""
    from emu.tools.fuzz import fuzz
    s = fuzz("6.1", str(tmp_path / "o"), count=60, max_ram=64 << 20, modes=["x86_64"], progress=False)
    assert s.maps == 60


def test_size_cap_message_tells_a_file_just_over_the_cap(tmp_path):
    """A file one byte over the 64 MiB cap said 'is 64.0 MiB, larger than the 64 MiB limit'."""
    from emu.inputs.files import MAX_INPUT_BYTES, InputFileError, check_input_path
    f = tmp_path / "x"
    with open(f, "wb") as fh:
        fh.truncate(MAX_INPUT_BYTES + 1)
    with pytest.raises(InputFileError) as e:
        check_input_path(f, "System.map")
    assert f"{MAX_INPUT_BYTES + 1} bytes, larger than the 64 MiB ({MAX_INPUT_BYTES} bytes) limit" in str(e.value)


@pytest.mark.parametrize("state", [b"[]", b"5", b"null", b'{"spec": [], "schema": 1}', b'"x"'])
def test_fuzz_resume_from_a_damaged_state_is_one_line(state, tmp_path, capsys):
    """--resume with a state.json that is a list (or any non-object) was an internal
    AttributeError."""
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "state.json").write_bytes(state)
    assert main(["fuzz", "--count", "1", "--resume", "--out", str(tmp_path / "o"), "--modes", "x86_64"]) == 2
    assert "state.json" in _one_error_line(capsys.readouterr().err)


def test_fuzz_state_with_the_right_spec_but_damaged_fields(tmp_path):
    from emu.tools.campaign import Campaign, Spec, StateError
    spec = Spec("6.1", 0, None, ["x86_64"], 64 << 30, None, 10, 0.5, 2048, None)
    c = Campaign(spec, str(tmp_path))
    c.save()
    import json as _j
    doc = _j.loads((tmp_path / "state.json").read_text())
    for bad in ({"next_index": -1}, {"next_index": "x"}, {"snapshots": []}, {"outcomes": 5}):
        (tmp_path / "state.json").write_text(_j.dumps(dict(doc, **bad)))
        with pytest.raises(StateError, match="damaged campaign state"):
            Campaign(spec, str(tmp_path))


def test_dump_json_is_guarded_before_the_listing(capsys):
    """`emu dump --json` of a 4 KiB-page map held every entry as a dict (7.5 GiB for this
    machine's 24 GiB map): killed at the memory limit.  The entries are counted first and
    the listing refused, one line, as the emulation's estimate is."""
    from emu.kernel.estimate import JSON_ENTRY_BYTES
    assert main(["dump", "--json", "--debug-pagealloc", "--max-memory", "64M"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "page-table entries needs about" in line and "--max-memory" in line
    assert JSON_ENTRY_BYTES >= 1150            # measured peak per entry


@pytest.mark.parametrize("address", ["\u6f22", "inproc://x", "[::1", "tcp://host:99999", "tcp://h:0", "x", "",
                                     "tcp://", "04,xb,5=7@1"])
def test_fuzz_scheduler_address_is_checked_first(address, tmp_path, capsys):
    """A --scheduler dask cannot parse was an internal ValueError ('missing port number',
    'not enough values to unpack', 'invalid literal for int()') once dask is installed."""
    with pytest.raises(SystemExit) as e:
        main(["fuzz", "--count", "1", "--out", str(tmp_path / "o"), "--scheduler", address])
    assert e.value.code == 2
    assert "--scheduler" in _one_error_line(capsys.readouterr().err)


def test_fuzz_scheduler_address_forms():
    from emu.tools.fuzz import _scheduler
    for ok in ("tcp://127.0.0.1:8786", "tls://host.example:8786", "host:8786", "tcp://[::1]:8786"):
        assert _scheduler(ok) == ok


@pytest.mark.parametrize("engine", ["cython", "python"])
def test_root_table_far_above_ram_is_emulated_not_an_internal_error(engine):
    """swapper_pg_dir_addr (or a static table) above the RAM and the BRK: the store covers it
    (it raised PhysMemError, exit 70); the checker says the table lies outside the image."""
    from emu import emulate
    from emu.inputs.e820 import EMBEDDED_DEFAULT
    r = emulate(EMBEDDED_DEFAULT.copy(), "6.1", BootParams(swapper_pg_dir_addr=2607 << 30), engine=engine)
    assert r.kernel.pgd_pfn == (2607 << 30) >> 12
    assert any("outside the kernel image" in str(v) for v in r.verify.violations)


def test_max_memory_above_the_host_is_capped_by_the_host(monkeypatch):
    """--max-memory 16E does not let a layout run into the host's out-of-memory (the long
    bad-input campaign: `emu dump --json --debug-pagealloc --max-memory 0xffffffffffffffff`
    under a 2 GiB address-space limit was an internal 'out of host memory'): the guard takes
    what the host can give, and says so."""
    from emu.kernel import estimate
    monkeypatch.setattr(estimate, "host_ceiling", lambda: 1 << 30)
    assert estimate.effective_limit(None)[1] == "--max-memory"
    assert estimate.effective_limit(512 << 20) == (512 << 20, "--max-memory")
    limit, named = estimate.effective_limit((1 << 64) - 1)
    assert limit == 1 << 30 and "what this host can give" in named
    with pytest.raises(estimate.MemoryLimitError, match="what this host can give"):
        estimate.guard_entries(4_000_000, (1 << 64) - 1)


@pytest.mark.parametrize("arch", ["i386", "i386-pae"])
def test_lowmem_below_the_kernel_image_is_one_line(arch, capsys):
    """``--param lowmem_limit=0xfff`` (found by the bad-input campaign): lowmem ended below the
    kernel image, the mapping asked for a range outside the i386 direct map and the run ended
    in an internal error.  It is one line now, naming lowmem's end and the image's."""
    assert main(["run", "--arch", arch, "--param", "lowmem_limit=0xfff"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if not ln.startswith("emu: assumed ")]
    assert len(err) == 1 and "lowmem ends at 0x0 (MAXMEM 0xfff, the lowmem_limit input), below the end of the " \
        "kernel image and its BRK" in err[0], err
    assert main(["run", "--arch", arch, "--param", "lowmem_limit=0x8000000"]) == 0   # 128 MiB: boots
