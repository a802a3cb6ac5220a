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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from emu.boot.decide import decide
from emu.boot.from_config import from_config, typical_i386_fixmap
from emu.boot.from_log import (  # noqa: F401  (re-exported)
    from_log,
    i386_params,
    i386_shows_paging_init,
    log_e820,
    stable_version,
    with_backports,
)
from emu.boot.from_sysmap import from_sysmap
from emu.boot.record import DescribeError, Inputs, ReplayError  # noqa: F401  (re-exported)
from emu.inputs.dmesg import BootLog, load_boot_log
from emu.inputs.e820 import EMBEDDED_DEFAULT, E820Map
from emu.inputs.kconfig import KConfig
from emu.inputs.sysmap import SystemMap
from emu.kernel.params import Assumption, BootParams
from emu.kernel.profiles import (
    DEFAULT_PROFILE,
    PROFILES,
    Profile,
    ProfileError,
    get_profile,
    parse_version,
)
from emu.machine.cpu import CpuFeatures


def read_log(path: Union[str, Path]) -> BootLog:
    return load_boot_log(path)


def layout_from_log(log: BootLog) -> Tuple[E820Map, list, BootParams, Optional[str]]:
    """(e820, logged edits, boot parameters, kernel version) of a boot log (the parts of
    :func:`describe` the oracle's ``--inputs log`` uses)."""
    d = describe(log)
    return d.e820, d.log_edits or [], d.params, log.kernel_version


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


def describe(log: Optional[BootLog] = None, e820: Optional[E820Map] = None, e820_source: Optional[str] = None,
             profile: Optional[str] = None, arch: Optional[str] = None,
             overrides: Optional[Dict[str, Any]] = None, config: Optional[KConfig] = None,
             sysmap: Optional[SystemMap] = None, cpu: Optional[CpuFeatures] = None,
             cpu_source: str = "--cpu") -> BootDescription:
    """Describe one boot from what is given (see the module doc): a boot ``log``, an
    ``e820`` map (with ``e820_source`` naming it; it replaces the log's), the kernel's
    ``config`` and ``sysmap`` (System.map or kallsyms), the ``cpu`` as the user knows it.
    ``profile``, ``arch`` ("x86_64", "i386-pae", "i386") and ``overrides`` (BootParams
    fields: the command's flags) win over what the artefacts say; artefacts that contradict
    each other are a :class:`DescribeError`."""
    inp = Inputs()
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
    # -- the kernel version and the paging mode
    prof = _profile(inp, log, profile, config)
    _paging_mode(inp, log, config, arch)
    # -- what each artefact fixes
    if log is not None:
        from_log(inp, log, prof)
        if inp.params.arch == "i386" and i386_shows_paging_init(log, prof):
            until = "paging_init"
    if config is not None:
        from_config(inp, config, prof, log)
    elif log is not None and inp.params.arch == "i386":
        typical_i386_fixmap(inp, prof, log)
    if sysmap is not None:
        from_sysmap(inp, sysmap)
    decide(inp, prof, log, config, cpu, cpu_source)
    # -- the command's choices win
    for name, value in (overrides or {}).items():
        if not hasattr(inp.params, name):
            raise DescribeError(f"unknown boot parameter {name!r}")
        inp.set(name, value, "option")
    if log is None or log.command_line is None:
        inp.assume("command line", "none (no mem=, memmap=, highmem=, nogbpages, debug_pagealloc=, movable_node)",
                   "no boot log" if log is None else "the log has no 'Command line:' / 'Kernel command line:' line")
    if log is None:
        if "initrd" not in inp.sources:
            inp.assume("initrd", "none", "no boot log (RAMDISK line), no --initrd")
    p = inp.params
    if p.la57 and not prof.la57_supported:
        raise DescribeError(f"profile {prof.name} has no 5-level paging (it needs 4.20+)")
    if p.arch == "i386" and p.la57:
        raise DescribeError("5-level paging is x86-64 only (--la57 with an i386 kernel)")
    return BootDescription(table, edits, p, prof, inp.assumptions, inp.sources, until, log)


