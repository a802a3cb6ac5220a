"""The Python API under hostile arguments (hypothesis): ``emulate`` with any e820 entries,
profile, boot parameters of any type, memory limit, engine and stopping point either returns
a result or raises an ``emu.errors.EmuError`` with one line -- never another exception, a
crash or unbounded memory (each example runs in a forked child with the campaign's limits:
tests/badinput/campaign.py).  The same texts as the command line: a parameter's message
names the field where the CLI names the option."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from emu import BootParams, emulate  # noqa: E402
from emu.errors import EmuError  # noqa: E402
from emu.inputs.e820 import EMBEDDED_DEFAULT  # noqa: E402
from emu.kernel.validate import ParamError, param_types  # noqa: E402

SPEC = importlib.util.spec_from_file_location("badinput_campaign", Path(__file__).with_name("badinput") / "campaign.py")
C = sys.modules.get(SPEC.name)
if C is None:
    C = importlib.util.module_from_spec(SPEC)
    sys.modules[SPEC.name] = C
    SPEC.loader.exec_module(C)

U = 1 << 64
ints = st.one_of(st.integers(-U, 2 * U), st.integers(0, 1 << 47), st.sampled_from([0, 1, 4096, 1 << 46, (1 << 46) - 4096,
                                                                                 0x1000000, 0xC0000000, 1 << 52]))
scalars = st.one_of(ints, st.booleans(), st.none(), st.text(max_size=20), st.floats(allow_nan=False),
                    st.sampled_from([{"__": "nan"}, {"__": "object"}, {"__": "bytes"}, {"__": "complex"}]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.builds(lambda v: {"__": "tuple", "v": v},
                                                                 st.lists(inner, max_size=3)),
                                                       st.builds(lambda d: {"__": "dict", "v": d},
                                                                 st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=3))),
                      max_leaves=6)
entries = st.lists(st.tuples(ints, ints, st.one_of(st.integers(-2, 200), st.integers(0, 1 << 40))), max_size=6)
specs = st.fixed_dictionaries({
    "fn": st.just("emulate"),
    "e820": st.one_of(entries, st.sampled_from(["list-of-dicts", "none", "string"])),
    "profile": st.one_of(st.sampled_from(C.PROFILES + ["6.1", "3.13", "4.20", "<int>", "<none>"]), st.text(max_size=12)),
    "params": st.dictionaries(st.sampled_from(sorted(param_types())), values, max_size=4),
    "max_memory": st.one_of(st.none(), ints, st.sampled_from([1 << 30, "1G", 1.5, True])),
    "engine": st.sampled_from([None, "cython", "python", "pure", "fortran", 5]),
    "until": st.sampled_from(["init_mem_mapping", "paging_init", "nowhere", None]),
    "check": st.booleans(),
})


@settings(max_examples=int(__import__("os").environ.get("EMU_HOSTILE_API_EXAMPLES", "150")), deadline=None,
          database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(specs)
def test_emulate_returns_or_raises_emu_error(spec):
    res = C.run_cases([C.Case(0, "api", api=spec)], jobs=1)[0]
    assert res.outcome in ("accepted", "rejected"), (res.outcome, res.detail, spec)


def test_api_and_cli_say_the_same():
    """One text for one problem: the API names the field, the CLI the option."""
    with pytest.raises(ParamError) as e:
        emulate(EMBEDDED_DEFAULT, "6.1", BootParams(kernel_start=0xFFFFFFFFFFFFF000), check=False)
    assert str(e.value) == ("kernel_start 0xfffffffffffff000: lies beyond the physical address limit "
                            "0x400000000000 (2^46, x86_64 4-level, profile 6.1)")
    res = C.run_cases([C.Case(0, "cli", ["run", "--profile", "6.1", "--kernel-start", "0xfffffffffffff000"])], jobs=1)[0]
    assert res.detail == "emu: error: " + e.value.named("--kernel-start")
    for bad in (dict(kernel_start="16M"), dict(reserves=[(2, 1)]), dict(arch="arm"), dict(la57=1),
                dict(cpu="pse"), dict(memmap=["1G@-1G"]), dict(image_tables={"nosuch": 1})):
        with pytest.raises(EmuError) as e:
            emulate(EMBEDDED_DEFAULT, "6.1", BootParams(**bad), check=False)
        assert "\n" not in str(e.value) and str(e.value).split()[0].rstrip(":") in (set(bad) | {"memmap"})
