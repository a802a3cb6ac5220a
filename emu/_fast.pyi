"""Type stub of the compiled loops (``emu/_fast.pyx``, ``emu/_fast32.pxi``): what mypy
and readers see of the extension module.  ``tests/test_stub.py`` holds it to the module
(every name, every enum value)."""
from enum import IntEnum
from typing import Any, List, Optional, Tuple

import numpy as np

from emu.errors import NotEmulated as NotEmulated

class TableSource(IntEnum):
    SRC_BRK = 1
    SRC_MEMBLOCK = 2
    SRC_PGT_BUF = 3
    SRC_IMAGE = 4

class MapEvent(IntEnum):
    EV_NONE = 0
    EV_DESCEND = 1
    EV_NEW_TABLE = 2
    EV_SPLIT = 3

class MapCoverage(IntEnum):
    COV_SPLIT_2M = 0
    COV_SPLIT_1G = 1
    COV_KEEP_4K = 2
    COV_KEEP_2M = 3
    COV_KEEP_1G = 4
    COV_CLEAR_PTE = 5
    COV_CLEAR_PMD = 6
    COV_CLEAR_PUD = 7
    COV_CLEAR_P4D = 8
    COV_KEEP_PAST_END = 9
    COV_ZERO_REST_PTE = 10
    COV_ZERO_REST_PMD = 11
    COV_PUD_NO_E820 = 12
    COV_UNALIGNED_LEAF = 13
    COV_P4D_WRAP = 14
    COV_PGD_CHILD_END = 15
    COV_DESCEND_PMD = 16
    COV_DESCEND_PTE = 17
    COV_P4D_STOP = 18
    COV_I386_LARGE_OVER_TABLE = 19
    COV_I386_PT_REUSE = 20
    COV_I386_PMD_ALLOC = 21
    COV_COUNT = 22

FAULT_GP: int

def check_store(directory: np.ndarray, blocks: np.ndarray, frames: np.ndarray,
                frame_pfn: Optional[np.ndarray] = ...) -> None: ...

class Mapper:
    def __init__(self, job: Any) -> None: ...
    def kernel_physical_mapping_init(self, pgd_pfn: int, paddr_start: int, paddr_end: int, mask: int,
                                     prot: int) -> int: ...

class Mapper32(Mapper):
    def __init__(self, job: Any) -> None: ...
    def kernel_physical_mapping_init(self, pgd_pfn: int, start: int, end: int) -> Any: ...  # type: ignore[override]

def kernel_physical_mapping_init(job: Any, pgd_pfn: int, paddr_start: int, paddr_end: int, mask: int,
                                 prot: int) -> Tuple[int, Tuple[int, int, int, int]]: ...
def map_pieces(job: Any, pgd_pfn: int, pieces: List[Tuple[int, int, int]],
               prot: int) -> Tuple[int, Tuple[int, int, int, int]]: ...
def kernel_physical_mapping_init_32(job: Any, pgd_pfn: int, paddr_start: int,
                                    paddr_end: int) -> Tuple[int, int, int]: ...
def walk64(directory: np.ndarray, blocks: np.ndarray, frames: np.ndarray, cr3: int, levels: int, maxphyaddr: int,
           nxe: bool, wp: bool, smep: bool, access: int, vas: np.ndarray, out_pa: np.ndarray, out_shift: np.ndarray,
           out_leaf: np.ndarray, out_flags: np.ndarray, out_err: np.ndarray,
           trace: Optional[np.ndarray] = ...) -> Any: ...
def walk32(directory: np.ndarray, blocks: np.ndarray, frames: np.ndarray, cr3: int, pae: bool, maxphyaddr: int,
           pse: bool, nxe: bool, wp: bool, smep: bool, access: int, vas: np.ndarray, out_pa: np.ndarray,
           out_shift: np.ndarray, out_leaf: np.ndarray, out_flags: np.ndarray, out_err: np.ndarray,
           trace: Optional[np.ndarray] = ...) -> Any: ...
def enumerate64(directory: np.ndarray, blocks: np.ndarray, frames: np.ndarray, root_pfn: int, levels: int,
                top_lo: int, top_hi: int, maxphyaddr: int, runs: np.ndarray, tables: np.ndarray, counts: np.ndarray,
                ptr_flags: int = ..., odd: Optional[np.ndarray] = ...) -> Any: ...
