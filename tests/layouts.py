"""Small e820 layouts for the tests."""
from __future__ import annotations

from emu.kernel.arch.x86.kernel.e820 import E820_RAM, E820_RESERVED, E820Entry, E820Table

G = 1 << 30
M = 1 << 20


def table(*ranges) -> E820Table:
    """``table((start, end, type), ...)`` with end exclusive; type defaults to RAM."""
    out = []
    for r in ranges:
        s, e = r[0], r[1]
        t = r[2] if len(r) > 2 else E820_RAM
        out.append(E820Entry(s, e - s, t))
    return E820Table(out)


def pc(ram_top: int, low_top: int = 0xBFFE0000) -> E820Table:
    """A simple PC: 640K low RAM, BIOS area reserved, RAM to ``low_top``, the PCI hole, RAM above 4G."""
    rs = [(0, 0x9F000), (0x9F000, 0x100000, E820_RESERVED), (0x100000, min(low_top, ram_top))]
    if ram_top > 1 << 32:
        rs.append((min(low_top, ram_top), 1 << 32, E820_RESERVED))
        rs.append((1 << 32, ram_top))
    return table(*rs)
