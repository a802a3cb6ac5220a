"""The oracle's layout matrix: RAM sizes, CPU features, memmap holes, 5-level, 1 TiB."""
from __future__ import annotations

from typing import Dict, List

from emu.kernel.arch.x86.kernel.e820 import E820_RAM, E820_RESERVED, E820Table
from emu.tools.oracle.qemu import QemuLayout

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


#: two quick layouts for CI
CI_LAYOUTS = ("512M", "6G-gb")


def by_name() -> Dict[str, QemuLayout]:
    return {lay.name: lay for lay in matrix_layouts()}
