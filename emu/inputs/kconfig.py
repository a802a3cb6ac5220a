"""A kernel's build configuration: ``.config``, ``/boot/config-*`` or ``/proc/config.gz``.

The format (scripts/kconfig/confdata.c): ``CONFIG_NAME=value`` lines (``y``, ``m``, a decimal
or ``0x`` number, a quoted string with ``\\"`` and ``\\\\`` escapes), ``# CONFIG_NAME is not
set`` for a disabled bool/tristate, other ``#`` comments (the header names the version:
``# Linux/x86 6.1.192 Kernel Configuration``) and blank lines.  :func:`load_kconfig` reads
a file through :func:`emu.inputs.files.read_input` (gzip-compressed input such as
``/proc/config.gz`` is inflated, to at most :data:`~emu.inputs.files.MAX_INPUT_BYTES`);
:func:`parse_kconfig` parses text.  Every problem is one :class:`KConfigError` line with
the full path and the line number.

:data:`TABLE_OPTIONS` lists the options that change the early page tables or the fixmap,
with why; :meth:`KConfig.table_facts` gives their values in one dict.
"""
from __future__ import annotations

import builtins
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

from emu.errors import EmuError
from emu.inputs.files import MAX_INPUT_BYTES, describe_size, display_path, read_input

__all__ = ["KConfig", "KConfigError", "parse_kconfig", "load_kconfig", "TABLE_OPTIONS"]


class KConfigError(EmuError):
    """A kernel configuration emu cannot read, or an option of the wrong kind (one line)."""


#: options that change the early page tables, the kernel-image slot or the fixmap
TABLE_OPTIONS: Tuple[Tuple[str, str], ...] = (
    ("X86_64", "64-bit kernel"),
    ("X86_32", "32-bit kernel"),
    ("X86_PAE", "32-bit: PAE page tables (3 levels, NX)"),
    ("HIGHMEM4G", "32-bit: highmem without PAE"),
    ("HIGHMEM64G", "32-bit: highmem with PAE"),
    ("NOHIGHMEM", "32-bit: no highmem"),
    ("HIGHMEM", "32-bit: highmem (pkmap, kmap fixmap slots)"),
    ("PAGE_OFFSET", "32-bit: the direct map's virtual base (VMSPLIT_*)"),
    ("X86_5LEVEL", "64-bit: 5-level paging possible (with LA57 and without no5lvl)"),
    ("PGTABLE_LEVELS", "paging levels built for"),
    ("PAGE_TABLE_ISOLATION", "PTI possible (4.15-6.8 name)"),
    ("MITIGATION_PAGE_TABLE_ISOLATION", "PTI possible (6.9+ name)"),
    ("DEBUG_PAGEALLOC", "debug_pagealloc= obeyed (4 KiB pages only when on)"),
    ("DEBUG_PAGEALLOC_ENABLE_DEFAULT", "debug_pagealloc on by default"),
    ("RANDOMIZE_MEMORY", "64-bit: the direct map's base randomised (KASLR; doubles the early pgt_buf)"),
    ("RANDOMIZE_MEMORY_PHYSICAL_PADDING", "64-bit: KASLR padding (TiB)"),
    ("RANDOMIZE_BASE", "KASLR of the kernel image"),
    ("RELOCATABLE", "the image may be loaded elsewhere than PHYSICAL_START"),
    ("PHYSICAL_START", "where the kernel image is loaded"),
    ("PHYSICAL_ALIGN", "the image's load alignment"),
    ("X86_DIRECT_GBPAGES", "64-bit: 1 GiB pages allowed in the direct map"),
    ("X86_RESERVE_LOW", "KiB of low memory reserved (64 by default)"),
    ("NR_CPUS", "32-bit: per-CPU kmap fixmap slots (KM_TYPE_NR x NR_CPUS)"),
    ("KMAP_LOCAL", "32-bit 5.11+: kmap_local fixmap slots"),
    ("DEBUG_KMAP_LOCAL", "32-bit: guard slots in the kmap_local fixmap"),
    ("X86_LOCAL_APIC", "fixmap: FIX_APIC_BASE"),
    ("X86_IO_APIC", "fixmap: FIX_IO_APIC_BASE_*"),
    ("X86_VSYSCALL_EMULATION", "fixmap: VSYSCALL_PAGE"),
    ("PARAVIRT", "fixmap: FIX_PARAVIRT_BOOTMAP (older kernels)"),
    ("PARAVIRT_XXL", "fixmap: FIX_PARAVIRT_BOOTMAP (5.x)"),
    ("PROVIDE_OHCI1394_DMA_INIT", "fixmap: FIX_OHCI1394_BASE"),
    ("X86_INTEL_MID", "fixmap: FIX_LNW_VRTC"),
    ("ACPI_APEI_GHES", "fixmap: FIX_APEI_GHES_*"),
    ("INTEL_TXT", "fixmap: FIX_TBOOT_BASE"),
    ("PCI_MMCONFIG", "fixmap: FIX_PCIE_MCFG (32-bit)"),
    ("X86_F00F_BUG", "fixmap: FIX_F00F_IDT (32-bit)"),
    ("DMI", "fixmap/early_ioremap use"),
    ("KASAN", "64-bit: the KASAN shadow's early tables"),
    ("XEN_PV", "paravirtualised page tables"),
    ("MEMORY_HOTPLUG", "movable_node possible"),
    ("X86_PAT", "PAT-based page attributes"),
)

