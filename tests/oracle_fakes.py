"""Fakes for the oracle's tests: a gdbstub over a real socket, and a guest's memory."""
from __future__ import annotations

import socket
import threading

from emu.tools.oracle import gdbstub


class FakeStub(threading.Thread):
    """Answers the packets GdbRemote sends, over a real socket."""

    def __init__(self, mem: dict, stop_pc: int, on_cont: str = "stop", cr3: int = 0x2A10000,
                 cr4: int = 0xB0, rsp: int = 0xFFFFC90000003F00) -> None:
        """``on_cont``: what a ``c`` packet gets -- ``stop`` (T05 at ``stop_pc``), ``exit``
        (W00: QEMU exited), ``close`` (the connection drops), ``hang`` (no answer)."""
        super().__init__(daemon=True)
        self.on_cont, self.cr3, self.cr4, self.rsp = on_cont, cr3, cr4, rsp
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        self.mem = mem
        self.stop_pc = stop_pc
        self.breaks = set()
        self.phys = False
        self.log = []
        self.last_break = None

    def _send(self, conn, payload: str) -> None:
        d = payload.encode()
        conn.sendall(b"$" + d + b"#" + gdbstub._checksum(d))

    def run(self) -> None:
        conn, _ = self.srv.accept()
        buf = b""
        while True:
            try:
                chunk = conn.recv(4096)
            except OSError:
                return
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
                ans = self.answer(pkt, conn)
                if ans is None:
                    if self.on_cont == "close":
                        conn.close()
                        return
                    continue
                self._send(conn, ans)

    def answer(self, pkt: str, conn) -> str:
        if pkt.startswith("qSupported"):
            return "PacketSize=1000;qXfer:features:read+"
        if pkt == "?":
            return "T05thread:01;"
        if pkt.startswith("Z1,"):
            self.breaks.add(int(pkt.split(",")[1], 16))
            self.last_break = int(pkt.split(",")[1], 16)
            return "OK"
        if pkt.startswith("z1,"):
            self.breaks.discard(int(pkt.split(",")[1], 16))
            return "OK"
        if pkt == "c" and self.on_cont == "exit":
            return "W00"
        if pkt == "c" and self.on_cont in ("close", "hang"):
            return None
        if pkt == "c":
            if self.last_break in self.breaks:
                self.stop_pc = self.last_break
            conn.sendall(b"$" + b"O" + b"hi".hex().encode() + b"#" + gdbstub._checksum(b"O" + b"hi".hex().encode()))
            return "T05thread:01;"
        if pkt.startswith("Qqemu.PhyMemMode:"):
            self.phys = pkt.endswith("1")
            return "OK"
        if pkt.startswith("qRcmd,"):
            cmd = bytes.fromhex(pkt[6:]).decode()
            if cmd == "info registers":
                text = (f"RIP={self.stop_pc:016x} RSP={self.rsp:016x}\nCR0=80050033 CR2=0 CR3={self.cr3:016x} "
                        f"CR4={self.cr4:08x}\nEFER=0000000000000d01\n")
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


# ---------------------------------------------------------------------------
# an x86-64 guest stopped at init_mem_mapping, as the gdbstub shows it
# ---------------------------------------------------------------------------
TEXT = 0xFFFFFFFF81000000
DATA = TEXT + 0x1000            # the variables, one region
CR3 = 0x2A10000                 # init_top_pgt's physical address (phys_base 0)
PUD = 0x3000000
PAGE_OFFSET = 0xFFFF888000000000
RSP = 0xFFFFC90000003F00
E820 = [(0, 0x9FC00, 1), (0x9FC00, 0x400, 2), (0x100000, 0x7FF00000, 1)]
RESERVED = [(0, 0x1000), (0x1000000, 0x2A20000), (0x4401000, 0x4411000)]


def _u64(v: int) -> bytes:
    return (v & ((1 << 64) - 1)).to_bytes(8, "little")


