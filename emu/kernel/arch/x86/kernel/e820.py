"""The x86 e820 memory map as the kernel keeps and edits it.

Re-expresses, in emu's own code, the behaviour of ``arch/x86/kernel/e820.c``:

* ``sanitize_e820_map`` (v2.6.x-v4.11) / ``e820__update_table`` (v4.12+):
  change-point algorithm, overlaps resolved in favour of the largest type
  number, touching entries of one type merged (except the "no-merge" types:
  ``E820_PRAM`` from v4.1, ``E820_SOFT_RESERVED`` from v5.5), result sorted.
  Read in Linux v3.6 (``New-B/Linux3.6``) and v5.10 (``MrGeek-zrh/linux-5.10``).
* ``e820_update_range`` / ``e820__range_update`` and ``e820_remove_range`` /
  ``e820__range_remove`` including their splitting of partially covered
  entries and the order in which the new pieces are appended (v3.6, v5.10).
* ``e820_end_pfn`` / ``e820_end_of_ram_pfn`` / ``e820_end_of_low_ram_pfn``
  (v3.6, v4.19; reference doc section F.5).
* ``e820_any_mapped`` / ``e820__mapped_any`` (v3.6, v5.10).
* ``e820_print_map`` / ``e820__print_table`` and ``e820_print_type`` line
  formats: ``"%s: [mem %#018Lx-%#018Lx] "`` from v3.5, ``" %s: %016Lx - %016Lx "``
  with ``(usable)``-style type names before.

Parsers turn JSON, kernel-printed text (``BIOS-e820:`` / ``Xen:`` lines of both
formats) and ``/sys/firmware/memmap`` into :class:`E820Table` objects; every
problem is reported as one :class:`E820Error` line naming the input.

No kernel code is reproduced here; the algorithms are rewritten from a reading
of the sources cited above.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "E820_RAM", "E820_RESERVED", "E820_ACPI", "E820_NVS", "E820_UNUSABLE",
    "E820_PMEM", "E820_PRAM", "E820_SOFT_RESERVED", "E820_RESERVED_KERN",
    "U64_MAX", "E820_MAX", "ISA_END_ADDRESS",
    "E820Entry", "E820Error", "E820Table",
    "type_name", "type_from_name", "nomerge_types_for", "max_arch_pfn_for",
    "format_update_line", "format_remove_line", "format_last_pfn_line",
    "parse_e820_line", "looks_like_e820_line", "parse_e820_json", "parse_e820_text", "parse_sysfs_memmap",
    "load_e820", "EMBEDDED_DEFAULT",
]

# --- type numbers (arch/x86/include/asm/e820.h v3.6; asm/e820/types.h v4.12+) ---
E820_RAM = 1
E820_RESERVED = 2
E820_ACPI = 3
E820_NVS = 4
E820_UNUSABLE = 5
E820_PMEM = 7
E820_PRAM = 12
E820_SOFT_RESERVED = 0xEFFFFFFF
E820_RESERVED_KERN = 128

U64_MAX = (1 << 64) - 1
#: E820MAX / E820_MAX_ENTRIES without EFI extension (boot_params holds 128 entries)
E820_MAX = 128
ISA_END_ADDRESS = 0x100000
PAGE_SHIFT = 12

VersionLike = Optional[Tuple[int, ...]]


# ---------------------------------------------------------------------------
# type names
# ---------------------------------------------------------------------------
def _style(version: VersionLike):
    """The profile whose e820 printing/sanitising rules apply to kernel ``version``
    (:mod:`emu.kernel.profiles` holds every version difference); None means the newest."""
    from emu.kernel.profiles import PROFILES, for_version
    if version is None:
        return max((p for p in PROFILES.values() if p.by_version), key=lambda p: p.version)
    try:
        return for_version(tuple(version))
    except ValueError:  # older than every profile: the oldest rules
        return min((p for p in PROFILES.values() if p.by_version), key=lambda p: p.version)


def _mem_style(version: VersionLike) -> bool:
    """``[mem %#010Lx-%#010Lx]`` printing and the ``e820: `` prefix (3.5+)."""
    return _style(version).log_style == "mem"


def type_name(type_: int, version: VersionLike = None) -> str:
    """The text ``e820_print_type`` prints for ``type_`` in kernel ``version``.

    v3.5+: ``usable`` / ``reserved`` / ``ACPI data`` / ``ACPI NVS`` /
    ``unusable`` / ``persistent (type N)`` (PRAM, PMEM: v4.1+, UNVERIFIED for
    PMEM's exact release) / ``soft reserved`` (v5.5+) / ``type N``.
    Before v3.5 the known names are parenthesised (``(usable)``) while unknown
    types still print ``type N``.  ``E820_RESERVED_KERN`` prints as ``usable``.
    """
    if type_ in (E820_RAM, E820_RESERVED_KERN):
        name = "usable"
    elif type_ == E820_RESERVED:
        name = "reserved"
    elif type_ == E820_ACPI:
        name = "ACPI data"
    elif type_ == E820_NVS:
        name = "ACPI NVS"
    elif type_ == E820_UNUSABLE:
        name = "unusable"
    elif type_ == E820_SOFT_RESERVED and _style(version).e820_soft_reserved:
        name = "soft reserved"
    elif type_ in (E820_PMEM, E820_PRAM) and _style(version).e820_persistent_names:
        return "persistent (type %u)" % type_
    else:
        return "type %u" % type_
    if not _mem_style(version):
        return "(%s)" % name
    return name


_NAME_TABLE: Dict[str, int] = {
    # kernel print names
    "usable": E820_RAM,
    "reserved": E820_RESERVED,
    "acpi data": E820_ACPI,
    "acpi nvs": E820_NVS,
    "unusable": E820_UNUSABLE,
    "soft reserved": E820_SOFT_RESERVED,
    # identifiers
    "ram": E820_RAM,
    "e820_ram": E820_RAM,
    "e820_type_ram": E820_RAM,
    "e820_reserved": E820_RESERVED,
    "e820_type_reserved": E820_RESERVED,
    "acpi": E820_ACPI,
    "e820_acpi": E820_ACPI,
    "e820_type_acpi": E820_ACPI,
    "nvs": E820_NVS,
    "e820_nvs": E820_NVS,
    "e820_type_nvs": E820_NVS,
    "e820_unusable": E820_UNUSABLE,
    "e820_type_unusable": E820_UNUSABLE,
    "pmem": E820_PMEM,
    "e820_pmem": E820_PMEM,
    "e820_type_pmem": E820_PMEM,
    "pram": E820_PRAM,
    "e820_pram": E820_PRAM,
    "e820_type_pram": E820_PRAM,
    "soft_reserved": E820_SOFT_RESERVED,
    "e820_soft_reserved": E820_SOFT_RESERVED,
    "e820_type_soft_reserved": E820_SOFT_RESERVED,
    "reserved_kern": E820_RESERVED_KERN,
    "reserved kern": E820_RESERVED_KERN,
    "e820_reserved_kern": E820_RESERVED_KERN,
    "e820_type_reserved_kern": E820_RESERVED_KERN,
    # /sys/firmware/memmap/*/type (e820_type_to_string, v3.6 .. v6.x)
    "system ram": E820_RAM,
    "acpi tables": E820_ACPI,
    "acpi non-volatile storage": E820_NVS,
    "unusable memory": E820_UNUSABLE,
    "persistent memory (legacy)": E820_PRAM,
    "persistent memory": E820_PMEM,
    "unknown e820 type": E820_RESERVED,  # the kernel lost the number; best effort
}

_RE_TYPE_N = re.compile(r"^(?:persistent\s*\(\s*)?type\s+(\d+)\s*\)?$", re.I)


def type_from_name(text: str) -> int:
    """Map a printed or symbolic e820 type name to its number; ValueError if unknown.

    Accepts the kernel's print names in both formats (``usable``, ``(usable)``,
    ``ACPI NVS``, ``persistent (type 12)``, ``type 20``), ``/sys/firmware/memmap``
    names (``System RAM``, ``ACPI Tables`` ...), identifiers (``E820_RAM``,
    ``E820_TYPE_PMEM``, ``reserved_kern``) and decimal or ``0x`` numbers.
    """
    t = " ".join(str(text).strip().split())
    m = _RE_TYPE_N.match(t)
    if m:
        return int(m.group(1))
    if t.startswith("(") and t.endswith(")"):
        t = t[1:-1].strip()
        m = _RE_TYPE_N.match(t)
        if m:
            return int(m.group(1))
    key = t.lower()
    if key in _NAME_TABLE:
        return _NAME_TABLE[key]
    if re.fullmatch(r"\d+", t):
        return int(t)
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", t):
        return int(t, 16)
    raise ValueError("unknown e820 type %r" % text)


def nomerge_types_for(version: VersionLike = None) -> Tuple[int, ...]:
    """Types that ``sanitize`` never merges with a touching entry of the same type.

    v4.1 (E820_PRAM support) added ``current_type == E820_PRAM`` to the
    new-entry condition; v5.5 (EFI soft reservation) generalised it to
    ``e820_nomerge()`` = PRAM or SOFT_RESERVED.
    """
    return tuple(_style(version).e820_nomerge)


def max_arch_pfn_for(arch: str, pae: bool = True, la57: bool = False) -> int:
    """``MAX_ARCH_PFN``: 64-bit ``1 << (MAX_PHYSMEM_BITS - 12)`` (46 bits, 52 with
    5-level paging); 32-bit PAE ``1 << 24``; non-PAE ``1 << 20`` (e820.c v3.6)."""
    if arch == "x86_64":
        return 1 << ((52 if la57 else 46) - PAGE_SHIFT)
    if arch in ("i686", "i386", "x86_32"):
        return 1 << ((36 if pae else 32) - PAGE_SHIFT)
    raise ValueError("unknown arch %r" % arch)


# ---------------------------------------------------------------------------
# printk formats
# ---------------------------------------------------------------------------
def _kx(value: int, width: int = 0) -> str:
    """The kernel's ``%#0<width>Lx``: ``0x`` always printed (also for 0)."""
    digits = max(width - 2, 1)
    return "0x%0*x" % (digits, value & U64_MAX)


def format_update_line(start: int, size: int, old_type: int, new_type: int,
                       version: VersionLike = None) -> str:
    """The line ``e820_update_range`` prints (after clamping ``size``)."""
    size = min(size, U64_MAX - start)
    end = start + size
    if _mem_style(version):
        return "e820: update [mem %s-%s] %s ==> %s" % (
            _kx(start, 10), _kx(end - 1, 10), type_name(old_type, version),
            type_name(new_type, version))
    return "e820 update range: %016x - %016x %s ==> %s" % (
        start, end, type_name(old_type, version), type_name(new_type, version))


def format_remove_line(start: int, size: int, old_type: int, check_type: bool = True,
                       version: VersionLike = None) -> str:
    """The line ``e820_remove_range`` prints (after clamping ``size``)."""
    size = min(size, U64_MAX - start)
    end = start + size
    if _mem_style(version):
        s = "e820: remove [mem %s-%s] " % (_kx(start, 10), _kx(end - 1, 10))
    else:
        s = "e820 remove range: %016x - %016x " % (start, end)
    if check_type:
        s += type_name(old_type, version)
    return s.rstrip(" ") if not check_type else s


def format_last_pfn_line(last_pfn: int, max_arch_pfn: int, version: VersionLike = None) -> str:
    """``e820_end_pfn``'s pr_info (``e820: `` prefix from v3.5)."""
    s = "last_pfn = %s max_arch_pfn = %s" % (_kx(last_pfn), _kx(max_arch_pfn))
    return ("e820: " + s) if _mem_style(version) else s


# ---------------------------------------------------------------------------
# entries and tables
# ---------------------------------------------------------------------------
class E820Error(ValueError):
    """A bad e820 input: the message is one line naming the input and the problem."""


@dataclass(frozen=True)
class E820Entry:
    """One ``struct e820entry``: ``[addr, addr + size)`` of ``type``.

    Zero-size and type-0 entries are allowed: ``remove_range`` leaves zeroed
    entries behind exactly as the kernel's ``memset`` does, and ``sanitize``
    drops them.
    """

    addr: int
    size: int
    type: int

    @property
    def end(self) -> int:
        """Exclusive end ``addr + size`` (not wrapped to 64 bits)."""
        return self.addr + self.size

    @property
    def last(self) -> int:
        """Inclusive end as printed in ``[mem a-b]`` (``addr + size - 1``)."""
        return self.addr + self.size - 1

    def to_dict(self) -> Dict[str, int]:
        return {"addr": self.addr, "size": self.size, "type": self.type}


EntryLike = Union[E820Entry, Tuple[int, int, int]]


def _as_entry(e: EntryLike) -> E820Entry:
    if isinstance(e, E820Entry):
        return e
    a, s, t = e
    return E820Entry(int(a), int(s), int(t))


class E820Table:
    """An e820 table: entries in table order (order matters to ``end_pfn``).

    ``max_entries`` models ``ARRAY_SIZE(e820.map)``: when set, ``add_region``
    beyond it is ignored (the kernel prints "too many entries") and ``sanitize``
    stops at that many output entries.  ``None`` means unbounded.
    ``messages`` collects the "too many entries" lines the kernel would print.
    """

    def __init__(self, entries: Iterable[EntryLike] = (), max_entries: Optional[int] = None) -> None:
        self.entries: List[E820Entry] = [_as_entry(e) for e in entries]
        self.max_entries = max_entries
        self.messages: List[str] = []

    # -- container protocol -------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[E820Entry]:
        return iter(self.entries)

    def __getitem__(self, i: int) -> E820Entry:
        return self.entries[i]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, E820Table):
            return self.entries == other.entries
        return NotImplemented

    def __repr__(self) -> str:
        body = ", ".join("(%#x, %#x, %d)" % (e.addr, e.size, e.type) for e in self.entries)
        return "E820Table([%s])" % body

    def copy(self) -> "E820Table":
        t = E820Table(self.entries, self.max_entries)
        t.messages = list(self.messages)
        return t

    # -- statistics -----------------------------------------------------------
    def total(self, types: Union[int, Iterable[int]] = (E820_RAM, E820_RESERVED_KERN)) -> int:
        """Sum of sizes of entries of ``types`` (no overlap handling)."""
        ts = {types} if isinstance(types, int) else set(types)
        return sum(e.size for e in self.entries if e.type in ts)

    # -- kernel operations ------------------------------------------------------
    def add_region(self, start: int, size: int, type_: int) -> None:
        """``e820_add_region``: append, or ignore when the table is full."""
        if self.max_entries is not None and len(self.entries) >= self.max_entries:
            self.messages.append("e820: too many entries; ignoring [mem %s-%s]"
                                 % (_kx(start, 10), _kx(start + size - 1, 10)))
            return
        self.entries.append(E820Entry(start, size, type_))

    def sanitize_with_status(self, nomerge: Optional[Iterable[int]] = None,
                             version: VersionLike = None) -> Tuple["E820Table", bool]:
        """``sanitize_e820_map`` / ``e820__update_table``.

        Returns ``(table, done)``.  Like the kernel (which returns -1 and leaves
        the map untouched) ``done`` is False and the table an unchanged copy if
        there are fewer than two entries or any ``addr + size`` wraps past 2^64.
        ``nomerge``: types never merged with a touching same-type neighbour;
        default from ``version`` (see :func:`nomerge_types_for`; newest if None).
        """
        if nomerge is None:
            nomerge = nomerge_types_for(version)
        nomerge_set = frozenset(nomerge)
        old = self.entries
        if len(old) < 2:
            return self.copy(), False
        for e in old:
            if ((e.addr + e.size) & U64_MAX) < e.addr:
                return self.copy(), False
        # change points: (addr, is_end, entry index); at one address starts sort
        # before ends (cpcompare); within a kind the order does not change the result.
        points: List[Tuple[int, int, int]] = []
        for i, e in enumerate(old):
            if e.size != 0:
                points.append((e.addr, 0, i))
                points.append((e.addr + e.size, 1, i))
        points.sort(key=lambda p: (p[0], p[1]))
        cap = self.max_entries
        overlap: List[int] = []
        out: List[E820Entry] = []
        cur_addr = 0      # start of the entry being built
        cur_type = 0      # its type
        last_type = 0
        last_addr = 0
        for addr, is_end, idx in points:
            if not is_end:
                overlap.append(idx)
            else:
                overlap.remove(idx)
            current_type = 0
            for j in overlap:
                if old[j].type > current_type:
                    current_type = old[j].type
            if current_type != last_type or current_type in nomerge_set:
                if last_type != 0:
                    size = addr - last_addr
                    if size != 0:
                        out.append(E820Entry(cur_addr, size, cur_type))
                        if cap is not None and len(out) >= cap:
                            break
                if current_type != 0:
                    cur_addr = addr
                    cur_type = current_type
                    last_addr = addr
                last_type = current_type
        t = E820Table(out, self.max_entries)
        t.messages = list(self.messages)
        return t, True

    def sanitize(self, nomerge: Optional[Iterable[int]] = None,
                 version: VersionLike = None) -> "E820Table":
        """A new sanitized table (see :meth:`sanitize_with_status`)."""
        return self.sanitize_with_status(nomerge, version)[0]

    def update_range(self, start: int, size: int, old_type: int, new_type: int) -> int:
        """``e820_update_range``: retype the ``old_type`` parts of ``[start, start+size)``.

        Mutates the table in place, appending split pieces at the end exactly
        as the kernel does (no re-sort, no merge: call :meth:`sanitize`), and
        returns the number of bytes updated.  ``size`` is clamped so that the
        end does not pass 2^64-1.
        """
        if old_type == new_type:
            raise ValueError("update_range: old_type == new_type (%d) is a kernel BUG_ON" % old_type)
        if size > U64_MAX - start:
            size = U64_MAX - start
        end = start + size
        updated = 0
        ents = self.entries
        i = 0
        while i < len(ents):
            ei = ents[i]
            if ei.type != old_type:
                i += 1
                continue
            ei_end = ei.addr + ei.size
            if ei.addr >= start and ei_end <= end:
                ents[i] = E820Entry(ei.addr, ei.size, new_type)
                updated += ei.size
                i += 1
                continue
            if ei.addr < start and ei_end > end:
                self.add_region(start, size, new_type)
                self.add_region(end, ei_end - end, ei.type)
                ents[i] = E820Entry(ei.addr, start - ei.addr, ei.type)
                updated += size
                i += 1
                continue
            fs = max(start, ei.addr)
            fe = min(end, ei_end)
            if fs >= fe:
                i += 1
                continue
            self.add_region(fs, fe - fs, new_type)
            updated += fe - fs
            nsize = ei.size - (fe - fs)
            naddr = ei.addr if ei.addr < fs else fe
            ents[i] = E820Entry(naddr, nsize, ei.type)
            i += 1
        return updated

    def remove_range(self, start: int, size: int, old_type: int = 0, check_type: bool = True) -> int:
        """``e820_remove_range``: drop ``[start, start+size)`` (only ``old_type``
        entries if ``check_type``).

        Mutates in place: fully covered entries become zeroed ``(0, 0, 0)``
        entries (the kernel's ``memset``), a covered middle splits the entry
        with the tail appended at the end.  Returns the bytes removed.
        """
        if size > U64_MAX - start:
            size = U64_MAX - start
        end = start + size
        removed = 0
        ents = self.entries
        i = 0
        while i < len(ents):
            ei = ents[i]
            if check_type and ei.type != old_type:
                i += 1
                continue
            ei_end = ei.addr + ei.size
            if ei.addr >= start and ei_end <= end:
                removed += ei.size
                ents[i] = E820Entry(0, 0, 0)
                i += 1
                continue
            if ei.addr < start and ei_end > end:
                self.add_region(end, ei_end - end, ei.type)
                ents[i] = E820Entry(ei.addr, start - ei.addr, ei.type)
                removed += size
                i += 1
                continue
            fs = max(start, ei.addr)
            fe = min(end, ei_end)
            if fs >= fe:
                i += 1
                continue
            removed += fe - fs
            nsize = ei.size - (fe - fs)
            naddr = ei.addr if ei.addr < fs else fe
            ents[i] = E820Entry(naddr, nsize, ei.type)
            i += 1
        return removed

    # -- queries ------------------------------------------------------------------
    def end_pfn(self, limit_pfn: int, type_: int = E820_RAM, max_arch_pfn: Optional[int] = None) -> int:
        """``e820_end_pfn(limit_pfn, type)``.

        Scans entries of ``type_`` in table order: ``s = addr >> 12``,
        ``e = (addr + size) >> 12``; skip if ``s >= limit_pfn``; if
        ``e > limit_pfn`` the result is ``limit_pfn`` and scanning stops;
        otherwise keep the maximum ``e``.  The result is capped at
        ``max_arch_pfn`` (the kernel's ``MAX_ARCH_PFN``) when given.
        """
        last = 0
        for ei in self.entries:
            if ei.type != type_:
                continue
            s = ei.addr >> PAGE_SHIFT
            e = ((ei.addr + ei.size) & U64_MAX) >> PAGE_SHIFT
            if s >= limit_pfn:
                continue
            if e > limit_pfn:
                last = limit_pfn
                break
            if e > last:
                last = e
        if max_arch_pfn is not None and last > max_arch_pfn:
            last = max_arch_pfn
        return last

    def end_of_ram_pfn(self, max_arch_pfn: int) -> int:
        """``e820_end_of_ram_pfn()`` = ``e820_end_pfn(MAX_ARCH_PFN, E820_RAM)``."""
        return self.end_pfn(max_arch_pfn, E820_RAM, max_arch_pfn)

    def end_of_low_ram_pfn(self, max_arch_pfn: Optional[int] = None) -> int:
        """``e820_end_of_low_ram_pfn()`` = ``e820_end_pfn(1 << (32 - 12), E820_RAM)``."""
        return self.end_pfn(1 << (32 - PAGE_SHIFT), E820_RAM, max_arch_pfn)

    def mapped_any(self, start: int, end: int, types: Union[None, int, Iterable[int]] = None) -> bool:
        """``e820_any_mapped``: does an entry of one of ``types`` intersect ``[start, end)``?

        ``types`` None or 0 means any type (the kernel's ``type == 0``).  Like
        the kernel, a zero-size entry strictly inside the range counts.
        """
        if types is None or types == 0:
            tset = None
        elif isinstance(types, int):
            tset = {types}
        else:
            tset = set(types)
        for ei in self.entries:
            if tset is not None and ei.type not in tset:
                continue
            if ei.addr >= end or ((ei.addr + ei.size) & U64_MAX) <= start:
                continue
            return True
        return False

    def mapped_all(self, start: int, end: int, type_: int = 0) -> bool:
        """``e820_all_mapped`` (correct only on a sorted, non-overlapping table, as in the kernel)."""
        for ei in self.entries:
            if type_ and ei.type != type_:
                continue
            ei_end = ei.addr + ei.size
            if ei.addr >= end or ei_end <= start:
                continue
            if ei.addr <= start:
                start = ei_end
            if start >= end:
                return True
        return False

    def ram_ranges(self) -> Tuple[np.ndarray, np.ndarray]:
        """Sorted, merged ``[start, end)`` of RAM and RESERVED_KERN entries.

        Two ``numpy.uint64`` arrays (starts, ends); overlapping or touching
        ranges are merged; zero-size entries are ignored; ends are clamped to
        2^64-1.  Intersection tests against these arrays equal
        ``e820_any_mapped(.., E820_RAM) || e820_any_mapped(.., E820_RESERVED_KERN)``.
        """
        rs = sorted((e.addr, min(e.addr + e.size, U64_MAX)) for e in self.entries
                    if e.type in (E820_RAM, E820_RESERVED_KERN) and e.size > 0)
        merged: List[List[int]] = []
        for s, e in rs:
            if merged and s <= merged[-1][1]:
                if e > merged[-1][1]:
                    merged[-1][1] = e
            else:
                merged.append([s, e])
        starts = np.array([m[0] for m in merged], dtype=np.uint64)
        ends = np.array([m[1] for m in merged], dtype=np.uint64)
        return starts, ends

    # -- output ---------------------------------------------------------------------
    def to_json(self) -> List[Dict[str, int]]:
        """List of ``{"addr", "size", "type"}`` dicts with int values."""
        return [e.to_dict() for e in self.entries]

    def print_lines(self, who: str = "BIOS-e820", version: VersionLike = None) -> List[str]:
        """``e820_print_map(who)`` lines (no timestamps).

        v3.5+: ``"%s: [mem %#018Lx-%#018Lx] <type>"``; before v3.5:
        ``" %s: %016Lx - %016Lx <type>"`` (note the leading space).
        """
        out = []
        mem = _mem_style(version)
        for e in self.entries:
            if mem:
                out.append("%s: [mem %s-%s] %s" % (who, _kx(e.addr, 18), _kx(e.addr + e.size - 1, 18),
                                                   type_name(e.type, version)))
            else:
                out.append(" %s: %016x - %016x %s" % (who, e.addr, (e.addr + e.size) & U64_MAX,
                                                      type_name(e.type, version)))
        return out


