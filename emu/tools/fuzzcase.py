"""One fuzz map: run it and classify the outcome (:func:`run_case`), shrink a failing one
(:func:`shrink`).  Shared by ``emu fuzz`` (:mod:`emu.tools.fuzz`) and the campaign workers
(:mod:`emu.tools.campaign`)."""
from __future__ import annotations

import dataclasses
import os
import re
import time
import traceback
from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Tuple

from emu.tools.generators import Case

G = 1 << 30
M = 1 << 20
PAGE = 4096


# ---------------------------------------------------------------------------
# one map
# ---------------------------------------------------------------------------
@dataclass
class Outcome:
    kind: str                  # ok | rejected | expected-panic | panic | check | unemulated | crash
    signature: str = ""
    detail: List[str] = field(default_factory=list)
    #: the coverage points the map reached ("<mode>/<point>")
    points: frozenset = frozenset()

    @property
    def finding(self) -> bool:
        return self.kind in ("panic", "check", "unemulated", "crash")


def _norm_panic(text: str) -> str:
    return re.sub(r"0x[0-9a-f]+", "ADDR", text.strip())


def _emulate(case: Case, profile: str):
    from emu.boot.emulate import emulate
    return emulate(case.table(), profile, case.boot_params(), max_memory=1 << 30)


def _points(case: Case, r, kind: str) -> frozenset:
    mode = case.mode
    pts = [f"{mode}/{p}" for p in r.kernel.coverage.as_dict()] if r is not None else []
    pts.append(f"{mode}/outcome:{kind}")
    return frozenset(pts)


def run_case(case: Case, profile: str, reference: Optional[str] = None) -> Outcome:
    """Emulate and check one case under ``profile``; classify the result."""
    from emu.errors import NotEmulated
    from emu.kernel.arch.x86.kernel.setup import SetupError
    from emu.tools.generators import kernel_in_ram
    if not kernel_in_ram(case):
        return Outcome("rejected", "", ["the kernel image or its BRK buffer is not in RAM"],
                       frozenset([f"{case.mode}/outcome:rejected"]))
    try:
        r = _emulate(case, profile)
    except SetupError as e:
        return Outcome("rejected", "", [str(e)], frozenset([f"{case.mode}/outcome:rejected"]))
    except NotEmulated as e:  # the kernel does what emu does not model: a finding about the kernel
        return Outcome("unemulated", "unemulated:" + _norm_panic(str(e).split(":")[0]), [str(e)],
                       frozenset([f"{case.mode}/outcome:unemulated"]))
    except Exception as e:  # an emu bug
        tb = traceback.extract_tb(e.__traceback__)
        where = f"{os.path.basename(tb[-1].filename)}:{tb[-1].lineno}" if tb else "?"
        return Outcome("crash", f"crash:{type(e).__name__}@{where}", [f"{type(e).__name__}: {e}"],
                       frozenset([f"{case.mode}/outcome:crash"]))
    if r.panic:
        if reference and reference != profile:
            try:
                ref = _emulate(case, reference)
                if ref.panic:
                    return Outcome("expected-panic", "", [r.panic, f"{reference}: {ref.panic}"],
                                   _points(case, r, "expected-panic"))
            except Exception:
                pass
        return Outcome("panic", "panic:" + _norm_panic(r.panic), [r.panic], _points(case, r, "panic"))
    v = r.verify
    if v is not None and not v.ok:
        return Outcome("check", "check:" + ",".join(v.signature()), list(v.violations[:12]), _points(case, r, "check"))
    return Outcome("ok", points=_points(case, r, "ok"))


