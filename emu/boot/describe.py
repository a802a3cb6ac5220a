"""A boot described from what a user has: a boot log, a kernel .config, a System.map, the
CPU's features, an e820 map -- every input derived, every guess said.

:func:`describe` turns the artefacts into the inputs of one emulation
(:class:`BootDescription`: the e820 map and its logged edits, the profile, the boot
parameters, how far to emulate) and says where each input came from (``sources``) and
which ones nobody gave (``assumptions``; the emulated kernel adds its own for the defaults
it fills in, see :func:`emu.kernel.params.resolve_params`).  Inputs that contradict each
other are an error.  ``emu run``, ``emu replay`` and every other command that emulates use
this one path.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from emu.errors import EmuError
from emu.inputs.dmesg import BootLog, load_boot_log
from emu.inputs.e820 import E820_RAM, EMBEDDED_DEFAULT, E820Map
from emu.kernel.arch.x86.kernel.setup import XEN_DEFAULT_EXTRA
from emu.kernel.params import Assumption, BootParams
from emu.kernel.profiles import DEFAULT_PROFILE, PROFILES, Profile, ProfileError, get_profile, parse_version
from emu.machine.cpu import CpuFeatures


class DescribeError(EmuError):
    """Inputs that cannot describe one boot (contradictions, an unusable log)."""


class ReplayError(EmuError):
    """A log emu cannot replay (one line naming the log and the reason)."""


def read_log(path: Union[str, Path]) -> BootLog:
    return load_boot_log(path)


def _kernel_range_edits(log: BootLog, edits: list) -> list:
    """``e820_add_kernel_range`` (3.9+): after ".text .data .bss are not marked as
    E820_RAM!" the kernel removes the image range (logged) and adds it back as RAM
    (not logged): append that add after the logged remove."""
    warn = [l.lineno for l in log.lines if "are not marked as E820" in l.text]
    if not warn:
        return edits
    out = list(edits)
    for i, e in enumerate(out):
        if e.op == "remove" and e.lineno > warn[0]:
            out.insert(i + 1, dataclasses.replace(e, op="add", old_type=None, new_type=E820_RAM))
            break
    return out


@dataclass
class BootDescription:
    """The inputs of one emulation, with where each came from."""

    e820: E820Map
    #: the boot log's e820 edits (they replace emu's own mem=/memmap=/trim_bios_range edits)
    log_edits: Optional[list]
    params: BootParams
    profile: Profile
    #: inputs nobody gave, set to a default here (the kernel adds its own when it emulates)
    assumptions: List[Assumption] = field(default_factory=list)
    #: input -> where it came from ("log line 123", "--config", "System.map", "--brk")
    sources: Dict[str, str] = field(default_factory=dict)
    #: how far to emulate: "init_mem_mapping", or "paging_init" (i686 logs that show
    #: native_pagetable_init's and paging_init's lines)
    until: str = "init_mem_mapping"
    #: the boot log, when there is one (replay compares its lines)
    log: Optional[BootLog] = None

    def to_json(self) -> dict:
        return {"profile": self.profile.name, "until": self.until, "sources": dict(self.sources),
                "assumptions": [a.to_json() for a in self.assumptions]}


class _Inputs:
    """The description being built: values with their sources."""

    def __init__(self) -> None:
        self.params = BootParams()
        self.sources: Dict[str, str] = {}
        self.assumptions: List[Assumption] = []

    def set(self, name: str, value: Any, source: str) -> None:
        setattr(self.params, name, value)
        self.sources[name] = source

    def assume(self, name: str, value: str, why: str) -> None:
        self.assumptions.append(Assumption(name, value, why))


def describe(log: Optional[BootLog] = None, e820: Optional[E820Map] = None, e820_source: Optional[str] = None,
             profile: Optional[str] = None, arch: Optional[str] = None,
             overrides: Optional[Dict[str, Any]] = None) -> BootDescription:
    """Describe one boot from what is given (see the module doc).  ``e820`` (with
    ``e820_source`` naming it) replaces the log's map; ``profile`` and ``arch`` ("x86_64",
    "i386-pae", "i386") and ``overrides`` (BootParams fields, the command's flags) win over
    what the artefacts say."""
    inp = _Inputs()
    edits: Optional[list] = None
    until = "init_mem_mapping"
    # -- the e820 map
    if log is not None:
        if log.arch not in (None, "x86_64", "i686"):
            raise ReplayError(f"{log.name}: {log.arch} log: architecture not emulated")
        base, edits = log_e820(log)
        table = base
        inp.sources["e820"] = f"{log.name}: {log.e820_who or 'BIOS-e820'} lines" + (" and their edits" if edits else "")
    if e820 is not None:
        table, edits = e820, None
        inp.sources["e820"] = e820_source or "the given map"
    if log is None and e820 is None:
        table = EMBEDDED_DEFAULT.copy()
        inp.assume("e820", "the embedded 16 GiB desktop map", "no --e820, --dmesg or --sysfs")
    # -- the kernel version
    prof = _profile(inp, log, profile)
    # -- what the log says
    if log is not None:
        from_log(inp, log)
        if inp.params.arch == "i386" and i386_shows_paging_init(log, prof):
            until = "paging_init"
    # -- the command's choices win
    if arch is not None:
        inp.set("arch", "x86_64" if arch == "x86_64" else "i386", "--arch")
        if inp.params.arch == "i386":
            inp.set("pae", arch == "i386-pae", "--arch")
    for name, value in (overrides or {}).items():
        if not hasattr(inp.params, name):
            raise DescribeError(f"unknown boot parameter {name!r}")
        inp.set(name, value, "option")
    if log is None:
        inp.assume("command line", "none (no mem=, memmap=, nogbpages, debug_pagealloc=, movable_node)",
                   "no boot log")
        inp.assume("initrd", "none", "no boot log (RAMDISK line), no --initrd")
    p = inp.params
    if p.la57 and not prof.la57_supported:
        raise DescribeError(f"profile {prof.name} has no 5-level paging (it needs 4.20+)")
    if p.arch == "i386" and p.la57:
        raise DescribeError("5-level paging is x86-64 only (--la57 with an i386 kernel)")
    return BootDescription(table, edits, p, prof, inp.assumptions, inp.sources, until, log)


def _profile(inp: _Inputs, log: Optional[BootLog], name: Optional[str]) -> Profile:
    if name:
        prof = get_profile(name)
        inp.sources["profile"] = "--profile " + name
        return prof
    if log is not None and log.kernel_version:
        text = stable_version(log) or log.kernel_version
        try:
            prof = with_backports(get_profile(text), log)
        except ProfileError as e:
            raise ReplayError(f"{log.name}: {e}") from None
        inp.sources["profile"] = f"{log.name}: Linux version {log.kernel_version}"
        _beyond_known(inp, text, prof)
        return prof
    prof = PROFILES[DEFAULT_PROFILE]
    inp.assume("profile", prof.name, "the newest profile; no --profile and no version line")
    return prof


def _beyond_known(inp: _Inputs, text: str, prof: Profile) -> None:
    """A version newer than every release emu knows runs as the newest: say so."""
    newest = max((p.version for p in PROFILES.values() if p.by_version))
    v = parse_version(text)
    if tuple(v[:2]) > tuple(newest[:2]):
        inp.assume("profile", prof.name, f"kernel {text} is newer than every change emu knows "
                                         f"(newest: {'.'.join(map(str, newest))})")


def log_e820(log: BootLog) -> Tuple[E820Map, list]:
    """The map a log's edits start from (the user-defined map when printed, else the BIOS
    map) and the main-table edits logged after it, with the unlogged re-add of
    ``e820_add_kernel_range``."""
    if log.e820_user is not None:
        base = log.e820_user.copy()
        edits = [e for e in log.e820_edits if e.after_user_map and e.target == "e820"]
    else:
        base = log.e820.copy()
        edits = [e for e in log.e820_edits if e.target == "e820"]
    return base, _kernel_range_edits(log, edits)


def from_log(inp: _Inputs, log: BootLog) -> None:
    """Everything else a boot log says: CPU facts, the command line's choices, where the BRK
    buffer and the initrd lie, and for i686 logs the 32-bit geometry."""
    n = log.name
    opts = log.options
    gb = log.gb_pages
    inp.set("cpu", CpuFeatures(pse=True, pge=True, gbpages=gb, nx=log.nx is not False),
            f"{n}: 'Using GB pages' {'present' if gb else 'absent'}, NX {'as logged' if log.nx is not None else 'assumed'}")
    inp.set("gbpages", gb, f"{n}: 'Using GB pages' {'present' if gb else 'absent'}")
    if opts.debug_pagealloc:
        # the option works only in a kernel built with CONFIG_DEBUG_PAGEALLOC (4.5+; before,
        # the config alone decides): without --config, take the option at its word
        inp.set("debug_pagealloc", True, f"{n}: command line debug_pagealloc=on (CONFIG_DEBUG_PAGEALLOC=y assumed)")
    inp.set("movable_node", bool(opts.movable_node), f"{n}: command line")
    if log.brk_base is not None:
        inp.set("brk_base", log.brk_base, f"{n}: first 'BRK [' line")
    if log.ramdisk is not None:
        s, e = log.ramdisk
        inp.set("initrd", (s, e + 1), f"{n}: RAMDISK line")
    if log.e820_who == "Xen" and any("Booting paravirtualized kernel on Xen" in ln.text for ln in log.lines):
        # a PV domU: the toolstack's extra memory above nr_pages is reserved (xen_add_extra_mem)
        inp.set("xen_extra_mem", XEN_DEFAULT_EXTRA, f"{n}: Xen PV domU (xend's 8 MiB slack)")
    if log.arch == "i686":
        i386_params(log, inp.params)
        inp.sources.setdefault("arch", f"{n}: i686 log")


def layout_from_log(log: BootLog) -> Tuple[E820Map, list, BootParams, Optional[str]]:
    """(e820, logged edits, boot parameters, kernel version) of a boot log (the parts of
    :func:`describe` the oracle's ``--inputs log`` uses)."""
    d = describe(log)
    return d.e820, d.log_edits or [], d.params, log.kernel_version


def i386_shows_paging_init(log: BootLog, prof: Profile) -> bool:
    """Does an i686 log show what ``setup_arch`` does after ``init_mem_mapping`` (3.9+:
    ``initmem_init``'s ``N MB LOWMEM available``, native_pagetable_init, paging_init)?"""
    return prof.scheme == "brk_top_down" and any(_RE_LOWHIGH.match(ln.text.strip()) for ln in log.lines)

# ---------------------------------------------------------------------------
# i386 (i686) logs
# ---------------------------------------------------------------------------
_RE_LAYOUT = re.compile(r"^\s*\.(text|init|data)\s*: 0x([0-9a-fA-F]+) - 0x([0-9a-fA-F]+)")
_RE_EARLY_RES = re.compile(r"^\s*#\d+ \[([0-9a-fA-F]+) - ([0-9a-fA-F]+)\]\s+(TEXT DATA BSS|BRK) ==>")
_RE_LOWHIGH = re.compile(r"^\d+MB (LOWMEM|HIGHMEM) available\.")


def i386_params(log: BootLog, params: BootParams) -> None:
    """What an i686 log tells about its kernel besides e820 (setup.c, head_32.S, init_32.c):

    * PAE from ``max_arch_pfn`` (BootLog.pae; NX implies PAE); NX only with PAE;
    * no PSE when the kernel cleared it ("Atom PSE erratum"); no GB pages on 32-bit;
    * ``PAGE_OFFSET`` from the trampoline line (virtual - physical);
    * ``MAXMEM`` from ``N MB LOWMEM available`` when there is highmem (max_low_pfn is then
      MAXMEM_PFN, and MAXMEM = PKMAP_BASE - 8K - PAGE_OFFSET - vmalloc reserve is 8K short
      of a PMD_SIZE multiple, so N fixes it);
    * ``pa(_end)`` from ``initial memory mapped`` (the largest _end head_32 maps that far for);
    * ``_text``/``__init_end`` from the ``virtual kernel memory layout`` lines when printed.
    """
    from emu.kernel.arch.x86.kernel import head_32
    from emu.kernel.arch.x86.mm import init_32 as mm_init_32
    from emu.kernel.params import DEFAULT_KERNEL_START, DEFAULT_PAGE_OFFSET_32
    params.arch = "i386"
    params.pae = True if log.pae is None else bool(log.pae)
    if any(ln.text.strip().endswith("MB LOWMEM available.") for ln in log.lines):
        # initmem_init prints the HIGHMEM line only with CONFIG_HIGHMEM
        params.highmem_config = any(ln.text.strip().endswith("MB HIGHMEM available.") for ln in log.lines)
    pse = not any("Atom PSE erratum" in ln.text for ln in log.lines)
    params.cpu = CpuFeatures(pse=pse, pge=True, gbpages=False, nx=bool(log.nx) and params.pae)
    params.gbpages = False
    po = log.page_offset
    if po is not None and 0 < po < (1 << 32) and po % (1 << 22) == 0:
        params.page_offset_32 = po
    po = params.page_offset_32 if params.page_offset_32 is not None else DEFAULT_PAGE_OFFSET_32
    pmd = (2 if params.pae else 4) << 20
    if log.lowmem_mb and log.highmem_mb:
        x = -(-((log.lowmem_mb << 20) + 0x2000) // pmd) * pmd - 0x2000
        if x < (log.lowmem_mb + 1) << 20:
            params.lowmem_limit = x
            # PKMAP_BASE = MAXMEM + PAGE_OFFSET + __VMALLOC_RESERVE + 2 pages; below the default
            # it means a boot-time fixmap reaching below the top PMD: its lowest slot is then at
            # least PKMAP_BASE + (LAST_PKMAP + 1) pages (pgtable_32_types.h)
            pkmap = x + po + mm_init_32.VMALLOC_RESERVE + 0x2000
            last_pkmap = 512 if params.pae else 1024
            if 0xFF000000 <= pkmap < (mm_init_32.FIXADDR_TOP - (last_pkmap + 1) * 0x1000) & -pmd - pmd:
                params.fixmap_bottom = pkmap + (last_pkmap + 1) * 0x1000
    # 2.6.3x early_res listing: "#3 [0000100000 - 00008e1ed8]    TEXT DATA BSS ==> [...]",
    # "#6 [00008e2000 - 00008e5170]              BRK ==> [...]"
    early_res = {}
    for ln in log.lines:
        m = _RE_EARLY_RES.match(ln.text)
        if m and m.group(3) not in early_res:
            early_res[m.group(3)] = (int(m.group(1), 16), int(m.group(2), 16))
    if "TEXT DATA BSS" in early_res:
        params.kernel_start = early_res["TEXT DATA BSS"][0]
    if log.brk_base is None and "BRK" in early_res:
        # no BRK page-table lines (pre-3.9): head_32's tables end the BRK; nothing after it is reserved
        params.brk_base = -(-early_res["BRK"][1] // 0x1000) * 0x1000
    if log.initial_memory_mapped is not None:
        params.image_end = head_32.image_end_for(params.pae, po, log.initial_memory_mapped[1] + 1)
        if params.brk_base is not None and params.image_end < params.brk_base:
            params.image_end = params.brk_base
        if params.brk_base is None:
            # no BRK line (pre-3.9 logs): put the page-table buffer just below _end's BRK tail
            params.brk_base = max(0x100000, (params.image_end - 0x1F6000) & ~0xFFF)
    bottom = params.fixmap_bottom if params.fixmap_bottom is not None else mm_init_32.DEFAULT_FIXMAP_BOTTOM
    params.fixmap_ptes = (mm_init_32.FIXADDR_TOP + 0x1000 - bottom) >> 12   # __end_of_fixed_addresses
    start = params.kernel_start if params.kernel_start is not None else DEFAULT_KERNEL_START
    brk = params.brk_base if params.brk_base is not None else start
    if brk < start:
        params.kernel_start = 0x100000   # CONFIG_PHYSICAL_START of older / i586 builds (1 MiB)
    for ln in log.lines:
        m = _RE_LAYOUT.match(ln.text)
        if m and int(m.group(2), 16) >= po:
            if m.group(1) == "text":
                params.kernel_start = int(m.group(2), 16) - po
            elif m.group(1) == "init":
                params.init_end = int(m.group(3), 16) - po


def stable_version(log: BootLog) -> Optional[str]:
    """The upstream stable release a distribution kernel is based on, when the version line
    names it (Ubuntu: ``(Ubuntu 3.0.0-32.51-generic-pae 3.0.69)`` -> ``3.0.69``)."""
    line = log.version_line or ""
    m = re.search(r"\(Ubuntu [^)\s]+ (\d+\.\d+(?:\.\d+)*)", line)
    return m.group(1) if m else None


def with_backports(prof: Profile, log: BootLog) -> Profile:
    """The profile, with the changes the log shows its kernel carries although its version
    predates them.  844ab6f9 ("Find_early_table_space based on ranges that are actually
    being mapped") also changed the buffer line to the ``[mem ...]`` form: a hex-style log
    whose ``kernel direct mapping tables`` line has that form runs the backported code."""
    if prof.scheme == "early_table_space" and prof.table_space_formula == "end" and any(
            l.startswith("kernel direct mapping tables up to 0x") and "@ [mem " in l for l in log.pagetable_lines):
        return dataclasses.replace(prof, name=prof.name + "+844ab6f9", table_space_formula="ranges")
    return prof
