"""Kernel .config reader (emu.inputs.kconfig), on excerpts of real Debian configs
(tests/data/kconfig/README.md) and the full /boot/config-* files when present."""
from __future__ import annotations

import glob
import gzip
from pathlib import Path

import pytest

from emu.errors import EmuError
from emu.inputs.kconfig import TABLE_OPTIONS, KConfigError, load_kconfig, parse_kconfig

DATA = Path(__file__).resolve().parent / "data" / "kconfig"


def test_686_pae_excerpt():
    k = load_kconfig(DATA / "config-6.1.0-57-686-pae.excerpt")
    assert (k.header_arch, k.version, k.arch, k.pae, k.pti) == ("x86", "6.1.192", "i386", True, True)
    assert k.int("NR_CPUS") == 32 and k.int("CONFIG_PAGE_OFFSET") == 0xC0000000
    assert k.int("PHYSICAL_START") == 0x1000000
    assert k.bool("KMAP_LOCAL") is True and k.bool("DEBUG_PAGEALLOC") is False and k.bool("DEBUG_KMAP_LOCAL") is False
    assert k.has("DEBUG_PAGEALLOC") and not k.is_set("DEBUG_PAGEALLOC") and "DEBUG_PAGEALLOC" not in k
    assert k.bool("X86_5LEVEL") is None and not k.has("X86_5LEVEL")          # absent on 32-bit
    assert k.str("CC_VERSION_TEXT") == "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0"
    assert k.str("LOCALVERSION") == "" and k.tristate("HIGHMEM64G") == "y"
    assert k.raw["CONFIG_NOHIGHMEM"] == "n" and k.linenos["CONFIG_X86_32"] == 10
    facts = k.table_facts()
    assert set(facts) == {n for n, _ in TABLE_OPTIONS} and facts["X86_PAE"] == "y" and facts["X86_64"] is None


def test_64bit_excerpt():
    k = load_kconfig(DATA / "config-6.12.118+deb13-amd64.excerpt")
    assert (k.arch, k.pae, k.version) == ("x86_64", None, "6.12.118")
    assert k.bool("X86_5LEVEL") is True and k.int("PGTABLE_LEVELS") == 5 and k.bool("RANDOMIZE_MEMORY") is True
    assert k.pti is True          # 6.9+ name: CONFIG_MITIGATION_PAGE_TABLE_ISOLATION
    assert k.has("MITIGATION_PAGE_TABLE_ISOLATION") and not k.has("PAGE_TABLE_ISOLATION")


def test_kinds_checked():
    k = parse_kconfig('CONFIG_A=y\nCONFIG_B=m\nCONFIG_N=12\nCONFIG_H=0x1f\nCONFIG_S="a \\"q\\" \\\\ b"\n', "c")
    assert k.bool("A") and k.bool("B") and k.tristate("B") == "m"
    assert k.int("N") == 12 and k.int("H") == 0x1F and k.str("S") == 'a "q" \\ b'
    with pytest.raises(KConfigError, match=r"^c: line 3: CONFIG_N=12 is not a bool$"):
        k.bool("N")
    with pytest.raises(KConfigError, match=r"^c: line 5: CONFIG_S=.* is not a number$"):
        k.int("S")
    assert k.int("MISSING", 7) == 7 and k.str("MISSING") is None


@pytest.mark.parametrize("text,needle", [
    ("CONFIG_A=y\nhello\n", "line 2: not a kernel .config line: hello"),
    ("CONFIG_A=y\nCONFIG_S=\"open\n", "line 2: unterminated string"),
    ("# just a comment\n\n", "no CONFIG_ options"),
    ("A=y\n", "line 1: not a kernel .config line"),
])
def test_bad_text(text, needle):
    with pytest.raises(KConfigError) as e:
        parse_kconfig(text, "/x/.config")
    assert needle in str(e.value) and "\n" not in str(e.value) and isinstance(e.value, EmuError)


def test_tolerant_of_blanks_crlf_and_not_set():
    k = parse_kconfig("#\r\n# CONFIG_X is not set\r\n  CONFIG_Y=y  \r\n", "c")
    assert k.bool("X") is False and k.bool("Y") is True


def test_gzip(tmp_path):
    src = (DATA / "config-6.1.0-57-686-pae.excerpt").read_bytes()
    gz = tmp_path / "config.gz"
    gz.write_bytes(gzip.compress(src))
    assert load_kconfig(gz).raw == load_kconfig(DATA / "config-6.1.0-57-686-pae.excerpt").raw
    bomb = tmp_path / "bomb.gz"
    bomb.write_bytes(gzip.compress(b"CONFIG_A=y\n" * 200000))
    with pytest.raises(KConfigError, match=r"^%s: inflates to more than the 1 MiB limit" % bomb):
        load_kconfig(bomb, limit=1 << 20)
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(KConfigError, match="damaged gzip data"):
        load_kconfig(bad)


FULL = sorted(glob.glob("/root/.cache/emu-oracle/debian/*/*/root/boot/config-*"))


@pytest.mark.skipif(not FULL, reason="no Debian kernel configs fetched (emu oracle fetch)")
@pytest.mark.parametrize("path", FULL, ids=[Path(p).name for p in FULL])
def test_full_debian_configs(path):
    k = load_kconfig(path)
    assert len(k) > 5000 and k.version and k.arch in ("x86_64", "i386")
    assert k.bool("DEBUG_PAGEALLOC") is False
    assert (k.arch == "i386") == ("686" in Path(path).name)
