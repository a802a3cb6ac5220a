"""``emu run``: emulate one boot; print the kernel's lines, a summary and the check."""
from __future__ import annotations

import argparse
import json
import sys
from typing import List

from emu.tools.options import add_layout_options, engine_of, layout

EXAMPLES_RUN = """examples:
  emu run                                   embedded 16 GiB desktop, newest profile
  emu run --profile 3.13 --debug            show the pr_debug lines too
  emu run --e820 map.json --no-gbpages      your e820 (JSON or BIOS-e820 lines)
  emu run --dmesg boot.log                  everything the boot log tells (version, e820, BRK, initrd)
  emu run --sysfs --json                    this machine's /sys/firmware/memmap, as JSON
"""


def register(sub) -> None:
    r = sub.add_parser("run", help="emulate one boot and print the kernel's lines and a summary",
                       epilog=EXAMPLES_RUN, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_layout_options(r)
    r.add_argument("--debug", action="store_true", help="also print pr_debug lines (as dynamic debug would)")
    r.add_argument("--json", action="store_true", help="one JSON object")
    r.add_argument("--no-verify", action="store_true", help="skip the verification walk")
    r.set_defaults(func=cmd_run)


def summary(result) -> List[str]:
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
    from emu.boot.emulate import run
    desc = layout(args)
    result = run(desc, check=not args.no_verify,
                     max_memory=args.max_memory, progress=progress_bar() if not args.json else None,
                     engine=engine_of(args))
    from emu.tools.options import say_assumptions
    say_assumptions(result)
    if args.json:
        print(json.dumps(result.to_json(), indent=1))
    else:
        lines = result.debug_log if args.debug else result.log
        print("\n".join(lines + summary(result)))
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