# ---------------------------------------------------------------------------
# shrinking
# ---------------------------------------------------------------------------
def _round_candidates(x: int) -> List[int]:
    out = []
    for a in (1 << 40, 512 * G, 64 * G, 4 * G, G, 256 * M, 64 * M, 2 * M, PAGE):
        for y in (x // a * a, -(-x // a) * a):
            if y != x and y not in out:
                out.append(y)
    return out


def _variants(c: Case) -> Iterator[Case]:
    """Simpler neighbours of ``c``, most aggressive first."""
    e = c.e820
    n = len(e)

    def with_e820(new) -> Case:
        d = dataclasses.replace(c, e820=list(new), reserves=list(c.reserves), memmap=list(c.memmap))
        return d

    # drop entries (halves, then one at a time)
    if n > 2:
        yield with_e820(e[: n // 2] + [x for x in e[n // 2:] if x[2] == 1][:1])
    for i in range(n - 1, -1, -1):
        yield with_e820(e[:i] + e[i + 1:])
    # parameters back to defaults
    for name, default in (("initrd", None), ("brk_base", None), ("kernel_start", 0x1000000), ("gbpages", True),
                          ("debug_pagealloc", False), ("pse", True), ("nx", True), ("pge", True),
                          ("mem_limit", None), ("memmap", []), ("pti", False), ("movable_node", False),
                          ("lowmem_limit", None), ("highmem", None)):
        if getattr(c, name) != default:
            d = with_e820(e)
            setattr(d, name, default)
            yield d
    if c.reserves:
        d = with_e820(e)
        d.reserves = []
        yield d
    # entries: plain types, merge neighbours, round addresses and sizes
    for i, (a, s, t) in enumerate(e):
        if t not in (1, 2):
            yield with_e820(e[:i] + [(a, s, 2)] + e[i + 1:])
    srt = sorted(e)
    for i in range(len(srt) - 1):
        (a, s, t), (b, s2, t2) = srt[i], srt[i + 1]
        if t == t2 and a + s >= b:
            yield with_e820([x for x in e if x not in (srt[i], srt[i + 1])] + [(a, max(a + s, b + s2) - a, t)])
    for i, (a, s, t) in enumerate(e):
        end = a + s
        for na in _round_candidates(a):
            if 0 <= na < end:
                yield with_e820(e[:i] + [(na, end - na, t)] + e[i + 1:])
        for ne in _round_candidates(end):
            if ne > a:
                yield with_e820(e[:i] + [(a, ne - a, t)] + e[i + 1:])
        if s >= 2 * PAGE:
            yield with_e820(e[:i] + [(a, s // 2 // PAGE * PAGE or PAGE, t)] + e[i + 1:])


def _size_key(c: Case) -> Tuple[int, int, int]:
    """Smaller is simpler: fewer entries, fewer odd bits, less RAM."""
    bits = sum(bin(x).count("1") for a, s, t in c.e820 for x in (a, a + s))
    extra = sum(1 for v in (c.initrd, c.brk_base, c.mem_limit, c.lowmem_limit, c.highmem) if v is not None) + \
        len(c.reserves) + len(c.memmap) + (c.kernel_start != 0x1000000) + (not c.gbpages) + c.debug_pagealloc + \
        (not c.pse) + (not c.nx) + (not c.pge) + c.pti + c.movable_node
    return (len(c.e820) + extra, bits, c.ram())


def shrink(case: Case, profile: str, signature: str, reference: Optional[str] = None,
           budget: int = 2500, seconds: Optional[float] = None, stop=None) -> Tuple[Case, int]:
    """A minimal case that fails with the same ``signature``; returns it and the
    number of emulations spent.  Bounded by ``budget`` emulations (deterministic: the same
    result on any machine); ``seconds`` adds a clock limit for interactive use."""
    best = case
    tries = 0
    t0 = time.monotonic()
    improved = True

    def out_of_time() -> bool:
        return (seconds is not None and time.monotonic() - t0 >= seconds) or (stop is not None and stop())
    while improved and tries < budget and not out_of_time():
        improved = False
        for cand in _variants(best):
            if tries >= budget or out_of_time():
                break
            if _size_key(cand) >= _size_key(best):
                continue
            tries += 1
            out = run_case(cand, profile, reference)
            if out.signature == signature:
                best = cand
                improved = True
                break
    return best, tries


__all__ = ["Outcome", "run_case", "shrink"]
