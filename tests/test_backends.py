"""The Cython loops and the pure-Python reference write the same bytes."""
import numpy as np
import pytest

from emu.machine import engine as backend
from emu.inputs.e820 import EMBEDDED_DEFAULT
from emu.boot.emulate import emulate
from emu.kernel.params import BootParams
from emu.machine.cpu import CpuFeatures

from layouts import G, pc, table


def test_compiled_extension_is_used():
    assert backend.compiled_available(), "emu._fast is not built: pip install . (or build_ext --inplace)"
    assert backend.select().name == "cython"
    assert emulate(EMBEDDED_DEFAULT.copy()).kernel.engine.name == "cython"


def test_engine_is_chosen_per_emulation():
    a = emulate(EMBEDDED_DEFAULT.copy(), engine="python")
    b = emulate(EMBEDDED_DEFAULT.copy())
    assert a.kernel.engine.name == "python" and b.kernel.engine.name == "cython"


def test_unknown_engine_is_one_line():
    with pytest.raises(backend.EngineError, match="unknown engine 'fortran'"):
        backend.select("fortran")


def _frames(phys):
    order = np.argsort(phys.backed_pfns())
    return phys.backed_pfns()[order], phys.frames[: phys.nframes][order]


LAYOUTS = [
    ("default-6.1", EMBEDDED_DEFAULT, "6.1", BootParams()),
    ("default-3.13-4k", EMBEDDED_DEFAULT, "3.13", BootParams(debug_pagealloc=True)),
    ("pc-3.19-nogb", pc(9 * G), "3.19", BootParams(cpu=CpuFeatures(gbpages=False), gbpages=False)),
    ("islands-4.4", table((0, 0x9F000), (0x100000, 0x7FFFF000), (0x80001000, 0x80203000), (1 << 32, 6 * G)),
     "4.4", BootParams()),
]


@pytest.mark.parametrize("name,e820,profile,params", LAYOUTS, ids=[l[0] for l in LAYOUTS])
def test_same_bytes(name, e820, profile, params):
    a = emulate(e820.copy(), profile, params, engine="cython")
    b = emulate(e820.copy(), profile, params, engine="python")
    assert a.debug_log == b.debug_log
    pa, fa = _frames(a.kernel.phys)
    pb, fb = _frames(b.kernel.phys)
    assert (pa == pb).all() and (fa == fb).all()
    assert a.kernel.direct_pages_count == b.kernel.direct_pages_count
    assert a.verify.ok and b.verify.ok
