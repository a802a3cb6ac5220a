"""``memblock=debug`` lines of a boot log, and the early reservations they show.

With ``memblock=debug`` on its command line the kernel prints every memblock call made
after the option is parsed (``parse_early_param`` in ``setup_arch``) and dumps the whole
memblock state once ``e820__memblock_setup`` (``memblock_x86_fill`` before 4.12) has
filled it.  The printed forms (mm/memblock.c, arch/x86/mm/memblock.c, kernel/early_res.c):

* 5.x-6.x ``memblock_reserve: [0x0000000004400000-0x0000000004410fff] setup_arch+0x797/0xd4f``
  (``%s: [%pa-%pa] %pS``; also ``memblock_add``, ``memblock_remove``, ``memblock_free``,
  ``memblock_phys_free``); 6.15+ may add ``nid=N flags=F`` before the caller;
* 3.x-4.x ``memblock_reserve: [0x00000001fdd000-0x00000001feffff] flags 0x0 setup_arch+...``
  (``%#016llx``; the upper bound is printed exclusive before the fix "mm/memblock: debug:
  correct displaying of upper memory boundary" (Grygorii Strashko, linux-mm 2013-11-08; in
  3.14, *likely*), inclusive after);
* allocation requests ``memblock_phys_alloc_range: 28672 bytes align=0x1000
  from=0x0000000000000000 max_addr=0x0000000000100000 reserve_real_mode+0x50/0x89`` and the
  ``memblock_alloc_try_nid``, ``memblock_alloc_exact_nid_raw``, ``memblock_alloc_try_nid_raw``,
  ``memblock_virt_alloc_try_nid*`` forms; each is followed by the ``memblock_reserve`` of the
  range found, whose caller is the allocator (``memblock_alloc_range_nid+0xb0/0x13d``):
  :attr:`MemblockOp.requested_by` names the function that asked;
* 2.6.38-3.2 ``memblock_x86_reserve_range: [0x01000000-0x01b18dff]    TEXT DATA BSS`` (a name
  instead of a caller, inclusive end) and ``memblock_x86_free_range: [..]``;
* 2.6.3x ``early_res`` tables (printed without ``memblock=debug`` when the early
  reservations are handed to bootmem): ``#2 [0001000000 - 0001b18e00]    TEXT DATA BSS ==>
  [0001000000 - 0001b18e00]`` (exclusive end);
* the dump: ``MEMBLOCK configuration:``, `` memory size = ... reserved size = ...``,
  `` memory[0x0]\\t[0x..-0x..], 0x.. bytes [on node N] flags: 0x0``, `` reserved[0x2]\\t...``.

What a log can and cannot show (5.10, 6.1, 6.12; checked on the Debian boots of
``/work/research/oracle/logs``): the kernel image (``early_reserve_memory`` in 5.13+,
``setup_arch``'s first lines before, ``x86_64_start_reservations`` in 3.x) and the initrd
(``early_reserve_initrd``) are reserved *before* ``memblock=debug`` is parsed, so they are
never printed as calls; ``reserve_brk`` is the one ``memblock_reserve`` whose caller is
``setup_arch`` (where it is inlined) printed before the first ``memblock_add``
(``e820__memblock_setup``).  The image and the initrd are visible in the dump that follows:
the image ends where the BRK area begins (``__end_of_kernel_reserve`` = ``__brk_base``,
vmlinux.lds.S 5.x) so the two merge into one reserved region, and the initrd is the region
the ``RAMDISK: [mem ..]`` line names.  :func:`derive_reservations` applies these rules and
says why for each.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = [
    "MemblockOp", "MemblockRegion", "MemblockDump", "Reservation", "MemblockState",
    "parse_memblock_line", "parse_early_res_line", "parse_dump_region",
    "classify", "derive_reservations", "LABEL_KINDS", "CALLER_KINDS", "ALLOCATOR_CALLERS",
    "MAPPING_CALLERS",
]

PAGE = 4096


@dataclass
class MemblockOp:
    """One printed memblock call.

    ``op`` is the function name as printed (``memblock_reserve``, ``memblock_add``,
    ``memblock_phys_free``, ``memblock_phys_alloc_range``, ``memblock_alloc_try_nid``,
    ``memblock_x86_reserve_range``, ``early_res``...).  ``start``/``end`` are the range,
    ``end`` **exclusive** (the kernel prints the inclusive last byte since 3.14; ``end`` =
    printed last + 1; see the module docstring for older forms); both None for an
    allocation request, which has ``size``, ``align``, ``nid``, ``min_addr`` (``from=``)
    and ``max_addr`` instead.  ``caller`` is the symbol of the return address
    (``setup_arch``), ``caller_offset``/``caller_size`` its ``+0x797/0xd4f``; a name-style
    line (``memblock_x86_reserve_range``, ``early_res``) has ``label`` (``TEXT DATA BSS``)
    and no caller.  ``requested_by`` is, for a ``memblock_reserve`` made by the allocator,
    the caller of the request line just before it.  ``lineno`` is the input line."""

    op: str
    lineno: int
    start: Optional[int] = None
    end: Optional[int] = None
    caller: Optional[str] = None
    caller_offset: Optional[int] = None
    caller_size: Optional[int] = None
    label: Optional[str] = None
    size: Optional[int] = None
    align: Optional[int] = None
    nid: Optional[int] = None
    min_addr: Optional[int] = None
    max_addr: Optional[int] = None
    flags: Optional[int] = None
    requested_by: Optional[str] = None
    inclusive: bool = True

    @property
    def is_request(self) -> bool:
        return self.start is None

    @property
    def last(self) -> Optional[int]:
        return None if self.end is None else self.end - 1

    @property
    def who(self) -> Optional[str]:
        """The function the reservation is for: ``requested_by`` or ``caller`` or ``label``."""
        return self.requested_by or self.caller or self.label


@dataclass(frozen=True)
class MemblockRegion:
    """One region line of a ``MEMBLOCK configuration:`` dump; ``end`` exclusive
    (``start`` + the printed size)."""

    type: str
    index: int
    start: int
    end: int
    lineno: int
    nid: Optional[int] = None
    flags: Optional[int] = None


@dataclass
class MemblockDump:
    """One ``MEMBLOCK configuration:`` dump (``memblock_dump_all``): its header line and
    the ``memory``/``reserved`` regions in printed order."""

    lineno: int
    memory: List[MemblockRegion] = field(default_factory=list)
    reserved: List[MemblockRegion] = field(default_factory=list)


@dataclass(frozen=True)
class Reservation:
    """An early reservation a log shows: ``what`` is ``brk``, ``image``, ``initrd``,
    ``realmode`` (the real-mode trampoline), ``bios_regions`` (EBDA to 1 MiB),
    ``low_memory`` (the first 64 KiB / 1 MiB / BIOS data page), ``initrd_relocated`` (2.6.3x
    ``NEW RAMDISK``: where ``relocate_initrd`` moved it, after the mapping), ``mptable``,
    ``acpi_tables``, ``setup_data``, ``ibft``, ``snb_gfx``, ``pgtable`` (an early
    page-table buffer) or ``other``; ``[start, end)`` (``end`` exclusive); ``lineno`` the line
    that shows it; ``source`` that line's op/label or the dump region; ``why`` the rule."""

    what: str
    start: int
    end: int
    lineno: int
    source: str
    why: str

    @property
    def last(self) -> int:
        return self.end - 1

    def to_json(self) -> Dict[str, object]:
        return {"what": self.what, "start": "%#x" % self.start, "end": "%#x" % self.end,
                "line": self.lineno, "source": self.source, "why": self.why}


