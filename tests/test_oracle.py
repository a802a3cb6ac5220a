"""The real-kernel oracle (emu.tools.oracle).

Everything up to the QEMU boot is tested here without QEMU: the gdbstub client
against an in-process fake stub, the table walk, the comparison (a "guest"
built from emu's own run must be identical; any perturbation must be
reported).  Tests that boot the real kernel run only when QEMU and a fetched
kernel are present (``emu oracle fetch``; ``.ci/oracle.sh``)."""
from __future__ import annotations

import shutil
import socket
import struct

import numpy as np
import pytest

from emu.kernel.arch.x86.kernel.e820 import E820_RAM, E820_RESERVED, E820Table

from emu.inputs.e820 import EMBEDDED_DEFAULT
from emu.boot.emulate import emulate
from emu.kernel.params import BootParams
from emu.tools.oracle import gdbstub
from oracle_fakes import FakeStub
from emu.tools.oracle.compare import _emu_inputs, compare, guest_profile_name, params_from_guest, resolve_profile
from emu.tools.oracle.qemu import Guest, OracleError, QemuLayout
from emu.tools.oracle.tables import (LEAF, TableCopyError, copy_tables, emu_tree, kernel_slots, paging_mode,
                                     tree_mmu, tree_of)
from emu.machine.cpu import CpuFeatures
from emu.kernel.profiles import get_profile
from emu.kernel.arch.x86.kernel.setup import setup_arch
from emu.machine.mmu import MMU, enumerate_entries, enumerate_tables, translate


# ---------------------------------------------------------------------------
# gdbstub framing and a fake stub
# ---------------------------------------------------------------------------
def test_framing_roundtrip():
    data = b"a$b#c}d*e"
    assert gdbstub._unescape(gdbstub._escape(data)) == data
    assert gdbstub._checksum(b"OK") == b"9a"
    # run-length encoding: "0* " is '0' repeated 1 + (' ' - 29) = 4 times
    assert gdbstub._unescape(b"0* ") == b"0000"


def test_gdbremote_against_fake_stub():
    page = struct.pack("<512Q", *([0x1067] + [0] * 511))
    stub = FakeStub({("v", 0xFFFFFFFF81000000): b"\x11" * 16, ("p", 0x2A10000): page}, 0xFFFFFFFF83000000)
    stub.start()
    g = gdbstub.GdbRemote("127.0.0.1", stub.port)
    try:
        assert g.max_read >= 256
        g.hbreak(0xFFFFFFFF83000000)
        assert stub.breaks == {0xFFFFFFFF83000000}
        assert g.cont(5).startswith("T05")
        regs = g.registers()
        assert regs["cr3"] == 0x2A10000 and regs["rip"] == 0xFFFFFFFF83000000 and regs["cr4"] == 0xB0
        assert g.read(0xFFFFFFFF81000000, 16) == b"\x11" * 16
        assert g.read(0x2A10000, 4096, phys=True) == page
        with pytest.raises(gdbstub.GdbError):
            g.read(0x1234, 8, phys=True)
        g.remove_hbreak(0xFFFFFFFF83000000)
        assert not stub.breaks
    finally:
        g.close()


def test_connect_refused_is_an_error():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(gdbstub.GdbError):
        gdbstub.GdbRemote("127.0.0.1", port, connect_timeout=0.3)


