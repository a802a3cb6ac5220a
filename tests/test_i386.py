"""i386 (PAE and non-PAE): the walk against Unicorn, the table formats, init_32.c's
mapping, head_32's initial tables, find_low_pfn_range and the i686 boot-log replays.

Unicorn is driven as in ``test_walk_unicorn`` (``uc_vmem_translate`` through ctypes,
error code and CR2 read back from the saved context at the offsets that module
calibrates), here in ``UC_MODE_32``: CR0.PG/PE/WP, CR4.PAE/PSE/SMEP, EFER.NXE and
CR3; the user-mode instance drops to CPL 3 with ``sysexit``.  Unicorn's CPU reports
MAXPHYADDR 40 in 32-bit mode too (checked), which is what the walks use.
"""
from __future__ import annotations

import ctypes
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from emu.machine import engine as backend  # noqa: E402
from emu.kernel.arch.x86.kernel.e820 import E820Entry, E820Table  # noqa: E402
from emu.boot.emulate import emulate  # noqa: E402
from emu.kernel.params import BootParams  # noqa: E402
from emu.machine.phys import PhysMem  # noqa: E402
from emu.machine.cpu import CpuFeatures  # noqa: E402
from emu.machine.mmu import MMU, enumerate_tables, translate  # noqa: E402

MAXPHYADDR = 40
N_TREES = 4
N_PER_TREE = 25_000           # x N_TREES = 100,000 addresses per paging mode, each in every config
SEED = 0x1386

P, RW, US, PWT, PCD, A, D, PS, G = (1 << b for b in (0, 1, 2, 3, 4, 5, 6, 7, 8))
NX = 1 << 63
ACC_WRITE, ACC_USER, ACC_FETCH = 1, 2, 4


# ---------------------------------------------------------------------------
# random 32-bit trees
# ---------------------------------------------------------------------------
@dataclass
class Tree32:
    phys: PhysMem
    cr3: int
    pae: bool
    pfns: np.ndarray
    leaves: Dict[int, List[int]]
    spans: List[tuple]
    stats: Dict[str, int]


