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
import threading

import pytest

from emu.kernel.arch.x86.kernel.e820 import E820_RAM, E820_RESERVED, E820Table

from emu.inputs.e820 import EMBEDDED_DEFAULT
from emu.boot.emulate import emulate
from emu.kernel.params import BootParams
from emu.tools.oracle import gdbstub
from emu.tools.oracle.compare import compare, params_from_guest, resolve_profile
from emu.tools.oracle.qemu import Guest, QemuLayout
from emu.tools.oracle.tables import emu_tree, walk_tree
from emu.machine.cpu import CpuFeatures
from emu.kernel.profiles import get_profile
from emu.kernel.arch.x86.kernel.setup import setup_arch
from emu.machine.mmu import MMU, enumerate_tables


# ---------------------------------------------------------------------------
# gdbstub framing and a fake stub
# ---------------------------------------------------------------------------
def test_framing_roundtrip():
    data = b"a$b#c}d*e"
    assert gdbstub._unescape(gdbstub._escape(data)) == data
    assert gdbstub._checksum(b"OK") == b"9a"
    # run-length encoding: "0* " is '0' repeated 1 + (' ' - 29) = 4 times
    assert gdbstub._unescape(b"0* ") == b"0000"


class FakeStub(threading.Thread):
    """Answers the packets GdbRemote sends, over a real socket."""

    def __init__(self, mem: dict, stop_pc: int) -> None:
        super().__init__(daemon=True)
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        self.mem = mem
        self.stop_pc = stop_pc
        self.breaks = set()
        self.phys = False
        self.log = []

    def _send(self, conn, payload: str) -> None:
        d = payload.encode()
        conn.sendall(b"$" + d + b"#" + gdbstub._checksum(d))

    def run(self) -> None:
        conn, _ = self.srv.accept()
        buf = b""
        while True:
            chunk = conn.recv(4096)
            if not chunk:
                return
            buf += chunk
            while b"#" in buf:
                start = buf.find(b"$")
                if start < 0:
                    buf = b""
                    break
                end = buf.find(b"#", start)
                if end < 0 or len(buf) < end + 3:
                    break
                pkt = buf[start + 1:end].decode()
                buf = buf[end + 3:]
                conn.sendall(b"+")
                self.log.append(pkt)
                self._send(conn, self.answer(pkt, conn))

    def answer(self, pkt: str, conn) -> str:
        if pkt.startswith("qSupported"):
            return "PacketSize=1000;qXfer:features:read+"
        if pkt == "?":
            return "T05thread:01;"
        if pkt.startswith("Z1,"):
            self.breaks.add(int(pkt.split(",")[1], 16))
            return "OK"
        if pkt.startswith("z1,"):
            self.breaks.discard(int(pkt.split(",")[1], 16))
            return "OK"
        if pkt == "c":
            conn.sendall(b"$" + b"O" + b"hi".hex().encode() + b"#" + gdbstub._checksum(b"O" + b"hi".hex().encode()))
            return "T05thread:01;"
        if pkt.startswith("Qqemu.PhyMemMode:"):
            self.phys = pkt.endswith("1")
            return "OK"
        if pkt.startswith("qRcmd,"):
            cmd = bytes.fromhex(pkt[6:]).decode()
            if cmd == "info registers":
                text = f"RIP={self.stop_pc:016x} RSP=ffffc90000003f00\nCR0=80050033 CR2=0 CR3=0000000002a10000 CR4=000000b0\nEFER=0000000000000d01\n"
                return text.encode().hex()
            return "E01"
        if pkt.startswith("m"):
            a, n = (int(x, 16) for x in pkt[1:].split(","))
            space = "p" if self.phys else "v"
            for (sp, base), data in self.mem.items():
                if sp == space and base <= a and a + n <= base + len(data):
                    return data[a - base:a - base + n].hex()
            return "E14"
        return ""


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
    g.tree = emu_tree(k)
    g.next_call = "idt_setup_early_pf"
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
    c = compare(g, "6.1")
    assert c.identical, c.differences[:5]
    assert c.params["cpu"]["gbpages"] == cpu.gbpages and c.params["la57"] == la57


