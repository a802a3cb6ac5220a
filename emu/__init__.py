"""emu: a bit-accurate emulator of the Linux x86 kernel's early direct-mapping setup.

    >>> from emu import emulate, BootParams
    >>> from emu.e820 import EMBEDDED_DEFAULT
    >>> result = emulate(EMBEDDED_DEFAULT, profile="3.13")
    >>> print("\\n".join(result.log))          # doctest: +SKIP

Modules follow the kernel: :mod:`emu.e820` (arch/x86/kernel/e820.c),
:mod:`emu.memblock` (mm/memblock.c), :mod:`emu.setup_arch`
(arch/x86/kernel/setup.c), :mod:`emu.mm.init` (arch/x86/mm/init.c),
:mod:`emu.mm.init_64` (arch/x86/mm/init_64.c), :mod:`emu.pgtable`
(pgtable_types.h), :mod:`emu.walk` (the MMU), :mod:`emu.profiles` (versions).
"""
from typing import Any

__version__ = "0.1.0"

__all__ = ["emulate", "BootParams", "CpuFeatures", "Result", "get_profile", "PROFILES", "__version__"]


def __getattr__(name: str) -> Any:  # lazy: importing emu stays cheap
    if name in ("emulate", "Result"):
        from . import emulator
        return getattr(emulator, name)
    if name == "BootParams":
        from .kernel import BootParams
        return BootParams
    if name == "CpuFeatures":
        from .pgtable import CpuFeatures
        return CpuFeatures
    if name in ("get_profile", "PROFILES"):
        from . import profiles
        return getattr(profiles, name)
    raise AttributeError(f"module 'emu' has no attribute {name!r}")
