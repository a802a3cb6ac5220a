"""The ``emu`` command line.

Every subcommand prints kernel-style text by default and one JSON document
with ``--json``.  Bad input ends with one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional, Sequence, Tuple


EXAMPLES_RUN = """examples:
  emu run                                   embedded 16 GiB desktop, newest profile
  emu run --profile 3.13 --debug            show the pr_debug lines too
  emu run --e820 map.json --no-gbpages      your e820 (JSON or BIOS-e820 lines)
  emu run --dmesg boot.log                  everything the boot log tells (version, e820, BRK, initrd)
  emu run --sysfs --json                    this machine's /sys/firmware/memmap, as JSON
"""

EXAMPLES_REPLAY = """examples:
  emu replay boot.log                       PASS/FAIL per log against its page-table lines
  emu replay logs/*.log --json
  emu replay --debug-pagealloc rand.log     kernel built with CONFIG_DEBUG_PAGEALLOC (4k only)
"""

EXAMPLES_TRANSLATE = """examples:
  emu translate 0xffff888000100000           through the default layout's tables (profile 6.1)
  emu translate --profile 3.13 --access w 0xffff880000000000 0xffff880100000000
  emu translate --dmesg boot.log --json 0xffff880040000000
"""


#: modules that add subcommands (``register(subparsers, add_layout_options, layout)``)
PLUGIN_COMMANDS: List[str] = ["emu.tools.bench", "emu.tools.diff", "emu.tools.oracle.cli", "emu.tools.check", "emu.tools.dump", "emu.tools.fuzz"]


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
    from emu.kernel.state import BootParams
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


def _add_layout_options(p: argparse.ArgumentParser, profile: bool = True) -> None:
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


def _layout(args: argparse.Namespace):
    """(e820, log_edits, params, profile) from the layout options."""
    from emu.inputs.e820 import EMBEDDED_DEFAULT, load_e820, parse_sysfs_memmap
    from emu.kernel.state import BootParams
    from emu.machine.cpu import CpuFeatures
    from emu.kernel.profiles import get_profile

    edits = None
    version: Optional[str] = None
    params = BootParams()
    if args.dmesg:
        from emu.tools.replay import layout_from_log, read_log
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


def _engine(args: argparse.Namespace) -> Optional[str]:
    """The engine this command's emulation runs on: ``python`` with ``--pure``, else the
    default (compiled, unless ``EMU_PURE=1``)."""
    return "python" if getattr(args, "pure", False) else None


def _summary(result) -> List[str]:
    k = result.kernel
    pt = result.pgtable_pages
    lv = pt["by_level"]
    src = pt["by_source"]
    levels = ", ".join(f"{name.upper()} {lv[name]}" for name in ("pgd", "p4d", "pud", "pmd", "pte") if name in lv)
    out = [
        "",
        f"--- emu: profile {result.profile}, {result.arch} {k.paging_levels}-level, "
        f"max_pfn {k.max_pfn:#x}, {result.seconds * 1000:.1f} ms ({k.engine.name}) ---",
        f"page-table pages: {pt['total']} ({levels}); from "
        + ", ".join(f"{name} {n}" for name, n in src.items() if n),
    ]
    for key, kb in result.meminfo.items():
        out.append(f"{key + ':':<16}{kb:>12} kB")
    if result.panic:
        out.append(f"result: {result.panic}")
    elif result.verify is not None:
        v = result.verify
        if v.ok:
            out.append(f"verify: OK ({v.checked.get('leaf_runs', 0)} leaf runs, {v.checked.get('walks', 0)} walks, "
                       f"{v.checked.get('table_pages', 0)} table pages checked)")
        else:
            out.append(f"verify: FAILED, {v.violation_count} violation(s)")
            out.extend(f"  {m}" for m in v.violations[:20])
    for w in result.warnings:
        out.append(f"warning: {w}")
    return out


def cmd_run(args: argparse.Namespace) -> int:
    from emu.boot.emulate import emulate
    e820, edits, params, profile = _layout(args)
    result = emulate(e820, profile, params, log_edits=edits, check=not args.no_verify,
                     max_memory=args.max_memory, progress=_progress_bar() if not args.json else None,
                     engine=_engine(args))
    if args.json:
        print(json.dumps(result.to_json(), indent=1))
    else:
        lines = result.debug_log if args.debug else result.log
        print("\n".join(lines + _summary(result)))
    if result.verify is not None and not result.verify.ok:
        return 1
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from emu.tools.replay import replay_file
    results = []
    for path in args.logs:
        over = {n: (tuple(v) if n in ("kmap_range", "initrd") and isinstance(v, list) else v) for n, v in args.param}
        results.append(replay_file(path, profile=args.profile, debug_pagealloc=args.debug_pagealloc,
                                   gbpages=args.gbpages, params_override=over or None,
                                   engine=_engine(args)))
    passed = sum(1 for r in results if r.passed)
    failed = len(results) - passed
    if args.json:
        print(json.dumps({"results": [r.to_json() for r in results], "passed": passed, "failed": failed}, indent=1))
    else:
        for r in results:
            print(r.line())
            if args.verbose and not r.passed:
                print(r.diff_text())
        print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def cmd_profiles(args: argparse.Namespace) -> int:
    from emu.kernel.profiles import PROFILES, profile_table
    if args.json:
        print(json.dumps({n: p.to_json() for n, p in PROFILES.items()}, indent=1))
        return 0
    for name, summary, diff in profile_table():
        print(f"{name:<8} {summary}")
        for field_name, (old, new) in diff.items():
            fmt = (lambda v: hex(v) if isinstance(v, int) and not isinstance(v, bool) and v > 4096 else repr(v))
            print(f"{'':<9}{field_name}: {fmt(old)} -> {fmt(new)}")
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    from emu.boot.emulate import emulate
    from emu.machine.mmu import ACCESS_FETCH, ACCESS_USER, ACCESS_WRITE, MMU, translate
    import numpy as np
    e820, edits, params, profile = _layout(args)
    result = emulate(e820, profile, params, log_edits=edits, check=False, max_memory=args.max_memory,
                     engine=_engine(args))
    if result.panic:
        raise CliError(f"the emulated kernel panicked, no tables to walk: {result.panic}")
    k = result.kernel
    access = 0
    for ch in args.access:
        access |= {"r": 0, "w": ACCESS_WRITE, "x": ACCESS_FETCH, "u": ACCESS_USER}[ch]
    mmu = MMU(cr3=k.pgd_pfn << 12, levels=k.paging_levels, maxphyaddr=52, nxe=params.cpu.nx)
    vas = np.array([v & ((1 << 64) - 1) for v in args.va], dtype=np.uint64)
    t = translate(k.phys, mmu, vas, access, engine=k.engine)
    recs = t.records()
    if args.json:
        print(json.dumps(recs, indent=1))
    else:
        for rec in recs:
            if rec["fault"] is None:
                print(f"{rec['va']:#018x} -> {rec['pa']:#014x}  {rec['size'] >> 10}K  {' '.join(rec['flags'])}")
            elif rec["fault"] == "#GP":
                print(f"{rec['va']:#018x} -> #GP (non-canonical)")
            else:
                print(f"{rec['va']:#018x} -> #PF error code {rec['fault']:#x}")
    return 0


def _progress_bar():
    """A stderr progress callback for long runs (only on a terminal)."""
    if not sys.stderr.isatty():
        return None
    state = {"last": -1}

    def cb(done: int, total: int) -> None:
        pct = int(100 * done / total) if total else 100
        if pct != state["last"]:
            state["last"] = pct
            bar = "#" * (pct // 4)
            sys.stderr.write(f"\r[{bar:<25}] {pct:3d}% mapped")
            if pct >= 100:
                sys.stderr.write("\r" + " " * 40 + "\r")
            sys.stderr.flush()
    return cb


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="emu",
        description="Emulate the Linux x86 kernel's early direct-mapping (page-table) setup, "
                    "bit for bit, for a given e820 map and kernel version.",
        epilog="run 'emu COMMAND --help' for a command's options and examples",
    )
    p.add_argument("--version", action="version", version="emu 0.1.0")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser("run", help="emulate one boot and print the kernel's lines and a summary",
                       epilog=EXAMPLES_RUN, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_layout_options(r)
    r.add_argument("--debug", action="store_true", help="also print pr_debug lines (as dynamic debug would)")
    r.add_argument("--json", action="store_true", help="one JSON object")
    r.add_argument("--no-verify", action="store_true", help="skip the verification walk")
    r.set_defaults(func=cmd_run)

    rp = sub.add_parser("replay", help="emulate boot logs and diff the page-table lines",
                        epilog=EXAMPLES_REPLAY, formatter_class=argparse.RawDescriptionHelpFormatter)
    rp.add_argument("logs", nargs="+", metavar="LOG")
    rp.add_argument("--profile", metavar="NAME|VERSION", help="override the log's version")
    rp.add_argument("--debug-pagealloc", action="store_true", help="the kernel had CONFIG_DEBUG_PAGEALLOC")
    gb = rp.add_mutually_exclusive_group()
    gb.add_argument("--gbpages", dest="gbpages", action="store_true", default=None)
    gb.add_argument("--no-gbpages", dest="gbpages", action="store_false")
    rp.add_argument("--param", type=_param, action="append", default=[], metavar="NAME=VALUE",
                    help="a boot parameter the log does not show (e.g. an i386 kernel's fixmap_bottom=0xffd00000)")
    rp.add_argument("--json", action="store_true")
    rp.add_argument("-v", "--verbose", action="store_true", help="show the diff of failing logs")
    rp.add_argument("--pure", action="store_true", help="use the pure-Python reference loops")
    rp.set_defaults(func=cmd_replay)

    pr = sub.add_parser("profiles", help="list the kernel-version profiles and what differs")
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(func=cmd_profiles)

    t = sub.add_parser("translate", help="walk virtual addresses through the emulated tables",
                       epilog=EXAMPLES_TRANSLATE, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("va", nargs="+", type=_int, metavar="VA")
    t.add_argument("--access", default="r", choices=["r", "w", "x", "u", "uw", "ux", "wu", "xu"],
                   help="access type: r(ead), w(rite), x (fetch), u (user mode); default r")
    _add_layout_options(t)
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_translate)

    # subcommands that live in their own modules: each has register(sub, add_layout_options)
    import importlib
    for mod in PLUGIN_COMMANDS:
        importlib.import_module(mod).register(sub, _add_layout_options, _layout)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        args = parser.parse_args(["run"] + list(argv or []))
    try:
        return args.func(args)
    except BrokenPipeError:  # `emu ... | head`: the reader went away; not an error
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except CliError as e:
        print(f"emu: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, OSError, UnicodeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if isinstance(e, OSError) and e.filename:
            msg = f"{e.filename}: {e.strerror}"
        print(f"emu: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("emu: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
