"""Run emu on exactly what the real kernel had, and diff the results."""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from emu.kernel.arch.x86.kernel.e820 import E820Table
from emu.kernel.params import BootParams
from emu.kernel.arch.x86.pgtable_types import MASK_1G, MASK_2M, _PAGE_GLOBAL, _PAGE_NX
from emu.machine.cpu import CpuFeatures
from emu.kernel.profiles import get_profile
from emu.tools.oracle.qemu import Guest
from emu.tools.oracle.tables import Tree, emu_tree


@dataclass
class Comparison:
    layout: str
    identical: bool
    boot_seconds: float
    emu_seconds: float
    differences: List[dict] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    #: differences already present in the tables init_mem_mapping starts from
    initial_differences: List[dict] = field(default_factory=list)
    guest: Optional[Guest] = None
    params: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"layout": self.layout, "identical": self.identical,
                "boot_seconds": round(self.boot_seconds, 3), "emu_seconds": round(self.emu_seconds, 3),
                "differences": self.differences, "initial_differences": self.initial_differences,
                "notes": self.notes, "params": self.params,
                "stats": self.stats, "guest": self.guest.to_json() if self.guest else None}


def params_from_guest(g: Guest, profile) -> Tuple[E820Table, BootParams, List[str]]:
    """emu's inputs from what the kernel had at ``init_mem_mapping``."""
    notes = []
    psm = g.page_size_mask
    gb = bool(psm & MASK_1G)
    cpu = CpuFeatures(pse=bool(psm & MASK_2M), pge=bool(g.supported_pte_mask & _PAGE_GLOBAL),
                      gbpages=gb, nx=bool(g.supported_pte_mask & _PAGE_NX), la57=g.la57)
    pti = bool(g.supported_pte_mask & _PAGE_GLOBAL) and not g.default_kernel_pte_mask & _PAGE_GLOBAL
    nbuf = g.pgt_buf_top - g.pgt_buf_start
    randomize = None
    for r in (True, False):
        if profile.pgt_buf_count(r, True) == nbuf:
            randomize = r
            break
    if randomize is None and g.arch != "i386":
        notes.append(f"BRK page-table buffer of {nbuf} pages matches no configuration of profile {profile.name}")
    if g.arch == "i386":
        cpu = dataclasses.replace(cpu, gbpages=False, la57=False)
        # CONFIG_RANDOMIZE_MEMORY and CONFIG_X86_5LEVEL are 64-bit only: the BRK buffer of
        # an i386 kernel has INIT_PGD_PAGE_COUNT = 2 * 3 = 6 pages
        params = BootParams(arch="i386", pae=g.pae, cpu=cpu, gbpages=False, pti=pti,
                            randomize_memory=False, x86_5level_config=False,
                            kernel_start=g.kernel_start, brk_base=g.pgt_buf_start << 12, initrd=None,
                            reserves=list(g.memblock_reserved), movable_node=g.memblock_bottom_up)
        fields = [("page_offset_32", g.page_offset), ("image_end", g.image_end), ("init_end", g.init_end)]
        # where this build's static page tables and head_32's BRK tables lie (System.map)
        sp = g.static_pages
        fields += [("head_brk_base", sp.get("__brk_base")), ("swapper_pg_dir_addr", sp.get("swapper_pg_dir")),
                   ("initial_pg_pmd_addr", sp.get("initial_pg_pmd") if g.pae else None),
                   ("initial_pg_fixmap_addr", sp.get("initial_pg_fixmap")), ("bm_pte_addr", sp.get("bm_pte"))]
        # its fixmap geometry (config + slot_virt[0], see emu.tools.oracle.fixmap)
        fm = g.fixmap or {}
        fields += [(name, fm.get(name)) for name in ("fixmap_bottom", "btmap_begin", "kmap_range")]
        notes += [f"fixmap: {n}" for n in fm.get("notes", [])]
        if g.max_low_pfn and g.max_pfn > g.max_low_pfn:
            # MAXMEM of this build (its fixmap/vmalloc reserve): where lowmem ended
            fields.append(("lowmem_limit", g.max_low_pfn << 12))
        for name, value in fields:
            if hasattr(params, name) and value is not None:
                setattr(params, name, value)
        return E820Table(g.e820), params, notes
    params = BootParams(cpu=cpu, gbpages=bool(g.direct_gbpages), la57=g.la57, pti=pti,
                        randomize_memory=randomize, x86_5level_config=True,
                        kernel_start=g.kernel_start, brk_base=g.pgt_buf_start << 12, initrd=None,
                        reserves=list(g.memblock_reserved), movable_node=g.memblock_bottom_up)
    return E820Table(g.e820), params, notes


