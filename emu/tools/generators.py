"""e820 map generators: realistic families and adversarial ones, seeded and reproducible.

One generator serves two masters: :func:`generate` draws from a
``random.Random`` (the fuzzer: ``generate(random.Random(seed))`` is the same map
on every machine and Python version), and the hypothesis strategies
:func:`cases` / :func:`e820_maps` draw the same choices from hypothesis, so
users' property tests shrink through them::

    from hypothesis import given
    from emu.tools.generators import cases
    from emu import emulate

    @given(cases(families=["laptop", "server"]))
    def test_my_property(case):
        r = emulate(case.table(), "6.1", case.boot_params())
        assert r.panic or r.verify.ok

Families (``FAMILIES``):

realistic
  ``laptop``, ``desktop`` -- low RAM, the BIOS area, RAM up to the PCI hole with ACPI
  tables, NVS and reserved islands below it, the hole's reserved pieces (IOAPIC,
  LAPIC, flash), RAM above 4 GiB; ``server`` -- NUMA-node-sized RAM ranges with
  gaps, up to many TiB; ``vm`` -- QEMU/KVM, Xen HVM and Hyper-V shapes; ``efi`` -- maps
  converted from EFI memory maps, many small fragments.
adversarial
  ``odd`` (boundaries off page alignment), ``islands`` (4 KiB reserved islands next
  to 2 MiB / 1 GiB boundaries), ``boundary`` (RAM ending just above/below 1 GiB,
  4 GiB, 512 GiB), ``top_reserved`` (reserved blocks at the top of RAM), ``tiny``
  (a few MiB of RAM), ``brk_inside`` (the BRK buffer inside the first mapped window),
  ``sparse_high`` (little RAM far up: just below/above 512 GiB, 1 TiB, 64 TiB).

Every paging mode (``MODES``): ``x86_64`` (4-level), ``la57`` (5-level: maps beyond
64 TiB, RAM in several 256 TiB PML5 regions with holes between them; families ``beyond_64t``
and ``pml5_holes``), ``i386-pae`` and ``i386`` (RAM up to 64/4 GiB; ``highmem_edge``: RAM
ending around the lowmem boundary; random ``MAXMEM``/``highmem=``; 4 MiB pages without PAE),
each with ``movable_node`` (memblock bottom-up), ``mem=``/``memmap=`` edits, PTI, no PGE and
4k-only builds (``debug_pagealloc``, no PSE) drawn at random.  A campaign passes the modes
its profile supports (:func:`modes_for`).

A :class:`Case` is an e820 list plus the boot parameters the fuzzer varies (paging mode,
GB pages, PSE/debug_pagealloc, NX, PGE, PTI, bottom-up, command-line memory edits, the
i386 lowmem/highmem split, the initrd, BRK and kernel placement).  :func:`mutate` makes a
neighbour of a case (the campaign's coverage-steered half).
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from emu.inputs.e820 import E820_ACPI, E820_NVS, E820_RAM, E820_RESERVED, E820_UNUSABLE, E820Entry, E820Map
from emu.kernel.arch.x86.kernel.e820 import E820Table

K, M, G, T = 1 << 10, 1 << 20, 1 << 30, 1 << 40
PAGE = 4096
FOUR_G = 4 * G


# ---------------------------------------------------------------------------
# the case
# ---------------------------------------------------------------------------
@dataclass
class Case:
    """One fuzz input: e820 entries ``(addr, size, type)`` and boot parameters."""

    e820: List[Tuple[int, int, int]]
    family: str = "custom"
    gbpages: bool = True
    pse: bool = True
    nx: bool = True
    pge: bool = True
    debug_pagealloc: bool = False
    kernel_start: int = 0x1000000
    brk_base: Optional[int] = None
    initrd: Optional[Tuple[int, int]] = None
    reserves: List[Tuple[int, int]] = field(default_factory=list)
    #: paging mode: "x86_64" (4-level), "la57" (5-level), "i386-pae", "i386"
    mode: str = "x86_64"
    pti: bool = False
    movable_node: bool = False
    #: mem= (bytes) and memmap= options
    mem_limit: Optional[int] = None
    memmap: List[str] = field(default_factory=list)
    #: i386: MAXMEM (lowmem ends here when RAM goes further) and highmem= (bytes)
    lowmem_limit: Optional[int] = None
    highmem: Optional[int] = None

    def table(self) -> E820Table:
        return E820Table([E820Entry(a, s, t) for a, s, t in self.e820])

    def boot_params(self):
        from emu.kernel.params import BootParams
        from emu.machine.cpu import CpuFeatures
        p = BootParams(cpu=CpuFeatures(pse=self.pse, pge=self.pge, gbpages=self.gbpages, nx=self.nx))
        p.arch = "i386" if self.mode.startswith("i386") else "x86_64"
        p.pae = self.mode != "i386"
        p.la57 = self.mode == "la57"
        p.pti = self.pti
        p.movable_node = self.movable_node
        p.mem_limit = self.mem_limit
        p.memmap = list(self.memmap)
        p.lowmem_limit = self.lowmem_limit
        p.highmem = self.highmem
        p.gbpages = self.gbpages
        p.debug_pagealloc = self.debug_pagealloc
        p.kernel_start = self.kernel_start
        p.brk_base = self.brk_base
        p.initrd = tuple(self.initrd) if self.initrd else None
        p.reserves = [tuple(r) for r in self.reserves]
        return p

    def to_json(self) -> dict:
        d = asdict(self)
        d["e820"] = [{"addr": hex(a), "size": hex(s), "type": t} for a, s, t in self.e820]
        for key in ("kernel_start", "brk_base"):
            if d[key] is not None:
                d[key] = hex(d[key])
        if d["initrd"] is not None:
            d["initrd"] = [hex(x) for x in d["initrd"]]
        d["reserves"] = [[hex(a), hex(b)] for a, b in d["reserves"]]
        for key in ("mem_limit", "lowmem_limit", "highmem"):
            if d[key] is not None:
                d[key] = hex(d[key])
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Case":
        n = lambda v: int(v, 0) if isinstance(v, str) else v  # noqa: E731
        e820 = [(n(e["addr"]), n(e["size"]), int(e["type"])) for e in d["e820"]]
        kw = {k: d[k] for k in ("family", "gbpages", "pse", "nx", "pge", "debug_pagealloc", "mode", "pti",
                                "movable_node") if k in d}
        c = cls(e820, **kw)
        for key in ("mem_limit", "lowmem_limit", "highmem"):
            if d.get(key) is not None:
                setattr(c, key, n(d[key]))
        c.memmap = list(d.get("memmap", []))
        c.kernel_start = n(d.get("kernel_start", c.kernel_start))
        c.brk_base = n(d["brk_base"]) if d.get("brk_base") is not None else None
        c.initrd = (n(d["initrd"][0]), n(d["initrd"][1])) if d.get("initrd") else None
        c.reserves = [(n(a), n(b)) for a, b in d.get("reserves", [])]
        return c

    def cli_args(self) -> List[str]:
        """The ``emu`` options (besides ``--e820 FILE``) that reproduce this case."""
        out: List[str] = []
        if self.mode.startswith("i386"):
            out += ["--arch", self.mode]
        if self.mode == "la57":
            out.append("--la57")
        if self.pti:
            out.append("--pti")
        if self.movable_node:
            out.append("--movable-node")
        if self.mem_limit is not None:
            out += ["--mem", hex(self.mem_limit)]
        for m in self.memmap:
            out += [f"--memmap={m}"]
        if self.lowmem_limit is not None:
            out += ["--param", f"lowmem_limit={self.lowmem_limit:#x}"]
        if self.highmem is not None:
            out += ["--param", f"highmem={self.highmem:#x}"]
        if not self.gbpages:
            out.append("--no-gbpages")
        if not self.pse:
            out.append("--no-pse")
        if not self.nx:
            out.append("--no-nx")
        if not self.pge:
            out.append("--no-pge")
        if self.debug_pagealloc:
            out.append("--debug-pagealloc")
        if self.kernel_start != 0x1000000:
            out += ["--kernel-start", hex(self.kernel_start)]
        if self.brk_base is not None:
            out += ["--brk", hex(self.brk_base)]
        if self.initrd:
            out += ["--initrd", f"{self.initrd[0]:#x}-{self.initrd[1]:#x}"]
        for a, b in self.reserves:
            out += ["--reserve", f"{a:#x}-{b:#x}"]
        return out

    def ram(self) -> int:
        return sum(s for _, s, t in self.e820 if t == E820_RAM)


# ---------------------------------------------------------------------------
# where choices come from: random.Random or hypothesis
# ---------------------------------------------------------------------------
class RandomSource:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def int(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def choice(self, seq: Sequence):
        return seq[self.rng.randrange(len(seq))]

    def bool(self, p: float = 0.5) -> bool:
        return self.rng.random() < p


class DrawSource:
    """Choices drawn from hypothesis (``draw`` of a ``st.composite``)."""

    def __init__(self, draw) -> None:
        from hypothesis import strategies as st
        self.draw, self.st = draw, st

    def int(self, lo: int, hi: int) -> int:
        return self.draw(self.st.integers(lo, hi))

    def choice(self, seq: Sequence):
        return seq[self.draw(self.st.integers(0, len(seq) - 1))]

    def bool(self, p: float = 0.5) -> bool:
        return self.draw(self.st.booleans())


# ---------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------
def _low(src, odd: bool = False) -> List[Tuple[int, int, int]]:
    """[0, 640K) RAM (EBDA carved off the top), the BIOS area reserved."""
    top = src.choice([0x9F000, 0x9FC00, 0x9E800, 0x9D000, 0xA0000])
    if odd:
        top = src.choice([0x9FC00, 0x9F800, 0x9E400])
    out = [(0, top, E820_RAM)]
    if top < 0xA0000:
        out.append((top, 0xA0000 - top, E820_RESERVED))
    bios = src.choice([0xE0000, 0xF0000, 0xDC000, 0xE8000])
    out.append((bios, 0x100000 - bios, E820_RESERVED))
    return out


def _units(src, n_max: int) -> int:
    return src.int(1, n_max)


def _ram_size(src, lo: int, hi: int, align: int = M) -> int:
    """A RAM size in [lo, hi], biased to round numbers (in [hi, hi] when a family's
    smallest machine is above the --max-ram asked for)."""
    lo = min(lo, hi)
    style = src.int(0, 3)
    if style == 0:                       # a power of two
        choices = [1 << b for b in range(max(lo, 1).bit_length() - 1, hi.bit_length()) if lo <= (1 << b) <= hi]
        if choices:
            return src.choice(choices)
    if style == 1 and hi >= G:           # whole GiB
        return src.int(max(1, lo // G), hi // G) * G
    return max(lo, src.int(lo // align, hi // align) * align)


def _pci_hole(src) -> Tuple[int, List[Tuple[int, int, int]]]:
    """Top of low RAM and the reserved pieces of the hole below 4 GiB."""
    low_top = src.choice([0x80000000, 0xA0000000, 0xB0000000, 0xC0000000, 0xD0000000, 0xE0000000,
                          0xBFFE0000, 0xDFF00000, 0x7FFDC000, 0xCFF70000, 0x3FFE0000])
    pieces = []
    if src.bool(0.7):
        pieces.append((0xFEC00000, 0x1000, E820_RESERVED))   # IOAPIC
        pieces.append((0xFEE00000, 0x1000, E820_RESERVED))   # LAPIC
    if src.bool(0.7):
        base = src.choice([0xFF000000, 0xFFC00000, 0xFFE00000, 0xFFFC0000])
        pieces.append((base, 0x100000000 - base, E820_RESERVED))  # flash
    if src.bool(0.5):
        pieces.append((0xE0000000, 0x10000000, E820_RESERVED))   # MMCONFIG
    return low_top, pieces


def _acpi_tail(src, low_top: int, odd: bool = False) -> Tuple[int, List[Tuple[int, int, int]]]:
    """ACPI data, NVS and reserved blocks carved from the top of low RAM."""
    out = []
    top = low_top
    for typ in (E820_RESERVED, E820_NVS, E820_ACPI):
        if src.bool(0.6):
            size = src.choice([0x1000, 0x2000, 0x10000, 0x20000, 0x100000, 0x400000, 0x800000, 0x3F000])
            if odd:
                size += src.choice([0x400, 0x800, 0xC00])
            top -= size
            out.append((top, size, typ))
    return top, out


def _islands(src, lo: int, hi: int, n: int, odd: bool = False) -> List[Tuple[int, int, int]]:
    """n small reserved islands in [lo, hi) (not overlapping; sanitising resolves the rest)."""
    out = []
    for _ in range(n):
        if hi - lo < 8 * M:
            break
        a = src.int(lo // PAGE, (hi - 4 * M) // PAGE) * PAGE
        size = src.choice([0x1000, 0x2000, 0x4000, 0x10000, 0x100000, 0x200000, 0x1000000])
        if odd:
            a += src.choice([0, 0x200, 0x800])
        out.append((a, size, src.choice([E820_RESERVED, E820_RESERVED, E820_ACPI, E820_NVS, E820_UNUSABLE])))
    return out


def _high(total_low: int, total: int) -> List[Tuple[int, int, int]]:
    return [(FOUR_G, total - total_low, E820_RAM)] if total > total_low else []


# ---------------------------------------------------------------------------
# the families
# ---------------------------------------------------------------------------
def fam_laptop(src, max_ram: int, odd: bool = False) -> List[Tuple[int, int, int]]:
    total = _ram_size(src, 512 * M, max_ram)
    out = _low(src, odd)
    low_top, hole = _pci_hole(src)
    ram_top = min(low_top, 0x100000 + total)
    top, tail = _acpi_tail(src, ram_top, odd)
    out.append((0x100000, top - 0x100000, E820_RAM))
    out += tail
    if ram_top < low_top and src.bool(0.3):
        out.append((ram_top, low_top - ram_top, E820_RESERVED))   # stolen graphics memory
    out += hole
    out += _islands(src, 0x100000, top, src.int(0, 4), odd)
    out += _high(top - 0x100000, total)
    return out


def fam_desktop(src, max_ram: int) -> List[Tuple[int, int, int]]:
    out = fam_laptop(src, max_ram)
    if src.bool(0.3):                   # memory remapped above 4G, a reserved gap above it
        top = max(a + s for a, s, t in out)
        if top > FOUR_G:
            gap = src.choice([2 * M, 16 * M, 256 * M, G])
            out.append((top, gap, E820_RESERVED))
            out.append((top + gap, src.choice([512 * M, G, 2 * G]), E820_RAM))
    return out


def fam_server(src, max_ram: int) -> List[Tuple[int, int, int]]:
    nodes = src.int(1, 8)
    per = max(G, _ram_size(src, G, max(G, max_ram // nodes), G))
    out = _low(src)
    low_top = src.choice([0x80000000, 0xB0000000, 0xC0000000, 0x7F000000])
    top, tail = _acpi_tail(src, low_top)
    out.append((0x100000, top - 0x100000, E820_RAM))
    out += tail
    out.append((0xE0000000, 0x10000000, E820_RESERVED))
    out.append((0xFEC00000, 0x1400000, E820_RESERVED))
    addr = FOUR_G
    for _i in range(nodes):
        size = per if src.bool(0.7) else per - src.choice([M * 64, M * 2, G // 2, 0x1000])
        out.append((addr, size, E820_RAM))
        gap = src.choice([0, 0, G, 64 * M, 2 * M, 512 * G - (addr + size) % (512 * G) if src.bool(0.1) else 0])
        addr += size + gap
    if src.bool(0.3):
        out += _islands(src, FOUR_G, addr, src.int(1, 6))
    return out


def fam_vm(src, max_ram: int) -> List[Tuple[int, int, int]]:
    total = _ram_size(src, 64 * M, max_ram)
    kind = src.choice(["qemu", "xen", "hyperv"])
    if kind == "qemu":
        split = src.choice([0x80000000, 0xB0000000, 0xC0000000])
        low = min(total, split)
        out = [(0, 0x9FC00, E820_RAM), (0x9FC00, 0x400, E820_RESERVED), (0xF0000, 0x10000, E820_RESERVED),
               (0x100000, low - 0x100000 - 0x24000, E820_RAM), (low - 0x24000, 0x24000, E820_RESERVED),
               (0xFEFFC000, 0x4000, E820_RESERVED), (0xFFFC0000, 0x40000, E820_RESERVED)]
        out += _high(low, total)
    elif kind == "xen":
        low = min(total, 0xF0000000)
        out = [(0, 0x9E000, E820_RAM), (0x9E000, 0x2000, E820_RESERVED), (0xE0000, 0x20000, E820_RESERVED),
               (0x100000, low - 0x100000, E820_RAM), (0xFC000000, 0x4000000, E820_RESERVED)]
        out += _high(low, total)
    else:
        low = min(total, 0xF8000000)
        out = [(0, 0xA0000, E820_RAM), (0xC0000, 0x40000, E820_RESERVED),
               (0x100000, low - 0x100000 - 0x300000, E820_RAM), (low - 0x300000, 0x300000, E820_ACPI),
               (0xFFF00000, 0x100000, E820_RESERVED)]
        out += _high(low, total)
    return out


def fam_efi(src, max_ram: int) -> List[Tuple[int, int, int]]:
    """EFI memory maps converted to e820: RAM cut into many pieces by runtime-services
    code/data, ACPI, NVS and MMIO descriptors."""
    out = fam_laptop(src, max_ram)
    low_top = max(a + s for a, s, t in out if t == E820_RAM and a < FOUR_G)
    n = src.int(8, 60)
    for _ in range(n):
        a = src.int(0x100000 // PAGE, max(0x100000 // PAGE, low_top // PAGE - 16)) * PAGE
        size = src.choice([0x1000, 0x2000, 0x3000, 0x5000, 0xF000, 0x20000, 0x41000, 0x1B000])
        out.append((a, size, src.choice([E820_RESERVED, E820_ACPI, E820_NVS, E820_RESERVED])))
    return out


def fam_odd(src, max_ram: int) -> List[Tuple[int, int, int]]:
    out = fam_laptop(src, max_ram, odd=True)
    res = []
    for a, s, t in out:
        if t == E820_RAM and a >= 0x100000 and src.bool(0.5):
            d = src.choice([0x200, 0x400, 0x800, 0xC00, 0xFFF, 0x1])
            a, s = a + d, s - d - src.choice([0, 0x400, 0x800, 0x1])
        res.append((a, s, t))
    return res


def fam_islands(src, max_ram: int) -> List[Tuple[int, int, int]]:
    out = fam_laptop(src, max_ram)
    top = max(a + s for a, s, t in out)
    for _ in range(src.int(1, 8)):
        unit = src.choice([2 * M, 2 * M, G])
        n = max(1, min(top, 64 * G) // unit - 1)
        b = src.int(1, n) * unit
        where = src.choice([-PAGE, 0, -2 * PAGE, PAGE])
        out.append((b + where, src.choice([PAGE, PAGE, 2 * PAGE]), src.choice([E820_RESERVED, E820_ACPI, E820_NVS])))
    return out


def fam_boundary(src, max_ram: int) -> List[Tuple[int, int, int]]:
    cands = [b for b in (G, 2 * G, 4 * G, 8 * G, 64 * G, 512 * G, 1024 * G) if b <= max(max_ram, 4 * G) + 4 * G]
    b = src.choice(cands)
    delta = src.choice([-PAGE, PAGE, -2 * M, 2 * M, -2 * M + PAGE, 2 * M + PAGE, -G + 2 * M, 0, -2 * M - PAGE])
    end = b + delta
    out = _low(src)
    if end <= FOUR_G:
        top = min(end, 0xFEC00000)
        out.append((0x100000, top - 0x100000, E820_RAM))
        if top < FOUR_G and src.bool(0.5):
            out.append((0xFEC00000, 0x1000, E820_RESERVED))
    else:
        low_top = src.choice([0xC0000000, 0x80000000, 0xE0000000])
        out.append((0x100000, low_top - 0x100000, E820_RAM))
        out.append((0xFEC00000, 0x1000, E820_RESERVED))
        if src.bool(0.4):                        # RAM ends at the boundary, in one or two ranges
            mid = FOUR_G + src.int(0, (end - FOUR_G) // (2 * M)) * 2 * M
            if FOUR_G < mid < end:
                out.append((FOUR_G, mid - FOUR_G, E820_RAM))
                out.append((mid, end - mid, E820_RAM))
            else:
                out.append((FOUR_G, end - FOUR_G, E820_RAM))
        else:
            out.append((FOUR_G, end - FOUR_G, E820_RAM))
    return out


def fam_top_reserved(src, max_ram: int) -> List[Tuple[int, int, int]]:
    out = src.choice([fam_laptop, fam_vm, fam_boundary])(src, max_ram)
    top = max(a + s for a, s, t in out if t == E820_RAM)
    size = src.choice([PAGE, 2 * M - PAGE, 2 * M, 2 * M + PAGE, 4 * M, 64 * M, 256 * M, G])
    size = min(size, max(PAGE, (top - 0x200000) // 2))
    out.append((top - size, size, src.choice([E820_RESERVED, E820_RESERVED, E820_ACPI, E820_UNUSABLE])))
    if src.bool(0.3):                            # and a second block just below a free 2M
        out.append((top - size - 2 * M - src.choice([0, PAGE, 2 * M]), src.choice([PAGE, 2 * M]), E820_RESERVED))
    return out


def fam_tiny(src, max_ram: int) -> List[Tuple[int, int, int]]:
    total = src.choice([8 * M, 16 * M, 24 * M, 32 * M, 48 * M, 64 * M, 96 * M, 128 * M, 256 * M])
    total += src.choice([0, 0, -PAGE, 2 * M - PAGE, -2 * M + PAGE, 0x400])
    out = _low(src)
    out.append((0x100000, total - 0x100000, E820_RAM))
    if src.bool(0.5):
        out += _islands(src, 0x100000, total, src.int(1, 3))
    return out


def fam_brk_inside(src, max_ram: int) -> List[Tuple[int, int, int]]:
    """RAM that ends just above the BRK buffer, so the first (top) window contains it."""
    # the default BRK is kernel_start + 0x1FE0000 = 0x2FE0000 (see setup_arch)
    end = 0x2FE0000 + src.choice([0x10000, 0x11000, 0x20000, 0x100000, 0x120000, 0x200000, 0x220000, 0x21000])
    out = _low(src)
    out.append((0x100000, end - 0x100000, E820_RAM))
    return out


def fam_sparse_high(src, max_ram: int) -> List[Tuple[int, int, int]]:
    """Little RAM spread over a large physical space: small ranges just below or above
    512 GiB / 1 TiB / 64 TiB (memory behind big holes, as on NUMA machines with
    unpopulated nodes), so the top window lands in another PGD/PUD slot."""
    out = _low(src)
    low_top = src.choice([0x4000000, 0x10000000, 0x40000000, 0x80000000, 0xC0000000])
    out.append((0x100000, low_top - 0x100000, E820_RAM))
    for _ in range(src.int(1, 3)):
        base = src.choice([512 * G, 1 << 40, 4 << 40, 64 << 40, 256 * G, 513 * G])
        base += src.choice([0, -2 * M, 2 * M, -G, PAGE, -64 * M])
        size = src.choice([2 * M, 4 * M, 64 * M, 256 * M, G, 2 * M + PAGE, 3 * PAGE])
        out.append((base, size, E820_RAM))
    return out


P = 1 << 50
PML5 = 256 * T          # one PGD entry with 5-level paging


def fam_beyond_64t(src, max_ram: int) -> List[Tuple[int, int, int]]:
    """5-level: RAM running past the 4-level limit (64 TiB) and past 128/256/512 TiB or
    further, in one or a few node-sized ranges with gaps (GB pages keep the tables small)."""
    out = _low(src)
    low_top = src.choice([0x80000000, 0xC0000000, 0x7FFDC000])
    out.append((0x100000, low_top - 0x100000, E820_RAM))
    end = src.choice([64 * T, 128 * T, 256 * T, 256 * T, 512 * T, 512 * T, P, 4 * P if src.bool(0.2) else P]) + \
        src.choice([0, 2 * M, -2 * M, G, -G, PAGE, 512 * G, -512 * G, 3 * T])
    nodes = src.int(1, 4)
    addr = FOUR_G
    per = max(G, (end - FOUR_G) // nodes // G * G)
    for i in range(nodes):
        e = end if i == nodes - 1 else addr + per
        gap = 0 if i == 0 or src.bool(0.5) else src.choice([2 * M, G, 64 * G, 512 * G, T])
        if addr + gap < e:
            out.append((addr + gap, e - addr - gap, E820_RAM))
        addr = e
    return out


def fam_pml5_holes(src, max_ram: int) -> List[Tuple[int, int, int]]:
    """5-level: RAM in a few 256 TiB PML5 regions with holes between and inside them, some
    ranges crossing a region boundary (one init_memory_mapping call spanning regions)."""
    out = _low(src)
    out.append((0x100000, src.choice([0x40000000, 0x80000000, 0xC0000000]) - 0x100000, E820_RAM))
    if src.bool(0.5):
        out.append((FOUR_G, src.choice([G, 64 * G, T, 16 * T]), E820_RAM))
    for _ in range(src.int(1, 4)):
        region = src.int(0, 15)
        off = src.choice([0, 2 * M, G, 512 * G, 100 * T, 200 * T, PML5 - 512 * G, PML5 - G, PML5 - 2 * M,
                          src.int(1, PML5 // G - 1) * G])
        size = src.choice([2 * M, G, 512 * G, 16 * T, 64 * T, 100 * T, PML5, PML5 + 512 * G, 2 * PML5,
                           src.int(1, 2 * PML5 // G) * G + src.choice([0, 2 * M, PAGE])])
        base = region * PML5 + off
        if base > FOUR_G:
            out.append((base, size, E820_RAM))
    return out


#: lowmem ends at MAXMEM on i386; common values (3G/1G split, PAE and not, other splits, vmalloc=)
LOWMEM_LIMITS = [0x37BFE000, 0x377FE000, 0x38000000, 0x2F800000, 0x17BFE000, 0x37FFE000, 0x20000000]


def fam_highmem_edge(src, max_ram: int) -> List[Tuple[int, int, int]]:
    """i386: RAM ending just around the lowmem boundary (``MAXMEM``), where highmem starts,
    with a reserved block or hole at the boundary now and then."""
    out = _low(src)
    edge = src.choice(LOWMEM_LIMITS + [0x38000000, 0x40000000])
    end = edge + src.choice([0, PAGE, -PAGE, 2 * M, -2 * M, 4 * M, -4 * M, 2 * M + PAGE, -4 * M + PAGE, 64 * M])
    out.append((0x100000, end - 0x100000, E820_RAM))
    if src.bool(0.3):
        a = edge - src.choice([0, 2 * M, 4 * M]) - src.choice([PAGE, 2 * M])
        out.append((a, src.choice([PAGE, 2 * M, 4 * M]), src.choice([E820_RESERVED, E820_ACPI])))
    if src.bool(0.4):
        out.append((FOUR_G if src.bool(0.5) else end + 16 * M, src.choice([G, 4 * G, 16 * G]), E820_RAM))
    return out


FAMILIES: Dict[str, Callable] = {
    "laptop": fam_laptop, "desktop": fam_desktop, "server": fam_server, "vm": fam_vm, "efi": fam_efi,
    "odd": fam_odd, "islands": fam_islands, "boundary": fam_boundary, "top_reserved": fam_top_reserved,
    "tiny": fam_tiny, "brk_inside": fam_brk_inside, "sparse_high": fam_sparse_high,
    "beyond_64t": fam_beyond_64t, "pml5_holes": fam_pml5_holes, "highmem_edge": fam_highmem_edge,
}
REALISTIC = ["laptop", "desktop", "server", "vm", "efi"]
ADVERSARIAL = ["odd", "islands", "boundary", "top_reserved", "tiny", "brk_inside", "sparse_high"]
#: families of one paging mode only
MODE_FAMILIES = {"la57": ["beyond_64t", "pml5_holes"], "i386-pae": ["highmem_edge"], "i386": ["highmem_edge"]}
MODES = ("x86_64", "la57", "i386-pae", "i386")
#: how often each mode is drawn when several are allowed
MODE_WEIGHTS = {"x86_64": 5, "la57": 2, "i386-pae": 2, "i386": 1}
#: the largest physical address each mode's RAM reaches (i386: MAX_ARCH_PFN, 36 / 32 bits)
MODE_MAX_RAM = {"x86_64": 64 * T, "la57": 4 * P, "i386-pae": 64 * G, "i386": 4 * G}


def modes_for(profile) -> List[str]:
    """The paging modes a profile can boot (5-level only where the profile supports it)."""
    out = ["x86_64", "i386-pae", "i386"]
    if getattr(profile, "la57_supported", False):
        out.insert(1, "la57")
    return out


def families_for(mode: str, families: Optional[Sequence[str]] = None) -> List[str]:
    """The families drawn for ``mode`` (a campaign's ``families`` restricts them)."""
    if families:
        return [f for f in families if f not in MODE_FAMILIES or mode in {m for m, fs in MODE_FAMILIES.items()
                                                                            if f in fs}] or list(families)
    return REALISTIC + ADVERSARIAL + MODE_FAMILIES.get(mode, [])


def _mode_params(src, case: Case, profile_bottom_up: bool = True) -> None:
    """PTI, bottom-up, mem=/memmap= edits, and (i386) the lowmem/highmem split."""
    case.pti = src.bool(0.15)
    case.movable_node = profile_bottom_up and src.bool(0.12)
    top = max((a + s for a, s, t in case.e820 if t == E820_RAM), default=0)
    if src.bool(0.08) and top > 0x8000000:
        # mem=: somewhere in RAM, round or odd
        lim = src.int(0x6000000 // M, top // M) * M + src.choice([0, 0, PAGE, 2 * M - PAGE, 0x400])
        case.mem_limit = lim
    if src.bool(0.06) and top > 0x8000000:
        for _ in range(src.int(1, 2)):
            size = src.choice([PAGE, 2 * M, 64 * M, G, 0x1234000])
            start = src.int(0x4000000 // PAGE, max(0x4000000 // PAGE, (top - size) // PAGE)) * PAGE
            sep = src.choice(["$", "$", "#", "@", "!"])
            case.memmap.append(f"{size:#x}{sep}{start:#x}")
    if case.mode.startswith("i386"):
        if src.bool(0.25):
            case.lowmem_limit = src.choice(LOWMEM_LIMITS)
        if src.bool(0.1):
            case.highmem = src.choice([0, 16 * M, 64 * M, 256 * M, 512 * M, G, 4 * G])


def _params(src, case: Case, max_ram: int) -> None:
    case.gbpages = src.bool(0.6)
    if src.bool(0.04):
        case.debug_pagealloc = True
    if src.bool(0.02):
        case.pse = False
    if src.bool(0.1):
        case.nx = False
    if src.bool(0.05):
        case.pge = False
    ram_top_low = max((a + s for a, s, t in case.e820 if t == E820_RAM and a + s <= FOUR_G), default=0)
    if src.bool(0.4) and ram_top_low > 0x4000000:     # initrd near the top of low RAM, as loaders put it
        size = src.choice([4 * M, 16 * M, 32 * M, 61 * M + 0x3000])
        end = ram_top_low - src.choice([0, PAGE, 2 * M, 16 * M])
        if end - size > 0x4000000:
            case.initrd = (end - size, end)
    if case.family == "brk_inside" and src.bool(0.5):
        case.brk_base = None
    elif src.bool(0.1) and ram_top_low > 0x8000000:
        # a relocated kernel (KASLR-ish): BRK elsewhere in low RAM
        ks = src.int(0x1000000 // (2 * M), (ram_top_low - 0x4000000) // (2 * M)) * 2 * M
        case.kernel_start = ks


def ram_ranges(case: Case) -> List[Tuple[int, int]]:
    """RAM of the case after the kernel's sanitising (overlaps go to the larger type), merged."""
    t = case.table().sanitize()
    out: List[List[int]] = []
    for e in sorted(t.entries, key=lambda e: e.addr):
        if e.type != E820_RAM or e.size <= 0:
            continue
        if out and e.addr <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e.addr + e.size)
        else:
            out.append([e.addr, e.addr + e.size])
    return [(a, b) for a, b in out]


def brk_offset(case: Case) -> int:
    """The BRK buffer's default offset from the kernel start (setup_arch's defaults: 64-bit
    0x1FE0000, i386 0xB88000)."""
    return 0xB88000 if case.mode.startswith("i386") else 0x1FE0000


def kernel_in_ram(case: Case) -> bool:
    """Is the kernel image's start and the BRK page-table buffer in RAM, as a boot loader
    guarantees?  (Cases where it is not are not boots a kernel could do.)"""
    ram = ram_ranges(case)
    ks = case.kernel_start
    brk = case.brk_base if case.brk_base is not None else ks + brk_offset(case)

    def fits(lo: int, hi: int) -> bool:
        return any(a <= lo and hi <= b for a, b in ram)
    return fits(ks, ks + 0x200000) and fits(brk, brk + 0x10000)


IMAGE_SPAN = 0x1FE0000 + 0x20000 + 0x100000   # _text .. BRK buffer .. BRK tail (setup_arch's defaults)


def _place_kernel(case: Case) -> None:
    """Put the kernel image where a boot loader could: inside RAM.  The default
    (16 MiB, BRK 32 MiB above) when it fits; else the lowest RAM range that holds
    it (2 MiB aligned); else, for tiny maps, a compact image at 1 MiB with the BRK
    buffer a few MiB above it."""
    merged = [list(r) for r in ram_ranges(case)]

    def fits(lo: int, hi: int) -> bool:
        return any(a <= lo and hi <= b for a, b in merged)

    if kernel_in_ram(case):
        return
    ks = case.kernel_start
    brk = case.brk_base if case.brk_base is not None else ks + brk_offset(case)
    if fits(ks, ks + 0x200000) and fits(brk, brk + 0x20000):
        return
    for a, b in merged:
        s = max(0x1000000, -(-a // (2 * M)) * 2 * M)
        if s + IMAGE_SPAN <= b:
            case.kernel_start, case.brk_base = s, None
            return
    if case.mode.startswith("i386"):
        return   # head_32's tables and the static pages need a real image: no compact layout
    for a, b in merged:
        s = max(0x100000, -(-a // (2 * M)) * 2 * M)
        if s + 0x600000 <= b:
            case.kernel_start = s
            case.brk_base = s + min(0x1000000, (b - s - 0x200000) // PAGE * PAGE - 0x20000) // (2 * M) * (2 * M) \
                or s + 0x400000
            if not fits(case.brk_base, case.brk_base + 0x20000):
                case.brk_base = s + 0x400000
            return


def generate(rng: random.Random, family: Optional[str] = None, max_ram: int = 64 * G,
             families: Optional[Sequence[str]] = None, modes: Optional[Sequence[str]] = None,
             bottom_up: bool = True) -> Case:
    """A random case from ``rng`` (reproducible: same rng state, same case).  ``modes``: the
    paging modes to draw from (default: 4-level x86-64 only); ``bottom_up``: whether
    ``movable_node`` may be drawn."""
    return _build(RandomSource(rng), family, max_ram, families, modes, bottom_up)


def _pick_mode(src, modes: Optional[Sequence[str]]) -> str:
    if not modes:
        return "x86_64"
    ms = list(modes)
    if len(ms) == 1:
        return ms[0]
    total = sum(MODE_WEIGHTS.get(m, 1) for m in ms)
    x = src.int(0, total - 1)
    for m in ms:
        x -= MODE_WEIGHTS.get(m, 1)
        if x < 0:
            return m
    return ms[-1]


def _build(src, family: Optional[str], max_ram: int, families: Optional[Sequence[str]],
           modes: Optional[Sequence[str]] = None, bottom_up: bool = True) -> Case:
    mode = _pick_mode(src, modes)
    if modes:
        fams = families_for(mode, families)
    else:
        fams = list(families) if families else REALISTIC + ADVERSARIAL
    fam = family or src.choice(fams)
    mode_ram = min(max_ram, MODE_MAX_RAM[mode]) if mode.startswith("i386") else max_ram
    if mode == "la57":
        mode_ram = max(max_ram, 64 * T)   # 5-level maps go beyond the 4-level limit
    e820 = [(int(a), int(s), int(t)) for a, s, t in FAMILIES[fam](src, mode_ram) if s > 0 and a >= 0]
    case = Case(e820, family=fam, mode=mode)
    _params(src, case, max_ram)
    if modes:
        _mode_params(src, case, bottom_up)
    _finish(case)
    return case


def _finish(case: Case) -> None:
    """Bounds every case keeps: at most ~32 MiB of page tables (4K-only: 8 GiB of RAM;
    2M pages: 8 TiB); the kernel image and its BRK buffer in RAM (and, on i386, in lowmem)."""
    cap = None
    if case.debug_pagealloc or not case.pse:
        cap = 8 * G          # 4K-only tables cost 1 page per 2 MiB
    elif not case.gbpages and not case.mode.startswith("i386"):
        cap = 8 * T          # 2M leaves cost 1 page per GiB
    elif case.mode == "la57" and case.family != "beyond_64t":
        cap = 64 * T         # 1G leaves: sparse RAM over the PML5 regions, not PiBs of it
    if cap is not None:
        # keep at most ``cap`` of RAM (lowest first; small ranges high up stay, so high
        # addresses remain reachable)
        keep, ram = [], 0
        for a, s, t in sorted(case.e820):
            if t == E820_RAM:
                if ram + s > cap:
                    continue
                ram += s
            keep.append((a, s, t))
        case.e820 = keep
    if case.mode.startswith("i386") and not _kernel_in_lowmem(case):
        # the kernel lives in lowmem: a relocation or a MAXMEM that would put it above is undone
        case.kernel_start, case.brk_base = 0x1000000, None
        if case.lowmem_limit is not None and 0x1000000 + brk_offset(case) + 0x400000 > case.lowmem_limit:
            case.lowmem_limit = None
        case.highmem = None
    _place_kernel(case)
    if case.mode.startswith("i386") and not _kernel_in_lowmem(case):
        case.kernel_start, case.brk_base = 0x1000000, None   # no place in lowmem: rejected as not in RAM


#: the lowest lowmem end (MAXMEM) an i386 profile assumes without --config: 879 MiB, the
#: non-PAE 4.19+ typical build (VMALLOC_END 0xfeffe000 - PAGE_OFFSET - 128 MiB, see
#: emu.kernel.arch.x86.mm.init_32).  A kernel image and BRK below it are in lowmem for every
#: profile; above it a bottom-up boot maps past max_low_pfn up to the image's end (a layout
#: no i386 kernel runs from: its own image would be outside the direct map).
LOWMEM_FLOOR_32 = 0x36FFE000


def _kernel_in_lowmem(case: Case) -> bool:
    low = case.lowmem_limit if case.lowmem_limit is not None else LOWMEM_FLOOR_32
    if case.highmem is not None:
        top = max((a + s for a, s, t in case.e820 if t == E820_RAM), default=0)
        low = min(low, max(0, top - case.highmem))
    brk = case.brk_base if case.brk_base is not None else case.kernel_start + brk_offset(case)
    return max(case.kernel_start, brk) + 0x400000 <= low


def case_for(seed: int, index: int, family: Optional[str] = None, max_ram: int = 64 * G,
             families: Optional[Sequence[str]] = None, modes: Optional[Sequence[str]] = None,
             bottom_up: bool = True, corpus: Optional[Sequence[Tuple[Case, float]]] = None,
             bias: float = 0.0, force: Optional[Dict[str, object]] = None) -> Case:
    """The ``index``-th case of fuzz run ``seed``.  With a ``corpus`` of ``(case, weight)``
    (maps that reached rare decision points) a share ``bias`` of the cases are mutations
    of a corpus map picked by weight (:func:`mutate`); the rest are fresh maps.  ``force``
    sets Case fields on every map (e.g. ``{"movable_node": True}`` for a bottom-up campaign)."""
    case = _case_for(seed, index, family, max_ram, families, modes, bottom_up, corpus, bias)
    if force:
        for name, value in force.items():
            setattr(case, name, value)
        _finish(case)
    return case


def _case_for(seed, index, family, max_ram, families, modes, bottom_up, corpus, bias) -> Case:
    rng = random.Random(f"emu-fuzz:{seed}:{index}")
    if corpus and bias > 0 and rng.random() < bias:
        total = sum(w for _, w in corpus)
        x = rng.random() * total
        parent = corpus[-1][0]
        for c, w in corpus:
            x -= w
            if x < 0:
                parent = c
                break
        return mutate(rng, parent, max_ram, modes, bottom_up)
    return generate(rng, family, max_ram, families, modes, bottom_up)


_ALIGNS = [PAGE, 2 * M, 4 * M, G, 512 * G, PML5]


def mutate(rng: random.Random, parent: Case, max_ram: int = 64 * G, modes: Optional[Sequence[str]] = None,
           bottom_up: bool = True) -> Case:
    """A neighbour of ``parent``: one to three edits of its entries (a boundary moved by a
    page, a large-page size or to an alignment; an entry split, dropped, retyped; a small
    reserved island at a boundary) or of its parameters (page sizes, PTI, bottom-up, mem=,
    the mode among ``modes``)."""
    src = RandomSource(rng)
    c = Case.from_json(parent.to_json())
    c.family = parent.family if parent.family.endswith("*") else parent.family + "*"
    for _ in range(src.int(1, 3)):
        e = c.e820
        what = src.int(0, 9)
        if what <= 4 and e:
            i = src.int(0, len(e) - 1)
            a, sz, t = e[i]
            if what == 0:                          # move the end
                d = src.choice([PAGE, 2 * M, G, 4 * M, 512 * G]) * src.choice([-1, 1])
                e[i] = (a, max(PAGE, sz + d), t)
            elif what == 1:                        # align the start or end to a boundary
                al = src.choice(_ALIGNS)
                end = a + sz
                if src.bool():
                    a2 = a // al * al
                    e[i] = (a2, end - a2, t)
                else:
                    end2 = -(-end // al) * al
                    e[i] = (a, max(PAGE, end2 - a), t)
            elif what == 2 and sz >= 2 * PAGE:     # split with a hole or another type
                cut = a + src.int(1, sz // PAGE - 1) * PAGE
                gap = src.choice([0, PAGE, 2 * M])
                e[i:i + 1] = [(a, cut - a, t), (cut + gap, max(PAGE, a + sz - cut - gap), src.choice([t, t, 2, 3, 4]))]
            elif what == 3 and len(e) > 1:         # drop it
                del e[i]
            else:                                  # retype it
                e[i] = (a, sz, src.choice([E820_RAM, E820_RESERVED, E820_ACPI, E820_NVS, E820_UNUSABLE]))
        elif what == 5:                            # a small reserved island at a large-page boundary
            ram = [x for x in e if x[2] == E820_RAM]
            if ram:
                a, sz, _ = src.choice(ram)
                al = src.choice([2 * M, 4 * M, G])
                b = -(-(a + sz // 2) // al) * al + src.choice([0, -PAGE, PAGE])
                e.append((b, src.choice([PAGE, 2 * PAGE, 2 * M]), src.choice([E820_RESERVED, E820_ACPI])))
        elif what == 6:                            # page sizes
            flip = src.choice(["gbpages", "pse", "debug_pagealloc", "nx", "pge"])
            setattr(c, flip, not getattr(c, flip))
        elif what == 7:                            # PTI, bottom-up
            if bottom_up and src.bool():
                c.movable_node = not c.movable_node
            else:
                c.pti = not c.pti
        elif what == 8:                            # mem=
            top = max((a + s for a, s, t in e if t == E820_RAM), default=0)
            c.mem_limit = None if c.mem_limit is not None or top < 0x8000000 else \
                src.int(0x6000000 // M, top // M) * M + src.choice([0, PAGE, 2 * M - PAGE])
        elif modes and len(modes) > 1:             # another paging mode, same map
            c.mode = src.choice(list(modes))
    if c.mode.startswith("i386"):
        lim = MODE_MAX_RAM[c.mode]
        c.e820 = [(a, min(s, lim - a), t) for a, s, t in c.e820 if a < lim]
    c.e820 = [(a, s, t) for a, s, t in c.e820 if s > 0 and a >= 0]
    if not any(t == E820_RAM for _, _, t in c.e820):
        c.e820.append((0x100000, 0x4000000, E820_RAM))
    _finish(c)
    return c


# ---------------------------------------------------------------------------
# numpy-seeded maps: the benchmark's fuzz figure (emu bench)
# ---------------------------------------------------------------------------
_PAGE = 4096


def random_e820(rng: np.random.Generator, max_end: int = 64 * G):
    """A seeded random e820 map whose RAM ends at or below ``max_end``.

    Low RAM and the legacy hole as firmware reports them, then a sequence of
    RAM and reserved/ACPI/NVS/unusable chunks with log-uniform sizes (4 KiB to
    a quarter of the map), mostly page aligned, sometimes not, sometimes
    overlapping (sanitising is part of what is exercised)."""
    end = int(2 ** rng.uniform(np.log2(64 * M), np.log2(max_end)))
    end &= ~(_PAGE - 1)
    ents = [E820Entry(0, int(rng.choice([0x9F000, 0x9FC00, 0x8F000, 0x100000 if rng.random() < 0.1 else 0x9E800])), 1)]
    if ents[0].size < 0x100000:
        ents.append(E820Entry(ents[0].size, 0x100000 - ents[0].size, 2))
    # the kernel image and its BRK page-table buffer (16 M + a few M) live in RAM on any real machine
    first = int(2 ** rng.uniform(np.log2(96 * M), np.log2(max(min(end, 3 * G), 97 * M)))) & ~(_PAGE - 1)
    ents.append(E820Entry(0x100000, first - 0x100000, 1))
    addr = first
    nmax = int(rng.integers(3, 40))
    while addr < end and len(ents) < nmax:
        hi = max(np.log2(_PAGE) + 1, np.log2(max(end - addr, 2 * _PAGE)))
        size = int(2 ** rng.uniform(12, hi))
        if rng.random() < 0.85:
            size = max(_PAGE, size & ~(_PAGE - 1))
        size = min(size, end - addr)
        if size <= 0:
            break
        typ = 1 if rng.random() < 0.65 else int(rng.choice([2, 2, 2, 3, 4, 5]))
        start = addr
        if rng.random() < 0.05 and ents:
            start = max(0x100000, addr - int(rng.integers(1, 64)) * _PAGE)  # overlap the previous entry
        ents.append(E820Entry(start, size, typ))
        addr = start + size
        if rng.random() < 0.2:
            addr += int(2 ** rng.uniform(12, 31)) & ~(_PAGE - 1)  # an unreported hole
    # RAM must end at or below max_end
    ents = [e for e in ents if e.addr < max_end]
    ents = [E820Entry(e.addr, min(e.size, max_end - e.addr), e.type) for e in ents]
    return E820Map(ents)


def random_params(rng: np.random.Generator, pagealloc_share: float = 0.05):
    """Random CPU features; ``pagealloc_share`` of the maps are 4 KiB-only (DEBUG__PAGEALLOC),
    whose cost is the bandwidth of writing up to 16 M entries."""
    from emu.kernel.params import BootParams
    from emu.machine.cpu import CpuFeatures
    gb = bool(rng.random() < 0.7)
    p = BootParams(cpu=CpuFeatures(gbpages=gb, nx=bool(rng.random() < 0.9)))
    if rng.random() < pagealloc_share:
        p.debug_pagealloc = True
    return p


# ---------------------------------------------------------------------------
# hypothesis strategies
# ---------------------------------------------------------------------------
def cases(families: Optional[Sequence[str]] = None, max_ram: int = 64 * G):
    """A hypothesis strategy of :class:`Case` (e820 map and boot parameters)."""
    from hypothesis import strategies as st

    @st.composite
    def _cases(draw):
        return _build(DrawSource(draw), None, max_ram, families)
    return _cases()


def e820_maps(families: Optional[Sequence[str]] = None, max_ram: int = 64 * G):
    """A hypothesis strategy of :class:`emu.kernel.arch.x86.kernel.e820.E820Table`."""
    return cases(families, max_ram).map(lambda c: c.table())


__all__ = ["Case", "FAMILIES", "REALISTIC", "ADVERSARIAL", "MODES", "MODE_FAMILIES", "generate", "case_for", "mutate",
           "modes_for", "families_for", "cases", "e820_maps",
           "random_e820", "random_params",
           "RandomSource", "DrawSource"]
