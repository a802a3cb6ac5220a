"""The compiled loops check their own preconditions: each entry point of ``emu._fast`` is
called with adversarial arguments (hypothesis, in a child process: tests/hostile_fast_child.py)
and must return or raise, never die by a signal, never write past an array it was given,
never read past one (the child's arrays sit between inaccessible pages), never hang."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("hypothesis")
fast = pytest.importorskip("emu._fast")

CHILD = Path(__file__).with_name("hostile_fast_child.py")
ENTRIES = ["walk64", "walk32", "enumerate64", "check_store", "kernel_physical_mapping_init",
           "kernel_physical_mapping_init_32"]
#: examples per entry point in the test suite (`python tests/hostile_fast_child.py ENTRY N` runs more)
EXAMPLES = int(os.environ.get("EMU_HOSTILE_EXAMPLES", "120"))


@pytest.mark.parametrize("entry", ENTRIES)
def test_entry_point_survives_hostile_arguments(entry):
    env = dict(os.environ)      # the installed emu: no checkout on the path (it would shadow the package)
    out = subprocess.run([sys.executable, str(CHILD), entry, str(EXAMPLES)], capture_output=True, text=True,
                         timeout=600, env=env)
    assert out.returncode >= 0, f"{entry}: killed by signal {-out.returncode}\n{out.stderr[-2000:]}"
    assert out.returncode == 0, f"{entry}: {out.stdout[-1000:]}\n{out.stderr[-3000:]}"
    first = out.stdout.splitlines()[0]
    returned, raised = int(first.split()[1]), int(first.split()[3])
    assert returned + raised >= EXAMPLES and returned > 0 and raised > 0, first


def _store(nframes=4):
    from emu.machine.phys import PhysMem
    ph = PhysMem(1 << 30)
    for p in range(nframes):
        ph.frame(p)
    return ph


def test_enumerate64_refuses_frames_it_cannot_read_as_rows():
    """Frames whose entries are not contiguous (a reversed or strided view) would be read past
    their end through the row pointer: refused."""
    ph = _store()
    ph.table(0)[0] = (1 << 12) | 0x63
    frames = np.ascontiguousarray(ph.frames[:, ::-1])[:, ::-1]      # right values, stride -8
    runs, tables, counts = np.zeros((8, 6), np.uint64), np.zeros((8, 4), np.uint64), np.zeros(7, np.int64)
    with pytest.raises(ValueError, match="malformed"):
        fast.enumerate64(ph.directory, ph.blocks, frames, 0, 4, 0, 512, 52, runs, tables, counts)
    assert fast.enumerate64(ph.directory, ph.blocks, ph.frames, 0, 4, 0, 512, 52, runs, tables, counts)


@pytest.mark.parametrize("engine", ["cython", "python"])
def test_enumerate64_stops_on_tables_that_are_not_a_tree(engine):
    """A table pointing at itself at every level is 512^4 paths of one page: both engines
    stop with the same ValueError instead of running for hours."""
    from emu.machine.engine import select
    ph = _store(2)
    ph.table(0)[:] = np.uint64((0 << 12) | 0x67)          # every PML4 entry -> the PML4 page itself
    runs, tables, counts = np.zeros((8, 6), np.uint64), np.zeros((8, 4), np.uint64), np.zeros(7, np.int64)
    with pytest.raises(ValueError, match="not a tree"):
        select(engine).enumerate64(ph.directory, ph.blocks, ph.frames, 0, 4, 0, 512, 52, runs, tables, counts)


def test_mapper_keeps_its_e820_arrays_alive():
    """The cached Mapper reads the job's e820 arrays through raw pointers: replacing and
    dropping them between calls must not leave it reading freed memory."""
    import gc

    from emu import BootParams
    from emu.inputs.e820 import E820Map
    from emu.kernel.arch.x86.kernel.setup import setup_arch
    from emu.kernel.arch.x86.mm import init as mm_init
    from emu.kernel.arch.x86.mm.init_64 import MapJob
    from emu.kernel.profiles import get_profile
    k = setup_arch(get_profile("6.1"), BootParams(), E820Map([(0x100000, 1 << 32, 1)]), engine="cython")
    mm_init.probe_page_size_mask(k)
    job = MapJob(k, 0x1E3)
    fast.kernel_physical_mapping_init(job, k.pgd_pfn, 0, 1 << 30, 4, 0x63)
    job.ram_s = np.zeros(0, np.uint64)
    job.ram_e = np.zeros(0, np.uint64)
    gc.collect()
    junk = [np.full(1 << 12, 0xFFFFFFFFFFFFFFFF, np.uint64) for _ in range(64)]   # reuse freed memory
    last, _ = fast.kernel_physical_mapping_init(job, k.pgd_pfn, 1 << 30, 2 << 30, 4, 0x63)
    assert last == 2 << 30 and junk


def _tree_summary_fields(t):
    return (t.runs.tolist(), t.tables.tolist(), t.leaves_4k, t.leaves_2m, t.leaves_1g, t.reserved_entries,
            None if t.odd is None else t.odd.tolist(), t.odd_count)


def _contiguous_leaves_tree(maxphyaddr: int):
    """PML4 -> PDPT -> two PMD pages of 2M leaves and two PTE pages of 4K leaves, each run
    contiguous across its two pages and crossing 2^maxphyaddr (the entries above are reserved)."""
    from emu.machine.phys import PhysMem
    phys = PhysMem(1 << 30)
    pml4, pdpt, pmd_a, pmd_b, pmd_c, pte_a, pte_b = range(0x100, 0x107)
    for p in (pml4, pdpt, pmd_a, pmd_b, pmd_c, pte_a, pte_b):
        phys.frame(p)
    phys.table(pml4)[0] = (pdpt << 12) | 0x67
    for slot, pmd in ((0, pmd_a), (1, pmd_b), (2, pmd_c)):
        phys.table(pdpt)[slot] = (pmd << 12) | 0x67
    top = 1 << maxphyaddr
    for k in range(1024):                       # 2M leaves: 600 below the limit, 424 above
        pa = top - 600 * (2 << 20) + k * (2 << 20)
        (phys.table(pmd_a) if k < 512 else phys.table(pmd_b))[k % 512] = pa | 0x80000000000000E3
    phys.table(pmd_c)[0] = (pte_a << 12) | 0x67
    phys.table(pmd_c)[1] = (pte_b << 12) | 0x67
    for k in range(1024):                       # 4K leaves: 700 below, 324 above
        pa = top - 700 * 4096 + k * 4096
        (phys.table(pte_a) if k < 512 else phys.table(pte_b))[k % 512] = pa | 0x8000000000000063
    return phys, pml4 << 12


@pytest.mark.parametrize("maxphyaddr", [36, 40, 46])
def test_enumerate64_fast_paths_stop_at_maxphyaddr(maxphyaddr):
    """The compiled listing extends a run of 4K or 2M leaves by comparing raw entries (its fast
    paths); an entry past MAXPHYADDR has reserved bits and must end the run there, as the pure
    twin (which has no fast path) does."""
    from emu.machine.mmu import MMU, enumerate_tables
    phys, cr3 = _contiguous_leaves_tree(maxphyaddr)
    mmu = MMU(cr3=cr3, levels=4, maxphyaddr=maxphyaddr, nxe=True)
    fast = enumerate_tables(phys, mmu, engine="cython")
    pure = enumerate_tables(phys, mmu, engine="python")
    assert _tree_summary_fields(fast) == _tree_summary_fields(pure)
    assert (fast.leaves_2m, fast.leaves_4k, fast.reserved_entries) == (600, 700, 424 + 324)


@pytest.mark.parametrize("seed", range(12))
def test_enumerate64_engines_agree_on_random_trees(seed):
    from emu.machine.mmu import MMU, enumerate_tables
    from tests.pt_random import build_random_tree
    rng = np.random.default_rng(seed)
    maxphyaddr = int(rng.choice([36, 40, 46, 52]))
    tree = build_random_tree(rng, maxphyaddr=maxphyaddr, p_share=0.0, p_dangling=0.0)
    mmu = MMU(cr3=tree.cr3, levels=4, maxphyaddr=maxphyaddr, nxe=bool(seed % 2))
    assert _tree_summary_fields(enumerate_tables(tree.phys, mmu, engine="cython")) == \
        _tree_summary_fields(enumerate_tables(tree.phys, mmu, engine="python"))
