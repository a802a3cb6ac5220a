"""The CPU an emulated kernel runs on: the features paging setup reads (CPUID)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict


@dataclass(frozen=True)
class CpuFeatures:
    """CPUID features that change the direct mapping (what the hardware offers; what the
    kernel makes of them, e.g. ``nogbpages``, is a boot parameter, not a CPU feature).

    * ``pse``: 2 MiB / 4 MiB pages (CPUID.1:EDX.PSE);
    * ``pge``: global pages (CPUID.1:EDX.PGE);
    * ``gbpages``: 1 GiB pages (CPUID.80000001:EDX.Page1GB);
    * ``nx``: execute-disable (CPUID.80000001:EDX.NX);
    * ``la57``: 5-level paging (CPUID.7:ECX.LA57);
    * ``vendor``: ``intel``, ``amd``, ``hygon``, ``centaur``, ``zhaoxin`` (CPUID.0 vendor
      string; decides e.g. whether the CPU is affected by Meltdown, hence PTI by default).
    """

    pse: bool = True
    pge: bool = True
    gbpages: bool = True
    nx: bool = True
    la57: bool = False
    vendor: str = "intel"

    def to_json(self) -> Dict[str, object]:
        return {"pse": self.pse, "pge": self.pge, "gbpages": self.gbpages, "nx": self.nx, "la57": self.la57,
                "vendor": self.vendor}
