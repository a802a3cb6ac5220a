"""The oracle's layout matrix: RAM sizes, CPU features, memmap holes, 5-level, 1 TiB."""
from __future__ import annotations

from typing import Dict, List

from emu.kernel.arch.x86.kernel.e820 import E820_RAM, E820_RESERVED, E820Table
from emu.tools.oracle.qemu import PC_LOWMEM as PC_LOW, PC_LOWMEM_SPLIT as PC_SPLIT, QemuLayout

M = 1 << 20
G = 1 << 30
CPU = "qemu64"
GB = "qemu64,+pdpe1gb"
#: 1 TiB and more need physical-address bits beyond TCG's default 40
BIG = "qemu64,+pdpe1gb,phys-bits=48"


def _odd_holes() -> E820Table:
    """Low RAM with reserved holes at odd (4 KiB, not 2 MiB) boundaries."""
    return E820Table([
        (0, 0x9F000, E820_RAM),
        (0x100000, 0x7FE3000 - 0x100000, E820_RAM),
        (0x7FE3000, 0x8011000 - 0x7FE3000, E820_RESERVED),
        (0x8011000, 0x1234D000 - 0x8011000, E820_RAM),
        (0x1234D000, 0x12400000 - 0x1234D000, E820_RESERVED),
        (0x12400000, 0x3FF7B000 - 0x12400000, E820_RAM),
        (0x3FF7B000, 0x40005000 - 0x3FF7B000, E820_RESERVED),
        (0x40005000, 0x7FFDF000 - 0x40005000, E820_RAM),
    ])


def _high_holes() -> E820Table:
    """RAM above 4 GiB with holes that break 1G and 2M pages."""
    return E820Table([
        (0, 0x9F000, E820_RAM),
        (0x100000, 0xBFFDF000 - 0x100000, E820_RAM),
        (0xBFFDF000, 0xC0000000 - 0xBFFDF000, E820_RESERVED),
        (0x100000000, 0x140003000 - 0x100000000, E820_RAM),
        (0x140003000, 0x140205000 - 0x140003000, E820_RESERVED),
        (0x140205000, 0x1C0000000 - 0x140205000, E820_RAM),
        (0x1C0000000, 0x1C0001000 - 0x1C0000000, E820_RESERVED),
        (0x1C0001000, 0x23FE01000 - 0x1C0001000, E820_RAM),
    ])


def _low_reserved_16g() -> E820Table:
    """16 GiB of RAM (3 GiB below 4 GiB, as QEMU backs it) whose first 0x4a0000 bytes are
    reserved: with ``movable_node`` and no GB pages, the second bottom-up pass of 5.11+ takes
    page 0x4a0000 for a page table before any call mapped it (docs/findings.md, F8)."""
    return E820Table([
        (0, 0x4A0000, E820_RESERVED),
        (0x4A0000, 3 * G - 0x4A0000, E820_RAM),
        (4 * G, 13 * G, E820_RAM),
    ])


def _four_k_holes(ram: int) -> str:
    """memmap=4K$ADDR in the last page of every 2 MiB block above 1 MiB: no 2M block is
    all memory, so every page is mapped 4k (for CPUs with PSE)."""
    return " ".join(f"memmap=4K${a - 4096:#x}" for a in range(4 * M, ram, 2 * M))


