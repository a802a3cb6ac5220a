"""Boot-log (dmesg) reader: what the kernel knew before ``init_mem_mapping``.

:func:`parse_boot_log` takes a real x86 boot log as found in the wild (dmesg
output, syslog/klogd files, serial and kexec captures, quoted-printable mail
attachments, forum copy-pastes) and extracts the inputs an emulation of the
early direct-mapping setup needs: kernel version and architecture, the
command line, the ``BIOS-e820`` map and the e820 edits made before the
mapping, ``max_pfn`` lines, the initrd, BRK page-table pages, and the
page-table setup lines themselves for comparison with emu's output.

The printk formats recognised are those of ``arch/x86/kernel/e820.c``,
``arch/x86/kernel/setup.c`` and ``arch/x86/mm/init.c`` from Linux 2.6.31 to
6.x (old ``%016Lx - %016Lx`` style before v3.5, ``[mem %#010Lx-%#010Lx]``
style after); no kernel code is reproduced here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple, Union

from emu.errors import EmuError
from emu.inputs.cpu import CpuFacts, vendor_from_text
from emu.inputs.e820 import (
    E820_RAM, E820_RESERVED_KERN, U64_MAX, E820Entry, E820Map,
    looks_like_e820_line, parse_e820_line, type_from_name,
)
from emu.inputs.files import MAX_INPUT_BYTES, display_path, read_input
from emu.inputs.logtext import LogLine, decode_text, looks_quoted_printable, normalize_log
from emu.inputs.memblock import (
    ALLOCATOR_CALLERS, MemblockDump, MemblockOp, MemblockState, Reservation,
    derive_reservations, parse_dump_region, parse_early_res_line, parse_memblock_line,
)
from emu.inputs.version import KernelVersion, VersionError, parse_version_line

__all__ = [
    "BootLogError", "LogLine", "E820Edit", "BootOptions", "BootLog",
    "looks_quoted_printable", "normalize_log", "is_pagetable_line",
    "normalize_pagetable_line", "parse_page_piece", "page_pieces", "PIECE_SHIFTS", "memparse", "parse_size", "parse_command_line",
    "detect_arch", "parse_boot_log", "load_boot_log", "LineKind", "LINE_KINDS",
    "KernelVersion", "CpuFacts", "MemblockOp", "MemblockDump", "Reservation", "MemblockState",
]


class BootLogError(EmuError):
    """A log that cannot be used; the message is one line naming the input."""


# ---------------------------------------------------------------------------
# page-table lines
# ---------------------------------------------------------------------------
_HEX = r"[0-9a-fA-F]+"
_RE_PT = [
    re.compile(r"^init_memory_mapping:"),
    re.compile(r"^ \[mem 0x" + _HEX + r"-0x" + _HEX + r"\] page (?:4k|2M|1G|4M)$"),
    re.compile(r"^ " + _HEX + r" - " + _HEX + r" page (?:4k|2M|1G|4M)$"),
    re.compile(r"^BRK \[0x" + _HEX + r", 0x" + _HEX + r"\] PGTABLE$"),
    re.compile(r"^kernel direct mapping tables up to "),
    re.compile(r"^calculate_table_space_size: "),
    re.compile(r"^Using GB pages for direct mapping$"),
    re.compile(r"^Failed to release memory for alloc_low_pages\(\)"),
    re.compile(r"^Kernel panic - not syncing: "),
]


_RE_PAGE_PIECE = re.compile(r"^\s*(?:\[mem 0x" + _HEX + r"-0x" + _HEX + r"\]|" + _HEX + r" - " + _HEX
                            + r") page (?:4k|2M|1G|4M)$")


#: both piece formats in one pattern (one match per line instead of two): groups 1-2 the
#: 3.5+ ``[mem 0x..-0x..]`` ends (inclusive), 3-4 the older ``.. - ..`` ends (exclusive), 5 the size
_RE_PIECE = re.compile(r"^\s*(?:\[mem 0x([0-9a-fA-F]+)-0x([0-9a-fA-F]+)\]|([0-9a-fA-F]+) - ([0-9a-fA-F]+))"
                       r" page (4k|2M|1G|4M)$")
#: the page size a piece line names, as a shift
PIECE_SHIFTS = {"4k": 12, "2M": 21, "4M": 22, "1G": 30}


def _piece(m: "re.Match[str]") -> Tuple[int, int, str]:
    a, b, c, d, z = m.groups()
    if a is not None:
        return int(a, 16), int(b, 16) + 1, z
    return int(c, 16), int(d, 16), z


def parse_page_piece(line: str) -> Optional[Tuple[int, int, str]]:
    """A ``split_mem_range`` piece line as ``(start, end, size)``, ``end`` exclusive:
    `` [mem 0x00100000-0x001fffff] page 4k`` (3.5+, inclusive end) or
    `` 0000100000 - 0000200000 page 4k`` (before, exclusive end); None for other lines."""
    m = _RE_PIECE.match(line)
    return _piece(m) if m is not None else None


def page_pieces(lines: Sequence[str]) -> List[Tuple[int, int, str]]:
    """Every piece line of ``lines`` in order (see :func:`parse_page_piece`)."""
    match = _RE_PIECE.match
    return [_piece(m) for m in map(match, lines) if m is not None]


def normalize_pagetable_line(line: str) -> str:
    """Trailing blanks removed; a ``page 4k|2M|1G|4M`` piece line gets exactly
    the one leading space the kernel prints, any other line none."""
    s = line.rstrip()
    if _RE_PAGE_PIECE.match(s):
        return " " + s.lstrip()
    return s.lstrip()


def is_pagetable_line(line: str) -> bool:
    """Is ``line`` (a kernel message, prefixes stripped) a page-table setup line?

    Matches ``init_memory_mapping: ...`` (both formats), ``" [mem a-b] page
    4k|2M|1G|4M"``, the old ``" 0000000000 - 0000200000 page 4k"``,
    ``BRK [a, b] PGTABLE``, ``kernel direct mapping tables up to ...``,
    ``calculate_table_space_size: ...`` (tip 2012), ``Using GB pages for
    direct mapping``, ``Failed to release memory for alloc_low_pages()``
    (6.x) and ``Kernel panic - not syncing: ...``.  Leading blanks are
    normalised first (see :func:`normalize_pagetable_line`), so a piece line
    that lost its leading space in a copy-paste still counts.
    """
    s = normalize_pagetable_line(line)
    return any(r.match(s) for r in _RE_PT)


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------
_SUFFIX = {"k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60}


def memparse(s: str, wrap: bool = True) -> Tuple[int, str]:
    """The kernel's ``memparse`` (lib/cmdline.c): ``simple_strtoull(s, 0)`` (``0x`` hex,
    ``0`` octal, else decimal; ASCII digits only) then an optional K/M/G/T/P/E suffix
    (either case).  Returns ``(value mod 2^64, rest)`` like the kernel, or with
    ``wrap=False`` the value unwrapped (so a caller can refuse one that does not fit);
    ``(0, s)`` if there are no digits.  The one memparse of emu: every size and address a
    user gives goes through it."""
    m = _RE_MEMPARSE.match(s)
    if not m:
        return 0, s
    tok = m.group(1)
    if tok[:2].lower() == "0x":
        v = int(tok, 16)
    elif tok.startswith("0") and len(tok) > 1:
        v = int(tok, 8)
    else:
        v = int(tok)
    rest = s[m.end():]
    if rest[:1].lower() in _SUFFIX:
        v <<= _SUFFIX[rest[:1].lower()]
        rest = rest[1:]
    return (v & U64_MAX if wrap else v), rest


_RE_MEMPARSE = re.compile(r"[ \t\n\r\f\v]*(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


def parse_size(s: str) -> int:
    """Parse a size like ``512M``, ``0x1000``, ``4G`` (memparse); ValueError on junk."""
    v, rest = memparse(s.strip())
    if rest == s.strip() or rest.strip():
        raise ValueError("bad size %r" % s)
    return v


def _split_cmdline(cmdline: str) -> List[Tuple[str, Optional[str]]]:
    """``next_arg``-style split: blanks separate, double quotes group; stop at ``--``."""
    out: List[Tuple[str, Optional[str]]] = []
    i, n = 0, len(cmdline)
    while i < n:
        while i < n and cmdline[i].isspace():
            i += 1
        if i >= n:
            break
        j = i
        inq = False
        while j < n and (inq or not cmdline[j].isspace()):
            if cmdline[j] == '"':
                inq = not inq
            j += 1
        tok = cmdline[i:j].replace('"', "")
        i = j
        if tok == "--":
            break
        if "=" in tok:
            k, v = tok.split("=", 1)
            out.append((k, v))
        else:
            out.append((tok, None))
    return out


_TRUE = {"on", "1", "y", "yes", "true"}
_FALSE = {"off", "0", "n", "no", "false"}


@dataclass
class BootOptions:
    """Command-line options that matter to the early direct mapping (the kernel's
    choices, not the CPU's features).

    ``mem`` is the effective ``mem=`` limit (each ``mem=`` removes RAM above
    its value, so the smallest non-zero one wins; ``mem=nopentium`` sets
    ``nopentium`` instead: no PSE on 32-bit).  ``memmap`` keeps each ``memmap=`` value
    raw, in order.  ``gbpages``: True for ``gbpages``, False for ``nogbpages``, None if
    neither (last one wins).  ``pti``: ``"off"`` for ``nopti``, else the ``pti=`` value
    (``on``/``off``/``auto``).  ``debug_pagealloc``: ``debug_pagealloc=on|off`` (the kernel
    obeys it only when built with CONFIG_DEBUG_PAGEALLOC).  ``noexec``: ``noexec=on|off``
    (NX use).  ``no5lvl``: 4-level paging forced.  ``kaslr``: False for ``nokaslr``, True
    for ``kaslr``, None if neither.  ``memblock_debug``: ``memblock=debug`` (the log then
    holds the memblock calls).  ``clearcpuid``: the ``clearcpuid=`` items (CPU features the
    kernel must not use), in order.  ``mitigations``: the ``mitigations=`` value (``off``
    also turns PTI off since 5.2).  ``params`` holds every ``key -> value`` (last wins;
    None for a bare flag).
    """

    mem: Optional[int] = None
    nopentium: bool = False
    memmap: List[str] = field(default_factory=list)
    gbpages: Optional[bool] = None
    nopat: bool = False
    movable_node: bool = False
    debug_pagealloc: Optional[bool] = None
    noexec: Optional[str] = None
    pti: Optional[str] = None
    highmem: Optional[int] = None
    vmalloc: Optional[int] = None
    params: Dict[str, Optional[str]] = field(default_factory=dict)
    no5lvl: bool = False
    kaslr: Optional[bool] = None
    memblock_debug: bool = False
    clearcpuid: List[str] = field(default_factory=list)
    mitigations: Optional[str] = None

    def to_json(self) -> Dict[str, object]:
        """The options that change the tables (64-bit values as ``"0x..."`` strings)."""
        d: Dict[str, object] = {}
        for k in ("mem", "highmem", "vmalloc"):
            v = getattr(self, k)
            if v is not None:
                d[k] = "%#x" % v
        for k in ("nopentium", "gbpages", "nopat", "movable_node", "debug_pagealloc", "noexec", "pti",
                  "no5lvl", "kaslr", "memblock_debug", "mitigations"):
            v = getattr(self, k)
            if v not in (None, False):
                d[k] = v
        if self.gbpages is False:
            d["gbpages"] = False
        if self.debug_pagealloc is False:
            d["debug_pagealloc"] = False
        if self.kaslr is False:
            d["kaslr"] = False
        if self.memmap:
            d["memmap"] = list(self.memmap)
        if self.clearcpuid:
            d["clearcpuid"] = list(self.clearcpuid)
        return d


def parse_command_line(cmdline: Optional[str]) -> BootOptions:
    """Parse the options of :class:`BootOptions` from a kernel command line."""
    opts = BootOptions()
    if not cmdline:
        return opts
    for key, val in _split_cmdline(cmdline):
        opts.params[key] = val
        if key == "mem" and val is not None:
            if val == "nopentium":
                opts.nopentium = True
                continue
            v, _ = memparse(val)
            if v:
                opts.mem = v if opts.mem is None else min(opts.mem, v)
        elif key == "memmap" and val is not None:
            opts.memmap.append(val)
        elif key == "gbpages" and val is None:
            opts.gbpages = True
        elif key == "nogbpages" and val is None:
            opts.gbpages = False
        elif key == "nopat":
            opts.nopat = True
        elif key == "movable_node":
            opts.movable_node = True
        elif key == "debug_pagealloc":
            if val is not None and val.lower() in _TRUE:
                opts.debug_pagealloc = True
            elif val is not None and val.lower() in _FALSE:
                opts.debug_pagealloc = False
        elif key == "noexec" and val is not None:
            opts.noexec = val
        elif key == "nopti":
            opts.pti = "off"
        elif key == "pti" and val is not None:
            opts.pti = val
        elif key == "highmem" and val is not None:
            v, _ = memparse(val)
            opts.highmem = v
        elif key == "vmalloc" and val is not None:
            v, _ = memparse(val)
            opts.vmalloc = v
        elif key == "no5lvl" and val is None:
            opts.no5lvl = True
        elif key == "nokaslr" and val is None:
            opts.kaslr = False
        elif key == "kaslr" and val is None:
            opts.kaslr = True
        elif key == "memblock" and val == "debug":
            opts.memblock_debug = True
        elif key == "clearcpuid" and val is not None:
            opts.clearcpuid.extend(x for x in val.split(",") if x)
        elif key == "mitigations" and val is not None:
            opts.mitigations = val
    return opts


# ---------------------------------------------------------------------------
# architecture
# ---------------------------------------------------------------------------
_RE_DA_MAXARCH = re.compile(r"max_arch_pfn = (0x[0-9a-fA-F]+)")
_RE_DA_TRAMP = re.compile(r"Base memory trampoline at \[([0-9a-fA-F]+)\]")
_RE_DA_MEMAVAIL = re.compile(r"\d+MB (?:LOWMEM|HIGHMEM) available\.")
_RE_DA_IMM = re.compile(r"init_memory_mapping: \[mem 0x([0-9a-fA-F]+)-0x([0-9a-fA-F]+)\]")
_RE_DA_DMA32 = re.compile(r"\s*DMA32\s+(?:\[mem|0x|\d)")
_RE_DA_HIGHMEM = re.compile(r"\s*HighMem\s+(?:\[mem|0x|\d|empty)")


def detect_arch(lines: Sequence[str], kernel_version_line: Optional[str] = None) -> Optional[str]:
    """Decide ``"x86_64"`` or ``"i686"`` from evidence in the log messages.

    Decisive: ``max_arch_pfn`` (0x100000 / 0x1000000 = 32-bit non-PAE / PAE;
    0x400000000 or more = 64-bit); the trampoline virtual address
    (``ffff88...`` vs 8 hex digits); ``LOWMEM/HIGHMEM available``;
    ``init_memory_mapping`` ranges above 4 GiB; ``DMA32`` zone.  Weaker: the
    version string (``x86_64``/``amd64`` vs ``i386``/``i486``/``i586``/``i686``/
    ``-pae``), an early ``Command line:`` (printed only by 64-bit setup_arch).
    Returns None when there is no evidence at all.
    """
    score = 0  # > 0: x86_64, < 0: i686
    for s in lines:
        # each test is guarded by a substring its pattern needs (same result, fewer regexes)
        if "max_arch_pfn = " in s:
            m = _RE_DA_MAXARCH.search(s)
            if m:
                v = int(m.group(1), 16)
                if v in (1 << 20, 1 << 24):
                    score -= 100
                elif v >= 1 << 30:
                    score += 100
                continue
        if s.startswith("Base memory trampoline at ["):
            m = _RE_DA_TRAMP.match(s)
            if m:
                score += 50 if len(m.group(1)) > 8 else -50
                continue
        if "MB " in s and _RE_DA_MEMAVAIL.match(s):
            score -= 50
            continue
        if s.startswith("init_memory_mapping: [mem 0x"):
            m = _RE_DA_IMM.match(s)
            if m and int(m.group(2), 16) >= 1 << 32:
                score += 50
                continue
        if "DMA32" in s and _RE_DA_DMA32.match(s):
            score += 30
            continue
        if "HighMem" in s and _RE_DA_HIGHMEM.match(s):
            score -= 30
            continue
        if s.startswith("Command line: "):
            score += 5
    if kernel_version_line:
        vl = kernel_version_line
        if re.search(r"x86_64|amd64", vl):
            score += 20
        if re.search(r"i[3456]86|-pae\b|\bpae\b", vl, re.I):
            score -= 20
    if score > 0:
        return "x86_64"
    if score < 0:
        return "i686"
    return None


# ---------------------------------------------------------------------------
# e820 edits
# ---------------------------------------------------------------------------
class E820Editable(Protocol):
    """What an :class:`E820Edit` is applied to: the kernel's e820 table
    (:class:`emu.kernel.arch.x86.kernel.e820.E820Table`)."""

    def update_range(self, start: int, size: int, old_type: int, new_type: int) -> int: ...

    def add_region(self, start: int, size: int, type_: int) -> None: ...

    def remove_range(self, start: int, size: int, old_type: int = 0, check_type: bool = True) -> int: ...


@dataclass(frozen=True)
class E820Edit:
    """One logged ``e820_update_range`` / ``e820_remove_range`` call.

    ``size`` is the (already clamped) size the kernel used: ``b + 1 - a`` for
    ``[mem a-b]`` lines, ``b - a`` for the old ``a - b`` format.  For a remove
    without type check ``old_type`` is None.  ``target`` is ``"e820"`` for the
    main table, ``"saved"``/``"kexec"`` for edits of ``e820_saved`` /
    ``e820_table_kexec`` (recognised by the line the kernel prints after
    them); ``after_user_map`` tells whether it was logged after the
    ``user-defined physical RAM map``.
    """

    op: str
    start: int
    size: int
    old_type: Optional[int]
    new_type: Optional[int]
    lineno: int = 0
    target: str = "e820"
    after_user_map: bool = False

    def apply(self, table: "E820Editable") -> int:
        """Apply to ``table`` in place; returns the bytes changed."""
        if self.op == "update":
            assert self.old_type is not None and self.new_type is not None
            return table.update_range(self.start, self.size, self.old_type, self.new_type)
        if self.op == "add":  # an e820_add_region the kernel does not print (e820_add_kernel_range)
            assert self.new_type is not None
            table.add_region(self.start, self.size, self.new_type)
            return self.size
        if self.old_type is None:
            return table.remove_range(self.start, self.size, 0, check_type=False)
        return table.remove_range(self.start, self.size, self.old_type, check_type=True)


_RE_UPD_NEW = re.compile(r"^e820: update \[mem (0x[0-9a-fA-F]+)-(0x[0-9a-fA-F]+)\] (.+?) ==> (.+?)\s*$")
_RE_REM_NEW = re.compile(r"^e820: remove \[mem (0x[0-9a-fA-F]+)-(0x[0-9a-fA-F]+)\]\s*(.*?)\s*$")
_RE_UPD_OLD = re.compile(r"^e820 update range: ([0-9a-fA-F]+) - ([0-9a-fA-F]+) (.+?) ==> (.+?)\s*$")
_RE_REM_OLD = re.compile(r"^e820 remove range: ([0-9a-fA-F]+) - ([0-9a-fA-F]+)\s*(.*?)\s*$")


def _edit_type(name: str) -> int:
    return type_from_name(name)


def _parse_edit(s: str, lineno: int) -> Optional[E820Edit]:
    m = _RE_UPD_NEW.match(s)
    if m:
        a, b = int(m.group(1), 16), int(m.group(2), 16)
        old, new = _edit_type(m.group(3)), _edit_type(m.group(4))
        if old == E820_RAM and new == E820_RAM:
            new = E820_RESERVED_KERN  # "usable ==> usable": RAM -> RESERVED_KERN
        return E820Edit("update", a, (b + 1 - a) & U64_MAX, old, new, lineno)
    m = _RE_REM_NEW.match(s)
    if m:
        a, b = int(m.group(1), 16), int(m.group(2), 16)
        removed = _edit_type(m.group(3)) if m.group(3) else None
        return E820Edit("remove", a, (b + 1 - a) & U64_MAX, removed, None, lineno)
    m = _RE_UPD_OLD.match(s)
    if m:
        a, b = int(m.group(1), 16), int(m.group(2), 16)
        old, new = _edit_type(m.group(3)), _edit_type(m.group(4))
        if old == E820_RAM and new == E820_RAM:
            new = E820_RESERVED_KERN
        return E820Edit("update", a, (b - a) & U64_MAX, old, new, lineno)
    m = _RE_REM_OLD.match(s)
    if m:
        a, b = int(m.group(1), 16), int(m.group(2), 16)
        removed = _edit_type(m.group(3)) if m.group(3) else None
        return E820Edit("remove", a, (b - a) & U64_MAX, removed, None, lineno)
    return None


# ---------------------------------------------------------------------------
# the boot log
# ---------------------------------------------------------------------------
@dataclass
class BootLog:
    """Everything parsed from one boot log (see :func:`parse_boot_log`).

    Ranges: ``ramdisk``, ``initial_memory_mapped`` and ``brk_lines`` are
    ``(start, end_inclusive)`` whatever format the log used.
    ``last_pfn_lines`` are the ``(last_pfn, max_arch_pfn)`` pairs of every
    ``last_pfn = .. max_arch_pfn = ..`` line in order: the first is ``max_pfn``;
    on 64-bit a second one below 4 GiB is ``max_low_pfn`` (a later one may
    follow an MTRR trim); ``last_pfn_linenos`` are their input line numbers.
    ``e820_modified`` is the last ``modified physical RAM map`` printed before
    the first ``init_memory_mapping`` (v2.6.x kernels print one after edits).
    ``pae`` is None on x86_64.

    The kernel's version: ``version`` (a :class:`~emu.inputs.version.KernelVersion`: the
    release, the upstream base with its stable sublevel, the distribution, and why);
    ``kernel_version`` (the release string), ``version_line`` and ``version_tuple`` (the
    release's leading numbers, e.g. ``(6, 1, 0)`` for Debian's ``6.1.0-57-amd64``) are the
    older fields, unchanged.

    What the hardware offers, as far as the log shows it: ``cpu``
    (:class:`~emu.inputs.cpu.CpuFacts`).  What the kernel chose (its options are in
    ``options``; its outcome here): ``nx`` (NX in use), ``gb_pages`` (``Using GB pages for
    direct mapping``), ``pti`` (True/False when a ``Kernel/User page tables isolation:``
    line says so) with ``pti_line``, ``la57`` (5-level paging in use, from ``max_arch_pfn``
    on 64-bit; None on 32-bit or without a ``last_pfn`` line).

    ``memblock=debug`` lines: ``memblock_ops`` (every printed call, in order),
    ``memblock_dumps`` (each ``MEMBLOCK configuration:`` dump), and derived from them
    (:func:`emu.inputs.memblock.derive_reservations`): ``early_reservations`` (before the
    mapping, each classified with its line and reason), ``brk_reservation`` (reserve_brk:
    where the BRK buffer is), ``image_reservation``, ``initrd_reservation`` (each a
    :class:`~emu.inputs.memblock.Reservation` or None) and ``memblock_at_mapping`` (memblock's
    memory and reserved ranges when ``init_mem_mapping`` starts).
    """

    name: str
    lines: List[LogLine] = field(default_factory=list)
    kernel_version: Optional[str] = None
    version_line: Optional[str] = None
    version_tuple: Optional[Tuple[int, int, int]] = None
    arch: Optional[str] = None
    pae: Optional[bool] = None
    command_line: Optional[str] = None
    options: BootOptions = field(default_factory=BootOptions)
    e820: E820Map = field(default_factory=E820Map)
    e820_who: Optional[str] = None
    e820_user: Optional[E820Map] = None
    e820_modified: Optional[E820Map] = None
    e820_modified_lineno: Optional[int] = None
    e820_edits: List[E820Edit] = field(default_factory=list)
    last_pfn_lines: List[Tuple[int, int]] = field(default_factory=list)
    last_pfn_linenos: List[int] = field(default_factory=list)
    brk_lines: List[Tuple[int, int]] = field(default_factory=list)
    ramdisk: Optional[Tuple[int, int]] = None
    gb_pages: bool = False
    nx: Optional[bool] = None
    initial_memory_mapped: Optional[Tuple[int, int]] = None
    trampoline: Optional[int] = None
    trampoline_virt: Optional[int] = None
    trampoline_size: Optional[int] = None
    lowmem_mb: Optional[int] = None
    highmem_mb: Optional[int] = None
    pagetable_lines: List[str] = field(default_factory=list)
    quoted_printable: bool = False
    warnings: List[str] = field(default_factory=list)
    # -- added with the line-kind table ------------------------------------------------
    path: Optional[str] = None
    version: Optional[KernelVersion] = None
    version_lineno: Optional[int] = None
    command_line_lineno: Optional[int] = None
    ramdisk_lineno: Optional[int] = None
    cpu: CpuFacts = field(default_factory=CpuFacts)
    pti: Optional[bool] = None
    pti_line: Optional[str] = None
    la57: Optional[bool] = None
    first_pagetable_lineno: Optional[int] = None
    memblock_ops: List[MemblockOp] = field(default_factory=list)
    memblock_dumps: List[MemblockDump] = field(default_factory=list)
    early_reservations: List[Reservation] = field(default_factory=list)
    brk_reservation: Optional[Reservation] = None
    image_reservation: Optional[Reservation] = None
    initrd_reservation: Optional[Reservation] = None
    memblock_at_mapping: Optional[MemblockState] = None

    # -- derived ---------------------------------------------------------------
    @property
    def last_pfns(self) -> List[int]:
        return [p for p, _ in self.last_pfn_lines]

    @property
    def max_arch_pfn(self) -> Optional[int]:
        return self.last_pfn_lines[0][1] if self.last_pfn_lines else None

    @property
    def max_pfn(self) -> Optional[int]:
        """The first ``last_pfn`` line (``e820_end_of_ram_pfn``)."""
        return self.last_pfn_lines[0][0] if self.last_pfn_lines else None

    @property
    def brk_base(self) -> Optional[int]:
        """Start of the first ``BRK [..] PGTABLE`` page (``pgt_buf_start``), or None."""
        return self.brk_lines[0][0] if self.brk_lines else None

    @property
    def page_offset(self) -> Optional[int]:
        """``PAGE_OFFSET`` from the trampoline line (virtual - physical)."""
        if self.trampoline is None or self.trampoline_virt is None:
            return None
        return self.trampoline_virt - self.trampoline

    @property
    def pagetable_format(self) -> Optional[str]:
        """``"a"`` (v3.9+ top-down, first call ``[mem 0x00000000-0x000fffff]``),
        ``"b"`` (older bottom-up), or None without ``init_memory_mapping`` lines."""
        inits = [s for s in self.pagetable_lines if s.startswith("init_memory_mapping:")]
        if any(s.startswith("kernel direct mapping tables") for s in self.pagetable_lines):
            return "b"
        if not inits:
            return None
        if inits[0].strip() == "init_memory_mapping: [mem 0x00000000-0x000fffff]":
            return "a"
        return "b"

    @property
    def init_memory_mapping_lines(self) -> List[str]:
        return [s for s in self.pagetable_lines if s.startswith("init_memory_mapping:")]


# ---------------------------------------------------------------------------
# line kinds
# ---------------------------------------------------------------------------
_RE_VERSION = re.compile(r"Linux version (\S+)(.*)$")
_RE_VTUPLE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")
_RE_LASTPFN = re.compile(r"^(?:e820: )?last_pfn = (0x[0-9a-fA-F]+|0) max_arch_pfn = (0x[0-9a-fA-F]+)")
_RE_BRK = re.compile(r"^BRK \[0x([0-9a-fA-F]+), 0x([0-9a-fA-F]+)\] PGTABLE")
_RE_RD_NEW = re.compile(r"^RAMDISK: \[mem (0x[0-9a-fA-F]+)-(0x[0-9a-fA-F]+)\]")
_RE_RD_OLD = re.compile(r"^RAMDISK: ([0-9a-fA-F]+) - ([0-9a-fA-F]+)\s*$")
_RE_IMM_NEW = re.compile(r"^initial memory mapped: \[mem (0x[0-9a-fA-F]+)-(0x[0-9a-fA-F]+)\]")
_RE_IMM_OLD = re.compile(r"^initial memory mapped\s*: ([0-9a-fA-F]+) - ([0-9a-fA-F]+)\s*$")
_RE_TRAMP = re.compile(r"^Base memory trampoline at \[([0-9a-fA-F]+)\] ([0-9a-fA-F]+) size (\d+)")
_RE_MEMAVAIL = re.compile(r"^(\d+)MB (LOWMEM|HIGHMEM) available\.")
_RE_PTI = re.compile(r"^Kernel/User page tables isolation: (.*?)\s*$")
_RE_CPU0 = re.compile(r"^(?:smpboot: )?CPU0: (.+?)\s*$")
_NX_ON = "NX (Execute Disable) protection: active"
_NX_OFF = ("Notice: NX (Execute Disable) protection missing in CPU",
           "Notice: NX (Execute Disable) protection cannot be enabled",
           "NX (Execute Disable) protection: disabled",
           "Using x86 segment limits to approximate NX protection")
_HEXDIGITS = "0123456789abcdefABCDEF"


class _Reader:
    """The state of one :func:`parse_boot_log` run, which the line kinds' handlers update."""

    def __init__(self, bl: BootLog, lines: List[LogLine], name: str, max_phys_bits: int) -> None:
        self.bl = bl
        self.lines = lines
        self.name = name
        self.max_phys_bits = max_phys_bits
        self.bios: List[E820Entry] = []
        self.user: List[E820Entry] = []
        self.modified: Optional[List[E820Entry]] = None
        self.modified_lineno: Optional[int] = None
        self.user_header = False
        self.first_init_seen = False
        self.cmd_early: Optional[Tuple[str, int]] = None
        self.cmd_late: Optional[Tuple[str, int]] = None
        self.memblock_raw: List[Tuple[str, int]] = []
        self.dump: Optional[MemblockDump] = None

    def error(self, ln: LogLine, what: str, st: str) -> BootLogError:
        return BootLogError("%s: line %d: %s: %s" % (self.name, ln.lineno, what, st[:100]))