def _hex(v: Optional[int]) -> Optional[str]:
    return None if v is None else f"{v:#x}"


def diff_trees(real: Tree, emu: Tree, real_src, emu_src, limit: int = 10000) -> List[dict]:
    out: List[dict] = []
    keys = sorted(set(real.entries) | set(emu.entries), key=lambda k: (k[1], -k[0]))
    for key in keys:
        a, b = real.entries.get(key), emu.entries.get(key)
        if a == b:
            continue
        lvl, va = key
        leafish = lvl == 1 or (lvl in (2, 3) and ((a or 0) | (b or 0)) & 0x80)
        d = {"kind": "leaf" if leafish else "entry", "level": real.name(lvl), "va": _hex(va),
             "real": _hex(a), "emu": _hex(b)}
        if a is not None and b is not None and not (a ^ b) & ~0x60 and a & ~b == a ^ b:
            # only ACCESSED/DIRTY, set in the real entry: the MMU sets them on use
            d["hw_accessed_dirty"] = True
        out.append(d)
        if len(out) >= limit:
            return out
    rt = {pfn: (lvl, real_src(pfn)) for pfn, (lvl, _) in real.tables.items()}
    et = {pfn: (lvl, emu_src(pfn)) for pfn, (lvl, _) in emu.tables.items()}
    for pfn in sorted(set(rt) | set(et)):
        if rt.get(pfn) != et.get(pfn):
            r, e = rt.get(pfn), et.get(pfn)
            out.append({"kind": "table_page", "pa": _hex(pfn << 12),
                        "real": None if r is None else f"{real.name(r[0])} from {r[1]}",
                        "emu": None if e is None else f"{emu.name(e[0])} from {e[1]}"})
    return out


def guest_profile_name(g) -> str:
    """The profile of the booted kernel, from its ``Linux version`` line: a Debian kernel
    names its upstream stable release (``... SMP ... Debian 6.1.192-1``), which may carry
    stable backports the x.y release did not have; otherwise the release itself."""
    import re
    m = re.search(r"Linux version (\S+).*?Debian (\d+\.\d+\.\d+)", g.serial or "")
    if m:
        return m.group(2)
    m = re.search(r"Linux version (\d+\.\d+(?:\.\d+)?)", g.serial or "")
    return m.group(1) if m else "6.1"


def resolve_profile(profile="6.1", overrides=None):
    """A profile by name (or a Profile), with ``overrides`` {field: value} applied."""
    import dataclasses
    prof = get_profile(profile) if isinstance(profile, str) else profile
    if overrides:
        names = {f.name for f in dataclasses.fields(prof)}
        bad = [k for k in overrides if k not in names]
        if bad:
            raise ValueError(f"profile has no field {bad[0]!r}")
        prof = dataclasses.replace(prof, **overrides)
    return prof


def _log_inputs(g: Guest, params: BootParams):
    """e820 and its logged edits as ``emu replay`` reads them from the console log."""
    import os
    import tempfile
    from emu.boot.describe import layout_from_log, read_log
    fd, path = tempfile.mkstemp(prefix="emu-oracle-", suffix=".log")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(g.serial)
        e820, edits, lp, _ = layout_from_log(read_log(path))
    finally:
        os.unlink(path)
    return e820, edits


