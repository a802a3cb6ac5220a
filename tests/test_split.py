"""split_mem_range + adjust_range_page_size_mask (arch/x86/mm/init.c), the kernel's own cases."""
import pytest

from emu.kernel.params import BootParams
from emu.kernel.arch.x86.mm.init import probe_page_size_mask, split_mem_range
from emu.kernel.arch.x86.pgtable_types import MASK_1G, MASK_2M
from emu.machine.cpu import CpuFeatures
from emu.kernel.profiles import get_profile
from emu.kernel.arch.x86.kernel.setup import setup_arch

from layouts import G, M, pc


def kernel(profile="3.19", gb=False, e820=None, pse=True):
    params = BootParams(cpu=CpuFeatures(gbpages=gb, pse=pse), gbpages=gb)
    k = setup_arch(get_profile(profile), params, e820 or pc(5 * G))
    probe_page_size_mask(k)
    return k


def pieces(mr):
    return [(r.start, r.end, r.page_size_mask) for r in mr]


def test_isa_range_is_one_4k_piece():
    k = kernel()
    assert pieces(split_mem_range(k, 0, 0x100000)) == [(0, 0x100000, 0)]


def test_head_2m_tail_with_2m_pages():
    # reference appendix: [1M, 0xbffe0000) with 2M pages only
    k = kernel()
    assert pieces(split_mem_range(k, 0x100000, 0xBFFE0000)) == [
        (0x100000, 0x200000, 0),
        (0x200000, 0xBFE00000, MASK_2M),
        (0xBFE00000, 0xBFFE0000, 0),
    ]
    assert k.log.lines(debug=True)[-3:] == [
        " [mem 0x00100000-0x001fffff] page 4k",
        " [mem 0x00200000-0xbfdfffff] page 2M",
        " [mem 0xbfe00000-0xbffdffff] page 4k",
    ]


def test_five_pieces_with_1g_pages():
    k = kernel(gb=True)
    assert pieces(split_mem_range(k, 0x100000, 0xBFFE0000)) == [
        (0x100000, 0x200000, 0),
        (0x200000, 0x40000000, MASK_2M),
        (0x40000000, 0x80000000, MASK_2M | MASK_1G),
        (0x80000000, 0xBFE00000, MASK_2M),
        (0xBFE00000, 0xBFFE0000, 0),
    ]


def test_adjust_promotes_piece_inside_all_ram_block():
    # [4G+1M, 4G+3M): head/tail are inside [4G, 5G) which is one memory region
    k = kernel(gb=True)
    mr = split_mem_range(k, (4 << 30) + M, (4 << 30) + 3 * M)
    # head [4G+1M, 4G+2M) and tail [4G+2M, 4G+3M) both get 2M and 1G -> merged into one piece
    assert pieces(mr) == [((4 << 30) + M, (4 << 30) + 3 * M, MASK_2M | MASK_1G)]
    assert k.log.lines(debug=True)[-1] == " [mem 0x100100000-0x1002fffff] page 1G"


def test_merge_before_adjust_keeps_neighbours_apart():
    # 3.9 merged before adjusting: the head and tail stay two pieces even after promotion
    k = kernel("3.9", gb=False)
    mr = split_mem_range(k, (4 << 30) + M, (4 << 30) + 5 * M)
    assert pieces(mr) == [
        ((4 << 30) + M, (4 << 30) + 2 * M, MASK_2M),
        ((4 << 30) + 2 * M, (4 << 30) + 4 * M, MASK_2M),
        ((4 << 30) + 4 * M, (4 << 30) + 5 * M, MASK_2M),
    ]
    k2 = kernel("3.10", gb=False)
    assert pieces(split_mem_range(k2, (4 << 30) + M, (4 << 30) + 5 * M)) == [
        ((4 << 30) + M, (4 << 30) + 5 * M, MASK_2M)]


def test_no_pse_means_4k_only():
    k = kernel(pse=False)
    assert pieces(split_mem_range(k, 0x100000, 0xBFFE0000)) == [(0x100000, 0xBFFE0000, 0)]


@pytest.mark.parametrize("start,end", [(0, 0x1000), (0x1000, 0x3000), (2 * M, 4 * M), (G - 4096, G + 4096),
                                       (0x100000, 64 * G + 0x1000)])
def test_pieces_tile_the_range(start, end):
    k = kernel(gb=True, e820=pc(80 * G))
    mr = split_mem_range(k, start, end)
    assert mr[0].start == start and mr[-1].end == end
    assert all(a.end == b.start for a, b in zip(mr, mr[1:]))
    assert len(mr) <= 5
