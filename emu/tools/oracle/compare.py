"""Run emu on exactly what the real kernel had, and diff the results."""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from emu.kernel.arch.x86.kernel.e820 import E820Table
from emu.kernel.params import BootParams
from emu.kernel.arch.x86.pgtable_types import MASK_1G, MASK_2M, _PAGE_GLOBAL, _PAGE_NX
from emu.machine.cpu import CpuFeatures
from emu.kernel.profiles import get_profile
from emu.tools.oracle.qemu import Guest, OracleError
from emu.tools.oracle.tables import Tree, emu_tree

if TYPE_CHECKING:
    from emu.inputs.kconfig import KConfig
    from emu.inputs.sysmap import SystemMap


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
    #: the emu profile compared with (after --set overrides: its name)
    profile: str = ""
    #: where emu's inputs came from: "artefacts", "kernel" or "log"
    inputs: str = "artefacts"
    #: the inputs emu had to default (emu.kernel.params.Assumption.to_json each): none is the goal
    assumptions: List[dict] = field(default_factory=list)
    #: input -> where it came from (the artefact path's BootDescription.sources)
    sources: dict = field(default_factory=dict)
    #: the artefacts' names (log, config, system_map, cpu) for the artefact path
    artefacts: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"layout": self.layout, "identical": self.identical, "profile": self.profile,
                "inputs": self.inputs, "assumptions": self.assumptions, "sources": self.sources,
                "artefacts": self.artefacts,
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
                            randomize_memory=False, x86_5level_config=False, debug_pagealloc=False,
                            kernel_start=g.kernel_start, brk_base=g.pgt_buf_start << 12, initrd=None,
                            reserves=list(g.memblock_reserved), movable_node=g.memblock_bottom_up)
        fields: List[Tuple[str, object]] = [("page_offset_32", g.page_offset), ("image_end", g.image_end),
                                            ("init_end", g.init_end)]
        # where this build's static page tables and head_32's BRK tables lie (System.map)
        sp = g.static_pages
        fields += [("head_brk_base", sp.get("__brk_base")), ("swapper_pg_dir_addr", sp.get("swapper_pg_dir")),
                   ("initial_pg_pmd_addr", sp.get("initial_pg_pmd") if g.pae else None),
                   ("initial_pg_fixmap_addr", sp.get("initial_pg_fixmap")), ("bm_pte_addr", sp.get("bm_pte"))]
        # its fixmap geometry: from the .config, as emu derives it for any boot
        fields += _fixmap_32(g, profile, notes)
        if g.max_low_pfn and g.max_pfn > g.max_low_pfn:
            # MAXMEM of this build (its fixmap/vmalloc reserve): where lowmem ended
            fields.append(("lowmem_limit", g.max_low_pfn << 12))
        for name, value in fields:
            if hasattr(params, name) and value is not None:
                setattr(params, name, value)
        return E820Table(g.e820), params, notes
    params = BootParams(cpu=cpu, gbpages=bool(g.direct_gbpages), la57=g.la57, pti=pti,
                        randomize_memory=randomize, x86_5level_config=True, debug_pagealloc=False,
                        kernel_start=g.kernel_start, brk_base=g.pgt_buf_start << 12, initrd=None,
                        reserves=list(g.memblock_reserved), movable_node=g.memblock_bottom_up)
    # the image's half of the tree (PGD 511): where the kernel has its tables (System.map),
    # where _text is linked (phys_base), the PMD early_ioremap gave bm_pte (slot_virt[0])
    sp = g.static_pages
    if sp.get("init_top_pgt") is not None:
        params.swapper_pg_dir_addr = sp["init_top_pgt"]
    params.kernel_link_start = g.kernel_start - g.phys_base
    if g.image_end:
        params.image_end = g.image_end        # __pa_symbol(_end)
    params.image_tables = {n: a for n, a in sp.items() if n != "init_top_pgt"}
    sv = (g.fixmap or {}).get("slot_virt0")
    if sv:
        params.bm_pte_slot = (sv >> 21) & 511
    return E820Table(g.e820), params, notes


#: __FIXADDR_TOP of a 3G/1G i386 kernel (no vmalloc reserve moving it down)
FIXADDR_TOP_32 = 0xFFFFF000