def build_tree32(rng: np.random.Generator, pae: bool, max_tables: int = 120) -> Tree32:
    """A random PAE or 32-bit-paging tree: empty / not-present-with-garbage / table /
    leaf entries at every level, random RW/US/PWT/PCD/A/D/G/AVL/PAT (and NX for PAE),
    shared and dangling (unbacked) tables, reserved-bit violations (PAE: bits 62:M,
    20:13 of a 2M leaf; non-PAE: bit 21 of a 4M PDE), PSE-36 high bits in 4M leaves.
    Table frames stay below 4 GiB (CR3 and non-PAE entries are 32 bits; PAE tables
    below 4 GiB keep the Unicorn mapping small)."""
    phys = PhysMem(1 << 32)
    used = set()
    stats = {k: 0 for k in ("tables", "shared", "dangling", "leaf_4k", "leaf_large", "not_present",
                            "rsvd", "pse36")}
    leaves: Dict[int, List[int]] = {12: [], 21: [], 22: []}
    spans: List[tuple] = []
    windows = rng.choice(4, size=2, replace=False)

    def fresh() -> int:
        while True:
            pfn = int(rng.choice(windows)) * (1 << 18) + int(rng.integers(1, 1 << 18))
            if pfn not in used:
                used.add(pfn)
                return pfn

    def new_table() -> int:
        p = fresh()
        phys.frame(p)
        stats["tables"] += 1
        return p

    def bits(n: int, pae_: bool) -> np.ndarray:
        e = np.full(n, P, np.uint64)
        e |= np.where(rng.random(n) < 0.85, RW, 0).astype(np.uint64)
        e |= np.where(rng.random(n) < 0.75, US, 0).astype(np.uint64)
        for b in (PWT, PCD, A, D, G):
            e |= np.where(rng.random(n) < 0.5, b, 0).astype(np.uint64)
        e |= rng.integers(0, 8, n).astype(np.uint64) << np.uint64(9)
        if pae_:
            e |= np.where(rng.random(n) < 0.2, np.uint64(NX), np.uint64(0))
        return e

    tables_by_level: Dict[int, List[int]] = {1: [], 2: []}
    queue = []
    if pae:
        # PDPT: 4 entries, 32-byte aligned; present ones carry only P, PWT, PCD, AVL (+address)
        pdpt_pfn = new_table()
        cr3 = (pdpt_pfn << 12) | (int(rng.integers(0, 128)) << 5)
        base = cr3 & 0xFFFFFFE0
        for i in range(4):
            u = rng.random()
            if u < 0.15:
                v = 0
            elif u < 0.3:
                v = int(rng.integers(0, 1 << 62)) << 1                  # not present, garbage
                stats["not_present"] += 1
            else:
                child = new_table()
                tables_by_level[2].append(child)
                v = (child << 12) | P | (PWT if rng.random() < 0.3 else 0) | (PCD if rng.random() < 0.3 else 0) \
                    | (int(rng.integers(0, 8)) << 9)
                queue.append((child, 2, i << 30))
            spans.append((i << 30, 30))
            phys.write64(base + 8 * i, v)
    else:
        pd = new_table()
        cr3 = (pd << 12) | (0x18 if rng.random() < 0.3 else 0)
        queue.append((pd, 2, 0))
    nent = 512 if pae else 1024
    while queue:
        pfn, level, vbase = queue.pop(0)
        shift = (21 if level == 2 else 12) if pae else (22 if level == 2 else 12)
        k = int(rng.integers(16, 60 if level == 2 else 200))
        idx = np.sort(rng.choice(nent, size=k, replace=False))
        if level == 2:
            kinds = rng.choice(3, size=k, p=(0.2, 0.4, 0.4))     # 0 not present, 1 table, 2 large leaf
        else:
            kinds = rng.choice([0, 2], size=k, p=(0.15, 0.85))
        ent = bits(k, pae)
        for j in range(k):
            kind = int(kinds[j])
            va = vbase | (int(idx[j]) << shift)
            e = int(ent[j])
            if kind == 0:
                e = (int(rng.integers(0, 1 << 62)) << 1) if rng.random() < 0.5 else e & ~P
                if not pae:
                    e &= 0xFFFFFFFE
                stats["not_present"] += 1
            elif kind == 1:
                same = tables_by_level[1]
                u = rng.random()
                if u < 0.08 or (stats["tables"] >= max_tables and not same):
                    child = fresh()
                    stats["dangling"] += 1
                elif same and (u < 0.14 or stats["tables"] >= max_tables):
                    child = int(rng.choice(same))
                    stats["shared"] += 1
                else:
                    child = new_table()
                    tables_by_level[1].append(child)
                    queue.append((child, 1, va))
                e |= child << 12
                if not pae and rng.random() < 0.3:
                    e |= PS           # a PS table pointer: a 4M leaf with CR4.PSE, a table without
                    stats["leaf_large"] += 1
                    leaves[22].append(va)
            else:
                if level == 2:
                    e |= PS | (int(rng.random() < 0.3) << 12)
                    if pae:
                        e |= int(rng.integers(0, 1 << (MAXPHYADDR - 21))) << 21
                    else:
                        e |= int(rng.integers(0, 1 << 10)) << 22
                        if rng.random() < 0.3:
                            e |= int(rng.integers(1, 256)) << 13     # PSE-36: PA bits 39:32
                            stats["pse36"] += 1
                    leaves[21 if pae else 22].append(va)
                    stats["leaf_large"] += 1
                else:
                    e |= (int(rng.random() < 0.3) << 7)              # PAT
                    e |= int(rng.integers(0, 1 << ((MAXPHYADDR if pae else 32) - 12))) << 12
                    leaves[12].append(va)
                    stats["leaf_4k"] += 1
                if rng.random() < 0.05:
                    if pae:
                        e |= 1 << int(rng.integers(MAXPHYADDR, 63)) if rng.random() < 0.5 or level == 1 \
                            else 1 << int(rng.integers(13, 21))
                    else:
                        e |= 1 << 21
                    stats["rsvd"] += 1
            spans.append((va, shift))
            if pae:
                phys.table(pfn)[int(idx[j])] = e
            else:
                phys.table32(pfn)[int(idx[j])] = e & 0xFFFFFFFF
    return Tree32(phys, cr3, pae, phys.backed_pfns(), leaves, spans, stats)


def random_vas32(rng: np.random.Generator, t: Tree32, n: int) -> np.ndarray:
    """Mostly inside leaves, some inside any entry's span, the rest uniform 32-bit."""
    parts = []
    n_leaf, n_span = int(n * 0.7), int(n * 0.15)
    cls = [s for s, v in t.leaves.items() if v]
    pick = rng.choice(cls, size=n_leaf)
    out = np.empty(n_leaf, np.uint64)
    for s in cls:
        m = pick == s
        base = rng.choice(np.array(t.leaves[s], np.uint64), size=int(m.sum()))
        off = rng.integers(0, 1 << s, int(m.sum())).astype(np.uint64)
        out[m] = base | off
    parts.append(out)
    sp = np.array(t.spans, np.uint64)
    rows = sp[rng.integers(0, sp.shape[0], n_span)]
    parts.append(rows[:, 0] | (rng.integers(0, 1 << 30, n_span).astype(np.uint64)
                               & ((np.uint64(1) << rows[:, 1]) - np.uint64(1))))
    parts.append(rng.integers(0, 1 << 32, n - n_leaf - n_span, dtype=np.int64).astype(np.uint64))
    v = np.concatenate(parts) & np.uint64(0xFFFFFFFF)
    rng.shuffle(v)
    return v


# ---------------------------------------------------------------------------
# Unicorn in 32-bit mode
# ---------------------------------------------------------------------------
EFER = 0xC0000080
EFER_NXE = 1 << 11
CR0_PE, CR0_ET, CR0_NE, CR0_WP, CR0_PG = 1 << 0, 1 << 4, 1 << 5, 1 << 16, 1 << 31
CR4_PSE, CR4_PAE, CR4_SMEP = 1 << 4, 1 << 5, 1 << 20


def _twu():
    import test_walk_unicorn as twu
    return twu


