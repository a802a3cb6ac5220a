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

The flow, one function each (every piece testable on its own): :class:`QemuProcess`
(start QEMU paused; ``close`` kills and reaps it in every case), :func:`connect`,
:func:`run_to` (a hardware breakpoint and the stop there, or an :class:`GuestError`
with the serial log's last lines when the guest dies or times out first),
:func:`read_entry_state` (the inputs), :func:`read_initial_tables`,
:func:`read_exit_state`, :func:`read_tables`; :func:`run_guest` strings them together.
"""
from __future__ import annotations

import dataclasses
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
from emu.tools.oracle.gdbstub import GdbClosed, GdbError, GdbRemote, GdbTimeout
from emu.tools.oracle.symbols import START_KERNEL_MAP, Symbols
from emu.tools.oracle.tables import TableCopyError, Tree, copy_tables, kernel_slots, paging_mode, tree_mmu, tree_of

CMDLINE_BASE = "console=ttyS0 earlyprintk=serial,ttyS0,115200 ignore_loglevel nokaslr memblock=debug"
PAGE = 4096
#: QEMU "pc" machine: RAM beyond this goes above 4 GiB (gigabyte_align)
PC_LOWMEM_SPLIT = 0xE0000000
PC_LOWMEM = 0xC0000000


class OracleError(RuntimeError):
    """The real kernel could not be booted or read (one line; ``details``: more lines
    the CLI prints below it, e.g. the end of the serial log)."""

    def __init__(self, message: str, details: Optional[List[str]] = None) -> None:
        super().__init__(message)
        self.details: List[str] = list(details or [])


class GuestError(OracleError):
    """The guest died, or did not get there in time, before the oracle could read it."""


@dataclass
class QemuLayout:
    """How one layout is expressed to QEMU and the kernel."""

    name: str
    mem: Optional[int] = None          # -m bytes (None: derived from e820)
    e820: Optional[E820Table] = None   # memmap=exactmap ... (None: QEMU's own map)
    cpu: str = "qemu64"
    append: str = ""
    machine: str = "pc"
    #: bytes of initrd (a file of zeros, ``-initrd``): QEMU's loader puts it below the top of
    #: low RAM and the kernel reserves it in memblock before init_mem_mapping (0: none)
    initrd: int = 0

    def qemu_ram(self) -> int:
        """QEMU's ``-m`` for this layout: ``mem``, or enough to back every RAM entry of
        ``e820`` where the pc machine puts its memory (:func:`pc_ram_ranges`).  An e820 whose
        RAM QEMU cannot back is an :class:`OracleError`: the kernel would write its page
        tables into nothing, and the tree read back would differ from emu's for QEMU's sake."""
        if self.mem is not None:
            return self.mem
        if self.e820 is None:
            return 512 << 20
        ram_entries = [e for e in self.e820.entries if e.type == E820_RAM and e.size > 0]
        top = max(e.end for e in ram_entries)
        if top <= PC_LOWMEM_SPLIT:
            ram = top
        elif top <= 1 << 32:
            raise OracleError("RAM between 3.5 GiB and 4 GiB cannot be backed on QEMU's pc machine")
        else:
            # at least 3.5 GiB, or QEMU would put it all below 4 GiB
            ram = max(PC_LOWMEM + top - (1 << 32), PC_LOWMEM_SPLIT)
        ram = (ram + (2 << 20) - 1) & ~((2 << 20) - 1)
        backed = pc_ram_ranges(ram)
        for e in ram_entries:
            if not any(a <= e.addr and e.end <= b for a, b in backed):
                raise OracleError(f"e820 RAM [{e.addr:#x}-{e.end - 1:#x}] is not backed by QEMU's pc machine, "
                                  f"which puts {ram >> 20} MiB at " + " and ".join(
                                      f"[{a:#x}-{b - 1:#x}]" for a, b in backed)
                                  + " (with 3.5 GiB or more, only 3 GiB below 4 GiB)")
        return ram

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
    #: the fixmap as the running kernel shows it: ``slot_virt0`` (early_ioremap's first
    #: slot, FIX_BTMAP_BEGIN), i386 also ``fixaddr_top`` (__FIXADDR_TOP)
    fixmap: Dict[str, Optional[int]] = field(default_factory=dict)
    #: the build's .config (the artefact inputs; the i386 fixmap geometry of --inputs kernel)
    config: Optional[str] = None
    #: the symbol table file the oracle used (System.map, or the image's kallsyms list)
    symbols_file: Optional[str] = None
    #: QEMU's -cpu option (the CPU the user would describe: emu.tools.oracle.compare.user_cpu)
    cpu: str = ""
    #: seconds the guest ran on after the tables were read, to print its command line
    log_after_stop: float = 0.0
    #: the symbol table itself (not in to_json)
    symbols: Optional[Symbols] = None

    @property
    def la57(self) -> bool:
        return bool(self.cr4 & (1 << 12))

    def to_json(self) -> dict:
        """JSON-ready: addresses, registers and masks as ``"0x..."`` strings, pfns and counts
        as integers; the trees as summaries (:mod:`emu.tools.oracle.saved` keeps them whole)."""
        d = {}
        for k, v in self.__dict__.items():
            if k in ("tree", "serial", "symbols", "initial_tree"):
                continue
            if k in GUEST_HEX_FIELDS:
                v = _hexs(v)
            elif k == "e820":
                v = [{"addr": _hexs(a), "size": n, "type": t} for a, n, t in v]
            elif k in ("memblock_memory", "memblock_reserved"):
                v = [[_hexs(a), _hexs(b)] for a, b in v]
            elif k in ("static_pages", "fixmap"):
                v = {n: _hexs(a) for n, a in v.items()}
            d[k] = v
        d["tree"] = self.tree.summary() if self.tree else None
        d["initial_tree"] = self.initial_tree.summary() if self.initial_tree else None
        if d["tree"]:
            d["tree"]["cr3"] = _hexs(d["tree"]["cr3"])
        if d["initial_tree"]:
            d["initial_tree"]["cr3"] = _hexs(d["initial_tree"]["cr3"])
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Guest":
        """The inverse of :meth:`to_json` (without the trees and the serial log)."""
        g = cls(d["layout"], d["kernel"], d["cmdline"], list(d["qemu_args"]))
        names = {f.name for f in dataclasses.fields(cls)}
        for k, v in d.items():
            if k in ("tree", "initial_tree") or k not in names:
                continue
            if k in GUEST_HEX_FIELDS:
                v = _unhex(v)
            elif k == "e820":
                v = [(int(e["addr"], 16), int(e["size"]), int(e["type"])) for e in v]
            elif k in ("memblock_memory", "memblock_reserved"):
                v = [(int(a, 16), int(b, 16)) for a, b in v]
            elif k in ("static_pages", "fixmap"):
                v = {n: _unhex(a) for n, a in v.items()}
            setattr(g, k, v)
        return g


#: Guest fields that are addresses, registers or masks ("0x..." in JSON)
GUEST_HEX_FIELDS = ("phys_base", "kernel_start", "return_address", "cr3", "cr4", "efer", "page_size_mask",
                    "supported_pte_mask", "default_kernel_pte_mask", "page_offset", "image_end", "init_end")


def _hexs(v):
    return None if v is None else f"{int(v):#x}"


def _unhex(v):
    return None if v is None else int(v, 16)


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


def pc_ram_ranges(ram: int) -> List[Tuple[int, int]]:
    """Where QEMU's pc machine (gigabyte_align, max-ram-below-4g 3.5 GiB) puts ``ram``
    bytes: all below 4 GiB when under 3.5 GiB, else 3 GiB below and the rest from 4 GiB."""
    if ram < PC_LOWMEM_SPLIT:
        return [(0, ram)]
    return [(0, PC_LOWMEM), (1 << 32, (1 << 32) + ram - PC_LOWMEM)]


def qemu_command(layout: QemuLayout, bzimage: str, port: int, serial: str) -> List[str]:
    """QEMU's argv: paused (``-S``), gdbstub on ``port``, console into ``serial``."""
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
    if layout.initrd:
        # a sparse file of zeros beside the serial log (the run's own folder): the kernel stops
        # at init_mem_mapping's end, long before it would try to unpack it
        path = os.path.join(os.path.dirname(serial), "initrd.img")
        with open(path, "wb") as f:
            f.truncate(layout.initrd)
        args += ["-initrd", path]
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
    for cnt, _total, regions in types:
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




SERIAL_TAIL_LINES = 10


def tail_lines(text: str, n: int = SERIAL_TAIL_LINES) -> List[str]:
    """The last ``n`` non-empty lines of ``text`` (each cut to 200 characters)."""
    lines = [ln.rstrip()[:200] for ln in text.splitlines() if ln.strip()]
    return lines[-n:]


def _qemu_child_signals() -> None:
    """In the QEMU child, before exec: Ctrl-C reaches it again (a campaign worker ignores
    SIGINT, and an ignored signal survives exec), and on Linux it is killed when the process
    that started it dies (``PR_SET_PDEATHSIG``), so a killed client or worker leaves no guest."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)   # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


class QemuProcess:
    """One QEMU, started paused with its gdbstub on a free local port, its console in a
    serial log and its own output in a file of a private temporary folder.
    :meth:`close` (also on leaving a ``with`` block) kills it if it still runs, reaps it,
    keeps the serial log's text in :attr:`serial` and removes the folder."""

    def __init__(self, argv: List[str], port: int, tmpdir: str, serial_path: str) -> None:
        self.argv, self.port, self.tmpdir, self.serial_path = argv, port, tmpdir, serial_path
        self.output_path = os.path.join(tmpdir, "qemu.out")
        self.serial = ""
        self.output = ""
        self.returncode: Optional[int] = None
        self.t0 = time.monotonic()
        with open(self.output_path, "wb") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         preexec_fn=_qemu_child_signals)

    @classmethod
    def start(cls, layout: QemuLayout, bzimage: str) -> "QemuProcess":
        port = _free_port()
        tmpdir = tempfile.mkdtemp(prefix="emu-oracle-")
        serial = os.path.join(tmpdir, "serial.log")
        try:
            return cls(qemu_command(layout, bzimage, port, serial), port, tmpdir, serial)
        except BaseException:
            shutil.rmtree(tmpdir, ignore_errors=True)
            raise

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def _read(self, path: str) -> str:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def serial_text(self) -> str:
        return self._read(self.serial_path) if self.returncode is None else self.serial

    def output_text(self) -> str:
        return self._read(self.output_path) if self.returncode is None else self.output

    def wait_exit(self, seconds: float) -> Optional[int]:
        """QEMU's exit status if it exits within ``seconds`` (None: still running)."""
        try:
            return self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        if self.returncode is not None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover
            self.proc.kill()
            self.proc.wait()
        self.serial = self._read(self.serial_path)
        self.output = self._read(self.output_path)
        self.returncode = self.proc.returncode
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self) -> "QemuProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def connect(q: QemuProcess, timeout: float = 30.0) -> GdbRemote:
    """The gdbstub of ``q``; QEMU exiting first (a bad ``-cpu``, a missing image) is an
    OracleError with QEMU's own last line."""
    try:
        return GdbRemote("127.0.0.1", q.port, connect_timeout=timeout, give_up=q.exited)
    except GdbError as e:
        q.wait_exit(2)
        out = tail_lines(q.output_text(), 1)
        raise OracleError(f"QEMU did not start: {out[-1] if out else e}") from None