def test_walk_agrees_with_enumerate_tables():
    r = emulate(HOLES.copy(), "6.1", BootParams(cpu=CpuFeatures(gbpages=False)), check=False)
    k = r.kernel
    t = emu_tree(k)
    lo = (k.page_offset >> 39) & 511          # the direct map's slots (emu_tree's), not PGD[511]
    s = enumerate_tables(k.phys, MMU(cr3=k.pgd_pfn << 12, levels=4, maxphyaddr=52), lo, lo + 128)
    sizes = [size for _, _, size, _ in t.leaves()]
    assert sizes.count(1 << 12) == s.leaves_4k and sizes.count(1 << 21) == s.leaves_2m
    assert set(t.tables) == {int(p) for p in s.tables[:, 0]} - {k.pgd_pfn}


def test_perturbations_are_reported():
    params = BootParams(cpu=CpuFeatures(gbpages=False), randomize_memory=True, brk_base=0x4401000)
    g = _guest_from_emu(HOLES, params)
    # one flipped bit in one leaf
    key = next(k for k, v in g.tree.entries.items() if k[0] == 2 and v & 0x80)
    g.tree.entries[key] ^= 0x100
    # a DirectMap counter
    g.direct_pages_count[2] += 1
    c = compare(g, "6.1")
    kinds = sorted(d["kind"] for d in c.differences)
    assert kinds == ["counter", "leaf"], c.differences
    # a table page that came from memblock in the "real" kernel but BRK in emu
    g2 = _guest_from_emu(HOLES, params)
    g2.pgt_buf_top = g2.pgt_buf_start  # the real kernel's BRK: empty, so every page is "memblock"
    c2 = compare(g2, "6.1")
    assert any(d["kind"] == "table_page" for d in c2.differences)


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
    # RAM up to 0x1_3000_0000: QEMU's pc machine puts 3 GiB below 4 GiB, the rest above
    assert lay.qemu_ram() == 0xC0000000 + (0x1_3000_0000 - (1 << 32))
    args = lay.memmap_args()
    assert args[0] == "memmap=exactmap" and "memmap=0x2d000$0x7fe3000" in args
    low = QemuLayout("l", e820=E820Table([(0, 0x9F000, 1), (0x100000, 0x7F00000, 1)]))
    assert low.qemu_ram() == 0x8000000


def test_walk_tree_from_bytes():
    # PGD slot 273 -> PUD page 2 -> one 1G leaf
    pages = {1: struct.pack("<512Q", *([0] * 273 + [0x2067] + [0] * 238)),
             2: struct.pack("<512Q", *([0x800000000000_01E3 & ((1 << 64) - 1)] + [0] * 511))}
    t = walk_tree(lambda pfn: pages.get(pfn, bytes(4096)), 1, 4, 0xFFFF888000000000)
    assert t.leaves() == [(0xFFFF888000000000, 0, 1 << 30, 0x8000000000_0001E3 & ((1 << 64) - 1))]
    assert t.tables == {2: (3, 0xFFFF888000000000)}


def test_cli_matrix_list(capsys):
    from emu.tools.cli import main
    assert main(["oracle", "matrix", "--list"]) == 0
    out = capsys.readouterr().out
    assert "1T-gb" in out and "2G-la57" in out and len(out.splitlines()) >= 12


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
    c = compare(g, "6.1")
    assert c.identical, c.differences[:10]