_RE_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_RE_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")
_RE_HEADER = re.compile(r"^# Linux/(\S+) (\S+) Kernel Configuration$")
_RE_INT = re.compile(r"^-?\d+$")
_RE_HEX = re.compile(r"^0[xX][0-9a-fA-F]+$")
_RE_STRING = re.compile(r'^"(?:[^"\\]|\\.)*"$')


def _key(name: str) -> str:
    return name if name.startswith("CONFIG_") else "CONFIG_" + name


@dataclass
class KConfig:
    """A parsed configuration.  ``raw`` maps ``CONFIG_NAME`` to its value as written
    (``"y"``, ``"m"``, ``"0x1000000"``, ``'"gcc-12 ..."'``; ``"n"`` for ``# ... is not set``);
    ``linenos`` where each was set; ``header_arch``/``header_version`` from the
    ``# Linux/x86 6.1.192 Kernel Configuration`` header.  Accessors take names with or
    without the ``CONFIG_`` prefix."""

    name: str
    raw: Dict[str, str] = field(default_factory=dict)
    linenos: Dict[str, int] = field(default_factory=dict)
    header_arch: Optional[str] = None
    header_version: Optional[str] = None

    # -- accessors ---------------------------------------------------------------------
    def has(self, name: builtins.str) -> builtins.bool:
        """The option appears (set, or ``# ... is not set``)."""
        return _key(name) in self.raw

    def get(self, name: builtins.str) -> Optional[builtins.str]:
        """The value as written, None when absent."""
        return self.raw.get(_key(name))

    def is_set(self, name: builtins.str) -> builtins.bool:
        """Set to anything but ``n`` (absent or ``is not set``: False)."""
        v = self.raw.get(_key(name))
        return v is not None and v != "n"

    def _where(self, key: builtins.str) -> builtins.str:
        return "%s: line %d: %s" % (self.name, self.linenos.get(key, 0), key)

    def bool(self, name: str, default: Optional[builtins.bool] = None) -> Optional[builtins.bool]:
        """``y``/``m`` -> True, ``n``/not set -> False, absent -> ``default``;
        KConfigError for a value that is not a bool/tristate."""
        key = _key(name)
        v = self.raw.get(key)
        if v is None:
            return default
        if v in ("y", "m"):
            return True
        if v == "n":
            return False
        raise KConfigError("%s=%s is not a bool" % (self._where(key), v[:60]))

    def tristate(self, name: builtins.str) -> Optional[builtins.str]:
        """``"y"``, ``"m"``, ``"n"`` or None when absent (KConfigError for other values)."""
        key = _key(name)
        v = self.raw.get(key)
        if v is None or v in ("y", "m", "n"):
            return v
        raise KConfigError("%s=%s is not a tristate" % (self._where(key), v[:60]))

    def int(self, name: str, default: Optional[builtins.int] = None) -> Optional[builtins.int]:
        """A decimal or ``0x`` hex value; ``default`` when absent or not set; KConfigError
        for a value that is not a number."""
        key = _key(name)
        v = self.raw.get(key)
        if v is None or v == "n":
            return default
        if _RE_HEX.match(v):
            return int(v, 16)
        if _RE_INT.match(v):
            return int(v)
        raise KConfigError("%s=%s is not a number" % (self._where(key), v[:60]))

    def str(self, name: builtins.str, default: Optional[builtins.str] = None) -> Optional[builtins.str]:
        """A string value without its quotes (escapes undone); an unquoted value as is;
        ``default`` when absent or not set."""
        key = _key(name)
        v = self.raw.get(key)
        if v is None or v == "n":
            return default
        if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
            return re.sub(r"\\(.)", r"\1", v[1:-1])
        return v

    def __contains__(self, name: object) -> builtins.bool:
        return isinstance(name, str) and self.is_set(name)

    def __len__(self) -> builtins.int:
        return len(self.raw)

    # -- what it means -------------------------------------------------------------------
    @property
    def arch(self) -> Optional[builtins.str]:
        """``"x86_64"`` (CONFIG_X86_64), ``"i386"`` (CONFIG_X86_32) or None."""
        if self.is_set("X86_64"):
            return "x86_64"
        if self.is_set("X86_32"):
            return "i386"
        return None

    @property
    def pae(self) -> Optional[builtins.bool]:
        """32-bit PAE (CONFIG_X86_PAE); None on 64-bit or when the config does not say."""
        if self.arch == "x86_64":
            return None
        return self.bool("X86_PAE", default=False if self.arch == "i386" else None)

    @property
    def pti(self) -> Optional[builtins.bool]:
        """PTI built in (CONFIG_PAGE_TABLE_ISOLATION, renamed CONFIG_MITIGATION_PAGE_TABLE_ISOLATION
        in 6.9); None when neither appears."""
        for n in ("MITIGATION_PAGE_TABLE_ISOLATION", "PAGE_TABLE_ISOLATION"):
            if self.has(n):
                return self.bool(n)
        return None

    @property
    def version(self) -> Optional[builtins.str]:
        """The kernel version of the header (``6.1.192``), or None."""
        return self.header_version

    def table_facts(self) -> Dict[builtins.str, Optional[builtins.str]]:
        """Every option of :data:`TABLE_OPTIONS` -> its raw value (``"n"`` when not set,
        None when absent)."""
        return {n: self.get(n) for n, _ in TABLE_OPTIONS}


