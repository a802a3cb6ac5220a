"""emu's 4-level page walk against Unicorn (QEMU's x86 MMU) as an independent oracle.

What is compared (see also the module-level constants):

* **emu vs Unicorn** (``test_walk_matches_unicorn``): ``N_TREES`` random trees
  (``tests/pt_random.py``) x ``N_PER_TREE`` random addresses, each address in
  every configuration of ``CONFIGS`` (supervisor read / write with CR0.WP=1 and
  0 / fetch with and without CR4.SMEP, user read / write / fetch, several of
  them with EFER.NXE=0 or CR0.WP=0, and CR3 with PWT/PCD set).  Per address: success vs fault, the physical address on success,
  and the fault kind on failure: the full #PF error code (P, W, U, RSVD, I/D)
  or #GP for a non-canonical address.  Besides, emu's effective ``flags``
  (RW, US, NX ANDed/ORed over the levels) from the supervisor-read walk must
  predict which of the other accesses Unicorn allows.
* **Cython vs pure-Python reference** (``test_cython_matches_python_reference``):
  every output array (``pa``, ``shift``, ``leaf``, ``flags``, ``error``) on
  ``N_REF`` addresses, every access type, several MMU settings.

How Unicorn is driven.  Unicorn 2.1 does not wrap ``uc_vmem_translate`` in
Python; it is called through ctypes on the library the binding loaded
(``unicorn.unicorn_py3.unicorn.uclib``).  The CPU is put in long mode with
CR0.PG/PE/WP, CR4.PAE/PSE(/SMEP), EFER.LME/LMA/NXE and CR3; the table frames
are mapped at their *physical* addresses (``uc_mem_map_ptr`` on a private copy
of the frames: QEMU sets A/D bits as it walks).  ``uc_vmem_translate`` walks
with the MMU index of the current privilege level, so the user-mode instance
first drops to CPL 3 with a ``sysretq``.  It only reports success or failure;
the error code is read back from the CPU state: QEMU's walker leaves it in
``env->error_code`` and the faulting address in CR2 (not written for #GP), and
``uc_context_save`` copies that state out.  Their offsets in the context are
found by calibration on hand-built faults whose error codes are unambiguous
(``_calibrate``); if that fails, error codes are not compared against Unicorn
(only fault/no-fault and the physical address; the Cython/Python comparison
still covers the codes).

Unicorn's CPU reports MAXPHYADDR = 40 (CPUID 0x80000008, checked in
``test_unicorn_maxphyaddr``), so emu runs with ``maxphyaddr=40`` here and the
trees keep their table frames below 1 TiB.
"""
from __future__ import annotations

import ctypes
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pt_random  # noqa: E402

from emu.machine import engine as backend  # noqa: E402
from emu.machine.mmu import MMU, translate  # noqa: E402

MAXPHYADDR = 40
N_TREES = 8
N_PER_TREE = 25_000           # x N_TREES = 200,000 addresses, each in every config
N_REF = 60_000                # Cython vs Python reference (>= 20,000)
SEED = 0x5EED_0F_0E

# access bits of emu.machine.mmu.translate
ACC_WRITE, ACC_USER, ACC_FETCH = 1, 2, 4
PF_P, PF_W, PF_U, PF_RSVD, PF_ID = 1, 2, 4, 8, 16
FAULT_GP = -2


@dataclass(frozen=True)
class Config:
    name: str
    access: int        # emu access bits (ACC_USER selects the CPL 3 Unicorn instance)
    wp: bool = True
    smep: bool = False
    nxe: bool = True
    cr3_bits: int = 0  # ignored low CR3 bits (PWT, PCD) ORed in

    @property
    def user(self) -> bool:
        return bool(self.access & ACC_USER)


CONFIGS = [
    Config("supervisor-read", 0),
    Config("supervisor-write-wp1", ACC_WRITE),
    Config("supervisor-write-wp0", ACC_WRITE, wp=False),
    Config("supervisor-fetch", ACC_FETCH),
    Config("supervisor-fetch-smep", ACC_FETCH, smep=True),
    Config("user-read", ACC_USER),
    Config("user-write", ACC_USER | ACC_WRITE),
    Config("user-fetch", ACC_USER | ACC_FETCH),
    Config("user-write-wp0", ACC_USER | ACC_WRITE, wp=False),
    Config("supervisor-read-nxe0", 0, nxe=False),
    Config("supervisor-write-nxe0", ACC_WRITE, nxe=False),
    Config("user-fetch-nxe0", ACC_USER | ACC_FETCH, nxe=False),
    Config("supervisor-fetch-nxe0-smep", ACC_FETCH, smep=True, nxe=False),
    Config("user-fetch-nxe0-smep", ACC_USER | ACC_FETCH, smep=True, nxe=False),
    Config("supervisor-read-cr3-pwt-pcd", 0, cr3_bits=0x18),
]


