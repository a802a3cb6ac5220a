"""Figure 4: random <= 64 GiB e820 maps emulated and verified (one core)."""
import numpy as np
import pytest

from emu.tools import generators as G
from emu import emulate

BATCH = 50


@pytest.mark.benchmark(group="fuzz")
def test_fuzz_batch(benchmark):
    gen, source = G.random_e820, "emu.tools.generators.random_e820"
    rng = np.random.default_rng(5)
    maps = [(gen(rng), G.random_params(rng)) for _ in range(BATCH)]

    def run():
        bad = 0
        for e820, params in maps:
            r = emulate(e820, "6.1", params, check=True)
            bad += r.panic is None and not r.verify.ok
        return bad
    bad = benchmark.pedantic(run, rounds=5, iterations=1)
    assert bad == 0
    benchmark.extra_info["maps_per_round"] = BATCH
    benchmark.extra_info["generator"] = source
