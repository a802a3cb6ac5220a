"""``emu translate``: walk virtual addresses through the emulated tables."""
from __future__ import annotations

import argparse
import json

from emu.tools.options import CliError, _int, add_layout_options, engine_of, layout

EXAMPLES_TRANSLATE = """examples:
  emu translate 0xffff888000100000           through the default layout's tables (profile 6.1)
  emu translate --profile 3.13 --access w 0xffff880000000000 0xffff880100000000
  emu translate --dmesg boot.log --json 0xffff880040000000
"""



def register(sub) -> None:
    t = sub.add_parser("translate", help="walk virtual addresses through the emulated tables",
                       epilog=EXAMPLES_TRANSLATE, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("va", nargs="+", type=_int, metavar="VA")
    t.add_argument("--access", default="r", choices=["r", "w", "x", "u", "uw", "ux", "wu", "xu"],
                   help="access type: r(ead), w(rite), x (fetch), u (user mode); default r")
    add_layout_options(t)
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_translate)


def cmd_translate(args: argparse.Namespace) -> int:
    from emu.boot.emulate import run
    from emu.machine.mmu import ACCESS_FETCH, ACCESS_USER, ACCESS_WRITE, MMU, translate
    import numpy as np
    desc = layout(args)
    result = run(desc, check=False, max_memory=args.max_memory,
                     engine=engine_of(args))
    from emu.tools.options import say_assumptions
    say_assumptions(result)
    if result.panic:
        raise CliError(f"the emulated kernel panicked, no tables to walk: {result.panic}")
    k = result.kernel
    access = 0
    for ch in args.access:
        access |= {"r": 0, "w": ACCESS_WRITE, "x": ACCESS_FETCH, "u": ACCESS_USER}[ch]
    width = 64 if k.mode.is_64bit else k.mode.va_bits
    for v in args.va:
        if v >> width:
            raise CliError(f"VA {v:#x}: beyond the {width}-bit linear addresses of {k.mode.name} "
                           f"(at most {(1 << width) - 1:#x})")
    mmu = MMU(cr3=k.pgd_pfn << 12, levels=k.paging_levels, maxphyaddr=52, nxe=k.params.cpu.nx)
    vas = np.array(args.va, dtype=np.uint64)
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