# ---------------------------------------------------------------------------
# parsers
# ---------------------------------------------------------------------------
_WHO = r"(?P<who>BIOS-e820|BIOS-e801|BIOS-88|Xen|user|modified|extended|reserve setup_data|e820)"
_RE_NEW = re.compile(
    r"^(?:" + _WHO + r"\s*:\s*)?\[mem\s+(?P<a>0x[0-9a-fA-F]+)\s*-\s*(?P<b>0x[0-9a-fA-F]+)\]\s*(?P<type>.*?)\s*$")
_RE_OLD = re.compile(
    r"^(?:" + _WHO + r"\s*:\s*)?(?P<a>[0-9a-fA-F]{8,16})\s+-\s+(?P<b>[0-9a-fA-F]{8,16})\s*(?P<type>.*?)\s*$")
_RE_HEADER = re.compile(
    r"^(?:e820:\s*)?(?:BIOS-provided|user-defined|modified|extended|Xen-provided)\s+physical RAM map:?\s*$", re.I)
_RE_HAS_WHO = re.compile(r"^" + _WHO + r"\s*:")

DEFAULT_WHO = ("BIOS-e820", "Xen")
_RE_RANGEISH = re.compile(r"\[mem\b|\b[0-9a-fA-F]{8,16}\s*-\s*[0-9a-fA-F]{8,16}\b")