def _emu(tree: pt_random.RandomTree, cfg: Config, vas: np.ndarray):
    mmu = MMU(tree.cr3 | cfg.cr3_bits, levels=4, maxphyaddr=MAXPHYADDR, nxe=cfg.nxe, wp=cfg.wp, smep=cfg.smep)
    return translate(tree.phys, mmu, vas, cfg.access)


# ---------------------------------------------------------------------------
# The Unicorn side
# ---------------------------------------------------------------------------
EFER, STAR = 0xC0000080, 0xC0000081
EFER_SCE, EFER_LME, EFER_LMA, EFER_NXE = 1 << 0, 1 << 8, 1 << 10, 1 << 11
CR0_PE, CR0_ET, CR0_NE, CR0_WP, CR0_PG = 1 << 0, 1 << 4, 1 << 5, 1 << 16, 1 << 31
CR4_PSE, CR4_PAE, CR4_SMEP = 1 << 4, 1 << 5, 1 << 20
UC_PROT_READ, UC_PROT_WRITE, UC_PROT_EXEC = 1, 2, 4


def _uc_modules():
    uc = pytest.importorskip("unicorn")
    x86 = pytest.importorskip("unicorn.x86_const")
    try:
        from unicorn.unicorn_py3 import unicorn as binding
        lib = binding.uclib
    except ImportError:  # pragma: no cover - 2.0.x layout
        from unicorn import unicorn as binding
        lib = binding._uc
    # a private handle on the same library: its prototypes stay the binding's business
    lib = ctypes.CDLL(lib._name)
    if not hasattr(lib, "uc_vmem_translate"):
        pytest.skip("libunicorn has no uc_vmem_translate (Unicorn < 2.1)")
    lib.uc_vmem_translate.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int,
                                      ctypes.POINTER(ctypes.c_uint64)]
    lib.uc_vmem_translate.restype = ctypes.c_int
    lib.uc_context_save.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.uc_context_save.restype = ctypes.c_int
    return uc, x86, lib


