"""Kernel symbol tables for the oracle: the System.map reader of :mod:`emu.inputs.sysmap`
(``Symbols`` is :class:`emu.inputs.sysmap.SystemMap`; ``Symbols.load(path)`` reads a
System.map / kallsyms file with at least 1000 symbols; ``SymbolError`` is a KeyError)."""
from __future__ import annotations

from emu.inputs.sysmap import START_KERNEL_MAP, SymbolError, Symbols, SystemMap, load_system_map

__all__ = ["START_KERNEL_MAP", "SymbolError", "Symbols", "SystemMap", "load_system_map"]
