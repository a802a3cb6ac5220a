"""A short run of the bad-input campaign (tests/badinput/campaign.py; the long one is a
script): a few hundred generated bad inputs over every channel, each in a forked child under
memory and CPU limits -- every one rejected with exit 2 and one line, or accepted, never a
traceback, a signal, a hang, a memory kill, a multi-line error or an internal error.  And the
issue's reproducers, one by one."""
from __future__ import annotations

import faulthandler
import importlib.util
import os
import sys
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location("badinput_campaign", Path(__file__).with_name("badinput") / "campaign.py")
C = importlib.util.module_from_spec(SPEC)
sys.modules[SPEC.name] = C            # (dataclasses look their module up)
SPEC.loader.exec_module(C)

#: cases in the test suite (the script runs 10^5 and more)
COUNT = int(os.environ.get("EMU_BADINPUT_COUNT", "240"))


def test_short_campaign_has_no_failure():
    fig = C.run_campaign(COUNT, seed=11, jobs=2, timeout=300, mem=2 << 30)
    detail = "\n".join(f"{k}:\n  " + "\n  ".join(v) for k, v in fig.examples.items())
    assert fig.count == COUNT and fig.failures == 0, fig.text() + "\n" + detail
    assert fig.outcomes["rejected"] > COUNT // 3
    assert set(fig.by_channel) == set(C.CHANNEL_WEIGHTS)


def test_the_harness_tells_failures_apart():
    """The classifier is not a rubber stamp: a traceback, a usage block, an internal error,
    a signal and a hang are each told apart from a rejection."""
    case = C.Case(0, "cli", ["run"])
    assert C.classify(case, 2, None, False, "", "emu: error: x\n", 0, 0).outcome == "rejected"
    assert C.classify(case, 2, None, False, "", "emu: assumed a\nemu: error: x\n", 0, 0).outcome == "rejected"
    assert C.classify(case, 2, None, False, "", "usage: emu run\nemu run: error: x\n", 0, 0).outcome == "multiline"
    assert C.classify(case, 1, None, False, "", "Traceback (most recent call last):\n  x\nE: y\n", 0, 0).outcome \
        == "traceback"
    assert C.classify(case, 70, None, False, "", "emu: internal error: TypeError: x\n", 0, 0).outcome == "internal"
    assert C.classify(case, None, 11, False, "", "", 0, 0).outcome == "signal"
    assert C.classify(case, None, 9, True, "", "", 0, 0).outcome == "hang"
    assert C.classify(case, 0, None, False, "", "", 0, 0).outcome == "accepted"


def test_the_harness_sees_a_real_crash_and_a_real_hang():
    """Forked children that crash by signal, loop forever or allocate without bound are
    reported as such (the limits work)."""
    crash = C.Case(1, "api", api={"fn": "get_profile", "arg": "6.1"})
    res = C.run_cases([crash], jobs=1)
    assert res[0].outcome == "accepted"
    real_child = C._child
    try:
        C._child = lambda case, mem, cpu: (faulthandler.disable(), os.kill(os.getpid(), 11))[1]
        assert C.run_cases([crash], jobs=1)[0].outcome == "signal"
        C._child = lambda case, mem, cpu: (C._child_limits(mem, 2), [None for _ in iter(int, 1)])[1]
        assert C.run_cases([crash], jobs=1, timeout=60)[0].outcome == "hang"
        C._child = lambda case, mem, cpu: (C._child_limits(64 << 20, cpu), bytearray(1 << 30))[1]
        assert C.run_cases([crash], jobs=1)[0].outcome in ("memory", "traceback")
    finally:
        C._child = real_child


