"""``emu oracle``: check emu against a real kernel booted under QEMU."""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import List

EXAMPLES = """examples:
  emu oracle fetch                             Debian's newest 6.1 amd64 kernel + kallsyms (cached)
  emu oracle run --mem 512M                    boot it with 512 MiB, compare with the kernel's own profile
  emu oracle run --mem 6G --cpu qemu64,+pdpe1gb --json
  emu oracle run --e820 map.json --cpu qemu64,+la57      your e820 as memmap=exactmap
  emu oracle run --kernel arch/x86/boot/bzImage --symbols System.map --mem 2G   your own build
  emu oracle matrix                            the whole layout matrix, one line per layout
  emu oracle matrix --only 512M,6G-gb          a subset
"""


def _size(text: str) -> int:
    from emu.kernel.arch.x86.kernel.setup import SetupError, parse_memparse
    try:
        return parse_memparse(text)
    except SetupError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def register(sub) -> None:
    p = sub.add_parser("oracle", help="compare emu with a real kernel booted under QEMU",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    osub = p.add_subparsers(dest="oracle_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    f = osub.add_parser("fetch", help="download Debian's 6.1 kernel and extract its symbols (cached)")
    f.add_argument("--flavour", default="amd64", choices=["amd64", "686-pae", "686"])
    f.add_argument("--package", help="an exact package name (default: the newest 6.1.0-N)")
    f.add_argument("--refresh", action="store_true", help="look for a newer package")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=_guarded(cmd_fetch))

    r = osub.add_parser("run", help="boot one layout and compare it with emu",
                        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _kernel_options(r)
    g = r.add_mutually_exclusive_group()
    g.add_argument("--e820", metavar="FILE", help="e820 map (JSON or BIOS-e820 lines), passed as memmap=exactmap")
    g.add_argument("--mem", type=_size, metavar="SIZE", help="QEMU RAM (-m); the firmware's e820 (default 512M)")
    r.add_argument("--cpu", default="qemu64", metavar="QEMU_CPU",
                   help="QEMU -cpu (e.g. qemu64,+pdpe1gb,+la57,-pse); default qemu64")
    r.add_argument("--append", default="", metavar="ARGS", help="extra kernel command-line arguments")
    r.add_argument("--serial", metavar="FILE", help="keep the kernel's console output here")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=_guarded(cmd_run))

    m = osub.add_parser("matrix", help="run the layout matrix; one line per layout")
    _kernel_options(m)
    m.add_argument("--only", metavar="NAMES", help="comma-separated layout names")
    m.add_argument("--list", action="store_true", help="list the layouts and exit")
    m.add_argument("--json", action="store_true")
    m.add_argument("-v", "--verbose", action="store_true", help="print each layout's differences")
    m.set_defaults(func=_guarded(cmd_matrix))


def _guarded(fn):
    """Oracle failures (no QEMU, boot timeout, unreadable guest): one line, exit 2."""
    import functools

    @functools.wraps(fn)
    def run(args):
        from emu.tools.oracle.qemu import OracleError
        from emu.tools.oracle.symbols import SymbolError
        try:
            return fn(args)
        except (OracleError, SymbolError) as e:
            msg = e.args[0] if isinstance(e, SymbolError) and e.args else str(e)
            print(f"emu: error: {msg}", file=sys.stderr)
            return 2
    return run


def _kernel_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kernel", metavar="BZIMAGE", help="kernel image (default: the fetched Debian 6.1)")
    p.add_argument("--symbols", metavar="FILE", help="System.map of --kernel (default: its kallsyms)")
    p.add_argument("--config", metavar="FILE",
                   help="the .config of --kernel (i386: its fixmap layout; default: the fetched kernel's)")
    p.add_argument("--flavour", default="amd64", choices=["amd64", "686-pae", "686"],
                   help="which fetched Debian kernel (default amd64; i386: 686-pae, 686)")
    p.add_argument("--profile", default="auto", metavar="NAME|VERSION",
                   help="emu profile (default: the booted kernel's version, e.g. 6.1.192, which carries 631ca8909fd5 from 6.1.141)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a profile field for this comparison (repeatable), e.g. "
                        "real_end_check_return=True")
    p.add_argument("--inputs", choices=["kernel", "log"], default="kernel",
                   help="e820 for emu: the kernel's own table at init_mem_mapping (default), or the "
                        "console log's e820 lines and edits as 'emu replay' reads them")
    p.add_argument("--strict", action="store_true",
                   help="count entries that differ only in ACCESSED/DIRTY bits set by the MMU")
    p.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                   help="per boot: give up (and kill QEMU) after this long (default 600)")


def _kernel(args):
    from emu.tools.oracle.fetch import cached, fetch, write_symbols, cache_dir
    from emu.tools.oracle.symbols import Symbols
    import hashlib
    import os
    if args.kernel:
        sym = args.symbols
        if not sym:
            h = hashlib.sha256(open(args.kernel, "rb").read()).hexdigest()[:16]
            sym = os.path.join(cache_dir(), f"kallsyms-{h}.map")
            if not os.path.exists(sym):
                write_symbols(args.kernel, sym)
        return args.kernel, Symbols.load(sym), getattr(args, "config", None)
    ki = cached(args.flavour) or fetch(args.flavour)
    return ki.bzimage, Symbols.load(args.symbols or ki.symbols), getattr(args, "config", None) or ki.config


