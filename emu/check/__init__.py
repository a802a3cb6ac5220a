"""The independent checker: is what the emulated kernel built what the kernel promises?

It walks the tables from CR3 as the MMU does and checks every rule with its address
(:mod:`emu.check.x86_64` for 4- and 5-level paging, :mod:`emu.check.i386` for PAE and
32-bit paging), knowing nothing of how the tables were built: it imports only the machine
(:mod:`emu.machine`) and the readers of :mod:`emu.inputs` (for the kernel's printed
lines), never the emulated kernel.  What it reads of a finished boot is listed in
:mod:`emu.check.view`.
"""
from __future__ import annotations

from typing import Any

from emu.check.i386 import verify_i386
from emu.check.report import MAX_PER_RULE, Report, Violation
from emu.check.x86_64 import verify_x86_64


def verify(boot: Any, accounting: bool = True, engine: Any = None) -> Report:
    """Check a finished emulation (no panic) against every rule of its paging mode.
    ``boot`` is what :mod:`emu.check.view` describes (the emulated kernel's state)."""
    if boot.mode.is_64bit:
        return verify_x86_64(boot, accounting, engine)
    return verify_i386(boot, engine)


#: alias: the full checker
check = verify

__all__ = ["MAX_PER_RULE", "Report", "Violation", "check", "verify", "verify_i386", "verify_x86_64"]