def compare(g: Guest, profile="6.1", overrides=None, inputs: str = "kernel", strict: bool = False) -> Comparison:
    """Run emu (``profile``, a name or a Profile, plus field ``overrides``) on the
    guest's inputs and diff everything.

    ``inputs``: ``kernel`` feeds emu the e820 table the kernel had at
    ``init_mem_mapping`` (read from the guest); ``log`` feeds it the e820 map
    and edits of the console log, as ``emu replay`` would (so emu's own e820
    processing is checked too).  Reservations, BRK and CPU features come from
    the guest in both cases.
    """
    from emu.boot.emulate import emulate
    if profile in (None, "auto"):
        profile = guest_profile_name(g)
    prof = resolve_profile(profile, overrides)
    e820, params, notes = params_from_guest(g, prof)
    # the kernel's e820_table at init_mem_mapping has been through every edit already
    # (memmap=, e820_add_kernel_range, trim_bios_range): emu must not redo them.  Redoing is
    # harmless while they succeed, but an i386 table holds only E820_MAX_ENTRIES (131)
    # entries and the kernel's own edits can fail ("too many entries; ignoring ...")
    edits = []
    if inputs == "log":
        e820, edits = _log_inputs(g, params)
    elif inputs != "kernel":
        raise ValueError(f"inputs must be 'kernel' or 'log', not {inputs!r}")
    initial = []
    if g.initial_tree is not None:
        # the state init_mem_mapping starts from: emu's setup_arch vs the kernel's
        from emu.kernel.arch.x86.kernel.setup import setup_arch
        try:
            k0 = setup_arch(prof, params, e820.copy(), edits)
            t0_tree = emu_tree(k0, g.initial_tree.slots)
            src0 = {int(p): "image/head" for p in k0.table_pages.column("pfn")}
            initial = diff_trees(g.initial_tree, t0_tree, lambda p: "image/head", lambda p: src0.get(p, "?"))
        except ValueError as e:
            notes.append(f"emu's setup_arch failed: {e}")
    t0 = time.perf_counter()
    res = emulate(e820, prof, params, log_edits=edits, check=False)
    emu_s = time.perf_counter() - t0
    diffs: List[dict] = []
    if g.next_call and g.next_call != "idt_setup_early_pf" and g.arch != "i386":
        # (on i386 setup_arch calls nothing right after init_mem_mapping)
        notes.append(f"setup_arch calls {g.next_call} after init_mem_mapping (6.1: idt_setup_early_pf)")
    if res.panic:
        diffs.append({"kind": "panic", "real": None, "emu": res.panic})
        return Comparison(g.layout, False, g.boot_seconds, emu_s, diffs, notes, initial, g, _pjson(params, e820))
    k = res.kernel
    # inputs emu derived itself: they must agree with the kernel's
    emu_mem = [(s, e) for s, e in k.memblock.memory]
    if emu_mem != list(g.memblock_memory):
        diffs.append({"kind": "input", "what": "memblock.memory", "real": _ranges(g.memblock_memory),
                      "emu": _ranges(emu_mem)})
    if inputs == "log" and sorted(k.e820.to_json(), key=lambda d: d["addr"]) != \
            sorted(E820Table(g.e820).sanitize().to_json(), key=lambda d: d["addr"]):
        diffs.append({"kind": "input", "what": "e820 (from the log)",
                      "real": _e820s(E820Table(g.e820).sanitize()), "emu": _e820s(k.e820)})
    if g.arch == "i386" and g.max_low_pfn and k.max_low_pfn != g.max_low_pfn:
        diffs.append({"kind": "input", "what": "max_low_pfn", "real": _hex(g.max_low_pfn),
                      "emu": _hex(k.max_low_pfn)})
    if k.max_pfn != g.max_pfn:
        diffs.append({"kind": "input", "what": "max_pfn", "real": _hex(g.max_pfn), "emu": _hex(k.max_pfn)})
    et = emu_tree(k, g.tree.slots)
    names = {1: "BRK", 2: "memblock", 3: "pgt_buf", 4: "image"}
    src_col = {int(p): names.get(int(s), "?")
               for p, s in zip(k.table_pages.column("pfn"), k.table_pages.column("src"))}
    for p, _, how in getattr(k, "i386_static", []):
        src_col[int(p)] = "BRK (head_32)" if how == "head_32" else "image"
    brk_lo = g.static_pages.get("__brk_base", g.pgt_buf_start << 12) >> 12
    img_lo, img_hi = g.kernel_start >> 12, (g.image_end or 0) >> 12

    def real_src(pfn: int) -> str:
        if g.pgt_buf_start <= pfn < g.pgt_buf_top:
            return "BRK"
        if brk_lo <= pfn < g.pgt_buf_start:
            return "BRK (head_32)"
        if img_lo <= pfn < img_hi:
            return "image"
        return "memblock"

    diffs += diff_trees(g.tree, et, real_src, lambda p: src_col.get(p, "?"))
    rc = g.direct_pages_count
    big = "DirectMap2M" if g.arch != "i386" or g.pae else "DirectMap4M"
    for lvl, name in ((1, "DirectMap4k"), (2, big), (3, "DirectMap1G")):
        if rc[lvl] != k.direct_pages_count[lvl]:
            diffs.append({"kind": "counter", "what": f"direct_pages_count[{name}]", "real": rc[lvl],
                          "emu": k.direct_pages_count[lvl]})
    for what, a, b in (("max_pfn_mapped", g.max_pfn_mapped, k.max_pfn_mapped),
                       ("pgt_buf_end", g.pgt_buf_end, k.pgt_buf_end)):
        if a != b:
            diffs.append({"kind": "state", "what": what, "real": _hex(a), "emu": _hex(b)})
    stats = {"real": g.tree.summary(), "emu": et.summary(),
             "brk_pages_used": g.pgt_buf_end - g.pgt_buf_start,
             "memblock_table_pages": sum(1 for p in g.tree.tables if real_src(p) == "memblock")}
    # only i386: there head_32's PTEs (written without ACCESSED/DIRTY) stay in the direct map
    # where init_mem_mapping does not rewrite them; x86-64's direct map is written whole
    hw_final = [d for d in diffs if d.get("hw_accessed_dirty")] if g.arch == "i386" else []
    if hw_final and not strict:
        notes.append(f"{len(hw_final)} entries differ only in ACCESSED/DIRTY bits the MMU set on use "
                     f"(a hardware artefact; not counted, --strict counts them)")
        diffs = [d for d in diffs if not d.get("hw_accessed_dirty")]
    if initial:
        hw = sum(1 for d in initial if d.get("hw_accessed_dirty"))
        notes.append(f"{len(initial) - hw} difference(s) already in the tables init_mem_mapping starts from "
                     f"(setup_arch / head code; see initial_differences)"
                     + (f", plus {hw} entries whose ACCESSED/DIRTY bits the MMU set" if hw else ""))
    return Comparison(g.layout, not diffs, g.boot_seconds, emu_s, diffs, notes, initial, g,
                      _pjson(params, e820), stats)


