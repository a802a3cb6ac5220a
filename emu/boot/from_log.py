"""What a boot log tells about its boot (emu.inputs.dmesg reads it; this module decides
what each line means for the emulation's inputs): the e820 map and its edits, the CPU
facts, the command line's choices, where the BRK buffer, the kernel image and the initrd
were reserved (``memblock=debug``), memblock's reservations when ``init_mem_mapping``
starts, and an i686 kernel's 32-bit geometry."""
from __future__ import annotations

import dataclasses
import re
from typing import Optional, Tuple

from emu.boot.record import Inputs
from emu.inputs.dmesg import BootLog
from emu.inputs.e820 import E820_RAM, E820Map
from emu.kernel.arch.x86.kernel.setup import XEN_DEFAULT_EXTRA
from emu.kernel.params import BootParams
from emu.kernel.profiles import Profile


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


def from_log(inp: Inputs, log: BootLog, prof: Profile) -> None:
    """What a boot log fixes besides e820 and the version: the command line, where the BRK
    buffer, the kernel image and the initrd were reserved, memblock's reservations at the
    mapping (``memblock=debug``), a Xen PV guest's extra memory, an i686 kernel's 32-bit
    geometry.  The CPU and the kernel's choices (GB pages, PTI, 5-level paging,
    debug_pagealloc) are decided with the .config and ``--cpu`` in :mod:`emu.boot.decide`."""
    n = log.name
    opts = log.options
    inp.set("movable_node", bool(opts.movable_node), f"{n}: command line")
    if opts.mem is not None:
        inp.sources["mem_limit"] = f"{n}: command line mem= (its e820 edits are logged)"
    # the BRK page-table buffer: 'BRK [' lines (<= 5.7), else reserve_brk's memblock=debug line
    if log.brk_base is not None:
        inp.set("brk_base", log.brk_base, f"{n}: first 'BRK [' line")
    elif log.brk_reservation is not None:
        r = log.brk_reservation
        inp.set("brk_end", r.end, f"{n} line {r.lineno}: reserve_brk's memblock_reserve [{r.start:#x}-{r.last:#x}] "
                                  "(the page-table buffer is the BRK's last pages)")
    # the kernel image: memblock=debug's first MEMBLOCK dump
    if log.image_reservation is not None:
        r = log.image_reservation
        inp.set("kernel_start", r.start, f"{n} line {r.lineno}: the kernel image's reservation "
                                         f"[{r.start:#x}-{r.last:#x}] ({r.source})")
    # the initrd
    if log.initrd_reservation is not None:
        r = log.initrd_reservation
        inp.set("initrd", (r.start, r.end), f"{n} line {r.lineno}: {r.source}")
    elif log.ramdisk is not None:
        s, e = log.ramdisk
        inp.set("initrd", (s, e + 1), f"{n}: RAMDISK line")
    # memblock's reservations when init_mem_mapping starts (memblock=debug)
    st = log.memblock_at_mapping
    if st is not None and st.reserved:
        inp.set("reserves", [tuple(r) for r in st.reserved], f"{n}: {st.why}")
    if log.e820_who == "Xen" and any("Booting paravirtualized kernel on Xen" in ln.text for ln in log.lines):
        # a PV domU: the toolstack's extra memory above nr_pages is reserved (xen_add_extra_mem)
        inp.set("xen_extra_mem", XEN_DEFAULT_EXTRA, f"{n}: Xen PV domU (xend's 8 MiB slack)")
    if log.arch == "i686":
        i386_params(log, inp.params, prof, inp.assume)
        inp.sources.setdefault("arch", f"{n}: i686 log")
        if opts.highmem is not None:
            # parse_highmem (init_32.c): find_low_pfn_range carves it out of lowmem or caps max_pfn
            inp.set("highmem", opts.highmem, f"{n}: command line highmem=")


#: lines start_kernel prints after mm_init (pti_init has run by then)
_RE_AFTER_MM_INIT = re.compile(r"^(NR_IRQS|rcu: |RCU: |Preemptible hierarchical RCU|Hierarchical RCU|"
                               r"Console: |Calibrating delay|pid_max: |Dentry cache hash)")
#: lines printed once init_mem_mapping has run (paging_init's zone ranges, ACPI table parsing)
_RE_AFTER_MAPPING = re.compile(r"^(Zone ranges:|Movable zone start|Early memory node ranges|"
                               r"On node 0 totalpages|Memory: )")


