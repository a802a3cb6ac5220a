"""The one exception type emu raises for bad input, with a one-line message.

Every error a user can cause (a malformed e820 file, a value out of range, a layout whose
tables would not fit in memory, a missing compiled extension) is an :class:`EmuError`
(a :class:`ValueError`): its text is one line naming the input, the value and the limit.
An emulated kernel panic is not an error: it is part of the result.
"""
from __future__ import annotations


class EmuError(ValueError):
    """Bad input to emu: the message is one line naming what was wrong."""


class NotEmulated(Exception):
    """The emulated kernel does something emu does not model (the text says what, where and
    why): a result about the kernel and its input, neither bad input nor an emu bug.  The CLI
    prints one ``emu: not emulated:`` line and exits 3; ``emu fuzz`` keeps the map as a
    finding of its own class."""


#: how to build the compiled extension, for every message that needs it
BUILD_HINT = ("build it: `pip install .` (or, in a checkout, `pip install -e .` / "
              "`python setup.py build_ext --inplace`)")