def _e820s(t: E820Table) -> List[str]:
    return [f"[{e.addr:#x}-{e.end - 1:#x}] {e.type}" for e in t.entries]


def _ranges(rs) -> List[str]:
    return [f"[{s:#x}-{e - 1:#x}]" for s, e in rs]


def _pjson(p: BootParams, e820: E820Table) -> dict:
    out = {"cpu": p.cpu.to_json(), "gbpages": p.gbpages, "la57": p.la57, "pti": p.pti,
           "randomize_memory": p.randomize_memory, "kernel_start": _hex(p.kernel_start),
           "brk_base": _hex(p.brk_base), "reserves": _ranges(p.reserves), "e820": e820.to_json()}
    if p.arch == "i386":
        for name in ("page_offset_32", "lowmem_limit", "image_end", "init_end", "head_brk_base",
                     "swapper_pg_dir_addr", "initial_pg_pmd_addr", "initial_pg_fixmap_addr", "bm_pte_addr",
                     "fixmap_bottom", "btmap_begin"):
            out[name] = _hex(getattr(p, name))
        out["kmap_range"] = [_hex(v) for v in p.kmap_range] if p.kmap_range else None
    return out


def format_comparison(c: Comparison, max_lines: int = 40) -> List[str]:
    g = c.guest
    out = [f"layout {c.layout}: {'IDENTICAL' if c.identical else f'{len(c.differences)} difference(s)'}"
           f" (boot {c.boot_seconds:.1f} s, emu {c.emu_seconds:.3f} s)"]
    if g is not None:
        p = c.params
        out.append(f"  kernel stopped at {g.return_address:#x} (setup_arch, before {g.next_call or '?'}); "
                   f"CR3 {g.cr3:#x} CR4 {g.cr4:#x}, {g.levels}-level, max_pfn {g.max_pfn:#x}")
        out.append(f"  cpu {p['cpu']}, gbpages {p['gbpages']}, pti {p['pti']}, BRK {p['brk_base']} "
                   f"({g.pgt_buf_top - g.pgt_buf_start} pages, {g.pgt_buf_end - g.pgt_buf_start} used)")
        if c.stats:
            out.append(f"  real tables {c.stats['real']['table_pages']}, mapped {c.stats['real']['mapped_bytes']}")
    for n in c.notes:
        out.append(f"  note: {n}")
    for d in c.differences[:max_lines]:
        what = d.get("what") or f"{d.get('level', '')} {d.get('va') or d.get('pa')}"
        out.append(f"  {d['kind']:<10} {what}: real {d.get('real')}  emu {d.get('emu')}")
    if len(c.differences) > max_lines:
        out.append(f"  ... {len(c.differences) - max_lines} more (--json for all)")
    return out