Match = Any
Handler = Callable[[_Reader, int, LogLine, Match], None]


@dataclass(frozen=True)
class LineKind:
    """One kind of kernel log line :func:`parse_boot_log` reads.

    ``starts``: the first characters a line of this kind can have (None: any), so that
    a line is only tried against the kinds it may be; ``when``: a guard on the reader's
    state (e.g. only the first ``RAMDISK:`` line counts); ``match(text)``: a match (truthy)
    or None; ``handle(reader, index, line, match)`` updates the :class:`BootLog`.  A line
    is taken by the first kind, in table order, whose guard holds and which matches."""

    name: str
    match: Callable[[str], Match]
    handle: Handler
    starts: Optional[str] = None
    when: Optional[Callable[[_Reader], bool]] = None
    doc: str = ""


# -- handlers -------------------------------------------------------------------------
def _h_version(r: _Reader, k: int, ln: LogLine, m: Match) -> None:
    st = ln.text.strip()
    bl = r.bl
    bl.kernel_version = m.group(1)
    bl.version_line = st[m.start():]
    bl.version_lineno = ln.lineno
    mv = _RE_VTUPLE.match(m.group(1))
    if mv:
        bl.version_tuple = (int(mv.group(1)), int(mv.group(2)), int(mv.group(3) or 0))