@dataclass(frozen=True)
class MemblockState:
    """memblock as ``init_mem_mapping`` found it: the dump's regions (state at
    ``e820__memblock_setup``) with every printed reserve/free applied up to the first
    line of the mapping (``to_lineno``, exclusive).  Ranges are ``[start, end)``, sorted
    and merged."""

    from_lineno: int
    to_lineno: Optional[int]
    memory: Tuple[Tuple[int, int], ...]
    reserved: Tuple[Tuple[int, int], ...]
    why: str


# ---------------------------------------------------------------------------
# lines
# ---------------------------------------------------------------------------
_HEXN = r"0x[0-9a-fA-F]+"
_RE_RANGE = re.compile(r"^(?P<op>_{0,2}memblock_\w+): \[(?P<a>%s)-(?P<b>%s)\](?P<rest>.*)$" % (_HEXN, _HEXN))
_RE_REQUEST = re.compile(
    r"^(?P<op>_{0,2}memblock\w*): (?P<size>\d+) bytes align=(?P<align>%s)(?: nid=(?P<nid>-?\d+))?"
    r" from=(?P<from>%s) max_addr=(?P<max>%s)(?: (?P<caller>\S+))?\s*$" % (_HEXN, _HEXN, _HEXN))
_RE_REST = re.compile(r"^\s*(?:(?:with )?flags (?P<flags>%s)\s*)?(?:nid=(?P<nid>-?\d+) flags=(?P<flags2>(?:0x)?[0-9a-fA-F]+)\s*)?"
                      r"(?P<tail>.*?)\s*$" % _HEXN)
