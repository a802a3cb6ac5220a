"""``emu run``: emulate one boot; print the kernel's lines, a summary and the check."""
from __future__ import annotations

import argparse
import sys
from typing import List

from emu.tools.formats import dumps, run_document, steps_lines, summary_lines
from emu.tools.options import add_layout_options, engine_of, layout

EXAMPLES_RUN = """examples:
  emu run                                   embedded 16 GiB desktop, newest profile
  emu run --profile 6.1 --debug             the pr_debug lines too (init_memory_mapping: 4.5+)
  emu run --e820 map.json --no-gbpages      your e820 (JSON or BIOS-e820 lines)
  emu run --dmesg boot.log                  everything the boot log tells (version, e820, BRK, initrd)
  emu run --sysfs --json                    this machine's /sys/firmware/memmap, as JSON
  emu run --profile seed --steps            the top-down windows, step sizes and page-table sources
  emu run --plot layout.png                 the same as a picture (matplotlib: pip install 'emu[plot]')
"""


def register(sub) -> None:
    r = sub.add_parser("run", help="emulate one boot and print the kernel's lines and a summary",
                       epilog=EXAMPLES_RUN, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_layout_options(r)
    r.add_argument("--debug", action="store_true", help="also print pr_debug lines (as dynamic debug would)")
    r.add_argument("--json", action="store_true", help="one JSON object")
    r.add_argument("--no-verify", action="store_true", help="skip the verification walk")
    r.add_argument("--steps", action="store_true",
                   help="how the direct map was built, as a table: the e820 map, each init_memory_mapping call "
                        "in order with its window, step size, pieces and page-table pages (BRK, memblock, image)")
    r.add_argument("--plot", metavar="FILE",
                   help="also draw the same as a picture (FILE.png or FILE.svg; needs matplotlib: "
                        "pip install 'emu[plot]')")
    r.set_defaults(func=cmd_run)


def summary(result) -> List[str]:
    """The lines ``emu run`` prints after the kernel's (:func:`emu.tools.formats.summary_lines`)."""
    return summary_lines(result)


def cmd_run(args: argparse.Namespace) -> int:
    from emu.boot.emulate import run
    if args.plot:
        from emu.tools.plot import check_output
        check_output(args.plot)
    desc = layout(args)
    result = run(desc, check=not args.no_verify,
                     max_memory=args.max_memory, progress=progress_bar() if not args.json else None,
                     engine=engine_of(args))
    from emu.tools.options import say_assumptions
    say_assumptions(result)
    if args.json:
        print(dumps(run_document(result)))
    elif args.steps:
        print("\n".join(steps_lines(result)))
    else:
        lines = result.debug_log if args.debug else result.log
        print("\n".join(lines + summary(result)))
    if args.plot:
        from emu.tools.plot import plot_run
        plot_run(result, args.plot)
        print(f"emu: wrote {args.plot}", file=sys.stderr)
    if result.verify is not None and not result.verify.ok:
        return 1
    return 0


def progress_bar():
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
