"""``emu translate``: walk virtual addresses through the emulated tables, level by level.

Each address is walked once by the machine layer's MMU walk with its trace on
(:func:`emu.machine.mmu.translate` ``trace=True``): the text shows, like crash's
``vtop``, the table page's physical address, the entry's index, the raw entry and its
flags at every level, and on a #PF the level that faulted and the error code in words.
"""
from __future__ import annotations

import argparse

from emu.tools.formats import dumps, translate_document, walk_lines
from emu.tools.options import CliError, _int, add_layout_options, engine_of, layout

EXAMPLES_TRANSLATE = """examples:
  emu translate 0xffff888000100000           through the default layout's tables (profile 6.1)
  emu translate --profile 3.13 --access w 0xffff880000000000 0xffff880100000000
  emu translate --arch i386-pae --profile 3.13 0xc0100000
  emu translate --dmesg boot.log --json 0xffff880040000000
"""


def register(sub) -> None:
    t = sub.add_parser("translate", help="walk virtual addresses through the emulated tables, level by level",
                       epilog=EXAMPLES_TRANSLATE, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("va", nargs="+", type=_int, metavar="VA")
    t.add_argument("--access", default="r", choices=["r", "w", "x", "u", "uw", "ux", "wu", "xu"],
                   help="access type: r(ead), w(rite), x (fetch), u (user mode); default r")
    add_layout_options(t)
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_translate)


def cmd_translate(args: argparse.Namespace) -> int:
    import numpy as np

    from emu.boot.emulate import run
    from emu.machine.mmu import ACCESS_FETCH, ACCESS_USER, ACCESS_WRITE, MMU, translate
    desc = layout(args)
    k_bits = 64 if (desc.params.arch == "x86_64") else 32
    for v in args.va:
        if v < 0 or v >> k_bits:
            raise CliError(f"{v:#x} is not a {k_bits}-bit virtual address")
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
    mmu = MMU.for_mode(k.mode, k.pgd_pfn << 12, k.cpu.nx, k.cpu.pse)
    vas = np.array(args.va, dtype=np.uint64)
    t = translate(k.phys, mmu, vas, access, engine=k.engine, trace=True)
    if args.json:
        print(dumps(translate_document(k, t, args.access)))
    else:
        out = []
        for i in range(len(t)):
            out.extend(walk_lines(k, t, i))
        print("\n".join(out))
    return 0