# ---------------------------------------------------------------------------
# table walk and comparison, with a "guest" made from emu's own run
# ---------------------------------------------------------------------------
def _guest_from_emu(e820: E820Table, params: BootParams, profile: str = "6.1") -> Guest:
    prof = get_profile(profile)
    k0 = setup_arch(prof, params, e820.copy())
    r = emulate(e820.copy(), prof, params, check=False)
    k = r.kernel
    g = Guest("self", "emu", "", [])
    g.e820 = [(e.addr, e.size, e.type) for e in k0.e820.entries]
    g.memblock_memory = list(k0.memblock.memory)
    # what the kernel has reserved at init_mem_mapping: kernel image + BRK, low memory
    g.memblock_reserved = list(k0.memblock.reserved)
    g.pgt_buf_start, g.pgt_buf_top = k0.pgt_buf_start, k0.pgt_buf_top
    g.kernel_start = k0.params.kernel_start
    # the image: its end, its static tables (as System.map gives them)
    g.image_end = k0.image[1]
    g.static_pages = {"init_top_pgt": k0.pgd_pfn << 12}
    for pfn, _, name in k0.image_tables:
        g.static_pages.setdefault(name, pfn << 12)
    g.max_pfn = k.max_pfn
    g.cr3 = k.pgd_pfn << 12
    g.cr4 = (1 << 12) if params.la57 else 0
    g.page_size_mask = k.page_size_mask
    g.supported_pte_mask = k.supported_pte_mask
    g.default_kernel_pte_mask = k.default_kernel_pte_mask
    g.direct_gbpages = int(k.direct_gbpages)
    g.pgt_buf_end = k.pgt_buf_end
    g.max_pfn_mapped = k.max_pfn_mapped
    g.direct_pages_count = list(k.direct_pages_count) + [0] * (6 - len(k.direct_pages_count))
    g.page_offset = k.page_offset
    g.levels = k.paging_levels
    # as from a real guest: its table pages copied page by page into a PhysMem, then listed
    mode = paging_mode("x86_64", k.paging_levels)
    mmu = tree_mmu(mode, g.cr3)
    slots = kernel_slots(mode, g.page_offset)
    g.tree = tree_of(copy_tables(k.phys.image_bytes, mmu, slots, k.phys.limit), mmu, mode, slots)
    g.next_call = "idt_setup_early_pf"
    g.kernel_for_test = k
    return g


HOLES = E820Table([(0, 0x9F000, E820_RAM), (0x100000, 0x7FE3000 - 0x100000, E820_RAM),
                   (0x7FE3000, 0x2D000, E820_RESERVED), (0x8011000, 0x1_3000_0000 - 0x8011000, E820_RAM)])


@pytest.mark.parametrize("e820,cpu,la57", [
    (EMBEDDED_DEFAULT, CpuFeatures(), False),
    (HOLES, CpuFeatures(gbpages=False), False),
    (HOLES, CpuFeatures(pse=False, gbpages=False), False),
    (EMBEDDED_DEFAULT, CpuFeatures(la57=True), True),
])
def test_self_comparison_is_identical(e820, cpu, la57):
    params = BootParams(cpu=cpu, la57=la57, randomize_memory=True, x86_5level_config=True,
                        brk_base=0x4401000)
    g = _guest_from_emu(e820, params)
    direct = emu_tree(g.kernel_for_test)
    # the copy (page by page, as from a guest) lists exactly what the tree in place holds
    assert (g.tree.entries, g.tree.tables, g.tree.leaves()) == (direct.entries, direct.tables, direct.leaves())
    c = compare(g, "6.1", inputs="kernel")
    assert c.identical, c.differences[:5]
    assert c.params["cpu"]["gbpages"] == cpu.gbpages and c.params["la57"] == la57


def _emulated(e820, params, profile="6.1"):
    return emulate(e820.copy(), profile, params, check=False).kernel


I386_PAE = BootParams(arch="i386", pae=True, cpu=CpuFeatures(gbpages=False), gbpages=False)
I386_LEGACY = BootParams(arch="i386", pae=False, cpu=CpuFeatures(gbpages=False, nx=False), gbpages=False)


@pytest.mark.parametrize("e820,params", [
    (HOLES, BootParams(cpu=CpuFeatures(gbpages=False))),
    (HOLES, BootParams(cpu=CpuFeatures())),
    (EMBEDDED_DEFAULT, BootParams(cpu=CpuFeatures(la57=True), la57=True)),
    (HOLES, I386_PAE),
    (HOLES, I386_LEGACY),
    (HOLES, BootParams(arch="i386", pae=False, cpu=CpuFeatures(gbpages=False, nx=False, pse=False), gbpages=False)),
], ids=["4level-2M", "4level-1G", "5level", "pae", "nonpae", "nonpae-nopse"])
def test_enumerate_entries_is_the_hardware_walk(e820, params):
    """The per-entry listing sees the tree enumerate_tables and translate see: the same
    table pages, the same leaves, each leaf's va translating to its pa."""
    k = _emulated(e820, params)
    mmu = tree_mmu(k.mode, k.pgd_pfn << 12, params.cpu.pse)
    ents, tables = enumerate_entries(k.phys, mmu)
    summary = enumerate_tables(k.phys, mmu, 0, 1024 if k.mode.levels == 2 else 512)
    assert sorted(map(tuple, tables.tolist())) == sorted(map(tuple, summary.tables.tolist()))
    leaves = ents[ents["kind"] == LEAF]
    large = leaves[leaves["level"] > 1]
    assert len(leaves) - len(large) == summary.leaves_4k and len(large) == summary.leaves_2m + summary.leaves_1g
    assert (ents["value"] != 0).all() and len(ents) > len(leaves)
    t = tree_of(k.phys, mmu, k.mode, (0, 4 if k.mode.levels == 3 else (1024 if k.mode.levels == 2 else 512)))
    vas = [va for va, _, _, _ in t.leaves()]
    tr = translate(k.phys, mmu, vas)
    assert (tr.error == -1).all()
    assert tr.pa.tolist() == [pa for _, pa, _, _ in t.leaves()]
    assert [1 << int(s) for s in tr.shift] == [size for _, _, size, _ in t.leaves()]


