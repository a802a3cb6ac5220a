"""The e820 memory map as firmware hands it over, and its readers.

The entry format and type numbers (``struct e820entry``; arch/x86/include/asm/e820.h
v3.6, asm/e820/types.h v4.12+), and parsers that turn JSON, kernel-printed text
(``BIOS-e820:`` / ``Xen:`` lines of both formats, or a whole boot log) and
``/sys/firmware/memmap`` (drivers/firmware/memmap.c) into :class:`E820Map` objects; every
problem is one :class:`E820Error` line naming the input.  What the kernel does with a map
(sanitising, edits, ``e820_end_pfn``, printing) is the emulated kernel's
:mod:`emu.kernel.arch.x86.kernel.e820`.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from emu.errors import EmuError
from emu.inputs.files import MAX_INPUT_BYTES, MAX_SYSFS_BYTES, display_path, read_input
from emu.inputs.logtext import normalize_log

__all__ = [
    "E820_RAM", "E820_RESERVED", "E820_ACPI", "E820_NVS", "E820_UNUSABLE",
    "E820_PMEM", "E820_PRAM", "E820_SOFT_RESERVED", "E820_RESERVED_KERN",
    "U64_MAX", "E820_MAX", "ISA_END_ADDRESS",
    "E820Entry", "E820Error", "E820Map", "type_from_name",
    "parse_e820_line", "looks_like_e820_line", "parse_e820_json", "parse_e820_text", "parse_sysfs_memmap",
    "load_e820", "EMBEDDED_DEFAULT", "MAX_SYSFS_ENTRIES",
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


class E820Error(EmuError):
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


class E820Map:
    """An e820 map as firmware (or a file, a log, sysfs) hands it over: entries in table
    order.  The kernel's operations on it (sanitising, edits, ``e820_end_pfn``) are
    :class:`emu.kernel.arch.x86.kernel.e820.E820Table`, which extends this class.

    ``max_entries`` models ``ARRAY_SIZE(e820.map)`` (None: unbounded); ``messages``
    collects the "too many entries" lines the kernel would print.
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
        if isinstance(other, E820Map):
            return self.entries == other.entries
        return NotImplemented

    def __repr__(self) -> str:
        body = ", ".join("(%#x, %#x, %d)" % (e.addr, e.size, e.type) for e in self.entries)
        return "%s([%s])" % (type(self).__name__, body)

    def copy(self):
        t = type(self)(self.entries, self.max_entries)
        t.messages = list(self.messages)
        return t

    # -- statistics -----------------------------------------------------------
    def total(self, types: Union[int, Iterable[int]] = (E820_RAM, E820_RESERVED_KERN)) -> int:
        """Sum of sizes of entries of ``types`` (no overlap handling)."""
        ts = {types} if isinstance(types, int) else set(types)
        return sum(e.size for e in self.entries if e.type in ts)

    def to_json(self) -> List[Dict[str, int]]:
        """List of ``{"addr", "size", "type"}`` dicts with int values."""
        return [e.to_dict() for e in self.entries]


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


def parse_e820_json(text: Union[str, bytes], name: str = "<json>", max_phys_bits: int = 52) -> E820Map:
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
    except RecursionError:
        raise E820Error("%s: JSON nested too deeply for an e820 map" % name) from None
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
    return E820Map(out)


_RE_LOGLIKE = re.compile(
    r"(^|\n)\s*(<\d>)?\s*\[\s*\d+\.\d+\]|(^|\n)[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d |Linux version ")


def parse_e820_text(text: Union[str, bytes], name: str = "<text>", max_phys_bits: int = 52,
                    strict: Optional[bool] = None, who: Sequence[str] = DEFAULT_WHO) -> E820Map:
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
    return E820Map(out)


#: at most this many ``/sys/firmware/memmap/N`` entries are read (a real map has tens)
MAX_SYSFS_ENTRIES = 16384


def parse_sysfs_memmap(root: Union[str, os.PathLike] = "/sys/firmware/memmap",
                       max_phys_bits: int = 52) -> E820Map:
    """Read ``/sys/firmware/memmap/<n>/{start,end,type}`` (end inclusive) in numeric order.

    Every file is read through :func:`emu.inputs.files.read_input` (regular files of at most
    :data:`~emu.inputs.files.MAX_SYSFS_BYTES` bytes); more than :data:`MAX_SYSFS_ENTRIES`
    entries is an error.  Errors name the full path."""
    rootp = Path(root)
    name = display_path(rootp)
    if not rootp.is_dir():
        raise E820Error("%s: not a directory (no /sys/firmware/memmap?)" % name)
    dirs = []
    try:
        with os.scandir(rootp) as it:
            for d in it:
                if d.name.isdigit() and d.is_dir():
                    dirs.append(d.name)
                    if len(dirs) > MAX_SYSFS_ENTRIES:
                        raise E820Error("%s: more than %d memmap entries" % (name, MAX_SYSFS_ENTRIES))
    except OSError as exc:
        raise E820Error("%s: cannot list: %s" % (name, exc.strerror or exc)) from None
    dirs.sort(key=int)
    out = []
    for dn in dirs:
        entry = rootp / dn

        def field(f: str, entry: Path = entry) -> str:
            raw = read_input(entry / f, "memmap %s" % f, MAX_SYSFS_BYTES, error=E820Error)
            return raw.decode("ascii", errors="replace").strip()

        start_s, end_s, type_s = field("start"), field("end"), field("type")
        try:
            start = int(start_s, 16) if start_s.lower().startswith("0x") else int(start_s, 0)
            end = int(end_s, 16) if end_s.lower().startswith("0x") else int(end_s, 0)
        except ValueError:
            raise E820Error("%s: %s: bad start/end %r/%r" % (name, dn, start_s[:40], end_s[:40])) from None
        try:
            type_ = type_from_name(type_s)
        except ValueError:
            raise E820Error("%s: %s: unknown memmap type %r" % (name, dn, type_s[:60])) from None
        if end < start:
            raise E820Error("%s: %s: inverted range [%#x-%#x]" % (name, dn, start, end))
        size = end - start + 1
        problem = _check_limits(start, size, max_phys_bits)
        if problem:
            raise E820Error("%s: %s: %s" % (name, dn, problem))
        out.append(E820Entry(start, size, type_))
    if not out:
        raise E820Error("%s: no memmap entries" % name)
    return E820Map(out)


_RE_JSON_START = re.compile(r"^\s*(\{|\[\s*(\{|\]|$))")


def load_e820(path: Union[str, os.PathLike], max_phys_bits: int = 52) -> E820Map:
    """Load an e820 map: a ``/sys/firmware/memmap``-style directory, JSON
    (content starting with ``[{``/``{``) or kernel-printed text / a boot log.

    Files are read through :func:`emu.inputs.files.read_input`: at most
    :data:`~emu.inputs.files.MAX_INPUT_BYTES`; devices, FIFOs, sockets, empty and binary
    files refused; errors name the full path."""
    p = Path(path)
    if p.is_dir():
        return parse_sysfs_memmap(p, max_phys_bits)
    name = display_path(p)
    raw = read_input(p, "e820 map", MAX_INPUT_BYTES, empty_ok=True, error=E820Error)
    if not raw.strip():
        raise E820Error("%s: empty file: no e820 entries" % name)
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
EMBEDDED_DEFAULT = E820Map([
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