def _fixmap_32(g: Guest, profile, notes: List[str]) -> List[Tuple[str, object]]:
    """The i386 fixmap inputs (``fixmap_bottom``, ``btmap_begin``, ``kmap_range``): from
    the build's .config through :func:`emu.kernel.arch.x86.fixmap.i386_params_from_config`
    (the version's ``enum fixed_addresses``), checked against the running kernel's
    ``slot_virt[0]``; without a config, only what ``slot_virt[0]`` shows (said)."""
    import os
    fm = g.fixmap or {}
    sv, top = fm.get("slot_virt0"), fm.get("fixaddr_top")
    if top is not None and top != FIXADDR_TOP_32:
        notes.append(f"fixmap: __FIXADDR_TOP is {top:#x}, emu's enum counts down from {FIXADDR_TOP_32:#x}")
    if g.config:
        from emu.inputs.kconfig import load_kconfig
        from emu.kernel.arch.x86.fixmap import i386_params_from_config
        d = i386_params_from_config(profile, load_kconfig(g.config), pae=g.pae, name=os.path.basename(g.config))
        out: List[Tuple[str, object]] = [(n, d[n][0]) for n in ("fixmap_bottom", "btmap_begin", "kmap_range") if n in d]
        if sv and sv != d["btmap_begin"][0]:
            notes.append(f"fixmap: slot_virt[0] is {sv:#x}, the config gives FIX_BTMAP_BEGIN at "
                         f"{d['btmap_begin'][0]:#x} ({d['btmap_begin'][1]})")
        return out
    if sv:
        notes.append("fixmap: no kernel config: FIX_BTMAP_BEGIN from slot_virt[0], the slot below it the "
                     "lowest (FIX_WP_TEST), the kmap slots assumed in one PMD")
        return [("btmap_begin", sv), ("fixmap_bottom", sv - 4096)]
    notes.append("fixmap: no kernel config and no slot_virt: emu's default fixmap geometry")
    return []


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
        d: Dict[str, object] = {"kind": "leaf" if leafish else "entry", "level": real.name(lvl),
                                "va": _hex(va), "real": _hex(a), "emu": _hex(b)}
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
    """The profile of the booted kernel, from its ``Linux version`` line as
    :mod:`emu.inputs.dmesg` parses it (the distribution's upstream stable base: Debian
    ``6.1.0-57-amd64 ... Debian 6.1.192-3`` -> ``6.1.192``, never the compiler's
    ``(Debian 12.2.0-14+deb12u1)``); ``6.1`` when the log names no version."""
    from emu.inputs.dmesg import parse_boot_log
    try:
        v = parse_boot_log(g.serial or "", name="serial log").version
    except ValueError:
        v = None
    if v is None:
        return "6.1"
    return v.stable_base_text or v.version


#: QEMU -cpu words that do not describe a feature emu models (address widths, CPUID levels)
_QEMU_CPU_IGNORED = ("phys-bits=", "host-phys-bits", "level=", "xlevel=", "model-id=", "check", "enforce")


def user_cpu(qemu_cpu: str) -> str:
    """The CPU QEMU emulates, as a user would describe it to ``emu run --cpu``: its vendor
    and the features emu models it has, listed exactly (``qemu64,+pdpe1gb`` ->
    ``amd,pse,pge,gbpages,nx``; ``qemu64,vendor=GenuineIntel,-pse`` -> ``intel,pge,nx``).
    From the ``-cpu`` option the oracle gave QEMU (QEMU's model table), never from what the
    kernel decided."""
    from emu.inputs.cpu import parse_cpu
    words = [w for w in (qemu_cpu or "qemu64").split(",") if not w.strip().lower().startswith(_QEMU_CPU_IGNORED)]
    feats = parse_cpu(",".join(words))
    names = [f for f in ("pse", "pge", "gbpages", "nx", "la57") if getattr(feats, f)]
    if not names:   # bare names list the features exactly; none at all: take each one away
        names = ["-pse", "-pge", "-gbpages", "-nx", "-la57"]
    return ",".join([feats.vendor] + names)


