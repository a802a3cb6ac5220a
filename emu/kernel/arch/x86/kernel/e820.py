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

The map itself and its readers (JSON, printed lines, sysfs) are inputs
(:mod:`emu.inputs.e820`); this module is what the kernel does with it.

No kernel code is reproduced here; the algorithms are rewritten from a reading
of the sources cited above.
"""
from __future__ import annotations

from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from emu.inputs.e820 import (  # noqa: F401  (the kernel's e820 types, re-exported with its table)
    E820_ACPI,
    E820_MAX,
    E820_NVS,
    E820_PMEM,
    E820_PRAM,
    E820_RAM,
    E820_RESERVED,
    E820_RESERVED_KERN,
    E820_SOFT_RESERVED,
    E820_UNUSABLE,
    ISA_END_ADDRESS,
    U64_MAX,
    E820Entry,
    E820Error,
    E820Map,
)

__all__ = [
    "E820Table", "type_name", "nomerge_types_for", "max_arch_pfn_for",
    "format_update_line", "format_remove_line", "format_last_pfn_line", "apply_edits", "logged_table",
    "table_of",
]

PAGE_SHIFT = 12

VersionLike = Optional[Tuple[int, ...]]


# ---------------------------------------------------------------------------
# type names
# ---------------------------------------------------------------------------
def _style(version: VersionLike):
    """The profile whose e820 printing/sanitising rules apply to kernel ``version``
    (:mod:`emu.kernel.profiles` holds every version difference); None means the newest.
    Resolved once per version (the profiles are fixed data; resolving one walks every change)."""
    key = None if version is None else tuple(version)
    got = _STYLES.get(key)
    if got is None:
        got = _STYLES[key] = _resolve_style(key)
    return got


_STYLES: dict = {}


def _resolve_style(version: VersionLike):
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


class E820Table(E820Map):
    """``struct e820_table`` with the kernel's operations on it (arch/x86/kernel/e820.c):
    ``e820_add_region``, ``sanitize_e820_map``/``e820__update_table``,
    ``e820_update_range``/``e820__range_update``, ``e820_remove_range``,
    ``e820_end_pfn``, ``e820_any_mapped``/``e820_all_mapped``, ``e820_print_map``.
    Built from any map or list of entries (``E820Table(load_e820(path))``).
    """

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
        nomerge_set = _nomerge_set(version) if nomerge is None else frozenset(nomerge)
        old = self.entries
        if len(old) < 2:
            return E820Table(self.entries, self.max_entries).copy(), False
        # one pass: no entry may wrap; the non-empty ones (the only ones that make change
        # points) and whether they are in address order
        live: List[E820Entry] = []
        last = -1
        in_order = True
        for e in old:
            a, n = e.addr, e.size
            if ((a + n) & U64_MAX) < a:
                return E820Table(self.entries, self.max_entries).copy(), False
            if n:
                if a < last:
                    in_order = False
                last = a
                live.append(e)
        cap = self.max_entries
        fast = _sanitize_disjoint(live, in_order, nomerge_set)
        if fast is not None:
            if cap is not None and len(fast) > cap:
                del fast[cap:]
            return _table(fast, self.max_entries, self.messages), True
        # change points: (addr, is_end, entry index); at one address starts sort
        # before ends (cpcompare); within a kind the order does not change the result
        # (so the entry index may break the remaining ties).
        points: List[Tuple[int, int, int]] = []
        for i, e in enumerate(old):
            if e.size != 0:
                points.append((e.addr, 0, i))
                points.append((e.addr + e.size, 1, i))
        points.sort()
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
        return _table(out, self.max_entries, self.messages), True

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
    def end_pfn(self, limit_pfn: int, types: Union[int, Iterable[int]] = E820_RAM,
                max_arch_pfn: Optional[int] = None) -> int:
        """``e820_end_pfn(limit_pfn, type)`` (6.11+: ``e820__end_ram_pfn(limit_pfn)``, which
        takes RAM and ACPI entries alike: 06fa48d85b09).

        Scans entries of ``types`` in table order: ``s = addr >> 12``,
        ``e = (addr + size) >> 12``; skip if ``s >= limit_pfn``; if
        ``e > limit_pfn`` the result is ``limit_pfn`` and scanning stops;
        otherwise keep the maximum ``e``.  The result is capped at
        ``max_arch_pfn`` (the kernel's ``MAX_ARCH_PFN``) when given.
        """
        kinds = {types} if isinstance(types, int) else set(types)
        last = 0
        for ei in self.entries:
            if ei.type not in kinds:
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

    def end_of_ram_pfn(self, max_arch_pfn: int, types: Iterable[int] = (E820_RAM,)) -> int:
        """``e820__end_of_ram_pfn()``: the end of ``types`` (the profile's ``end_pfn_types``)
        below ``MAX_ARCH_PFN``."""
        return self.end_pfn(max_arch_pfn, types, max_arch_pfn)

    def end_of_low_ram_pfn(self, max_arch_pfn: Optional[int] = None, types: Iterable[int] = (E820_RAM,)) -> int:
        """``e820__end_of_low_ram_pfn()``: the same below 4 GiB."""
        return self.end_pfn(1 << (32 - PAGE_SHIFT), types, max_arch_pfn)

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

    def ram_ranges(self, types: Iterable[int] = (E820_RAM, E820_RESERVED_KERN)) -> Tuple[np.ndarray, np.ndarray]:
        """Sorted, merged ``[start, end)`` of the entries of ``types`` (default: RAM and
        RESERVED_KERN, what memblock gets).

        Two ``numpy.uint64`` arrays (starts, ends); overlapping or touching
        ranges are merged; zero-size entries are ignored; ends are clamped to
        2^64-1.  Intersection tests against these arrays equal
        ``e820_any_mapped(.., T1) || e820_any_mapped(.., T2) ...`` over ``types``.
        """
        kinds = set(types)
        rs = [(e.addr, e.addr + e.size) for e in self.entries if e.type in kinds and e.size > 0]
        rs.sort()
        starts: List[int] = []
        ends: List[int] = []
        last = -1
        for s, e in rs:
            if e > U64_MAX:
                e = U64_MAX
            if s <= last:
                if e > last:
                    ends[-1] = last = e
            else:
                starts.append(s)
                ends.append(e)
                last = e
        return np.array(starts, dtype=np.uint64), np.array(ends, dtype=np.uint64)

    # -- output ---------------------------------------------------------------------
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


def table_of(entries: Sequence, max_entries: Optional[int] = None) -> E820Table:
    """``E820Table(entries, max_entries)``; a list of plain :class:`E820Entry` is taken
    without converting entry by entry (the map handed to an emulation, checked)."""
    if type(entries) is list and set(map(type, entries)) <= _PLAIN_ENTRY:
        return _table(list(entries), max_entries, [])
    return E820Table(entries, max_entries)


_PLAIN_ENTRY = frozenset((E820Entry,))


def _table(entries: List[E820Entry], max_entries: Optional[int], messages: List[str]) -> E820Table:
    """``E820Table(entries, max_entries)`` with a copy of ``messages``, for a list of
    :class:`E820Entry` the table takes as it is (no per-entry conversion)."""
    t = E820Table.__new__(E820Table)
    t.entries = entries
    t.max_entries = max_entries
    t.messages = list(messages)
    return t


def _sanitize_disjoint(live: List[E820Entry], in_order: bool, nomerge: frozenset) -> Optional[List[E820Entry]]:
    """What the change-point pass of :meth:`E820Table.sanitize_with_status` makes of a
    table whose non-empty entries ``live`` (none wraps; ``in_order``: by address already;
    zero-size entries make no change points) do not overlap: the entries of a type other
    than 0 in address order, touching neighbours of one type merged unless the type is in
    ``nomerge``.  None when two of them overlap (the full pass decides: there a type-0
    entry's ends, too, split an entry of a no-merge type).  Without a cap; the caller keeps
    the first ``max_entries``, as the pass stops there."""
    if not in_order:
        live = sorted(live, key=_addr_of)
    out: List[E820Entry] = []
    last_end = out_end = -1
    for e in live:
        a = e.addr
        if a < last_end:
            return None
        last_end = a + e.size
        t = e.type
        if not t:
            continue             # a hole: nothing overlaps it, so it changes no type
        if a == out_end:
            prev = out[-1]
            if prev.type == t and t not in nomerge:
                out[-1] = E820Entry(prev.addr, prev.size + e.size, t)
                out_end = last_end
                continue
        out.append(e if type(e) is E820Entry else E820Entry(a, e.size, t))
        out_end = last_end
    return out


_NOMERGE: dict = {}


def _nomerge_set(version: VersionLike) -> frozenset:
    """``frozenset(nomerge_types_for(version))``, once per version."""
    key = None if version is None else tuple(version)
    got = _NOMERGE.get(key)
    if got is None:
        got = _NOMERGE[key] = frozenset(nomerge_types_for(key))
    return got


def _addr_of(e: E820Entry) -> int:
    return e.addr


def apply_edits(table: E820Map, edits: Sequence, sanitize: bool = False) -> E820Table:
    """A copy of ``table`` with the main-table ``edits`` (a boot log's
    :class:`emu.inputs.dmesg.E820Edit` lines) applied in order; optionally sanitized."""
    t = E820Table(table.entries, table.max_entries)
    for e in edits:
        if e.target == "e820":
            e.apply(t)
    return t.sanitize() if sanitize else t


def logged_table(log, lineno: Optional[int] = None, sanitize: bool = False) -> E820Table:
    """The main e820 table of a boot log (:class:`emu.inputs.dmesg.BootLog`) with its logged
    edits: from the user-defined map when the log printed one (then only the edits logged
    after it), else the BIOS map; with ``lineno``, only the edits logged before that line.

    E.g. ``logged_table(bl, bl.last_pfn_linenos[0], True).end_of_ram_pfn(bl.max_arch_pfn)``
    reproduces the log's first ``last_pfn`` line.
    """
    base = log.e820_user if log.e820_user is not None else log.e820
    edits = [e for e in log.e820_edits if (log.e820_user is None or e.after_user_map)
             and (lineno is None or e.lineno < lineno)]
    return apply_edits(base, edits, sanitize)