_RE_CALLER = re.compile(r"^(?P<sym>[A-Za-z_.$][\w.$]*)\+(?P<off>%s)/(?P<size>%s)(?: \[\w+\])?$" % (_HEXN, _HEXN))
_RE_EARLY_RES = re.compile(
    r"^#(?P<i>\d+) \[(?P<a>[0-9a-fA-F]+) - (?P<b>[0-9a-fA-F]+)\]\s+(?P<label>.+?) ==> \[[0-9a-fA-F]+ - [0-9a-fA-F]+\]$")
_RE_DUMP_REGION = re.compile(
    r"^(?P<type>memory|reserved|physmem)\[(?P<i>0x[0-9a-fA-F]+|\d+)\]\s*\[(?P<a>%s)-(?P<b>%s)\], (?P<size>%s|\d+) bytes"
    r"(?: on node (?P<nid>\d+))?(?: flags: (?P<flags>%s))?" % (_HEXN, _HEXN, _HEXN, _HEXN))


def _split_caller(text: str) -> Tuple[Optional[str], Optional[int], Optional[int]]:
    m = _RE_CALLER.match(text)
    if m:
        return m.group("sym"), int(m.group("off"), 16), int(m.group("size"), 16)
    return (text or None), None, None


def parse_memblock_line(s: str, lineno: int, inclusive: bool = True) -> Optional[MemblockOp]:
    """A ``memblock_*`` debug line (stripped) as a :class:`MemblockOp`, or None.

    ``inclusive``: whether a ``memblock_reserve``/``memblock_free`` line of the old
    ``%#016llx`` form prints its last byte (3.14+) or its end (before); the ``%pa`` form
    (16 or 8 hex digits), ``memblock_x86_*`` and every other call print the last byte."""
    if not s.startswith(("memblock", "__memblock")):
        return None
    m = _RE_RANGE.match(s)
    if m:
        op = m.group("op")
        a, b = int(m.group("a"), 16), int(m.group("b"), 16)
        rest = _RE_REST.match(m.group("rest"))
        assert rest is not None
        flags = rest.group("flags") or rest.group("flags2")
        tail = rest.group("tail")
        label = caller = None
        off = csize = None
        if op.startswith("memblock_x86_"):
            label = tail or None
        else:
            caller, off, csize = _split_caller(tail)
        digits = len(m.group("a")) - 2
        incl = True
        if digits not in (8, 16) and op in ("memblock_reserve", "memblock_free") and not inclusive:
            incl = False
        end = b + 1 if incl else b
        return MemblockOp(op, lineno, a, end, caller, off, csize, label,
                          flags=int(flags, 16) if flags else None,
                          nid=int(rest.group("nid")) if rest.group("nid") else None, inclusive=incl)
    m = _RE_REQUEST.match(s)
    if m:
        caller, off, csize = _split_caller(m.group("caller") or "")
        return MemblockOp(m.group("op"), lineno, caller=caller, caller_offset=off, caller_size=csize,
                          size=int(m.group("size")), align=int(m.group("align"), 16),
                          nid=int(m.group("nid")) if m.group("nid") is not None else None,
                          min_addr=int(m.group("from"), 16), max_addr=int(m.group("max"), 16))
    return None


def parse_early_res_line(s: str, lineno: int) -> Optional[MemblockOp]:
    """A 2.6.3x ``early_res`` table line (``#2 [0001000000 - 0001b18e00]  TEXT DATA BSS ==>
    [..]``, exclusive end) as a :class:`MemblockOp` with ``op`` ``early_res``, or None."""
    if not s.startswith("#"):
        return None
    m = _RE_EARLY_RES.match(s)
    if not m:
        return None
    return MemblockOp("early_res", lineno, int(m.group("a"), 16), int(m.group("b"), 16),
                      label=m.group("label").strip(), inclusive=False)


