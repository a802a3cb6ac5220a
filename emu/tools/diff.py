"""``emu diff``: one layout, two kernel profiles, every difference.

Prints both kernels' lines side by side, the page-table pages each used, and
every physical range whose direct mapping differs: mapped by one and not the
other, or mapped with another page size or other flags.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from emu.boot.emulate import Result, run
from emu.machine.bits import flag_names
from emu.machine.mmu import MMU, enumerate_tables

Mapping = Tuple[int, int, int]  # (page shift, leaf flags, pa - (va - page_offset))


def direct_map_segments(result: Result) -> List[Tuple[int, int, Optional[Mapping]]]:
    """The direct map as [pa_start, pa_end, (shift, flags, offset)] segments, ascending."""
    k = result.kernel
    top_shift = 48 if k.paging_levels == 5 else 39
    tree = enumerate_tables(k.phys, MMU(k.pgd_pfn << 12, levels=k.paging_levels, maxphyaddr=52),
                            (k.page_offset >> top_shift) & 511, 512)
    out = []
    for va, va_end, pa, shift, flags, _eff in (tuple(int(x) for x in r) for r in tree.runs):
        start = va - k.page_offset
        out.append((start, start + (va_end - va), (shift, flags, pa - start)))
    return out


@dataclass
class Difference:
    start: int
    end: int
    a: Optional[Mapping]
    b: Optional[Mapping]

    @staticmethod
    def describe(m: Optional[Mapping]) -> str:
        if m is None:
            return "not mapped"
        shift, flags, off = m
        size = {12: "4k", 21: "2M", 30: "1G"}.get(shift, f"2^{shift}")
        where = "" if off == 0 else f" -> pa{off:+#x}"
        return f"{size} {' '.join(flag_names(flags, shift))}{where}"

    def to_json(self) -> dict:
        def j(m):
            return None if m is None else {"page_size": 1 << m[0], "flags": m[1], "pa_offset": m[2]}
        return {"start": self.start, "end": self.end, "a": j(self.a), "b": j(self.b)}


def compare(a: Result, b: Result) -> List[Difference]:
    """Physical ranges whose direct mapping differs between two results."""
    sa, sb = direct_map_segments(a), direct_map_segments(b)
    cuts = sorted(set(itertools.chain.from_iterable((s, e) for s, e, _ in sa + sb)))
    starts_a = np.array([s for s, _, _ in sa], dtype=np.uint64)
    starts_b = np.array([s for s, _, _ in sb], dtype=np.uint64)

    def at(segs, starts, x):
        i = int(np.searchsorted(starts, np.uint64(x), side="right")) - 1
        if i >= 0 and segs[i][0] <= x < segs[i][1]:
            return segs[i][2]
        return None

    diffs: List[Difference] = []
    for lo, hi in zip(cuts, cuts[1:]):
        ma, mb = at(sa, starts_a, lo), at(sb, starts_b, lo)
        if ma != mb:
            if diffs and diffs[-1].end == lo and diffs[-1].a == ma and diffs[-1].b == mb:
                diffs[-1].end = hi
            else:
                diffs.append(Difference(lo, hi, ma, mb))
    return diffs


def register(sub) -> None:
    from emu.tools.options import add_layout_options, layout
    p = sub.add_parser(
        "diff", help="the same layout under two profiles: lines, table pages, mapping differences",
        epilog="examples:\n  emu diff --profile seed --profile 3.10 --debug-pagealloc\n"
               "  emu diff --e820 map.json --profile 3.13 --profile 3.19 --json",
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    add_layout_options(p, profile=False)
    p.add_argument("--profile", action="append", default=[], metavar="NAME|VERSION", required=True,
                   help="a kernel profile; give it twice")
    p.add_argument("--json", action="store_true")
    from emu.tools.values import argtype, bounded_int
    p.add_argument("--width", type=argtype(bounded_int(1, 1000), "width"), default=60,
                   help="column width of the side-by-side log (1 .. 1000)")
    p.set_defaults(func=_cmd, layout=layout)


def _cmd(args) -> int:
    from emu.tools.options import CliError
    from emu.kernel.profiles import get_profile
    profiles = args.profile
    if len(profiles) != 2:
        raise CliError("emu diff needs exactly two --profile options")
    args.profile = profiles[0]
    desc = args.layout(args)
    args.profile = profiles
    a = run(dataclasses.replace(desc, profile=get_profile(profiles[0])), check=False)
    b = run(dataclasses.replace(desc, profile=get_profile(profiles[1]), params=dataclasses.replace(desc.params)),
            check=False)
    diffs = compare(a, b) if not (a.panic or b.panic) else []
    if args.json:
        print(json.dumps({"a": a.to_json() | {"verify": None}, "b": b.to_json() | {"verify": None},
                          "differences": [d.to_json() for d in diffs]}, indent=1))
        return 0 if not diffs and a.debug_log == b.debug_log else 1
    w = args.width
    print(f"{'--- ' + a.profile:<{w}} | --- {b.profile}")
    for la, lb in itertools.zip_longest(a.debug_log, b.debug_log, fillvalue=""):
        mark = " " if la == lb else "|"
        print(f"{la[:w]:<{w}} {mark} {lb[:w]}")
    pa, pb = a.pgtable_pages, b.pgtable_pages
    print(f"\npage-table pages: {a.profile}: {pa['total']} {pa['by_source']}  |  {b.profile}: {pb['total']} {pb['by_source']}")
    if a.panic or b.panic:
        print(f"panic: {a.profile}: {a.panic}  |  {b.profile}: {b.panic}")
        return 1
    if not diffs:
        print("direct map: identical")
    for d in diffs:
        print(f"[mem {d.start:#010x}-{d.end - 1:#010x}] {a.profile}: {Difference.describe(d.a)}  |  "
              f"{b.profile}: {Difference.describe(d.b)}")
    return 0 if not diffs and a.debug_log == b.debug_log else 1
