"""Replay of the real boot logs in the corpus (../shared/corpus/dmesg)."""
import csv

import pytest

from emu.tools.replay import replay_file

from conftest import corpus_dir

def _index():
    d = corpus_dir()
    p = d / "index.tsv"
    if not p.exists():
        return []
    with open(p) as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _format_a_x86_64():
    return [r["filename"] for r in _index() if r["arch"] == "x86_64" and r["format"] == "a"]


@pytest.mark.parametrize("name", _format_a_x86_64() or ["<no corpus>"])
def test_replay_x86_64_log(corpus, name):
    if name == "<no corpus>":
        pytest.skip("no corpus")
    r = replay_file(corpus / name)
    assert r.passed, r.line() + "\n" + r.diff_text()
    assert r.verify_ok


def _options():
    import json
    from pathlib import Path
    with open(Path(__file__).with_name("corpus_options.json")) as f:
        d = json.load(f)
    out = {}
    for name, v in d.items():
        if name.startswith("_"):
            continue
        o = dict(v["options"])
        if "params_override" in o:
            o["params_override"] = {k: tuple(x) if k == "kmap_range" else x for k, x in o["params_override"].items()}
        out[name] = o
    return out


def _all_logs():
    d = corpus_dir()
    return sorted(p.name for p in d.glob("*.log")) if d.is_dir() else []


@pytest.mark.parametrize("name", _all_logs() or ["<no corpus>"])
def test_replay_every_log(corpus, name):
    """Every log of the corpus, with the build options corpus_options.json names (and why)."""
    if name == "<no corpus>":
        pytest.skip("no corpus")
    r = replay_file(corpus / name, **_options().get(name, {}))
    assert r.passed, r.line() + "\n" + r.diff_text()
    assert r.verify_ok is not False, r.line()


def test_default_pass_rate(corpus):
    """Without any option, >= 90 % of all logs (the options only describe kernel builds)."""
    names = _all_logs()
    passed = sum(replay_file(corpus / n).passed for n in names)
    assert len(names) >= 40 and passed / len(names) >= 0.9, (passed, len(names))
    assert passed >= len(names) - len(_options())


def test_replay_pass_rate(corpus):
    names = _format_a_x86_64()
    passed = sum(replay_file(corpus / n).passed for n in names)
    assert len(names) >= 15
    assert passed / len(names) >= 0.95


def test_xen_pv_guest_reserves_extra_memory(corpus):
    name = "3.13.0-48-generic_x86_64_id48602492841.log"
    r = replay_file(corpus / name)
    assert r.passed and r.got[1] == "init_memory_mapping: [mem 0x26400000-0x265fffff]"
    # without the Xen extra-memory reservation real_end is the top of RAM and the replay fails
    from emu.boot.describe import layout_from_log, read_log
    from emu.boot.emulate import emulate
    log = read_log(corpus / name)
    e820, edits, params, version = layout_from_log(log)
    assert params.xen_extra_mem == 8 << 20
    params.xen_extra_mem = None
    res = emulate(e820, version, params, log_edits=edits)
    assert "init_memory_mapping: [mem 0x26c00000-0x26dfffff]" in res.debug_log


@pytest.mark.parametrize("name", [r["filename"] for r in _index() if r["arch"] == "x86_64" and r["format"] == "b"]
                         or ["<no corpus>"])
def test_replay_prepatch_x86_64_log(corpus, name):
    if name == "<no corpus>":
        pytest.skip("no corpus")
    r = replay_file(corpus / name)
    assert r.passed, r.line() + "\n" + r.diff_text()


def test_32bit_logs_are_replayed(corpus):
    """i686 logs go through the i386 emulation (tests/test_i386.py has the full set)."""
    r = replay_file(corpus / "3.13.0-24-generic_i686_id56786116951.log")
    assert r.passed and r.verify_ok, r.line()


def test_debug_pagealloc_option_changes_page_lines(corpus):
    r = replay_file(corpus / "3.13.0-24-generic_x86_64_id56680730545.log", debug_pagealloc=True)
    assert not r.passed
    assert all(l.endswith("page 4k") for l in r.got if l.startswith(" [mem"))