def test_walk_tree_i386_formats():
    from emu.tools.oracle.tables import format_for
    # PAE: PDPT (32-byte aligned, here at offset 0x20 of page 1) slot 3 -> PMD page 2 -> 2M leaf
    pdpt = bytes(0x20) + struct.pack("<4Q", 0, 0, 0, 0x2001) + bytes(4096 - 0x40)
    pmd = struct.pack("<512Q", *([0x800000000000_00E3 & ((1 << 64) - 1)] + [0] * 511))
    pages = {1: pdpt, 2: pmd}
    fmt = format_for(3, True, "i386")
    t = walk_tree(lambda p: pages.get(p, bytes(4096)), 1, 3, 0, (3, 4), fmt, top_offset=0x20)
    assert t.leaves() == [(0xC0000000, 0, 1 << 21, 0x8000000000_0000E3 & ((1 << 64) - 1))]
    # non-PAE: PGD slot 768 -> a 4M leaf; slot 769 -> a page table with one 4k PTE
    pgd = [0] * 1024
    pgd[768] = 0x400000 | 0xE3
    pgd[769] = 0x3000 | 0x63
    pte = [0] * 1024
    pte[5] = 0x12345000 | 0x63
    pages = {1: struct.pack("<1024I", *pgd), 3: struct.pack("<1024I", *pte)}
    t = walk_tree(lambda p: pages.get(p, bytes(4096)), 1, 2, 0, (768, 1024), format_for(2, False, "i386"))
    assert t.leaves() == [(0xC0000000, 0x400000, 1 << 22, 0x4000E3),
                          (0xC0400000 + 5 * 4096, 0x12345000, 4096, 0x12345063)]
    assert t.tables == {3: (1, 0xC0400000)}


def test_fixmap_layout_of_debian_61_i386():
    """6.1's enum fixed_addresses for Debian's 686(-pae) config: FIX_BTMAP_BEGIN at index
    1535 (0xffa00000), FIX_WP_TEST below it, kmap slots 68..579 over two 2M PMDs."""
    from emu.tools.oracle.fixmap import fixmap_indices_32, fixmap_layout_32
    cfg = {k: "y" for k in ("X86_LOCAL_APIC", "X86_IO_APIC", "KMAP_LOCAL", "PCI_MMCONFIG", "ACPI_APEI_GHES")}
    cfg["NR_CPUS"] = "32"
    ix = fixmap_indices_32(cfg)
    assert (ix["kmap_begin"], ix["kmap_end"], ix["btmap_begin"], ix["end_of_fixed_addresses"]) == (68, 579, 1535, 1537)
    lay = fixmap_layout_32(cfg, True, btmap_begin_va=0xFFA00000)
    assert lay["fixmap_bottom"] == 0xFF9FF000 and lay["btmap_begin"] == 0xFFA00000
    assert lay["kmap_range"] == (0xFFDBC000, 0xFFFBB000) and not lay["notes"]
    # a disagreeing slot_virt[0] wins and is reported
    lay = fixmap_layout_32(cfg, True, btmap_begin_va=0xFFC00000)
    assert lay["btmap_begin"] == 0xFFC00000 and lay["fixmap_bottom"] == 0xFFBFF000 and lay["notes"]
    # no config: only slot_virt[0]
    lay = fixmap_layout_32(None, False, btmap_begin_va=0xFFA00000)
    assert "kmap_range" not in lay and lay["fixmap_bottom"] == 0xFF9FF000


def test_params_from_guest_i386_layout():
    g = Guest("x", "k", "", [])
    g.arch, g.pae, g.page_offset = "i386", True, 0xC0000000
    g.page_size_mask, g.supported_pte_mask = 0b100, (1 << 64) - 1
    g.pgt_buf_start, g.pgt_buf_top = 0x1F1E, 0x1F24
    g.e820 = [(0, 0x9F000, 1), (0x100000, 0x7EE0000, 1)]
    g.kernel_start, g.image_end, g.init_end = 0x1000000, 0x2135000, 0x1E8C000
    g.static_pages = {"swapper_pg_dir": 0x1E98000, "initial_pg_pmd": 0x1E94000, "initial_pg_fixmap": 0x1E96000,
                      "bm_pte": 0x1E9C000, "__brk_base": 0x1F0B000}
    g.fixmap = {"fixmap_bottom": 0xFF9FF000, "btmap_begin": 0xFFA00000, "kmap_range": (0xFFDBC000, 0xFFFBB000),
                "notes": []}
    _, p, _ = params_from_guest(g, get_profile("6.1"))
    assert (p.head_brk_base, p.swapper_pg_dir_addr, p.initial_pg_pmd_addr, p.initial_pg_fixmap_addr,
            p.bm_pte_addr) == (0x1F0B000, 0x1E98000, 0x1E94000, 0x1E96000, 0x1E9C000)
    assert (p.fixmap_bottom, p.btmap_begin, p.kmap_range) == (0xFF9FF000, 0xFFA00000, (0xFFDBC000, 0xFFFBB000))
