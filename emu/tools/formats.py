"""emu's output layer: the kernel formats emu imitates, and every JSON document it prints.

**Kernel text formats.**  Each function below writes the lines one kernel interface
prints, re-expressed from the kernel's format string (cited in its docstring; the tests
render the C format string with the same values and compare byte for byte):

* :func:`meminfo_lines` -- ``/proc/meminfo``'s ``DirectMap*`` lines (``arch_report_meminfo``);
* :func:`ptdump_marker`, :func:`ptdump_line` -- ``/sys/kernel/debug/page_tables/kernel``
  (``arch/x86/mm/dump_pagetables.c``); the walk that feeds them is :mod:`emu.tools.dump`;
* :func:`e820_lines` -- ``e820_print_map``/``e820__print_table``: the emulated kernel's own
  :meth:`emu.kernel.arch.x86.kernel.e820.E820Table.print_lines`, in the profile's style.

The lines the emulated kernel prints while it runs (``init_memory_mapping: ...``,
`` [mem ...] page 2M``, ``BRK [...] PGTABLE``, e820 updates) are printed by the kernel
layer itself, where the kernel prints them (:mod:`emu.kernel.arch.x86.mm.init`,
:mod:`emu.kernel.arch.x86.kernel.e820`); ``tests/test_formats.py`` holds them to the
kernel's format strings too.

**JSON.**  Every document emu prints goes through :func:`document` / :func:`dumps`:

* a ``"schema"`` key first, naming the document type and its version
  (``"emu.run/1"``; :data:`KINDS` lists them); the JSON Schema (draft 2020-12) of each
  type ships in ``emu/schemas/`` (:func:`schema`, :func:`validate`);
* 64-bit values -- addresses, entries, CR3, ``page_offset``, step sizes -- are ``"0x..."``
  strings (:func:`hex64`), so ``jq`` and JavaScript keep every bit; counts, pfns and byte
  sizes are integers, and any integer beyond 2**53 left anywhere is written as a ``"0x..."``
  string as well (never rounded);
* the same keys for the same things in every command: an emulation is described by
  ``profile``, ``arch``, ``mode``, ``levels``, ``engine``, ``cr3``, ``page_offset``; a page
  size is ``"4K"``/``"2M"``/``"4M"``/``"1G"``; a raw entry is ``entry``, its table's physical
  address ``table``, its slot ``index``.

Builders: :func:`run_document`, :func:`check_document`, :func:`dump_document`,
:func:`translate_document`, :func:`diff_document`, :func:`profiles_document`,
:func:`explain_document`, :func:`changes_document`, :func:`replay_document`,
:func:`fuzz_summary_document`, :func:`fuzz_finding_document`, :func:`fuzz_state_document`,
:func:`fuzz_corpus_document`, :func:`e820_document`, :func:`raw_meta_document`.

**Steps.**  :func:`mapping_steps` collects how the direct map was built (the e820 map,
``memory_map_top_down``'s windows with their step size, each ``init_memory_mapping``
call's pieces and page-table pages by source) from the emulation's own records, for
``emu run --steps`` (:func:`steps_lines`), the JSON and the pictures (:mod:`emu.tools.plot`).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence

import numpy as np

from emu._version import __version__
from emu.machine.bits import FAULT_GP, PF_INSTR, PF_PROT, PF_RSVD, PF_USER, PF_WRITE, error_code_text, flag_names

#: every JSON document type emu prints (``emu/schemas/<kind>.json``)
KINDS = ("run", "check", "dump", "translate", "diff", "profiles", "profile-explain", "changes", "replay",
         "fuzz-summary", "fuzz-finding", "fuzz-state", "fuzz-corpus", "e820", "raw-meta", "oracle")
SCHEMA_VERSION = 1
#: the largest integer every JSON reader keeps exactly (IEEE double)
JSON_SAFE_INT = 1 << 53
SCHEMA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "schemas")


# ---------------------------------------------------------------------------
# kernel text formats
# ---------------------------------------------------------------------------
def meminfo_lines(meminfo: Dict[str, int]) -> List[str]:
    """``/proc/meminfo``'s DirectMap lines from ``{name: kB}``.

    ``arch_report_meminfo`` prints each with ``seq_printf(m, "DirectMap4k:    %8lu kB\\n", ...)``
    (and ``DirectMap2M``/``DirectMap4M``/``DirectMap1G`` in the same form): the name, a
    colon, four blanks, the kB value right-aligned in 8 columns (wider when it does not
    fit), `` kB`` -- arch/x86/mm/pageattr.c 2.6.26-5.3, arch/x86/mm/pat/set_memory.c 5.4-6.15.
    """
    return ["%s:    %8d kB" % (name, kb) for name, kb in meminfo.items()]


#: the level names ptdump prints, by the number of paging levels (dump_pagetables.c
#: ``level_name[]``); with 4-level paging the top level is ``pgd``, but 5.6+'s generic
#: walker (mm/ptdump.c) reports a hole there at the folded ``p4d`` level
PTDUMP_UNITS = "BKMGTPE"


def ptdump_marker(name: str) -> str:
    """An address-space marker: ``"---[ %s ]---\\n"`` (dump_pagetables.c ``note_page``, 2.6.26-6.15)."""
    return "---[ %s ]---" % name


def ptdump_size(delta: int) -> str:
    """The size column: the byte count divided by 1024 while it divides evenly, printed
    ``"%9lu%c "`` with the unit from ``"BKMGTPE"`` (dump_pagetables.c ``note_page``)."""
    unit = 0
    while not (delta & 1023) and unit < len(PTDUMP_UNITS) - 1:
        delta >>= 10
        unit += 1
    return "%9d%c " % (delta, PTDUMP_UNITS[unit])


def ptdump_prot(prot: int, level_name: str) -> str:
    """The protection columns of ``printk_prot`` (dump_pagetables.c, 2.6.26-6.15): 30 blanks
    for a hole; else ``USR ``/4 blanks, ``RW ``/``ro ``, ``PWT ``, ``PCD ``, ``PSE `` (not on a
    pte), ``PAT `` (bit 7 on a pte, bit 12 on a pmd/pud leaf), ``GLB ``, ``NX ``/``x  ``.
    The level name follows (:func:`ptdump_line`)."""
    if not prot & 1:
        return " " * 30
    pte = level_name == "pte"
    s = "USR " if prot & 0x4 else "    "
    s += "RW " if prot & 0x2 else "ro "
    s += "PWT " if prot & 0x8 else "    "
    s += "PCD " if prot & 0x10 else "    "
    s += "PSE " if (not pte and prot & 0x80) else "    "
    s += "PAT " if ((pte and prot & 0x80) or (level_name in ("pmd", "pud") and prot & 0x1000)) else "    "
    s += "GLB " if prot & 0x100 else "    "
    s += "NX " if prot & (1 << 63) else "x  "
    return s


def ptdump_line(start: int, end: int, prot: int, level_name: str, width: int = 16) -> str:
    """One run of entries: ``"0x%0*lx-0x%0*lx   "`` (``width`` = 2 * sizeof(long): 16, or 8
    on i386), the size column, the protection columns and ``"%s\\n"`` the level name
    (dump_pagetables.c ``note_page`` + ``printk_prot``)."""
    m = (1 << (4 * width)) - 1
    return ("0x%0*x-0x%0*x   " % (width, start & m, width, end & m)) + ptdump_size((end - start) & m) \
        + ptdump_prot(prot, level_name) + level_name


def e820_lines(table, who: str = "BIOS-e820", version=None) -> List[str]:
    """The e820 table as ``e820_print_map(who)`` / ``e820__print_table(who)`` prints it
    (per version: ``[mem %#018Lx-%#018Lx]`` from 3.5, ``%016Lx - %016Lx`` before): the
    emulated kernel's :meth:`~emu.kernel.arch.x86.kernel.e820.E820Table.print_lines`."""
    from emu.kernel.arch.x86.kernel.e820 import E820Table
    t = table if isinstance(table, E820Table) else E820Table(table.entries)
    return t.print_lines(who, version)


# ---------------------------------------------------------------------------
# emu's own words for the same things
# ---------------------------------------------------------------------------
def size_name(size_or_shift: int) -> str:
    """A page size as ``dump`` and ``translate`` write it: ``4K``, ``2M``, ``4M``, ``1G``
    (a shift below 64 or a byte count)."""
    size = 1 << size_or_shift if size_or_shift < 64 else size_or_shift
    for unit, bits in (("G", 30), ("M", 20), ("K", 10)):
        if size >= 1 << bits and not size & ((1 << bits) - 1):
            return f"{size >> bits}{unit}"
    return f"{size}B"


def mib(n: int) -> str:
    """Bytes in the largest binary unit that divides them (``512M``, ``64T``)."""
    for unit, bits in (("P", 50), ("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << bits and not n & ((1 << bits) - 1):
            return f"{n >> bits}{unit}"
    return f"{n:#x}"


def level_names(levels: int, is_64bit: bool = True) -> Dict[int, str]:
    """The kernel's names of the hardware levels (1 = page table): 4-level ``pgd pud pmd
    pte``, 5-level ``pgd p4d pud pmd pte``, i386 PAE ``pgd pmd pte``, non-PAE ``pgd pte``."""
    if not is_64bit:
        return {3: "pgd", 2: "pmd", 1: "pte"} if levels == 3 else {2: "pgd", 1: "pte"}
    if levels == 5:
        return {5: "pgd", 4: "p4d", 3: "pud", 2: "pmd", 1: "pte"}
    return {4: "pgd", 3: "pud", 2: "pmd", 1: "pte"}


def hex64(value: Optional[int]) -> Optional[str]:
    """A 64-bit value for JSON: ``"0x..."`` (lower-case, no padding); None stays None."""
    if value is None:
        return None
    v = int(value)
    return ("-0x%x" % -v) if v < 0 else ("0x%x" % v)


# ---------------------------------------------------------------------------
# the JSON encoder
# ---------------------------------------------------------------------------
def _plain(obj: Any) -> Any:
    """JSON-ready: numpy scalars and arrays to Python, tuples to lists, integers beyond
    2**53 to ``"0x..."`` strings (no reader rounds them)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_plain(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        v = int(obj)
        return hex64(v) if abs(v) > JSON_SAFE_INT else v
    if isinstance(obj, np.floating):
        return float(obj)
    return obj


def json_safe(obj: Any) -> Any:
    """``obj`` as a document holds it: tuples as lists, numpy values as Python ones, integers
    beyond 2**53 as ``"0x..."`` strings (to compare a value with what a document read back holds)."""
    return _plain(obj)


def schema_id(kind: str) -> str:
    """The ``"schema"`` value of a document type: ``emu.<kind>/<version>``."""
    if kind not in KINDS:
        raise ValueError(f"unknown JSON document type {kind!r}")
    return f"emu.{kind}/{SCHEMA_VERSION}"


def document(kind: str, body: Dict[str, Any]) -> Dict[str, Any]:
    """A JSON document: ``schema`` and ``emu_version`` first, then ``body`` made JSON-safe."""
    doc: Dict[str, Any] = {"schema": schema_id(kind), "emu_version": __version__}
    doc.update(_plain(body))
    return doc


def dumps(doc: Dict[str, Any], indent: Optional[int] = 1) -> str:
    """The text of a document built by :func:`document` (``indent=None``: one line)."""
    if "schema" not in doc:
        raise ValueError("not an emu JSON document (no 'schema' key): build it with formats.document()")
    return json.dumps(doc, indent=indent)


def schema(kind: str) -> Dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a document type, from ``emu/schemas/<kind>.json``."""
    schema_id(kind)
    with open(os.path.join(SCHEMA_DIR, kind + ".json")) as f:
        return json.load(f)


def validate(doc: Dict[str, Any]) -> None:
    """Validate ``doc`` against the schema its ``"schema"`` key names (needs the
    ``jsonschema`` package: ``pip install 'emu[test]'``); raises
    ``jsonschema.ValidationError``."""
    import jsonschema
    from referencing import Registry, Resource
    kind = str(doc.get("schema", "")).partition("/")[0].removeprefix("emu.")
    resources = []
    for name in sorted(os.listdir(SCHEMA_DIR)):
        if name.endswith(".json"):
            with open(os.path.join(SCHEMA_DIR, name)) as f:
                s = json.load(f)
            resources.append((s["$id"], Resource.from_contents(s)))
    registry = Registry().with_resources(resources)
    jsonschema.Draft202012Validator(schema(kind), registry=registry).validate(doc)


# ---------------------------------------------------------------------------
# documents
# ---------------------------------------------------------------------------
def emulation_header(k) -> Dict[str, Any]:
    """The keys every document about one emulation starts with."""
    return {"profile": k.profile.name, "kernel_version": ".".join(map(str, k.profile.version)),
            "arch": k.mode.arch, "mode": k.mode.name, "levels": k.paging_levels, "engine": k.engine.name,
            "cr3": hex64(k.pgd_pfn << 12), "page_offset": hex64(k.page_offset)}


def report_json(report) -> Optional[Dict[str, Any]]:
    """A checker report (:class:`emu.check.Report`) with its addresses as ``"0x..."``."""
    if report is None:
        return None
    d = report.to_json()
    d["items"] = [dict(it, addr=hex64(it["addr"])) for it in d["items"]]
    return d


def _page_size_key(name: str) -> str:
    return name.upper() if name.endswith("k") else name


def run_body(result) -> Dict[str, Any]:
    """The fields of ``emu run --json`` (also the ``a``/``b`` of ``emu diff --json``)."""
    k = result.kernel
    steps = mapping_steps(result)
    body = emulation_header(k)
    body.update({
        "log": result.log,
        "debug_log": result.debug_log,
        "panic": result.panic,
        "warnings": result.warnings,
        "max_pfn": k.max_pfn,
        "max_low_pfn": k.max_low_pfn,
        "max_pfn_mapped": k.max_pfn_mapped,
        "pgtable_pages": result.pgtable_pages,
        "direct_map": {_page_size_key(n): v for n, v in result.direct_map.items()},
        "meminfo_kB": result.meminfo,
        "brk": {"start": hex64(k.pgt_buf_start << 12), "end": hex64(k.pgt_buf_end << 12),
                "top": hex64(k.pgt_buf_top << 12)},
        "windows": [w.to_json() for w in steps.windows],
        "calls": [c.to_json() for c in steps.calls],
        "verify": report_json(result.verify),
        "assumptions": [a.to_json() for a in getattr(result, "assumptions", [])],
        "sources": dict(result.description.sources) if getattr(result, "description", None) is not None else {},
        "seconds": round(result.seconds, 6),
    })
    return body


def run_document(result) -> Dict[str, Any]:
    """``emu run --json``: one emulation."""
    return document("run", run_body(result))


def check_document(result, report) -> Dict[str, Any]:
    """``emu check --json``: the emulation and the full check (``check``: None on a panic)."""
    body = run_body(result)
    body["check"] = report_json(report)
    return document("check", body)


def dump_document(k, entries: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """``emu dump --format json``: every present entry (:func:`emu.tools.dump.table_entries`)."""
    body = emulation_header(k)
    body["entries"] = [{"level": e["level"], "table": hex64(e["table"]), "index": e["index"],
                        "entry": hex64(e["entry"]), "va": hex64(e["va"]), "leaf": e["leaf"]} for e in entries]
    return document("dump", body)


def raw_meta_document(meta: Dict[str, Any]) -> Dict[str, Any]:
    """``meta.json`` of a raw dump, as :func:`emu.tools.rawimage.write_raw` writes and returns
    it (``cr3``, ``page_offset`` as ``"0x..."``; ``mode``, ``levels``, ``max_pfn``,
    ``image_size``, ``table_pages``, ``profile``, ``nx``, ``maxphyaddr``, ``format``,
    ``chunk_size``, ``files``, ``lime``)."""
    d = dict(meta)
    for key in ("cr3", "page_offset"):
        if isinstance(d.get(key), int):
            d[key] = hex64(d[key])
    return document("raw-meta", d)


def translate_document(k, translations, access: str = "r") -> Dict[str, Any]:
    """``emu translate --json``: every address's walk (``translate(..., trace=True)``)."""
    body = emulation_header(k)
    body["access"] = access
    body["translations"] = [translation_record(k, translations, i) for i in range(len(translations))]
    return document("translate", body)


def _denies(entry: int, err: int, nxe: bool) -> bool:
    """Whether one entry's own bits forbid the access a protection #PF reports."""
    if err & PF_USER and not entry & 0x4:
        return True
    if err & PF_WRITE and not entry & 0x2:
        return True
    return bool(err & PF_INSTR and nxe and entry >> 63)


def entry_flags(entry: int, level: int, mode) -> List[str]:
    """The flag names of one paging-structure entry as the hardware reads it at ``level``
    (1 = page table) in paging ``mode``: on a 4 KiB leaf bit 7 is PAT; on a large leaf
    (PS set in a PD/PDPT entry) bit 7 is PSE and bit 12 PAT; in a pointer to a table
    bits 12 and up are the table's address."""
    if level == 1:
        return flag_names(entry & 0x8000000000000FFF, 12)
    large = bool(entry & 0x80) and (level == 2 or (level == 3 and mode.is_64bit))
    if large:
        return flag_names(entry & 0x8000000000001FFF, mode.pmd_shift if level == 2 else 30)
    return flag_names(entry & 0x8000000000000FFF, 21)


def translation_record(k, t, i: int) -> Dict[str, Any]:
    """One address of :class:`emu.machine.mmu.Translations` (with a trace) as JSON: ``va``,
    ``pa``, ``page_size``, ``flags``, ``fault`` (None, ``"#PF"`` or ``"#GP"``),
    ``error_code``, ``error`` (in words), ``fault_level`` and ``walk`` (per level:
    ``level``, ``table``, ``index``, ``entry``, ``flags``)."""
    err = int(t.error[i])
    names = level_names(k.paging_levels, k.mode.is_64bit)
    walk = []
    steps = t.steps(i) if t.trace is not None else []
    for s in steps:
        walk.append({"level": names[s.level], "table": hex64(s.table), "index": s.index, "entry": hex64(s.entry),
                     "flags": entry_flags(s.entry, s.level, k.mode)})
    rec: Dict[str, Any] = {"va": hex64(int(t.va[i])), "pa": None, "page_size": None, "flags": [], "fault": None,
                           "error_code": None, "error": None, "fault_level": None, "walk": walk}
    if err == -1:
        rec.update(pa=hex64(int(t.pa[i])), page_size=size_name(int(t.shift[i])),
                   flags=flag_names(int(t.flags[i]), int(t.shift[i])))
        return rec
    if err == FAULT_GP:
        rec.update(fault="#GP", error=error_code_text(err))
        return rec
    rec.update(fault="#PF", error_code=err, error=error_code_text(err))
    if steps:
        level = steps[-1].level
        if err & PF_PROT and not err & PF_RSVD:
            nxe = bool(k.params.cpu.nx) and k.mode.entry_bytes == 8
            deny = [s.level for s in steps if _denies(s.entry, err, nxe)]
            level = deny[0] if deny else level
        rec["fault_level"] = names[level]
    return rec


def diff_document(a, b, log_diff: List[str], differences: Sequence[Any]) -> Dict[str, Any]:
    """``emu diff --json``: both emulations (as ``emu run --json`` has them), the unified
    diff of their lines and every physical range mapped differently."""
    return document("diff", {
        "a": run_body(a), "b": run_body(b),
        "identical": not log_diff and not differences,
        "log_diff": log_diff,
        "differences": [d.to_json() for d in differences],
    })


def profiles_document(profiles: Dict[str, Any]) -> Dict[str, Any]:
    """``emu profiles --json``: every profile's fields (``page_offset*`` as ``"0x..."``)."""
    return document("profiles", {"profiles": {name: _profile_fields(p.to_json()) for name, p in profiles.items()}})


#: profile fields that are addresses (``"0x..."`` in JSON)
PROFILE_ADDRESS_FIELDS = ("page_offset", "page_offset_l5")


def _profile_fields(d: Dict[str, Any]) -> Dict[str, Any]:
    d = dict(d)
    for key in PROFILE_ADDRESS_FIELDS:
        if isinstance(d.get(key), int):
            d[key] = hex64(d[key])
    return d


def replay_document(results: Sequence[Any], passed: int, failed: int) -> Dict[str, Any]:
    """``emu replay --json``: ``results`` (each ``ReplayResult.to_json()``), ``passed``, ``failed``."""
    return document("replay", {"results": [r.to_json() for r in results], "passed": passed, "failed": failed})


def fuzz_summary_document(summary: Dict[str, Any]) -> Dict[str, Any]:
    """``emu fuzz --json``: ``FuzzSummary.to_json()``."""
    return document("fuzz-summary", summary)


def fuzz_finding_document(finding: Dict[str, Any]) -> Dict[str, Any]:
    """One finding file of ``emu fuzz`` (``DIR/<name>.json``): profile, signature, kind, detail,
    the command that replays it, the minimal and the original case, seed, index, shrink
    emulations, reference profile (:func:`emu.tools.campaign.write_finding`).  Nothing in it
    depends on where or when the finding was made: a cluster run and a local run write the
    same bytes."""
    finding = {k: v for k, v in finding.items() if k not in ("schema", "emu_version")}
    return document("fuzz-finding", finding)


def fuzz_state_document(state: Dict[str, Any]) -> Dict[str, Any]:
    """``DIR/state.json`` of an ``emu fuzz`` campaign: what a rerun resumes from (spec, next
    index, outcomes, coverage, corpus, findings, coverage snapshots)."""
    return document("fuzz-state", state)


def fuzz_corpus_document(entry: Dict[str, Any]) -> Dict[str, Any]:
    """``DIR/corpus/<index>.json``: a map that first reached some decision points
    (``index``, ``points``, ``case``)."""
    return document("fuzz-corpus", entry)


def e820_document(entries: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """An e820 map as ``--e820`` reads it: ``{"e820": [{"addr", "size", "type"}]}`` (``addr``
    and ``size`` as ``"0x..."``; e.g. ``DIR/<name>.e820.json`` of a fuzz finding)."""
    return document("e820", {"e820": [{"addr": hex64(_int(e["addr"])), "size": hex64(_int(e["size"])),
                                       "type": e["type"]} for e in entries]})


def _int(v: Any) -> int:
    return int(v, 0) if isinstance(v, str) else int(v)


def explain_document(explained: Dict[str, Any]) -> Dict[str, Any]:
    """``emu profiles --version V --json``: the profile a version resolves to and, per
    behaviour change, whether the version carries it (:func:`emu.kernel.profiles.explain`)."""
    d = dict(explained)
    if not isinstance(d.get("resolved"), str):
        d["resolved"] = ".".join(map(str, d["resolved"]))
    return document("profile-explain", d)


def changes_document(changes: Iterable[Any]) -> Dict[str, Any]:
    """``emu profiles --changes --json``: every behaviour change with its sources
    (``Change.to_json()``; 64-bit values it sets as ``"0x..."``)."""
    out = []
    for c in changes:
        d = c.to_json()
        d["sets"] = _profile_fields(d["sets"])
        out.append(d)
    return document("changes", {"changes": out})


# ---------------------------------------------------------------------------
# how the direct map was built, step by step
# ---------------------------------------------------------------------------
@dataclass
class Piece:
    """One piece of an ``init_memory_mapping`` call (a `` [mem ...] page 2M`` line)."""

    start: int
    end: int
    page_size: str          # "4K", "2M", "4M", "1G"
    kernel_text: str        # as the kernel prints it: "4k", "2M", "4M", "1G"

    def to_json(self) -> Dict[str, Any]:
        return {"start": hex64(self.start), "end": hex64(self.end), "page_size": self.page_size}


@dataclass
class Call:
    """One ``init_memory_mapping(start, end)`` call, its pieces and the page-table pages
    it allocated (``tables[source][level]``)."""

    index: int
    start: int
    end: int
    window: Optional[int]
    pieces: List[Piece]
    tables: Dict[str, Dict[str, int]] = field(default_factory=dict)

    def table_count(self, source: Optional[str] = None) -> int:
        if source is None:
            return sum(sum(v.values()) for v in self.tables.values())
        return sum(self.tables.get(source, {}).values())

    def to_json(self) -> Dict[str, Any]:
        return {"index": self.index, "start": hex64(self.start), "end": hex64(self.end), "window": self.window,
                "pieces": [p.to_json() for p in self.pieces], "tables": self.tables}


@dataclass
class Window:
    """One window of ``memory_map_top_down``/``bottom_up`` with the step size in force
    (0: the part above ``real_end``, mapped after the loop)."""

    index: int
    start: int
    end: int
    step_size: int
    calls: List[int]

    def to_json(self) -> Dict[str, Any]:
        return {"index": self.index, "start": hex64(self.start), "end": hex64(self.end),
                "step_size": hex64(self.step_size), "calls": self.calls}


@dataclass
class Steps:
    """How one emulation built its direct map, from the kernel's own records."""

    profile: str
    arch: str
    e820: List[Any]                 # E820Entry (addr, size, type) as the kernel used it
    e820_lines: List[str]
    windows: List[Window]
    calls: List[Call]
    #: every page-table page: pfn, hardware level, source name, call index (-1: before the first)
    table_pfn: np.ndarray
    table_level: np.ndarray
    table_source: List[str]
    table_call: np.ndarray
    level_names: Dict[int, str]
    max_pfn: int
    panic: Optional[str]


def mapping_steps(result) -> Steps:
    """The e820 map, the windows, the calls with their pieces and the page-table pages by
    source and call, as the emulation recorded them (``Kernel.windows``, ``Kernel.calls``,
    ``Kernel.table_pages``)."""
    from emu.kernel.arch.x86.mm.init import MapRange, page_size_string
    k = result.kernel
    tp = k.table_pages
    names = level_names(k.paging_levels, k.mode.is_64bit)
    src_codes = tp.column("src")
    sources = [tp.SOURCES[int(c)] for c in src_codes.tolist()]
    call_of = {}
    windows = []
    for i, w in enumerate(k.windows):
        end_call = len(k.calls) if w.end_call is None else w.end_call     # None: it panicked in this window
        windows.append(Window(i, w.start, w.end, w.step_size, list(range(w.first_call, end_call))))
        for c in range(w.first_call, end_call):
            call_of[c] = i
    calls = []
    lv, cl = tp.column("level"), tp.column("call")
    for i, c in enumerate(k.calls):
        pieces = []
        for s, e, m in c.ranges:
            text = page_size_string(k, MapRange(s, e, m))
            pieces.append(Piece(s, e, _page_size_key(text), text))
        calls.append(Call(i, c.start, c.end, call_of.get(i), pieces))
    for call_idx, level, src in zip(cl.tolist(), lv.tolist(), sources):
        if 0 <= call_idx < len(calls):
            d = calls[call_idx].tables.setdefault(src, {})
            d[names[level]] = d.get(names[level], 0) + 1
    lines = e820_lines(k.e820, "BIOS-e820", k.profile.version)
    return Steps(result.profile, k.mode.arch, list(k.e820.entries), lines, windows, calls,
                 tp.column("pfn").copy(), lv.copy(), sources, cl.copy(), names, k.max_pfn, result.panic)


def _mem(start: int, end: int, width: int = 10) -> str:
    """``[mem %#010lx-%#010lx]`` (the kernel's range notation, end inclusive)."""
    return "[mem %#0*x-%#0*x]" % (width, start, width, end - 1)


def _levels_text(tables: Dict[str, Dict[str, int]]) -> str:
    return "; ".join(f"{src} " + " ".join(f"{lvl}:{n}" for lvl, n in lv.items()) for src, lv in tables.items())


def steps_lines(result) -> List[str]:
    """``emu run --steps``: the e820 map as the kernel prints it, then one row per
    ``init_memory_mapping`` call in the order the kernel made them: the window and the
    step size it was cut with, the call's range, its pieces (size@page size), and the
    page-table pages it took by source and level; then the totals per source."""
    st = mapping_steps(result)
    out = ["e820 map (as the kernel prints it):"] + ["  " + ln for ln in st.e820_lines]
    out.append("")
    rows = []
    before: Dict[str, Dict[str, int]] = {}
    for src, lvl, c in zip(st.table_source, st.table_level.tolist(), st.table_call.tolist()):
        if c < 0:
            d = before.setdefault(src, {})
            d[st.level_names[lvl]] = d.get(st.level_names[lvl], 0) + 1
    if before:
        rows.append(("-", "(before init_mem_mapping)", "", "", "", _levels_text(before)))
    last_window = None
    for c in st.calls:
        w = st.windows[c.window] if c.window is not None else None
        if w is not None and c.window != last_window:
            wtext, step = _mem(w.start, w.end), (mib(w.step_size) if w.step_size else "rest")
        elif w is not None:
            wtext, step = '"', ""
        else:
            wtext, step = "-", ""
        last_window = c.window
        pieces = ", ".join(f"{mib(p.end - p.start)}@{p.page_size}" for p in c.pieces)
        rows.append((str(c.index), wtext, step, _mem(c.start, c.end), pieces, _levels_text(c.tables) or "-"))
    head = ("#", "window", "step", "init_memory_mapping", "pieces (size@page)", "page tables taken")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(5)]
    fmt = "%{0}s  %-{1}s  %{2}s  %-{3}s  %-{4}s  %s".format(*widths)
    out.append(fmt % head)
    out.append("-" * (sum(widths) + 10 + len(head[5])))
    out.extend((fmt % r).rstrip() for r in rows)
    empty = [w for w in st.windows if not w.calls]
    if empty:
        out.append(f"({len(empty)} window(s) without RAM: "
                   + ", ".join(f"{_mem(w.start, w.end)} step {mib(w.step_size)}" for w in empty[:4])
                   + (" ..." if len(empty) > 4 else "") + ")")
    totals: Dict[str, int] = {}
    for s in st.table_source:
        totals[s] = totals.get(s, 0) + 1
    out.append("")
    out.append("page-table pages: " + (", ".join(f"{s} {n}" for s, n in totals.items()) or "none"))
    if st.panic:
        out.append(f"result: {st.panic}")
    return out


def summary_lines(result) -> List[str]:
    """The summary ``emu run`` prints after the kernel's lines: profile and timing, the
    page-table pages per level and source, ``/proc/meminfo``'s DirectMap lines (in the
    kernel's format) and the verification."""
    k = result.kernel
    pt = result.pgtable_pages
    levels = ", ".join(f"{name.upper()} {n}" for name, n in pt["by_level"].items())
    out = [
        "",
        f"--- emu: profile {result.profile}, {result.arch} {k.paging_levels}-level, "
        f"max_pfn {k.max_pfn:#x}, {result.seconds * 1000:.1f} ms ({k.engine.name}) ---",
        f"page-table pages: {pt['total']} ({levels}); from " + pgtable_sources_text(pt),
    ]
    out.extend(meminfo_lines(result.meminfo))
    if result.panic:
        out.append(f"result: {result.panic}")
    elif result.verify is not None:
        v = result.verify
        if v.ok:
            out.append(f"verify: OK ({v.checked.get('leaf_runs', 0)} leaf runs, {v.checked.get('walks', 0)} walks, "
                       f"{v.checked.get('table_pages', 0)} table pages checked)")
        else:
            out.append(f"verify: FAILED, {v.violation_count} violation(s)")
            out.extend(f"  {m}" for m in v.violations[:20])
    for w in result.warnings:
        out.append(f"warning: {w}")
    return out


def pgtable_sources_text(pt: Dict[str, Any]) -> str:
    """``brk 6, memblock 3, image 1`` (sources that gave pages, in the kernel's order)."""
    return ", ".join(f"{name} {n}" for name, n in pt["by_source"].items() if n) or "nothing"


def walk_lines(k, t, i: int) -> List[str]:
    """One translation as ``emu translate`` prints it, level by level like crash's
    ``vtop``: the result line, then per level the table page's physical address, the
    entry's index, the raw entry and its flags; on a #PF the level that faulted and
    the error code in words."""
    rec = translation_record(k, t, i)
    is64 = k.mode.is_64bit
    vw = 16 if is64 else 8
    ew = 8 if k.mode.entry_bytes == 4 else 16
    pw = 16 if is64 else 8
    va = int(t.va[i]) & ((1 << (64 if is64 else 32)) - 1)
    if rec["fault"] is None:
        head = "%#0*x -> %#0*x  %s  %s" % (vw + 2, va, pw + 2, int(rec["pa"], 16), rec["page_size"],
                                            " ".join(rec["flags"]))
    elif rec["fault"] == "#GP":
        head = "%#0*x -> #GP (non-canonical address)" % (vw + 2, va)
    else:
        at = f" at {rec['fault_level'].upper()}" if rec["fault_level"] else ""
        head = "%#0*x -> #PF error code %#x (%s)%s" % (vw + 2, va, rec["error_code"], rec["error"], at)
    out = [head]
    for n, w in enumerate(rec["walk"]):
        entry = int(w["entry"], 16)
        if not entry & 1:
            what = "not present"
        else:
            what = " ".join(w["flags"])
            if n == len(rec["walk"]) - 1 and rec["fault"] == "#PF" and rec["error_code"] & PF_RSVD:
                what += "  (reserved bit set)"
        idx_w = 4 if k.mode.ptrs_per_table > 512 else 3
        out.append("  %-4s table %#0*x [%*d] = %#0*x  %s" % (w["level"].upper(), pw + 2, int(w["table"], 16),
                                                          idx_w, w["index"], ew + 2, entry, what))
    return out


def unified_diff(a_lines: Iterable[str], b_lines: Iterable[str], a_name: str, b_name: str,
                 context: int = 3) -> List[str]:
    """A unified diff (``difflib``): only the lines that differ are marked."""
    import difflib
    return list(difflib.unified_diff(list(a_lines), list(b_lines), a_name, b_name, lineterm="", n=context))


__all__ = [
    "KINDS", "meminfo_lines", "ptdump_marker", "ptdump_line", "ptdump_prot", "ptdump_size", "e820_lines",
    "size_name", "level_names", "hex64", "json_safe", "document", "dumps", "schema", "validate", "run_document",
    "check_document", "dump_document", "raw_meta_document", "translate_document", "translation_record",
    "diff_document", "profiles_document", "replay_document", "fuzz_summary_document",
    "fuzz_finding_document", "fuzz_state_document", "fuzz_corpus_document", "e820_document", "explain_document",
    "changes_document", "mapping_steps", "steps_lines", "summary_lines", "walk_lines", "unified_diff", "fsync_dir",
]


def fsync_dir(path: str) -> None:
    """Make a rename or a new file in directory ``path`` durable (best effort: a filesystem
    that cannot fsync a directory is left as it is)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