def test_enumerate_entries_keeps_non_present_and_reserved_entries_unfollowed():
    from emu.machine.phys import PhysMem
    phys = PhysMem(1 << 30)
    phys.write64((1 << 12) + 8 * 273, 0x2067)             # PGD 273 -> PUD page 2
    phys.write64((1 << 12) + 8 * 274, 0x3000)             # not present, not zero: listed
    phys.write64((1 << 12) + 8 * 275, (1 << 50) | 0x4067)  # reserved bit (MAXPHYADDR 46): not followed
    phys.write64(2 << 12, 0x40000000 | 0x1E3)             # PUD: a 1G leaf
    phys.write64(0x4000 + 8, 0x80000000 | 0x1E3)          # in the unreached page 4
    ents, tables = enumerate_entries(phys, MMU(cr3=1 << 12, levels=4, maxphyaddr=46))
    assert ents["kind"].tolist() == [1, 2, 0, 3]
    assert ents["level"].tolist() == [4, 3, 4, 4]
    assert tables.tolist() == [[2, 3, 1, 273]]
    _, t2 = enumerate_entries(phys, MMU(cr3=1 << 12, levels=4, maxphyaddr=46), 274, 512)
    assert len(t2) == 0
    # a listing of what was written follows it (page 4), the hardware's walk does not
    ents, t3 = enumerate_entries(phys, MMU(cr3=1 << 12, levels=4, maxphyaddr=46), follow_reserved=True)
    assert t3.tolist() == [[2, 3, 1, 273], [4, 3, 1, 275]] and ents["kind"].tolist() == [1, 2, 0, 3, 2]


def test_pae_pdpte_with_accessed_set_is_listed_and_followed():
    """QEMU's walker sets ACCESSED (bit 5, reserved in a PAE PDPTE) in swapper_pg_dir: the
    oracle's listing still reaches the tables below, the hardware walk stops."""
    pdpt = bytes(0x18) + struct.pack("<Q", 0x2021) + bytes(4096 - 0x20)
    pmd = struct.pack("<512Q", *([0x000000E3] + [0] * 511))
    pages = {1: pdpt, 2: pmd}
    mode = paging_mode("i386", 3)
    mmu = tree_mmu(mode, 0x1000)
    t = tree_of(copy_tables(_pages_reader(pages), mmu, (3, 4), 1 << 30), mmu, mode, (3, 4))
    assert t.leaves() == [(0xC0000000, 0, 1 << 21, 0xE3)] and t.tables == {2: (2, 0xC0000000)}
    from emu.machine.phys import PhysMem
    phys = PhysMem(1 << 30)
    for pfn, data in pages.items():
        phys.frames[phys.frame(pfn)] = np.frombuffer(data, "<u8")
    ents, tables = enumerate_entries(phys, MMU(cr3=0x1000, levels=3, maxphyaddr=36))
    assert ents["kind"].tolist() == [3] and len(tables) == 0


def test_perturbations_are_reported():
    params = BootParams(cpu=CpuFeatures(gbpages=False), randomize_memory=True, brk_base=0x4401000)
    g = _guest_from_emu(HOLES, params)
    # one flipped bit in one leaf
    key = next(k for k, v in g.tree.entries.items() if k[0] == 2 and v & 0x80)
    g.tree.entries[key] ^= 0x100
    # a DirectMap counter
    g.direct_pages_count[2] += 1
    c = compare(g, "6.1", inputs="kernel")
    kinds = sorted(d["kind"] for d in c.differences)
    assert kinds == ["counter", "leaf"], c.differences
    # a table page that came from memblock in the "real" kernel but BRK in emu
    g2 = _guest_from_emu(HOLES, params)
    g2.pgt_buf_top = g2.pgt_buf_start  # the real kernel's BRK: empty, so every page is "memblock"
    c2 = compare(g2, "6.1", inputs="kernel")
    assert any(d["kind"] == "table_page" for d in c2.differences)
    # the kernel image's half (PGD 511: level2_kernel_pgt's leaves) is compared too
    g3 = _guest_from_emu(HOLES, params)
    key = next(k for k, v in g3.tree.entries.items() if k[1] >= 0xFFFFFFFF80000000 and k[0] == 2 and v & 0x80)
    g3.tree.entries[key] ^= 0x2
    c3 = compare(g3, "6.1", inputs="kernel")
    assert [(d["kind"], d["va"]) for d in c3.differences] == [("leaf", hex(key[1]))]


