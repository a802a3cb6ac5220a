"""arch/x86/mm/pti.c: ``pti_check_boottime_disable`` -- is page-table isolation on?

What decides it (4.15 .. 6.18): the build (CONFIG_PAGE_TABLE_ISOLATION, renamed
CONFIG_MITIGATION_PAGE_TABLE_ISOLATION in 6.9), a Xen PV guest (always off), the command
line (``pti=on|off|auto``, ``nopti``, ``mitigations=off``) and, in auto mode, whether the
CPU has ``X86_BUG_CPU_MELTDOWN``.  The precedence of ``pti=on`` over ``mitigations=off`` is
version data (:attr:`Profile.pti_cmdline_rule`):

* up to 6.6: ``pti=off`` -> off; ``pti=on`` -> on; ``pti=auto`` -> by the CPU (even with
  ``mitigations=off``); else ``nopti`` or ``mitigations=off`` -> off; else by the CPU;
* 6.7 .. 6.16 (0bd7feb2df7e): ``pti=``/``nopti`` are early parameters (the last wins), and
  ``mitigations=off`` turns PTI off whatever they say;
* 6.17+ (02c7d5b8e0d1): only auto mode follows ``mitigations=off``; ``pti=on`` wins again.

Every input may be unknown (``None``): :func:`pti_check_boottime_disable` then answers
``None`` when the outcome depends on it, and names what is missing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from emu.kernel.profiles import Profile

#: CPU vendors whose CPUs the kernel marks X86_BUG_CPU_MELTDOWN (cpu_vuln_whitelist in
#: arch/x86/kernel/cpu/common.c lists AMD and Hygon as NO_MELTDOWN; a few Intel Atoms and
#: CPUs with ARCH_CAPABILITIES.RDCL_NO are too, which a vendor alone cannot tell)
MELTDOWN_VENDORS = ("intel", "centaur", "zhaoxin", "via")


@dataclass(frozen=True)
class PtiInputs:
    #: PTI built in (None: no config)
    built: Optional[bool]
    #: the CPU has X86_BUG_CPU_MELTDOWN (None: unknown)
    affected: Optional[bool]
    #: ``pti=`` value as the command line leaves it ("on", "off", "auto"; ``nopti`` is "off";
    #: None: neither given).  A command line that was seen gives None here, not unknown
    pti_opt: Optional[str]
    #: ``mitigations=off`` on the command line
    mitigations_off: bool
    #: a Xen PV guest
    xen_pv: bool
    #: the command line is known (a boot log's); False: no log, nothing is known of it
    cmdline_known: bool = True


def pti_check_boottime_disable(profile: Profile, i: PtiInputs) -> Tuple[Optional[bool], str]:
    """(PTI active, why) under ``profile``'s rules; ``(None, what is missing)`` when the
    outcome depends on an unknown input."""
    if i.built is False:
        return False, "the kernel is built without page-table isolation"
    if i.xen_pv:
        return False, "disabled on XEN PV"
    if not i.cmdline_known:
        return None, "the command line"
    opt = (i.pti_opt or "").lower() or None
    mit = i.mitigations_off
    rule = profile.pti_cmdline_rule
    if rule == "mitigations_first" and mit:
        return False, "mitigations=off on the command line (it overrides pti= in 6.7-6.16)"
    if opt == "off":
        return False, "pti=off/nopti on the command line"
    if opt == "on":
        if i.built is None:
            return None, "the build (CONFIG_PAGE_TABLE_ISOLATION)"
        return True, "pti=on on the command line"
    if mit and (opt is None or rule == "attack_vectors"):
        return False, "mitigations=off on the command line"
    # auto: by the CPU
    if i.affected is False:
        return False, "the CPU is not affected by Meltdown (auto mode)"
    missing = [w for w, v in (("the build (CONFIG_PAGE_TABLE_ISOLATION)", i.built),
                              ("whether the CPU is affected by Meltdown (its vendor)", i.affected)) if v is None]
    if missing:
        return None, " and ".join(missing)
    return True, "auto mode on a CPU affected by Meltdown"


def meltdown_affected(vendor: Optional[str]) -> Optional[bool]:
    """X86_BUG_CPU_MELTDOWN from the vendor alone (None: unknown vendor)."""
    if vendor is None:
        return None
    v = vendor.lower()
    if v in ("amd", "hygon"):
        return False
    if v in MELTDOWN_VENDORS:
        return True
    return None


__all__ = ["PtiInputs", "pti_check_boottime_disable", "meltdown_affected", "MELTDOWN_VENDORS"]
