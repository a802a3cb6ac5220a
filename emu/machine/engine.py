"""The two implementations of the machine's loops, chosen per emulation.

``compiled`` is ``emu._fast`` (Cython: the table-writing loops of
``kernel_physical_mapping_init`` and the MMU walks); ``python`` is its pure-Python twin
(:mod:`emu.machine.reference`, :mod:`emu.machine.reference32`): the same functions under
the same names, slower by two to three orders of magnitude, kept as the readable
specification and the byte-for-byte baseline the tests compare the compiled loops
against.  Nothing switches silently: the pure-Python engine runs only when asked for
(``engine="python"``, ``--pure``, ``EMU_PURE=1``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Optional, Union

from emu.errors import BUILD_HINT, EmuError
from emu.machine import reference, reference32


class EngineError(EmuError):
    """The requested loop implementation is not available."""


def _compiled() -> Optional[ModuleType]:
    try:
        from emu import _fast
    except ImportError:
        return None
    return _fast


@dataclass(frozen=True)
class Engine:
    """One implementation of the loops (every field a function of the same signature in both)."""

    name: str                        # "cython" or "python"
    kernel_physical_mapping_init: Callable[..., Any]     # x86-64 (init_64.c)
    map_pieces: Callable[..., Any]   # x86-64: the pieces of one init_memory_mapping call, in order
    kernel_physical_mapping_init_32: Callable[..., Any]  # i386 (init_32.c, both passes)
    walk64: Callable[..., Any]       # the MMU walk, 4-/5-level
    walk32: Callable[..., Any]       # the MMU walk, PAE / 32-bit paging
    enumerate64: Callable[..., Any]  # every present entry below a root, as leaf runs and table pages


PYTHON = Engine("python", reference.kernel_physical_mapping_init, reference.map_pieces,
                reference32.kernel_physical_mapping_init_32,
                reference.walk64, reference32.walk32, reference.enumerate64)


_COMPILED: Optional[Engine] = None


def compiled() -> Engine:
    """The compiled engine; :class:`EngineError` (one line, how to build) when not built."""
    global _COMPILED
    if _COMPILED is None:
        fast = _compiled()
        if fast is None:
            raise EngineError(f"emu's compiled loops (emu._fast) are not built; {BUILD_HINT}")
        _COMPILED = Engine("cython", fast.kernel_physical_mapping_init, fast.map_pieces,
                           fast.kernel_physical_mapping_init_32,
                           fast.walk64, fast.walk32, fast.enumerate64)
    return _COMPILED


def compiled_available() -> bool:
    return _compiled() is not None


def describe() -> str:
    """Which engine an emulation gets by default, in words (for headers and --version):
    ``compiled (emu._fast, <path>)``, or ``pure Python (EMU_PURE=1)``, or ``not built``."""
    if os.environ.get("EMU_PURE") == "1":
        return "pure Python (EMU_PURE=1)"
    fast = _compiled()
    if fast is None:
        return f"not built ({BUILD_HINT})"
    return f"compiled (emu._fast, {getattr(fast, '__file__', '?')})"


def select(engine: Union[None, str, Engine] = None) -> Engine:
    """The engine for one emulation: an :class:`Engine`, ``"python"``/``"pure"``,
    ``"cython"``/``"compiled"``, or None: ``python`` when ``EMU_PURE=1``, else compiled."""
    if isinstance(engine, Engine):
        return engine
    if engine is None:
        engine = "python" if os.environ.get("EMU_PURE") == "1" else "cython"
    if engine in ("python", "pure"):
        return PYTHON
    if engine in ("cython", "compiled"):
        return compiled()
    raise EngineError(f"unknown engine {engine!r} (cython or python)")