@dataclass
class Artefacts:
    """What a user has of the guest's boot: its console log (``memblock=debug``), the
    kernel's ``.config``, its System.map, and the CPU description."""

    log_text: str
    log_name: str
    config: Optional[KConfig] = None
    config_name: Optional[str] = None
    sysmap: Optional[SystemMap] = None
    sysmap_name: Optional[str] = None
    cpu: str = ""

    def names(self) -> dict:
        return {"log": self.log_name, "config": self.config_name, "system_map": self.sysmap_name,
                "cpu": self.cpu}


def guest_artefacts(g: Guest) -> Artefacts:
    """The artefacts of the guest's boot: the serial console log, the build's .config and
    System.map the oracle fetched or was given, the ``--cpu`` text of QEMU's ``-cpu``."""
    import os
    from emu.inputs.kconfig import load_kconfig
    config = load_kconfig(g.config) if g.config else None
    sm = g.symbols
    return Artefacts(g.serial or "", f"serial log ({g.layout})", config,
                     os.path.basename(g.config) if g.config else None,
                     sm, os.path.basename(g.symbols_file) if g.symbols_file else None, user_cpu(g.cpu))


def describe_artefacts(a: Artefacts, profile=None, overrides=None):
    """``emu run --dmesg LOG --config F --system-map F --cpu TEXT`` as a function: the
    artefacts through :func:`emu.boot.describe.describe` (``profile`` None or ``auto``: the
    log's version line), profile field ``overrides`` applied.  Returns the
    :class:`~emu.boot.describe.BootDescription`."""
    from emu.boot.describe import describe
    from emu.inputs.cpu import parse_cpu
    from emu.inputs.dmesg import parse_boot_log
    log = parse_boot_log(a.log_text, name=a.log_name)
    name = None if profile in (None, "auto") else profile
    cpu = parse_cpu(a.cpu) if a.cpu else None
    d = describe(log, profile=name if isinstance(name, str) else None, config=a.config, sysmap=a.sysmap,
                 cpu=cpu, cpu_source=f"--cpu {a.cpu}")
    if name is not None and not isinstance(name, str):
        d.profile = name
    if overrides:
        d.profile = resolve_profile(d.profile, overrides)
    return d


def emulate_artefacts(a: Artefacts, profile=None, overrides=None, check: bool = False,
                      until: Optional[str] = "init_mem_mapping"):
    """Describe and emulate the artefacts' boot: the path of ``emu run``
    (:func:`emu.boot.emulate.run`); the Result carries the description and every assumption.
    ``until``: where to stop (default: ``init_mem_mapping``'s return, where the oracle reads
    the tables; None: as far as the log shows, as ``emu run`` does)."""
    from emu.boot.emulate import run
    d = describe_artefacts(a, profile, overrides)
    if until is not None:
        d.until = until
    return run(d, check=check)


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


INPUTS = ("artefacts", "kernel", "log")


