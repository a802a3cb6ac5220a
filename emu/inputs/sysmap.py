"""A kernel's symbol table: ``System.map``, ``nm vmlinux`` output or ``/proc/kallsyms``.

Each line is ``ADDRESS TYPE NAME`` (``ffffffff81000000 T _text``; kallsyms may add
``\\t[module]``); ``nm``'s undefined symbols (``U name`` without an address) are skipped.
:func:`load_system_map` reads a file through :func:`emu.inputs.files.read_input` and refuses,
with one :class:`SysmapError` line naming the full path: a damaged line (with its number),
Debian's placeholder ``System.map`` (``ffffffffffffffff B The real System.map is in the
linux-image-<version>-dbg package``), a ``/proc/kallsyms`` read without privilege (every
address zero), and a table with fewer than ``min_symbols`` symbols.

:class:`SystemMap` answers name -> address and type, and address -> (name, offset); the
oracle's ``emu.tools.oracle.symbols.Symbols`` is this class (re-exported there).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple, Union

from emu.errors import EmuError
from emu.inputs.files import MAX_INPUT_BYTES, display_path, read_text_input

__all__ = [
    "START_KERNEL_MAP", "PAGE_OFFSET_32", "SysmapError", "SymbolError", "Symbol", "SystemMap", "Symbols",
    "parse_system_map", "load_system_map", "MIN_SYMBOLS", "KERNEL_SYMBOLS",
]

#: ``__START_KERNEL_map``: the kernel image's virtual base on x86-64
START_KERNEL_MAP = 0xFFFFFFFF80000000
#: the default 32-bit ``PAGE_OFFSET`` (CONFIG_VMSPLIT_3G)
PAGE_OFFSET_32 = 0xC0000000
#: a real System.map has tens of thousands of symbols; fewer than this is refused
MIN_SYMBOLS = 1000
_TYPES = set("AaBbCDdGgiINnpRrSsTtUuVvWw-?")


class SysmapError(EmuError):
    """A symbol table emu cannot read (one line, the full path)."""


class SymbolError(SysmapError, KeyError):
    """A symbol not in the table (also a KeyError, as the oracle's lookups expect)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Symbol:
    """One symbol: its ``name``, ``address`` and ``nm`` type letter (``T`` text, ``D``/``d``
    data, ``B``/``b`` bss, ``R``/``r`` read-only, ``A`` absolute...)."""

    name: str
    address: int
    type: str


class SystemMap:
    """A symbol table: name -> address (the first definition of a name wins) and type;
    address -> (name, offset) for kernel addresses.

    Built from ``(address, name)`` or ``(address, name, type)`` tuples (what the oracle's
    ``Symbols(pairs)`` took), or by :func:`parse_system_map` / :func:`load_system_map`.
    ``bits`` is 64 when an address needs more than 32 bits, else 32."""

    def __init__(self, entries: Iterable[Union[Tuple[int, str], Tuple[int, str, str]]], name: str = "<System.map>") -> None:
        self.name = name
        self.addr: Dict[str, int] = {}
        self.types: Dict[str, str] = {}
        self.symbols: List[Symbol] = []
        pairs: List[Tuple[int, str]] = []
        for e in entries:
            a, n = int(e[0]), str(e[1])
            t = str(e[2]) if len(e) > 2 else "?"
            self.symbols.append(Symbol(n, a, t))
            pairs.append((a, n))
            if n not in self.addr:
                self.addr[n] = a
                self.types[n] = t
        self.bits = 64 if any(a > 0xFFFFFFFF for a, _ in pairs) else 32
        # kernel text/data: >= 2 GiB on i386 (any VMSPLIT), >= __START_KERNEL_map on x86-64
        self._sorted = sorted((a, n) for a, n in pairs if a >= 0x80000000)
        self._keys = [a for a, _ in self._sorted]

    @classmethod
    def load(cls, path: Union[str, Path], min_symbols: int = MIN_SYMBOLS) -> "SystemMap":
        """:func:`load_system_map` (the oracle's ``Symbols.load``)."""
        return load_system_map(path, min_symbols)

    # -- lookups -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.addr)

    def __contains__(self, name: object) -> bool:
        return name in self.addr

    def __getitem__(self, name: str) -> int:
        try:
            return self.addr[name]
        except KeyError:
            raise SymbolError(f"symbol {name!r} not in the symbol table {self.name}") from None

    def get(self, name: str, default: Optional[int] = None) -> Optional[int]:
        return self.addr.get(name, default)

    def type_of(self, name: str) -> str:
        """The ``nm`` type letter of ``name`` (SymbolError if absent)."""
        self[name]
        return self.types[name]

    def symbol(self, name: str) -> Symbol:
        return Symbol(name, self[name], self.types[name])

    def lookup(self, addr: int) -> Tuple[str, int]:
        """(name, offset) of the symbol containing ``addr`` (``("?", addr)`` below every
        kernel symbol)."""
        i = bisect.bisect_right(self._keys, addr) - 1
        if i < 0:
            return "?", addr
        a, n = self._sorted[i]
        return n, addr - a

    def size_of(self, name: str) -> int:
        """Distance to the next distinct symbol address (an upper bound of a function's size)."""
        a = self[name]
        i = bisect.bisect_right(self._keys, a)
        return (self._keys[i] - a) if i < len(self._keys) else 0x1000

    def phys(self, name: str, page_offset: Optional[int] = None) -> int:
        """The physical address of a kernel-image symbol when the kernel runs where it was
        linked (no relocation, ``nokaslr``): ``address - __START_KERNEL_map`` on 64-bit,
        ``address - PAGE_OFFSET`` on 32-bit (``page_offset``, default 0xC0000000; pass the
        config's CONFIG_PAGE_OFFSET for another VMSPLIT)."""
        a = self[name]
        if self.bits == 64:
            if a < START_KERNEL_MAP:
                raise SymbolError(f"symbol {name!r} at {a:#x} is not in the kernel image mapping")
            return a - START_KERNEL_MAP
        po = PAGE_OFFSET_32 if page_offset is None else page_offset
        if a < po:
            raise SymbolError(f"symbol {name!r} at {a:#x} is below PAGE_OFFSET {po:#x}")
        return a - po


#: the oracle's name for the class
Symbols = SystemMap


def parse_system_map(text: str, name: str = "<System.map>", min_symbols: int = 1) -> SystemMap:
    """Parse symbol-table text (see the module docstring); SysmapError (one line) for a
    damaged line, Debian's placeholder, all-zero kallsyms addresses or fewer than
    ``min_symbols`` symbols."""
    entries: List[Tuple[int, str, str]] = []
    zero = 0
    for i, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) == 2 and parts[0] in ("U", "w", "v"):
            continue                       # nm: an undefined symbol has no address
        if "The real System.map is in" in line:
            raise SysmapError(f"{name}: a placeholder System.map (Debian ships the real one in the "
                              f"linux-image-<version>-dbg package, or read the kernel's kallsyms)")
        if len(parts) < 3 or len(parts[1]) != 1 or parts[1] not in _TYPES or len(parts[0]) > 16:
            raise SysmapError(f"{name}: line {i}: not an 'ADDRESS TYPE NAME' line: {line.strip()[:80]}")
        try:
            a = int(parts[0], 16)
        except ValueError:
            raise SysmapError(f"{name}: line {i}: bad address {parts[0][:20]!r}") from None
        if len(parts) > 3 and not (len(parts) == 4 and parts[3].startswith("[")):
            raise SysmapError(f"{name}: line {i}: not an 'ADDRESS TYPE NAME' line: {line.strip()[:80]}")
        zero += a == 0
        entries.append((a, parts[2], parts[1]))
    if entries and zero == len(entries) and len(entries) > 1:
        raise SysmapError(f"{name}: every address is 0 (/proc/kallsyms read without privilege? read it as root "
                          f"or use the System.map)")
    if len(entries) < min_symbols:
        raise SysmapError(f"{name}: only {len(entries)} symbols (a truncated or placeholder System.map?)")
    return SystemMap(entries, name)


def load_system_map(path: Union[str, Path], min_symbols: int = MIN_SYMBOLS,
                    limit: int = MAX_INPUT_BYTES) -> SystemMap:
    """Read and parse a System.map / ``nm`` / kallsyms file through
    :func:`emu.inputs.files.read_text_input` (regular files of at most ``limit`` bytes);
    errors (SysmapError, one line) name the full path."""
    name = display_path(path)
    text = read_text_input(path, "System.map", limit, error=SysmapError)
    return parse_system_map(text, name, min_symbols)


#: symbols of the kernel image an emulation may need (its extent, the BRK area, the static
#: page tables of each architecture)
KERNEL_SYMBOLS: Tuple[str, ...] = (
    "_text", "_stext", "_etext", "_end", "__init_begin", "__init_end", "__bss_start", "__bss_stop",
    "__brk_base", "__brk_limit", "__end_of_kernel_reserve", "init_top_pgt", "swapper_pg_dir",
    "level3_kernel_pgt", "level2_kernel_pgt", "level2_fixmap_pgt", "level1_fixmap_pgt",
    "initial_pg_pmd", "initial_pg_fixmap", "initial_page_table", "bm_pte", "phys_base")