class Unicorn32:
    CODE = 0x1000

    def __init__(self, user: bool, offsets) -> None:
        twu = _twu()
        self.U, self.X, self.lib = twu._uc_modules()
        U, X = self.U, self.X
        self.uc = U.Uc(U.UC_ARCH_X86, U.UC_MODE_32)
        self.user = user
        if user:
            # sysexit: CS <- SYSENTER_CS+16 | 3, SS <- +24 | 3, EIP <- EDX, ESP <- ECX (no GDT read)
            self.uc.mem_map(self.CODE, 0x2000)
            self.uc.mem_write(self.CODE, b"\x0f\x35")
            self.uc.reg_write(X.UC_X86_REG_MSR, (0x174, 0x10))
            self.uc.reg_write(X.UC_X86_REG_EDX, self.CODE + 0x1000)
            self.uc.reg_write(X.UC_X86_REG_ECX, self.CODE + 0x1800)
            self.uc.emu_start(self.CODE, self.CODE + 0x1000)
            self.uc.mem_unmap(self.CODE, 0x2000)
            assert self.uc.reg_read(X.UC_X86_REG_CS) & 3 == 3
        self.ctx = self.uc.context_save()
        self.ctx_addr = ctypes.cast(self.ctx.context, ctypes.c_void_p).value
        self.offsets = offsets
        self.bufs = []

    def map_frames(self, t: Tree32) -> None:
        pfns = t.pfns
        frames = np.stack([t.phys.table(int(p)) for p in pfns.tolist()]).copy()
        self.bufs.append(frames)
        for i, pfn in enumerate(pfns.tolist()):
            self.uc.mem_map_ptr(int(pfn) << 12, 0x1000, self.U.UC_PROT_ALL, frames.ctypes.data + i * 0x1000)

    def configure(self, cr3: int, pae: bool, pse: bool, nxe: bool, wp: bool, smep: bool) -> None:
        X = self.X
        self.uc.reg_write(X.UC_X86_REG_MSR, (EFER, EFER_NXE if nxe else 0))
        self.uc.reg_write(X.UC_X86_REG_CR4, (CR4_PAE if pae else 0) | (CR4_PSE if pse else 0)
                          | (CR4_SMEP if smep else 0))
        self.uc.reg_write(X.UC_X86_REG_CR0, CR0_PG | CR0_PE | CR0_ET | CR0_NE | (CR0_WP if wp else 0))
        self.uc.reg_write(X.UC_X86_REG_CR3, cr3)

    def translate(self, vas: np.ndarray, prot: int):
        n = vas.shape[0]
        f, save, h, ctxp = self.lib.uc_vmem_translate, self.lib.uc_context_save, self.uc._uch, self.ctx_addr
        out = ctypes.c_uint64()
        ref = ctypes.byref(out)
        if self.offsets is not None:
            ec = ctypes.c_int32.from_address(ctxp + self.offsets[0])
            cr2 = ctypes.c_uint64.from_address(ctxp + self.offsets[1])
        pa_l, err_l = [0] * n, [-1] * n
        for i, va in enumerate(vas.tolist()):
            if f(h, va, prot, ref) == 0:
                pa_l[i] = out.value
            elif self.offsets is None:
                err_l[i] = -3
            else:
                save(h, ctxp)
                err_l[i] = ec.value if (cr2.value & 0xFFFFFFFF) == va else -4
        return np.array(pa_l, np.uint64), np.array(err_l, np.int32)


@dataclass(frozen=True)
class Cfg:
    name: str
    access: int
    wp: bool = True
    smep: bool = False
    nxe: bool = True
    pse: bool = True


CONFIGS = [
    Cfg("sup-read", 0), Cfg("sup-write-wp1", ACC_WRITE), Cfg("sup-write-wp0", ACC_WRITE, wp=False),
    Cfg("sup-fetch", ACC_FETCH), Cfg("sup-fetch-smep", ACC_FETCH, smep=True),
    Cfg("user-read", ACC_USER), Cfg("user-write", ACC_USER | ACC_WRITE), Cfg("user-fetch", ACC_USER | ACC_FETCH),
    Cfg("user-write-wp0", ACC_USER | ACC_WRITE, wp=False),
    Cfg("sup-read-nxe0", 0, nxe=False), Cfg("user-fetch-nxe0", ACC_USER | ACC_FETCH, nxe=False),
    Cfg("sup-read-nopse", 0, pse=False), Cfg("user-write-nopse", ACC_USER | ACC_WRITE, pse=False),
]


def _prot(c: Cfg) -> int:
    return 4 if c.access & ACC_FETCH else (2 if c.access & ACC_WRITE else 1)