def _died(q: QemuProcess, what: str, cause: str) -> GuestError:
    """The guest went away before ``what``: QEMU's exit, the serial log's last lines."""
    rc = q.wait_exit(5)
    how = f"QEMU exited with status {rc}" if rc is not None else cause
    if rc == 0:
        how += " (the guest reset or powered off; QEMU runs with -no-reboot)"
    serial = tail_lines(q.serial_text())
    details = [f"serial: {ln}" for ln in serial] or ["serial: (empty: the kernel printed nothing)"]
    out = tail_lines(q.output_text(), 3)
    details += [f"qemu: {ln}" for ln in out]
    return GuestError(f"the guest died before {what}: {how}", details)


def run_to(gdb: GdbRemote, q: QemuProcess, addr: int, deadline: float, what: str) -> dict:
    """Continue to a hardware breakpoint at ``addr`` (removed again) and return the
    registers there.  The guest dying first, or the deadline passing, is a
    :class:`GuestError` naming ``what`` with the end of the serial log."""
    left = deadline - time.monotonic()
    try:
        gdb.hbreak(addr)
        if left <= 0:
            raise GdbTimeout("no time left")
        stop = gdb.cont(left)
        regs = gdb.registers()
    except GdbTimeout:
        serial = tail_lines(q.serial_text())
        raise GuestError(f"the kernel did not reach {what} within the timeout "
                         f"({time.monotonic() - q.t0:.0f} s since QEMU started)",
                         [f"serial: {ln}" for ln in serial] or ["serial: (empty)"]) from None
    except GdbClosed as e:
        raise _died(q, what, str(e)) from None
    pc = regs.get("rip", regs.get("eip"))
    if pc != addr:
        raise OracleError(f"stopped at {pc or 0:#x}, not at {what} ({addr:#x}; stop reply {stop!r})")
    gdb.remove_hbreak(addr)
    return regs


