"""What emu does not model is said, not guessed: the seed patch on i386 (non-PAE) asks
``one_page_table_init`` for the page table of a PDE that already holds a 4 MiB page; the
kernel would write the PTEs into that page's own frame (RAM).  emu stops with
``NotEmulated`` in both engines: the CLI prints one line and exits 3, ``emu fuzz`` keeps the
map as an ``unemulated`` finding (found by ``emu fuzz --profile seed``)."""
import json
import subprocess
import sys

import pytest

from emu.boot.emulate import emulate
from emu.errors import NotEmulated
from emu.kernel.params import BootParams
from emu.inputs.e820 import load_e820

MAP = [{"addr": "0x0", "size": "0x20000000", "type": 1},
       {"addr": "0x1c600000", "size": "0xffe3a00000", "type": 2}]
INITRD = (0x1C1ED000, 0x1FEF0000)


@pytest.mark.parametrize("engine", ["cython", "python"])
def test_both_engines_stop_with_not_emulated(tmp_path, engine):
    f = tmp_path / "map.json"
    f.write_text(json.dumps(MAP))
    params = BootParams(arch="i386", pae=False, initrd=INITRD)
    with pytest.raises(NotEmulated, match=r"one_page_table_init for 0xdc1ed000 .* 0x1c0001e3"):
        emulate(load_e820(str(f)), "seed", params, engine=engine)
    # the merged kernels do not get there on this map
    r = emulate(load_e820(str(f)), "3.9", BootParams(arch="i386", pae=False, initrd=INITRD), engine=engine)
    assert r.panic is None and r.verify.ok


def test_cli_one_line_exit_3(tmp_path):
    f = tmp_path / "map.json"
    f.write_text(json.dumps(MAP))
    p = subprocess.run([sys.executable, "-m", "emu.tools.cli", "check", "--profile", "seed", "--arch", "i386",
                        "--initrd", "0x1c1ed000-0x1fef0000", "--e820", str(f)],
                       capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 3, p.stderr
    lines = p.stderr.strip().splitlines()
    assert lines[-1].startswith("emu: not emulated: one_page_table_init") and "Traceback" not in p.stderr


def test_fuzz_keeps_it_as_a_finding():
    from emu.tools.fuzzcase import run_case
    from emu.tools.generators import Case
    case = Case(e820=[(0, 0x20000000, 1), (0x1C600000, 0xFFE3A00000, 2)], mode="i386", initrd=INITRD)
    out = run_case(case, "seed")
    assert out.kind == "unemulated", out
    assert out.finding and out.signature.startswith("unemulated:one_page_table_init")
