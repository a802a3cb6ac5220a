"""Every example of every ``emu COMMAND --help`` runs and does what its comment says.

The examples are read from the parsers' epilogs (so a new example is tested the day it is
written); the files they name (``map.json``, ``boot.log``, ...) are made in a scratch
directory: a real boot log of the corpus, the 64 TiB map of docs/.  Long fuzz campaigns
run with a small ``--count`` instead of their minutes; ``emu oracle`` examples boot QEMU
and are left to tests/test_oracle*.py.
"""
from __future__ import annotations

import glob
import re
import json
import shlex
import shutil
from pathlib import Path

import pytest

from emu.tools.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
#: the commands whose examples run here
COMMANDS = ("run", "check", "dump", "translate", "diff", "plot", "replay", "profiles", "fuzz")
#: exit codes that are answers, not failures: diff (1: the profiles differ), replay (1: a log
#: FAILs), fuzz (1: new findings), check (1: violations)
ANSWER_CODES = {"diff": {1}, "replay": {1}, "fuzz": {1}, "check": {1}}


def examples(command: str):
    sub = next(a for a in build_parser()._subparsers._group_actions if a.choices)   # type: ignore[union-attr]
    text = sub.choices[command].epilog or ""
    out = []
    for line in text.split("examples:", 1)[-1].splitlines():
        if line.startswith("  emu "):
            cmd = re.split(r"\s{2,}", line.strip())[0]         # two blanks or more start the comment
            out.append(cmd)
    return out


CASES = [(c, ex) for c in COMMANDS for ex in examples(c)]


def test_every_command_has_examples():
    assert {c for c, _ in CASES} == set(COMMANDS)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory, corpus):
    d = tmp_path_factory.mktemp("examples")
    shutil.copy(corpus / "3.13.0-24-generic_x86_64_id56680730545.log", d / "boot.log")
    shutil.copy(corpus / "3.10.0-rc7-00925-g4c5c6fc_i686_id34295890651.log", d / "rand.log")
    (d / "logs").mkdir()
    for name in ("3.13.0-36-generic_x86_64_id57003958792.log", "3.8.0-29-generic_x86_64_id56932244926.log"):
        shutil.copy(corpus / name, d / "logs" / name)
    (d / "rand").mkdir()
    shutil.copy(corpus / "3.10.0-rc7-00925-g4c5c6fc_i686_id34295890651.log", d / "rand")
    shutil.copy(ROOT / "tests" / "corpus_options.json", d / "options.json")
    shutil.copy(ROOT / "docs" / "64tib.e820.json", d / "big.json")
    (d / "map.json").write_text(json.dumps([{"addr": "0x0", "size": "0x9f000", "type": 1},
                                            {"addr": "0x100000", "size": "0xbff00000", "type": 1},
                                            {"addr": "0x100000000", "size": "0x140000000", "type": 1}]))
    return d


def argv_of(cmd: str, d: Path):
    words = shlex.split(cmd)
    assert words[0] == "emu"
    argv = []
    redirect = None
    for w in words[1:]:
        if w == ">":
            redirect = True
            continue
        if redirect is True:
            redirect = d / w
            continue
        argv.extend(sorted(glob.glob(str(d / w))) if "*" in w else [w])
    if argv[0] == "fuzz":                 # minutes-long campaigns: a few maps of the same campaign
        for opt in ("--seconds", "--count"):
            if opt in argv:
                i = argv.index(opt)
                argv[i:i + 2] = []
        if "--scheduler" in argv:
            pytest.skip("needs a Dask cluster (tests/test_campaign.py starts one)")
        argv += ["--count", "16"]
    return argv, redirect


@pytest.mark.parametrize("command,example", CASES, ids=[e for _, e in CASES])
def test_help_example(command, example, scratch, monkeypatch, capsys):
    monkeypatch.chdir(scratch)
    argv, redirect = argv_of(example, scratch)
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 0 or rc in ANSWER_CODES.get(command, ()), (example, rc, err[-500:])
    assert "Traceback" not in err and "internal error" not in err
    if redirect is not None:
        redirect.write_text(out)
    if "--json" in argv or redirect is not None:
        assert json.loads(out if redirect is None else redirect.read_text())["schema"].startswith("emu.")
    elif command != "fuzz" or "--json" in argv:
        assert out.strip() or "--plot" in argv or command == "plot", example
    for w in argv:                         # the files it says it writes
        if w.endswith((".png", ".svg")):
            assert (scratch / w).stat().st_size > 1000, w
    if command == "dump" and "raw" in argv:
        assert (scratch / "out" / "meta.json").exists() and (scratch / "out" / "memory.img").exists()
    if command == "run" and "--debug" in argv:
        assert len(out.splitlines()) > main_lines(argv, capsys), "--debug shows the pr_debug lines"


def main_lines(argv, capsys):
    assert main([a for a in argv if a != "--debug"]) == 0
    return len(capsys.readouterr().out.splitlines())
