"""What every command shares: the layout, kernel, CPU and engine options, their value
parsers, and turning them into an emulation's inputs."""
from __future__ import annotations

import argparse
from typing import Optional, Tuple

from emu.errors import EmuError
from emu.tools import values


class CliError(EmuError):
    """A usage or input problem: one line, exit code 2."""


#: argparse types (the parsers are :mod:`emu.tools.values`)
_int = values.argtype(values.virtual_address, "address")
_addr = values.argtype(values.address, "address")
_size = values.argtype(values.size, "size")
_positive_size = values.argtype(values.positive_size, "size")
_mem = values.argtype(values.mem_limit, "size")
_range = values.argtype(values.phys_range, "range")
_memmap = values.argtype(values.memmap, "memmap")
_param = values.argtype(values.param_assignment, "NAME=VALUE")

#: the BootParams field each layout option sets (messages about a field name the option)
FIELD_OPTIONS = {"kernel_start": "--kernel-start", "brk_base": "--brk", "initrd": "--initrd",
                 "reserves": "--reserve", "xen_extra_mem": "--xen-extra-mem", "mem_limit": "--mem",
                 "memmap": "--memmap"}


def add_layout_options(p: argparse.ArgumentParser, profile: bool = True) -> None:
    src = p.add_argument_group("layout (one of; default: the embedded 16 GiB desktop map)")
    g = src.add_mutually_exclusive_group()
    g.add_argument("--e820", metavar="FILE", help="e820 map: JSON list of {addr,size,type} or BIOS-e820 lines")
    g.add_argument("--dmesg", metavar="FILE", help="a boot log: e820 and its edits, version, BRK, initrd, command line")
    g.add_argument("--sysfs", action="store_true", help="this machine's /sys/firmware/memmap")
    k = p.add_argument_group("kernel and CPU")
    if profile:
        k.add_argument("--profile", metavar="NAME|VERSION",
                       help="kernel behaviour (emu profiles lists them); default: the log's version, else 6.1")
    gb = k.add_mutually_exclusive_group()
    gb.add_argument("--gbpages", dest="gbpages", action="store_true", default=None, help="direct_gbpages on")
    gb.add_argument("--no-gbpages", dest="gbpages", action="store_false", help="nogbpages / no CPU GB pages")
    k.add_argument("--arch", choices=("x86_64", "i386-pae", "i386"),
                   help="paging mode: x86-64, i386 PAE (3-level, 2M pages) or i386 non-PAE (2-level, 4M "
                        "pages); default: the log's, else x86_64")
    k.add_argument("--no-pse", action="store_true", help="CPU without PSE: 4 KiB pages only")
    k.add_argument("--no-pge", action="store_true", help="CPU without PGE: no GLOBAL bit")
    k.add_argument("--no-nx", action="store_true", help="CPU without NX (or noexec=off)")
    k.add_argument("--debug-pagealloc", action="store_true", help="CONFIG_DEBUG_PAGEALLOC: 4 KiB pages only")
    k.add_argument("--pti", action="store_true", help="page-table isolation active (no GLOBAL in PAGE_KERNEL, 4.17+)")
    k.add_argument("--la57", action="store_true", help="5-level paging (profiles 4.20+)")
    k.add_argument("--movable-node", action="store_true", help="memblock bottom-up (3.13+)")
    k.add_argument("--no-randomize-memory", action="store_true", help="CONFIG_RANDOMIZE_MEMORY=n (BRK buffer size)")
    m = p.add_argument_group("memory layout of the boot")
    m.add_argument("--brk", type=_addr, metavar="ADDR", help="physical address of the BRK page-table buffer")
    m.add_argument("--kernel-start", type=_addr, metavar="ADDR", help="physical start of the kernel (default 0x1000000)")
    m.add_argument("--initrd", type=_range, metavar="START-END", help="initrd location (reserved)")
    m.add_argument("--reserve", type=_range, action="append", default=[], metavar="START-END",
                   help="extra memblock reservation (repeatable)")
    m.add_argument("--xen-extra-mem", type=_positive_size, metavar="SIZE",
                   help="Xen PV domU: extra memory above nr_pages, reserved by xen_add_extra_mem (xend: 8M)")
    m.add_argument("--mem", type=_mem, metavar="SIZE", help="mem= limit")
    m.add_argument("--memmap", type=_memmap, action="append", default=[], metavar="SPEC",
                   help="memmap= option: exactmap, SIZE, SIZE@START, SIZE#START, SIZE$START, SIZE!START (repeatable)")
    m.add_argument("--param", type=_param, action="append", default=[], metavar="NAME=VALUE",
                   help="set any boot parameter emu models (e.g. lowmem_limit=0x37bfe000; repeatable)")
    o = p.add_argument_group("engine")
    o.add_argument("--pure", action="store_true", help="use the pure-Python reference loops (EMU_PURE=1)")
    o.add_argument("--max-memory", type=_positive_size, metavar="SIZE",
                   help="refuse layouts whose page tables would need more (default: half of available RAM)")