def _h_cmd_early(r: _Reader, k: int, ln: LogLine, m: Match) -> None:
    r.cmd_early = (ln.text.strip()[len("Command line:"):].strip(), ln.lineno)


def _h_cmd_late(r: _Reader, k: int, ln: LogLine, m: Match) -> None:
    r.cmd_late = (ln.text.strip()[len("Kernel command line:"):].strip(), ln.lineno)


def _m_e820(r: _Reader, ln: LogLine, st: str) -> Match:
    if "-" not in st and "[mem" not in st:
        return None     # every e820 line form (and looks_like_e820_line) needs one of them
    try:
        parsed = parse_e820_line(st)
    except ValueError as exc:
        if looks_like_e820_line(st, ("BIOS-e820", "Xen", "user")):
            raise BootLogError("%s: line %d: bad e820 line (%s): %s" % (r.name, ln.lineno, exc, st[:100])) from None
        parsed = None
    if parsed is None and looks_like_e820_line(st, ("BIOS-e820", "Xen", "user")):
        raise r.error(ln, "unparseable e820 line", st)
    return parsed


def _h_e820(r: _Reader, k: int, ln: LogLine, parsed: Match) -> None:
    who, addr, size, type_ = parsed
    if addr + size > 1 << r.max_phys_bits:
        raise BootLogError("%s: line %d: e820 range [%#x-%#x] beyond the %d-bit physical address limit"
                           % (r.name, ln.lineno, addr, addr + size - 1, r.max_phys_bits))
    if who in ("BIOS-e820", "Xen"):
        if r.bl.e820_who is None:
            r.bl.e820_who = who
        r.bios.append(E820Entry(addr, size, type_))
    elif who == "user":
        r.user.append(E820Entry(addr, size, type_))
    elif who == "modified" and not r.first_init_seen:
        if r.modified is None:
            r.modified, r.modified_lineno = [], ln.lineno
        r.modified.append(E820Entry(addr, size, type_))