def test_profile_overrides():
    p = resolve_profile("6.1", {"real_end_check_return": True})
    assert p.real_end_check_return and p.name == "6.1"
    with pytest.raises(ValueError):
        resolve_profile("6.1", {"no_such_field": 1})


def test_params_from_guest_pti_and_brk():
    g = Guest("x", "k", "", [])
    g.page_size_mask = 0b1100
    g.supported_pte_mask = (1 << 64) - 1
    g.default_kernel_pte_mask = ((1 << 64) - 1) & ~0x100
    g.direct_gbpages = 1
    g.pgt_buf_start, g.pgt_buf_top = 0x4401, 0x4411
    g.e820 = [(0, 0x9F000, 1), (0x100000, 0x1FF00000, 1)]
    g.kernel_start = 0x1000000
    _, p, notes = params_from_guest(g, get_profile("6.1"))
    assert p.pti and p.cpu.gbpages and p.cpu.pse and p.randomize_memory is True and not notes
    assert p.brk_base == 0x4401000


def test_layout_to_qemu():
    lay = QemuLayout("t", e820=HOLES)
    args = lay.memmap_args()
    assert args[0] == "memmap=exactmap" and "memmap=0x2d000$0x7fe3000" in args
    low = QemuLayout("l", e820=E820Table([(0, 0x9F000, 1), (0x100000, 0x7F00000, 1)]))
    assert low.qemu_ram() == 0x8000000
    # 3.5 GiB or more: QEMU puts 3 GiB below 4 GiB, so RAM claimed in [3 GiB, 4 GiB) would be
    # no memory at all (the kernel's page tables written into nothing): refused, not compared
    for top in (0xE0000000, 0x1_2000_0000):
        ents = [(0, 0x9F000, 1), (0x100000, min(top, 0xE0000000) - 0x100000, 1)]
        if top > 1 << 32:
            ents.append((1 << 32, top - (1 << 32), 1))
        with pytest.raises(OracleError, match="not backed by QEMU"):
            QemuLayout("h", e820=E820Table(ents)).qemu_ram()
    # RAM up to 0x1_3000_0000: QEMU's pc machine puts 3 GiB below 4 GiB, the rest above
    ok = QemuLayout("o", e820=E820Table([(0, 0x9F000, 1), (0x100000, 0xBFF00000, 1), (1 << 32, 0x3000_0000, 1)]))
    assert ok.qemu_ram() == 0xC0000000 + (0x1_3000_0000 - (1 << 32))
    # every layout of the matrix is one QEMU can back
    from emu.tools.oracle.layouts import matrix_layouts, matrix_layouts_i386
    for m in matrix_layouts() + matrix_layouts_i386(True) + matrix_layouts_i386(False):
        assert m.qemu_ram() > 0, m.name
    # a little RAM above 4 GiB: QEMU must still be given 3.5 GiB to split (3 GiB + 0.5 GiB)
    little = QemuLayout("a", e820=E820Table([(0, 0x9F000, 1), (0x100000, 0xBFF00000, 1), (1 << 32, 0x1BA000, 1)]))
    assert little.qemu_ram() == 0xE0000000
    under = QemuLayout("u", e820=E820Table([(0, 0x9F000, 1), (0x100000, 0xDFE00000 - 0x100000, 1)]))
    assert under.qemu_ram() == 0xDFE00000


def test_layout_initrd_is_a_file_of_its_size_beside_the_serial_log(tmp_path):
    from emu.tools.oracle.layouts import by_name
    from emu.tools.oracle.qemu import qemu_command
    serial = str(tmp_path / "serial.log")
    plain = qemu_command(QemuLayout("p", mem=512 << 20), "bz", 1234, serial)
    assert "-initrd" not in plain and not (tmp_path / "initrd.img").exists()
    args = qemu_command(by_name()["512M-initrd"], "bz", 1234, serial)
    path = args[args.index("-initrd") + 1]
    assert path == str(tmp_path / "initrd.img") and (tmp_path / "initrd.img").stat().st_size == 48 << 20
    # every bottom-up layout asks for movable_node on the kernel's command line
    assert all("movable_node" in lay.cmdline() for n, lay in by_name().items() if "movable-node" in n)