def parse_dump_region(s: str, lineno: int) -> Optional[MemblockRegion]:
    """A `` memory[0x0]\\t[0x..-0x..], 0x.. bytes ... flags: 0x0`` dump line, or None."""
    m = _RE_DUMP_REGION.match(s)
    if not m:
        return None
    i = m.group("i")
    size_t = m.group("size")
    a = int(m.group("a"), 16)
    size = int(size_t, 16) if size_t.startswith("0x") else int(size_t)
    return MemblockRegion(m.group("type"), int(i, 16) if i.startswith("0x") else int(i), a, a + size, lineno,
                          int(m.group("nid")) if m.group("nid") else None,
                          int(m.group("flags"), 16) if m.group("flags") else None)


# ---------------------------------------------------------------------------
# classification
# ---------------------------------------------------------------------------
#: early_res / memblock_x86_reserve_range names -> reservation kinds
LABEL_KINDS: Dict[str, str] = {
    "TEXT DATA BSS": "image", "RAMDISK": "initrd", "NEW RAMDISK": "initrd_relocated", "BRK": "brk",
    "TRAMPOLINE": "realmode", "EX TRAMPOLINE": "realmode", "REALMODE": "realmode",
    "EBDA": "bios_regions", "BIOS reserved": "bios_regions", "BIOS data page": "low_memory",
    "PGTABLE": "pgtable", "SETUP DATA": "setup_data", "setup_data": "setup_data",
    "ISA Reserved": "bios_regions", "ibft": "ibft",
}
#: callers (or requesters) of a reservation -> reservation kinds
CALLER_KINDS: Dict[str, str] = {
    "reserve_real_mode": "realmode", "setup_real_mode": "realmode",
    "reserve_bios_regions": "bios_regions", "reserve_ebda_region": "bios_regions",
    "smp_scan_config": "mptable", "find_smp_config": "mptable", "smp_reserve_memory": "mptable",
    "acpi_reserve_initial_tables": "acpi_tables", "acpi_table_upgrade": "acpi_tables",
    "memblock_x86_reserve_range_setup_data": "setup_data", "e820__reserve_setup_data": "setup_data",
    "reserve_setup_data": "setup_data", "memblock_reserve_setup_data": "setup_data",
    "reserve_ibft_region": "ibft", "trim_snb_memory": "snb_gfx",
    "early_reserve_initrd": "initrd", "reserve_initrd": "initrd", "relocate_initrd": "initrd",
    "reserve_brk": "brk", "early_reserve_memory": "other",
    "trim_low_memory_range": "low_memory", "trim_platform_memory_ranges": "low_memory",
    "init_mem_mapping": "pgtable", "alloc_low_pages": "pgtable", "find_early_table_space": "pgtable",
}
#: callers that are memblock's own allocator (the reservation is for the previous request)
ALLOCATOR_CALLERS = frozenset({
    "memblock_alloc_range_nid", "memblock_alloc_internal", "memblock_virt_alloc_internal",
    "memblock_alloc_base_nid", "__memblock_alloc_base", "memblock_alloc_nid", "memblock_find_in_range_node",
    "memblock_phys_alloc_range", "memblock_phys_alloc_try_nid", "memblock_alloc_try_nid",
    "memblock_alloc_try_nid_raw", "memblock_alloc_exact_nid_raw", "memblock_virt_alloc_try_nid",
    "memblock_virt_alloc_try_nid_nopanic", "memblock_alloc_range", "__memblock_find_range_top_down",
})
#: a reserve/alloc from these callers is made by ``init_mem_mapping`` itself
MAPPING_CALLERS = frozenset({
    "init_mem_mapping", "alloc_low_pages", "alloc_low_page", "init_range_memory_mapping",
    "memory_map_top_down", "memory_map_bottom_up", "find_early_table_space", "init_memory_mapping",
    "kernel_physical_mapping_init",
})