def _h_user_header(r: _Reader, k: int, ln: LogLine, m: Match) -> None:
    r.user_header = True


def _h_modified_header(r: _Reader, k: int, ln: LogLine, m: Match) -> None:
    r.modified, r.modified_lineno = [], ln.lineno


def _m_edit(r: _Reader, ln: LogLine, st: str) -> Match:
    try:
        return _parse_edit(st, ln.lineno)
    except ValueError as exc:
        raise BootLogError("%s: line %d: bad e820 edit line (%s): %s" % (r.name, ln.lineno, exc, st[:100])) from None


def _h_edit(r: _Reader, k: int, ln: LogLine, ed: Match) -> None:
    nxt = r.lines[k + 1].text if k + 1 < len(r.lines) else ""
    target = "e820"
    if "e820_saved" in nxt:
        target = "saved"
    elif "e820_table_kexec" in nxt:
        target = "kexec"
    elif "e820_table_firmware" in nxt:
        target = "firmware"
    r.bl.e820_edits.append(E820Edit(ed.op, ed.start, ed.size, ed.old_type, ed.new_type,
                                    ed.lineno, target, r.user_header))


def _h_last_pfn(r: _Reader, k: int, ln: LogLine, m: Match) -> None:
    r.bl.last_pfn_lines.append((int(m.group(1), 16) if m.group(1) != "0" else 0, int(m.group(2), 16)))
    r.bl.last_pfn_linenos.append(ln.lineno)