def _pages_reader(pages, log=None):
    def read(pfn):
        if log is not None:
            log.append(pfn)
        return pages.get(pfn, bytes(4096))
    return read


def test_guest_tree_from_bytes_through_physmem():
    # PGD slot 273 -> PUD page 2 -> one 1G leaf and a PMD page 3 -> one 2M leaf
    pages = {1: struct.pack("<512Q", *([0] * 273 + [0x2067] + [0] * 238)),
             2: struct.pack("<512Q", *([0x8000000000_0001E3 & ((1 << 64) - 1), 0x3067] + [0] * 510)),
             3: struct.pack("<512Q", *([0x400000E3] + [0] * 511)),
             7: struct.pack("<512Q", *([0x63] * 512))}      # not reachable: never read
    mode = paging_mode("x86_64", 4)
    mmu = tree_mmu(mode, 1 << 12)
    slots = kernel_slots(mode, 0xFFFF888000000000)
    log = []
    phys = copy_tables(_pages_reader(pages, log), mmu, slots, 1 << 30)
    assert sorted(log) == [1, 2, 3]
    t = tree_of(phys, mmu, mode, slots)
    base = 0xFFFF888000000000
    assert t.leaves() == [(base, 0, 1 << 30, 0x8000000000_0001E3 & ((1 << 64) - 1)),
                          (base + (1 << 30), 0x40000000, 1 << 21, 0x400000E3)]
    assert t.tables == {2: (3, base), 3: (2, base + (1 << 30))}
    assert t.entries[(4, base)] == 0x2067 and len(t.entries) == 4


def test_guest_tree_pointing_beyond_its_memory_is_an_error():
    pages = {1: struct.pack("<512Q", *([0] * 273 + [(5 << 30) | 0x67] + [0] * 238))}
    mode = paging_mode("x86_64", 4)
    with pytest.raises(TableCopyError):
        copy_tables(_pages_reader(pages), tree_mmu(mode, 1 << 12), (256, 511), 1 << 30)


def test_cli_matrix_list(capsys):
    from emu.tools.cli import main
    assert main(["oracle", "matrix", "--list"]) == 0
    out = capsys.readouterr().out
    assert "1T-gb" in out and "2G-la57" in out and len(out.splitlines()) >= 12
    assert main(["oracle", "matrix", "--list", "--release", "all", "--flavour", "all", "--only", "512M"]) == 0
    rows = [ln.split()[:3] for ln in capsys.readouterr().out.splitlines()]
    assert rows == [["5.10", "amd64", "512M"], ["5.10", "cloud-amd64", "512M"], ["5.10", "686-pae", "512M"],
                    ["5.10", "686", "512M"], ["6.1", "amd64", "512M"], ["6.1", "cloud-amd64", "512M"],
                    ["6.1", "686-pae", "512M"], ["6.1", "686", "512M"], ["6.12", "amd64", "512M"],
                    ["6.12", "cloud-amd64", "512M"]]
    assert main(["oracle", "matrix", "--list", "--release", "4.19"]) == 2