def classify(op: MemblockOp, before_fill: bool) -> str:
    """The reservation kind of a reserve ``op`` (see :class:`Reservation`); ``before_fill``:
    printed before the first ``memblock_add`` / ``MEMBLOCK configuration`` (where the only
    ``setup_arch`` reservation is ``reserve_brk``)."""
    if op.label is not None:
        return LABEL_KINDS.get(op.label, "other")
    who = op.who or ""
    if op.start == 0 and who not in MAPPING_CALLERS:
        return "low_memory"
    if who in CALLER_KINDS:
        return CALLER_KINDS[who]
    if who == "setup_arch":
        if before_fill:
            return "brk"
        if op.start == 0:
            return "low_memory"
        if op.end == 0x100000:
            return "bios_regions"
    return "other"


def _merge(ranges: Sequence[Tuple[int, int]]) -> List[Tuple[int, int]]:
    out: List[Tuple[int, int]] = []
    for a, b in sorted(r for r in ranges if r[1] > r[0]):
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _subtract(ranges: List[Tuple[int, int]], a: int, b: int) -> List[Tuple[int, int]]:
    out: List[Tuple[int, int]] = []
    for s, e in ranges:
        if e <= a or s >= b:
            out.append((s, e))
            continue
        if s < a:
            out.append((s, a))
        if e > b:
            out.append((b, e))
    return out


_RESERVE_OPS = ("memblock_reserve", "__memblock_reserve", "memblock_x86_reserve_range", "early_res")
_FREE_OPS = ("memblock_free", "memblock_phys_free", "__memblock_free_early", "memblock_x86_free_range")


@dataclass
class Derived:
    """What :func:`derive_reservations` finds (fields of :class:`emu.inputs.dmesg.BootLog`)."""

    early_reservations: List[Reservation] = field(default_factory=list)
    brk: Optional[Reservation] = None
    image: Optional[Reservation] = None
    initrd: Optional[Reservation] = None
    state: Optional[MemblockState] = None
    warnings: List[str] = field(default_factory=list)


