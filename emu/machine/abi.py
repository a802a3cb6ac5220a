"""What the compiled loops and Python agree on, defined once (in ``emu/_fast.pyx``).

* :class:`TableSource` -- where a page-table page came from, as the loops record it in
  the emulated kernel's table-page log: the BRK buffer, memblock (``alloc_low_pages``'
  fallback), the buffer ``find_early_table_space`` set aside (<= 3.8), or the kernel
  image's static tables (``init_top_pgt``/``swapper_pg_dir`` and the head code's tables).
* :class:`MapEvent` -- why ``phys_pud_init``/``phys_pmd_init`` stopped scanning a table
  page and must act: descend into a present table, allocate a new one for an empty entry,
  or split a large leaf the page size no longer allows.

Both are Cython ``cpdef enum`` types: C constants in the loops, ``IntEnum`` classes here.
"""
from __future__ import annotations

from typing import Dict

from emu.errors import BUILD_HINT, EmuError

try:
    from emu._fast import MapEvent, TableSource
except ImportError:  # pragma: no cover - only in a checkout that was never built
    raise EmuError(f"emu's compiled loops (emu._fast) are not built; {BUILD_HINT}") from None

SRC_BRK = TableSource.SRC_BRK
SRC_MEMBLOCK = TableSource.SRC_MEMBLOCK
SRC_PGT_BUF = TableSource.SRC_PGT_BUF
SRC_IMAGE = TableSource.SRC_IMAGE

#: the text reports and JSON use for each source
SRC_NAMES: Dict[int, str] = {SRC_BRK: "BRK", SRC_MEMBLOCK: "memblock", SRC_PGT_BUF: "pgt_buf",
                             SRC_IMAGE: "kernel image"}
#: the keys of ``pgtable_pages.by_source``
SRC_KEYS: Dict[int, str] = {SRC_BRK: "brk", SRC_MEMBLOCK: "memblock", SRC_PGT_BUF: "pgt_buf", SRC_IMAGE: "image"}

from emu._fast import MapCoverage  # noqa: E402  (the loops' coverage counters, job.cov[point])

#: coverage points of the loops, by name (``COV_SPLIT_2M`` -> "split_2m" ...), in counter order
COVERAGE_POINTS = tuple(m.name[4:].lower() for m in sorted(MapCoverage, key=int) if m.name != "COV_COUNT")
COV_COUNT = int(MapCoverage.COV_COUNT)

EV_DESCEND = MapEvent.EV_DESCEND
EV_NEW_TABLE = MapEvent.EV_NEW_TABLE
EV_SPLIT = MapEvent.EV_SPLIT