def read_entry_state(gdb: GdbRemote, symbols: Symbols, g: Guest, regs: dict,
                     config: Optional[str] = None) -> int:
    """At ``init_mem_mapping``'s entry: fill ``g`` with what the kernel has (arch and PAE,
    the return address and the call after it, the image's layout, e820_table, memblock,
    the BRK page-table buffer, max_pfn; i386: the fixmap geometry) and return the
    return address (in ``setup_arch``)."""
    is32 = symbols["_text"] < 1 << 32
    W = 4 if is32 else 8
    g.arch = "i386" if is32 else "x86_64"
    g.pae = bool(regs.get("cr4", 0) & 0x20) if is32 else True
    P = 8 if (not is32 or g.pae) else 4
    ret = _read_word(gdb, _rsp(gdb), W)
    name, _ = symbols.lookup(ret)
    if name != "setup_arch":
        raise OracleError(f"init_mem_mapping was called from {name}, not setup_arch")
    g.return_address = ret
    code = gdb.read(ret, 5)
    if code[0] == 0xE8:
        tgt = (ret + 5 + struct.unpack_from("<i", code, 1)[0]) & ((1 << (8 * W)) - 1)
        g.next_call = symbols.lookup(tgt)[0]
    else:
        g.next_call = f"(no call: {code.hex()})"
    if is32:
        _read_layout_32(gdb, symbols, g, config)
    else:
        _read_layout_64(gdb, symbols, g)
    g.e820 = _read_e820(gdb, symbols, W)
    g.memblock_bottom_up, g.memblock_memory, g.memblock_reserved = _read_memblock(gdb, symbols["memblock"], W, P)
    g.pgt_buf_start = _read_word(gdb, symbols["pgt_buf_end"], W)
    g.pgt_buf_top = _read_word(gdb, symbols["pgt_buf_top"], W)
    g.max_pfn = _read_word(gdb, symbols["max_pfn"], W)
    return ret