def _h_pagetable(r: _Reader, k: int, ln: LogLine, m: Match) -> None:
    bl = r.bl
    pl = normalize_pagetable_line(ln.text)
    bl.pagetable_lines.append(pl)
    if bl.first_pagetable_lineno is None:
        bl.first_pagetable_lineno = ln.lineno
    if pl.startswith("init_memory_mapping:"):
        r.first_init_seen = True
    elif pl == "Using GB pages for direct mapping":
        bl.gb_pages = True
        _fact(bl, "gbpages", True, ln)
    else:
        mb = _RE_BRK.match(pl)
        if mb:
            bl.brk_lines.append((int(mb.group(1), 16), int(mb.group(2), 16)))
        elif pl.endswith((" page 2M", " page 4M")):
            if bl.cpu.pse is None:
                _fact(bl, "pse", True, ln)
        elif pl.endswith(" page 1G") and bl.cpu.gbpages is None:
            _fact(bl, "gbpages", True, ln)


_PT_PREFIXES = ("init_memory_mapping:", "BRK [", "kernel direct mapping tables up to ", "calculate_table_space_size: ",
                "Using GB pages for direct mapping", "Failed to release memory for alloc_low_pages()",
                "Kernel panic - not syncing: ")


def _m_pagetable(st: str) -> Match:
    """:func:`is_pagetable_line`, after a cheap test every page-table line passes."""
    if " page " not in st and not st.startswith(_PT_PREFIXES):
        return False
    return is_pagetable_line(st)