def _compare32(t: Tree32, vas: np.ndarray, offsets, counts: Dict[str, int]) -> List[str]:
    bad_all: List[str] = []
    sup, usr = Unicorn32(False, offsets), Unicorn32(True, offsets)
    sup.map_frames(t)
    usr.map_frames(t)
    for c in CONFIGS:
        if t.pae and not c.pse:
            continue          # CR4.PSE does not matter with PAE
        m = usr if c.access & ACC_USER else sup
        m.configure(t.cr3, t.pae, c.pse, c.nxe, c.wp, c.smep)
        mmu = MMU(t.cr3, levels=3 if t.pae else 2, maxphyaddr=MAXPHYADDR, nxe=c.nxe, wp=c.wp, smep=c.smep,
                  pse=c.pse)
        r = translate(t.phys, mmu, vas, c.access)
        u_pa, u_err = m.translate(vas, _prot(c))
        e_err = r.error if offsets is not None else np.where(r.error == -1, -1, -3)
        bad = np.nonzero((e_err != u_err) | ((r.error == -1) & (r.pa != u_pa)))[0]
        for i in bad[:5]:
            bad_all.append(f"[{'pae' if t.pae else 'nopae'} {c.name}] va={int(vas[i]):#x} emu pa={int(r.pa[i]):#x} "
                           f"err={int(r.error[i])} unicorn pa={int(u_pa[i]):#x} err={int(u_err[i])}")
        for code, n in zip(*np.unique(r.error, return_counts=True)):
            key = "ok" if code == -1 else f"#PF{int(code):#x}"
            counts[key] = counts.get(key, 0) + int(n)
    return bad_all


@pytest.mark.parametrize("pae", [True, False], ids=["pae", "nonpae"])
def test_walk32_matches_unicorn(pae):
    twu = _twu()
    twu._uc_modules()
    offsets = twu._calibrate()
    U, X, _ = twu._uc_modules()
    uc = U.Uc(U.UC_ARCH_X86, U.UC_MODE_32)
    uc.mem_map(0x1000, 0x1000)
    uc.mem_write(0x1000, b"\x0f\xa2")
    uc.reg_write(X.UC_X86_REG_EAX, 0x80000008)
    uc.emu_start(0x1000, 0x1002)
    assert uc.reg_read(X.UC_X86_REG_EAX) & 0xFF == MAXPHYADDR
    rng = np.random.default_rng(SEED + pae)
    total, mism, counts, stats = 0, [], {}, {}
    t0 = time.perf_counter()
    for _ in range(N_TREES):
        t = build_tree32(rng, pae)
        vas = random_vas32(rng, t, N_PER_TREE)
        total += vas.size
        mism += _compare32(t, vas, offsets, counts)
        for k, v in t.stats.items():
            stats[k] = stats.get(k, 0) + v
    print(f"\n{'PAE' if pae else '32-bit'} paging: {total} addresses x configs vs Unicorn in "
          f"{time.perf_counter() - t0:.1f} s; error codes {'compared' if offsets else 'NOT compared'}; "
          + " ".join(f"{k}={v}" for k, v in sorted(counts.items())) + "; trees: "
          + " ".join(f"{k}={v}" for k, v in stats.items()))
    assert total >= 100_000
    assert not mism, "emu and Unicorn disagree:\n" + "\n".join(mism[:40])
    assert counts.get("ok", 0) > 10_000
    for must in ("#PF0x0", "#PF0x3", "#PF0x5", "#PF0x7", "#PF0x9", "#PF0x11") + (("#PF0x15",) if pae else ()):
        assert must in counts, must
    if pae:
        assert "#PF0x9" in counts and "#PF0x11" in counts    # reserved bits, NX fetch
    else:
        assert "#PF0x9" in counts and stats["pse36"] > 0
    for k in ("tables", "shared", "dangling", "leaf_4k", "leaf_large", "not_present", "rsvd"):
        assert stats[k] > 0, k


def test_walk32_cython_matches_reference():
    if not backend.compiled_available():
        pytest.skip("emu._fast is not built")
    rng = np.random.default_rng(SEED + 7)
    for pae in (True, False):
        t = build_tree32(rng, pae)
        vas = random_vas32(rng, t, 8000)
        for mp, nxe, pse in ((40, True, True), (36, False, False), (32, True, True), (52, True, True)):
            mmu = MMU(t.cr3, levels=3 if pae else 2, maxphyaddr=mp, nxe=nxe, smep=True, pse=pse)
            for access in range(8):
                a = translate(t.phys, mmu, vas, access, engine="cython")
                b = translate(t.phys, mmu, vas, access, engine="python")
                for f in ("pa", "shift", "leaf", "flags", "error"):
                    assert np.array_equal(getattr(a, f), getattr(b, f)), (pae, mp, access, f)


def test_pdpte_reserved_bits_refused():
    """PAE PDPTEs are loaded with CR3: reserved bits mean #GP at the MOV, so emu refuses the CR3."""
    phys = PhysMem(1 << 32)
    phys.frame(0x10)
    phys.write64(0x10000, 0x20000 | P | RW)      # RW is reserved in a PDPTE
    with pytest.raises(ValueError, match="PDPTE 0"):
        translate(phys, MMU(0x10000, levels=3, maxphyaddr=36), [0x1000])
    with pytest.raises(ValueError, match="32-bit"):
        translate(phys, MMU(0x10000, levels=2, maxphyaddr=32), [1 << 32])