def matrix_layouts() -> List[QemuLayout]:
    return [
        QemuLayout("128M", mem=128 * M, cpu=CPU),
        QemuLayout("512M", mem=512 * M, cpu=CPU),
        QemuLayout("512M-nopse-4k", mem=512 * M, cpu="qemu64,-pse"),
        QemuLayout("512M-nopge", mem=512 * M, cpu="qemu64,-pge"),
        QemuLayout("2G-gb", mem=2 * G, cpu=GB),
        QemuLayout("3G-nogb", mem=3 * G, cpu=CPU),
        QemuLayout("6G-gb", mem=6 * G, cpu=GB),
        QemuLayout("6G-gb-pti", mem=6 * G, cpu="qemu64,vendor=GenuineIntel,+pdpe1gb"),
        QemuLayout("6G-nogbpages-arg", mem=6 * G, cpu=GB, append="nogbpages"),
        QemuLayout("128M-4k-holes", mem=128 * M, cpu=CPU, append=_four_k_holes(128 * M)),
        QemuLayout("2G-odd-holes", e820=_odd_holes(), cpu=GB),
        QemuLayout("9G-high-holes", e820=_high_holes(), cpu=GB),
        QemuLayout("6G-mem=5000M", mem=6 * G, cpu=GB, append="mem=5000M"),
        QemuLayout("512M-initrd", mem=512 * M, cpu=CPU, initrd=48 * M),
        QemuLayout("512M-nopse-4k-initrd", mem=512 * M, cpu="qemu64,-pse", initrd=48 * M),
        QemuLayout("6G-gb-initrd", mem=6 * G, cpu=GB, initrd=96 * M),
        QemuLayout("6G-movable-node", mem=6 * G, cpu=GB, append="movable_node"),
        QemuLayout("3G-movable-node-initrd", mem=3 * G, cpu=CPU, append="movable_node", initrd=64 * M),
        QemuLayout("3G-movable-node-nogb", mem=3 * G, cpu=CPU, append="movable_node"),
        QemuLayout("16G-movable-node-f8", e820=_low_reserved_16g(), cpu=CPU, append="movable_node"),
        QemuLayout("2G-la57", mem=2 * G, cpu="qemu64,+pdpe1gb,+la57"),
        QemuLayout("6G-la57-nogb", mem=6 * G, cpu="qemu64,+la57"),
        QemuLayout("1T-gb", mem=1024 * G, cpu=BIG),
        QemuLayout("1T-2M", mem=1024 * G, cpu="qemu64,phys-bits=48"),
        QemuLayout("1T-la57-gb", mem=1024 * G, cpu="qemu64,+pdpe1gb,+la57,phys-bits=52"),
        QemuLayout("16T-gb", mem=16 * 1024 * G, cpu=BIG),
    ]


def matrix_layouts_i386(pae: bool = True) -> List[QemuLayout]:
    """i386 (Debian 686-pae / 686): lowmem ends near 880 MiB, the rest is highmem."""
    out = [
        QemuLayout("128M", mem=128 * M, cpu=CPU),
        QemuLayout("512M", mem=512 * M, cpu=CPU),
        QemuLayout("512M-nopse-4k", mem=512 * M, cpu="qemu64,-pse"),
        QemuLayout("2G-highmem", mem=2 * G, cpu=CPU),
        QemuLayout("2G-odd-holes", e820=_odd_holes(), cpu=CPU),
        QemuLayout("128M-4k-holes", mem=128 * M, cpu=CPU, append=_four_k_holes(128 * M)),
        QemuLayout("2G-mem=700M", mem=2 * G, cpu=CPU, append="mem=700M"),
    ]
    if pae:
        out.append(QemuLayout("6G-pae-above-4G", mem=6 * G, cpu=CPU))
        out.append(QemuLayout("2G-nx-off", mem=2 * G, cpu="qemu64", append="noexec=off"))
    return out


#: the kernel image of every Debian kernel the oracle boots lies in [16 MiB, KERNEL_TOP) (nokaslr:
#: LOAD_PHYSICAL_ADDR; _end is 0x402c000 on 5.10, 0x4430000 on 6.1, 0x3c30000 on 6.12 amd64):
#: random layouts keep it RAM
KERNEL_BASE, KERNEL_TOP = 0x1000000, 0x4600000


#: random layouts mapped with 4 KiB pages only stop here (3 M entries, ~4 GiB to compare)
MAX_4K_RAM = 12 * G


