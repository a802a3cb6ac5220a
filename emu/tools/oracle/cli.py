"""``emu oracle``: check emu against a real kernel booted under QEMU."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Callable, Iterator, List, Optional, Tuple

from emu.tools.values import argtype, positive_seconds

EXAMPLES = """examples:
  emu oracle fetch                             Debian's newest 6.1 amd64 kernel + its symbols (cached)
  emu oracle fetch --release 5.10,6.12 --flavour amd64,686-pae   more kernels (trixie has no i386 ones)
  emu oracle run --mem 512M                    boot it with 512 MiB, compare with the kernel's own profile
  emu oracle run --mem 6G --cpu qemu64,+pdpe1gb --json
  emu oracle run --e820 map.json --cpu qemu64,+la57      your e820 as memmap=exactmap
  emu oracle run --kernel arch/x86/boot/bzImage --symbols System.map --mem 2G   your own build
  emu oracle matrix                            the whole layout matrix, one line per layout
  emu oracle matrix --only 512M,6G-gb          a subset
  emu oracle matrix --release all --flavour amd64,686-pae   one line per (release, flavour, layout)
  emu oracle matrix -j 2                       two boots at once (--scheduler tcp://HOST:8786: a Dask cluster)
  emu oracle matrix --random 100 --seed 3 --release all -j 2   100 random layouts per kernel (--list shows them)
"""


def _size(text: str) -> int:
    from emu.kernel.arch.x86.kernel.setup import SetupError, parse_memparse
    try:
        return parse_memparse(text)
    except SetupError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


#: the largest kernel image --kernel reads (a bzImage is tens of MiB)
MAX_KERNEL_BYTES = 512 << 20


#: at most this many random layouts per kernel (each is a boot of a few seconds)
MAX_RANDOM_LAYOUTS = 100_000


def _int_in(text: str, lo: int, hi: int) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not lo <= v <= hi:
        raise argparse.ArgumentTypeError(f"must be in [{lo}, {hi}], not {text!r}")
    return v


def _random_count(text: str) -> int:
    return _int_in(text, 1, MAX_RANDOM_LAYOUTS)


def _seed(text: str) -> int:
    return _int_in(text, 0, (1 << 63) - 1)


def _qemu_cpu(text: str) -> str:
    """A QEMU ``-cpu`` text emu can describe (``user_cpu``): checked before anything boots."""
    from emu.errors import EmuError
    from emu.tools.oracle.compare import user_cpu
    if not text.strip() or any(c.isspace() for c in text):
        raise EmuError(f"{text!r}: a QEMU -cpu model with options, e.g. qemu64,+pdpe1gb")
    try:
        user_cpu(text)
    except ValueError as e:
        raise EmuError(f"{text!r}: {str(e).splitlines()[0] if str(e) else 'not a CPU description'}") from None
    return text


def _output_file(text: str) -> str:
    """A file the console log can be written to: a non-empty path not naming a directory."""
    import os
    from emu.errors import EmuError
    if not text or text.endswith(os.sep) or os.path.isdir(text):
        raise EmuError(f"{text!r}: a file to write the console log to is needed")
    parent = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(parent):
        raise EmuError(f"{text!r}: its directory {parent} does not exist")
    return text


def register(sub) -> None:
    p = sub.add_parser("oracle", help="compare emu with a real kernel booted under QEMU",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    osub = p.add_subparsers(dest="oracle_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    f = osub.add_parser("fetch", help="download Debian's kernels (5.10, 6.1, 6.12), their config and symbols (cached)",
                        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    f.add_argument("--release", default="6.1", metavar="LIST",
                   help="5.10 (bullseye), 6.1 (bookworm), 6.12 (trixie), a comma-separated list, or all "
                        "(default 6.1)")
    f.add_argument("--flavour", default="amd64", metavar="LIST",
                   help="amd64, cloud-amd64, 686-pae, 686, a comma-separated list, or all (every flavour "
                        "the release builds); default amd64")
    f.add_argument("--package", help="an exact package name (default: the newest the release has)")
    f.add_argument("--refresh", action="store_true", help="update the package lists and look for a newer package")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=_guarded(cmd_fetch))

    r = osub.add_parser("run", help="boot one layout and compare it with emu",
                        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _kernel_options(r)
    g = r.add_mutually_exclusive_group()
    g.add_argument("--e820", metavar="FILE", help="e820 map (JSON or BIOS-e820 lines), passed as memmap=exactmap")
    g.add_argument("--mem", type=_size, metavar="SIZE", help="QEMU RAM (-m); the firmware's e820 (default 512M)")
    r.add_argument("--cpu", default="qemu64", metavar="QEMU_CPU", type=argtype(_qemu_cpu, "QEMU -cpu"),
                   help="QEMU -cpu (e.g. qemu64,+pdpe1gb,+la57,-pse); default qemu64")
    r.add_argument("--append", default="", metavar="ARGS", help="extra kernel command-line arguments")
    r.add_argument("--serial", metavar="FILE", type=argtype(_output_file, "file"), help="keep the kernel's console output here")
    r.add_argument("--save", metavar="DIR",
                   help="save the case for offline comparison: the console log, the .config and System.map "
                        "excerpts the derivation reads, the real tree (emu.tools.oracle.saved)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=_guarded(cmd_run))

    m = osub.add_parser("matrix", help="run the layout matrix; one line per (release, flavour, layout)",
                        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _kernel_options(m, lists=True)
    m.add_argument("--only", metavar="NAMES", help="comma-separated layout names")
    m.add_argument("--random", type=_random_count, metavar="N",
                   help="instead of the matrix: N random layouts per kernel (e820 holes and types at "
                        "4K..1G granularity, CPU features, movable_node, mem=, highmem=, an initrd; "
                        "emu.tools.oracle.layouts.random_layout), the same for the same --seed")
    m.add_argument("--seed", type=_seed, default=0, metavar="S", help="the random layouts' seed (default 0)")
    m.add_argument("--list", action="store_true", help="list the layouts and exit")
    m.add_argument("--save", metavar="DIR",
                   help="save each comparison as an offline case in DIR/RELEASE-FLAVOUR-LAYOUT")
    from emu.tools.fuzz import _jobs, _scheduler
    m.add_argument("--jobs", "-j", type=_jobs, default=1, metavar="J",
                   help="boot J layouts at once, one QEMU per local worker (default 1)")
    m.add_argument("--scheduler", type=_scheduler, metavar="tcp://HOST:PORT",
                   help="boot the layouts on this Dask cluster, one QEMU per worker; the kernel, its "
                        "System.map and .config (the fetch cache) and --save's DIR are paths every worker "
                        "must see")
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
            for line in getattr(e, "details", []):
                print(f"  {line}", file=sys.stderr)
            return 2
    return run


def _kernel_options(p: argparse.ArgumentParser, lists: bool = False) -> None:
    p.add_argument("--kernel", metavar="BZIMAGE", help="kernel image (default: the fetched Debian kernel)")
    p.add_argument("--symbols", metavar="FILE", help="System.map of --kernel (default: its kallsyms)")
    p.add_argument("--config", metavar="FILE",
                   help="the .config of --kernel (i386: its fixmap layout; default: the fetched kernel's)")
    if lists:
        p.add_argument("--release", default="6.1", metavar="LIST",
                       help="Debian kernel release(s): 5.10, 6.1, 6.12, a comma-separated list, or all "
                            "(default 6.1; fetched when not cached)")
        p.add_argument("--flavour", default="amd64", metavar="LIST",
                       help="amd64, cloud-amd64, 686-pae, 686, a comma-separated list, or all (default amd64)")
    else:
        p.add_argument("--release", default="6.1", choices=["5.10", "6.1", "6.12"],
                       help="which Debian kernel (default 6.1: bookworm; 5.10: bullseye; 6.12: trixie)")
        p.add_argument("--flavour", default="amd64", choices=["amd64", "cloud-amd64", "686-pae", "686"],
                       help="which Debian kernel flavour (default amd64; i386: 686-pae, 686)")
    p.add_argument("--profile", default="auto", metavar="NAME|VERSION",
                   help="emu profile (default: the booted kernel's version, e.g. 6.1.192, which carries 631ca8909fd5 "
                        "from 6.1.141)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a profile field for this comparison (repeatable), e.g. "
                        "real_end_check_return=True")
    p.add_argument("--inputs", choices=["artefacts", "kernel", "log"], default="artefacts",
                   help="where emu's inputs come from: artefacts (default): the guest's console log "
                        "(memblock=debug), the kernel's .config and System.map and the CPU as --cpu text, "
                        "through the path of 'emu run --dmesg LOG --config F --system-map F --cpu TEXT'; "
                        "kernel: the kernel's own state at init_mem_mapping (a cross-check); log: as kernel, "
                        "but e820 and its edits from the console log")
    p.add_argument("--strict", action="store_true",
                   help="count entries that differ only in ACCESSED/DIRTY bits set by the MMU")
    p.add_argument("--timeout", type=argtype(positive_seconds, "seconds"), default=600.0, metavar="SECONDS",
                   help="per boot: give up (and kill QEMU) after this long (default 600)")


def _kernel(args, release: Optional[str] = None, flavour: Optional[str] = None):
    """(image, symbols, config, label) of --kernel or of the fetched Debian kernel."""
    from emu.tools.oracle.fetch import cached, fetch, write_symbols, cache_dir
    from emu.tools.oracle.symbols import Symbols
    import hashlib
    import os
    if args.kernel:
        from emu.inputs.files import check_input_path, read_input
        check_input_path(args.kernel, "kernel image", MAX_KERNEL_BYTES)
        sym = args.symbols
        if not sym:
            h = hashlib.sha256(read_input(args.kernel, "kernel image", MAX_KERNEL_BYTES,
                                          binary_ok=True)).hexdigest()[:16]
            sym = os.path.join(cache_dir(), f"kallsyms-{h}.map")
            if not os.path.exists(sym):
                write_symbols(args.kernel, sym)
        return args.kernel, Symbols.load(sym), getattr(args, "config", None), os.path.basename(args.kernel)
    release = release or args.release
    flavour = flavour or args.flavour
    ki = cached(flavour, release) or fetch(flavour, release=release)
    return (ki.bzimage, Symbols.load(args.symbols or ki.symbols), getattr(args, "config", None) or ki.config,
            f"Debian {ki.debian_version} {ki.flavour}")


def _overrides(args) -> dict:
    import ast
    out = {}
    for item in args.overrides:
        if "=" not in item:
            from emu.tools.oracle.qemu import OracleError
            raise OracleError(f"--set needs FIELD=VALUE, not {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = ast.literal_eval(v.strip())
        except (ValueError, SyntaxError):
            out[k.strip()] = v.strip()
    if out:
        from emu.tools.oracle.compare import resolve_profile
        from emu.tools.oracle.qemu import OracleError
        try:
            resolve_profile("6.1" if args.profile == "auto" else args.profile, out)  # fail early on a bad field
        except (ValueError, TypeError) as e:
            raise OracleError(f"--set: {e}") from None
    return out


def cmd_fetch(args) -> int:
    from emu.tools.oracle.fetch import fetch, parse_flavours, parse_releases
    from emu.tools.oracle.qemu import OracleError
    rels = parse_releases(args.release)
    todo = [(r, f) for r in rels for f in parse_flavours(args.flavour, r)]
    if args.package and len(todo) != 1:
        raise OracleError("--package names one package: give one --release and one --flavour")
    out, failed = [], 0
    for rel, fl in todo:
        if fl not in rel.flavours:
            print(f"emu: error: Debian {rel.codename} ({rel.kernel}) builds no {fl} kernel "
                  f"(it builds {', '.join(rel.flavours)})", file=sys.stderr)
            failed += 1
            continue
        try:
            ki = fetch(fl, args.package, args.refresh, release=rel.kernel)
        except OracleError as e:
            if len(todo) == 1:
                raise
            print(f"emu: error: {rel.kernel} {fl}: {e}", file=sys.stderr)
            failed += 1
            continue
        out.append(ki.to_json())
        if not args.json:
            print(f"{ki.release} {ki.flavour}: {ki.package} ({ki.debian_version})\n"
                  f"  image   {ki.bzimage}\n  config  {ki.config}\n  symbols {ki.symbols} ({ki.symbols_from})")
            for n in ki.notes:
                print(f"  note: {n}")
    if args.json:
        from emu.tools.formats import document, dumps
        print(dumps(document("oracle", {"command": "fetch", "kernels": out})))
    return 2 if failed else 0


def cmd_run(args) -> int:
    from emu.inputs.e820 import load_e820
    from emu.kernel.arch.x86.kernel.e820 import E820Table
    from emu.tools.oracle.compare import compare, format_comparison
    from emu.tools.oracle.qemu import QemuLayout, run_guest
    overrides = _overrides(args)          # checked before anything is fetched or booted
    bz, syms, config, label = _kernel(args)
    if args.e820:
        lay = QemuLayout(args.e820, e820=E820Table(load_e820(args.e820)).sanitize(), cpu=args.cpu, append=args.append)
    else:
        mem = args.mem or (512 << 20)
        lay = QemuLayout(f"{mem >> 20}M", mem=mem, cpu=args.cpu, append=args.append)
    g = run_guest(lay, bz, syms, timeout=args.timeout, keep_serial=args.serial, config=config)
    c = compare(g, args.profile, overrides, args.inputs, args.strict)
    base = {} if args.kernel else {"release": args.release, "flavour": args.flavour}
    row = comparison_row(c, lay, base, full=True)
    if args.save:
        row["saved"] = _save(g, c, args.save, base, row)
    if args.json:
        from emu.tools.formats import dumps
        print(dumps(oracle_document("run", [row], [dict(base, kernel=bz, label=label)], args.inputs)))
    else:
        print("\n".join(format_comparison(c)))
        if row.get("saved"):
            print(f"  saved: {row['saved']}")
    return 0 if c.identical else 1


def _save(g, c, directory: str, base: dict, row: dict) -> Optional[str]:
    """Save one comparison's case (emu.tools.oracle.saved); a failure is a note, not an error."""
    from emu.tools.oracle.saved import save_case
    try:
        return save_case(g, c, directory, extra=dict(base))
    except Exception as e:   # noqa: BLE001 -- saving is a by-product: the comparison stands
        row.setdefault("notes", []).append(f"not saved: {e}")
        c.notes.append(f"not saved: {e}")
        return None


def comparison_row(c, lay, extra=None, full: bool = False) -> dict:
    """One comparison as a row of the oracle's JSON document (emu/schemas/oracle.json)."""
    row = dict(extra or {}, layout=lay.name, cpu=lay.cpu, boot_seconds=round(c.boot_seconds, 1),
               emu_seconds=round(c.emu_seconds, 3), identical=c.identical, error=None,
               profile=c.profile, inputs=c.inputs, artefacts=c.artefacts, assumptions=c.assumptions,
               sources=c.sources, differences=c.differences, notes=c.notes, params=c.params,
               real=_hex_summary(c.stats.get("real")), saved=None)
    if full:
        row.update(initial_differences=c.initial_differences,
                   stats={k: (_hex_summary(v) if isinstance(v, dict) else v) for k, v in c.stats.items()},
                   guest=c.guest.to_json() if c.guest is not None else None)
    return row


def _hex_summary(s: Optional[dict]) -> Optional[dict]:
    if not s:
        return s
    s = dict(s)
    if isinstance(s.get("cr3"), int):
        s["cr3"] = f"{s['cr3']:#x}"
    return s


def oracle_document(command: str, rows: List[dict], kernels: List[dict], inputs: str) -> dict:
    """The JSON document of ``emu oracle run|matrix --json`` (schema ``emu.oracle/1``)."""
    from emu.tools.formats import document
    done = [r for r in rows if r.get("identical") is not None]
    return document("oracle", {
        "command": command, "inputs": inputs, "kernels": kernels,
        "identical": bool(rows) and all(r.get("identical") for r in rows),
        "counts": {"rows": len(rows), "identical": sum(1 for r in done if r["identical"]),
                   "different": sum(1 for r in done if not r["identical"]),
                   "errors": len(rows) - len(done),
                   "with_assumptions": sum(1 for r in done if r.get("assumptions"))},
        "comparisons": rows})


def _matrix_task(task: tuple) -> dict:
    """One layout of the matrix (on whichever worker runs it): boot, compare, the row."""
    import os
    from emu.tools.oracle.compare import compare
    from emu.tools.oracle.qemu import OracleError, run_guest
    lay, bz, syms, profile, timeout, overrides, inputs, strict, config, extra, save = task
    t0 = time.monotonic()
    try:
        g = run_guest(lay, bz, syms, timeout=timeout, config=config)
        c = compare(g, profile, overrides, inputs, strict)
        row = comparison_row(c, lay, extra)
        if save:
            name = "-".join(str(x) for x in ((extra or {}).get("release"), (extra or {}).get("flavour"),
                                             lay.name) if x)
            row["saved"] = _save(g, c, os.path.join(save, name), dict(extra or {}), row)
    except OracleError as e:
        row = _error_row(extra, lay.name, lay.cpu, inputs, str(e), round(time.monotonic() - t0, 1),
                         getattr(e, "details", []))
    return row


def _error_row(extra: Optional[dict], layout: str, cpu: str, inputs: str, error: str,
               boot_seconds: float = 0.0, details: Optional[List[str]] = None) -> dict:
    """The row of a layout (or a whole kernel: layout ``(all)``) that gave no comparison."""
    return dict(extra or {}, layout=layout, cpu=cpu, boot_seconds=boot_seconds, emu_seconds=None, identical=None,
                error=error, details=list(details or []), profile=None, inputs=inputs, assumptions=[],
                differences=[], notes=[])


def run_matrix(layouts, bz, syms, profile: str, timeout: float, progress=None, overrides=None,
               inputs: str = "artefacts", strict: bool = False, config=None, extra=None,
               save: Optional[str] = None, runner=None) -> List[dict]:
    """One row per layout, in the order of ``layouts``.  ``runner``
    (:func:`emu.tools.batches.open_runner`): where the boots run, one QEMU per worker (None:
    one after the other, here); ``progress`` sees each row as it finishes."""
    return run_tasks([(lay, bz, syms, profile, timeout, overrides, inputs, strict, config, extra, save)
                      for lay in layouts], progress, runner)


def run_tasks(tasks: List[tuple], progress=None, runner=None) -> List[dict]:
    """:func:`_matrix_task` over ``tasks`` (of any kernels), on ``runner`` or here; the rows in
    the order of ``tasks``."""
    if runner is None:
        rows = []
        for t in tasks:
            rows.append(_matrix_task(t))
            if progress:
                progress(rows[-1])
        return rows
    from emu.tools.batches import map_unordered
    done: dict = {}
    for i, res in map_unordered(runner, _matrix_task, tasks, window=runner.workers):
        lay, extra, inputs = tasks[i][0], tasks[i][9], tasks[i][6]
        if res.ok:
            row = res.value
        else:   # the worker died or raised: the layout's row says so, the matrix goes on
            row = _error_row(extra, lay.name, lay.cpu, inputs, f"worker failed: {res.error}")
        done[i] = row
        if progress:
            progress(row)
    return [done[i] for i in range(len(tasks))]


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
    return (f"{row.get('release', '-'):<7} {row.get('flavour', '-'):<12} {row['layout']:<20} "
            f"{row.get('profile') or '-':<9} {row['boot_seconds']:>8.1f} {emu_s:>9} {ident:>9}{extra}")


def _layouts(flavour: str, only, random: Optional[Tuple[int, int]] = None):
    """The layouts one kernel of the matrix boots: the matrix (``only``: those names), or
    ``random`` = (N, seed) random ones."""
    from emu.tools.oracle.layouts import matrix_layouts, matrix_layouts_i386, random_layouts
    if random is not None:
        return random_layouts(random[0], random[1], flavour)
    lays = matrix_layouts() if flavour in ("amd64", "cloud-amd64") else matrix_layouts_i386(flavour == "686-pae")
    if only:
        names = {lay.name: lay for lay in lays}
        lays = [names[n] for n in only if n in names]
    return lays


def cmd_matrix(args) -> int:
    from emu.tools.oracle.fetch import parse_flavours, parse_releases
    from emu.tools.oracle.layouts import matrix_layouts, matrix_layouts_i386
    from emu.tools.oracle.qemu import OracleError
    rels = parse_releases(args.release)
    todo = [(r, f) for r in rels for f in parse_flavours(args.flavour, r)]
    if args.kernel and len(todo) != 1:
        raise OracleError("--kernel is one kernel: give one --release and one --flavour")
    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    rand = (args.random, args.seed) if args.random else None
    if rand and only:
        print("emu: error: --only names layouts of the matrix; --random makes its own", file=sys.stderr)
        return 2
    if only:
        known = {lay.name for lay in matrix_layouts() + matrix_layouts_i386(True) + matrix_layouts_i386(False)}
        unknown = [n for n in only if n not in known]
        if unknown:
            print(f"emu: error: unknown layout(s): {', '.join(unknown)}", file=sys.stderr)
            return 2
    if args.list:
        for rel, fl in todo:
            for lay in _layouts(fl, only, rand):
                # (a random layout in full: the line is what reproduces it)
                mm, app = " ".join(lay.memmap_args()), lay.append
                if not rand:
                    mm, app = mm[:60], app[:40]
                ird = f" -initrd {lay.initrd >> 20}M" if lay.initrd else ""
                print(f"{rel.kernel:<5} {fl:<12} {lay.name:<20} -cpu {lay.cpu} -m {lay.qemu_ram() >> 20}M{ird} "
                      f"{mm}{' ' + app if app else ''}")
        return 0
    overrides = _overrides(args)
    from emu.tools.batches import open_runner
    n = sum(len(_layouts(fl, only, rand)) for _, fl in todo)
    runner = open_runner(args.jobs, args.scheduler, tasks=n) if (args.jobs > 1 or args.scheduler) else None

    def show(row):
        if not args.json:
            print(_row_line(row), flush=True)
            if args.verbose:
                for d in row.get("details", []):
                    print(f"    {d}")
                for d in row.get("differences", [])[:20]:
                    print(f"    {d}")

    try:
        if not args.json:
            print(f"{'release':<7} {'flavour':<12} {'layout':<20} {'profile':<9} {'boot s':>8} {'emu s':>9} "
                  f"{'identical':>9}")
        rows, kernels = _matrix_rows(args, todo, only, overrides, show, runner, rand)
    finally:
        if runner is not None:
            runner.close()
    ok = bool(rows) and all(r["identical"] for r in rows)
    if args.json:
        from emu.tools.formats import dumps
        print(dumps(oracle_document("matrix", rows, kernels, args.inputs)))
    else:
        for rel, fl in todo:
            sub = [r for r in rows if r.get("release") == rel.kernel and r.get("flavour") == fl]
            if sub:
                na = sum(1 for r in sub if r.get("assumptions"))
                print(f"{rel.kernel} {fl}: {sum(1 for r in sub if r['identical'])} of {len(sub)} identical "
                      f"(inputs: {args.inputs}; {na} with assumptions)")
    return 0 if ok else 1


def _matrix_rows(args: argparse.Namespace, todo: List[Any], only: Optional[List[str]], overrides: Any,
                 show: Callable[[dict], None], runner: Any,
                 rand: Optional[Tuple[int, int]] = None) -> Tuple[List[dict], List[dict]]:
    """The rows in matrix order.  Without a runner each kernel is fetched, then its layouts
    booted, one after the other (the rows print in matrix order as they come); with one,
    every kernel is fetched first (here), then every (kernel, layout) boot goes to the runner
    as one batch (the rows print as they finish).  Paths go to the workers absolute."""
    import os
    from emu.tools.oracle.qemu import OracleError

    def per_kernel() -> Iterator[Tuple[Optional[dict], Optional[List[tuple]]]]:
        """(error row, None) for a kernel that cannot be had, else (None, its tasks)."""
        for rel, fl in todo:
            lays = _layouts(fl, only, rand)
            if not lays:
                continue
            base = {"release": rel.kernel, "flavour": fl}
            try:
                if fl not in rel.flavours and not args.kernel:
                    raise OracleError(f"Debian {rel.codename} builds no {fl} kernel")
                bz, syms, config, label = _kernel(args, rel.kernel, fl)
            except OracleError as e:
                yield _error_row(base, "(all)", "", args.inputs, str(e)), None
                continue
            bz = os.path.abspath(bz)          # (syms is the loaded System.map, not a path)
            config = os.path.abspath(config) if isinstance(config, str) else config
            save = os.path.abspath(args.save) if args.save else None
            kernels.append(dict(base, kernel=bz, label=label))
            yield None, [(lay, bz, syms, args.profile, args.timeout, overrides, args.inputs, args.strict, config,
                          base, save) for lay in lays]

    kernels: List[dict] = []
    rows: List[dict] = []
    if runner is None:
        for row, tasks in per_kernel():
            if row is not None:
                show(row)
                rows.append(row)
            elif tasks:
                rows += run_tasks(tasks, progress=show)
        return rows, kernels
    slots: List = []          # a row (a kernel that cannot be had) or a task, in matrix order
    for row, tasks in per_kernel():
        if row is not None:
            show(row)
            slots.append(row)
        elif tasks:
            slots += tasks
    done = iter(run_tasks([t for t in slots if isinstance(t, tuple)], progress=show, runner=runner))
    rows = [next(done) if isinstance(t, tuple) else t for t in slots]
    return rows, kernels
