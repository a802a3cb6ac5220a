"""What every command shares: the layout, kernel, CPU and engine options, their value
parsers, and turning them into an emulation's inputs."""
from __future__ import annotations

import argparse
from typing import Optional

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
    art = p.add_argument_group("the kernel's build (each optional; what they fix is not assumed)")
    art.add_argument("--config", metavar="FILE",
                     help="the kernel's .config, /boot/config-* or /proc/config.gz (DEBUG_PAGEALLOC, "
                          "RANDOMIZE_MEMORY, X86_5LEVEL, PAGE_TABLE_ISOLATION, X86_PAE, HIGHMEM, the fixmap)")
    art.add_argument("--system-map", metavar="FILE",
                     help="its System.map or a kallsyms list (init_top_pgt/swapper_pg_dir, the image's "
                          "static tables, __brk_base, _end, __init_end)")
    art.add_argument("--cpu", metavar="DESC",
                     help="the CPU: intel,pse,pge,gbpages,nx,la57 (bare names list every feature), "
                          "amd,-gbpages, or QEMU's qemu64,+pdpe1gb,+la57")
    k = p.add_argument_group("kernel and CPU")
    if profile:
        k.add_argument("--profile", metavar="NAME|VERSION",
                       help="kernel behaviour (emu profiles lists them); default: the log's version, else 6.1")
    gb = k.add_mutually_exclusive_group()
    gb.add_argument("--gbpages", dest="gbpages", action="store_true", default=None,
                    help="the kernel's direct_gbpages on (command line gbpages)")
    gb.add_argument("--no-gbpages", dest="gbpages", action="store_false",
                    help="the kernel's direct_gbpages off (nogbpages); the CPU's: --cpu ...,-gbpages")
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


def artefacts(args: argparse.Namespace):
    """(config, System.map, CPU) of ``--config``, ``--system-map`` and ``--cpu`` (None each
    when not given)."""
    config = sysmap = cpu = None
    if getattr(args, "config", None):
        from emu.inputs.kconfig import load_kconfig
        config = load_kconfig(args.config)
    if getattr(args, "system_map", None):
        from emu.inputs.sysmap import load_system_map
        sysmap = load_system_map(args.system_map)
    if getattr(args, "cpu", None):
        from emu.inputs.cpu import parse_cpu
        cpu = parse_cpu(args.cpu)
    return config, sysmap, cpu


def layout(args: argparse.Namespace):
    """The boot the options describe (:class:`emu.boot.describe.BootDescription`): the
    artefacts (``--dmesg``, ``--e820``, ``--sysfs``) through :func:`emu.boot.describe.describe`,
    then today's flags on top.  Every input nobody gave is in its ``assumptions``."""
    import dataclasses
    from emu.boot.describe import describe, read_log
    from emu.inputs.e820 import load_e820, parse_sysfs_memmap
    from emu.machine.cpu import CpuFeatures

    log = read_log(args.dmesg) if args.dmesg else None
    config, sysmap, cpu = artefacts(args)
    e820, e820_source = None, None
    if args.e820:
        e820, e820_source = load_e820(args.e820), args.e820
    elif args.sysfs:
        e820, e820_source = parse_sysfs_memmap(), "/sys/firmware/memmap"
    over = {}
    if args.gbpages is not None:
        over["gbpages"] = args.gbpages
    for flag, name in (("debug_pagealloc", "debug_pagealloc"), ("pti", "pti"), ("la57", "la57"),
                       ("movable_node", "movable_node")):
        if getattr(args, flag):
            over[name] = True
    if args.no_randomize_memory:
        over["randomize_memory"] = False
    for flag, name in (("brk", "brk_base"), ("kernel_start", "kernel_start"), ("initrd", "initrd"),
                       ("xen_extra_mem", "xen_extra_mem"), ("mem", "mem_limit")):
        if getattr(args, flag) is not None:
            over[name] = getattr(args, flag)
    for name, value in args.param:
        over[name] = tuple(value) if name in ("kmap_range", "initrd") and isinstance(value, list) else value
    desc = describe(log, e820, e820_source, getattr(args, "profile", None), getattr(args, "arch", None), over,
                    config=config, sysmap=sysmap, cpu=cpu, cpu_source="--cpu " + args.cpu if cpu else "--cpu")
    p = desc.params
    if args.reserve:
        p.reserves = list(p.reserves) + list(args.reserve)
        desc.sources["reserves"] = "--reserve"
    if args.memmap:
        p.memmap = list(p.memmap) + list(args.memmap)
        desc.sources["memmap"] = "--memmap"
    if args.no_pse or args.no_pge or args.no_nx or args.la57:
        cpu = p.cpu or CpuFeatures()
        p.cpu = dataclasses.replace(cpu, pse=cpu.pse and not args.no_pse, pge=cpu.pge and not args.no_pge,
                                    nx=cpu.nx and not args.no_nx, la57=cpu.la57 or args.la57)
        desc.sources["cpu"] = desc.sources.get("cpu", "defaults") + " and the --no-pse/--no-pge/--no-nx/--la57 flags"
    return desc


def engine_of(args: argparse.Namespace) -> Optional[str]:
    """The engine this command's emulation runs on: ``python`` with ``--pure``, else the
    default (compiled, unless ``EMU_PURE=1``)."""
    return "python" if getattr(args, "pure", False) else None


def say_assumptions(result) -> None:
    """One stderr line per input nobody gave (``--json`` has them under ``assumptions``)."""
    import sys
    for a in getattr(result, "assumptions", ()):
        print(f"emu: {a.text()}", file=sys.stderr)