def fake_guest_x86_64():
    """(memory for FakeStub, symbol pairs): a 4-level guest whose init_top_pgt (the page
    that becomes CR3) maps the direct map's first GiB with one 1G leaf, a memblock with
    ``RESERVED``, an e820_table of ``E820``, a BRK buffer of 16 pages (4 used)."""
    import struct
    sym = {"_text": TEXT, "phys_base": DATA + 0x00, "page_offset_base": DATA + 0x08, "e820_table": DATA + 0x10,
           "pgt_buf_end": DATA + 0x18, "pgt_buf_top": DATA + 0x20, "max_pfn": DATA + 0x28,
           "page_size_mask": DATA + 0x30, "__supported_pte_mask": DATA + 0x38,
           "__default_kernel_pte_mask": DATA + 0x40, "direct_gbpages": DATA + 0x48, "max_pfn_mapped": DATA + 0x50,
           "direct_pages_count": DATA + 0x60, "memblock": DATA + 0x100,
           "init_mem_mapping": TEXT + 0x2000000, "setup_arch": TEXT + 0x2100000,
           "idt_setup_early_pf": TEXT + 0x2200000, "_etext": TEXT + 0x3000000}
    sym["init_top_pgt"] = 0xFFFFFFFF80000000 + CR3      # __START_KERNEL_map + its physical address
    data = bytearray(0x1000)
    e820_struct, regions, names = TEXT + 0x4000, TEXT + 0x5000, TEXT + 0x6000
    for _name, off, val in (("phys_base", 0, 0), ("page_offset_base", 8, PAGE_OFFSET), ("e820_table", 0x10, e820_struct),
                           ("pgt_buf_end", 0x18, 0x4401), ("pgt_buf_top", 0x20, 0x4411), ("max_pfn", 0x28, 0x80000),
                           ("__supported_pte_mask", 0x38, (1 << 64) - 1),
                           ("__default_kernel_pte_mask", 0x40, (1 << 64) - 1), ("max_pfn_mapped", 0x50, 0x80000)):
        data[off:off + 8] = _u64(val)
    data[0x30:0x34] = struct.pack("<I", 0b1100)         # page_size_mask: 2M and 1G
    data[0x48:0x4C] = struct.pack("<i", 1)              # direct_gbpages
    data[0x60:0x80] = struct.pack("<4Q", 0, 0, 0, 2)    # direct_pages_count: two 1G pages
    # struct memblock: bottom_up, current_limit, memory, reserved (each: cnt, max, total_size, regions, name)
    mem_regions = [(0x1000, 0x9E000), (0x100000, 0x7FF00000)]
    mb = bytearray(16 + 2 * 40)
    mb[0] = 0
    for i, (rs, base) in enumerate(((mem_regions, regions), ([(s, e - s) for s, e in RESERVED], regions + 0x100))):
        total = sum(sz for _, sz in rs)
        mb[16 + 40 * i: 56 + 40 * i] = struct.pack("<QQQQQ", len(rs), 128, total, base, names + 16 * i)
    reg = bytearray(0x200)
    for j, (b, sz) in enumerate(mem_regions):
        reg[24 * j: 24 * j + 24] = struct.pack("<QQII", b, sz, 0, 0)
    for j, (s, e) in enumerate(RESERVED):
        reg[0x100 + 24 * j: 0x100 + 24 * j + 24] = struct.pack("<QQII", s, e - s, 0, 0)
    data[0x100:0x100 + len(mb)] = mb
    e820 = struct.pack("<I", len(E820)) + b"".join(struct.pack("<QQI", *e) for e in E820)
    ret = sym["setup_arch"] + 0x1A5
    call = b"\xE8" + struct.pack("<i", sym["idt_setup_early_pf"] - (ret + 5))
    root = bytearray(4096)
    root[8 * 273: 8 * 274] = _u64(PUD | 0x67)
    pud = bytearray(4096)
    pud[0:8] = _u64(0x1E3 | (1 << 63))
    pud[8:16] = _u64((1 << 30) | 0x1E3 | (1 << 63))
    mem = {("v", DATA): bytes(data), ("v", e820_struct): e820, ("v", regions): bytes(reg),
           ("v", names): b"memory\0".ljust(16, b"\0") + b"reserved\0".ljust(16, b"\0"),
           ("v", RSP): _u64(ret), ("v", ret): call, ("p", CR3): bytes(root), ("p", PUD): bytes(pud)}
    return mem, [(a, n) for n, a in sym.items()], ret
