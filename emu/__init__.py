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
"""
from typing import Any

from emu._version import __version__

__all__ = ["emulate", "BootParams", "CpuFeatures", "Result", "get_profile", "PROFILES", "__version__"]


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
