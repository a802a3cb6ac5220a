"""emu: a bit-accurate emulator of the Linux x86 kernel's early direct-mapping setup.

    >>> from emu import emulate, BootParams
    >>> from emu.kernel.arch.x86.kernel.e820 import EMBEDDED_DEFAULT
    >>> result = emulate(EMBEDDED_DEFAULT, profile="3.13")
    >>> print("\\n".join(result.log))          # doctest: +SKIP

Modules follow the kernel: :mod:`emu.kernel.arch.x86.kernel.e820` (arch/x86/kernel/e820.c),
:mod:`emu.kernel.mm.memblock` (mm/memblock.c), :mod:`emu.kernel.arch.x86.kernel.setup`
(arch/x86/kernel/setup.c), :mod:`emu.kernel.arch.x86.mm.init` (arch/x86/mm/init.c),
:mod:`emu.kernel.arch.x86.mm.init_64` (arch/x86/mm/init_64.c), :mod:`emu.kernel.arch.x86.pgtable_types`
(pgtable_types.h), :mod:`emu.machine.mmu` (the MMU), :mod:`emu.kernel.profiles` (versions).

Importing emu needs its compiled module (``emu._fast``, built by ``pip install .`` or, in a
checkout, ``pip install -e .`` / ``python setup.py build_ext --inplace``): it holds the loops
and the enums both engines share (:mod:`emu.machine.abi`).  Without it the import fails with
one line that says so -- typically a source checkout on ``sys.path`` shadowing the installed
emu -- rather than a traceback later or a silent switch to the pure-Python engine, which
runs only when asked for (``EMU_PURE=1``, ``--pure``, ``engine="python"``).
"""
import importlib.machinery
import os
import sys
from typing import Any, List, Optional

from emu._version import __version__

__all__ = ["emulate", "BootParams", "CpuFeatures", "Result", "get_profile", "PROFILES", "__version__"]


class NotBuiltError(ImportError):
    """emu's compiled extension is missing where emu was imported from (one line)."""


def _has_extension(directory: str) -> bool:
    return any(os.path.isfile(os.path.join(directory, "_fast" + s)) for s in importlib.machinery.EXTENSION_SUFFIXES)


def _installed_elsewhere(here: str) -> Optional[str]:
    """Another emu on ``sys.path`` that has its compiled extension (the installed one a
    checkout shadows), or None."""
    for entry in sys.path:
        d = os.path.join(os.path.abspath(entry or os.curdir), "emu")
        if os.path.abspath(d) != here and os.path.isfile(os.path.join(d, "__init__.py")) and _has_extension(d):
            return d
    return None


def _not_built_message(here: str) -> str:
    root = os.path.dirname(here)
    parts: List[str] = [f"emu's compiled loops (emu._fast) are not built in {here}"]
    other = _installed_elsewhere(here)
    if other:
        parts.append(f"this checkout shadows the installed emu ({other}): run from another directory, or build "
                     f"the checkout: `pip install -e {root}` (or `python setup.py build_ext --inplace` there)")
    else:
        parts.append(f"build them: `pip install -e {root}` (or `python setup.py build_ext --inplace` in {root})")
    return "; ".join(parts)


def _one_line_excepthook(previous: Any) -> Any:
    def hook(tp: Any, value: BaseException, tb: Any) -> None:
        if isinstance(value, NotBuiltError):
            sys.stderr.write(f"emu: error: {value}\n")
        else:
            previous(tp, value, tb)
    hook.emu_one_line = True  # type: ignore[attr-defined]
    return hook


def _require_build() -> None:
    """Refuse to import without the compiled extension (the pure-Python engine needs it too,
    for the enums both engines share); an uncaught refusal prints one line, not a traceback."""
    here = os.path.dirname(os.path.abspath(__file__))
    if _has_extension(here):
        return
    if not getattr(sys.excepthook, "emu_one_line", False):
        sys.excepthook = _one_line_excepthook(sys.excepthook)
    raise NotBuiltError(_not_built_message(here))


_require_build()


def __getattr__(name: str) -> Any:  # lazy: importing emu stays cheap
    if name in ("emulate", "Result"):
        from emu.boot import emulate as emulator
        return getattr(emulator, name)
    if name == "BootParams":
        from emu.kernel.params import BootParams
        return BootParams
    if name == "CpuFeatures":
        from emu.machine.cpu import CpuFeatures
        return CpuFeatures
    if name in ("get_profile", "PROFILES"):
        from emu.kernel import profiles
        return getattr(profiles, name)
    raise AttributeError(f"module 'emu' has no attribute {name!r}")
