"""A boot described from what a user has: today, a boot log.

From a log emu takes everything the kernel knew when it called ``init_mem_mapping``:
the e820 map and its logged edits, the kernel version (-> profile, with the backports the
log shows), the BRK address (first ``BRK [`` line), the initrd (``RAMDISK:``), GB-page
use, NX, the command line and, for i686 logs, the 32-bit geometry the log reveals.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import List, Optional, Tuple, Union

from emu.errors import EmuError
from emu.inputs.dmesg import BootLog, load_boot_log
from emu.inputs.e820 import E820_RAM, E820Map
from emu.kernel.state import BootParams
from emu.kernel.arch.x86.kernel.setup import XEN_DEFAULT_EXTRA
from emu.kernel.profiles import Profile
from emu.machine.cpu import CpuFeatures


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


def layout_from_log(log: BootLog) -> Tuple[E820Map, list, BootParams, Optional[str]]:
    """(e820, logged edits, boot parameters, kernel version) of a boot log."""
    if log.arch not in (None, "x86_64", "i686"):
        raise ReplayError(f"{log.name}: {log.arch} log: architecture not emulated")
    if log.e820_user is not None:
        base = log.e820_user.copy()
        edits = [e for e in log.e820_edits if e.after_user_map and e.target == "e820"]
    else:
        base = log.e820.copy()
        edits = [e for e in log.e820_edits if e.target == "e820"]
    edits = _kernel_range_edits(log, edits)
    opts = log.options
    params = BootParams()
    params.cpu = CpuFeatures(pse=True, pge=True, gbpages=log.gb_pages, nx=log.nx is not False)
    params.gbpages = log.gb_pages
    params.debug_pagealloc = bool(opts.debug_pagealloc)
    params.movable_node = bool(opts.movable_node)
    if log.brk_base is not None:
        params.brk_base = log.brk_base
    if log.ramdisk is not None:
        s, e = log.ramdisk
        params.initrd = (s, e + 1)
    if log.e820_who == "Xen" and any("Booting paravirtualized kernel on Xen" in l.text for l in log.lines):
        # a PV domU: the toolstack's extra memory above nr_pages is reserved (xen_add_extra_mem)
        params.xen_extra_mem = XEN_DEFAULT_EXTRA
    if log.arch == "i686":
        i386_params(log, params)
    return base, edits, params, log.kernel_version


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
    params.arch = "i386"
    params.pae = True if log.pae is None else bool(log.pae)
    pse = not any("Atom PSE erratum" in ln.text for ln in log.lines)
    params.cpu = CpuFeatures(pse=pse, pge=True, gbpages=False, nx=bool(log.nx) and params.pae)
    params.gbpages = False
    po = log.page_offset
    if po is not None and 0 < po < (1 << 32) and po % (1 << 22) == 0:
        params.page_offset_32 = po
    po = params.page_offset_32
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
    brk = params.brk_base if params.brk_base is not None else params.kernel_start
    if brk < params.kernel_start:
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