def _overrides(args) -> dict:
    import ast
    out = {}
    for item in args.overrides:
        if "=" not in item:
            raise ValueError(f"--set needs FIELD=VALUE, not {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = ast.literal_eval(v.strip())
        except (ValueError, SyntaxError):
            out[k.strip()] = v.strip()
    if out:
        from emu.tools.oracle.compare import resolve_profile
        resolve_profile("6.1" if args.profile == "auto" else args.profile, out)  # fail early on a bad field
    return out


def cmd_fetch(args) -> int:
    from emu.tools.oracle.fetch import fetch
    ki = fetch(args.flavour, args.package, args.refresh)
    if args.json:
        print(json.dumps(ki.to_json(), indent=1))
    else:
        print(f"{ki.flavour}: {ki.version}\n  image   {ki.bzimage}\n  symbols {ki.symbols}")
    return 0


def cmd_run(args) -> int:
    from emu.inputs.e820 import load_e820
    from emu.kernel.arch.x86.kernel.e820 import E820Table
    from emu.tools.oracle.compare import compare, format_comparison
    from emu.tools.oracle.qemu import QemuLayout, run_guest
    bz, syms, config = _kernel(args)
    if args.e820:
        lay = QemuLayout(args.e820, e820=E820Table(load_e820(args.e820)).sanitize(), cpu=args.cpu, append=args.append)
    else:
        mem = args.mem or (512 << 20)
        lay = QemuLayout(f"{mem >> 20}M", mem=mem, cpu=args.cpu, append=args.append)
    g = run_guest(lay, bz, syms, timeout=args.timeout, keep_serial=args.serial, config=config)
    c = compare(g, args.profile, _overrides(args), args.inputs, args.strict)
    if args.json:
        print(json.dumps(c.to_json(), indent=1))
    else:
        print("\n".join(format_comparison(c)))
    return 0 if c.identical else 1


def run_matrix(layouts, bz, syms, profile: str, timeout: float, progress=None, overrides=None,
               inputs: str = "kernel", strict: bool = False, config=None) -> List[dict]:
    from emu.tools.oracle.compare import compare
    from emu.tools.oracle.qemu import OracleError, run_guest
    rows = []
    for lay in layouts:
        t0 = time.monotonic()
        try:
            g = run_guest(lay, bz, syms, timeout=timeout, config=config)
            c = compare(g, profile, overrides, inputs, strict)
            row = {"layout": lay.name, "cpu": lay.cpu, "boot_seconds": round(c.boot_seconds, 1),
                   "emu_seconds": round(c.emu_seconds, 3), "identical": c.identical,
                   "differences": c.differences, "notes": c.notes,
                   "real": c.stats.get("real"), "params": c.params}
        except OracleError as e:
            row = {"layout": lay.name, "cpu": lay.cpu, "boot_seconds": round(time.monotonic() - t0, 1),
                   "emu_seconds": None, "identical": None, "error": str(e)}
        rows.append(row)
        if progress:
            progress(row)
    return rows


def _row_line(row: dict) -> str:
    ident = {True: "yes", False: "NO", None: "error"}[row["identical"]]
    emu_s = "-" if row["emu_seconds"] is None else f"{row['emu_seconds']:.3f}"
    extra = ""
    if row.get("error"):
        extra = "  " + row["error"]
    elif row["identical"] is False:
        extra = f"  {len(row['differences'])} difference(s)"
    elif row.get("real"):
        mb = row["real"]["mapped_bytes"]
        extra = "  " + " ".join(f"{k}:{v >> 20}M" for k, v in mb.items() if v)
    return f"{row['layout']:<20} {row['boot_seconds']:>8.1f} {emu_s:>9} {ident:>9}{extra}"


def cmd_matrix(args) -> int:
    from emu.tools.oracle.layouts import matrix_layouts, matrix_layouts_i386
    lays = matrix_layouts() if args.flavour == "amd64" else matrix_layouts_i386(args.flavour == "686-pae")
    if args.list:
        for lay in lays:
            print(f"{lay.name:<20} -cpu {lay.cpu} -m {lay.qemu_ram() >> 20}M {' '.join(lay.memmap_args())[:60]}"
                  f"{' ' + lay.append[:40] if lay.append else ''}")
        return 0
    if args.only:
        want = [n.strip() for n in args.only.split(",") if n.strip()]
        names = {lay.name: lay for lay in lays}
        unknown = [n for n in want if n not in names]
        if unknown:
            print(f"emu: error: unknown layout(s): {', '.join(unknown)}", file=sys.stderr)
            return 2
        lays = [names[n] for n in want]
    _overrides(args)
    bz, syms, config = _kernel(args)
    if not args.json:
        print(f"{'layout':<20} {'boot s':>8} {'emu s':>9} {'identical':>9}")

    def show(row):
        if not args.json:
            print(_row_line(row), flush=True)
            if args.verbose:
                for d in row.get("differences", [])[:20]:
                    print(f"    {d}")

    rows = run_matrix(lays, bz, syms, args.profile, args.timeout, progress=show, overrides=_overrides(args),
                      inputs=args.inputs, strict=args.strict, config=config)
    ok = all(r["identical"] for r in rows)
    if args.json:
        print(json.dumps({"kernel": bz, "rows": rows, "identical": ok}, indent=1))
    else:
        print(f"{sum(1 for r in rows if r['identical'])} of {len(rows)} identical")
    return 0 if ok else 1
