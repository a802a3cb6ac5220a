"""``emu replay --options FILE``: build options per log name from a file (the format of
tests/corpus_options.json), typed; a bad file is one line and exit 2."""
import subprocess
import sys
from pathlib import Path

import pytest

OPTIONS = Path(__file__).with_name("corpus_options.json")
RANDCONFIG = "3.10.0-rc7-00925-g4c5c6fc_i686_id34295890651.log"


def _replay(*args, cwd):
    return subprocess.run([sys.executable, "-m", "emu.tools.cli", "replay", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def test_options_file_applies_per_log(corpus, tmp_path):
    log = corpus / RANDCONFIG
    other = sorted(p for p in corpus.glob("*.log") if p.name != RANDCONFIG)[0]
    without = _replay(log, other, cwd=tmp_path)
    assert without.returncode == 1 and f"FAIL {RANDCONFIG}" in without.stdout
    assert "debug_pagealloc" in without.stdout          # the FAIL line names the input it lacked
    withopt = _replay("--options", OPTIONS, log, other, cwd=tmp_path)
    assert withopt.returncode == 0, withopt.stdout + withopt.stderr
    assert withopt.stdout.strip().splitlines()[-1] == "2 passed, 0 failed"


@pytest.mark.parametrize("text, words", [
    ('[1, 2]', "an object keyed by log name"),
    ('{"x.log": {"reason": "r"}}', '"options"'),
    ('{"x.log": {"options": {"profile": 3}}}', "profile 3 is not a profile name"),
    ('{"x.log": {"options": {"nosuch": 1}}}', "unknown option 'nosuch'"),
    ('{', "not a JSON options file"),
])
def test_bad_options_file_one_line(corpus, tmp_path, text, words):
    f = tmp_path / "o.json"
    f.write_text(text)
    p = _replay("--options", f, corpus / RANDCONFIG, cwd=tmp_path)
    assert p.returncode == 2, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("emu: error:") and words in lines[0], lines


def test_a_value_the_boot_refuses_is_that_log_s_fail_line(corpus, tmp_path):
    """Well-formed file, a value the kernel's limits refuse: that log FAILs naming it (as
    --param does); the other logs still run."""
    f = tmp_path / "o.json"
    f.write_text('{"%s": {"options": {"params_override": {"kernel_start": -1}}}}' % RANDCONFIG)
    p = _replay("--options", f, corpus / RANDCONFIG, cwd=tmp_path)
    assert p.returncode == 1 and "kernel_start -1" in p.stdout and "Traceback" not in p.stdout + p.stderr
