"""Figure 1: page-table entries written per second (4 KiB pages only) against numpy's fill."""
import numpy as np
import pytest

from bench import harness as B
from emu import emulate


@pytest.mark.benchmark(group="write")
def test_write_emu(benchmark, layout_4k):
    e820, params = layout_4k
    r = benchmark.pedantic(emulate, args=(e820, "6.1", params), kwargs={"check": False}, rounds=5, iterations=1)
    benchmark.extra_info["entries"] = B.entries_written(r)


@pytest.mark.benchmark(group="write")
def test_write_numpy_fill_fresh(benchmark, mapped_4k):
    n = B.entries_written(mapped_4k)

    def fresh():
        a = np.empty(n, np.uint64)
        a.fill(0x8000000000000063)
        return a
    benchmark.pedantic(fresh, rounds=5, iterations=1)
    benchmark.extra_info["entries"] = n


@pytest.mark.benchmark(group="write")
def test_write_numpy_fill_warm(benchmark, mapped_4k):
    n = B.entries_written(mapped_4k)
    a = np.empty(n, np.uint64)
    a.fill(1)
    benchmark.pedantic(a.fill, args=(0x8000000000000063,), rounds=5, iterations=1)
    benchmark.extra_info["entries"] = n