def _m_ramdisk(st: str) -> Match:
    m = _RE_RD_NEW.match(st)
    if m:
        return (int(m.group(1), 16), int(m.group(2), 16))
    m = _RE_RD_OLD.match(st)
    if m:
        return (int(m.group(1), 16), int(m.group(2), 16) - 1)
    return None


def _h_ramdisk(r: _Reader, k: int, ln: LogLine, rng: Match) -> None:
    r.bl.ramdisk = rng
    r.bl.ramdisk_lineno = ln.lineno


def _m_imm(st: str) -> Match:
    m = _RE_IMM_NEW.match(st)
    if m:
        return (int(m.group(1), 16), int(m.group(2), 16))
    m = _RE_IMM_OLD.match(st)
    if m:
        return (int(m.group(1), 16), int(m.group(2), 16) - 1)
    return None


def _h_imm(r: _Reader, k: int, ln: LogLine, rng: Match) -> None:
    r.bl.initial_memory_mapped = rng


def _h_trampoline(r: _Reader, k: int, ln: LogLine, m: Match) -> None:
    r.bl.trampoline_virt = int(m.group(1), 16)
    r.bl.trampoline = int(m.group(2), 16)
    r.bl.trampoline_size = int(m.group(3))


def _m_nx(st: str) -> Match:
    if st.startswith(_NX_ON):
        return "on"
    if st.startswith(_NX_OFF):
        return "off"
    return None


def _fact(bl: BootLog, name: str, value: object, ln: LogLine) -> None:
    setattr(bl.cpu, name, value)
    bl.cpu.evidence[name] = "line %d: %s" % (ln.lineno, ln.text.strip()[:100])


def _h_nx(r: _Reader, k: int, ln: LogLine, m: Match) -> None:
    bl = r.bl
    st = ln.text.strip()
    bl.nx = m == "on"
    if m == "on" or "disabled by kernel command line" in st or "cannot be enabled" in st:
        _fact(bl, "nx", True, ln)          # the CPU has NX; the kernel may not use it
    elif "missing in CPU" in st:
        _fact(bl, "nx", False, ln)


def _h_memavail(r: _Reader, k: int, ln: LogLine, m: Match) -> None:
    if m.group(2) == "LOWMEM":
        r.bl.lowmem_mb = int(m.group(1))
    else:
        r.bl.highmem_mb = int(m.group(1))


def _h_memblock(r: _Reader, k: int, ln: LogLine, m: Match) -> None:
    r.memblock_raw.append((ln.text.strip(), ln.lineno))


def _h_early_res(r: _Reader, k: int, ln: LogLine, op: Match) -> None:
    op.lineno = ln.lineno
    r.bl.memblock_ops.append(op)