def layout(args: argparse.Namespace):
    """(e820, log_edits, params, profile) from the layout options."""
    from emu.inputs.e820 import EMBEDDED_DEFAULT, load_e820, parse_sysfs_memmap
    from emu.kernel.state import BootParams
    from emu.machine.cpu import CpuFeatures
    from emu.kernel.profiles import get_profile

    edits = None
    version: Optional[str] = None
    params = BootParams()
    if args.dmesg:
        from emu.boot.describe import layout_from_log, read_log
        log = read_log(args.dmesg)
        e820, edits, params, version = layout_from_log(log)
    elif args.e820:
        e820 = load_e820(args.e820)
    elif args.sysfs:
        e820 = parse_sysfs_memmap()
    else:
        e820 = EMBEDDED_DEFAULT.copy()
    if getattr(args, "arch", None):
        params.arch = "x86_64" if args.arch == "x86_64" else "i386"
        params.pae = args.arch == "i386-pae"
        if params.arch == "i386" and not args.dmesg:
            params.gbpages = False
            params.cpu = CpuFeatures(params.cpu.pse, params.cpu.pge, False, params.cpu.nx and params.pae)
    cpu = params.cpu
    gb = cpu.gbpages if args.gbpages is None else args.gbpages
    params.cpu = CpuFeatures(pse=cpu.pse and not args.no_pse, pge=cpu.pge and not args.no_pge,
                             gbpages=gb, nx=cpu.nx and not args.no_nx, la57=args.la57)
    if args.gbpages is not None:
        params.gbpages = args.gbpages
    params.debug_pagealloc = params.debug_pagealloc or args.debug_pagealloc
    params.pti = args.pti
    params.la57 = args.la57
    params.movable_node = params.movable_node or args.movable_node
    if args.no_randomize_memory:
        params.randomize_memory = False
    if args.brk is not None:
        params.brk_base = args.brk
    if args.kernel_start is not None:
        params.kernel_start = args.kernel_start
    if args.initrd is not None:
        params.initrd = args.initrd
    params.reserves = list(params.reserves) + list(args.reserve)
    if args.xen_extra_mem is not None:
        params.xen_extra_mem = args.xen_extra_mem
    if args.mem is not None:
        params.mem_limit = args.mem
    params.memmap = list(params.memmap) + list(args.memmap)
    for name, value in args.param:
        setattr(params, name, tuple(value) if name in ("kmap_range", "initrd") and isinstance(value, list) else value)
    profile = get_profile(args.profile or version or "6.1")
    if params.la57 and not profile.la57_supported:
        raise CliError(f"profile {profile.name} has no 5-level paging (--la57 needs 4.20+)")
    return e820, edits, params, profile


def engine_of(args: argparse.Namespace) -> Optional[str]:
    """The engine this command's emulation runs on: ``python`` with ``--pure``, else the
    default (compiled, unless ``EMU_PURE=1``)."""
    return "python" if getattr(args, "pure", False) else None
