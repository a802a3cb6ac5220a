"""Boot a real kernel under QEMU (TCG), stop it right after ``init_mem_mapping()``
returns, and read what it built.

Two hardware breakpoints through QEMU's gdbstub:

1. at ``init_mem_mapping`` (entry): the inputs -- ``e820_table``, memblock
   ``memory``/``reserved``, the BRK buffer (``pgt_buf_end``/``pgt_buf_top``),
   ``phys_base``, and the return address on the stack, which must lie inside
   ``setup_arch`` (the breakpoint of step 2; the call found there is reported);
2. at that return address: CR3/CR4/EFER, the kernel's page-size and PTE
   masks, ``direct_pages_count``, ``max_pfn_mapped``, and the direct-map
   page tables, walked from CR3 in guest-physical memory page by page.

The QEMU process is killed and reaped in every case.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from emu.kernel.arch.x86.kernel.e820 import E820_RAM, E820Table
from emu.tools.oracle.gdbstub import GdbError, GdbRemote, GdbTimeout
from emu.tools.oracle.symbols import START_KERNEL_MAP, Symbols
from emu.tools.oracle.tables import Tree, format_for, walk_tree

CMDLINE_BASE = "console=ttyS0 earlyprintk=serial,ttyS0,115200 ignore_loglevel nokaslr memblock=debug"
PAGE = 4096
#: QEMU "pc" machine: RAM beyond this goes above 4 GiB (gigabyte_align)
PC_LOWMEM_SPLIT = 0xE0000000
PC_LOWMEM = 0xC0000000


class OracleError(RuntimeError):
    """The real kernel could not be booted or read (one line)."""


@dataclass
class QemuLayout:
    """How one layout is expressed to QEMU and the kernel."""

    name: str
    mem: Optional[int] = None          # -m bytes (None: derived from e820)
    e820: Optional[E820Table] = None   # memmap=exactmap ... (None: QEMU's own map)
    cpu: str = "qemu64"
    append: str = ""
    machine: str = "pc"

    def qemu_ram(self) -> int:
        if self.mem is not None:
            return self.mem
        if self.e820 is None:
            return 512 << 20
        top = max(e.end for e in self.e820.entries if e.type == E820_RAM)
        if top <= PC_LOWMEM_SPLIT:
            ram = top
        elif top <= 1 << 32:
            raise OracleError("RAM between 3.5 GiB and 4 GiB cannot be backed on QEMU's pc machine")
        else:
            ram = PC_LOWMEM + top - (1 << 32)
        return (ram + (2 << 20) - 1) & ~((2 << 20) - 1)

    def memmap_args(self) -> List[str]:
        if self.e820 is None:
            return []
        out = ["memmap=exactmap"]
        for e in self.e820.entries:
            if e.size == 0:
                continue
            sep = {E820_RAM: "@", 3: "#", 12: "!"}.get(e.type, "$")
            out.append(f"memmap={e.size:#x}{sep}{e.addr:#x}")
        return out

    def cmdline(self) -> str:
        parts = [CMDLINE_BASE] + self.memmap_args()
        if self.append:
            parts.append(self.append)
        return " ".join(parts)


@dataclass
class Guest:
    """What the real kernel had and built."""

    layout: str
    kernel: str
    cmdline: str
    qemu_args: List[str]
    boot_seconds: float = 0.0
    serial: str = ""
    # at init_mem_mapping entry
    e820: List[Tuple[int, int, int]] = field(default_factory=list)
    memblock_memory: List[Tuple[int, int]] = field(default_factory=list)
    memblock_reserved: List[Tuple[int, int]] = field(default_factory=list)
    memblock_bottom_up: bool = False
    pgt_buf_start: int = 0
    pgt_buf_top: int = 0
    phys_base: int = 0
    kernel_start: int = 0
    max_pfn: int = 0
    return_address: int = 0
    next_call: str = ""
    # right after init_mem_mapping returned
    cr3: int = 0
    cr4: int = 0
    efer: int = 0
    page_size_mask: int = 0
    supported_pte_mask: int = 0
    default_kernel_pte_mask: int = 0
    direct_gbpages: int = 0
    pgt_buf_end: int = 0
    max_pfn_mapped: int = 0
    direct_pages_count: List[int] = field(default_factory=list)
    page_offset: int = 0
    levels: int = 4
    tree: Optional[Tree] = None
    #: the same slots of the page that becomes CR3 (swapper_pg_dir / init_top_pgt), read at
    #: init_mem_mapping's entry: what setup_arch (and head_32/head_64) left there
    initial_tree: Optional[Tree] = None
    #: "x86_64" or "i386"; for i386 also PAE, max_low_pfn and the image's layout
    arch: str = "x86_64"
    pae: bool = True
    max_low_pfn: int = 0
    image_end: int = 0
    init_end: int = 0
    static_pages: Dict[str, int] = field(default_factory=dict)
    #: i386: the fixmap geometry (emu.tools.oracle.fixmap.fixmap_layout_32: fixmap_bottom,
    #: btmap_begin, kmap_range, source, notes), from the build's config and slot_virt[0]
    fixmap: Dict[str, object] = field(default_factory=dict)

    @property
    def la57(self) -> bool:
        return bool(self.cr4 & (1 << 12))

    def to_json(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k not in ("tree", "serial")}
        d["tree"] = self.tree.summary() if self.tree else None
        d["initial_tree"] = self.initial_tree.summary() if self.initial_tree else None
        return d


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def qemu_binary() -> str:
    b = shutil.which("qemu-system-x86_64")
    if not b:
        raise OracleError("qemu-system-x86_64 not found (Debian: apt-get install qemu-system-x86)")
    return b


def qemu_command(layout: QemuLayout, bzimage: str, port: int, serial: str) -> List[str]:
    ram = layout.qemu_ram()
    mb = ram >> 20
    args = [qemu_binary(), "-machine", f"{layout.machine},memory-backend=ram0",
            # reserve=off: MAP_NORESERVE, so multi-TiB guests cost only the pages they touch
            "-object", f"memory-backend-ram,id=ram0,size={mb}M,reserve=off",
            "-accel", "tcg", "-cpu", layout.cpu, "-m", f"{mb}M", "-smp", "1",
            "-kernel", bzimage, "-append", layout.cmdline(),
            "-display", "none", "-vga", "none", "-nodefaults", "-no-reboot",
            "-serial", f"file:{serial}", "-monitor", "none",
            "-gdb", f"tcp:127.0.0.1:{port}", "-S"]
    return args


def _u64(b: bytes, off: int = 0) -> int:
    return struct.unpack_from("<Q", b, off)[0]


def _read_u64(g: GdbRemote, va: int) -> int:
    return _u64(g.read(va, 8))


def _read_word(g: GdbRemote, va: int, size: int) -> int:
    return int.from_bytes(g.read(va, size), "little")


def _read_memblock(g: GdbRemote, va: int, word: int = 8, phys: int = 8
                   ) -> Tuple[bool, List[Tuple[int, int]], List[Tuple[int, int]]]:
    """``struct memblock`` (3.x-6.x layout): bottom_up, current_limit, memory, reserved;
    ``struct memblock_type`` {cnt, max, total_size, regions, name};
    ``struct memblock_region`` {base, size, flags[, nid]} (the stride, with or without
    NUMA's nid, is the one under which ``reserved.total_size`` adds up).  ``word``:
    sizeof(long), ``phys``: sizeof(phys_addr_t); i386 aligns 8-byte members to 4."""
    W, P = word, phys
    wc, pc = ("Q" if W == 8 else "I"), ("Q" if P == 8 else "I")
    cur_off = W if W == 8 else 4
    mem_off = cur_off + P
    type_size = W + W + P + W + W
    if W == 8:
        type_size = 40
    raw = g.read(va, mem_off + 2 * type_size)
    bottom_up = bool(raw[0])
    out = []
    fmt = "<" + wc + wc + pc + wc + wc
    types = []
    for off in (mem_off, mem_off + type_size):
        cnt, mx, total, regions, name = struct.unpack_from(fmt, raw, off)
        label = g.read(name, 16).split(b"\0")[0].decode("latin-1", "replace") if name else ""
        if label not in ("memory", "reserved") or cnt > mx or cnt > 1 << 16:
            raise OracleError(f"struct memblock at {va:#x} does not have the expected layout")
        types.append((cnt, total, regions))
    base_size = 2 * P + 4
    strides = [base_size + 4, base_size] if W == 8 else [base_size, base_size + 4]
    stride = strides[0]
    cnt, total, regions = types[1]
    for cand in strides:
        data = g.read(regions, cand * cnt) if cnt else b""
        if sum(struct.unpack_from("<" + pc, data, cand * i + P)[0] for i in range(cnt)) == total:
            stride = cand
            break
    for cnt, total, regions in types:
        data = g.read(regions, stride * cnt) if cnt else b""
        regs = []
        for i in range(cnt):
            base, size = struct.unpack_from("<" + pc + pc, data, stride * i)
            if size:
                regs.append((base, base + size))
        out.append(regs)
    # (total_size is not checked: memblock_trim_memory() does not update it)
    return bottom_up, out[0], out[1]


def _read_e820(g: GdbRemote, syms: Symbols, word: int = 8) -> List[Tuple[int, int, int]]:
    ptr = _read_word(g, syms["e820_table"], word)
    n = struct.unpack("<I", g.read(ptr, 4))[0]
    if n > 3 * 128 + 128:
        raise OracleError("e820_table has an implausible number of entries")
    data = g.read(ptr + 4, 20 * n) if n else b""
    return [struct.unpack_from("<QQI", data, 20 * i) for i in range(n)]


def run_guest(layout: QemuLayout, bzimage: str, symbols: Symbols, timeout: float = 300.0,
              keep_serial: Optional[str] = None, config: Optional[str] = None) -> Guest:
    """Boot ``bzimage`` with ``layout``; return what it had and built.  ``config``: the
    build's .config (i386: its fixmap layout)."""
    port = _free_port()
    tmpdir = tempfile.mkdtemp(prefix="emu-oracle-")
    serial = os.path.join(tmpdir, "serial.log")
    args = qemu_command(layout, bzimage, port, serial)
    g_out = Guest(layout.name, bzimage, layout.cmdline(), args)
    deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    gdb: Optional[GdbRemote] = None
    try:
        try:
            gdb = GdbRemote("127.0.0.1", port, connect_timeout=30)
        except GdbError as e:
            proc.kill()
            out = proc.communicate()[0].decode("utf-8", "replace").strip()
            raise OracleError(f"QEMU did not start: {out.splitlines()[-1] if out else e}") from None
        imm = symbols["init_mem_mapping"]
        gdb.hbreak(imm)
        stop = gdb.cont(max(1.0, deadline - time.monotonic()))
        regs = gdb.registers()
        if regs.get("rip", regs.get("eip")) != imm:
            raise OracleError(f"stopped at {regs.get('rip', regs.get('eip', 0)):#x}, "
                              f"not init_mem_mapping ({stop})")
        gdb.remove_hbreak(imm)
        # --- inputs ---
        is32 = symbols["_text"] < 1 << 32
        W = 4 if is32 else 8
        g_out.arch = "i386" if is32 else "x86_64"
        g_out.pae = bool(regs.get("cr4", 0) & 0x20) if is32 else True
        P = 8 if (not is32 or g_out.pae) else 4
        rsp = _rsp(gdb)
        ret = _read_word(gdb, rsp, W)
        name, _ = symbols.lookup(ret)
        if name != "setup_arch":
            raise OracleError(f"init_mem_mapping was called from {name}, not setup_arch")
        g_out.return_address = ret
        code = gdb.read(ret, 5)
        if code[0] == 0xE8:
            tgt = (ret + 5 + struct.unpack_from("<i", code, 1)[0]) & ((1 << (8 * W)) - 1)
            g_out.next_call = symbols.lookup(tgt)[0]
        else:
            g_out.next_call = f"(no call: {code.hex()})"
        if is32:
            # __pa(x) = x - PAGE_OFFSET; _text lies at PAGE_OFFSET + LOAD_PHYSICAL_ADDR
            po = symbols["_text"] & 0xF0000000
            g_out.page_offset = po
            g_out.kernel_start = symbols["_text"] - po
            g_out.image_end = symbols["_end"] - po
            g_out.init_end = symbols["__init_end"] - po
            for sym in ("swapper_pg_dir", "initial_page_table", "initial_pg_pmd", "initial_pg_fixmap",
                        "bm_pte", "__brk_base"):
                if symbols.get(sym) is not None:
                    g_out.static_pages[sym] = symbols[sym] - po
            # the fixmap: FIXADDR_TOP (a variable on i386) and early_ioremap's first slot
            # (slot_virt[0] = fix_to_virt(FIX_BTMAP_BEGIN), __initdata, set by early_ioremap_init)
            from emu.tools.oracle.fixmap import FIXADDR_TOP, fixmap_layout_32, read_kconfig
            top = _read_word(gdb, symbols["__FIXADDR_TOP"], 4) if symbols.get("__FIXADDR_TOP") else FIXADDR_TOP
            sv = _read_word(gdb, symbols["slot_virt"], 4) if symbols.get("slot_virt") else None
            cfg = read_kconfig(config) if config and os.path.exists(config) else None
            g_out.fixmap = fixmap_layout_32(cfg, g_out.pae, top, sv or None)
            g_out.fixmap["slot_virt0"] = sv
        else:
            g_out.phys_base = _read_u64(gdb, symbols["phys_base"])
            g_out.kernel_start = symbols["_text"] - START_KERNEL_MAP + g_out.phys_base
            # page_offset_base exists with CONFIG_RANDOMIZE_MEMORY (4.8+), set before
            # init_mem_mapping; without it the direct map is walked over the kernel half
            pob = symbols.get("page_offset_base")
            g_out.page_offset = _read_u64(gdb, pob) if pob else 0
        g_out.e820 = _read_e820(gdb, symbols, W)
        g_out.memblock_bottom_up, g_out.memblock_memory, g_out.memblock_reserved = \
            _read_memblock(gdb, symbols["memblock"], W, P)
        g_out.pgt_buf_start = _read_word(gdb, symbols["pgt_buf_end"], W)
        g_out.pgt_buf_top = _read_word(gdb, symbols["pgt_buf_top"], W)
        g_out.max_pfn = _read_word(gdb, symbols["max_pfn"], W)
        # the tables init_mem_mapping starts from (in the PGD it will load into CR3)
        pgd_sym = "swapper_pg_dir" if is32 else "init_top_pgt"
        if symbols.get(pgd_sym) is not None:
            pgd_pa = (symbols[pgd_sym] - g_out.page_offset) if is32 else \
                (symbols[pgd_sym] - START_KERNEL_MAP + g_out.phys_base)
            g_out.initial_tree = _walk(gdb, g_out, pgd_pa, is32, bool(regs.get("cr4", 0) & (1 << 12)), deadline)
            gdb.set_phys_mode(False)
        # --- right after it returned ---
        gdb.hbreak(ret)
        gdb.cont(max(1.0, deadline - time.monotonic()))
        g_out.boot_seconds = time.monotonic() - t0
        regs = gdb.registers()
        pc = regs.get("rip", regs.get("eip"))
        if pc != ret:
            raise OracleError(f"stopped at {pc or 0:#x}, not at {ret:#x}")
        g_out.cr3, g_out.cr4, g_out.efer = regs["cr3"], regs["cr4"], regs.get("efer", 0)
        g_out.page_size_mask = struct.unpack("<I", gdb.read(symbols["page_size_mask"], 4))[0]
        g_out.supported_pte_mask = _read_word(gdb, symbols["__supported_pte_mask"], P)
        g_out.default_kernel_pte_mask = _read_word(gdb, symbols["__default_kernel_pte_mask"], P)
        g_out.direct_gbpages = struct.unpack("<i", gdb.read(symbols["direct_gbpages"], 4))[0]
        g_out.pgt_buf_end = _read_word(gdb, symbols["pgt_buf_end"], W)
        g_out.max_pfn_mapped = _read_word(gdb, symbols["max_pfn_mapped"], W)
        if symbols.get("max_low_pfn") is not None:
            g_out.max_low_pfn = _read_word(gdb, symbols["max_low_pfn"], W)
        # direct_pages_count[PG_LEVEL_NUM]: NONE, 4K, 2M, 1G (and 512G from 4.x)
        dpc = gdb.read(symbols["direct_pages_count"], 4 * W)
        g_out.direct_pages_count = [int.from_bytes(dpc[i * W:(i + 1) * W], "little") for i in range(4)]
        if not is32:
            g_out.levels = 5 if g_out.la57 else 4
        else:
            g_out.levels = 3 if g_out.pae else 2
        g_out.tree = _walk(gdb, g_out, g_out.cr3, is32, g_out.la57, deadline)
    except GdbTimeout:
        raise OracleError(f"the kernel did not reach the breakpoint within {timeout:.0f} s "
                          f"(serial log: {_tail(serial)})") from None
    except GdbError as e:
        raise OracleError(f"gdbstub: {e} (serial log: {_tail(serial)})") from None
    finally:
        if gdb is not None:
            gdb.close()
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait()
        try:
            with open(serial, encoding="utf-8", errors="replace") as f:
                g_out.serial = f.read()
        except OSError:
            pass
        if keep_serial:
            with open(keep_serial, "w") as f:
                f.write(g_out.serial)
        shutil.rmtree(tmpdir, ignore_errors=True)
    return g_out


def _walk(gdb: GdbRemote, g: Guest, cr3: int, is32: bool, la57: bool, deadline: float) -> Tree:
    """The direct-map tree below ``cr3`` (guest-physical reads, one page per table)."""
    gdb.set_phys_mode(True)

    def read_page(pfn: int) -> bytes:
        if time.monotonic() > deadline:
            raise GdbTimeout("timed out reading the page tables")
        return gdb.read(pfn << 12, PAGE, phys=True)

    if is32:
        levels = 3 if g.pae else 2
        fmt = format_for(levels, g.pae, "i386")
        slots = (g.page_offset >> (30 if g.pae else 22), fmt.top_entries)
        return walk_tree(read_page, cr3 >> 12, levels, 0, slots, fmt,
                         top_offset=(cr3 & 0xFE0) if g.pae else 0)
    levels = 5 if la57 else 4
    return walk_tree(read_page, cr3 >> 12, levels, g.page_offset)


def _rsp(g: GdbRemote) -> int:
    text = g.monitor("info registers")
    m = re.search(r"[RE]SP=([0-9a-fA-F]+)", text)
    if not m:
        raise OracleError("no RSP in 'info registers'")
    return int(m.group(1), 16)


def _tail(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [ln for ln in f.read().splitlines() if ln.strip()]
        return lines[-1][:160] if lines else "empty"
    except OSError:
        return "none"