def parse_kconfig(text: Union[str, bytes], name: str = "<config>") -> KConfig:
    """Parse configuration text (see the module docstring); KConfigError naming the line
    for anything that is not a ``CONFIG_`` assignment, a comment or a blank line, or for
    a file with no option at all."""
    if isinstance(text, bytes):
        if b"\x00" in text:
            raise KConfigError("%s: binary data (NUL bytes), not a kernel .config" % name)
        text = text.decode("utf-8", errors="replace")
    kc = KConfig(name)
    for i, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s:
            continue
        if s.startswith("#"):
            m = _RE_UNSET.match(s)
            if m:
                kc.raw[m.group(1)] = "n"
                kc.linenos[m.group(1)] = i
                continue
            m = _RE_HEADER.match(s)
            if m and kc.header_version is None:
                kc.header_arch, kc.header_version = m.group(1), m.group(2)
            continue
        m = _RE_SET.match(s)
        if not m:
            raise KConfigError("%s: line %d: not a kernel .config line: %s" % (name, i, s[:80]))
        val = m.group(2).strip()
        if val.startswith('"') and not _RE_STRING.match(val):
            raise KConfigError("%s: line %d: unterminated string: %s" % (name, i, s[:80]))
        kc.raw[m.group(1)] = val
        kc.linenos[m.group(1)] = i
    if not kc.raw:
        raise KConfigError("%s: no CONFIG_ options (is this a kernel .config?)" % name)
    return kc


def load_kconfig(path: Union[str, Path], limit: int = MAX_INPUT_BYTES) -> KConfig:
    """Read and parse a ``.config``/``config-*`` file, or a gzip-compressed one
    (``/proc/config.gz``), through :func:`emu.inputs.files.read_input`; the inflated text is
    bounded by ``limit`` too.  Errors (KConfigError, one line) name the full path."""
    name = display_path(path)
    data = read_input(path, "kernel .config", limit, binary_ok=True, error=KConfigError)
    if data[:2] == b"\x1f\x8b":
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out = d.decompress(data, limit + 1)
        except zlib.error as exc:
            raise KConfigError("%s: damaged gzip data (%s)" % (name, exc)) from None
        if len(out) > limit or d.unconsumed_tail:
            raise KConfigError("%s: inflates to more than the %s limit for a kernel .config"
                               % (name, describe_size(limit)))
        if not d.eof:
            raise KConfigError("%s: damaged gzip data (truncated stream)" % name)
        data = out
    head = data[:65536]
    if b"\x00" in head:
        raise KConfigError("%s: binary data (NUL bytes), not a kernel .config" % name)
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    if bad > max(16, len(text) // 50):
        raise KConfigError("%s: not UTF-8 text (%d undecodable bytes), not a kernel .config" % (name, bad))
    return parse_kconfig(text, name)