def derive_reservations(ops: Sequence[MemblockOp], dumps: Sequence[MemblockDump],
                        mapping_lineno: Optional[int], ramdisk: Optional[Tuple[int, int]],
                        ramdisk_lineno: Optional[int], brk_lines: Sequence[Tuple[int, int]]) -> Derived:
    """The early reservations of a log (before ``mapping_lineno``, the first line printed
    by or after ``init_mem_mapping``), the BRK, image and initrd reservations, and memblock's
    state at the mapping; each with the rule it rests on.

    ``ramdisk`` is the ``RAMDISK:`` line's range (inclusive end) and its line;
    ``brk_lines`` the ``BRK [..] PGTABLE`` pages (inclusive ends), used as a cross-check."""
    d = Derived()
    first_fill: Optional[int] = None
    for op in ops:
        if op.op == "memblock_add":
            first_fill = op.lineno
            break
    if dumps and (first_fill is None or dumps[0].lineno < first_fill):
        first_fill = dumps[0].lineno
    stop = mapping_lineno
    for op in ops:
        if op.caller in MAPPING_CALLERS or op.requested_by in MAPPING_CALLERS:
            stop = op.lineno if stop is None else min(stop, op.lineno)
            break

    def early(o: MemblockOp) -> bool:
        # an early_res table is a snapshot of every early reservation, printed after the mapping
        return stop is None or o.lineno < stop or o.op == "early_res"

    for op in ops:
        if op.op not in _RESERVE_OPS or op.start is None or op.end is None or not early(op):
            continue
        before_fill = first_fill is None or op.lineno < first_fill
        kind = classify(op, before_fill and op.op != "early_res")
        if op.label is not None:
            why = "named %r by %s" % (op.label, op.op)
        elif kind == "brk":
            why = ("reserve_brk(): the memblock_reserve from setup_arch printed before e820__memblock_setup's "
                   "first memblock_add (the image and initrd are reserved before memblock=debug is parsed)")
        elif op.requested_by:
            why = "allocated for %s (%s)" % (op.requested_by, op.op)
        elif kind == "low_memory":
            why = "%s reserves the low memory from 0 (X86_RESERVE_LOW / the first 1 MiB)" % (op.caller or "?")
        elif kind == "bios_regions" and op.caller == "setup_arch":
            why = "setup_arch reserves the EBDA up to 1 MiB (reserve_bios_regions, inlined)"
        else:
            why = "caller %s" % (op.caller or "?")
        src = "%s %s" % (op.op, op.label or (op.caller or "?"))
        r = Reservation(kind, op.start, op.end, op.lineno, src, why)
        d.early_reservations.append(r)
        if kind == "brk" and d.brk is None:
            d.brk = r
        elif kind == "image" and d.image is None:
            d.image = r
        elif kind == "initrd" and d.initrd is None:
            d.initrd = r

    dump = dumps[0] if dumps else None
    # the image: the dump region holding the BRK reservation, below it
    if d.image is None and d.brk is not None and dump is not None:
        br = d.brk
        holder = next((g for g in dump.reserved if g.start <= br.start < g.end), None)
        if holder is not None and holder.start < br.start:
            d.image = Reservation(
                "image", holder.start, br.start, holder.lineno, "MEMBLOCK configuration reserved[%#x]" % holder.index,
                "the kernel image (reserved before memblock=debug is parsed) ends where the BRK area begins: "
                "reserved[%#x] [%#x-%#x] less the BRK reservation at %#x" % (holder.index, holder.start,
                                                                          holder.end - 1, br.start))
        else:
            below = [g for g in dump.reserved if g.end <= br.start and br.start - g.end < PAGE and g.start >= 0x100000]
            if below:
                g = below[-1]
                d.image = Reservation(
                    "image", g.start, g.end, g.lineno, "MEMBLOCK configuration reserved[%#x]" % g.index,
                    "the dump region ending within a page below the BRK reservation (image ends at __bss_stop, "
                    "BRK starts at the next page)")
        if d.image is not None:
            d.early_reservations.append(d.image)
    # the initrd: the dump region the RAMDISK line names
    if d.initrd is None and ramdisk is not None:
        a, last = ramdisk
        e = last + 1          # 3.5+ print the page-aligned end, older ones the image's end
        lno = ramdisk_lineno or 0
        region = None
        if dump is not None:
            region = next((g for g in dump.reserved if g.start == a and g.end >= e), None)
        if region is not None:
            d.initrd = Reservation("initrd", a, e, region.lineno, "MEMBLOCK configuration reserved[%#x]" % region.index,
                                   "early_reserve_initrd (before memblock=debug is parsed): the dump region at the "
                                   "RAMDISK line's address (line %d)" % lno)
        else:
            d.initrd = Reservation("initrd", a, e, lno, "RAMDISK line",
                                   "the RAMDISK line names the boot loader's initrd as "
                                   "early_reserve_initrd reserved it (page-aligned end in 3.5+ kernels)")
        d.early_reservations.append(d.initrd)
    # cross-checks
    if d.brk is not None and brk_lines:
        a, last = brk_lines[0]
        if not (d.brk.start <= a and last < d.brk.end):
            d.warnings.append("BRK [%#x, %#x] PGTABLE lies outside the reserve_brk reservation [%#x-%#x] (line %d)"
                              % (a, last, d.brk.start, d.brk.end - 1, d.brk.lineno))
    if d.brk is not None and dump is not None and not any(g.start <= d.brk.start and d.brk.end <= g.end
                                                         for g in dump.reserved):
        d.warnings.append("the reserve_brk reservation [%#x-%#x] (line %d) is not in the MEMBLOCK dump at line %d"
                          % (d.brk.start, d.brk.end - 1, d.brk.lineno, dump.lineno))
    # memblock at the mapping
    if dump is not None:
        reserved = [(g.start, g.end) for g in dump.reserved]
        memory = [(g.start, g.end) for g in dump.memory]
        n = 0
        for op in ops:
            if op.lineno <= dump.lineno or op.start is None or op.end is None or not early(op):
                continue
            if op.op in _RESERVE_OPS:
                reserved.append((op.start, op.end))
                n += 1
            elif op.op in _FREE_OPS:
                reserved = _subtract(_merge(reserved), op.start, op.end)
                n += 1
            elif op.op == "memblock_add":
                memory.append((op.start, op.end))
                n += 1
            elif op.op == "memblock_remove":
                memory = _subtract(_merge(memory), op.start, op.end)
                n += 1
        d.state = MemblockState(
            dump.lineno, stop, tuple(_merge(memory)), tuple(_merge(reserved)),
            "the MEMBLOCK configuration dump at line %d with the %d later printed calls before %s"
            % (dump.lineno, n, "line %d" % stop if stop is not None else "the end of the log"))
    return d