# ---------------------------------------------------------------------------
# 4-byte entries, hand-built
# ---------------------------------------------------------------------------
def test_nonpae_entries_are_four_bytes():
    phys = PhysMem(1 << 32)
    pd, pt = 0x100, 0x101
    phys.frame(pd)
    phys.frame(pt)
    phys.table32(pd)[0] = (pt << 12) | 0x067
    phys.table32(pd)[1] = (pt << 12) | 0x063          # a second PDE in the *same* 8-byte word
    phys.table32(pd)[3] = 0x00C00000 | 0x1E3           # 4M leaf, GLOBAL
    phys.table32(pd)[4] = 0x01000000 | 0x0E3 | (0x15 << 13)  # PSE-36: PA bits 39:32 = 0x15
    phys.table32(pt)[0] = 0x00000163
    phys.table32(pt)[1] = 0xFFFFF003                  # odd slot: the high half of word 0
    mmu = MMU(pd << 12, levels=2, maxphyaddr=40)
    r = translate(phys, mmu, [0x0, 0x1abc, 0x400000 + 0x1234, 0xC00000 + 0x12345, 0x1000000 + 7, 0x2000])
    assert r.error.tolist() == [-1, -1, -1, -1, -1, 0]
    assert r.pa.tolist()[:5] == [0x0, 0xFFFFFabc, 0xFFFFF234, 0xC12345, 0x15_01000007]
    assert r.shift.tolist()[:5] == [12, 12, 12, 22, 22]
    assert r.leaf.tolist()[1] == 0xFFFFF003
    assert int(r.flags[2]) & 2 and not int(r.flags[2]) & 4      # PDE 1 has no US: user bit off
    # without CR4.PSE the 4M PDE is a table pointer
    r = translate(phys, MMU(pd << 12, levels=2, maxphyaddr=40, pse=False), [0xC00000])
    assert r.error.tolist() == [0]
    # with MAXPHYADDR 36, PSE-36 bits above it are reserved
    r = translate(phys, MMU(pd << 12, levels=2, maxphyaddr=36), [0x1000000, 0xC00000])
    assert r.error.tolist() == [9, -1]
    tree = enumerate_tables(phys, mmu)
    assert tree.leaves_4k == 4 and tree.leaves_2m == 2      # the PT is shared by PDEs 0 and 1


# ---------------------------------------------------------------------------
# the kernel side
# ---------------------------------------------------------------------------
def _e820(top: int) -> E820Table:
    return E820Table([E820Entry(0, 0x9F000, 1), E820Entry(0x9F000, 0x1000, 2), E820Entry(0xF0000, 0x10000, 2),
                      E820Entry(0x100000, top - 0x100000, 1), E820Entry(0xFEC00000, 0x1000, 2)])


def _run(pae: bool, top=0xDFE86000, profile="3.13", engine=None, **kw):
    p = BootParams(arch="i386", pae=pae, brk_base=kw.pop("brk_base", 0x1B88000), **kw)
    return emulate(_e820(top), profile, p, engine=engine)


@pytest.mark.parametrize("pae", [True, False])
def test_i386_mapping_pae_and_nonpae(pae):
    r = _run(pae, initrd=(0x35AF2000, 0x36D71000))
    k = r.kernel
    assert r.panic is None and r.verify.ok, r.verify.violations
    assert r.log[0] == "initial memory mapped: [mem 0x00000000-0x01ffffff]"
    assert "Using GB pages for direct mapping" not in r.log
    low = 0x37BFE000 if pae else 0x377FE000
    assert k.max_low_pfn == low >> 12
    tail = " [mem 0x37a00000-0x37bfdfff] page 4k" if pae else " [mem 0x37400000-0x377fdfff] page 4k"
    assert r.log[-2:] == [tail, "BRK [0x01b88000, 0x01b88fff] PGTABLE"]
    mmu = MMU(k.pgd_pfn << 12, levels=3 if pae else 2, maxphyaddr=36 if pae else 32, nxe=pae)
    po = 0xC0000000
    t = translate(k.phys, mmu, [po, po + 0x1000000, po + 0x20000000, po + low - 1, po + low])
    assert t.error.tolist()[:4] == [-1, -1, -1, -1] and t.error.tolist()[4] == 0
    assert t.pa.tolist()[:4] == [0, 0x1000000, 0x20000000, low - 1]
    assert t.shift.tolist() == [12, 21 if pae else 22, 21 if pae else 22, 12, 0]
    # kernel text executable, the rest NX (PAE only: non-PAE has no NX bit)
    nx = [(int(f) >> 63) & 1 for f in t.flags.tolist()[:4]]
    assert nx == ([1, 0, 1, 1] if pae else [0, 0, 0, 0])
    # every entry the kernel wrote has G (PGE) and never US
    assert all(int(f) & 0x100 and not int(f) & 4 for f in t.flags.tolist()[:4])