def _h_dump_header(r: _Reader, k: int, ln: LogLine, m: Match) -> None:
    r.dump = MemblockDump(ln.lineno)
    r.bl.memblock_dumps.append(r.dump)


def _h_dump_region(r: _Reader, k: int, ln: LogLine, g: Match) -> None:
    assert r.dump is not None
    g = parse_dump_region(ln.text.strip(), ln.lineno)
    if g.type == "memory":
        r.dump.memory.append(g)
    elif g.type == "reserved":
        r.dump.reserved.append(g)


def _h_pti(r: _Reader, k: int, ln: LogLine, m: Match) -> None:
    bl = r.bl
    state = m.group(1)
    bl.pti_line = ln.text.strip()
    low = state.lower()
    if low.startswith("enabled"):
        bl.pti = True
        _fact(bl, "meltdown", True, ln)     # on by default only on an affected CPU
    elif low.startswith("force enabled"):
        bl.pti = True
        _fact(bl, "meltdown", False, ln)    # "force enabled on command line" is printed when not affected
    elif low.startswith("disabled"):
        bl.pti = False
        if "command line" in low:
            _fact(bl, "meltdown", True, ln)  # printed only when the CPU is affected


def _h_cpu0(r: _Reader, k: int, ln: LogLine, m: Match) -> None:
    v = vendor_from_text(m.group(1))
    if v is not None:
        _fact(r.bl, "vendor", v, ln)


def _when_version(r: _Reader) -> bool:
    return r.bl.kernel_version is None


def _contains(needle: str) -> Callable[[str], Match]:
    return lambda st: needle in st


def _starts(prefix: str) -> Callable[[str], Match]:
    return lambda st: st.startswith(prefix)


#: The line kinds of a boot log, in the order they are tried.  The first eleven are the
#: kinds of the original reader (same order, same guards: the fields they fill are
#: unchanged); the later ones only take lines none of those wanted.
LINE_KINDS: Tuple[LineKind, ...] = (
    LineKind("version", _RE_VERSION.search, _h_version, None, _when_version,
             "the first 'Linux version <release> ...' (anywhere in the line)"),
    LineKind("command_line", _starts("Command line:"), _h_cmd_early, "C",
             lambda r: r.cmd_early is None, "64-bit setup_arch's early 'Command line: ...'"),
    LineKind("kernel_command_line", _starts("Kernel command line:"), _h_cmd_late, "K",
             lambda r: r.cmd_late is None, "start_kernel's 'Kernel command line: ...'"),
    LineKind("e820_entry", None, _h_e820, "BXumer[" + _HEXDIGITS, None,  # type: ignore[arg-type]
             "an e820 map line of either format ('BIOS-e820:', 'Xen:', 'user:', 'modified:' ...)"),
    LineKind("e820_user_header", _contains("user-defined physical RAM map"), _h_user_header, None, None,
             "'user-defined physical RAM map:' (edits after it were made after the mem=/memmap= map)"),
    LineKind("e820_modified_header", _contains("modified physical RAM map"), _h_modified_header, None,
             lambda r: not r.first_init_seen, "'modified physical RAM map:' before the mapping"),
    LineKind("e820_edit", None, _h_edit, "e",  # type: ignore[arg-type]
             lambda r: not r.first_init_seen,
             "'e820: update|remove [mem ..]' / 'e820 update|remove range:' before the mapping"),
    LineKind("last_pfn", _RE_LASTPFN.match, _h_last_pfn, "el", None, "'[e820: ]last_pfn = .. max_arch_pfn = ..'"),
    LineKind("pagetable", _m_pagetable, _h_pagetable, "iI[BkcUFK" + _HEXDIGITS, None,
             "init_memory_mapping / page pieces / BRK PGTABLE / table-space / GB pages / panic lines"),
    LineKind("ramdisk", _m_ramdisk, _h_ramdisk, "R", lambda r: r.bl.ramdisk is None,
             "the first 'RAMDISK: ..' line (the boot loader's initrd)"),
    LineKind("initial_memory_mapped", _m_imm, _h_imm, "i", lambda r: r.bl.initial_memory_mapped is None,
             "the first 'initial memory mapped: ..' line"),
    LineKind("trampoline", _RE_TRAMP.match, _h_trampoline, "B", lambda r: r.bl.trampoline is None,
             "'Base memory trampoline at [virt] phys size n'"),
    LineKind("nx", _m_nx, _h_nx, "NU", lambda r: r.bl.nx is None, "the first NX line"),
    LineKind("memavail", _RE_MEMAVAIL.match, _h_memavail, "0123456789", None, "'NNNMB LOWMEM|HIGHMEM available.'"),
    # -- kinds added with the table -----------------------------------------------------
    LineKind("memblock_call", _starts("memblock"), _h_memblock, "m_", None,
             "a memblock=debug call line (parsed once the version is known)"),
    LineKind("memblock_call_", _starts("__memblock"), _h_memblock, "_", None, "a __memblock_* debug line"),
    LineKind("early_res", lambda st: parse_early_res_line(st, 0), _h_early_res, "#", None,
             "a 2.6.3x early_res table line ('#2 [a - b]  TEXT DATA BSS ==> [a - b]')"),
    LineKind("memblock_dump", lambda st: st == "MEMBLOCK configuration:", _h_dump_header, "M", None,
             "the header of a memblock dump"),
    LineKind("memblock_dump_region", lambda st: parse_dump_region(st, 0), _h_dump_region, "mrp",
             lambda r: r.dump is not None, "' memory|reserved[0x..]\\t[0x..-0x..], 0x.. bytes ..' dump lines"),
    LineKind("pti", _RE_PTI.match, _h_pti, "K", lambda r: r.bl.pti_line is None,
             "'Kernel/User page tables isolation: enabled|disabled ...'"),
    LineKind("cpu0", _RE_CPU0.match, _h_cpu0, "sC", lambda r: r.bl.cpu.vendor is None,
             "'smpboot: CPU0: <vendor> <model>' (print_cpu_info)"),
)

# the e820 kinds need the reader (their match raises on damaged lines)
_READER_MATCH = {"e820_entry": _m_e820, "e820_edit": _m_edit}


def _dispatch() -> Dict[str, Tuple[LineKind, ...]]:
    """First character -> the kinds a line starting with it may be, in table order."""
    chars: set = set()
    for kind in LINE_KINDS:
        if kind.starts:
            chars.update(kind.starts)
    table = {c: tuple(k for k in LINE_KINDS if k.starts is None or c in k.starts) for c in chars}
    table[""] = tuple(k for k in LINE_KINDS if k.starts is None)
    return table


