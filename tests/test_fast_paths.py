"""The shortcuts the per-map speed-ups took (issue 13) against the general paths they stand in
for: the checker's Python-list rules for small maps against its numpy rules, the store's
uninitialised spare block rows, the memory guard's view of this process, and the kernel
image's tables copied from an earlier emulation with the same inputs."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import emu.check.x86_64 as cx
import emu.tools.generators as gen
from emu import BootParams, emulate
from emu.check import verify
from emu.machine.phys import BLOCK_SHIFT, PhysMem

PROFILES = ["3.5", "3.13", "4.19", "5.10", "6.1", "6.15"]


def _corrupt(k, rng: np.random.Generator) -> None:
    """One to four random edits of the tables: a flipped flag or address bit of a present
    entry, a cleared entry, an entry copied over another (a shared table or leaf)."""
    phys = k.phys
    slots = np.arange(phys.nframes)
    for _ in range(int(rng.integers(1, 5))):
        s = int(rng.choice(slots))
        present = np.flatnonzero(phys.frames[s] & np.uint64(1))
        if not len(present):
            continue
        i = int(rng.choice(present))
        e = int(phys.frames[s, i])
        kind = int(rng.integers(0, 4))
        if kind == 0:
            e ^= 1 << int(rng.choice([1, 2, 5, 6, 7, 8, 63]))       # RW US A D PS G NX
        elif kind == 1:
            e ^= 1 << int(rng.integers(12, 40))                     # another frame
        elif kind == 2:
            e = 0
        else:
            e = int(phys.frames[s, int(rng.choice(present))])
        phys.frames[s, i] = np.uint64(e)


@pytest.mark.parametrize("seed", range(6))
def test_small_map_rules_equal_the_numpy_rules(seed, monkeypatch):
    """Every report the list path gives (small maps, the usual case) is the numpy path's, byte
    for byte: clean maps, 5-level, 4K-only, and tables with random corruptions."""
    rng = np.random.default_rng(1000 + seed)
    for n in range(12):
        profile = PROFILES[(seed + n) % len(PROFILES)]
        params = gen.random_params(rng, 0.2)
        if n % 4 == 3 and profile in ("5.10", "6.1", "6.15"):
            params.la57 = True
        r = emulate(gen.random_e820(rng, 256 << 30), profile, params, check=False)
        if r.panic is not None:
            continue
        if n % 3:
            _corrupt(r.kernel, rng)
        monkeypatch.setattr(cx, "SMALL", 256)
        small = verify(r.kernel).to_json()
        monkeypatch.setattr(cx, "SMALL", -1)
        big = verify(r.kernel).to_json()
        assert small == big, (profile, n)


def test_spare_block_rows_read_as_unbacked():
    """The store's block array grows by doubling and only the rows handed out are set to -1:
    a (corrupt) directory entry pointing at a spare row reads as no backing, as before."""
    phys = PhysMem(1 << 40)
    phys.frame(0x1234)
    assert phys.nblocks == 1 and phys.blocks.shape[0] >= 2
    phys.blocks[1].fill(0)                      # what an uninitialised row may hold
    pfn = 5 << BLOCK_SHIFT
    phys.directory[5] = 1
    assert phys.slot(pfn) == -1 and not phys.is_backed(pfn)
    assert phys.read64(pfn << 12) == 0


def test_the_checker_reads_spare_block_rows_as_unbacked():
    r = emulate(gen.random_e820(np.random.default_rng(3)), "6.1", BootParams(), check=False)
    k = r.kernel
    rows = k.phys.blocks.shape[0]
    if rows == k.phys.nblocks:
        pytest.skip("no spare row in this store")
    k.phys.blocks[k.phys.nblocks:].fill(0)
    free = int(np.flatnonzero(k.phys.directory < 0)[0])
    k.phys.directory[free] = k.phys.nblocks
    slots = cx._slot_lookup(k, np.array([free << BLOCK_SHIFT], np.uint64))
    assert slots.tolist() == [-1]


def test_the_guard_sees_this_process_grow_at_once(tmp_path):
    """``address_space_room`` reads the process' size every time (a figure even a second old
    let a layout through that then failed in numpy, a crash instead of a refusal)."""
    code = textwrap.dedent("""
        import resource, numpy as np
        from emu.kernel.estimate import address_space_room
        with open("/proc/self/status") as f:
            size = next(int(l.split()[1]) << 10 for l in f if l.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (size + (2 << 30), resource.RLIM_INFINITY))
        before = address_space_room()
        held = np.ones(256 << 20, np.uint8)
        after = address_space_room()
        print(before - after)
    """)
    # (from a scratch folder: a checkout as the working directory would shadow the installed emu)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.split()[-1]) >= 250 << 20


def test_image_tables_copied_from_an_earlier_emulation_are_the_same():
    """``setup_x86_64_tables`` copies the image's pages from an earlier emulation with the
    same inputs: the same tables, assumptions and table-page log as writing them afresh, and a
    different input (another kernel address, 5-level) is not served from the copy."""
    import emu.kernel.arch.x86.kernel.setup as setup
    e820 = gen.random_e820(np.random.default_rng(8))

    def image(params, profile="6.1"):
        k = emulate(e820, profile, params, check=False).kernel
        pfns = k.table_pages.column("pfn")[k.table_pages.column("src") == 4].tolist()
        return ([k.phys.image_bytes(p) for p in pfns], pfns, [a.to_json() for a in k.assumptions],
                k.image_tables, k.pgd_pfn)

    setup._IMAGES.clear()
    first = image(BootParams())
    assert setup._IMAGES
    other = image(BootParams(kernel_start=0x2000000))
    l57 = image(BootParams(la57=True))
    again = image(BootParams())
    assert again == first
    assert other[1] != first[1] and l57[0] != first[0]
    setup._IMAGES.clear()
    assert image(BootParams(kernel_start=0x2000000)) == other
    assert image(BootParams(la57=True)) == l57