#: x86-64: the image's static page tables (head_64.S), in System.map
IMAGE_TABLE_SYMBOLS = ("init_top_pgt", "level4_kernel_pgt", "level3_kernel_pgt", "level2_kernel_pgt",
                       "level2_fixmap_pgt", "level1_fixmap_pgt", "bm_pte")


def _read_layout_64(gdb: GdbRemote, symbols: Symbols, g: Guest) -> None:
    """x86-64: phys_base, the image's physical layout and static tables, PAGE_OFFSET,
    early_ioremap's first slot (its PMD in level2_fixmap_pgt gets bm_pte)."""
    g.phys_base = _read_u64(gdb, symbols["phys_base"])
    g.kernel_start = symbols["_text"] - START_KERNEL_MAP + g.phys_base
    if symbols.get("_end") is not None:
        g.image_end = symbols["_end"] - START_KERNEL_MAP + g.phys_base
    for sym in IMAGE_TABLE_SYMBOLS:
        if symbols.get(sym) is not None:
            g.static_pages[sym] = symbols[sym] - START_KERNEL_MAP + g.phys_base
    # page_offset_base exists with CONFIG_RANDOMIZE_MEMORY (4.8+), set before
    # init_mem_mapping; without it the direct map is walked over the kernel half
    pob = symbols.get("page_offset_base")
    g.page_offset = _read_u64(gdb, pob) if pob else 0
    if symbols.get("slot_virt") is not None:
        g.fixmap = {"slot_virt0": _read_u64(gdb, symbols["slot_virt"])}


