"""Replay of the real boot logs in the corpus (../shared/corpus/dmesg)."""
import csv

import pytest

from emu.replay import replay_file

from conftest import corpus_dir

#: logs emu cannot reproduce yet, with the cause (each one is named in the closing notes)
KNOWN_FAILURES: dict = {}


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
    if name in KNOWN_FAILURES:
        pytest.xfail(KNOWN_FAILURES[name]) if not r.passed else None
        pytest.fail(f"{name} passes now: remove it from KNOWN_FAILURES")
    assert r.passed, r.line() + "\n" + r.diff_text()
    assert r.verify_ok


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
    from emu.replay import layout_from_log, read_log
    from emu.emulator import emulate
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


def test_32bit_logs_are_reported_not_crashed(corpus):
    r = replay_file(corpus / "3.13.0-24-generic_i686_id56786116951.log")
    assert not r.passed and "32-bit" in r.error


def test_debug_pagealloc_option_changes_page_lines(corpus):
    r = replay_file(corpus / "3.13.0-24-generic_x86_64_id56680730545.log", debug_pagealloc=True)
    assert not r.passed
    assert all(l.endswith("page 4k") for l in r.got if l.startswith(" [mem"))
