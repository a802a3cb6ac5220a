"""The CPU and the kernel's own choices, decided from every artefact at once.

Four inputs change the tables and are decided by the kernel from several sources: 1 GiB
pages (``direct_gbpages`` and the CPU's), page-table isolation, ``debug_pagealloc`` and
5-level paging.  Each is decided the kernel's way (the rule functions live with the
emulated kernel: :func:`~emu.kernel.arch.x86.mm.init_64.direct_gbpages`,
:func:`~emu.kernel.arch.x86.mm.pti.pti_check_boottime_disable`,
:func:`~emu.kernel.mm.page_alloc.debug_pagealloc_enabled`,
:func:`~emu.kernel.arch.x86.kernel.head64.check_la57_support`) from the .config, the boot
log's command line and the CPU (``--cpu``, or the facts a log shows), and a log line that
shows the outcome wins.  A rule and a log line that disagree are a contradiction (an
error); an outcome nothing decides is set to the usual default and said, naming the
inputs that would have told.

The CPU: ``--cpu`` describes the hardware; a log's facts fill what it leaves out, and a
fact the description contradicts is an error.  What the CPU offers is apart from what the
kernel chose (``nogbpages`` is the kernel's; ``--cpu ...,-gbpages`` the CPU's).
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Optional

from emu.boot.from_log import reaches
from emu.boot.record import DescribeError, Inputs
from emu.kernel.arch.x86.kernel.head64 import check_la57_support
from emu.kernel.arch.x86.mm.init_64 import direct_gbpages
from emu.kernel.arch.x86.mm.pti import (
    PtiInputs,
    meltdown_affected,
    pti_check_boottime_disable,
)
from emu.kernel.mm.page_alloc import debug_pagealloc_enabled
from emu.kernel.profiles import LEVEL_NONE, Profile
from emu.machine.cpu import CpuFeatures

if TYPE_CHECKING:
    from emu.inputs.dmesg import BootLog
    from emu.inputs.kconfig import KConfig


def decide(inp: Inputs, prof: Profile, log: Optional["BootLog"], config: Optional["KConfig"],
           cpu: Optional[CpuFeatures], cpu_source: str = "--cpu") -> None:
    """Set ``cpu``, ``gbpages``, ``pti``, ``debug_pagealloc``, ``la57``, ``randomize_memory``
    and ``x86_5level_config`` in ``inp`` (see the module doc)."""
    p = inp.params
    is64 = p.arch == "x86_64"
    n = log.name if log is not None else ""
    opts = log.options if log is not None else None
    # a log cut before its command line tells nothing of nogbpages, nopti, no5lvl ...
    cmdline_known = log is not None and log.command_line is not None
    # -- the CPU ------------------------------------------------------------------------
    facts = log.cpu if log is not None else None
    if cpu is not None and facts is not None:
        bad = facts.contradictions(cpu)
        if bad:
            raise DescribeError(f"{n}: {bad[0]} ({cpu_source})")
    if facts is not None:
        feats, unknown = facts.resolve(cpu)
    else:
        feats = cpu if cpu is not None else CpuFeatures()
        unknown = [] if cpu is not None else ["pse", "pge", "gbpages", "nx", "la57", "vendor"]
    cpu_src = [cpu_source] if cpu is not None else []
    if facts is not None and any(getattr(facts, f) is not None for f in ("nx", "gbpages", "la57", "pse", "vendor")):
        cpu_src.append(f"{n}: {', '.join(sorted(facts.evidence))} lines" if facts.evidence else n)
    if log is not None and any("Atom PSE erratum" in ln.text for ln in log.lines):
        feats = dataclasses.replace(feats, pse=False)   # the kernel cleared PSE (init_32/cpu/intel.c)
        unknown = [u for u in unknown if u != "pse"]
    if log is not None and log.nx is False and feats.nx and log.cpu is not None and log.cpu.nx:
        # 'NX (Execute Disable) protection: disabled by kernel command line option' (noexec=off where
        # the kernel obeys it) or '... cannot be enabled': the CPU has NX, the kernel does not
        # use it (x86_configure_nx leaves _PAGE_NX out of __supported_pte_mask)
        feats = dataclasses.replace(feats, nx=False)
        unknown = [u for u in unknown if u != "nx"]
        cpu_src.append(f"{n}: NX not used by the kernel ({log.cpu.evidence.get('nx', 'NX line')})")
    if not is64:
        feats = dataclasses.replace(feats, gbpages=False, la57=False)
        unknown = [u for u in unknown if u not in ("gbpages", "la57")]
        if not p.pae:
            unknown = [u for u in unknown if u != "nx"]   # no NX bit without PAE
        elif log is not None and log.nx is not None and "nx" in unknown:
            feats = dataclasses.replace(feats, nx=bool(log.nx))
            unknown.remove("nx")
    if log is not None and log.nx is not None and "nx" in unknown:
        feats = dataclasses.replace(feats, nx=bool(log.nx))
        unknown.remove("nx")
    _debug_pagealloc(inp, prof, log, config, cmdline_known)
    # -- 1 GiB pages (x86-64) -----------------------------------------------------------
    if is64:
        _gbpages(inp, prof, log, config, feats, unknown, cmdline_known)
        feats = inp.params.cpu or feats
    else:
        inp.set("gbpages", False, "32-bit kernels have no 1 GiB pages")
    if is64:
        _la57(inp, prof, log, config, feats, unknown, cmdline_known)
        feats = inp.params.cpu or feats
        if config is not None:
            for name, opt in (("randomize_memory", "RANDOMIZE_MEMORY"), ("x86_5level_config", "X86_5LEVEL")):
                inp.set(name, bool(config.bool(opt, default=False)), f"{config.name}: CONFIG_{opt}")
    if prof.default_kernel_pte_mask:
        _pti(inp, prof, log, config, feats, unknown, cmdline_known, opts)
    # -- what is left of the CPU, said where it changes the tables
    for f in ("pse", "pge", "nx"):
        if f in unknown:
            inp.assume("cpu." + f, "yes" if getattr(feats, f) else "no",
                       "no --cpu%s" % (" and the log does not show it" if log is not None else ""))
    if inp.params.cpu is None:
        inp.set("cpu", feats, " and ".join(cpu_src) or "defaults (said)")


def _gbpages(inp, prof, log, config, feats, unknown, cmdline_known) -> None:
    n = log.name if log is not None else ""
    opt = log.options.gbpages if log is not None else None
    built = None
    if config is not None:
        built = config.bool("X86_DIRECT_GBPAGES", default=None)
        if built is None:
            built = config.bool("DIRECT_GBPAGES", default=False)   # the option's name before 4.2
    choice, why = direct_gbpages(built, opt, cmdline_known)
    cpu_gb = None if "gbpages" in unknown else feats.gbpages
    shown = log is not None and prof.log_gbpages != LEVEL_NONE and reaches(log, "init_mem_mapping")
    if shown and log.gb_pages:
        # 'Using GB pages for direct mapping': direct_gbpages and the CPU's 1 GiB pages
        if choice is False:
            raise DescribeError(f"{n}: the log says 'Using GB pages for direct mapping', but {why}")
        if cpu_gb is False:
            raise DescribeError(f"{n}: the log says 'Using GB pages for direct mapping', but the CPU "
                                "description has no 1 GiB pages")
        inp.set("gbpages", True, f"{n}: 'Using GB pages for direct mapping'")
        inp.set("cpu", dataclasses.replace(feats, gbpages=True), f"{n}: 'Using GB pages for direct mapping'")
        return
    if shown:
        # no such line: the kernel used no 1 GiB pages (nogbpages, the build, the CPU, or
        # debug_pagealloc / no PSE): the outcome is known whichever it was
        large_ok = feats.pse and not inp.params.debug_pagealloc   # else probe_page_size_mask clears it
        if choice is True and cpu_gb is True and large_ok:
            raise DescribeError(f"{n}: no 'Using GB pages for direct mapping' line, but {why} and the CPU "
                                "description has 1 GiB pages")
        if choice is True and cpu_gb is None and large_ok:
            inp.set("cpu", dataclasses.replace(feats, gbpages=False),
                    f"{n}: no 'Using GB pages' line although {why}")
        elif choice is None:
            choice, why = False, f"{n}: no 'Using GB pages for direct mapping' line"
        inp.set("gbpages", choice, why if choice is not True else f"{why}; {n}: no 'Using GB pages' line")
        return
    if choice is None:
        choice = True
        inp.assume("gbpages", "direct_gbpages on", "CONFIG_X86_DIRECT_GBPAGES's default; no --config%s"
                   % (", no boot log" if log is None else ""))
        inp.params.gbpages = True
    else:
        inp.set("gbpages", choice, why)
    if choice and cpu_gb is None:
        inp.assume("cpu.gbpages", "yes", "no --cpu" + (" and no 'Using GB pages' line" if log is not None else ""))


def _debug_pagealloc(inp, prof, log, config, cmdline_known) -> None:
    n = log.name if log is not None else ""
    option = log.options.debug_pagealloc if log is not None else None
    built = enable_default = None
    if config is not None:
        built = config.bool("DEBUG_PAGEALLOC", default=False)
        enable_default = config.bool("DEBUG_PAGEALLOC_ENABLE_DEFAULT", default=False)
    on, why = debug_pagealloc_enabled(prof, built, enable_default, option, cmdline_known)
    if on is not None:
        inp.set("debug_pagealloc", on, (f"{config.name}: " if config is not None else f"{n}: ") + why)
        return
    if option:
        inp.params.debug_pagealloc = True
        inp.assume("debug_pagealloc", "on", f"{n}: debug_pagealloc=on, obeyed only with CONFIG_DEBUG_PAGEALLOC=y: "
                                            "no --config")
    else:
        inp.params.debug_pagealloc = False
        inp.assume("debug_pagealloc", "off", "no --config (CONFIG_DEBUG_PAGEALLOC)")


def _la57(inp, prof, log, config, feats, unknown, cmdline_known) -> None:
    if not prof.la57_supported:
        inp.params.la57 = False
        return
    n = log.name if log is not None else ""
    built = config.bool("X86_5LEVEL", default=False) if config is not None else None
    cpu_la57 = None if "la57" in unknown else feats.la57
    no5lvl = bool(log.options.no5lvl) if log is not None else False
    on, why = check_la57_support(prof, built, cpu_la57, no5lvl, cmdline_known)
    if log is not None and log.la57 is not None:
        if on is not None and on != log.la57:
            raise DescribeError(f"{n}: the log shows {'5' if log.la57 else '4'}-level paging (max_arch_pfn), "
                                f"but {why}")
        inp.set("la57", bool(log.la57), f"{n}: max_arch_pfn line ({'5' if log.la57 else '4'}-level paging)")
        if log.la57:
            inp.params.cpu = dataclasses.replace(inp.params.cpu or feats, la57=True)
        return
    if on is None:
        inp.params.la57 = False
        inp.assume("la57", "4-level paging", f"nothing tells {why}")
        return
    inp.set("la57", on, why)


def _pti(inp, prof, log, config, feats, unknown, cmdline_known, opts) -> None:
    n = log.name if log is not None else ""
    vendor_known = "vendor" not in unknown
    affected = None
    if log is not None and log.cpu is not None and log.cpu.meltdown is not None:
        affected = log.cpu.meltdown
    elif vendor_known:
        affected = meltdown_affected(feats.vendor)
    xen_pv = log is not None and any("Booting paravirtualized kernel on Xen" in ln.text for ln in log.lines)
    pti_in = PtiInputs(built=config.pti if config is not None else None, affected=affected,
                       pti_opt=opts.pti if opts is not None else None,
                       mitigations_off=bool(opts is not None and (opts.mitigations or "").split(",")[0] == "off"),
                       xen_pv=xen_pv, cmdline_known=cmdline_known)
    on, why = pti_check_boottime_disable(prof, pti_in)
    if log is not None:
        seen = log.pti
        if seen is None and reaches(log, "mm_init"):
            seen = False   # pti_init prints 'enabled' when it is on
        if seen is not None:
            if on is not None and on != seen:
                raise DescribeError(f"{n}: the log shows page-table isolation {'on' if seen else 'off'}"
                                    f" ({log.pti_line or 'no isolation line'}), but {why}")
            src = f"{n}: '{log.pti_line}'" if log.pti_line else f"{n}: no 'Kernel/User page tables isolation' line"
            inp.set("pti", bool(seen), src)
            return
    if on is None:
        inp.params.pti = False
        inp.assume("pti", "off", f"nothing tells {why}")
        return
    inp.set("pti", on, why)


__all__ = ["decide"]
