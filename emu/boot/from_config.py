"""What a kernel's .config fixes about its boot (the options that change the tables are
listed in :data:`emu.inputs.kconfig.TABLE_OPTIONS`): where the image is loaded when it
is not randomised, the 32-bit split and highmem, the fixmap slot ``bm_pte`` goes into
on x86-64.  The options decided together with the log and the CPU (GB pages, PTI,
debug_pagealloc, 5-level paging, the BRK buffer's size) are in :mod:`emu.boot.decide`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from emu.boot.record import Inputs
from emu.kernel.profiles import Profile

if TYPE_CHECKING:
    from emu.inputs.dmesg import BootLog
    from emu.inputs.kconfig import KConfig


def load_physical_addr(config: "KConfig") -> Optional[int]:
    """``LOAD_PHYSICAL_ADDR``: CONFIG_PHYSICAL_START rounded up to CONFIG_PHYSICAL_ALIGN
    (arch/x86/include/asm/page_types.h / boot.h), None when the config does not say."""
    start = config.int("PHYSICAL_START")
    if start is None:
        return None
    align = config.int("PHYSICAL_ALIGN", default=0x200000 if config.arch == "x86_64" else 0x2000) or 1
    return -(-start // align) * align


#: E820_MAX_ENTRIES_ZEROPAGE: the entries boot_params holds (arch/x86/include/uapi/asm/setup_data.h)
E820_MAX_ENTRIES_ZEROPAGE = 128


def e820_max_entries(config: "KConfig", prof: Profile) -> "tuple[int, str]":
    """The kernel's e820 table size and why: ``E820_MAX_ENTRIES = E820_MAX_ENTRIES_ZEROPAGE +
    3 * MAX_NUMNODES`` (arch/x86/include/asm/e820/types.h, 4.12+; before, ``E820_X_MAX`` had
    the extra entries only with CONFIG_EFI: the profile's ``e820_extra_entries_need_efi``),
    ``MAX_NUMNODES = 1 << CONFIG_NODES_SHIFT`` (include/linux/numa.h; NODES_SHIFT 0 without
    it)."""
    shift = config.int("NODES_SHIFT", default=0) or 0
    if prof.e820_extra_entries_need_efi and not config.bool("EFI", default=False):
        return E820_MAX_ENTRIES_ZEROPAGE, "E820MAX (no CONFIG_EFI)"
    n = E820_MAX_ENTRIES_ZEROPAGE + 3 * (1 << shift)
    return n, "E820_MAX_ENTRIES = 128 + 3 * MAX_NUMNODES (CONFIG_NODES_SHIFT %s)" % (
        shift if config.has("NODES_SHIFT") else "absent: 0")


def from_config(inp: Inputs, config: "KConfig", prof: Profile, log: Optional["BootLog"]) -> None:
    """Set what ``config`` fixes (see the module doc) unless a log already said it."""
    p = inp.params
    c = config.name
    if "e820_max_entries" not in inp.sources:
        n, why = e820_max_entries(config, prof)
        inp.set("e820_max_entries", n, f"{c}: {why}")
    # where the image runs: LOAD_PHYSICAL_ADDR unless KASLR moved it
    if "kernel_start" not in inp.sources:
        lpa = load_physical_addr(config)
        kaslr = config.bool("RANDOMIZE_BASE", default=False)
        nokaslr = log is not None and log.options.kaslr is False
        if lpa is not None and (not kaslr or nokaslr):
            why = "CONFIG_RANDOMIZE_BASE is not set" if not kaslr else "nokaslr on the command line"
            inp.set("kernel_start", lpa, f"{c}: CONFIG_PHYSICAL_START/ALIGN ({why})")
        elif lpa is not None:
            inp.kaslr_unknown = True
            p.kernel_start = lpa
            inp.assume("kernel_start", "%#x" % lpa,
                       "LOAD_PHYSICAL_ADDR of the config, but CONFIG_RANDOMIZE_BASE=y may have moved the image: "
                       "no memblock=debug log (its image reservation) and no nokaslr")
    if p.arch == "x86_64":
        from emu.kernel.arch.x86.fixmap import bm_pte_slot_64
        slot, why = bm_pte_slot_64(prof, config)
        if slot is not None:
            inp.set("bm_pte_slot", slot, f"{c}: {why}")
        return
    # i386: the split, highmem, MAXMEM and the fixmap geometry of this version's enum
    from emu.kernel.arch.x86.fixmap import i386_params_from_config
    vmalloc = log.options.vmalloc if log is not None else None
    for name, (value, why) in i386_params_from_config(prof, config, p.pae, vmalloc, c).items():
        if name in ("arch", "pae"):
            continue   # decided with the log (emu.boot.describe)
        if name in inp.sources or (name in LOG_WINS_32 and getattr(p, name) is not None):
            continue   # the log shows this boot's own value
        inp.set(name, value, why)


#: i386 fields a log's lines fix more directly than the config (the LOWMEM line's MAXMEM,
#: the virtual kernel memory layout lines)
LOG_WINS_32 = ("lowmem_limit", "page_offset_32", "highmem_config")


def typical_i386_fixmap(inp: Inputs, prof: Profile, log: "BootLog") -> None:
    """No config: the fixmap of a typical build, with NR_CPUS from the log's
    ``setup_percpu: NR_CPUS:N`` line when it has one (said)."""
    import re
    from emu.kernel.arch.x86.fixmap import TYPICAL_CONFIG_WHY, i386_params_from_config, typical_config_32
    p = inp.params
    if p.fixmap_bottom is not None or p.btmap_begin is not None:
        return
    nr = None
    for ln in log.lines:
        m = re.search(r"setup_percpu: NR_CPUS:(\d+)", ln.text)
        if m:
            nr = int(m.group(1))
            break
    if nr is None:
        return   # the kernel's own default (init_32.resolve_geometry_32), said there
    d = i386_params_from_config(prof, typical_config_32(p.pae, nr), p.pae, log.options.vmalloc,
                                "a typical build")
    for name in ("fixmap_bottom", "btmap_begin", "kmap_range"):
        if name in d and (name != "kmap_range" or p.highmem_config is not False):
            value, why = d[name]
            setattr(p, name, value)
            shown = "[%#x, %#x]" % value if isinstance(value, tuple) else f"{value:#x}"
            inp.assume(name, shown, "%s with NR_CPUS %d from %s's setup_percpu line (%s); no --config"
                       % (why.split(" (")[0], nr, log.name, TYPICAL_CONFIG_WHY))