def test_cli_dying_guest_is_an_error_with_the_serial_log(monkeypatch, capsys):
    """A guest that dies before init_mem_mapping (64M: the kernel cannot decompress): one
    line with the reason, the serial log's last lines, exit 2 -- never exit 0 in silence."""
    from emu.tools.cli import main
    from emu.tools.oracle import cli as ocli, qemu as Q

    def died(layout, bz, syms, **kw):
        raise Q.GuestError("the guest died before init_mem_mapping: QEMU exited with status 0",
                           ["serial: Probing EDD (edd=off to disable)... ok"])
    monkeypatch.setattr(Q, "run_guest", died)
    monkeypatch.setattr(ocli, "_kernel", lambda args, *a: ("bz", None, None, "fake"))
    assert main(["oracle", "run", "--mem", "64M"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == ["emu: error: the guest died before init_mem_mapping: QEMU exited with status 0",
                                "  serial: Probing EDD (edd=off to disable)... ok"]


def test_emu_inputs_is_the_one_derivation():
    """compare() takes every emu input from _emu_inputs: the kernel's state, or the log."""
    g = Guest("x", "k", "", [])
    g.page_size_mask, g.supported_pte_mask, g.default_kernel_pte_mask = 0b100, (1 << 64) - 1, (1 << 64) - 1
    g.pgt_buf_start, g.pgt_buf_top = 0x4401, 0x4411
    g.e820 = [(0, 0x9F000, 1), (0x100000, 0x1FF00000, 1)]
    g.kernel_start = 0x1000000
    g.serial = ("[    0.000000] Linux version 6.1.0-57-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian "
                "12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian "
                "6.1.192-3 (2026-11-26)\n"
                "[    0.000000] BIOS-provided physical RAM map:\n"
                "[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable\n"
                "[    0.000000] BIOS-e820: [mem 0x0000000000100000-0x000000001ffdffff] usable\n")
    prof = get_profile("6.1")
    e820, edits, params, prof1, notes, desc = _emu_inputs(g, prof, "kernel")
    assert [(e.addr, e.size) for e in e820.entries] == [(0, 0x9F000), (0x100000, 0x1FF00000)] and edits == []
    assert params.brk_base == 0x4401000 and not params.pti and desc is None and prof1.name == prof.name
    e820, edits, params2, _, notes, desc = _emu_inputs(g, prof, "log")
    assert [(e.addr, e.end) for e in e820.entries] == [(0, 0x9FC00), (0x100000, 0x1FFE0000)]
    assert params2.brk_base == params.brk_base and any("console log" in n for n in notes)
    # artefacts: everything from the log (and config/System.map/CPU), nothing from the guest's state
    g.cpu = "qemu64"
    e820, edits, params3, prof3, notes, desc = _emu_inputs(g, "auto", "artefacts")
    assert desc is not None and desc.params is params3 and prof3.name == "6.1.192"
    assert [(e.addr, e.end) for e in e820.entries] == [(0, 0x9FC00), (0x100000, 0x1FFE0000)]
    assert params3.brk_base is None and params3.cpu.vendor == "amd" and not params3.cpu.gbpages
    assert any("artefacts" in n for n in notes)
    # what the log does not tell is said (no .config, no System.map, no memblock=debug lines)
    assert {a.field for a in desc.assumptions} >= {"debug_pagealloc"}
    with pytest.raises(ValueError):
        _emu_inputs(g, prof, "guess")
    # the booted kernel's version names the profile, not the compiler's "(Debian 12.2.0-...)"
    assert guest_profile_name(g) == "6.1.192"


# ---------------------------------------------------------------------------
# the real kernel (only where QEMU and a fetched kernel are available)
# ---------------------------------------------------------------------------
def _real_kernel():
    if not shutil.which("qemu-system-x86_64"):
        pytest.skip("qemu-system-x86_64 not installed (.ci/oracle.sh)")
    from emu.tools.oracle.fetch import cached
    ki = cached()
    if ki is None:
        pytest.skip("no fetched kernel (emu oracle fetch)")
    return ki


@pytest.mark.parametrize("name", ["512M", "6G-gb"])
def test_real_kernel_matches(name):
    ki = _real_kernel()
    from emu.tools.oracle.layouts import by_name
    from emu.tools.oracle.qemu import run_guest
    from emu.tools.oracle.symbols import Symbols
    g = run_guest(by_name()[name], ki.bzimage, Symbols.load(ki.symbols), timeout=300)
    assert g.next_call == "idt_setup_early_pf"
    c = compare(g, "auto")
    assert c.identical, c.differences[:10]


def test_guest_tree_i386_formats():
    # PAE: PDPT (32-byte aligned, here at offset 0x20 of page 1) slot 3 -> PMD page 2 -> 2M leaf
    pdpt = bytes(0x20) + struct.pack("<4Q", 0, 0, 0, 0x2001) + bytes(4096 - 0x40)
    pmd = struct.pack("<512Q", *([0x8000000000_0000E3 & ((1 << 64) - 1)] + [0] * 511))
    pages = {1: pdpt, 2: pmd}
    mode = paging_mode("i386", 3)
    mmu = tree_mmu(mode, 0x1020)
    slots = kernel_slots(mode, 0xC0000000)
    assert slots == (3, 4)
    t = tree_of(copy_tables(_pages_reader(pages), mmu, slots, 1 << 30), mmu, mode, slots)
    assert t.leaves() == [(0xC0000000, 0, 1 << 21, 0x8000000000_0000E3 & ((1 << 64) - 1))]
    # non-PAE: PGD slot 768 -> a 4M leaf; slot 769 -> a page table with one 4k PTE
    pgd = [0] * 1024
    pgd[768] = 0x400000 | 0xE3
    pgd[769] = 0x3000 | 0x63
    pte = [0] * 1024
    pte[5] = 0x12345000 | 0x63
    pages = {1: struct.pack("<1024I", *pgd), 3: struct.pack("<1024I", *pte)}
    mode = paging_mode("i386", 2)
    mmu = tree_mmu(mode, 0x1000)
    slots = kernel_slots(mode, 0xC0000000)
    t = tree_of(copy_tables(_pages_reader(pages), mmu, slots, 1 << 30), mmu, mode, slots)
    assert t.leaves() == [(0xC0000000, 0x400000, 1 << 22, 0x4000E3),
                          (0xC0400000 + 5 * 4096, 0x12345000, 4096, 0x12345063)]
    assert t.tables == {3: (1, 0xC0400000)}
    # without CR4.PSE the same PDE is a table pointer (to the page at 0x400000)
    mmu = tree_mmu(mode, 0x1000, pse=False)
    t = tree_of(copy_tables(_pages_reader(pages), mmu, slots, 1 << 30), mmu, mode, slots)
    assert set(t.tables) == {3, 0x400} and all(size == 4096 for _, _, size, _ in t.leaves())


@pytest.mark.parametrize("name,pae,slot_virt0,kmap", [
    ("config-6.1.0-57-686-pae.gz", True, 0xFFA00000, (0xFFDBC000, 0xFFFBB000)),
    # 5.10: KM_TYPE_NR (20) x NR_CPUS (32) kmap slots, not 6.1's KM_MAX_IDX (16) x 32
    ("config-5.10.0-32-686-pae.gz", True, 0xFFA00000, (0xFFD3C000, 0xFFFBB000)),
])
def test_i386_fixmap_from_the_config_as_emu_derives_it(name, pae, slot_virt0, kmap):
    """The i386 fixmap inputs come from the .config through the version's enum
    (emu.kernel.arch.x86.fixmap), the guest's slot_virt[0] checks them."""
    import os
    from emu.kernel.arch.x86.fixmap import i386_params_from_config
    from emu.inputs.kconfig import load_kconfig
    from emu.tools.oracle.compare import _fixmap_32
    path = os.path.join(os.path.dirname(__file__), "data", "i386", name)
    prof = get_profile("6.1.192" if "6.1" in name else "5.10.223")
    g = Guest("x", "k", "", [])
    g.pae, g.config, g.fixmap = pae, path, {"slot_virt0": slot_virt0, "fixaddr_top": 0xFFFFF000}
    notes = []
    got = dict(_fixmap_32(g, prof, notes))
    want = i386_params_from_config(prof, load_kconfig(path), pae=pae)
    assert got == {n: want[n][0] for n in ("fixmap_bottom", "btmap_begin", "kmap_range")}
    assert got["btmap_begin"] == slot_virt0 and got["fixmap_bottom"] == 0xFF9FF000 and not notes
    assert got["kmap_range"] == kmap
    # a kernel whose early_ioremap slot lies elsewhere: said
    g.fixmap["slot_virt0"] = 0xFFC00000
    _fixmap_32(g, prof, notes)
    assert len(notes) == 1 and "slot_virt[0] is 0xffc00000" in notes[0]
    # no config: slot_virt[0] only, said
    g.config, notes = None, []
    assert dict(_fixmap_32(g, prof, notes)) == {"btmap_begin": 0xFFC00000, "fixmap_bottom": 0xFFBFF000}
    assert "no kernel config" in notes[0]


def test_params_from_guest_i386_layout():
    g = Guest("x", "k", "", [])
    g.arch, g.pae, g.page_offset = "i386", True, 0xC0000000
    g.page_size_mask, g.supported_pte_mask = 0b100, (1 << 64) - 1
    g.pgt_buf_start, g.pgt_buf_top = 0x1F1E, 0x1F24
    g.e820 = [(0, 0x9F000, 1), (0x100000, 0x7EE0000, 1)]
    g.kernel_start, g.image_end, g.init_end = 0x1000000, 0x2135000, 0x1E8C000
    g.static_pages = {"swapper_pg_dir": 0x1E98000, "initial_pg_pmd": 0x1E94000, "initial_pg_fixmap": 0x1E96000,
                      "bm_pte": 0x1E9C000, "__brk_base": 0x1F0B000}
    import os
    g.fixmap = {"slot_virt0": 0xFFA00000, "fixaddr_top": 0xFFFFF000}
    g.config = os.path.join(os.path.dirname(__file__), "data", "i386", "config-6.1.0-57-686-pae.gz")
    _, p, notes = params_from_guest(g, get_profile("6.1.192"))
    assert not notes
    assert (p.head_brk_base, p.swapper_pg_dir_addr, p.initial_pg_pmd_addr, p.initial_pg_fixmap_addr,
            p.bm_pte_addr) == (0x1F0B000, 0x1E98000, 0x1E94000, 0x1E96000, 0x1E9C000)
    assert (p.fixmap_bottom, p.btmap_begin, p.kmap_range) == (0xFF9FF000, 0xFFA00000, (0xFFDBC000, 0xFFFBB000))


@pytest.mark.parametrize("flavour", ["amd64", "686-pae", "686"])
def test_random_layouts_are_reproducible_bootable_and_backed(flavour):
    """emu oracle matrix --random: layout i of a seed does not depend on N; every layout keeps
    the kernel image RAM, has two e820 entries or more (one is the kernel's own early panic)
    and only RAM QEMU backs (qemu_ram raises otherwise); the features vary."""
    from emu.tools.oracle.layouts import KERNEL_BASE, KERNEL_TOP, random_layout, random_layouts
    lays = random_layouts(400, 5, flavour)
    assert [x.name for x in lays[:3]] == ["rand5-0", "rand5-1", "rand5-2"]
    again = random_layout(5, 7, flavour)
    assert (again.e820.entries, again.cpu, again.append, again.initrd) == \
        (lays[7].e820.entries, lays[7].cpu, lays[7].append, lays[7].initrd)
    assert random_layout(6, 7, flavour).e820.entries != again.e820.entries
    for lay in lays:
        assert lay.qemu_ram() > 0
        assert len([e for e in lay.e820.entries if e.size]) >= 2
        ram = E820Table([e for e in lay.e820.entries if e.type == E820_RAM and e.size]).sanitize()
        assert any(e.addr <= KERNEL_BASE and KERNEL_TOP <= e.end for e in ram.entries), lay.name
    assert len({x.cpu for x in lays}) >= 3 and any(x.initrd for x in lays)
    assert any("mem=" in x.append for x in lays) and any("debug_pagealloc=on" in x.append for x in lays)
    assert any("pti" in x.append for x in lays) and any("noexec=off" in x.append for x in lays)
    from emu.tools.oracle.layouts import MAX_4K_RAM
    assert all(e.end <= MAX_4K_RAM for x in lays if "-pse" in x.cpu for e in x.e820.entries)
    if flavour == "amd64":
        assert any("movable_node" in x.append for x in lays) and any("+la57" in x.cpu for x in lays)
    else:
        assert any("highmem=" in x.append for x in lays) and not any("+la57" in x.cpu for x in lays)


def test_cli_matrix_random_list(capsys):
    from emu.tools.cli import main
    assert main(["oracle", "matrix", "--random", "3", "--seed", "9", "--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [ln.split()[2] for ln in out] == ["rand9-0", "rand9-1", "rand9-2"]
    assert all("memmap=exactmap" in ln for ln in out)
    assert main(["oracle", "matrix", "--random", "3", "--only", "512M"]) == 2


def test_a_tree_too_large_for_this_host_is_refused_before_it_is_built(monkeypatch):
    """A 100 GiB guest mapped with 4 KiB pages is 26 M entries, ~30 GiB as two Trees: the
    oracle ran out of memory on such a random layout.  Both the copy of the guest's pages and
    the listing check the size first and refuse with one line."""
    import emu.kernel.estimate as est
    from emu.tools.oracle.tables import TableCopyError, copy_tables, emu_tree
    k = _emulated(E820Table([(0, 0x9F000, 1), (0x100000, (1 << 30) - 0x100000, 1)]),
                  BootParams(cpu=CpuFeatures(pse=False, gbpages=False)))
    emu_tree(k)       # fits
    monkeypatch.setattr(est, "available_memory", lambda: 64 << 20)
    with pytest.raises(TableCopyError, match="GiB available"):
        emu_tree(k)
    mode = k.mode
    from emu.tools.oracle.tables import kernel_slots, tree_mmu
    mmu = tree_mmu(mode, k.pgd_pfn << 12)

    def read_page(pfn):
        return k.phys.frames[k.phys.slot(pfn)].tobytes()
    with pytest.raises(TableCopyError, match="guest's page tables"):
        copy_tables(read_page, mmu, kernel_slots(mode, k.page_offset), 2 << 30)