def _emu_inputs(g: Guest, profile, inputs: str = "artefacts", overrides=None):
    """emu's inputs for the guest's boot: ``(e820, edits, params, profile, notes, desc)`` --
    the ONE place the comparison derives them (both emulations, the initial state's and the
    final one, take these).

    ``inputs="artefacts"`` (the default): what a user has -- the serial console log
    (``memblock=debug``), the kernel's .config, its System.map and the CPU as ``--cpu`` text
    (:func:`user_cpu` of QEMU's ``-cpu``) -- through :func:`emu.boot.describe.describe`, as
    ``emu run --dmesg LOG --config F --system-map F --cpu TEXT`` does (``desc`` is that
    description; nothing is read from the guest's memory).  ``inputs="kernel"``: everything
    from the kernel's own state at ``init_mem_mapping`` (:func:`params_from_guest`, a
    cross-check): its final ``e820_table`` (already through every edit), its
    reservations, BRK buffer and CPU decisions.  ``inputs="log"``: as ``kernel``, but the
    e820 map and its logged edits from the console log (so emu's own e820 processing is
    checked too).  ``notes``: every input that had to be guessed."""
    if inputs not in INPUTS:
        raise ValueError(f"inputs must be one of {', '.join(INPUTS)}, not {inputs!r}")
    if inputs == "artefacts":
        a = guest_artefacts(g)
        desc = describe_artefacts(a, profile, overrides)
        notes = [f"inputs: artefacts, as emu run --dmesg LOG --config {a.config_name} --system-map "
                 f"{a.sysmap_name} --cpu {a.cpu} (emu.boot.describe; nothing from the guest's memory)"]
        if desc.until != "init_mem_mapping":
            # the tables were read when init_mem_mapping returned: emulate that far
            notes.append(f"the log shows the boot past init_mem_mapping ({desc.until}); compared where "
                         "the oracle stopped, at init_mem_mapping's return")
            desc.until = "init_mem_mapping"
        if "memblock=debug" not in (g.cmdline or ""):
            notes.append("the guest's command line has no memblock=debug")
        return desc.e820, desc.log_edits or [], desc.params, desc.profile, notes, desc
    if profile in (None, "auto"):
        profile = guest_profile_name(g)
    prof = resolve_profile(profile, overrides)
    e820, params, notes = params_from_guest(g, prof)
    edits: list = []
    if inputs == "log":
        from emu.boot.describe import layout_from_log
        from emu.inputs.dmesg import parse_boot_log
        logged, edits, _, _ = layout_from_log(parse_boot_log(g.serial or "", name=f"serial log ({g.layout})"))
        e820 = logged if isinstance(logged, E820Table) else E820Table(logged)
        notes.append("inputs: e820 and its edits from the console log (emu.boot.describe.layout_from_log); "
                     "reservations, BRK and CPU from the kernel's state")
    else:
        notes.append("inputs: the kernel's own state at init_mem_mapping (e820_table, memblock, BRK, "
                     "page_size_mask, __supported_pte_mask ...)")
    return e820, edits, params, prof, notes, None


def compare(g: Guest, profile="auto", overrides=None, inputs: str = "artefacts", strict: bool = False) -> Comparison:
    """Run emu (``profile``, a name or a Profile, or ``auto``: the log's version; plus
    field ``overrides``) on the guest's inputs (see :func:`_emu_inputs`: ``artefacts``, the
    default, ``kernel`` or ``log``) and diff everything."""
    import copy
    from emu.boot.emulate import emulate, run
    e820, edits, params, prof, notes, desc = _emu_inputs(g, profile, inputs, overrides)
    initial: List[dict] = []
    if g.initial_tree is not None:
        # the state init_mem_mapping starts from: emu's setup_arch vs the kernel's
        from emu.kernel.arch.x86.kernel.setup import setup_arch
        try:
            k0 = setup_arch(prof, copy.deepcopy(params), e820.copy(), copy.deepcopy(edits))
            t0_tree = emu_tree(k0, g.initial_tree.slots, pse=g.initial_tree.mmu.pse)
            src0 = {int(p): "image/head" for p in k0.table_pages.column("pfn")}
            src0.update({int(p): "image/head" for p, _, _ in getattr(k0, "image_tables", None) or []})
            initial = diff_trees(g.initial_tree, t0_tree, lambda p: "image/head", lambda p: src0.get(p, "?"))
        except ValueError as e:
            notes.append(f"emu's setup_arch failed: {e}")
    t0 = time.perf_counter()
    if desc is not None:
        res = run(desc, check=False)
    else:
        res = emulate(e820, prof, params, log_edits=edits, check=False)
    emu_s = time.perf_counter() - t0
    # every input emu had to default (none should be left: the artefacts told them all)
    assumptions = [a.to_json() for a in getattr(res, "assumptions", [])]
    notes += [f"emu {a['text']}" for a in assumptions]
    sources = dict(desc.sources) if desc is not None else {}
    artefacts = guest_artefacts(g).names() if desc is not None else {}
    diffs: List[dict] = []
    if g.next_call and g.next_call != "idt_setup_early_pf" and g.arch != "i386":
        # (on i386 setup_arch calls nothing right after init_mem_mapping)
        notes.append(f"setup_arch calls {g.next_call} after init_mem_mapping (6.1: idt_setup_early_pf)")
    if res.panic:
        diffs.append({"kind": "panic", "real": None, "emu": res.panic})
        return Comparison(g.layout, False, g.boot_seconds, emu_s, diffs, notes, initial, g, _pjson(params, e820),
                          profile=prof.name, inputs=inputs, assumptions=assumptions, sources=sources,
                          artefacts=artefacts)
    k = res.kernel
    # inputs emu derived itself: they must agree with the kernel's
    emu_mem = [(s, e) for s, e in k.memblock.memory]
    if emu_mem != list(g.memblock_memory):
        diffs.append({"kind": "input", "what": "memblock.memory", "real": _ranges(g.memblock_memory),
                      "emu": _ranges(emu_mem)})
    if inputs in ("log", "artefacts") and sorted(k.e820.to_json(), key=lambda d: d["addr"]) != \
            sorted(E820Table(g.e820).sanitize().to_json(), key=lambda d: d["addr"]):
        diffs.append({"kind": "input", "what": "e820 (from the log)",
                      "real": _e820s(E820Table(g.e820).sanitize()), "emu": _e820s(k.e820)})
    if g.arch == "i386" and g.max_low_pfn and k.max_low_pfn != g.max_low_pfn:
        diffs.append({"kind": "input", "what": "max_low_pfn", "real": _hex(g.max_low_pfn),
                      "emu": _hex(k.max_low_pfn)})
    if k.max_pfn != g.max_pfn:
        diffs.append({"kind": "input", "what": "max_pfn", "real": _hex(g.max_pfn), "emu": _hex(k.max_pfn)})
    if g.tree is None:
        raise OracleError(f"layout {g.layout}: the guest's page tables were not read")
    tree = g.tree
    et = emu_tree(k, tree.slots, pse=tree.mmu.pse)
    names = {1: "BRK", 2: "memblock", 3: "pgt_buf", 4: "image"}
    src_col = {int(p): names.get(int(s), "?")
               for p, s in zip(k.table_pages.column("pfn"), k.table_pages.column("src"))}
    for p, _, how in getattr(k, "i386_static", []):
        src_col[int(p)] = "BRK (head_32)" if how == "head_32" else "image"
    for p, _, _ in getattr(k, "image_tables", None) or []:
        src_col[int(p)] = "image"
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

    diffs += diff_trees(tree, et, real_src, lambda p: src_col.get(p, "?"))
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
    stats = {"real": tree.summary(), "emu": et.summary(),
             "brk_pages_used": g.pgt_buf_end - g.pgt_buf_start,
             "memblock_table_pages": sum(1 for p in tree.tables if real_src(p) == "memblock")}
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
                      _pjson(params, e820), stats, prof.name, inputs=inputs, assumptions=assumptions,
                      sources=sources, artefacts=artefacts)


