"""The kernel image's half of the x86-64 root table (PGD[511]) as head_64.S, __startup_64,
cleanup_highmap and early_ioremap_init leave it at init_mem_mapping's return, and the
checker's rules for it (emu.check.image)."""
import numpy as np
import pytest

from emu import emulate
from emu.check import verify
from emu.inputs.e820 import EMBEDDED_DEFAULT
from emu.kernel.params import BootParams
from emu.machine.cpu import CpuFeatures

START = 0xFFFFFFFF80000000


def _leaves(k, table_pfn):
    t = k.phys.table(table_pfn)
    return {i: int(t[i]) for i in np.nonzero(t & np.uint64(1))[0].tolist()}


def test_pgd_511_leads_to_the_image_and_the_fixmap():
    r = emulate(EMBEDDED_DEFAULT.copy(), "6.1", BootParams(brk_base=0x4401000))
    k = r.kernel
    assert r.verify.ok, r.verify.violations
    pgd = k.phys.table(k.pgd_pfn)
    l3 = int(pgd[511]) >> 12
    assert int(pgd[511]) & 0xFFF == 0x067
    l3e = _leaves(k, l3)
    assert set(l3e) == {510, 511} and l3e[510] & 0xFFF == 0x063 and l3e[511] & 0xFFF == 0x067
    l2 = _leaves(k, l3e[510] >> 12)
    brk_end = k.pgt_buf_top << 12
    want = range(0x1000000 >> 21, -(-brk_end // (1 << 21)))      # _text .. roundup(_brk_end, 2M), phys_base 0
    assert sorted(l2) == list(want)
    assert all(v == (i << 21) | 0x1E3 for i, v in l2.items())
    fix = _leaves(k, l3e[511] >> 12)
    assert set(fix) == {505, 506, 507}                             # bm_pte, FIXMAP_PMD_NUM = 2 (4.19+)
    for e in fix.values():
        assert not _leaves(k, e >> 12)                             # no fixmap PTE is set yet


def test_relocated_kernel_and_5_level():
    p = BootParams(kernel_start=0x3E000000, brk_base=0x40000000, la57=True, cpu=CpuFeatures(la57=True))
    r = emulate(EMBEDDED_DEFAULT.copy(), "6.1", p)
    k = r.kernel
    assert r.verify.ok, r.verify.violations
    assert k.phys_base == 0x3E000000 - 0x1000000
    l4 = int(k.phys.table(k.pgd_pfn)[511]) >> 12
    l3 = int(k.phys.table(l4)[511]) >> 12                          # level4_kernel_pgt[511]
    l2 = _leaves(k, int(k.phys.table(l3)[510]) >> 12)
    assert min(l2) == 8 and l2[8] == (0x3E000000 | 0x1E3)


def test_pre_4_19_has_one_fixmap_pmd():
    r = emulate(EMBEDDED_DEFAULT.copy(), "4.17", BootParams(bm_pte_slot=502))
    k = r.kernel
    l3 = int(k.phys.table(k.pgd_pfn)[511]) >> 12
    assert set(_leaves(k, int(k.phys.table(l3)[511]) >> 12)) == {502, 506}
    assert r.verify.ok, r.verify.violations


def test_system_map_addresses_are_used():
    tables = {"level3_kernel_pgt": 0x2C0E000, "level2_kernel_pgt": 0x2C0F000, "level2_fixmap_pgt": 0x2C10000,
              "level1_fixmap_pgt": 0x2C11000, "bm_pte": 0x2C20000}
    r = emulate(EMBEDDED_DEFAULT.copy(), "6.1", BootParams(image_tables=tables, kernel_link_start=0x1000000))
    names = {name: pfn << 12 for pfn, _, name in r.kernel.image_tables}
    assert names["level3_kernel_pgt"] == 0x2C0E000 and names["bm_pte"] == 0x2C20000
    assert not any(a.field in ("image_tables", "kernel_link_start") for a in r.assumptions)
    r2 = emulate(EMBEDDED_DEFAULT.copy(), "6.1", BootParams())
    assert {a.field for a in r2.assumptions} >= {"image_tables", "kernel_link_start", "bm_pte_slot"}


def test_unaligned_kernel_is_refused():
    with pytest.raises(ValueError, match="not 2 MiB aligned"):
        emulate(EMBEDDED_DEFAULT.copy(), "6.1", BootParams(kernel_start=0x1100000))


@pytest.mark.parametrize("damage,rule", [
    ("leaf", "image.text"), ("stray", "image.extra"), ("flags", "image.text"), ("fixpte", "image.extra")])
def test_the_checker_sees_damage(damage, rule):
    r = emulate(EMBEDDED_DEFAULT.copy(), "6.1", BootParams(), check=False)
    k = r.kernel
    pgd = k.phys.table(k.pgd_pfn)
    l3 = k.phys.table(int(pgd[511]) >> 12)
    l2 = k.phys.table(int(l3[510]) >> 12)
    if damage == "leaf":
        l2[100] = (100 << 21) | 0x1E3                              # a leaf outside the image
    elif damage == "stray":
        pgd[450] = int(pgd[511])                                   # a second way to the image
    elif damage == "flags":
        l2[8] = int(l2[8]) | (1 << 63)                             # NX on the text
    else:
        fix = k.phys.table(int(l3[511]) >> 12)
        k.phys.table(int(fix[506]) >> 12)[3] = 0x1000 | 0x163      # a fixmap PTE already set
    assert rule in verify(k).by_rule
