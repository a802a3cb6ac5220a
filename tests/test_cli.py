"""The emu command line: output, JSON, exit codes, and clear errors on bad input."""
import json
import os
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
    assert d["schema"] == "emu.run/1"
    for key in ("profile", "arch", "mode", "cr3", "page_offset", "log", "panic", "pgtable_pages", "direct_map",
                "verify", "windows", "calls"):
        assert key in d
    assert d["profile"] == "3.13" and d["arch"] == "x86_64" and d["panic"] is None
    assert d["page_offset"] == "0xffff880000000000" and d["cr3"].startswith("0x")
    assert d["verify"]["ok"] is True
    assert d["log"][0] == "init_memory_mapping: [mem 0x00000000-0x000fffff]"
    assert d["pgtable_pages"]["by_source"]["brk"] >= 3
    assert d["direct_map"]["4K"] == 1 << 20 or "4K" in d["direct_map"]


def test_profiles_lists_differences(capsys):
    code, out, _ = run(["profiles"], capsys)
    assert code == 0
    assert "3.19" in out and "step_rule: 'old' -> 'new'" in out
    code, out, _ = run(["profiles", "--json"], capsys)
    d = json.loads(out)
    assert d["schema"] == "emu.profiles/1" and d["profiles"]["5.8"]["log_brk"] == "none"
    assert d["profiles"]["6.1"]["page_offset"] == "0xffff888000000000"


def test_translate_json(capsys):
    code, out, _ = run(["translate", "--json", "0xffff888000001000", "0xffff888000000000", "0x1000",
                        "0x8000000000000000"], capsys)
    assert code == 0
    d = json.loads(out)
    assert d["schema"] == "emu.translate/1" and d["access"] == "r"
    recs = d["translations"]
    assert recs[0]["pa"] == "0x1000" and recs[0]["page_size"] == "4K" and "NX" in recs[0]["flags"]
    assert [w["level"] for w in recs[0]["walk"]] == ["pgd", "pud", "pmd", "pte"]
    assert recs[2]["pa"] is None and recs[2]["fault"] == "#PF" and recs[2]["error_code"] == 0
    assert recs[2]["fault_level"] == "pgd" and recs[2]["error"] == "not-present read (kernel)"
    assert recs[3]["fault"] == "#GP" and recs[3]["walk"] == []


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