def _e820s(t: E820Table) -> List[str]:
    return [f"[{e.addr:#x}-{e.end - 1:#x}] {e.type}" for e in t.entries]


def _ranges(rs) -> List[str]:
    return [f"[{s:#x}-{e - 1:#x}]" for s, e in rs]


def _pjson(p: BootParams, e820: E820Table) -> dict:
    out: Dict[str, object] = {
           "cpu": p.cpu.to_json() if p.cpu is not None else None, "gbpages": p.gbpages, "la57": p.la57, "pti": p.pti,
           "randomize_memory": p.randomize_memory, "kernel_start": _hex(p.kernel_start),
           "brk_base": _hex(p.brk_base), "brk_end": _hex(p.brk_end), "reserves": _ranges(p.reserves or []),
           "e820": [{"addr": _hex(e.addr), "size": e.size, "type": e.type} for e in e820.entries]}
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
           f" (profile {c.profile}; boot {c.boot_seconds:.1f} s, emu {c.emu_seconds:.3f} s)"]
    if g is not None:
        p = c.params
        out.append(f"  kernel stopped at {g.return_address:#x} (setup_arch, before {g.next_call or '?'}); "
                   f"CR3 {g.cr3:#x} CR4 {g.cr4:#x}, {g.levels}-level, max_pfn {g.max_pfn:#x}")
        out.append(f"  cpu {p['cpu']}, gbpages {p['gbpages']}, pti {p['pti']}, BRK {p['brk_base'] or p.get('brk_end')} "
                   f"({g.pgt_buf_top - g.pgt_buf_start} pages, {g.pgt_buf_end - g.pgt_buf_start} used)"
                   + (f"; inputs: {c.inputs}, {len(c.assumptions)} assumption(s)" if c.inputs else ""))
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
