"""The kernel log as emu emits it: lines with their printk level.

``KernelLog.lines(debug=False)`` is what a default ``dmesg`` of that kernel
shows (``pr_info`` and ``printk(KERN_DEBUG ...)`` lines); ``debug=True`` adds
``pr_debug`` lines as dynamic debug would.  Lines carry no timestamps.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Tuple

from emu.kernel.profiles import LEVEL_NONE, LEVEL_PR_DEBUG


@dataclass
class KernelLog:
    records: List[Tuple[str, str]] = field(default_factory=list)

    def printk(self, level: str, text: str) -> None:
        """Record ``text`` (no trailing newline) at ``level``; LEVEL_NONE lines are dropped."""
        if level != LEVEL_NONE:
            self.records.append((level, text))

    def lines(self, debug: bool = False) -> List[str]:
        return [t for lvl, t in self.records if debug or lvl != LEVEL_PR_DEBUG]


class KernelPanic(Exception):
    """An emulated ``panic()`` or ``BUG()``: a result of the emulation, not an emu error."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text