def test_nonpae_tables_hold_four_byte_entries():
    r = _run(False)
    k = r.kernel
    pd = k.phys.table32(k.pgd_pfn)
    # PDE for 0xC0400000 (pfn 0x400): a 4M leaf written as one 32-bit word
    e = int(pd[(0xC0400000 >> 22)])
    assert e & 0x80 and (e & 0xFFC00000) == 0x400000 and e & 0xFFF in (0x1E3, 0x1E3 & ~0x100)
    # the neighbour in the same 8-byte word is an independent entry
    raw = k.phys.table(k.pgd_pfn)
    w = int(raw[(0xC0400000 >> 22) // 2])
    assert w & 0xFFFFFFFF == int(pd[(0xC0400000 >> 22) & ~1]) and w >> 32 == int(pd[(0xC0400000 >> 22) | 1])
    # the head 4M [0, 4M) stays 4k (first PMD_SIZE rule)
    assert not int(pd[0xC0000000 >> 22]) & 0x80


def test_head32_initial_mapping():
    from emu.kernel.arch.x86.kernel.head_32 import initial_mapping_end, mapping_beyond_end
    assert mapping_beyond_end(True, 0xC0000000) == 516 << 12
    assert mapping_beyond_end(False, 0xC0000000) == 1 << 20
    assert initial_mapping_end(True, 0xC0000000, 0x1DFC000) == 0x2000000
    assert initial_mapping_end(True, 0xC0000000, 0x1DFC001) == 0x2200000
    assert initial_mapping_end(False, 0xC0000000, 0x2300000) == 0x2400000
    # a small machine: head_32 maps past max_low_pfn (H16: leftover PTE_IDENT_ATTR PTEs)
    r = _run(True, top=0x1600000, brk_base=0x1388000)
    assert r.panic is None and r.verify.ok, r.verify.violations
    assert r.log[0] == "initial memory mapped: [mem 0x00000000-0x017fffff]"
    assert r.kernel.max_low_pfn == 0x1600
    assert r.verify.checked["head32_leftover"] == 0x200      # [22M, 24M) still PTE_IDENT_ATTR


def test_find_low_pfn_range_and_highmem():
    r = _run(True, top=0x30000000, highmem=0x10000000)
    assert r.kernel.max_low_pfn == 0x20000
    r = _run(True, top=0x100000000 + 0x40000000, lowmem_limit=0x2FFFE000)
    assert r.kernel.max_low_pfn == 0x2FFFE and r.verify.ok
    # non-PAE: RAM above 4 GiB is not usable (MAX_ARCH_PFN 1 << 20)
    e = _e820(0xC0000000)
    e.entries.append(E820Entry(0x100000000, 0x40000000, 1))
    r2 = emulate(e, "3.13", BootParams(arch="i386", pae=False, brk_base=0x1B88000))
    assert r2.kernel.max_pfn <= 1 << 20


def test_no_pse_and_page_offset_1g():
    r = _run(False, cpu=CpuFeatures(pse=False, pge=True, gbpages=False, nx=False), page_offset_32=0x40000000,
             brk_base=0x593E000, top=0x10000000)
    assert r.panic is None and r.verify.ok, r.verify.violations
    assert all(not l.endswith("2M") for l in r.log)
    assert r.kernel.direct_pages_count[2] == 0


def test_kernel_mapping_cython_matches_reference():
    if not backend.compiled_available():
        pytest.skip("emu._fast is not built")
    for pae in (True, False):
        for kw in ({}, {"debug_pagealloc": True}, {"initrd": (0x30000000, 0x34000000)}):
            a = _run(pae, engine="cython", **kw)
            b = _run(pae, engine="python", **kw)
            assert a.log == b.log
            assert np.array_equal(a.kernel.phys.backed_pfns(), b.kernel.phys.backed_pfns())
            for p in a.kernel.phys.backed_pfns().tolist():
                assert np.array_equal(a.kernel.phys.table(p), b.kernel.phys.table(p)), (pae, kw, hex(p))


def test_kmap_copy_and_fixmap_tables():
    """page_table_range_init: a fixmap over three PMDs (one without a static page table)
    and kmap slots over two PMDs: alloc_low_pages(2) for the kmap copies first, then one
    page for the uncovered PMD."""
    r = _run(False, fixmap_bottom=0xFF400000 + 0x2000, kmap_range=(0xFF900000, 0xFFD00000))
    assert r.panic is None and r.verify.ok, r.verify.violations
    brk = [l for l in r.log if l.startswith("BRK")]
    assert brk[-2:] == ["BRK [0x01b89000, 0x01b8afff] PGTABLE", "BRK [0x01b8b000, 0x01b8bfff] PGTABLE"]


# ---------------------------------------------------------------------------
# replay of the corpus' i686 logs
# ---------------------------------------------------------------------------
FORMAT_A_PASS = [
    "3.10.0-rc6-00397-gee17608_i686_id34821109701.log",
    "3.10.98-poky-edison+_i686_id8495680862.log",
    "3.12.0-rc1-00010-g5fbc0a6_i686_id46868116864.log",
    "3.13.0-02621-g1738cc0_i686_id45509182612.log",
    "3.13.0-24-generic_i686_id56786116951.log",
    "3.13.0-24-generic_i686_id57036795401.log",
    "3.16.0-57-generic_i686_id57157320185.log",
]


@pytest.mark.parametrize("name", FORMAT_A_PASS)
def test_replay_i686_format_a(corpus, name):
    from emu.tools.replay import replay_file
    r = replay_file(corpus / name)
    assert r.passed, r.line() + "\n" + r.diff_text()
    assert r.verify_ok


def test_replay_i686_debug_pagealloc_5_page_brk(corpus):
    """3.10-rc7 randconfig: CONFIG_DEBUG_PAGEALLOC (4k only) and a 5-page BRK buffer."""
    from emu.tools.replay import replay_file
    r = replay_file(corpus / "3.10.0-rc7-00925-g4c5c6fc_i686_id34295890651.log", profile="3.9",
                    debug_pagealloc=True)
    assert r.passed, r.line()


def test_i686_log_params(corpus):
    from emu.inputs.dmesg import load_boot_log
    from emu.boot.describe import layout_from_log
    log = load_boot_log(corpus / "3.10.0-rc7-00925-g4c5c6fc_i686_id34295890651.log")
    _, _, p, _ = layout_from_log(log)
    assert p.arch == "i386" and not p.pae and p.page_offset_32 == 0x40000000
    log = load_boot_log(corpus / "3.13.0-24-generic_i686_id56786116951.log")
    _, _, p, _ = layout_from_log(log)
    assert p.pae and p.lowmem_limit == 0x37BFE000 and p.cpu.nx and not p.cpu.gbpages


def test_unicorn32_oracle_has_teeth():
    """Deliberately wrong 32-bit walks disagree with Unicorn: PSE ignored, MAXPHYADDR too large."""
    twu = _twu()
    twu._uc_modules()
    offsets = twu._calibrate()
    rng = np.random.default_rng(SEED + 11)
    for pae, wrong in ((False, dict(pse=False)), (True, dict(maxphyaddr=52)), (False, dict(maxphyaddr=32))):
        t = build_tree32(rng, pae)
        vas = random_vas32(rng, t, 4000)
        m = Unicorn32(False, offsets)
        m.map_frames(t)
        m.configure(t.cr3, pae, True, True, True, False)
        kw = dict(maxphyaddr=MAXPHYADDR, pse=True)
        kw.update(wrong)
        r = translate(t.phys, MMU(t.cr3, levels=3 if pae else 2, **kw), vas)
        u_pa, u_err = m.translate(vas, 1)
        right = translate(t.phys, MMU(t.cr3, levels=3 if pae else 2, maxphyaddr=MAXPHYADDR), vas)
        assert np.array_equal(right.error, u_err) and np.array_equal(right.pa[right.error == -1],
                                                                      u_pa[right.error == -1])
        assert (r.error != u_err).any() or (r.pa != u_pa).any(), wrong


@pytest.mark.parametrize("name,override", [
    # config hypotheses a log cannot show: the boot-time fixmap reaching into the PMD below
    # the top one with no static page table in the top PMD (3.19), or CONFIG_HIGHMEM kmap
    # slots over two PMDs that both have static page tables (ROSA's i586 3.14)
    ("3.19.0-18-generic_i686_id57113470949.log",
     dict(fixmap_bottom=0xFFD00000, fixmap_static_pmds=[0xFFC00000])),
    ("3.14.44-nrj-desktop-2rosa-i586_i686_B3CC6B4BAD.log",
     dict(fixmap_bottom=0xFF900000, kmap_range=(0xFFA00000, 0xFFD00000))),
])
def test_replay_i686_fixmap_geometry(corpus, name, override):
    from emu.inputs.dmesg import load_boot_log
    from emu.tools.replay import replay
    log = load_boot_log(corpus / name)
    assert not replay(log).passed                      # the default geometry does not fit these builds
    r = replay(log, params_override=override)
    assert r.passed and r.verify_ok, r.line()


FORMAT_B = [
    "2.6.32-22-generic-pae_i686_id56855627904.log", "2.6.32-30-generic_i686_id57019838979.log",
    "3.0.0-16-generic-pae_i686_id56839148427.log", "3.5.0-10-generic_i686_id57099341041.log",
    "3.5.0-17-generic_i686_id57114712798.log", "3.5.0-23-generic_i686_id56867130762.log",
    "3.5.0-43-generic_i686_id56816324738.log", "3.6.0_i686_id32935914074.log", "3.7.5_i686_id14904653179.log",
    "3.8.0-31-generic_i686_id57091051083.log",
]


@pytest.mark.parametrize("name", FORMAT_B)
def test_replay_i686_format_b(corpus, name):
    """Pre-3.9 i686 logs through the pre-patch profiles (find_early_table_space)."""
    from emu.tools.replay import replay_file
    r = replay_file(corpus / name)
    assert r.passed and r.verify_ok is not False, r.line()


def test_native_pagetable_init_clears_head32_leftovers():
    """H16: head_32 mapped [22M, 24M) past max_low_pfn; native_pagetable_init clears those
    PTEs (one KERN_DEBUG line each) and stops at the first absent one; then paging_init
    takes the pkmap page table from BRK."""
    from emu.kernel.arch.x86.mm import init_32
    from emu.check import verify
    r = _run(True, top=0x1600000, brk_base=0x1388000)
    k = r.kernel
    n0 = len(k.log.records)
    init_32.initmem_init(k)
    init_32.native_pagetable_init(k)
    new = [t for _, t in k.log.records[n0:]]
    assert new[:2] == ["0MB HIGHMEM available.", "22MB LOWMEM available."]
    clearing = [t for t in new if t.startswith("clearing pte")]
    assert len(clearing) == 0x200
    pmd_pa = (k.pgd_pfn + 1) * 4096 + (0x1600000 >> 21) * 8          # initial_pg_pmd entry 11
    pte_pa = (0x1388000 - 12 * 4096) + 11 * 4096
    assert clearing[0] == ("clearing pte for ram above max_low_pfn: pfn: 1600 pmd: %08x pmd phys: %x pte: %08x "
                           "pte phys: %x" % (pmd_pa + 0xC0000000, pmd_pa, pte_pa + 0xC0000000, pte_pa))
    assert new[-1].startswith("BRK [") and new[-1].endswith("PGTABLE")
    rep = verify(k)
    assert rep.ok and rep.checked["head32_leftover"] == 0, rep.violations


# ---------------------------------------------------------------------------
# a build's image/BRK layout and fixmap geometry (Debian 6.1.0-50 686-pae / 686)
# ---------------------------------------------------------------------------
DEBIAN_61 = {
    # System.map (pa) and the fixmap of the config (NR_CPUS=32, KMAP_LOCAL, IO-APIC, GHES, MMCONFIG)
    True: dict(kernel_start=0x1000000, brk_base=0x1F1E000, head_brk_base=0x1F0B000, image_end=0x2135000,
               swapper_pg_dir_addr=0x1E98000, initial_pg_pmd_addr=0x1E94000,
               initial_pg_fixmap_addr=0x1E96000, bm_pte_addr=0x1E9C000),
    False: dict(kernel_start=0x1000000, brk_base=0x1EF0000, head_brk_base=0x1EE6000, image_end=0x200C000,
                swapper_pg_dir_addr=0x1E74000, initial_pg_fixmap_addr=0x1E73000, bm_pte_addr=0x1E77000),
}
DEBIAN_61_FIXMAP = dict(fixmap_bottom=0xFF9FF000, btmap_begin=0xFFA00000, kmap_range=(0xFFDBC000, 0xFFFBB000))


@pytest.mark.parametrize("pae", [True, False])
def test_build_layout_as_debian_61(pae):
    """What the oracle saw the real kernels build with 128 MiB (QEMU): head_32's tables from
    __brk_base, one foreign BRK page (DMI) before the page-table buffer, swapper_pg_dir and
    the static pages where System.map puts them, bm_pte in the FIX_BTMAP_BEGIN PMD with
    _PAGE_TABLE, initial_pg_fixmap in the top PMD.  PAE: the fixmap spans four PMDs, the
    kmap slots two (alloc_low_pages(2) for the copies, then a fresh page for 0xff800000 and
    one for 0xffc00000 that the copy orphans); non-PAE: two 4M PDEs, both static."""
    from emu.kernel.arch.x86.mm.init_32 import _pmd_slot, _read
    e820 = E820Table([E820Entry(0, 0x9FC00, 1), E820Entry(0x9FC00, 0x400, 2), E820Entry(0xF0000, 0x10000, 2),
                      E820Entry(0x100000, 0x7FE0000 - 0x100000, 1)])
    p = BootParams(arch="i386", pae=pae, cpu=CpuFeatures(nx=pae, gbpages=False), gbpages=False,
                   randomize_memory=False, x86_5level_config=False, **DEBIAN_61[pae], **DEBIAN_61_FIXMAP)
    r = emulate(e820, "6.1", p)
    k = r.kernel
    assert r.panic is None and r.verify.ok, r.verify.violations
    assert k.pgd_pfn << 12 == p.swapper_pg_dir_addr
    head = p.head_brk_base >> 12
    ent = {v: _read(k, *_pmd_slot(k, v, None)) for v in range(0xFF800000, 1 << 32, k.mode.pmd_size)}
    if pae:
        assert int(k.phys.table(k.pgd_pfn)[3]) == 0x1E94001
        assert int(k.phys.table(0x1E94)[0]) == (head << 12) | 0x063       # [0, 2M) stays 4k
        assert ent == {0xFF800000: 0x1F21067, 0xFFA00000: 0x1E9C067, 0xFFC00000: 0x1F1F067,
                       0xFFE00000: 0x1F20067}
        assert k.pgt_buf_end == 0x1F23
    else:
        assert int(k.phys.table32(k.pgd_pfn)[768]) == (head << 12) | 0x063
        assert ent == {0xFF800000: 0x1E77067, 0xFFC00000: 0x1E73063}
        assert k.pgt_buf_end == 0x1EF1
    assert k.max_pfn_mapped == 0x7FE0


def test_build_layout_params_checked():
    from emu.kernel.arch.x86.kernel.setup import SetupError
    base = dict(DEBIAN_61[True], **DEBIAN_61_FIXMAP)
    e820 = E820Table([E820Entry(0, 0x9F000, 1), E820Entry(0x100000, 0x7F00000, 1)])
    for bad in (dict(head_brk_base=0x1F10000),          # 18 head tables do not fit below pgt_buf
                dict(bm_pte_addr=0x1E9C800),            # not page aligned
                dict(swapper_pg_dir_addr=0x800000)):    # outside the image
        p = BootParams(arch="i386", pae=True, **dict(base, **bad))
        with pytest.raises(SetupError):
            emulate(e820.copy(), "6.1", p)
