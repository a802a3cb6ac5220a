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
from typing import Dict, List, Optional, Sequence, Tuple, Union

from emu.errors import EmuError
from emu.inputs.e820 import (
    E820_RAM, E820_RESERVED_KERN, U64_MAX, E820Entry, E820Map,
    looks_like_e820_line, parse_e820_line, type_from_name,
)
from emu.inputs.logtext import LogLine, decode_text, looks_quoted_printable, normalize_log

__all__ = [
    "BootLogError", "LogLine", "E820Edit", "BootOptions", "BootLog",
    "looks_quoted_printable", "normalize_log", "is_pagetable_line",
    "normalize_pagetable_line", "parse_page_piece", "page_pieces", "PIECE_SHIFTS", "memparse", "parse_size", "parse_command_line",
    "detect_arch", "parse_boot_log", "load_boot_log",
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


_RE_PIECE_MEM = re.compile(r"^\s*\[mem (0x[0-9a-fA-F]+)-(0x[0-9a-fA-F]+)\] page (4k|2M|1G|4M)$")
_RE_PIECE_HEX = re.compile(r"^\s*([0-9a-fA-F]+) - ([0-9a-fA-F]+) page (4k|2M|1G|4M)$")
#: the page size a piece line names, as a shift
PIECE_SHIFTS = {"4k": 12, "2M": 21, "4M": 22, "1G": 30}


def parse_page_piece(line: str) -> Optional[Tuple[int, int, str]]:
    """A ``split_mem_range`` piece line as ``(start, end, size)``, ``end`` exclusive:
    `` [mem 0x00100000-0x001fffff] page 4k`` (3.5+, inclusive end) or
    `` 0000100000 - 0000200000 page 4k`` (before, exclusive end); None for other lines."""
    m = _RE_PIECE_MEM.match(line)
    if m:
        return int(m.group(1), 16), int(m.group(2), 16) + 1, m.group(3)
    m = _RE_PIECE_HEX.match(line)
    if m:
        return int(m.group(1), 16), int(m.group(2), 16), m.group(3)
    return None


def page_pieces(lines: Sequence[str]) -> List[Tuple[int, int, str]]:
    """Every piece line of ``lines`` in order (see :func:`parse_page_piece`)."""
    out = []
    for ln in lines:
        p = parse_page_piece(ln)
        if p is not None:
            out.append(p)
    return out


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
    """Command-line options that matter to the early direct mapping.

    ``mem`` is the effective ``mem=`` limit (each ``mem=`` removes RAM above
    its value, so the smallest non-zero one wins; ``mem=nopentium`` sets
    ``nopentium`` instead).  ``memmap`` keeps each ``memmap=`` value raw, in
    order.  ``gbpages``: True for ``gbpages``, False for ``nogbpages``, None if
    neither (last one wins).  ``pti``: ``"off"`` for ``nopti``, else the
    ``pti=`` value.  ``params`` holds every ``key -> value`` (last wins; None
    for a bare flag).
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
    return opts


# ---------------------------------------------------------------------------
# architecture
# ---------------------------------------------------------------------------
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
        m = re.search(r"max_arch_pfn = (0x[0-9a-fA-F]+)", s)
        if m:
            v = int(m.group(1), 16)
            if v in (1 << 20, 1 << 24):
                score -= 100
            elif v >= 1 << 30:
                score += 100
            continue
        m = re.match(r"Base memory trampoline at \[([0-9a-fA-F]+)\]", s)
        if m:
            score += 50 if len(m.group(1)) > 8 else -50
            continue
        if re.match(r"\d+MB (?:LOWMEM|HIGHMEM) available\.", s):
            score -= 50
            continue
        m = re.match(r"init_memory_mapping: \[mem 0x([0-9a-fA-F]+)-0x([0-9a-fA-F]+)\]", s)
        if m and int(m.group(2), 16) >= 1 << 32:
            score += 50
            continue
        if re.match(r"\s*DMA32\s+(?:\[mem|0x|\d)", s):
            score += 30
            continue
        if re.match(r"\s*HighMem\s+(?:\[mem|0x|\d|empty)", s):
            score -= 30
            continue
        if s.startswith("Command line: "):
            score += 5
    if kernel_version_line:
        v = kernel_version_line
        if re.search(r"x86_64|amd64", v):
            score += 20
        if re.search(r"i[3456]86|-pae\b|\bpae\b", v, re.I):
            score -= 20
    if score > 0:
        return "x86_64"
    if score < 0:
        return "i686"
    return None


# ---------------------------------------------------------------------------
# e820 edits
# ---------------------------------------------------------------------------
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

    def apply(self, table: E820Map) -> int:
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
        old = _edit_type(m.group(3)) if m.group(3) else None
        return E820Edit("remove", a, (b + 1 - a) & U64_MAX, old, None, lineno)
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
        old = _edit_type(m.group(3)) if m.group(3) else None
        return E820Edit("remove", a, (b - a) & U64_MAX, old, None, lineno)
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


def parse_boot_log(text: Union[str, bytes], name: str = "<log>", strict: bool = False,
                   max_phys_bits: int = 52) -> BootLog:
    """Parse a boot log (see the module docstring and :class:`BootLog`).

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

    bios: List[E820Entry] = []
    user: List[E820Entry] = []
    modified: Optional[List[E820Entry]] = None
    modified_lineno: Optional[int] = None
    user_header = False
    first_init_seen = False
    cmd_early: Optional[str] = None
    cmd_late: Optional[str] = None
    msgs = [ln.text for ln in lines]
    for k, ln in enumerate(lines):
        s = ln.text
        st = s.strip()
        if not st:
            continue
        # version
        if bl.kernel_version is None:
            m = _RE_VERSION.search(st)
            if m:
                bl.kernel_version = m.group(1)
                bl.version_line = st[m.start():]
                mv = _RE_VTUPLE.match(m.group(1))
                if mv:
                    bl.version_tuple = (int(mv.group(1)), int(mv.group(2)), int(mv.group(3) or 0))
                continue
        if st.startswith("Command line:") and cmd_early is None:
            cmd_early = st[len("Command line:"):].strip()
            continue
        if st.startswith("Kernel command line:") and cmd_late is None:
            cmd_late = st[len("Kernel command line:"):].strip()
            continue
        # e820 map lines
        try:
            parsed = parse_e820_line(st)
        except ValueError as exc:
            if looks_like_e820_line(st, ("BIOS-e820", "Xen", "user")):
                raise BootLogError("%s: line %d: bad e820 line (%s): %s" % (name, ln.lineno, exc, st[:100])) from None
            parsed = None
        if parsed is not None:
            who, addr, size, type_ = parsed
            if addr + size > 1 << max_phys_bits:
                raise BootLogError("%s: line %d: e820 range [%#x-%#x] beyond the %d-bit physical address limit"
                                   % (name, ln.lineno, addr, addr + size - 1, max_phys_bits))
            if who in ("BIOS-e820", "Xen"):
                if bl.e820_who is None:
                    bl.e820_who = who
                bios.append(E820Entry(addr, size, type_))
            elif who == "user":
                user.append(E820Entry(addr, size, type_))
            elif who == "modified" and not first_init_seen:
                if modified is None:
                    modified, modified_lineno = [], ln.lineno
                modified.append(E820Entry(addr, size, type_))
            continue
        if looks_like_e820_line(st, ("BIOS-e820", "Xen", "user")):
            raise BootLogError("%s: line %d: unparseable e820 line: %s" % (name, ln.lineno, st[:100]))
        if "user-defined physical RAM map" in st:
            user_header = True
            continue
        if "modified physical RAM map" in st and not first_init_seen:
            modified, modified_lineno = [], ln.lineno
            continue
        # edits before the mapping
        if st.startswith("e820") and not first_init_seen:
            try:
                ed = _parse_edit(st, ln.lineno)
            except ValueError as exc:
                raise BootLogError("%s: line %d: bad e820 edit line (%s): %s" % (name, ln.lineno, exc, st[:100])) from None
            if ed is not None:
                nxt = msgs[k + 1] if k + 1 < len(msgs) else ""
                target = "e820"
                if "e820_saved" in nxt:
                    target = "saved"
                elif "e820_table_kexec" in nxt:
                    target = "kexec"
                elif "e820_table_firmware" in nxt:
                    target = "firmware"
                bl.e820_edits.append(E820Edit(ed.op, ed.start, ed.size, ed.old_type, ed.new_type,
                                              ed.lineno, target, user_header))
                continue
        m = _RE_LASTPFN.match(st)
        if m:
            bl.last_pfn_lines.append((int(m.group(1), 16) if m.group(1) != "0" else 0, int(m.group(2), 16)))
            bl.last_pfn_linenos.append(ln.lineno)
            continue
        # page-table lines
        if is_pagetable_line(s):
            pl = normalize_pagetable_line(s)
            bl.pagetable_lines.append(pl)
            if pl.startswith("init_memory_mapping:"):
                first_init_seen = True
            elif pl == "Using GB pages for direct mapping":
                bl.gb_pages = True
            else:
                mb = _RE_BRK.match(pl)
                if mb:
                    bl.brk_lines.append((int(mb.group(1), 16), int(mb.group(2), 16)))
            continue
        if bl.ramdisk is None:
            m = _RE_RD_NEW.match(st)
            if m:
                bl.ramdisk = (int(m.group(1), 16), int(m.group(2), 16))
                continue
            m = _RE_RD_OLD.match(st)
            if m:
                bl.ramdisk = (int(m.group(1), 16), int(m.group(2), 16) - 1)
                continue
        if bl.initial_memory_mapped is None:
            m = _RE_IMM_NEW.match(st)
            if m:
                bl.initial_memory_mapped = (int(m.group(1), 16), int(m.group(2), 16))
                continue
            m = _RE_IMM_OLD.match(st)
            if m:
                bl.initial_memory_mapped = (int(m.group(1), 16), int(m.group(2), 16) - 1)
                continue
        if bl.trampoline is None:
            m = _RE_TRAMP.match(st)
            if m:
                bl.trampoline_virt = int(m.group(1), 16)
                bl.trampoline = int(m.group(2), 16)
                bl.trampoline_size = int(m.group(3))
                continue
        if bl.nx is None:
            if st.startswith("NX (Execute Disable) protection: active"):
                bl.nx = True
                continue
            if (st.startswith("Notice: NX (Execute Disable) protection missing in CPU")
                    or st.startswith("Notice: NX (Execute Disable) protection cannot be enabled")
                    or st.startswith("NX (Execute Disable) protection: disabled")
                    or st.startswith("Using x86 segment limits to approximate NX protection")):
                bl.nx = False
                continue
        m = _RE_MEMAVAIL.match(st)
        if m:
            if m.group(2) == "LOWMEM":
                bl.lowmem_mb = int(m.group(1))
            else:
                bl.highmem_mb = int(m.group(1))
            continue

    if not bios:
        raise BootLogError("%s: no BIOS-e820 lines (is this a boot log?)" % name)
    bl.e820 = E820Map(bios)
    if user:
        bl.e820_user = E820Map(user)
    if modified:
        bl.e820_modified = E820Map(modified)
        bl.e820_modified_lineno = modified_lineno
    bl.command_line = cmd_early if cmd_early is not None else cmd_late
    bl.options = parse_command_line(bl.command_line)
    bl.arch = detect_arch(msgs, bl.version_line)
    if bl.arch == "i686":
        bl.pae = _detect_pae(bl, msgs)
    return bl


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
    """Read a file and :func:`parse_boot_log` it (the file name names errors)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise BootLogError("%s: cannot read: %s" % (p.name, exc.strerror or exc)) from None
    return parse_boot_log(data, p.name, strict=strict)
