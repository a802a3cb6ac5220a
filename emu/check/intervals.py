"""Interval arithmetic of the checker: half-open ``[start, end)`` ranges, as Python lists
(merged, sorted) or as numpy columns.  The checker's own: the emulated kernel keeps its
ranges with its own code (memblock, e820), so the two cannot share a mistake."""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

Interval = Tuple[int, int]
_U64 = np.uint64


# ---------------------------------------------------------------------------
def merge(iv: Sequence[Interval]) -> List[Interval]:
    """The union of ``iv`` as sorted disjoint intervals (touching ones joined, empty ones dropped)."""
    out: List[Interval] = []
    have, cs, ce = False, 0, 0       # the interval being grown, kept in locals
    for s, e in sorted(iv):
        if e <= s:
            continue
        if have and s <= ce:
            if e > ce:
                ce = e
        else:
            if have:
                out.append((cs, ce))
            have, cs, ce = True, s, e
    if have:
        out.append((cs, ce))
    return out


def subtract(a: List[Interval], b: List[Interval]) -> List[Interval]:
    """a minus b (both merged)."""
    out: List[Interval] = []
    j = 0
    for s, e in a:
        cur = s
        while j < len(b) and b[j][1] <= cur:
            j += 1
        k = j
        while k < len(b) and b[k][0] < e:
            if b[k][0] > cur:
                out.append((cur, b[k][0]))
            cur = max(cur, b[k][1])
            k += 1
        if cur < e:
            out.append((cur, e))
    return out


def inside(starts: np.ndarray, ends: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """For each [lo, hi): is it inside one of the sorted disjoint intervals [starts, ends)?"""
    if len(starts) == 0:
        return np.zeros(len(lo), bool)
    i = np.searchsorted(starts, lo, side="right") - 1
    ic = np.maximum(i, 0)
    return (i >= 0) & (hi <= ends[ic]) & (lo >= starts[ic])


def overlaps(starts: np.ndarray, ends: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """For each [lo, hi): does it intersect one of the sorted disjoint intervals?"""
    if len(starts) == 0:
        return np.zeros(len(lo), bool)
    i = np.searchsorted(ends, lo, side="right")   # first interval ending after lo
    ic = np.minimum(i, len(starts) - 1)
    return (i < len(starts)) & (starts[ic] < hi)


def arrays(iv: List[Interval]) -> Tuple[np.ndarray, np.ndarray]:
    return np.array([s for s, _ in iv], _U64), np.array([e for _, e in iv], _U64)


def intersect(a: List[Interval], b: List[Interval]) -> List[Interval]:
    """a intersected with b (both merged)."""
    out: List[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        s, e = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if s < e:
            out.append((s, e))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def bytes_below(starts: np.ndarray, lens_cum: np.ndarray, ends: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Bytes of the sorted disjoint runs [starts, ends) lying below each x."""
    if not len(starts):
        return np.zeros(len(x), np.int64)
    i = np.searchsorted(starts, x, side="right") - 1
    ic = np.maximum(i, 0)
    part = np.minimum(x, ends[ic]).astype(np.int64) - starts[ic].astype(np.int64)
    part = np.maximum(part, 0)
    prev = np.where(ic > 0, lens_cum[ic - 1], 0)
    return np.where(i >= 0, prev + part, 0)


def first_cover(starts: np.ndarray, ends: np.ndarray, pa: np.ndarray) -> np.ndarray:
    """For each address in ``pa``: the index of the first interval (in list order) containing it,
    or len(starts) when none does."""
    n = len(starts)
    out = np.full(len(pa), n, np.int64)
    if not len(pa):
        return out
    if len(pa) <= 32:                     # the usual case: a handful of memblock pages
        for j, p in enumerate(pa.tolist()):
            hit = np.flatnonzero((starts <= p) & (ends > p))
            if len(hit):
                out[j] = hit[0]
        return out
    order = np.argsort(pa, kind="stable")
    sp = pa[order]
    res = np.full(len(pa), n, np.int64)
    for i in range(n):
        a = np.searchsorted(sp, starts[i], side="left")
        b = np.searchsorted(sp, ends[i], side="left")
        if a < b:
            seg = res[a:b]
            np.minimum(seg, i, out=seg)
    out[order] = res
    return out
