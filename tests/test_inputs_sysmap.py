"""System.map / kallsyms reader (emu.inputs.sysmap) and the oracle's re-export."""
from __future__ import annotations

import glob
from pathlib import Path

import pytest

from emu.errors import EmuError
from emu.inputs.sysmap import (
    KERNEL_SYMBOLS, SymbolError, SysmapError, SystemMap, load_system_map, parse_system_map,
)

DATA = Path(__file__).resolve().parent / "data" / "sysmap"


def test_i386_system_map():
    s = load_system_map(DATA / "System.map-5.10.0-32-686-pae.excerpt", min_symbols=10)
    assert s.bits == 32 and s["__brk_base"] == 0xC1D4C000 and s.phys("__brk_base") == 0x1D4C000
    assert s.type_of("initial_pg_pmd") == "B" and s.type_of("bm_pte") == "b"
    assert s.phys("_text") == 0x1000000 and s.phys("_text", page_offset=0x80000000) == 0x41000000
    assert s.lookup(0xC1BF1560) == ("setup_arch", 9)
    assert s["_text"] == s["startup_32"] and s.get("nope") is None and "bm_pte" in s
    # the image reservation a log shows ends at __brk_base (5.10: __bss_stop == __brk_base)
    assert s["__bss_stop"] == s["__brk_base"]


def test_x86_64_kallsyms():
    s = load_system_map(DATA / "kallsyms-6.12.118+deb13-amd64.excerpt", min_symbols=10)
    assert s.bits == 64 and s.phys("__brk_base") == 0x3C00000
    assert s["__end_of_kernel_reserve"] == s["__brk_base"]
    assert s.phys("init_top_pgt") == 0x2C22000
    assert s.lookup(0x100) == ("?", 0x100)                  # per-CPU offsets are not kernel addresses
    with pytest.raises(SymbolError, match="not in the kernel image mapping"):
        s.phys("fixed_percpu_data")
    assert all(n in KERNEL_SYMBOLS for n in ("_text", "__brk_base", "init_top_pgt"))


def test_symbol_error_is_keyerror_and_emuerror():
    s = SystemMap([(0xFFFFFFFF81000000, "_text")])
    with pytest.raises(KeyError) as e:
        s["missing"]
    assert isinstance(e.value, EmuError) and str(e.value) == "symbol 'missing' not in the symbol table <System.map>"


@pytest.mark.parametrize("text,needle", [
    ("ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n", "a placeholder System.map"),
    ("0000000000000000 T a\n0000000000000000 T b\n", "every address is 0"),
    ("c1000000 T _text\nhello there\n", "line 2: not an 'ADDRESS TYPE NAME' line: hello there"),
    ("c1000000 T _text\nzz000000 T b\n", "line 2: bad address 'zz000000'"),
    ("c1000000 TT _text\n", "line 1: not an 'ADDRESS TYPE NAME'"),
    ("c1000000 T _text\n", "only 1 symbols"),
])
def test_bad_maps(text, needle):
    with pytest.raises(SysmapError) as e:
        parse_system_map(text, "/x/System.map", min_symbols=2)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_nm_and_kallsyms_forms():
    s = parse_system_map("                 U undefined_sym\nc1000000 T _text\nf8000000 t mod_fn\t[e1000]\n", "m")
    assert len(s) == 2 and s["mod_fn"] == 0xF8000000


def test_oracle_reexport():
    from emu.tools.oracle import symbols as O
    assert O.Symbols is SystemMap and O.SymbolError is SymbolError
    s = O.Symbols([(0xFFFFFFFF81000000, "_text"), (0xFFFFFFFF81000100, "x")])
    assert s.size_of("_text") == 0x100 and s.lookup(0xFFFFFFFF81000104) == ("x", 4)


REAL = sorted(glob.glob("/root/.cache/emu-oracle/debian/*/*/System.map.*"))


@pytest.mark.skipif(not REAL, reason="no Debian symbol tables fetched (emu oracle fetch)")
@pytest.mark.parametrize("path", REAL, ids=[p.split("debian/")[1] for p in REAL])
def test_real_tables(path):
    s = SystemMap.load(path)
    assert len(s) > 20000 and s.bits == (64 if "amd64" in path else 32)
    assert s.phys("_text") == 0x1000000
