"""``emu diff``: one layout, two kernel profiles, every difference.

Prints a unified diff (``difflib``) of both kernels' lines, the page-table pages each
used (per level and source), and every physical range whose direct mapping differs:
mapped by one and not the other, or mapped with another page size or other flags.
``--plot`` draws both builds one above the other (:func:`emu.tools.plot.plot_diff`).
Exit code 0 when the two are identical, 1 when they differ.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from emu.boot.emulate import Result, run
from emu.machine.bits import flag_names
from emu.machine.mmu import MMU, enumerate_tables
from emu.tools.formats import diff_document, dumps, hex64, pgtable_sources_text, size_name, unified_diff

Mapping = Tuple[int, int, int]  # (page shift, leaf flags, pa - (va - page_offset))


def direct_map_segments(result: Result) -> List[Tuple[int, int, Optional[Mapping]]]:
    """The direct map as [pa_start, pa_end, (shift, flags, offset)] segments, ascending."""
    k = result.kernel
    mmu = MMU.for_mode(k.mode, k.pgd_pfn << 12, k.cpu.nx, k.cpu.pse)
    n_top = 512 if k.mode.is_64bit else (4 if k.mode.entry_bytes == 8 else 1024)
    tree = enumerate_tables(k.phys, mmu, (k.page_offset >> k.mode.top_shift) % n_top, n_top, engine=k.engine)
    out: List[Tuple[int, int, Optional[Mapping]]] = []
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
        where = "" if off == 0 else f" -> pa{off:+#x}"
        return f"{size_name(shift)} {' '.join(flag_names(flags, shift))}{where}"

    def to_json(self) -> dict:
        def j(m):
            return None if m is None else {"page_size": size_name(m[0]), "flags": flag_names(m[1], m[0]),
                                           "pa_offset": hex64(m[2])}
        return {"start": hex64(self.start), "end": hex64(self.end), "a": j(self.a), "b": j(self.b)}


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


def _width(text: str) -> int:
    try:
        w = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if w != 0 and not 20 <= w <= 1000:
        raise argparse.ArgumentTypeError(f"--width must be 0 (no limit) or 20..1000, not {w}")
    return w


EXAMPLES_DIFF = """examples:
  emu diff --profile seed --profile 3.10                 the posted patch against the merged form
  emu diff --profile seed --profile 3.10 --plot seed-3.10.png   both, one picture above the other
  emu diff --profile 3.13 --profile 3.19 --e820 map.json --json
"""


def register(sub) -> None:
    from emu.tools.options import add_layout_options, layout
    p = sub.add_parser(
        "diff", help="the same layout under two profiles: a unified diff of the lines, table pages, mapping",
        epilog=EXAMPLES_DIFF, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_layout_options(p, profile=False)
    p.add_argument("--profile", action="append", default=[], metavar="NAME|VERSION", required=True,
                   help="a kernel profile; give it twice")
    p.add_argument("--json", action="store_true")
    p.add_argument("--context", type=int, default=3, metavar="N",
                   help="lines of context around each difference (default 3)")
    p.add_argument("--width", type=_width, default=0, metavar="COLS",
                   help="cut printed lines longer than COLS (20..1000; default 0: no limit)")
    p.add_argument("--plot", metavar="FILE",
                   help="draw both profiles' mapping one above the other (FILE.png or FILE.svg; matplotlib)")
    p.set_defaults(func=_cmd, layout=layout)


def _cut(line: str, width: int) -> str:
    return line if not width or len(line) <= width else line[: width - 3] + "..."


def pgtable_text(result) -> str:
    """``10 (PGD 1, PUD 1, PMD 4, PTE 4); from brk 6, memblock 3, image 1``."""
    pt = result.pgtable_pages
    levels = ", ".join(f"{name.upper()} {n}" for name, n in pt["by_level"].items())
    return f"{pt['total']} ({levels}); from {pgtable_sources_text(pt)}"


def diff_lines(a: Result, b: Result, diffs: List[Difference], context: int = 3, width: int = 0) -> List[str]:
    """What ``emu diff`` prints: the unified diff of both kernels' lines (pr_debug lines
    included), the page-table pages of each, then every physical range mapped differently."""
    out = unified_diff(a.debug_log, b.debug_log, a.profile, b.profile, context)
    if not out:
        out.append(f"lines: identical ({len(a.debug_log)} lines)")
    w = max(len(a.profile), len(b.profile))
    out.append("")
    out.append("page-table pages:")
    out.append(f"  {a.profile:<{w}}  {pgtable_text(a)}")
    out.append(f"  {b.profile:<{w}}  {pgtable_text(b)}")
    if a.panic or b.panic:
        out.append("panic:")
        out.append(f"  {a.profile:<{w}}  {a.panic or '-'}")
        out.append(f"  {b.profile:<{w}}  {b.panic or '-'}")
        return [_cut(ln, width) for ln in out]
    if not diffs:
        out.append("direct map: identical")
        return [_cut(ln, width) for ln in out]
    out.append(f"direct map: {len(diffs)} range(s) mapped differently:")
    for d in diffs:
        out.append(f"  [mem {d.start:#010x}-{d.end - 1:#010x}] {a.profile}: {Difference.describe(d.a)}  |  "
                   f"{b.profile}: {Difference.describe(d.b)}")
    return [_cut(ln, width) for ln in out]


def _cmd(args) -> int:
    from emu.kernel.profiles import get_profile
    from emu.tools.options import CliError, engine_of
    profiles = args.profile
    if len(profiles) != 2:
        raise CliError("emu diff needs exactly two --profile options")
    if args.context < 0:
        raise CliError(f"--context must be 0 or more, not {args.context}")
    if args.plot:
        from emu.tools.plot import check_output
        check_output(args.plot)
    args.profile = profiles[0]
    desc = args.layout(args)
    args.profile = profiles
    a = run(dataclasses.replace(desc, profile=get_profile(profiles[0])), check=False, max_memory=args.max_memory,
            engine=engine_of(args))
    b = run(dataclasses.replace(desc, profile=get_profile(profiles[1]), params=dataclasses.replace(desc.params)),
            check=False, max_memory=args.max_memory, engine=engine_of(args))
    diffs = compare(a, b) if not (a.panic or b.panic) else []
    same = not diffs and a.debug_log == b.debug_log and a.panic == b.panic
    if args.json:
        log_diff = unified_diff(a.debug_log, b.debug_log, a.profile, b.profile, args.context)
        print(dumps(diff_document(a, b, log_diff, diffs)))
    else:
        print("\n".join(diff_lines(a, b, diffs, args.context, args.width)))
    if args.plot:
        from emu.tools.plot import plot_diff
        plot_diff(a, b, args.plot)
        print(f"emu: wrote {args.plot}", file=sys.stderr)
    return 0 if same else 1