def looks_like_e820_line(line: str, who: Iterable[str] = DEFAULT_WHO) -> bool:
    """True if ``line`` starts with one of ``who`` + ``:`` and carries an address
    range, i.e. it was meant to be an e820 map line (used to reject damaged ones)."""
    s = line.strip()
    mw = _RE_HAS_WHO.match(s)
    return bool(mw and mw.group("who") in set(who) and mw.group("who") != "e820"
                and _RE_RANGEISH.search(s))


def parse_e820_line(line: str) -> Optional[Tuple[Optional[str], int, int, int]]:
    """Parse one kernel e820 print line (prefixes already stripped).

    Returns ``(who, addr, size, type)`` or None if the line is not an e820 map
    line.  Raises ValueError (message without input name) for a line that is an
    e820 map line but is invalid: unknown type, inverted or zero-size range.
    ``who`` is None for a bare ``[mem a-b] type`` line.
    """
    s = line.strip()
    m = _RE_NEW.match(s)
    old = False
    if not m:
        m = _RE_OLD.match(s)
        old = True
        if not m:
            return None
    who = m.group("who")
    tname = m.group("type")
    if not tname:
        if who is None:
            return None
        raise ValueError("missing e820 type")
    if who == "e820" and not old and tname.startswith("available"):
        return None  # "e820: [mem a-b] available for PCI devices"
    if old and who is None:
        # bare "a - b (type)" is only an e820 line if the type is parenthesised
        if not (tname.startswith("(") or tname.lower().startswith("type")):
            return None
    try:
        type_ = type_from_name(tname)
    except ValueError:
        if who is None:
            return None  # e.g. " [mem a-b] page 4k"
        raise ValueError("unknown e820 type %r" % tname) from None
    a = int(m.group("a"), 16)
    b = int(m.group("b"), 16)
    if old:
        if b < a:
            raise ValueError("inverted range %#x - %#x" % (a, b))
        if b == a:
            raise ValueError("zero size range at %#x" % a)
        size = b - a
    else:
        if b < a:
            if b + 1 == a:
                raise ValueError("zero size range at %#x" % a)
            raise ValueError("inverted range [%#x-%#x]" % (a, b))
        size = b - a + 1
    return who, a, size, type_


