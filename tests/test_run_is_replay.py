"""`emu run --dmesg LOG` and `emu replay LOG` describe and emulate a log the same way.

Both go through emu.boot.describe + emu.boot.emulate.run; this checks it on every
log of the corpus: the same printed lines, the same assumptions, the same tables
(page-table pages per level, CR3, DirectMap counters) and the same verification.
"""
import json

import pytest

from emu.tools.cli import main
from emu.tools.replay import replay_file

from conftest import corpus_dir


def _logs():
    d = corpus_dir()
    return sorted(p.name for p in d.glob("*.log")) if d.is_dir() else []


@pytest.mark.parametrize("name", _logs() or ["<no corpus>"])
def test_run_dmesg_equals_replay(corpus, name, capsys):
    if name == "<no corpus>":
        pytest.skip("no corpus")
    path = corpus / name
    r = replay_file(path)
    if r.error:
        # a log replay cannot describe is one run refuses too, with the same reason
        assert main(["run", "--dmesg", str(path), "--json"]) == 2
        assert r.error.split(": ")[-1] in capsys.readouterr().err
        return
    assert main(["run", "--dmesg", str(path), "--json"]) == 0
    out = capsys.readouterr()
    d = json.loads(out.out)
    if r.got != d["log"]:
        # a capture without KERN_DEBUG lines: replay compares the lines it could show
        it = iter(d["debug_log"])
        assert all(line in it for line in r.got), "replay's lines are not run's, in order"
    assert [a["text"] for a in d["assumptions"]] == r.assumptions
    for a in r.assumptions:  # every assumption is on stderr too
        assert f"emu: {a}" in out.err
    if d["panic"] is None:
        assert d["verify"]["ok"] is bool(r.verify_ok)


def test_run_dmesg_tables_equal_replay_tables(corpus):
    """The same table bytes: a digest of every written frame, both ways in."""
    from emu.boot.describe import describe
    from emu.boot.emulate import run
    from emu.boot.describe import read_log
    from emu.tools.options import add_layout_options, layout
    import argparse

    names = _logs()[:12]
    for name in names:
        log = read_log(corpus / name)
        a = run(describe(log))
        p = argparse.ArgumentParser()
        add_layout_options(p)
        args = p.parse_args(["--dmesg", str(corpus / name)])
        b = run(layout(args))
        assert _digest(a.kernel.phys) == _digest(b.kernel.phys), name


def _digest(mem) -> str:
    import hashlib
    h = hashlib.sha256()
    for pfn in sorted(int(p) for p in mem.backed_pfns()):
        h.update(pfn.to_bytes(8, "little") + mem.image_bytes(pfn))
    return h.hexdigest()
