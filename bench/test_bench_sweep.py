"""Figure 2: a translation sweep of every 4 KiB page, against numpy, pure Python and volatility3."""
import numpy as np
import pytest

from bench import harness as B
from emu.machine.mmu import translate


@pytest.mark.benchmark(group="sweep")
def test_sweep_emu_translate(benchmark, sweep):
    phys, mmu, vas, pas = sweep
    t = benchmark.pedantic(translate, args=(phys, mmu, vas), rounds=3, iterations=1)
    assert (t.error == -1).all() and np.array_equal(t.pa, pas)
    benchmark.extra_info["translations"] = len(vas)


@pytest.mark.benchmark(group="sweep")
def test_sweep_numpy_walk(benchmark, sweep):
    phys, mmu, vas, pas = sweep
    pa, ok = benchmark.pedantic(B.numpy_walk, args=(phys, mmu.cr3, vas), rounds=3, iterations=1)
    assert ok.all() and np.array_equal(pa, pas)
    benchmark.extra_info["translations"] = len(vas)


@pytest.mark.benchmark(group="sweep-sample")
def test_sample_emu_translate(benchmark, sample):
    phys, mmu, vas, pas = sample
    t = benchmark(translate, phys, mmu, vas)
    assert np.array_equal(t.pa, pas)
    benchmark.extra_info["translations"] = len(vas)


@pytest.mark.benchmark(group="sweep-sample")
def test_sample_pure_python_walk(benchmark, sample):
    phys, mmu, vas, pas = sample
    t = benchmark.pedantic(translate, args=(phys, mmu, vas), kwargs={"engine": "python"}, rounds=3, iterations=1)
    assert np.array_equal(t.pa, pas)
    benchmark.extra_info["translations"] = len(vas)


@pytest.mark.benchmark(group="sweep-sample")
def test_sample_volatility3_intel32e(benchmark, sample):
    pytest.importorskip("volatility3")
    phys, mmu, vas, pas = sample
    layer = B.volatility_layer(phys, mmu.cr3)
    pa = benchmark.pedantic(B.volatility_translate, args=(layer, vas), rounds=2, iterations=1)
    assert np.array_equal(pa, pas)
    benchmark.extra_info["translations"] = len(vas)
