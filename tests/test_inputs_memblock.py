"""memblock=debug lines and the early reservations of a boot log (emu.inputs.memblock,
BootLog.memblock_ops / brk_reservation / image_reservation / initrd_reservation).

The real logs are Debian boots under QEMU (tests/data/memblock_logs/README.md); the
expected BRK addresses are the kernels' own ``__brk_base`` (their System.map /
kallsyms, e.g. tests/data/sysmap/: 5.10.0-32-686-pae c1d4c000, 6.12.118 ffffffff83c00000)."""
from __future__ import annotations

from pathlib import Path

import pytest

from emu.inputs import memblock as M
from emu.inputs.dmesg import load_boot_log, parse_boot_log

DATA = Path(__file__).resolve().parent / "data" / "memblock_logs"
MIB = 1 << 20

# log -> (BRK reservation [start, end), image [start, end), initrd [start, end) or None)
REAL = {
    "bullseye-amd64-512M-initrd.log": ((0x4000000, 0x400D000), (0x1000000, 0x4000000), (0x1FEDF000, 0x1FFE0000)),
    "bookworm-amd64-4G-gb-intel-pti.log": ((0x4400000, 0x4411000), (0x1000000, 0x4400000), None),
    "trixie-amd64-2G-la57-gb.log": ((0x3C00000, 0x3C11000), (0x1000000, 0x3C00000), None),
    "bullseye-686-pae-512M-initrd.log": ((0x1D4C000, 0x1D64000), (0x1000000, 0x1D4C000), (0x1FEDF000, 0x1FFE0000)),
    "bookworm-686-512M.log": ((0x1EF2000, 0x1F02000), (0x1000000, 0x1EF2000), None),
    "bookworm-686-pae-2G-intel-pti.log": ((0x1F19000, 0x1F32000), (0x1000000, 0x1F19000), None),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_reservations(name):
    bl = load_boot_log(DATA / name)
    brk, image, initrd = REAL[name]
    assert (bl.brk_reservation.start, bl.brk_reservation.end) == brk
    assert "reserve_brk" in bl.brk_reservation.why
    line = next(ln.text for ln in bl.lines if ln.lineno == bl.brk_reservation.lineno)
    assert line.startswith("memblock_reserve: [") and "setup_arch+" in line
    assert (bl.image_reservation.start, bl.image_reservation.end) == image
    assert bl.image_reservation.source.startswith("MEMBLOCK configuration reserved[")
    if initrd is None:
        assert bl.initrd_reservation is None and bl.ramdisk is None
    else:
        assert (bl.initrd_reservation.start, bl.initrd_reservation.end) == initrd
        assert bl.ramdisk == (initrd[0], initrd[1] - 1)
    kinds = [r.what for r in bl.early_reservations]
    assert "mptable" in kinds and "realmode" in kinds and "low_memory" in kinds
    assert not bl.warnings
    st = bl.memblock_at_mapping
    assert st is not None and st.to_lineno is not None and st.from_lineno == bl.memblock_dumps[0].lineno
    # the BRK reservation, the image and the first 64 KiB are reserved when the mapping starts
    assert any(a <= brk[0] and brk[1] <= b for a, b in st.reserved)
    assert any(a <= image[0] and image[1] <= b for a, b in st.reserved)
    assert st.reserved[0][0] == 0 and st.reserved[0][1] >= 0x10000


def test_brk_is_the_setup_arch_reserve_before_memblock_add():
    bl = load_boot_log(DATA / "bookworm-amd64-4G-gb-intel-pti.log")
    ops = bl.memblock_ops
    first_add = next(o for o in ops if o.op == "memblock_add")
    before = [o for o in ops if o.lineno < first_add.lineno and o.caller == "setup_arch"]
    assert [(o.start, o.end) for o in before] == [(0x4400000, 0x4411000)]
    # the later setup_arch reservation is the low 1 MiB, not the BRK
    later = [o for o in ops if o.lineno > first_add.lineno and o.caller == "setup_arch" and o.op == "memblock_reserve"]
    assert (later[0].start, later[0].end) == (0, MIB)
    assert M.classify(later[0], before_fill=False) == "low_memory"


def test_requests_and_allocator_reserves_linked():
    bl = load_boot_log(DATA / "bookworm-amd64-4G-gb-intel-pti.log")
    ops = bl.memblock_ops
    req = next(o for o in ops if o.op == "memblock_phys_alloc_range")
    assert req.is_request and req.size == 28672 and req.align == 0x1000 and req.max_addr == 0x100000
    assert req.caller == "reserve_real_mode" and req.caller_offset == 0x50 and req.caller_size == 0x89
    res = next(o for o in ops if o.lineno > req.lineno)
    assert res.op == "memblock_reserve" and res.caller == "memblock_alloc_range_nid" and res.requested_by == "reserve_real_mode"
    assert (res.start, res.end) == (0x98000, 0x9F000)
    # init_mem_mapping's first line ("Using GB pages", from probe_page_size_mask) ends the
    # early part, before its own allocation
    probe = next(o for o in ops if o.caller == "init_mem_mapping")
    gb = next(ln.lineno for ln in bl.lines if ln.text == "Using GB pages for direct mapping")
    assert bl.memblock_at_mapping.to_lineno == gb == probe.lineno - 1
    free = next(o for o in ops if o.op == "memblock_phys_free")
    assert free.caller == "init_mem_mapping"


def test_dump_parsed():
    bl = load_boot_log(DATA / "bullseye-686-pae-512M-initrd.log")
    d = bl.memblock_dumps[0]
    assert [(g.start, g.end) for g in d.memory] == [(0x1000, 0x9F000), (0x100000, 0x1FFE0000)]
    assert [(g.index, g.start, g.end) for g in d.reserved] == [
        (0, 0, 0x1000), (1, 0xF5BA0, 0xF5C78), (2, 0x1000000, 0x1D64000), (3, 0x1FEDF000, 0x1FFE0000)]
    assert all(g.flags == 0 for g in d.reserved)
    later = load_boot_log(DATA / "trixie-amd64-2G-la57-gb.log").memblock_dumps
    assert len(later) == 2 and later[1].reserved[0].nid is None and later[1].reserved[1].nid == 0   # "on node 0"


@pytest.mark.parametrize("line,want", [
    # 5.x-6.x %pa form (inclusive last byte)
    ("memblock_reserve: [0x0000000004400000-0x0000000004410fff] setup_arch+0x797/0xd4f",
     dict(op="memblock_reserve", start=0x4400000, end=0x4411000, caller="setup_arch", caller_offset=0x797)),
    ("memblock_reserve: [0x01ef2000-0x01f01fff] setup_arch+0x755/0xbf6",
     dict(start=0x1EF2000, end=0x1F02000)),
    ("memblock_phys_free: [0x000000001fc00000-0x000000001fdfffff] init_mem_mapping+0x22e/0x31f",
     dict(op="memblock_phys_free", end=0x1FE00000)),
    # 6.15+ with nid/flags
    ("memblock_reserve: [0x0000000004400000-0x0000000004410fff] nid=-1 flags=0 setup_arch+0x7/0x9",
     dict(nid=-1, flags=0, caller="setup_arch")),
    # 3.x-4.x with flags, %#016llx, inclusive since 3.14
    ("memblock_reserve: [0x0000000009f000-0x000000000fffff] flags 0x0 reserve_ebda_region+0x5b/0x6d",
     dict(start=0x9F000, end=0x100000, flags=0, caller="reserve_ebda_region")),
    # allocation requests
    ("memblock_alloc_try_nid: 32768 bytes align=0x40 nid=-1 from=0x0000000000000000 max_addr=0x0000000000000000 "
     "sparse_init+0x9f/0x23c", dict(op="memblock_alloc_try_nid", size=32768, align=0x40, nid=-1, start=None)),
    ("memblock_virt_alloc_try_nid_nopanic: 4096 bytes align=0x0 nid=0 from=0x0 max_addr=0x0 alloc_node_mem_map+0x4b/0x6b",
     dict(size=4096, nid=0, caller="alloc_node_mem_map")),
    # 2.6.38-3.2 named form
    ("memblock_x86_reserve_range: [0x01000000-0x01b18dff]    TEXT DATA BSS",
     dict(op="memblock_x86_reserve_range", start=0x1000000, end=0x1B18E00, label="TEXT DATA BSS", caller=None)),
    # no kallsyms: a bare return address
    ("memblock_reserve: [0x0000000000001000-0x0000000000001fff] 0xffffffff81234567",
     dict(caller="0xffffffff81234567", caller_offset=None)),
])
def test_line_forms(line, want):
    op = M.parse_memblock_line(line, 7)
    assert op is not None and op.lineno == 7
    for k, v in want.items():
        assert getattr(op, k) == v, k


def test_pre_314_exclusive_end():
    line = "memblock_reserve: [0x0000009e7e8000-0x0000009e7ed000] _memblock_early_alloc_try_nid_nopanic+0xfc/0x12c"
    assert M.parse_memblock_line(line, 1, inclusive=False).end == 0x9E7ED000
    assert M.parse_memblock_line(line, 1, inclusive=True).end == 0x9E7ED001
    # the %pa form is inclusive whatever the version
    assert M.parse_memblock_line("memblock_reserve: [0x0000000000001000-0x0000000000001fff] x+0x1/0x2", 1,
                                 inclusive=False).end == 0x2000


def test_not_memblock_lines():
    for s in ("memblock: nothing", "MEMBLOCK configuration:", "memory size = 0x1 reserved size = 0x2",
              "memblock_reserve: [0x1-0x2", "memblocks are fun"):
        assert M.parse_memblock_line(s, 1) is None


def test_early_res_table_from_corpus():
    """2.6.3x prints every early reservation by name when handing them to bootmem
    (corpus 2.6.31-11-rt_x86_64_id56721306684.log)."""
    text = ("[    0.000000] Linux version 2.6.31-11-rt (buildd@crested) (gcc version 4.4.3) #154-Ubuntu SMP\n"
            "[    0.000000] BIOS-e820: 0000000000000000 - 000000000009f800 (usable)\n"
            "[    0.000000] BIOS-e820: 0000000000100000 - 00000000bbf50000 (usable)\n"
            "[    0.000000] RAMDISK: 37666000 - 37fef18d\n"
            "[    0.000000] init_memory_mapping: 0000000000000000-00000000bbf50000\n"
            "[    0.000000]  0000000000 - 00bbe00000 page 2M\n"
            "[    0.000000] (8 early reservations) ==> bootmem [0000000000 - 00bbf50000]\n"
            "[    0.000000]   #0 [0000000000 - 0000001000]   BIOS data page ==> [0000000000 - 0000001000]\n"
            "[    0.000000]   #2 [0001000000 - 0001b18e00]    TEXT DATA BSS ==> [0001000000 - 0001b18e00]\n"
            "[    0.000000]   #3 [0037666000 - 0037fef18d]          RAMDISK ==> [0037666000 - 0037fef18d]\n"
            "[    0.000000]   #5 [0001b19000 - 0001b191a0]              BRK ==> [0001b19000 - 0001b191a0]\n")
    bl = parse_boot_log(text, "old.log")
    assert (bl.brk_reservation.start, bl.brk_reservation.end, bl.brk_reservation.lineno) == (0x1B19000, 0x1B191A0, 11)
    assert (bl.image_reservation.start, bl.image_reservation.end) == (0x1000000, 0x1B18E00)
    assert (bl.initrd_reservation.start, bl.initrd_reservation.end) == (0x37666000, 0x37FEF18D)
    assert bl.early_reservations[0].what == "low_memory"
    assert bl.memblock_at_mapping is None          # no memblock dump in such a log


def test_initrd_from_the_ramdisk_line_alone():
    text = ("Linux version 6.1.0-13-amd64 (x@y) (gcc) #1 SMP Debian 6.1.55-1 (2023-09-29)\n"
            "BIOS-e820: [mem 0x0000000000000000-0x000000001fffffff] usable\n"
            "RAMDISK: [mem 0x1f000000-0x1fbfffff]\n")
    bl = parse_boot_log(text)
    r = bl.initrd_reservation
    assert (r.start, r.end, r.lineno, r.source) == (0x1F000000, 0x1FC00000, 3, "RAMDISK line")
    assert bl.brk_reservation is None and bl.image_reservation is None


def test_brk_outside_brk_lines_is_warned():
    text = ("Linux version 3.14.0 (x@y) (gcc) #1\n"
            "BIOS-e820: [mem 0x0000000000000000-0x000000001fffffff] usable\n"
            "memblock_reserve: [0x0000000002000000-0x0000000002010fff] flags 0x0 setup_arch+0x1/0x2\n"
            "memblock_add: [0x0000000000001000-0x000000001fffffff] flags 0x0 memblock_x86_fill+0x1/0x2\n"
            "init_memory_mapping: [mem 0x00000000-0x000fffff]\n"
            "BRK [0x03000000, 0x03000fff] PGTABLE\n")
    bl = parse_boot_log(text)
    assert bl.brk_reservation.start == 0x2000000
    assert any("outside the reserve_brk reservation" in w for w in bl.warnings)
