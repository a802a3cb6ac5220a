"""The emu command line: output, JSON, exit codes, and clear errors on bad input."""
import json
import subprocess
import sys

import pytest

from emu.tools.cli import main

from conftest import corpus_dir


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_run_default_layout(capsys):
    code, out, err = run(["run"], capsys)
    assert code == 0, err
    assert "init_memory_mapping" not in out  # 6.1 prints those with pr_debug only
    assert "Using GB pages for direct mapping" in out
    assert "DirectMap1G:" in out and "verify: OK" in out


def test_run_debug_shows_pr_debug_lines(capsys):
    code, out, _ = run(["run", "--debug", "--profile", "6.6"], capsys)
    assert code == 0
    assert "init_memory_mapping: [mem 0x00000000-0x000fffff]" in out
    assert " [mem 0x00000000-0x000fffff] page 4k" in out


def test_run_json(capsys):
    code, out, _ = run(["run", "--json", "--profile", "3.13", "--no-gbpages"], capsys)
    assert code == 0
    d = json.loads(out)
    for key in ("profile", "arch", "log", "panic", "pgtable_pages", "direct_map", "verify"):
        assert key in d
    assert d["profile"] == "3.13" and d["arch"] == "x86_64" and d["panic"] is None
    assert d["verify"]["ok"] is True
    assert d["log"][0] == "init_memory_mapping: [mem 0x00000000-0x000fffff]"
    assert d["pgtable_pages"]["by_source"]["brk"] >= 3


def test_profiles_lists_differences(capsys):
    code, out, _ = run(["profiles"], capsys)
    assert code == 0
    assert "3.19" in out and "step_rule: 'old' -> 'new'" in out
    code, out, _ = run(["profiles", "--json"], capsys)
    assert json.loads(out)["5.8"]["log_brk"] == "none"


def test_translate_json(capsys):
    code, out, _ = run(["translate", "--json", "0xffff888000001000", "0xffff888000000000", "0x1000",
                        "0x8000000000000000"], capsys)
    assert code == 0
    recs = json.loads(out)
    assert recs[0]["pa"] == 0x1000 and recs[0]["size"] == 4096 and "NX" in recs[0]["flags"]
    assert recs[2]["pa"] is None and recs[2]["fault"] == 0   # not present, supervisor read
    assert recs[3]["fault"] == "#GP"


@pytest.mark.parametrize("content,needle", [
    ("BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable\ngarbage line\n", "garbage"),
    ('[{"addr": 4096, "size": 0, "type": 1}]', "size"),
    ('[{"addr": "0x100000", "size": "0x1000"', "JSON"),
    ("", "no e820"),
])
def test_bad_e820_is_one_line_exit_2(tmp_path, capsys, content, needle):
    f = tmp_path / "map.txt"
    f.write_text(content)
    code, out, err = run(["run", "--e820", str(f)], capsys)
    assert code == 2
    assert err.startswith("emu: error: ") and err.count("\n") == 1
    assert needle.lower() in err.lower()
    assert "Traceback" not in err


def test_missing_file_and_bad_log(tmp_path, capsys):
    code, _, err = run(["run", "--e820", str(tmp_path / "nope.json")], capsys)
    assert code == 2 and "No such file" in err
    log = tmp_path / "x.log"
    log.write_bytes(b"\x00\xff binary junk\n")
    code, _, err = run(["run", "--dmesg", str(log)], capsys)
    assert code == 2 and err.count("\n") == 1


def test_bad_range_option_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "--reserve", "0x2000-0x1000"])
    assert e.value.code == 2
    assert "inverted" in capsys.readouterr().err


def test_memory_guard_refuses_with_estimate(tmp_path, capsys):
    f = tmp_path / "big.json"
    f.write_text(json.dumps([{"addr": 0x100000, "size": (16 << 40), "type": 1}]))
    code, _, err = run(["run", "--e820", str(f), "--debug-pagealloc", "--max-memory", "64M"], capsys)
    assert code == 2 and "GiB of page tables" in err and "--max-memory" in err


def test_panic_is_a_result_not_a_crash(tmp_path, capsys):
    f = tmp_path / "m.json"
    f.write_text(json.dumps([{"addr": 0, "size": 0x9f000, "type": 1},
                             {"addr": 0x100000, "size": 0x7ff00000, "type": 1},
                             {"addr": 1 << 40, "size": 1 << 30, "type": 1}]))
    code, out, _ = run(["run", "--e820", str(f), "--profile", "3.9", "--debug-pagealloc", "--json"], capsys)
    d = json.loads(out)
    assert code == 0 and d["panic"] == "Kernel panic - not syncing: alloc_low_page: ran out of memory"


def test_replay_cli(tmp_path, capsys):
    d = corpus_dir()
    if not d.is_dir():
        pytest.skip("no corpus")
    good = d / "3.13.0-24-generic_x86_64_id56680730545.log"
    bad = tmp_path / "edited.log"
    bad.write_text(good.read_text().replace("[mem 0x00200000-0x5fffffff] page 2M", "[mem 0x00200000-0x5fffffff] page 4k"))
    code, out, _ = run(["replay", str(good), str(bad)], capsys)
    assert code == 1
    lines = out.strip().splitlines()
    assert lines[0].startswith("PASS 3.13.0-24") and lines[1].startswith("FAIL edited.log")
    assert "expected ' [mem 0x00200000-0x5fffffff] page 4k', emu ' [mem 0x00200000-0x5fffffff] page 2M'" in lines[1]
    assert lines[-1] == "1 passed, 1 failed"
    code, out, _ = run(["replay", "--json", str(good)], capsys)
    assert code == 0 and json.loads(out)["passed"] == 1


def test_console_script_help_has_examples():
    out = subprocess.run([sys.executable, "-m", "emu.tools.cli", "run", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "examples:" in out.stdout