def _paging_mode(inp: Inputs, log: Optional[BootLog], config: Optional[KConfig], arch: Optional[str]) -> None:
    """x86-64, i386 PAE or i386 non-PAE: ``--arch``, else the log's and the config's (which
    must agree), else x86-64 (said)."""
    if arch is not None:
        inp.set("arch", "x86_64" if arch == "x86_64" else "i386", "--arch")
        if arch != "x86_64":
            inp.set("pae", arch == "i386-pae", "--arch")
        return
    log_name = log.name if log is not None else "the log"
    cfg_name = config.name if config is not None else "the config"
    log_arch_text = log.arch if log is not None else None
    log_arch = {"x86_64": "x86_64", "i686": "i386"}.get(log.arch) if log is not None and log.arch else None
    cfg_arch = config.arch if config is not None else None
    if log_arch and cfg_arch and log_arch != cfg_arch:
        raise DescribeError(f"{log_name} is a {log_arch_text} boot, but {cfg_name} builds an {cfg_arch} kernel")
    a = log_arch or cfg_arch
    if a is None:
        if log is not None or config is not None:
            inp.assume("arch", "x86_64", "neither the log nor the config names the architecture")
        a = "x86_64"
        inp.params.arch = a
    else:
        inp.set("arch", a, f"{log_name}: {log_arch_text} log" if log_arch else f"{cfg_name}: CONFIG_X86_64/X86_32")
    if a != "i386":
        return
    log_pae = log.pae if log is not None else None
    cfg_pae = config.pae if config is not None else None
    if log_pae is not None and cfg_pae is not None and log_pae != cfg_pae:
        raise DescribeError(f"{log_name} shows a {'PAE' if log_pae else 'non-PAE'} kernel (max_arch_pfn), but "
                            f"{cfg_name} has CONFIG_X86_PAE {'set' if cfg_pae else 'not set'}")
    if log_pae is not None:
        inp.set("pae", bool(log_pae), f"{log_name}: max_arch_pfn / NX line")
    elif cfg_pae is not None:
        inp.set("pae", bool(cfg_pae), f"{cfg_name}: CONFIG_X86_PAE")
    else:
        inp.params.pae = True
        inp.assume("pae", "PAE", "neither the log (max_arch_pfn) nor a config says")


def _profile(inp: Inputs, log: Optional[BootLog], name: Optional[str], config: Optional[KConfig]) -> Profile:
    """The kernel's profile: ``--profile``, else the log's version line (its upstream stable
    base), else the config's header, else the newest (said).  A log and a config of two
    different releases are a contradiction."""
    kv = log.version if log is not None else None
    cfg_v = config.version if config is not None else None
    log_name = log.name if log is not None else "the log"
    cfg_name = config.name if config is not None else "the config"
    if kv is not None and cfg_v:
        cv = parse_version(cfg_v)
        if tuple(cv[:2]) != tuple(kv.base[:2]):
            raise DescribeError(f"{log_name} is kernel {kv.version}, but {cfg_name} configures {cfg_v}")
    if name:
        prof = get_profile(name)
        inp.sources["profile"] = "--profile " + name
        return prof
    if log is not None and (kv is not None or log.kernel_version):
        text: str = (kv.stable_base_text or kv.version) if kv is not None else (
            stable_version(log) or log.kernel_version or "")
        try:
            prof = with_backports(get_profile(text), log)
        except ProfileError as e:
            raise ReplayError(f"{log_name}: {e}") from None
        inp.sources["profile"] = f"{log_name}: Linux version {log.kernel_version}"
        if kv is not None and not kv.sublevel_known:
            if cfg_v and parse_version(cfg_v)[2]:
                text = cfg_v
                prof = with_backports(get_profile(text), log)
                inp.sources["profile"] += f" and {cfg_name}'s header ({cfg_v})"
            else:
                inp.assume("kernel version", text, f"{log_name}: '{kv.release}' names no stable sublevel "
                                                   f"({kv.why}); backports after {kv.major}.{kv.minor}.0 are not "
                                                   "applied: give --profile X.Y.Z or the config")
        _beyond_known(inp, text, prof)
        return prof
    if cfg_v:
        prof = get_profile(cfg_v)
        inp.sources["profile"] = f"{cfg_name}: Linux/x86 {cfg_v} Kernel Configuration"
        _beyond_known(inp, cfg_v, prof)
        return prof
    prof = PROFILES[DEFAULT_PROFILE]
    inp.assume("profile", prof.name, "the newest profile; no --profile and no version line")
    return prof


def _beyond_known(inp: Inputs, text: str, prof: Profile) -> None:
    """A version newer than every release emu knows runs as the newest: say so."""
    newest = max((p.version for p in PROFILES.values() if p.by_version))
    v = parse_version(text)
    if tuple(v[:2]) > tuple(newest[:2]):
        inp.assume("profile", prof.name, f"kernel {text} is newer than every change emu knows "
                                         f"(newest: {'.'.join(map(str, newest))})")


