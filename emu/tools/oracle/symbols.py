"""Kernel symbol tables (System.map / ``nm`` format: ``ADDR TYPE NAME``)."""
from __future__ import annotations

import bisect
from typing import Dict, List, Optional, Tuple

START_KERNEL_MAP = 0xFFFFFFFF80000000


class SymbolError(KeyError):
    pass


class Symbols:
    """Name -> address, and address -> (name, start) for text lookups."""

    def __init__(self, pairs: List[Tuple[int, str]]) -> None:
        self.addr: Dict[str, int] = {}
        for a, n in pairs:
            self.addr.setdefault(n, a)
        # kernel text/data: >= 2 GiB on i386 (any VMSPLIT), >= __START_KERNEL_map on x86-64
        self._sorted = sorted((a, n) for a, n in pairs if a >= 0x80000000)
        self._keys = [a for a, _ in self._sorted]

    @classmethod
    def load(cls, path: str) -> "Symbols":
        pairs = []
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                try:
                    a = int(parts[0], 16)
                except ValueError:
                    continue
                pairs.append((a, parts[2]))
        if len(pairs) < 1000:
            raise SymbolError(f"{path}: only {len(pairs)} symbols (a placeholder System.map?)")
        return cls(pairs)

    def __getitem__(self, name: str) -> int:
        try:
            return self.addr[name]
        except KeyError:
            raise SymbolError(f"symbol {name!r} not in the symbol table") from None

    def get(self, name: str) -> Optional[int]:
        return self.addr.get(name)

    def lookup(self, addr: int) -> Tuple[str, int]:
        """(name, offset) of the symbol containing ``addr``."""
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
