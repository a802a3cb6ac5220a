"""The boot description being built: each input's value with where it came from, the
inputs nobody gave, and the errors of describing a boot (shared by the modules that read
one artefact each: :mod:`emu.boot.from_log`, :mod:`emu.boot.from_config`,
:mod:`emu.boot.from_sysmap`, :mod:`emu.boot.decide`)."""
from __future__ import annotations

from typing import Any, Dict, List

from emu.errors import EmuError
from emu.kernel.params import Assumption, BootParams


class DescribeError(EmuError):
    """Inputs that cannot describe one boot (contradictions, an unusable log)."""


class ReplayError(EmuError):
    """A log emu cannot replay (one line naming the log and the reason)."""


class Inputs:
    """The description being built: values with their sources."""

    def __init__(self) -> None:
        self.params = BootParams()
        self.sources: Dict[str, str] = {}
        self.assumptions: List[Assumption] = []
        #: the config's LOAD_PHYSICAL_ADDR was taken although KASLR may have moved the image
        self.kaslr_unknown = False

    def set(self, name: str, value: Any, source: str) -> None:
        setattr(self.params, name, value)
        self.sources[name] = source
        self.assumptions[:] = [a for a in self.assumptions if a.field != name]

    def assume(self, name: str, value: str, why: str) -> None:
        self.assumptions.append(Assumption(name, value, why))