class UnicornMMU:
    """One Unicorn x86-64 CPU at CPL 0 or 3 whose physical memory holds a tree's frames."""

    CODE = 0x1000   # scratch code page for the sysretq (unmapped before the tables go in)

    def __init__(self, user: bool, offsets: Optional[Tuple[int, int]] = None) -> None:
        self.uc_mod, self.x86, self.lib = _uc_modules()
        U, X = self.uc_mod, self.x86
        self.uc = U.Uc(U.UC_ARCH_X86, U.UC_MODE_64)
        self.user = user
        if user:
            # sysretq: CS <- STAR[63:48]+16 | 3, SS <- STAR[63:48]+8 | 3: CPL 3, no GDT needed
            self.uc.mem_map(self.CODE, 0x2000)
            self.uc.mem_write(self.CODE, b"\x48\x0f\x07")
            self.uc.reg_write(X.UC_X86_REG_MSR, (EFER, EFER_LME | EFER_LMA | EFER_SCE))
            self.uc.reg_write(X.UC_X86_REG_MSR, (STAR, 0x10 << 48))
            self.uc.reg_write(X.UC_X86_REG_RCX, self.CODE + 0x1000)
            self.uc.reg_write(X.UC_X86_REG_R11, 0x2)
            self.uc.emu_start(self.CODE, self.CODE + 0x1000)
            self.uc.mem_unmap(self.CODE, 0x2000)
            assert self.uc.reg_read(X.UC_X86_REG_CS) & 3 == 3
            assert self.uc.reg_read(X.UC_X86_REG_SS) & 3 == 3
        self.ctx = self.uc.context_save()
        self.ctx_addr = ctypes.cast(self.ctx.context, ctypes.c_void_p).value
        self.offsets = offsets
        self._buffers: List[np.ndarray] = []

    # -- memory and registers ---------------------------------------------
    def map_frames(self, pfns: np.ndarray, frames: np.ndarray) -> None:
        buf = np.ascontiguousarray(frames, dtype=np.uint64).copy()
        self._buffers.append(buf)
        U = self.uc_mod
        for i, pfn in enumerate(pfns.tolist()):
            self.uc.mem_map_ptr(int(pfn) << 12, 0x1000, U.UC_PROT_ALL, buf.ctypes.data + i * 0x1000)

    def configure(self, cr3: int, wp: bool = True, smep: bool = False, nxe: bool = True) -> None:
        X = self.x86
        efer = EFER_LME | EFER_LMA | EFER_SCE | (EFER_NXE if nxe else 0)
        self.uc.reg_write(X.UC_X86_REG_MSR, (EFER, efer))
        self.uc.reg_write(X.UC_X86_REG_CR4, CR4_PAE | CR4_PSE | (CR4_SMEP if smep else 0))
        self.uc.reg_write(X.UC_X86_REG_CR0, CR0_PG | CR0_PE | CR0_ET | CR0_NE | (CR0_WP if wp else 0))
        self.uc.reg_write(X.UC_X86_REG_CR3, cr3)   # also flushes QEMU's TLB
        assert self.uc.reg_read(X.UC_X86_REG_MSR, EFER) & EFER_LMA
        cs = self.uc.reg_read(X.UC_X86_REG_CS)
        assert (cs & 3 == 3) == self.user

    # -- translation ------------------------------------------------------
    def snapshot(self) -> bytes:
        self.lib.uc_context_save(self.uc._uch, self.ctx_addr)
        return ctypes.string_at(self.ctx_addr, self.ctx.size)

    def translate(self, vas: np.ndarray, prot: int) -> Tuple[np.ndarray, np.ndarray]:
        """``(pa, err)``: err -1 ok, -2 #GP, the #PF error code, or -3 (fault, code unknown)."""
        n = vas.shape[0]
        pa = np.zeros(n, np.uint64)
        err = np.full(n, -1, np.int32)
        f = self.lib.uc_vmem_translate
        save = self.lib.uc_context_save
        h = self.uc._uch
        ctxp = self.ctx_addr
        out = ctypes.c_uint64()
        ref = ctypes.byref(out)
        if self.offsets is not None:
            ec = ctypes.c_int32.from_address(ctxp + self.offsets[0])
            cr2 = ctypes.c_uint64.from_address(ctxp + self.offsets[1])
        pa_l = [0] * n
        err_l = [-1] * n
        for i, va in enumerate(vas.tolist()):
            if f(h, va, prot, ref) == 0:
                pa_l[i] = out.value
            elif self.offsets is None:
                err_l[i] = -3
            else:
                save(h, ctxp)
                # #PF writes CR2; #GP (non-canonical) does not, and a #PF never has a
                # non-canonical CR2, so CR2 == va exactly when the fault is a #PF.
                err_l[i] = ec.value if cr2.value == va else FAULT_GP
        pa[:] = pa_l
        err[:] = err_l
        return pa, err


def _prot(cfg: Config) -> int:
    if cfg.access & ACC_FETCH:
        return UC_PROT_EXEC
    return UC_PROT_WRITE if cfg.access & ACC_WRITE else UC_PROT_READ


_CALIBRATION: Dict[str, object] = {}


