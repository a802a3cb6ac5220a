"""What every command shares: the layout, kernel, CPU and engine options, their value
parsers, and turning them into an emulation's inputs."""
from __future__ import annotations

import argparse
from typing import Optional, Tuple

class CliError(Exception):
    """A usage or input problem: one line, exit code 2."""


def _int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _size(text: str) -> int:
    from emu.kernel.arch.x86.kernel.setup import SetupError, parse_memparse
    try:
        return parse_memparse(text)
    except SetupError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _range(text: str) -> Tuple[int, int]:
    """START-END (END exclusive) or START+SIZE."""
    try:
        if "+" in text:
            a, b = text.split("+", 1)
            s = int(a, 0)
            return s, s + _size(b)
        a, b = text.split("-", 1)
        s, e = int(a, 0), int(b, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a range START-END or START+SIZE: {text!r}") from None
    if e <= s:
        raise argparse.ArgumentTypeError(f"empty or inverted range: {text!r}")
    return s, e


def _param(text: str) -> Tuple[str, object]:
    """NAME=VALUE for a BootParams field: an int, a comma list of ints, true/false, or none."""
    from emu.kernel.params import BootParams
    name, sep, value = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or name not in BootParams.__dataclass_fields__:
        known = ", ".join(sorted(BootParams.__dataclass_fields__))
        raise argparse.ArgumentTypeError(f"not NAME=VALUE with a boot parameter name: {text!r} (names: {known})")
    v = value.strip()
    try:
        if v.lower() in ("true", "false"):
            return name, v.lower() == "true"
        if v.lower() == "none":
            return name, None
        if "," in v:
            return name, [int(x, 0) for x in v.split(",") if x]
        return name, int(v, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad value for {name}: {value!r}") from None


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
    m.add_argument("--brk", type=_int, metavar="ADDR", help="physical address of the BRK page-table buffer")
    m.add_argument("--kernel-start", type=_int, metavar="ADDR", help="physical start of the kernel (default 0x1000000)")
    m.add_argument("--initrd", type=_range, metavar="START-END", help="initrd location (reserved)")
    m.add_argument("--reserve", type=_range, action="append", default=[], metavar="START-END",
                   help="extra memblock reservation (repeatable)")
    m.add_argument("--xen-extra-mem", type=_size, metavar="SIZE",
                   help="Xen PV domU: extra memory above nr_pages, reserved by xen_add_extra_mem (xend: 8M)")
    m.add_argument("--mem", type=_size, metavar="SIZE", help="mem= limit")
    m.add_argument("--memmap", action="append", default=[], metavar="SPEC", help="memmap= option (repeatable)")
    m.add_argument("--param", type=_param, action="append", default=[], metavar="NAME=VALUE",
                   help="set any boot parameter emu models (e.g. lowmem_limit=0x37bfe000; repeatable)")
    o = p.add_argument_group("engine")
    o.add_argument("--pure", action="store_true", help="use the pure-Python reference loops (EMU_PURE=1)")
    o.add_argument("--max-memory", type=_size, metavar="SIZE",
                   help="refuse layouts whose page tables would need more (default: half of available RAM)")


def layout(args: argparse.Namespace):
    """The boot the options describe (:class:`emu.boot.describe.BootDescription`): the
    artefacts (``--dmesg``, ``--e820``, ``--sysfs``) through :func:`emu.boot.describe.describe`,
    then today's flags on top.  Every input nobody gave is in its ``assumptions``."""
    import dataclasses
    from emu.boot.describe import describe, read_log
    from emu.inputs.e820 import load_e820, parse_sysfs_memmap
    from emu.machine.cpu import CpuFeatures

    log = read_log(args.dmesg) if args.dmesg else None
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
