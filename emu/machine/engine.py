"""Choice of the loop implementation: the Cython extension or the pure-Python reference.

``EMU_PURE=1`` in the environment, or ``use("python")``, selects the reference
path; otherwise the compiled ``emu._fast`` is used when it is importable.
"""
from __future__ import annotations

import os
from types import ModuleType

from emu.machine import reference as _reference

try:  # the compiled extension
    from emu import _fast as _compiled  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - only without a build
    _compiled = None

_current: ModuleType = _reference if (os.environ.get("EMU_PURE") == "1" or _compiled is None) else _compiled


def use(name: str) -> None:
    """Select ``"cython"`` or ``"python"`` for the table-writing and walk loops."""
    global _current
    if name == "python":
        _current = _reference
    elif name == "cython":
        if _compiled is None:
            raise RuntimeError("emu._fast is not built; install the package with pip")
        _current = _compiled
    else:
        raise ValueError(f"unknown backend {name!r} (cython or python)")


def current() -> ModuleType:
    return _current


def name() -> str:
    return "python" if _current is _reference else "cython"


def compiled_available() -> bool:
    return _compiled is not None