def random_layout(seed: int, index: int, flavour: str = "amd64") -> QemuLayout:
    """Layout ``index`` of the random matrix ``seed`` (``emu oracle matrix --random N --seed S``):
    an e820 of RAM with holes and ACPI/NVS/reserved ranges at 4 KiB, 64 KiB, 2 MiB and 1 GiB
    granularity up to 128 MiB .. 100 GiB (i386: up to 12 GiB with PAE, 3 GiB without), a CPU
    with or without PSE, PGE, GB pages and 5-level paging, and on the command line maybe
    ``movable_node``, ``nogbpages``, ``mem=``, ``highmem=`` (i386), ``pti=on``/``nopti``,
    ``noexec=off``, ``debug_pagealloc=on``, ``no5lvl``, with maybe an initrd.
    The same (seed, index, flavour) gives the same layout, whatever N; every layout keeps the
    kernel image RAM, has at least two e820 entries (one would be the kernel's own "Invalid
    user supplied memory map" panic, before init_mem_mapping) and only RAM QEMU can back."""
    import random
    i386 = flavour.startswith("686")
    rng = random.Random(f"emu-oracle-random/{seed}/{index}/{'i386' if i386 else 'x86_64'}")
    if i386:
        tops = [128 * M, 256 * M, 700 * M, 880 * M, 900 * M, 1 * G, 2 * G, 3 * G]
        tops += [6 * G, 12 * G] if flavour == "686-pae" else []
    else:
        tops = [256 * M, 512 * M, 1 * G, 3 * G, 3 * G + 256 * M, 6 * G, 12 * G, 40 * G, 100 * G]
    top = rng.choice(tops)
    ents: List[tuple] = [(0, 0x9F000, E820_RAM)]
    cur = 0x100000
    while cur < top:
        gran = rng.choice([0x1000, 0x1000, 0x10000, 0x200000, 0x200000, 0x40000000])
        ln = max(gran, int(rng.expovariate(6 / top)) // gran * gran)
        end = min(top, cur + ln)
        typ = E820_RAM if rng.random() < 0.7 else rng.choice([E820_RESERVED, E820_RESERVED, 3, 4])
        if cur < KERNEL_TOP and end > KERNEL_BASE:
            typ = E820_RAM
        ents.append((cur, end - cur, typ))
        cur = end
        if rng.random() < 0.2:
            gap = rng.choice([0x1000, 0x200000, 0x1000000, 0x40000000])
            if not (cur < KERNEL_TOP and cur + gap > KERNEL_BASE):
                cur += gap
    # QEMU backs [0, 3 GiB) below 4 GiB once it has 3.5 GiB, nothing in [3.5 GiB, 4 GiB):
    # keep RAM out of what it cannot back
    if max(a + n for a, n, t in ents if t == E820_RAM) >= PC_SPLIT:
        fixed = []
        for a, n, t in ents:
            e = a + n
            if t == E820_RAM and a < 1 << 32 and e > PC_LOW:
                for lo, hi, tt in ((a, min(e, PC_LOW), t), (max(a, PC_LOW), min(e, 1 << 32), E820_RESERVED),
                                   (max(a, 1 << 32), e, t)):
                    if hi > lo:
                        fixed.append((lo, hi - lo, tt))
            else:
                fixed.append((a, n, t))
        ents = fixed
    if i386:
        cpu = "qemu64" + rng.choice(["", "", ",-pse", ",-pge"])
    else:
        cpu = "qemu64" + rng.choice(["", ",+pdpe1gb", ",+pdpe1gb", ",-pse", ",-pge", ",+pdpe1gb,+la57"])
        if top > 1 << 40:
            cpu += ",phys-bits=48"
    app = []
    if not i386 and rng.random() < 0.25:
        app.append("movable_node")
    if not i386 and rng.random() < 0.1:
        app.append("nogbpages")
    if i386 and rng.random() < 0.2:
        app.append(f"highmem={rng.randrange(0, 512)}M")
    if rng.random() < 0.1:
        app.append(f"mem={rng.randrange(128, max(129, top >> 20))}M")
    initrd = rng.choice([0, 0, 0, 16 * M, 48 * M])
    # the options that change the tables' bits and page sizes
    if rng.random() < 0.1:
        app.append(rng.choice(["pti=on", "nopti"]) if not i386 else "nopti")
    if rng.random() < 0.05:
        app.append("noexec=off")
    if rng.random() < 0.05:
        app.append("debug_pagealloc=on")
    if "+la57" in cpu and rng.random() < 0.3:
        app.append("no5lvl")
    if "-pse" in cpu:
        # 4 KiB pages only: keep the two trees a comparison holds within a few GiB
        ents = [(a, min(n, MAX_4K_RAM - a), t) for a, n, t in ents if a < MAX_4K_RAM]
    lay = QemuLayout(f"rand{seed}-{index}", e820=E820Table(ents), cpu=cpu, append=" ".join(app), initrd=initrd)
    lay.qemu_ram()   # (an OracleError here is a bug of this generator)
    return lay


def random_layouts(n: int, seed: int, flavour: str = "amd64") -> List[QemuLayout]:
    """``n`` layouts of :func:`random_layout`."""
    return [random_layout(seed, i, flavour) for i in range(n)]


#: two quick layouts for CI
CI_LAYOUTS = ("512M", "6G-gb")


def by_name() -> Dict[str, QemuLayout]:
    return {lay.name: lay for lay in matrix_layouts()}
