"""Fixtures for the pytest-benchmark suite (``pytest bench/ --benchmark-only``).

Sizes are smaller than ``python bench/run.py``'s full run; ``EMU_BENCH_GIB``
sets the RAM of the 4 KiB-page map (default 4 GiB; the full figure uses 64).
These files are not collected by the default ``pytest`` run (testpaths = tests).
"""
import os

import numpy as np
import pytest

from bench import harness as B
from emu.machine import engine as backend

GIB = int(os.environ.get("EMU_BENCH_GIB", "4"))


@pytest.fixture(scope="session", autouse=True)
def _compiled():
    if not backend.compiled_available():
        pytest.skip("emu._fast is not built (python setup.py build_ext --inplace)")
    yield


@pytest.fixture(scope="session")
def layout_4k():
    """(e820, params) of the writing figure: GIB GiB of RAM, 4 KiB pages only."""
    return B.ram_64g_map(GIB * B.GiB), B.make_params("4k")


@pytest.fixture(scope="session")
def mapped_4k(layout_4k):
    from emu import emulate
    e820, params = layout_4k
    return emulate(e820, "6.1", params, check=False)


@pytest.fixture(scope="session")
def sweep(mapped_4k):
    """(phys, mmu, vas, pas): every 4 KiB page of the RAM the kernel mapped."""
    from emu.machine.mmu import MMU
    k = mapped_4k.kernel
    pfns = [np.arange((int(s) + 4095) >> 12, min(int(e) >> 12, k.max_pfn), dtype=np.uint64)
            for s, e in zip(k.ram_s, k.ram_e)]
    pas = np.concatenate([p for p in pfns if p.size]) << np.uint64(12)
    vas = pas + np.uint64(k.page_offset)
    mmu = MMU(cr3=k.pgd_pfn << 12, levels=k.paging_levels, maxphyaddr=52, nxe=k.params.cpu.nx)
    return k.phys, mmu, vas, pas


@pytest.fixture(scope="session")
def sample(sweep):
    """20 runs of 100 consecutive pages spread over the sweep (for the slow baselines)."""
    phys, mmu, vas, pas = sweep
    starts = np.linspace(0, len(vas) - 100, 20).astype(np.intp)
    idx = np.unique(np.concatenate([np.arange(s, s + 100) for s in starts]))
    return phys, mmu, np.ascontiguousarray(vas[idx]), pas[idx]