def _read_layout_32(gdb: GdbRemote, symbols: Symbols, g: Guest, config: Optional[str]) -> None:
    """i386: PAGE_OFFSET, the image's physical layout, the static tables (System.map),
    and what the fixmap looks like in the running kernel (``__FIXADDR_TOP``,
    early_ioremap's first slot); the build's .config is kept for the comparison."""
    # __pa(x) = x - PAGE_OFFSET; _text lies at PAGE_OFFSET + LOAD_PHYSICAL_ADDR
    po = symbols["_text"] & 0xF0000000
    g.page_offset = po
    g.kernel_start = symbols["_text"] - po
    g.image_end = symbols["_end"] - po
    g.init_end = symbols["__init_end"] - po
    for sym in ("swapper_pg_dir", "initial_page_table", "initial_pg_pmd", "initial_pg_fixmap",
                "bm_pte", "__brk_base"):
        if symbols.get(sym) is not None:
            g.static_pages[sym] = symbols[sym] - po
    # slot_virt[0] = fix_to_virt(FIX_BTMAP_BEGIN), __initdata, set by early_ioremap_init
    g.fixmap = {"fixaddr_top": _read_word(gdb, symbols["__FIXADDR_TOP"], 4) if symbols.get("__FIXADDR_TOP")
                else None,
                "slot_virt0": _read_word(gdb, symbols["slot_virt"], 4) if symbols.get("slot_virt") else None}
    g.config = config if config and os.path.exists(config) else None


def read_initial_tables(gdb: GdbRemote, symbols: Symbols, g: Guest, regs: dict, deadline: float) -> Optional[Tree]:
    """At ``init_mem_mapping``'s entry: the tree it starts from, in the page that becomes
    CR3 (``init_top_pgt`` / ``swapper_pg_dir``), under the slots compared."""
    is32 = g.arch == "i386"
    sym = "swapper_pg_dir" if is32 else "init_top_pgt"
    if symbols.get(sym) is None:
        return None
    pa = (symbols[sym] - g.page_offset) if is32 else (symbols[sym] - START_KERNEL_MAP + g.phys_base)
    levels = (3 if g.pae else 2) if is32 else (5 if regs.get("cr4", 0) & (1 << 12) else 4)
    tree = read_tables(gdb, g, pa, levels, deadline, pse=bool(regs.get("cr4", 0) & 0x10) or not is32)
    gdb.set_phys_mode(False)
    return tree


def read_exit_state(gdb: GdbRemote, symbols: Symbols, g: Guest, regs: dict) -> None:
    """Right after ``init_mem_mapping`` returned: CR3/CR4/EFER, the page-size and PTE
    masks, direct_gbpages, pgt_buf_end, max_pfn_mapped (max_low_pfn), the DirectMap
    counters, the paging levels."""
    is32 = g.arch == "i386"
    W = 4 if is32 else 8
    P = 8 if (not is32 or g.pae) else 4
    g.cr3, g.cr4, g.efer = regs["cr3"], regs["cr4"], regs.get("efer", 0)
    g.page_size_mask = struct.unpack("<I", gdb.read(symbols["page_size_mask"], 4))[0]
    g.supported_pte_mask = _read_word(gdb, symbols["__supported_pte_mask"], P)
    g.default_kernel_pte_mask = _read_word(gdb, symbols["__default_kernel_pte_mask"], P)
    g.direct_gbpages = struct.unpack("<i", gdb.read(symbols["direct_gbpages"], 4))[0]
    g.pgt_buf_end = _read_word(gdb, symbols["pgt_buf_end"], W)
    g.max_pfn_mapped = _read_word(gdb, symbols["max_pfn_mapped"], W)
    if symbols.get("max_low_pfn") is not None:
        g.max_low_pfn = _read_word(gdb, symbols["max_low_pfn"], W)
    # direct_pages_count[PG_LEVEL_NUM]: NONE, 4K, 2M, 1G (and 512G from 4.x)
    dpc = gdb.read(symbols["direct_pages_count"], 4 * W)
    g.direct_pages_count = [int.from_bytes(dpc[i * W:(i + 1) * W], "little") for i in range(4)]
    g.levels = (3 if g.pae else 2) if is32 else (5 if g.la57 else 4)


def _guest_limit(g: Guest, root_pa: int) -> int:
    """Bytes of guest-physical memory a copy of its tables may need: its e820's end."""
    top = max([a + s for a, s, _ in g.e820] + [root_pa + PAGE, 1 << 30])
    return (top + (1 << 30) - 1) & ~((1 << 30) - 1)