def _check_limits(addr: int, size: int, max_phys_bits: int) -> Optional[str]:
    if size <= 0:
        return "zero size" if size == 0 else "negative size"
    if addr < 0:
        return "negative address"
    if addr + size > (1 << max_phys_bits):
        return "range [%#x-%#x] beyond the %d-bit physical address limit" % (
            addr, addr + size - 1, max_phys_bits)
    return None


def _to_int(v: object, what: str) -> int:
    if isinstance(v, bool):
        raise ValueError("%s is a boolean" % what)
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        t = v.strip().replace("_", "")
        if re.fullmatch(r"[+]?0[xX][0-9a-fA-F]+", t):
            return int(t, 16)
        if re.fullmatch(r"[+]?\d+", t):
            return int(t, 10)
        raise ValueError("%s %r is not a number" % (what, v))
    if isinstance(v, float) and v.is_integer():
        return int(v)
    raise ValueError("%s %r is not an integer" % (what, v))


def parse_e820_json(text: Union[str, bytes], name: str = "<json>", max_phys_bits: int = 52) -> E820Table:
    """Parse a JSON list of ``{"addr", "size", "type"}`` objects (raw table order).

    ``addr``/``size`` may be ints or ``"0x..."``/decimal strings; ``type`` an
    int or a name (see :func:`type_from_name`).  A top-level object with an
    ``"e820"`` list is accepted too.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise E820Error("%s: invalid JSON: %s (line %d column %d)" % (name, exc.msg, exc.lineno, exc.colno)) from None
    if isinstance(data, dict) and "e820" in data:
        data = data["e820"]
    if not isinstance(data, list):
        raise E820Error("%s: expected a JSON list of e820 entries, got %s" % (name, type(data).__name__))
    if not data:
        raise E820Error("%s: no e820 entries" % name)
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise E820Error("%s: entry %d: expected an object with addr, size, type" % (name, i))
        missing = [k for k in ("addr", "size", "type") if k not in item]
        if missing:
            raise E820Error("%s: entry %d: missing %s" % (name, i, ", ".join(missing)))
        try:
            addr = _to_int(item["addr"], "addr")
            size = _to_int(item["size"], "size")
            t = item["type"]
            if isinstance(t, bool):
                raise ValueError("type is a boolean")
            type_ = t if isinstance(t, int) else type_from_name(str(t))
        except ValueError as exc:
            raise E820Error("%s: entry %d: %s" % (name, i, exc)) from None
        if not 0 <= type_ <= 0xFFFFFFFF:
            raise E820Error("%s: entry %d: type %d out of range" % (name, i, type_))
        problem = _check_limits(addr, size, max_phys_bits)
        if problem:
            raise E820Error("%s: entry %d: %s" % (name, i, problem))
        out.append(E820Entry(addr, size, type_))
    return E820Table(out)


_RE_LOGLIKE = re.compile(
    r"(^|\n)\s*(<\d>)?\s*\[\s*\d+\.\d+\]|(^|\n)[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d |Linux version ")


def parse_e820_text(text: Union[str, bytes], name: str = "<text>", max_phys_bits: int = 52,
                    strict: Optional[bool] = None, who: Sequence[str] = DEFAULT_WHO) -> E820Table:
    """Parse kernel-printed e820 lines into a raw table (printed order).

    Both formats are accepted: ``BIOS-e820: [mem 0x..-0x..] usable`` (inclusive
    end) and ``BIOS-e820: 0000000000000000 - 000000000009fc00 (usable)``
    (exclusive end), with ``who`` one of ``who`` (default BIOS-e820 and Xen),
    with or without timestamps, syslog prefixes, leading blanks; quoted-printable
    logs are decoded.  Header lines (``e820: BIOS-provided physical RAM map:``)
    are ignored.

    ``strict`` (default: auto) - a plain e820 file (no timestamps, syslog
    prefixes or ``Linux version`` line) must consist only of e820 lines,
    headers, blank lines and ``#`` comments; in a whole log other lines are
    ignored.  Only the first map block (before a second ``Linux version``
    line) is read from a log.
    """
    from emu.inputs.dmesg import normalize_log  # local import: dmesg imports this module

    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if strict is None:
        strict = not _RE_LOGLIKE.search(text)
    wanted = set(who)
    out: List[E820Entry] = []
    seen_version = False
    for ln in normalize_log(text):
        s = ln.text.strip()
        if not s or s.startswith("#"):
            continue
        if "Linux version " in s:
            if seen_version and out:
                break
            seen_version = True
        if _RE_HEADER.match(s):
            continue
        try:
            parsed = parse_e820_line(s)
        except ValueError as exc:
            mw = _RE_HAS_WHO.match(s)
            if strict or (mw and mw.group("who") in wanted):
                raise E820Error("%s: line %d: %s: %s" % (name, ln.lineno, exc, s[:120])) from None
            continue
        if parsed is None:
            if strict:
                raise E820Error("%s: line %d: unparseable e820 line: %s" % (name, ln.lineno, s[:120]))
            if looks_like_e820_line(s, wanted):
                raise E820Error("%s: line %d: unparseable %s line: %s"
                                % (name, ln.lineno, s.split(":", 1)[0], s[:120]))
            continue
        pwho, addr, size, type_ = parsed
        if pwho is None and not strict:
            continue
        if pwho is not None and pwho not in wanted:
            if strict:
                raise E820Error("%s: line %d: unexpected '%s:' line in an e820 file" % (name, ln.lineno, pwho))
            continue
        problem = _check_limits(addr, size, max_phys_bits)
        if problem:
            raise E820Error("%s: line %d: %s" % (name, ln.lineno, problem))
        out.append(E820Entry(addr, size, type_))
    if not out:
        raise E820Error("%s: no e820 entries (expected %s lines)" % (name, "/".join(w + ":" for w in who)))
    return E820Table(out)


def parse_sysfs_memmap(root: Union[str, os.PathLike] = "/sys/firmware/memmap",
                       max_phys_bits: int = 52) -> E820Table:
    """Read ``/sys/firmware/memmap/<n>/{start,end,type}`` (end inclusive) in numeric order."""
    rootp = Path(root)
    name = str(rootp)
    if not rootp.is_dir():
        raise E820Error("%s: not a directory (no /sys/firmware/memmap?)" % name)
    dirs = [d for d in rootp.iterdir() if d.is_dir() and d.name.isdigit()]
    dirs.sort(key=lambda d: int(d.name))
    out = []
    for d in dirs:
        try:
            start_s = (d / "start").read_text().strip()
            end_s = (d / "end").read_text().strip()
            type_s = (d / "type").read_text().strip()
        except OSError as exc:
            raise E820Error("%s: %s: %s" % (name, d.name, exc.strerror or exc)) from None
        try:
            start = int(start_s, 16) if start_s.lower().startswith("0x") else int(start_s, 0)
            end = int(end_s, 16) if end_s.lower().startswith("0x") else int(end_s, 0)
        except ValueError:
            raise E820Error("%s: %s: bad start/end %r/%r" % (name, d.name, start_s, end_s)) from None
        try:
            type_ = type_from_name(type_s)
        except ValueError:
            raise E820Error("%s: %s: unknown memmap type %r" % (name, d.name, type_s)) from None
        if end < start:
            raise E820Error("%s: %s: inverted range [%#x-%#x]" % (name, d.name, start, end))
        size = end - start + 1
        problem = _check_limits(start, size, max_phys_bits)
        if problem:
            raise E820Error("%s: %s: %s" % (name, d.name, problem))
        out.append(E820Entry(start, size, type_))
    if not out:
        raise E820Error("%s: no memmap entries" % name)
    return E820Table(out)


_RE_JSON_START = re.compile(r"^\s*(\{|\[\s*(\{|\]|$))")


def load_e820(path: Union[str, os.PathLike], max_phys_bits: int = 52) -> E820Table:
    """Load an e820 map: a ``/sys/firmware/memmap``-style directory, JSON
    (content starting with ``[{``/``{``) or kernel-printed text / a boot log."""
    p = Path(path)
    name = p.name or str(p)
    if p.is_dir():
        return parse_sysfs_memmap(p, max_phys_bits)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise E820Error("%s: cannot read: %s" % (name, exc.strerror or exc)) from None
    if b"\x00" in raw:
        raise E820Error("%s: binary data, not an e820 map" % name)
    text = raw.decode("utf-8", errors="replace")
    if text.count("\ufffd") > max(8, len(text) // 100):
        raise E820Error("%s: not UTF-8 text (%d undecodable bytes)" % (name, text.count("\ufffd")))
    if _RE_JSON_START.match(text):
        return parse_e820_json(text, name, max_phys_bits)
    return parse_e820_text(text, name, max_phys_bits)


# ---------------------------------------------------------------------------
# default map
# ---------------------------------------------------------------------------
def _m(a: int, last: int, t: int) -> E820Entry:
    return E820Entry(a, last - a + 1, t)


#: A 16 GiB x86-64 desktop (UEFI, Intel chipset) as ``BIOS-e820`` would print it:
#: low RAM below the EBDA, legacy BIOS area, 1 MiB..~2.1 GiB usable broken by
#: EFI runtime / ACPI islands at page-aligned but not 2 MiB-aligned addresses,
#: graphics stolen memory, MMCONFIG at 0xe0000000, the IOAPIC / HPET / LAPIC /
#: flash windows, and 16 GiB minus the PCI hole remapped above 4 GiB (RAM ends at
#: 0x46f000000, 2 MiB- but not 1 GiB-aligned).
EMBEDDED_DEFAULT = E820Table([
    _m(0x0000000000000000, 0x000000000009cfff, E820_RAM),
    _m(0x000000000009d000, 0x000000000009ffff, E820_RESERVED),
    _m(0x00000000000e0000, 0x00000000000fffff, E820_RESERVED),
    _m(0x0000000000100000, 0x000000007a42dfff, E820_RAM),
    _m(0x000000007a42e000, 0x000000007a42efff, E820_NVS),
    _m(0x000000007a42f000, 0x000000007a42ffff, E820_RESERVED),
    _m(0x000000007a430000, 0x0000000084ba0fff, E820_RAM),
    _m(0x0000000084ba1000, 0x0000000084f8afff, E820_RESERVED),
    _m(0x0000000084f8b000, 0x0000000084fe7fff, E820_ACPI),
    _m(0x0000000084fe8000, 0x00000000853f6fff, E820_NVS),
    _m(0x00000000853f7000, 0x0000000085cfefff, E820_RESERVED),
    _m(0x0000000085cff000, 0x0000000085cfffff, E820_RAM),
    _m(0x0000000085d00000, 0x0000000089ffffff, E820_RESERVED),
    _m(0x00000000e0000000, 0x00000000efffffff, E820_RESERVED),
    _m(0x00000000fe000000, 0x00000000fe010fff, E820_RESERVED),
    _m(0x00000000fec00000, 0x00000000fec00fff, E820_RESERVED),
    _m(0x00000000fed00000, 0x00000000fed00fff, E820_RESERVED),
    _m(0x00000000fee00000, 0x00000000fee00fff, E820_RESERVED),
    _m(0x00000000ff000000, 0x00000000ffffffff, E820_RESERVED),
    _m(0x0000000100000000, 0x000000046effffff, E820_RAM),
])