_BY_FIRST = _dispatch()
_DUMP_LINES = ("memory", "reserved", "physmem", "MEMBLOCK configuration:")
_ANY_KINDS = _BY_FIRST[""]


def parse_boot_log(text: Union[str, bytes], name: str = "<log>", strict: bool = False,
                   max_phys_bits: int = 52) -> BootLog:
    """Parse a boot log (see the module docstring and :class:`BootLog`).

    Each line is matched against :data:`LINE_KINDS` (a table of named line kinds, each
    a match and a handler); the first kind that takes it wins.

    Raises :class:`BootLogError` with a one-line message for binary input,
    logs without ``BIOS-e820:``/``Xen:`` lines, damaged e820 lines or e820
    ranges beyond ``max_phys_bits``; with
    ``strict`` also for a quoted-printable line cut at the end of the input.
    Only the first boot is read (parsing stops at a second ``Linux version``).
    """
    raw = decode_text(text, name, BootLogError)
    bl = BootLog(name=name)
    bl.quoted_printable = looks_quoted_printable(raw)
    lines = normalize_log(raw, bl.warnings, qp=bl.quoted_printable)
    if strict and bl.warnings:
        raise BootLogError("%s: %s" % (name, bl.warnings[0]))
    # only the first boot
    seen_version = False
    for k, ln in enumerate(lines):
        if "Linux version " in ln.text:
            if seen_version:
                bl.warnings.append("second boot at line %d ignored" % ln.lineno)
                lines = lines[:k]
                break
            seen_version = True
    bl.lines = lines

    r = _Reader(bl, lines, name, max_phys_bits)
    by_first, any_kinds, reader_match = _BY_FIRST, _ANY_KINDS, _READER_MATCH
    for k, ln in enumerate(lines):
        st = ln.text.strip()
        if not st:
            continue
        if r.dump is not None and not st.startswith(_DUMP_LINES):
            r.dump = None        # a memblock dump ends at the first line that is not one of its own
        for kind in by_first.get(st[0], any_kinds):
            if kind.when is not None and not kind.when(r):
                continue
            rm = reader_match.get(kind.name)
            m = rm(r, ln, st) if rm is not None else kind.match(st)
            if m:
                kind.handle(r, k, ln, m)
                break

    if not r.bios:
        raise BootLogError("%s: no BIOS-e820 lines (is this a boot log?)" % name)
    bl.e820 = E820Map(r.bios)
    if r.user:
        bl.e820_user = E820Map(r.user)
    if r.modified:
        bl.e820_modified = E820Map(r.modified)
        bl.e820_modified_lineno = r.modified_lineno
    cmd = r.cmd_early if r.cmd_early is not None else r.cmd_late
    bl.command_line = cmd[0] if cmd else None
    bl.command_line_lineno = cmd[1] if cmd else None
    bl.options = parse_command_line(bl.command_line)
    msgs = [ln.text for ln in lines]
    bl.arch = detect_arch(msgs, bl.version_line)
    if bl.arch == "i686":
        bl.pae = _detect_pae(bl, msgs)
    _derive(r)
    return bl


def _derive(r: _Reader) -> None:
    """What follows from the lines read: the version record, the paging mode, the
    memblock calls (parsed now that the version is known) and the reservations."""
    bl = r.bl
    if bl.version_line:
        try:
            bl.version = parse_version_line(bl.version_line)
        except VersionError as exc:
            bl.warnings.append("version line %d: %s" % (bl.version_lineno or 0, exc))
    if bl.arch == "x86_64" and bl.max_arch_pfn is not None:
        bl.la57 = bl.max_arch_pfn == 1 << 40         # MAX_PHYSMEM_BITS 52 (5-level) vs 46
        if bl.la57:
            bl.cpu.la57 = True
            bl.cpu.evidence["la57"] = "line %d: max_arch_pfn = %#x (52 physical address bits: 5-level paging)" % (
                bl.last_pfn_linenos[0], bl.max_arch_pfn)
    # memblock: pre-3.14 kernels printed the end of a reserve/free, later ones its last byte
    vt = bl.version.base if bl.version is not None else bl.version_tuple
    inclusive = vt is None or tuple(vt) >= (3, 14, 0)
    ops = list(bl.memblock_ops)            # early_res lines
    last_request: Optional[MemblockOp] = None
    for st, lineno in r.memblock_raw:
        op = parse_memblock_line(st, lineno, inclusive)
        if op is None:
            continue
        if op.is_request:
            last_request = op
        elif last_request is not None and op.caller in ALLOCATOR_CALLERS and op.op == "memblock_reserve":
            op.requested_by = last_request.caller
            last_request = None
        ops.append(op)
    ops.sort(key=lambda o: o.lineno)
    bl.memblock_ops = ops
    if ops or bl.memblock_dumps or bl.ramdisk is not None:
        mapping = bl.first_pagetable_lineno
        for ln in bl.lines:
            t = ln.text
            if t.startswith(("RAMDISK:", "ACPI: ")) or t.startswith("init_memory_mapping"):
                mapping = ln.lineno if mapping is None else min(mapping, ln.lineno)
                break
        d = derive_reservations(ops, bl.memblock_dumps, mapping, bl.ramdisk, bl.ramdisk_lineno, bl.brk_lines)
        bl.early_reservations = d.early_reservations
        bl.brk_reservation, bl.image_reservation, bl.initrd_reservation = d.brk, d.image, d.initrd
        bl.memblock_at_mapping = d.state
        bl.warnings.extend(d.warnings)


def _detect_pae(bl: BootLog, msgs: Sequence[str]) -> Optional[bool]:
    if bl.max_arch_pfn == 1 << 24:
        return True
    if bl.max_arch_pfn == 1 << 20:
        return False
    if bl.version_line and re.search(r"-pae\b", bl.version_line, re.I):
        return True
    if any("protection cannot be enabled: non-PAE kernel" in s for s in msgs):
        return False
    if bl.nx:
        return True  # NX needs PAE page tables on 32-bit
    return None


def load_boot_log(path: Union[str, Path], strict: bool = False) -> BootLog:
    """Read a file (through :func:`emu.inputs.files.read_input`: at most
    :data:`~emu.inputs.files.MAX_INPUT_BYTES`, regular files only, binary data refused on
    the first block) and :func:`parse_boot_log` it.  Errors name the full path;
    ``BootLog.name`` is the file's name and ``BootLog.path`` its full path."""
    full = display_path(path)
    data = read_input(path, "boot log", MAX_INPUT_BYTES, error=BootLogError)
    bl = parse_boot_log(data, full, strict=strict)
    bl.name = Path(path).name or full
    bl.path = full
    return bl
