"""`emu oracle` validates before it fetches or boots anything (classes the bad-input
campaign found with QEMU, the network and apt stubbed out): a --kernel that is a device or
too big is refused by type and size, never read whole; --timeout must be a positive finite
number; a bad --set is one line (it was an internal ValueError, and `oracle run` checked it
only after booting the guest)."""
from __future__ import annotations

import pytest

from emu.tools.cli import main


def _rc(argv) -> int:
    try:
        return main(argv)
    except SystemExit as e:          # argparse's one-line usage errors
        return e.code


def _line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("emu: error: "), err
    return lines[0]


@pytest.fixture
def no_boot(monkeypatch):
    """Fail the test if the guest would be fetched or booted."""
    from emu.tools.oracle import cli, fetch, qemu

    def boom(*a, **k):
        raise AssertionError("reached the boot")
    for mod, name in ((qemu, "run_guest"), (fetch, "fetch"), (fetch, "cached"), (fetch, "write_symbols"),
                      (cli, "_kernel")):
        monkeypatch.setattr(mod, name, boom)


@pytest.mark.parametrize("argv,text", [
    (["oracle", "run", "--set", "nosuch=1"], "--set: profile has no field 'nosuch'"),
    (["oracle", "run", "--cpu", ""], "a QEMU -cpu model"),
    (["oracle", "run", "--cpu", "qemu64,+nonsense"], "unknown CPU feature '+nonsense'"),
    (["oracle", "run", "--serial", ""], "a file to write the console log to"),
    (["oracle", "run", "--serial", "/nonexistent-dir/serial.log"], "does not exist"),
    (["oracle", "fetch", "--release", ""], "names no release"),
    (["oracle", "fetch", "--release", ","], "names no release"),
    (["oracle", "fetch", "--flavour", ""], "names no flavour"),
    (["oracle", "matrix", "--set", "x"], "--set needs FIELD=VALUE, not 'x'"),
    (["oracle", "run", "--set", "x"], "--set needs FIELD=VALUE, not 'x'"),
    (["oracle", "matrix", "--set", "nosuch=1"], "--set: profile has no field 'nosuch'"),
    (["oracle", "run", "--timeout", "nan"], "positive finite"),
    (["oracle", "run", "--timeout", "-1"], "positive finite"),
    (["oracle", "matrix", "--timeout", "inf"], "positive finite"),
])
def test_refused_before_the_boot(argv, text, no_boot, capsys):
    assert _rc(argv) == 2
    assert text in _line(capsys.readouterr().err)


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/urandom", "/"])
def test_kernel_image_checked_by_type(path, capsys, monkeypatch):
    from emu.tools.oracle import fetch
    monkeypatch.setattr(fetch, "write_symbols", lambda *a, **k: (_ for _ in ()).throw(AssertionError("read")))
    assert main(["oracle", "run", "--kernel", path]) == 2
    assert path.rstrip("/") in _line(capsys.readouterr().err) or path == "/"


def test_kernel_image_over_the_cap_is_not_read(tmp_path, capsys):
    big = tmp_path / "bzImage"
    with open(big, "wb") as f:
        f.truncate(6 << 30)
    assert main(["oracle", "run", "--kernel", str(big)]) == 2
    assert str(big) in _line(capsys.readouterr().err)