def _calibrate() -> Optional[Tuple[int, int]]:
    """Find where ``uc_context_save`` puts env->error_code and CR2.

    Hand-built faults with textbook error codes; the error-code offset is the
    unique 4-byte slot holding the expected code after every one of them, the
    CR2 offset the unique 8-byte slot holding each faulting address.
    """
    if "offsets" in _CALIBRATION:
        return _CALIBRATION["offsets"]  # type: ignore[return-value]
    pml4, pdpt, pd = 0x10000, 0x11000, 0x12000
    tables = {
        pml4: {0: pdpt | 0x7},
        pdpt: {0: 0x87,                                  # 1G RW user
               1: 0x40000000 | 0x85 | (1 << 63),         # 1G RO user NX
               2: 0x80000000 | 0x83,                     # 1G RW supervisor
               3: 0xC0000000 | 0x87 | (1 << 45),         # reserved bit 45 (MAXPHYADDR 40)
               4: pd | 0x7},
        pd: {0: 0x87 | (1 << 14)},                       # 2M leaf, reserved bit 14
    }
    pfns = np.array(sorted(t >> 12 for t in tables), np.uint64)
    frames = np.zeros((len(pfns), 512), np.uint64)
    for k, pfn in enumerate(pfns.tolist()):
        for i, e in tables[pfn << 12].items():
            frames[k, i] = e
    G = 1 << 30
    cases = {  # user?: [(va, prot, expected error code)]
        False: [(5 * G + 0x100, UC_PROT_READ, 0), (5 * G + 0x2000, UC_PROT_WRITE, PF_W),
                (G + 0x3000, UC_PROT_WRITE, PF_P | PF_W), (G + 0x4000, UC_PROT_EXEC, PF_P | PF_ID),
                (6 * G + 0x5000, UC_PROT_EXEC, PF_ID), (3 * G + 0x6000, UC_PROT_READ, PF_P | PF_RSVD),
                (4 * G + 0x7000, UC_PROT_WRITE, PF_P | PF_W | PF_RSVD)],
        True: [(2 * G + 0x8000, UC_PROT_READ, PF_P | PF_U), (G + 0x9000, UC_PROT_WRITE, PF_P | PF_W | PF_U),
               (7 * G + 0xA000, UC_PROT_READ, PF_U), (G + 0xB000, UC_PROT_EXEC, PF_P | PF_U | PF_ID)],
    }
    snaps, codes, addrs = [], [], []
    for user, lst in cases.items():
        m = UnicornMMU(user)
        m.map_frames(pfns, frames)
        m.configure(pml4)
        pa = ctypes.c_uint64()
        for va, prot, code in lst:
            if m.lib.uc_vmem_translate(m.uc._uch, va, prot, ctypes.byref(pa)) == 0:
                _CALIBRATION["offsets"] = None
                _CALIBRATION["why"] = f"translation of {va:#x} unexpectedly succeeded"
                return None
            snaps.append(m.snapshot())
            codes.append(code)
            addrs.append(va)
    size = min(len(s) for s in snaps)
    s32 = np.array([np.frombuffer(s[: size - size % 4], np.int32) for s in snaps])
    ec = np.nonzero((s32 == np.array(codes, np.int32)[:, None]).all(0))[0]
    cr2 = []
    for off in range(0, size - 7, 4):
        if all(struct.unpack_from("<Q", s, off)[0] == va for s, va in zip(snaps, addrs)):
            cr2.append(off)
    if len(ec) != 1 or len(cr2) != 1:
        _CALIBRATION["offsets"] = None
        _CALIBRATION["why"] = f"no unique error_code/CR2 slot (candidates {list(ec * 4)}, {cr2})"
        return None
    _CALIBRATION["offsets"] = (int(ec[0]) * 4, cr2[0])
    return _CALIBRATION["offsets"]  # type: ignore[return-value]


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------
def test_unicorn_maxphyaddr():
    """Unicorn's CPU reports MAXPHYADDR 40 / 48 linear bits: the setting emu uses here."""
    U, X, _ = _uc_modules()
    uc = U.Uc(U.UC_ARCH_X86, U.UC_MODE_64)
    uc.mem_map(0x1000, 0x1000)
    uc.mem_write(0x1000, b"\x0f\xa2")  # cpuid
    uc.reg_write(X.UC_X86_REG_RAX, 0x80000008)
    uc.emu_start(0x1000, 0x1002)
    eax = uc.reg_read(X.UC_X86_REG_RAX)
    assert eax & 0xFF == MAXPHYADDR
    assert (eax >> 8) & 0xFF == 48


def test_unicorn_error_code_probe():
    """The error code and CR2 can be read back from Unicorn after a failed translation."""
    _uc_modules()
    if _calibrate() is None:
        pytest.skip(f"cannot read #PF error codes from Unicorn: {_CALIBRATION.get('why')}")


def _describe(tree, cfg, va, e_pa, e_err, u_pa, u_err) -> str:
    return (f"[{cfg}] va={va:#018x}: emu pa={e_pa:#x} err={e_err}  unicorn pa={u_pa:#x} err={u_err}\n"
            f"  cr3={tree.cr3:#x}, entries on the path: {_path(tree, va)}")