def reaches(log: BootLog, point: str) -> bool:
    """Does the log go on past ``point`` ("init_mem_mapping" or "mm_init")?  Lines a kernel
    prints only when something happened (``Using GB pages``, the PTI line) mean "not
    happened" only in a log that reaches past where they would be."""
    rx = _RE_AFTER_MM_INIT if point == "mm_init" else _RE_AFTER_MAPPING
    if point == "init_mem_mapping" and log.first_pagetable_lineno is not None:
        return True
    return any(rx.match(ln.text.strip()) for ln in log.lines)


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


def i386_params(log: BootLog, params: BootParams, prof: Profile, say=lambda *a: None) -> None:
    """What an i686 log tells about its kernel besides e820 (setup.c, head_32.S, init_32.c):

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
    params.arch = "i386"   # PAE: decided with the config in emu.boot.describe
    if any(ln.text.strip().endswith("MB LOWMEM available.") for ln in log.lines):
        # initmem_init prints the HIGHMEM line only with CONFIG_HIGHMEM
        params.highmem_config = any(ln.text.strip().endswith("MB HIGHMEM available.") for ln in log.lines)
    po = log.page_offset
    if po is not None and 0 < po < (1 << 32) and po % (1 << 22) == 0:
        params.page_offset_32 = po
    po = params.page_offset_32 if params.page_offset_32 is not None else DEFAULT_PAGE_OFFSET_32
    pmd = (2 if params.pae else 4) << 20
    if log.lowmem_mb and log.highmem_mb and log.options.highmem is None:
        # (with highmem= lowmem may end below MAXMEM: lowmem_pfn_init carves the highmem out)
        x = -(-((log.lowmem_mb << 20) + 0x2000) // pmd) * pmd - 0x2000
        if x < (log.lowmem_mb + 1) << 20:
            params.lowmem_limit = x
            if prof.i386_pkmap_rule == "boot":
                # up to 3.18 PKMAP_BASE sits right below the boot-time fixmap: PKMAP_BASE = MAXMEM +
                # PAGE_OFFSET + __VMALLOC_RESERVE + 2 pages below the default means a fixmap reaching
                # below the top PMD, whose lowest slot is PKMAP_BASE + (LAST_PKMAP + 1) pages
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
    if log.brk_base is None and params.brk_end is None and "BRK" in early_res:
        # no BRK page-table lines (pre-3.9): head_32's tables end the BRK; nothing after it is reserved
        params.brk_base = -(-early_res["BRK"][1] // 0x1000) * 0x1000
    if log.initial_memory_mapped is not None:
        params.image_end = head_32.image_end_for(params.pae, po, log.initial_memory_mapped[1] + 1)
        brk = params.brk_base if params.brk_base is not None else params.brk_end
        if brk is not None and params.image_end < brk:
            params.image_end = brk
        if params.brk_base is None and params.brk_end is None:
            # no BRK line (pre-3.9 logs): put the page-table buffer just below _end's BRK tail
            params.brk_base = max(0x100000, (params.image_end - 0x1F6000) & ~0xFFF)
            say("brk_base", "%#x" % params.brk_base, "%s: below the end of what head_32 mapped (_end, from the "
                "'initial memory mapped' line) less a typical BRK tail; no BRK line" % log.name)
    if params.fixmap_bottom is not None:
        params.fixmap_ptes = (mm_init_32.FIXADDR_TOP + 0x1000 - params.fixmap_bottom) >> 12  # __end_of_fixed_addresses
    elif prof.scheme != "brk_top_down":
        params.fixmap_ptes = (mm_init_32.FIXADDR_TOP + 0x1000 - mm_init_32.DEFAULT_FIXMAP_BOTTOM) >> 12
        say("fixmap_ptes", str(params.fixmap_ptes), "__end_of_fixed_addresses of a typical build (find_early_table_space "
            "adds their page tables); no --config")
    start = params.kernel_start if params.kernel_start is not None else DEFAULT_KERNEL_START
    brk = params.brk_base if params.brk_base is not None else (params.brk_end or start)
    if brk < start:
        params.kernel_start = 0x100000   # CONFIG_PHYSICAL_START of older / i586 builds (1 MiB)
        say("kernel_start", "0x100000", "%s: the BRK lies below 16 MiB, so CONFIG_PHYSICAL_START is "
            "the 1 MiB of older and i586 builds; no memblock=debug log" % log.name)
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
