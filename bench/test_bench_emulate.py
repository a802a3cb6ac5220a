"""Figure 3: emulate() and verify() of large layouts (smaller than the full run's)."""
import pytest

from bench import harness as B
from emu import emulate
from emu.check import verify

LAYOUTS = [(name, size, kind, numa) for name, size, kind, numa in B.E2E_QUICK]


@pytest.mark.parametrize("name,size,kind,numa", LAYOUTS, ids=[x[0].replace(" ", "-") for x in LAYOUTS])
@pytest.mark.benchmark(group="emulate")
def test_emulate(benchmark, name, size, kind, numa):
    e820 = B.server_e820(size, numa, 64 * B.MiB if numa > 1 else 0)
    r = benchmark.pedantic(emulate, args=(e820, "6.1", B.make_params(kind)), kwargs={"check": False},
                           rounds=3, iterations=1)
    assert r.panic is None
    benchmark.extra_info["table_bytes"] = r.pgtable_pages["total"] * B.PAGE


@pytest.mark.parametrize("name,size,kind,numa", LAYOUTS, ids=[x[0].replace(" ", "-") for x in LAYOUTS])
@pytest.mark.benchmark(group="verify")
def test_verify(benchmark, name, size, kind, numa):
    e820 = B.server_e820(size, numa, 64 * B.MiB if numa > 1 else 0)
    r = emulate(e820, "6.1", B.make_params(kind), check=False)
    rep = benchmark.pedantic(verify, args=(r.kernel,), rounds=3, iterations=1)
    assert rep.ok


@pytest.mark.benchmark(group="emulate")
def test_numpy_write_read_baseline(benchmark):
    """numpy writing and reading back 16 MiB (the 4 TiB 2M layout's table bytes)."""
    benchmark.pedantic(B.numpy_write_read_seconds, args=(16 * B.MiB, 1), rounds=5, iterations=1)