def _path(tree, va: int) -> str:
    out, table = [], tree.cr3
    for lvl in (4, 3, 2, 1):
        shift = 12 + 9 * (lvl - 1)
        pa = table + (((va >> shift) & 0x1FF) << 3)
        e = tree.phys.read64(pa)
        out.append(f"L{lvl}[{(va >> shift) & 0x1FF}]@{pa:#x}={e:#018x}")
        if not e & 1 or (lvl in (2, 3) and e & 0x80):
            break
        table = e & ((1 << MAXPHYADDR) - 1) & ~0xFFF
    return " ".join(out)


def _trees(n_trees: int, n_per_tree: int, seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(n_trees):
        tree = pt_random.build_random_tree(rng, maxphyaddr=MAXPHYADDR)
        yield tree, pt_random.random_vas(rng, tree, n_per_tree)


def _compare(tree, vas, offsets, emu_walk=_emu, counts=None) -> List[str]:
    """Walk ``vas`` in every config with emu and Unicorn; return the disagreements."""
    mismatches: List[str] = []
    pfns = tree.table_pfns
    frames = np.stack([tree.phys.table(int(p)) for p in pfns.tolist()])
    sup, usr = UnicornMMU(False, offsets), UnicornMMU(True, offsets)
    sup.map_frames(pfns, frames)
    usr.map_frames(pfns, frames)
    results = {}
    for cfg in CONFIGS:
        m = usr if cfg.user else sup
        m.configure(tree.cr3 | cfg.cr3_bits, wp=cfg.wp, smep=cfg.smep, nxe=cfg.nxe)
        r = emu_walk(tree, cfg, vas)
        u_pa, u_err = m.translate(vas, _prot(cfg))
        results[cfg.name] = (r, u_pa, u_err)
        e_err = r.error
        # without calibration only fault / no fault is known on the Unicorn side
        e_cmp = e_err if offsets is not None else np.where(e_err == -1, -1, -3)
        bad = np.nonzero((e_cmp != u_err) | ((e_err == -1) & (r.pa != u_pa)))[0]
        for i in bad[:5]:
            mismatches.append(_describe(tree, cfg, int(vas[i]), int(r.pa[i]), int(e_err[i]),
                                        int(u_pa[i]), int(u_err[i])))
        if bad.size > 5:
            mismatches.append(f"[{cfg.name}] ... {bad.size} mismatches in all")
        if counts is not None:
            c = counts.setdefault(cfg.name, {})
            for code, k in zip(*np.unique(e_err, return_counts=True)):
                key = "ok" if code == -1 else ("#GP" if code == -2 else f"#PF{int(code):#x}")
                c[key] = c.get(key, 0) + int(k)
    # emu's effective flags (supervisor read, NXE=1) predict what Unicorn allows elsewhere
    r0 = results["supervisor-read"][0]
    ok0 = r0.error == -1
    rw = (r0.flags & np.uint64(2)) != 0
    us = (r0.flags & np.uint64(4)) != 0
    nx = (r0.flags >> np.uint64(63)) != 0
    predicted = {
        "supervisor-write-wp1": rw, "supervisor-write-wp0": np.ones_like(rw),
        "supervisor-fetch": ~nx, "supervisor-fetch-smep": ~nx & ~us,
        "user-read": us, "user-write": us & rw, "user-fetch": us & ~nx,
    }
    for name, pred in predicted.items():
        u_ok = results[name][2] == -1
        bad = np.nonzero(ok0 & (u_ok != pred))[0]
        for i in bad[:5]:
            mismatches.append(f"[{name}] emu flags {int(r0.flags[i]):#x} of va={int(vas[i]):#x} predict "
                              f"ok={bool(pred[i])}, unicorn ok={bool(u_ok[i])}")
    return mismatches


def test_walk_matches_unicorn():
    _uc_modules()
    offsets = _calibrate()
    walker = backend.select().name
    total = 0
    mismatches: List[str] = []
    counts: Dict[str, Dict[str, int]] = {}
    stats: Dict[str, int] = {}
    t0 = time.perf_counter()
    try:
        for t, (tree, vas) in enumerate(_trees(N_TREES, N_PER_TREE, SEED)):
            total += vas.size
            found = _compare(tree, vas, offsets, counts=counts)
            if found:
                mismatches.append(f"tree {t} of _trees({N_TREES}, {N_PER_TREE}, {SEED:#x}):")
                mismatches += found
            for k, v in tree.stats.items():
                stats[k] = stats.get(k, 0) + v
    finally:
        pass
    elapsed = time.perf_counter() - t0
    print(f"\nemu ({walker}) vs Unicorn: {total} addresses x {len(CONFIGS)} configs "
          f"in {elapsed:.1f} s, error codes {'compared' if offsets else 'NOT compared'}")
    print("  trees: " + " ".join(f"{k}={v}" for k, v in stats.items()))
    for name, c in counts.items():
        print(f"  {name:24s} " + " ".join(f"{k}={v}" for k, v in sorted(c.items())))
    assert total >= 100_000
    assert not mismatches, "emu and Unicorn disagree:\n" + "\n".join(mismatches[:60])
    # coverage: the trees hold every kind of entry, every config saw successes and faults,
    # and every kind of outcome appears
    for k in ("shared", "dangling", "self_ref", "leaf_4k", "leaf_2m", "leaf_1g", "not_present",
              "rsvd_hi", "rsvd_ps_pml4", "rsvd_low"):
        assert stats[k] > 0, f"no {k} entries in the random trees"
    for name, c in counts.items():
        assert c.get("ok", 0) > 1000 and sum(c.values()) - c.get("ok", 0) > 1000, name
    seen = set().union(*[set(c) for c in counts.values()])
    for must in ("#GP", "#PF0x0", "#PF0x9", "#PF0x3", "#PF0x5", "#PF0x7", "#PF0x11", "#PF0x15", "#PF0x1d"):
        assert must in seen, f"outcome {must} never exercised"


def test_unicorn_oracle_catches_wrong_walks():
    """The comparison has teeth: deliberately wrong walks disagree with Unicorn."""
    _uc_modules()
    offsets = _calibrate()
    tree, vas = next(_trees(1, 5_000, SEED + 2))

    def wrong_maxphyaddr(tree, cfg, vas):          # misses reserved bits 45:40
        return translate(tree.phys, MMU(tree.cr3, maxphyaddr=46, nxe=cfg.nxe, wp=cfg.wp, smep=cfg.smep),
                         vas, cfg.access)

    def ignores_wp(tree, cfg, vas):
        return translate(tree.phys, MMU(tree.cr3, maxphyaddr=MAXPHYADDR, nxe=cfg.nxe, wp=False,
                                        smep=cfg.smep), vas, cfg.access)

    def wrong_pa(tree, cfg, vas):
        r = _emu(tree, cfg, vas)
        r.pa[(r.shift == 21) & (r.error == -1)] ^= np.uint64(1 << 20)
        return r

    for bad_walk in (wrong_maxphyaddr, ignores_wp, wrong_pa):
        assert _compare(tree, vas, offsets, emu_walk=bad_walk), bad_walk.__name__
    assert not _compare(tree, vas, offsets)


MMU_VARIANTS = [
    dict(maxphyaddr=40, nxe=True, wp=True, smep=False),
    dict(maxphyaddr=46, nxe=True, wp=False, smep=True),
    dict(maxphyaddr=52, nxe=False, wp=True, smep=True),
]


def test_cython_matches_python_reference():
    if not backend.compiled_available():
        pytest.skip("emu._fast is not built")
    rng = np.random.default_rng(SEED + 1)
    checked = 0
    try:
        for k, variant in enumerate(MMU_VARIANTS):
            tree = pt_random.build_random_tree(rng, maxphyaddr=variant["maxphyaddr"],
                                               phys_limit=1 << 40)
            vas = pt_random.random_vas(rng, tree, N_REF // len(MMU_VARIANTS) + 1)
            mmu = MMU(tree.cr3 | (0x18 if k == 1 else 0), levels=4, **variant)
            for access in range(8):
                a = translate(tree.phys, mmu, vas, access, engine="cython")
                b = translate(tree.phys, mmu, vas, access, engine="python")
                for field in ("pa", "shift", "leaf", "flags", "error"):
                    x, y = getattr(a, field), getattr(b, field)
                    assert x.dtype == y.dtype, field
                    bad = np.nonzero(x != y)[0]
                    assert bad.size == 0, (
                        f"{variant} access={access} {field}: cython {x[bad[0]]!r} python {y[bad[0]]!r} "
                        f"at va={int(vas[bad[0]]):#x}")
            checked += vas.size
    finally:
        pass
    assert checked >= N_REF
