"""Replaying real boot logs: emulate what the log's kernel had and diff the lines.

From a boot log emu takes everything the kernel knew when it called
``init_mem_mapping``: the e820 map and its logged edits, the kernel version
(-> profile), the BRK address (first ``BRK [`` line), the initrd
(``RAMDISK:``), GB-page use, NX, and command-line options.  The emulated
default-dmesg lines are compared with the log's page-table lines.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple, Union

from .dmesg import BootLog, load_boot_log, normalize_pagetable_line
from .e820 import E820Table
from .kernel import BootParams
from .pgtable import CpuFeatures
from .setup_arch import XEN_DEFAULT_EXTRA
from .profiles import LEVEL_DEBUG, LEVEL_PR_DEBUG, ProfileError, get_profile


class ReplayError(ValueError):
    """A log emu cannot replay (one line naming the log and the reason)."""


def log_shows_kern_debug(log: BootLog) -> bool:
    """Did the capture keep ``KERN_DEBUG`` lines?  Every kernel emu emulates prints
    the ``e820: update``/``remove`` edits of ``trim_bios_range`` at that level,
    and 3.9-4.3 print the page and BRK lines at it."""
    if log.e820_edits:
        return True
    return any(s.startswith((" [mem", "BRK [", " 0")) for s in log.pagetable_lines)


def read_log(path: Union[str, Path]) -> BootLog:
    return load_boot_log(path)


def layout_from_log(log: BootLog) -> Tuple[E820Table, list, BootParams, Optional[str]]:
    """(e820, logged edits, boot parameters, kernel version) of a boot log."""
    if log.arch not in (None, "x86_64"):
        raise ReplayError(f"{log.name}: {log.arch} log: 32-bit kernels are not emulated yet")
    if log.e820_user is not None:
        base = log.e820_user.copy()
        edits = [e for e in log.e820_edits if e.after_user_map and e.target == "e820"]
    else:
        base = log.e820.copy()
        edits = [e for e in log.e820_edits if e.target == "e820"]
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
    return base, edits, params, log.kernel_version


@dataclass
class ReplayResult:
    name: str
    passed: bool
    profile: Optional[str] = None
    expected: List[str] = field(default_factory=list)
    got: List[str] = field(default_factory=list)
    first_diff: Optional[int] = None
    error: Optional[str] = None
    panic: Optional[str] = None
    verify_ok: Optional[bool] = None

    def line(self) -> str:
        if self.passed:
            return f"PASS {self.name} (profile {self.profile}, {len(self.expected)} lines)"
        if self.error:
            return f"FAIL {self.name}: {self.error}"
        i = self.first_diff or 0
        exp = self.expected[i] if i < len(self.expected) else "<end of log>"
        got = self.got[i] if i < len(self.got) else "<end of emu output>"
        return f"FAIL {self.name} (profile {self.profile}) line {i + 1}: expected {exp!r}, emu {got!r}"

    def diff_text(self) -> str:
        return "\n".join(difflib.unified_diff(self.expected, self.got, "log", "emu", lineterm=""))

    def to_json(self) -> dict:
        return {"name": self.name, "passed": self.passed, "profile": self.profile, "error": self.error,
                "first_diff": self.first_diff, "expected": self.expected, "got": self.got,
                "panic": self.panic, "verify_ok": self.verify_ok}


def replay(log: BootLog, profile: Optional[str] = None, debug_pagealloc: bool = False,
           gbpages: Optional[bool] = None) -> ReplayResult:
    """Emulate ``log``'s boot and compare the page-table lines."""
    from .emulator import emulate
    expected = [normalize_pagetable_line(s) for s in log.pagetable_lines]
    try:
        e820, edits, params, version = layout_from_log(log)
        if not version and not profile:
            raise ReplayError(f"{log.name}: no 'Linux version' line; pass --profile")
        prof = get_profile(profile or version or "")
    except (ReplayError, ProfileError) as e:
        return ReplayResult(log.name, False, expected=expected, error=str(e))
    if debug_pagealloc:
        params.debug_pagealloc = True
    if gbpages is not None:
        params.gbpages = gbpages
        params.cpu = CpuFeatures(params.cpu.pse, params.cpu.pge, gbpages, params.cpu.nx)
    result = emulate(e820, prof, params, log_edits=edits)
    got = result.log
    if not log_shows_kern_debug(log):
        # the capture dropped KERN_DEBUG lines (console loglevel, syslog filter):
        # compare only the lines it could show
        got = [t for lvl, t in result.kernel.log.records if lvl not in (LEVEL_DEBUG, LEVEL_PR_DEBUG)]
    first = None
    for i in range(max(len(expected), len(got))):
        if i >= len(expected) or i >= len(got) or expected[i] != got[i]:
            first = i
            break
    return ReplayResult(log.name, first is None, prof.name, expected, got, first, None, result.panic,
                        result.verify.ok if result.verify is not None else None)


def replay_file(path: Union[str, Path], **kw) -> ReplayResult:
    name = Path(path).name
    try:
        log = read_log(path)
    except (ValueError, OSError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        return ReplayResult(name, False, error=msg)
    log.name = name
    return replay(log, **kw)
