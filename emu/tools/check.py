"""``emu check``: emulate one boot, then run the full checker (:mod:`emu.check.x86_64`).

Prints the kernel's lines, the summary and one line per violation (rule, address,
message), or with ``--json`` one object: the emulation's JSON plus ``check``.
Exit code 0 when every rule holds, 1 on violations or a kernel panic the
profile does not expect, 2 on bad input.
"""
from __future__ import annotations

import argparse
import json
from typing import Optional

from emu.check import Report, verify

EXAMPLES_CHECK = """examples:
  emu check                                  the default layout, newest profile
  emu check --profile seed --e820 map.json   the top-down patch as posted, on your map
  emu check --dmesg boot.log --json          everything a boot log tells, checked
"""


def check_result(result) -> Optional[Report]:
    """The full check of an emulation result (None when the kernel panicked)."""
    if result.panic:
        return None
    return verify(result.kernel, engine=result.kernel.engine)


def register(sub) -> None:
    from emu.tools.options import add_layout_options, layout
    p = sub.add_parser("check", help="emulate and check every page-table rule (independent checker)",
                       epilog=EXAMPLES_CHECK, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_layout_options(p)
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.add_argument("--debug", action="store_true", help="also print pr_debug lines")
    p.add_argument("--quiet", "-q", action="store_true", help="only the check result")
    p.set_defaults(func=lambda args: cmd_check(args, layout))


def cmd_check(args: argparse.Namespace, layout) -> int:
    from emu.tools.options import engine_of
    from emu.tools.run import summary as _summary
    from emu.boot.emulate import run
    desc = layout(args)
    result = run(desc, check=False, max_memory=args.max_memory,
                     engine=engine_of(args))
    from emu.tools.options import say_assumptions
    say_assumptions(result)
    rep = check_result(result)
    summary = _summary(result)          # (result.verify is None here: no "verify:" line)
    result.verify = rep
    if args.json:
        d = result.to_json()
        d["check"] = rep.to_json() if rep is not None else None
        print(json.dumps(d, indent=1))
    else:
        lines = [] if args.quiet else list(result.debug_log if args.debug else result.log) + summary
        if rep is None:
            lines.append(f"check: kernel panic, no tables to check: {result.panic}")
        else:
            lines.extend(rep.text())
        print("\n".join(lines))
    if rep is None or not rep.ok:
        return 1
    return 0


__all__ = ["check_result", "register", "cmd_check"]