def test_console_script_help_has_examples(tmp_path):
    # outside the checkout (which would shadow the installed emu): python -m and the console script
    out = subprocess.run([sys.executable, "-m", "emu.tools.cli", "run", "--help"], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode == 0 and "examples:" in out.stdout
    script = os.path.join(os.path.dirname(sys.executable), "emu")
    if os.path.exists(script):
        out = subprocess.run([script, "plot", "--help"], capture_output=True, text=True, cwd=tmp_path)
        assert out.returncode == 0 and "examples:" in out.stdout


def test_unbuilt_checkout_fails_with_one_line(tmp_path):
    """A source tree without its compiled extension on sys.path (a checkout shadowing the
    installed emu) refuses with one line saying how to build, instead of running the
    pure-Python engine unasked or failing later with a traceback."""
    import shutil

    import emu
    src = os.path.dirname(emu.__file__)
    shutil.copytree(src, tmp_path / "emu", ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__", "*.c"))
    env = {k: v for k, v in os.environ.items() if k != "EMU_PURE"}
    out = subprocess.run([sys.executable, "-m", "emu.tools.cli", "run"], capture_output=True, text=True,
                         cwd=tmp_path, env=env)
    assert out.returncode != 0 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("emu: error: emu's compiled loops (emu._fast) "
                                                                  "are not built in ")
    assert "pip install -e" in out.stderr and "build_ext --inplace" in out.stderr
    assert "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-c", "import emu"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert out.returncode != 0 and out.stderr.count("\n") == 1
    # EMU_PURE=1 asks for the pure-Python loops, which need the compiled module's enums too
    env["EMU_PURE"] = "1"
    out = subprocess.run([sys.executable, "-m", "emu.tools.cli", "run"], capture_output=True, text=True,
                         cwd=tmp_path, env=env)
    assert out.returncode != 0 and out.stderr.count("\n") == 1 and "build_ext --inplace" in out.stderr
    # a program that catches the ImportError gets it as usual
    out = subprocess.run([sys.executable, "-c", "try:\n import emu\nexcept ImportError as e:\n print(type(e).__name__)"],
                         capture_output=True, text=True, cwd=tmp_path, env=env)
    assert out.returncode == 0 and out.stdout == "NotBuiltError\n"


def test_meminfo_lines_in_the_kernel_format(capsys):
    code, out, _ = run(["run"], capsys)
    lines = [ln for ln in out.splitlines() if ln.startswith("DirectMap")]
    # seq_printf(m, "DirectMap4k:    %8lu kB\n", ...) (arch/x86/mm/pageattr.c, pat/set_memory.c)
    assert lines == ["DirectMap4k:        5760 kB", "DirectMap2M:     2938880 kB", "DirectMap1G:    13631488 kB"]


def test_run_steps_table(capsys):
    code, out, _ = run(["run", "--steps", "--profile", "seed"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "e820 map (as the kernel prints it):"
    assert lines[1] == "  BIOS-e820: [mem 0x0000000000000000-0x0000000000000fff] reserved"
    rows = [ln for ln in lines if ln[:3].strip().isdigit()]
    assert rows[0].split()[:2] == ["0", "-"]                   # the ISA call: no window
    assert "[mem 0x46ee00000-0x46effffff]" in rows[1] and " 2M " in rows[1] and "brk pmd:1" in rows[1]
    assert " 64M " in rows[2] and " 2G " in rows[3] and " 64G " in rows[4]     # the old rule: steps x32
    assert lines[-1] == "page-table pages: image 3, brk 4, memblock 3"


def test_diff_is_a_unified_diff(capsys):
    code, out, _ = run(["diff", "--profile", "seed", "--profile", "3.10"], capsys)
    assert code == 1
    lines = out.splitlines()
    assert lines[:2] == ["--- seed", "+++ 3.10"] and lines[2].startswith("@@ ")
    marked = [ln for ln in lines if ln[:1] in ("+", "-") and not ln.startswith(("---", "+++"))]
    # only what differs is marked: the BRK lines the seed does not print
    assert marked and all(ln.startswith("+BRK [") for ln in marked)
    assert " init_memory_mapping: [mem 0x46ee00000-0x46effffff]" in lines
    assert "  seed  10 (PGD 1, PUD 1, PMD 4, PTE 4); from brk 4, memblock 3, image 3" in lines
    assert "  3.10  10 (PGD 1, PUD 1, PMD 4, PTE 4); from brk 6, memblock 3, image 1" in lines
    assert not any("{" in ln for ln in lines)                   # no Python dicts


def test_diff_identical_and_width(capsys):
    code, out, _ = run(["diff", "--profile", "6.1", "--profile", "6.1.137"], capsys)
    assert code == 0 and out.splitlines()[0] == "lines: identical (21 lines)"
    assert out.splitlines()[-1] == "direct map: identical"
    with pytest.raises(SystemExit) as e:
        main(["diff", "--profile", "seed", "--profile", "3.10", "--width", "5"])
    assert e.value.code == 2 and "--width must be 0 (no limit) or 20..1000" in capsys.readouterr().err
    code, out, _ = run(["diff", "--profile", "seed", "--profile", "3.10", "--width", "24"], capsys)
    assert max(len(ln) for ln in out.splitlines()) <= 24


def test_translate_text_level_by_level(capsys):
    code, out, _ = run(["translate", "0xffff888000100000", "0x1000", "0x8000000000000000"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "0xffff888000100000 -> 0x0000000000100000  4K  P RW A D G NX"
    assert [ln.split()[0] for ln in lines[1:5]] == ["PGD", "PUD", "PMD", "PTE"]
    assert lines[1].startswith("  PGD  table 0x") and "[273] = 0x" in lines[1]
    assert lines[4].endswith("= 0x8000000000100163  P RW A D G NX")
    assert lines[5] == "0x0000000000001000 -> #PF error code 0x0 (not-present read (kernel)) at PGD"
    assert lines[6].endswith("= 0x0000000000000000  not present")
    assert lines[7] == "0x8000000000000000 -> #GP (non-canonical address)"


def test_translate_i386_sizes_and_widths(capsys):
    code, out, _ = run(["translate", "--arch", "i386", "--profile", "3.13", "0xc0100000", "0xc1000000"], capsys)
    lines = out.splitlines()
    assert lines[0] == "0xc0100000 -> 0x00100000  4K  P RW A D G"
    assert lines[1].startswith("  PGD  table 0x") and lines[1].split("= ")[1].startswith("0x") \
        and len(lines[1].split("= ")[1].split()[0]) == 10                   # a 4-byte entry: 8 digits
    assert lines[3] == "0xc1000000 -> 0x01000000  4M  P RW A D PSE G"
    code, _, err = run(["translate", "--arch", "i386", "0x1ffffffff"], capsys)
    assert code == 2 and err == "emu: error: 0x1ffffffff is not a 32-bit virtual address\n"


def test_public_api_names():
    import emu
    assert emu.get_profile("6.1").name == "6.1" and "seed" in emu.PROFILES
    assert emu.BootParams().arch == "x86_64" and emu.CpuFeatures().nx
    from emu.inputs.e820 import EMBEDDED_DEFAULT
    r = emu.emulate(EMBEDDED_DEFAULT.copy(), emu.get_profile("6.1"))
    assert isinstance(r, emu.Result) and r.verify.ok
    with pytest.raises(AttributeError):
        _ = emu.nonsense
