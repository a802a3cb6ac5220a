"""Random 4-level x86-64 page-table trees in an :class:`emu.machine.phys.PhysMem`, for walk tests.

:func:`build_random_tree` fills emulated physical RAM with a randomly shaped
tree (seeded ``numpy.random.Generator``, so a seed reproduces a tree exactly):

* table frames live in a few random 1 GiB windows below ``phys_limit``
  (1 TiB by default), so the sparse store stays small;
* every level mixes empty entries, not-present entries carrying garbage in
  their other bits, pointers to lower tables (a few shared between parents,
  a few *dangling*: pointing at unbacked frames, which read as zero, and a
  PML4 self-reference), 1 GiB and 2 MiB leaves (PS) and 4 KiB leaves;
* RW/US/NX are random at every level; PWT/PCD/A/D/G, AVL bits 11:9, the PAT
  bits and the ignored bits 62:52 are random;
* a fraction of present entries get a reserved-bit violation: a bit in
  [MAXPHYADDR, 51], PS in a PML4E, or a nonzero bit in 29:13 of a 1 GiB leaf /
  20:13 of a 2 MiB leaf.  (With EFER.NXE=0 the NX bits become reserved too.)

:func:`random_vas` draws addresses: mostly inside leaves (all three sizes),
some inside any non-empty entry's span (not-present, reserved, table), some
uniformly random canonical ones (mostly unmapped), some non-canonical.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from emu.machine.phys import PhysMem

GIB_PFNS = 1 << 18          # 4 KiB frames per GiB
VA_BITS = 48
_SIGN = 1 << (VA_BITS - 1)
_HIGH = (1 << 64) - (1 << VA_BITS)

# entry bits
P, RW, US, PWT, PCD, A, D, PS, G = (1 << b for b in (0, 1, 2, 3, 4, 5, 6, 7, 8))
NX = 1 << 63

KIND_EMPTY, KIND_NOTPRESENT, KIND_TABLE, KIND_LEAF = 0, 1, 2, 3


def canonical(va: int) -> int:
    """Sign-extend a 48-bit address to 64 bits."""
    va &= (1 << VA_BITS) - 1
    return va | _HIGH if va & _SIGN else va


@dataclass
class RandomTree:
    phys: PhysMem
    cr3: int
    maxphyaddr: int
    table_pfns: np.ndarray                 # every frame the builder backed (uint64)
    leaves: Dict[int, np.ndarray]          # shift (12/21/30) -> canonical VA of each leaf entry
    spans: np.ndarray                      # (n, 2) uint64: (canonical VA, shift) of each non-empty entry
    stats: Dict[str, int] = field(default_factory=dict)


class _Builder:
    def __init__(self, rng: np.random.Generator, maxphyaddr: int, phys_limit: int, windows: int,
                 max_tables: int, p_rsvd: Dict[int, float], p_share: float, p_dangling: float) -> None:
        if not 32 <= maxphyaddr <= 52:
            raise ValueError("maxphyaddr must be in [32, 52]")
        if phys_limit > 1 << maxphyaddr:
            raise ValueError("phys_limit must not exceed 2**maxphyaddr")
        self.rng = rng
        self.maxphyaddr = maxphyaddr
        self.phys_limit = phys_limit
        self.phys = PhysMem(phys_limit)
        ngib = max(1, phys_limit >> 30)
        self.windows = rng.choice(ngib, size=min(windows, ngib), replace=False).astype(np.int64)
        self.used: set = set()
        self.max_tables = max_tables
        self.p_rsvd = p_rsvd
        self.p_share = p_share
        self.p_dangling = p_dangling
        self.tables_by_level: Dict[int, List[int]] = {1: [], 2: [], 3: [], 4: []}
        self.leaves: Dict[int, List[int]] = {12: [], 21: [], 30: []}
        self.spans: List[tuple] = []
        self.stats = {"tables": 0, "shared": 0, "dangling": 0, "self_ref": 0, "leaf_4k": 0, "leaf_2m": 0,
                      "leaf_1g": 0, "not_present": 0, "rsvd_hi": 0, "rsvd_ps_pml4": 0, "rsvd_low": 0}

    # -- frames ---------------------------------------------------------
    def _fresh_pfn(self) -> int:
        while True:
            w = int(self.rng.choice(self.windows))
            pfn = (w * GIB_PFNS) | int(self.rng.integers(0, GIB_PFNS))
            if pfn not in self.used and (pfn << 12) < self.phys_limit:
                self.used.add(pfn)
                return pfn

    def _new_table(self, level: int) -> int:
        pfn = self._fresh_pfn()
        self.phys.frame(pfn)
        self.tables_by_level[level].append(pfn)
        self.stats["tables"] += 1
        return pfn

    # -- entries --------------------------------------------------------
    def _random_bits(self, k: int) -> np.ndarray:
        """Attribute bits of ``k`` present entries (P set, no address, no PS)."""
        r = self.rng
        e = np.full(k, P, np.uint64)
        e |= np.where(r.random(k) < 0.85, RW, 0).astype(np.uint64)
        e |= np.where(r.random(k) < 0.75, US, 0).astype(np.uint64)
        for bit in (PWT, PCD, A, D, G):
            e |= np.where(r.random(k) < 0.5, bit, 0).astype(np.uint64)
        e |= (r.integers(0, 8, k).astype(np.uint64) << np.uint64(9))            # AVL 11:9
        ign = r.integers(0, 1 << 11, k).astype(np.uint64) << np.uint64(52)      # ignored 62:52
        e |= np.where(r.random(k) < 0.15, ign, np.uint64(0))
        e |= np.where(r.random(k) < 0.2, np.uint64(NX), np.uint64(0))
        return e

    def _random_pa(self, k: int, shift: int) -> np.ndarray:
        """Random ``1 << shift``-aligned physical addresses below 2**maxphyaddr."""
        top = 1 << (self.maxphyaddr - shift)
        return self.rng.integers(0, top, k).astype(np.uint64) << np.uint64(shift)

    def fill(self, pfn: int, level: int, base: int, queue: list) -> None:
        r = self.rng
        shift = 12 + 9 * (level - 1)
        if level == 4:
            k, probs = int(r.integers(10, 16)), (0.3, 0.7, 0.0)
        elif level == 3:
            k, probs = int(r.integers(16, 40)), (0.25, 0.25, 0.5)
        elif level == 2:
            k, probs = int(r.integers(16, 48)), (0.2, 0.15, 0.65)
        else:
            k, probs = int(r.integers(24, 200)), (0.15, 0.0, 0.85)
        idx = np.sort(r.choice(512, size=k, replace=False))
        kinds = r.choice([KIND_NOTPRESENT, KIND_TABLE, KIND_LEAF], size=k, p=probs)
        ent = self._random_bits(k)
        # not-present: random garbage with P clear (half of them), or just a few bits
        np_mask = kinds == KIND_NOTPRESENT
        garbage = r.integers(0, 1 << 63, k, dtype=np.int64).astype(np.uint64) << np.uint64(1)
        ent = np.where(np_mask, np.where(r.random(k) < 0.5, garbage, ent & ~np.uint64(P)), ent)
        self.stats["not_present"] += int(np_mask.sum())
        # leaves
        leaf_mask = kinds == KIND_LEAF
        if level == 1:
            pat = np.where(r.random(k) < 0.3, np.uint64(PS), np.uint64(0))     # bit 7 = PAT in a PTE
            ent = np.where(leaf_mask, ent | pat | self._random_pa(k, 12), ent)
        elif level in (2, 3):
            pat = np.where(r.random(k) < 0.3, np.uint64(1 << 12), np.uint64(0))  # PAT of a large leaf
            ent = np.where(leaf_mask, ent | np.uint64(PS) | pat | self._random_pa(k, shift), ent)
        key = {1: "leaf_4k", 2: "leaf_2m", 3: "leaf_1g"}.get(level)
        if key:
            self.stats[key] += int(leaf_mask.sum())
        # tables: allocate (or share / dangle) the children first: allocation may move the pool
        children = []
        for j in np.nonzero(kinds == KIND_TABLE)[0]:
            u = r.random()
            same = self.tables_by_level[level - 1]
            if level == 4 and u < 0.1:
                child, new = pfn, False                       # self-reference (recursive mapping)
                self.stats["self_ref"] += 1
            elif u < self.p_dangling or self.stats["tables"] >= self.max_tables and not same:
                child, new = self._fresh_pfn(), False         # unbacked: reads as zeros
                self.stats["dangling"] += 1
            elif same and (u < self.p_dangling + self.p_share or self.stats["tables"] >= self.max_tables):
                child, new = int(r.choice(same)), False       # shared with another parent
                self.stats["shared"] += 1
            else:
                child, new = self._new_table(level - 1), True
            ent[j] |= np.uint64(child << 12)
            children.append((int(idx[j]), child, new))
        # reserved-bit violations in present entries
        present = (ent & np.uint64(P)) != 0
        for j in np.nonzero(present & (r.random(k) < self.p_rsvd[level]))[0]:
            choices = ["hi"] if self.maxphyaddr < 52 else []
            if level == 4:
                choices.append("ps")
            if kinds[j] == KIND_LEAF and level in (2, 3):
                choices += ["low", "low"]
            if not choices:
                continue
            c = choices[int(r.integers(0, len(choices)))]
            if c == "hi":
                ent[j] |= np.uint64(1 << int(r.integers(self.maxphyaddr, 52)))
                self.stats["rsvd_hi"] += 1
            elif c == "ps":
                ent[j] |= np.uint64(PS)
                self.stats["rsvd_ps_pml4"] += 1
            else:
                hi_bit = 29 if level == 3 else 20
                ent[j] |= np.uint64(1 << int(r.integers(13, hi_bit + 1)))
                self.stats["rsvd_low"] += 1
        # write the table (fetch the view only now)
        tab = self.phys.table(pfn)
        tab[idx] = ent
        # bookkeeping: spans of every non-empty entry, leaves by size, children to fill
        for j in range(k):
            va = canonical(base | (int(idx[j]) << shift))
            self.spans.append((va, shift))
            if kinds[j] == KIND_LEAF:
                self.leaves[shift].append(va)
        for i, child, new in children:
            if new:
                queue.append((child, level - 1, base | (i << shift)))


def build_random_tree(rng: np.random.Generator, maxphyaddr: int = 40, phys_limit: Optional[int] = None,
                      windows: int = 4, max_tables: int = 400, p_rsvd: Optional[Dict[int, float]] = None,
                      p_share: float = 0.05, p_dangling: float = 0.03) -> RandomTree:
    """Build a random 4-level tree; see the module docstring.

    ``p_rsvd[level]`` is the chance that a present entry of that level (4 = PML4)
    gets a reserved-bit violation.
    """
    if p_rsvd is None:
        p_rsvd = {4: 0.1, 3: 0.06, 2: 0.05, 1: 0.02}
    if phys_limit is None:
        phys_limit = min(1 << 40, 1 << maxphyaddr)
    b = _Builder(rng, maxphyaddr, phys_limit, windows, max_tables, p_rsvd, p_share, p_dangling)
    root = b._new_table(4)
    queue = [(root, 4, 0)]
    while queue:
        pfn, level, base = queue.pop(0)
        b.fill(pfn, level, base, queue)
    leaves = {s: np.array(v, dtype=np.uint64) for s, v in b.leaves.items()}
    spans = np.array(b.spans, dtype=np.uint64).reshape(-1, 2)
    return RandomTree(b.phys, root << 12, maxphyaddr, b.phys.backed_pfns(), leaves, spans, b.stats)


def random_vas(rng: np.random.Generator, tree: RandomTree, n: int, mapped: float = 0.75,
               spans: float = 0.1, noncanonical: float = 0.05) -> np.ndarray:
    """``n`` addresses: ``mapped`` inside leaves, ``spans`` inside any non-empty entry (of a
    uniformly chosen level), ``noncanonical`` non-canonical, the rest uniformly random
    canonical (mostly unmapped)."""
    n_map = int(n * mapped)
    n_span = int(n * spans)
    n_nc = int(n * noncanonical)
    n_rand = n - n_map - n_span - n_nc
    parts = []
    # inside leaves: pick a size class uniformly, then a leaf, then an offset
    classes = [s for s, v in tree.leaves.items() if v.size]
    if classes and n_map:
        cls = rng.choice(classes, size=n_map)
        out = np.empty(n_map, np.uint64)
        for s in classes:
            m = cls == s
            base = rng.choice(tree.leaves[s], size=int(m.sum()))
            off = rng.integers(0, 1 << s, int(m.sum())).astype(np.uint64)
            edge = rng.random(int(m.sum()))
            off = np.where(edge < 0.05, np.uint64(0), off)
            off = np.where((edge >= 0.05) & (edge < 0.1), np.uint64((1 << s) - 1), off)
            out[m] = base | off
        parts.append(out)
    else:
        n_rand += n_map
    if tree.spans.shape[0] and n_span:
        # a level first (so the few PML4/PDPT entries get their share), then an entry
        shifts = np.unique(tree.spans[:, 1])
        lvl = rng.choice(shifts, size=n_span)
        rows = np.empty((n_span, 2), np.uint64)
        for s in shifts:
            m = lvl == s
            pool = tree.spans[tree.spans[:, 1] == s]
            rows[m] = pool[rng.integers(0, pool.shape[0], int(m.sum()))]
        off = (rng.integers(0, 1 << 62, n_span, dtype=np.int64).astype(np.uint64)
               & ((np.uint64(1) << rows[:, 1]) - np.uint64(1)))
        parts.append(rows[:, 0] | off)
    else:
        n_rand += n_span
    # random canonical
    lo = rng.integers(0, 1 << VA_BITS, n_rand, dtype=np.int64).astype(np.uint64)
    parts.append(np.where(lo & np.uint64(_SIGN), lo | np.uint64(_HIGH), lo))
    # non-canonical: random 64-bit values forced non-canonical, plus the edges
    nc = rng.integers(0, 1 << 63, n_nc, dtype=np.int64).astype(np.uint64) << np.uint64(1)
    nc |= rng.integers(0, 2, n_nc).astype(np.uint64)
    top = nc >> np.uint64(VA_BITS - 1)
    bad = (top == 0) | (top == np.uint64((1 << (65 - VA_BITS)) - 1))
    nc = np.where(bad, nc ^ np.uint64(1 << 50), nc)
    edges = np.array([1 << 47, (1 << 64) - (1 << 47) - 1, 1 << 63, (1 << 64) - 1 - (1 << 62)], np.uint64)
    nc[: min(n_nc, edges.size)] = edges[: min(n_nc, edges.size)]
    parts.append(nc)
    vas = np.concatenate(parts)
    rng.shuffle(vas)
    return vas