def read_tables(gdb: GdbRemote, g: Guest, root_pa: int, levels: int, deadline: float, pse: bool = True) -> Tree:
    """The tree under ``root_pa``, in the slots compared (:func:`kernel_slots`): its
    pages copied out of guest-physical memory (one read per table page) into a PhysMem,
    listed by the machine layer's walk."""
    mode = paging_mode(g.arch, levels)
    mmu = tree_mmu(mode, root_pa, pse)

    def read_page(pfn: int) -> bytes:
        if time.monotonic() > deadline:
            raise GdbTimeout("timed out reading the page tables")
        return gdb.read(pfn << 12, PAGE, phys=True)

    slots = kernel_slots(mode, g.page_offset)
    gdb.set_phys_mode(True)
    try:
        phys = copy_tables(read_page, mmu, slots, _guest_limit(g, root_pa))
    except TableCopyError as e:
        raise OracleError(str(e)) from None
    return tree_of(phys, mmu, mode, slots)


def run_guest(layout: QemuLayout, bzimage: str, symbols: Symbols, timeout: float = 300.0,
              keep_serial: Optional[str] = None, config: Optional[str] = None) -> Guest:
    """Boot ``bzimage`` with ``layout``; return what it had and built.  ``config``: the
    build's .config (i386: its fixmap layout).  QEMU is killed and reaped in every case."""
    deadline = time.monotonic() + timeout
    q = QemuProcess.start(layout, bzimage)
    g = Guest(layout.name, bzimage, layout.cmdline(), q.argv, cpu=layout.cpu,
              symbols_file=getattr(symbols, "name", None), symbols=symbols)
    g.config = config if config and os.path.exists(config) else None
    gdb: Optional[GdbRemote] = None
    try:
        gdb = connect(q)
        regs = run_to(gdb, q, symbols["init_mem_mapping"], deadline, "init_mem_mapping")
        ret = read_entry_state(gdb, symbols, g, regs, config)
        g.initial_tree = read_initial_tables(gdb, symbols, g, regs, deadline)
        regs = run_to(gdb, q, ret, deadline, "the return from init_mem_mapping")
        g.boot_seconds = time.monotonic() - q.t0
        read_exit_state(gdb, symbols, g, regs)
        g.tree = read_tables(gdb, g, g.cr3, g.levels, deadline, pse=bool(g.cr4 & 0x10) or g.arch != "i386")
        g.log_after_stop = continue_for_command_line(gdb, q)
    except GdbTimeout:
        raise GuestError(f"timed out reading the guest ({timeout:.0f} s)",
                         [f"serial: {ln}" for ln in tail_lines(q.serial_text())]) from None
    except GdbError as e:
        raise OracleError(f"gdbstub: {e}", [f"serial: {ln}" for ln in tail_lines(q.serial_text())]) from None
    finally:
        if gdb is not None:
            gdb.close()
        q.close()
        g.serial = q.serial
        if keep_serial:
            with open(keep_serial, "w") as f:
                f.write(g.serial)
    return g


#: the line start_kernel prints after setup_arch: the whole command line
KERNEL_COMMAND_LINE = "Kernel command line:"
#: how long the guest may run on after the stop to print it
LOG_AFTER_STOP_SECONDS = 10.0


def continue_for_command_line(gdb: GdbRemote, q: QemuProcess, seconds: Optional[float] = None) -> float:
    """When the console log does not show the command line yet (i386's setup_arch prints no
    early ``Command line:``), let the guest run on until start_kernel prints ``Kernel command
    line:`` (at most ``seconds``), so the log is what a user has of the boot's options.
    The tables were read already; QEMU is killed afterwards.  Returns the seconds it ran."""
    seconds = LOG_AFTER_STOP_SECONDS if seconds is None else seconds
    text = q.serial_text()
    if re.search(r"^(\[[ .0-9]+\] )?(Kernel c|C)ommand line:", text, re.M):
        return 0.0
    t0 = time.monotonic()
    try:
        gdb.send("c")
    except (GdbError, OSError):
        return 0.0
    while time.monotonic() - t0 < seconds and not q.exited():
        if KERNEL_COMMAND_LINE in q.serial_text():
            break
        time.sleep(0.1)
    return time.monotonic() - t0


def _rsp(g: GdbRemote) -> int:
    text = g.monitor("info registers")
    m = re.search(r"[RE]SP=([0-9a-fA-F]+)", text)
    if not m:
        raise OracleError("no RSP in 'info registers'")
    return int(m.group(1), 16)