REPRODUCERS = [
    # issue 11, each: exit 2 and one line (or the right answer)
    ["run", "--brk", "0x100000000000000", "--max-memory", "1M"],
    ["run", "--brk", "0x800000000000000"],
    ["run", "--brk", "0x7000000000000000"],
    ["run", "--kernel-start", "0xfffffffffffff000"],
    ["run", "--param", "kernel_start=0x10000000000000000"],
    ["run", "--initrd", "0x1000000-0x10000000000000000"],
    ["run", "--reserve", "0x10000000000000000-0x10000000000001000"],
    ["run", "--memmap", "16E@0"],
    ["run", "--memmap", "1G@-1G"],
    ["run", "--kernel-start", "-4096"],
    ["run", "--brk", "-4096"],
    ["run", "--param", "reserves=1,2"],
    ["run", "--param", "kmap_range=0xffd00000", "--arch", "i386-pae"],
    ["run", "--param", "btmap_begin=0x10000000000000000", "--arch", "i386-pae"],
    ["run", "--mem", "-1"],
    ["run", "--max-memory", "-1"],
    ["run", "--max-memory", "4K"],
    ["translate", "0x1ffff888000100000"],
    ["translate", "--", "-0x777fffefffff"],
    ["translate", "--arch", "i386-pae", "0x100000000"],
    ["diff", "--width", "-5", "--profile", "3.13", "--profile", "4.1"],
    ["run", "--memmap=-1G@0"],
    ["run", "--brk", "0x1000"],
    ["run", "--mem", "1GG"],
    ["run", "--la57", "--brk", "0xf000000000000", "--max-memory", "1M"],
    ["run", "--param", "nosuch=1"],
    ["run", "--param", "pae=maybe"],
    # class 2: files read without a bound
    ["run", "--e820", "/dev/zero"],
    ["run", "--dmesg", "/dev/zero"],
    ["replay", "/dev/zero"],
    ["run", "--e820", "/dev/full"],
    ["run", "--e820", "/dev/urandom"],
    # class 3: fuzz options
    ["fuzz", "--seconds", "nan"],
    ["fuzz", "--count", "-1"],
    ["fuzz", "--jobs", "-1"],
    ["fuzz", "--seconds", "-1"],
    ["fuzz", "--reference", "nonsense", "--count", "1"],
    ["fuzz", "--max-ram", "0", "--count", "1"],
    # class 4: replay of what is not a log: exit 2 and one line, like run --dmesg
    ["replay", "/nonexistent.log"],
    ["replay", "/"],
    ["replay", "/dev/null"],
    # the new inputs
    ["run", "--config", "/dev/zero"],
    ["run", "--system-map", "/dev/urandom"],
    ["run", "--cpu", "qemu64,+nosuch"],
    ["run", "--plot", "/"],
    ["replay", "/nonexistent.log", "--plot", "x.png"],
]


@pytest.mark.parametrize("argv", REPRODUCERS, ids=[" ".join(a) for a in REPRODUCERS])
def test_reproducer_is_one_line_and_exit_2(argv):
    res = C.run_cases([C.Case(0, "cli", argv)], jobs=1)[0]
    assert res.outcome == "rejected" and res.rc == 2, (res.outcome, res.stderr)
    line = res.detail
    assert line.startswith("emu: error: ") and "Traceback" not in res.stderr
    assert not C.SUSPICIOUS.search(line), line


def test_right_answers():
    """The reproducers that are not errors: the i386 map that was refused as needing 128 MiB
    fits 64 MiB; fixmap_static_pmds from one value is a list of one."""
    ok = [["run", "--arch", "i386-pae", "--no-pse", "--profile", "3.13", "--max-memory", "64M", "--e820", "m.json"],
          ["run", "--arch", "i386-pae", "--param", "fixmap_bottom=4291821568",
           "--param", "fixmap_static_pmds=4290772992"]]
    m = b'[{"addr":0,"size":655360,"type":1},{"addr":1048576,"size":68718428160,"type":1}]'
    res = C.run_cases([C.Case(0, "cli", ok[0], {"m.json": m}), C.Case(1, "cli", ok[1])], jobs=2)
    assert [r.outcome for r in res] == ["accepted", "accepted"] and [r.rc for r in res] == [0, 0], \
        [r.stderr for r in res]


@pytest.mark.parametrize("argv,files", [
    (["run", "--e820", "big"], {"big": "sparse"}),          # a 6 GiB sparse file: refused by its size
    (["run", "--dmesg", "big"], {"big": "sparse"}),
    (["replay", "big"], {"big": "sparse"}),
    (["replay", "empty.log"], {"empty.log": b""}),
    (["run", "--config", "cfg"], {"cfg": "sparse"}),
])
def test_file_reproducer_is_one_line_and_exit_2(argv, files):
    res = C.run_cases([C.Case(0, "cli", argv, files)], jobs=1)[0]
    assert res.outcome == "rejected" and res.rc == 2, (res.outcome, res.stderr)
    assert res.maxrss < 512 << 20, res.maxrss        # bounded time: the harness's own hang limit (outcome "hang")


def test_param_cpu_none_is_the_unset_cpu_and_said():
    """--param cpu=none (a traceback in the issue) is the field left unset: the default CPU,
    said on stderr like every defaulted input."""
    res = C.run_cases([C.Case(0, "cli", ["run", "--param", "cpu=none"])], jobs=1)[0]
    assert res.outcome == "accepted" and res.rc == 0, res.stderr
    assert "emu: assumed cpu = a CPU with" in res.stderr
