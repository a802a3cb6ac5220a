"""Tests for emu.inputs.dmesg: log normalisation, boot-log fields, and the real-log corpus."""
from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
from emu.inputs import dmesg as D  # noqa: E402

from emu.inputs import e820 as I  # noqa: E402
from emu.kernel.arch.x86.kernel import e820 as E  # noqa: E402
from emu.inputs.dmesg import BootLogError, E820Edit  # noqa: E402
from emu.kernel.arch.x86.kernel.e820 import E820_RAM, E820_RESERVED, E820_RESERVED_KERN, E820Table  # noqa: E402

G = 1 << 30


def texts(lines):
    return [ln.text for ln in lines]


# ---------------------------------------------------------------------------
# normalisation
# ---------------------------------------------------------------------------
class TestNormalize:
    def test_timestamps_and_kernel_space(self):
        raw = ("[    0.000000] init_memory_mapping: [mem 0x00000000-0x000fffff]\n"
               "[    0.000000]  [mem 0x00000000-0x000fffff] page 4k   \n"
               "[10831492.123456] hello\n")
        assert texts(D.normalize_log(raw)) == ["init_memory_mapping: [mem 0x00000000-0x000fffff]",
                                               " [mem 0x00000000-0x000fffff] page 4k", "hello"]

    def test_syslog_prefixes(self):
        raw = ("Feb 18 23:12:18 ubuntu kernel: [    0.000000] Linux version 3.2.0\n"
               "Feb 18 23:12:18 ubuntu rsyslogd-2039: Could not open output pipe\n"
               "Feb  1 10:56:43 laptop kernel:  [mem 0x00000000-0x001fffff] page 4k\n"
               "2015-11-21T08:43:20.123456+01:00 host kernel: [    0.000000] BRK [0x01, 0x02] PGTABLE\n"
               "<6>[    0.000000] NX (Execute Disable) protection: active\n"
               "kern  :info  : [    0.000000] x86/fpu: legacy\n")
        got = D.normalize_log(raw)
        assert texts(got) == ["Linux version 3.2.0", " [mem 0x00000000-0x001fffff] page 4k",
                              "BRK [0x01, 0x02] PGTABLE", "NX (Execute Disable) protection: active",
                              "x86/fpu: legacy"]
        assert [ln.lineno for ln in got] == [1, 3, 4, 5, 6]

    def test_leading_blank_before_timestamp(self):
        raw = " [    0.000000]  0000000000 - 0000200000 page 4k \n [    0.000000] e820 remove range: x \n"
        assert texts(D.normalize_log(raw)) == [" 0000000000 - 0000200000 page 4k", "e820 remove range: x"]

    def test_no_timestamps_keeps_leading_space(self):
        raw = "init_memory_mapping: [mem 0x00000000-0x000fffff]\n [mem 0x00000000-0x000fffff] page 4k\n"
        assert texts(D.normalize_log(raw))[1] == " [mem 0x00000000-0x000fffff] page 4k"

    def test_glued_lines_split(self):
        raw = ("[COLOR=#000000][    0.000000] CPU0 microcode updated[/COLOR][    0.000000] Initializing cgroup\n"
               "dmesg[    0.000000] Initializing cgroup subsys cpu\n"
               "[    0.000000] reserved[    0.000000] BIOS-e820: [mem 0x0-0xfff] usable\n")
        got = D.normalize_log(raw)
        assert texts(got) == ["[COLOR=#000000]", "CPU0 microcode updated[/COLOR]", "Initializing cgroup",
                              "dmesg", "Initializing cgroup subsys cpu",
                              "reserved", "BIOS-e820: [mem 0x0-0xfff] usable"]
        assert [ln.lineno for ln in got] == [1, 1, 1, 2, 2, 3, 3]

    def test_quoted_printable(self):
        raw = ("[    0.000000] Linux version 3.10.0-rc7 (kbuild@xian) (gcc v=\n"
               "ersion 4.8.1) #6\n"
               "[    0.000000] e820: update [mem 0x00000000-0x00000fff] usable =3D=3D> reser=\n"
               "ved\n"
               "[    0.000000] Notice:=20 x\n")
        assert D.looks_quoted_printable(raw)
        got = D.normalize_log(raw)
        assert texts(got) == ["Linux version 3.10.0-rc7 (kbuild@xian) (gcc version 4.8.1) #6",
                              "e820: update [mem 0x00000000-0x00000fff] usable ==> reserved",
                              "Notice:  x"]
        assert [ln.lineno for ln in got] == [1, 3, 5]

    def test_quoted_printable_newline_escapes(self):
        raw = ("hhim[    0.000000] Initializing cpuset=0A=\n"
               "[    0.000000] Command line: =\n"
               "BOOT_IMAGE=3D/vmlinuz crashkernel=3D384M=0A=\n"
               "[    0.000000] caf=C3=A9=0A=\n")
        got = D.normalize_log(raw)
        assert texts(got) == ["hhim", "Initializing cpuset", "Command line: BOOT_IMAGE=/vmlinuz crashkernel=384M",
                              "café"]
        assert [ln.lineno for ln in got] == [1, 1, 2, 4]

    def test_not_quoted_printable(self):
        raw = "[    0.000000] Command line: nr_cpus=20 crashkernel=\n[    0.000000] a==\n"
        assert not D.looks_quoted_printable(raw)
        assert texts(D.normalize_log(raw)) == ["Command line: nr_cpus=20 crashkernel=", "a=="]

    def test_truncated_quoted_printable_warning(self):
        raw = "[    0.000000] a =3D b\n[    0.000000] cut he=\n"
        w = []
        assert texts(D.normalize_log(raw, w)) == ["a = b", "cut he"]
        assert w == ["truncated quoted-printable line at line 2"]

    def test_crlf(self):
        assert texts(D.normalize_log("[    0.000000] a\r\n[    0.000000] b\r\n")) == ["a", "b"]


class TestPagetableLines:
    @pytest.mark.parametrize("line", [
        "init_memory_mapping: [mem 0x00000000-0x000fffff]",
        "init_memory_mapping: 0000000000000000-00000000bbf50000",
        "init_memory_mapping:",
        " [mem 0x00000000-0x000fffff] page 4k",
        " [mem 0x100000000-0x105fffffff] page 1G",
        " [mem 0x00400000-0x373fffff] page 2M",
        " 0000000000 - 0000200000 page 4k",
        "BRK [0x01fdd000, 0x01fddfff] PGTABLE",
        "kernel direct mapping tables up to 0x37bfdfff @ [mem 0x01ffa000-0x01ffffff]",
        "kernel direct mapping tables up to bbf50000 @ 8000-d000",
        "Using GB pages for direct mapping",
        "Kernel panic - not syncing: alloc_low_page: ran out of memory",
        "   [mem 0x00000000-0x000fffff] page 4k",
        "[mem 0x00000000-0x000fffff] page 4k",
    ])
    def test_yes(self, line):
        assert D.is_pagetable_line(line)

    @pytest.mark.parametrize("line", [
        "  #5 [0001b19000 - 0001b191a0]              BRK ==> [0001b19000 - 0001b191a0]",
        "initial memory mapped: [mem 0x00000000-0x01ffffff]",
        "e820: update [mem 0x00000000-0x00000fff] usable ==> reserved",
        "BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable",
        "PM: Registered nosave memory: [mem 0x0009e000-0x0009efff]",
        "reserving inaccessible SNB gfx pages",
        "",
    ])
    def test_no(self, line):
        assert not D.is_pagetable_line(line)

    def test_normalize(self):
        assert D.normalize_pagetable_line("   [mem 0x0-0xfff] page 4k  ") == " [mem 0x0-0xfff] page 4k"
        assert D.normalize_pagetable_line("[mem 0x0-0xfff] page 2M") == " [mem 0x0-0xfff] page 2M"
        assert D.normalize_pagetable_line("  init_memory_mapping: [mem 0x0-0xfff]") == \
            "init_memory_mapping: [mem 0x0-0xfff]"


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------
class TestCommandLine:
    @pytest.mark.parametrize("s,v", [("512M", 512 << 20), ("1G", G), ("4k", 4096), ("4K", 4096),
                                     ("0x1000", 0x1000), ("2T", 2 << 40), ("1P", 1 << 50), ("1E", 1 << 60),
                                     ("010", 8), ("0", 0), ("123", 123)])
    def test_parse_size(self, s, v):
        assert D.parse_size(s) == v

    @pytest.mark.parametrize("s", ["", "M", "12Q", "abc", "1G2"])
    def test_parse_size_bad(self, s):
        with pytest.raises(ValueError):
            D.parse_size(s)

    def test_memparse_rest(self):
        assert D.memparse("64M@1G") == (64 << 20, "@1G")
        assert D.memparse("x") == (0, "x")

    def test_options(self):
        o = D.parse_command_line(
            'BOOT_IMAGE=/vmlinuz ro mem=4G mem=2G memmap=64M$0x10000000 memmap=exactmap nogbpages gbpages '
            'nopat movable_node debug_pagealloc=on noexec=off nopti highmem=512M vmalloc=256M '
            'acpi_osi="Windows 2012" mem=junk -- init=/bin/sh nopat2')
        assert o.mem == 2 * G
        assert o.memmap == ["64M$0x10000000", "exactmap"]
        assert o.gbpages is True and o.nopat and o.movable_node
        assert o.debug_pagealloc is True and o.noexec == "off" and o.pti == "off"
        assert o.highmem == 512 << 20 and o.vmalloc == 256 << 20
        assert o.params["acpi_osi"] == "Windows 2012"
        assert "nopat2" not in o.params and "init" not in o.params

    def test_options_misc(self):
        o = D.parse_command_line("gbpages nogbpages pti=on mem=nopentium debug_pagealloc=off")
        assert o.gbpages is False and o.pti == "on" and o.nopentium and o.mem is None
        assert o.debug_pagealloc is False
        assert D.parse_command_line(None).params == {}


# ---------------------------------------------------------------------------
# synthetic boot logs
# ---------------------------------------------------------------------------
LOG64 = """\
[    0.000000] Linux version 3.14.0-foo (a@b) (gcc version 4.8.2) #1 SMP Mon Mar 17 2014
[    0.000000] Command line: root=/dev/sda1 ro mem=3G nogbpages
[    0.000000] e820: BIOS-provided physical RAM map:
[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable
[    0.000000] BIOS-e820: [mem 0x000000000009fc00-0x000000000009ffff] reserved
[    0.000000] BIOS-e820: [mem 0x00000000000f0000-0x00000000000fffff] reserved
[    0.000000] BIOS-e820: [mem 0x0000000000100000-0x00000000bffdffff] usable
[    0.000000] BIOS-e820: [mem 0x00000000bffe0000-0x00000000bfffffff] reserved
[    0.000000] BIOS-e820: [mem 0x0000000100000000-0x000000013fffffff] usable
[    0.000000] e820: remove [mem 0xc0000000-0xfffffffffffffffe] usable
[    0.000000] NX (Execute Disable) protection: active
[    0.000000] e820: user-defined physical RAM map:
[    0.000000] user: [mem 0x0000000000000000-0x000000000009fbff] usable
[    0.000000] user: [mem 0x000000000009fc00-0x000000000009ffff] reserved
[    0.000000] user: [mem 0x00000000000f0000-0x00000000000fffff] reserved
[    0.000000] user: [mem 0x0000000000100000-0x00000000bffdffff] usable
[    0.000000] user: [mem 0x00000000bffe0000-0x00000000bfffffff] reserved
[    0.000000] e820: update [mem 0x00000000-0x00000fff] usable ==> reserved
[    0.000000] e820: remove [mem 0x000a0000-0x000fffff] usable
[    0.000000] e820: last_pfn = 0xbffe0 max_arch_pfn = 0x400000000
[    0.000000] e820: update [mem 0x0009d000-0x0009dfff] usable ==> reserved
[    0.000000] e820: update e820_saved for early_reserve_e820
[    0.000000] e820: update [mem 0x7f000000-0x7f000fff] usable ==> usable
[    0.000000] Base memory trampoline at [ffff880000099000] 99000 size 24576
[    0.000000] init_memory_mapping: [mem 0x00000000-0x000fffff]
[    0.000000]  [mem 0x00000000-0x000fffff] page 4k
[    0.000000] BRK [0x01fdd000, 0x01fddfff] PGTABLE
[    0.000000] BRK [0x01fde000, 0x01fdefff] PGTABLE
[    0.000000] e820: update [mem 0x12340000-0x12340fff] usable ==> reserved
[    0.000000] init_memory_mapping: [mem 0xbfe00000-0xbfffffff]
[    0.000000] RAMDISK: [mem 0x37a5e000-0x37d26fff]
"""

LOG32 = """\
Feb  1 10:56:40 laptop kernel: Linux version 2.6.32-22-generic-pae (buildd@rothera) #33-Ubuntu SMP
Feb  1 10:56:40 laptop kernel: BIOS-provided physical RAM map:
Feb  1 10:56:40 laptop kernel:  BIOS-e820: 0000000000000000 - 000000000009ec00 (usable)
Feb  1 10:56:40 laptop kernel:  BIOS-e820: 000000000009ec00 - 00000000000a0000 (reserved)
Feb  1 10:56:40 laptop kernel:  BIOS-e820: 0000000000100000 - 00000000bff80000 (usable)
Feb  1 10:56:40 laptop kernel:  BIOS-e820: 0000000100000000 - 0000000140000000 (usable)
Feb  1 10:56:40 laptop kernel: e820 update range: 0000000000000000 - 0000000000010000 (usable) ==> (reserved)
Feb  1 10:56:40 laptop kernel: e820 remove range: 00000000000a0000 - 0000000000100000 (usable)
Feb  1 10:56:40 laptop kernel: last_pfn = 0x140000 max_arch_pfn = 0x1000000
Feb  1 10:56:40 laptop kernel: initial memory mapped : 0 - 00e00000
Feb  1 10:56:40 laptop kernel: RAMDISK: 3736f000 - 37fef6cb
Feb  1 10:56:40 laptop kernel: 4230MB HIGHMEM available.
Feb  1 10:56:40 laptop kernel: 889MB LOWMEM available.
Feb  1 10:56:40 laptop kernel: init_memory_mapping: 0000000000000000-00000000379fe000
Feb  1 10:56:40 laptop kernel:  0000000000 - 0000200000 page 4k
Feb  1 10:56:40 laptop kernel:  0000200000 - 0037800000 page 2M
Feb  1 10:56:40 laptop kernel: kernel direct mapping tables up to 379fe000 @ 10000-16000
Feb  1 10:56:40 laptop kernel: Kernel command line: root=/dev/sda1 highmem=1G
"""


class TestBootLog:
    def test_x86_64_fields(self):
        bl = D.parse_boot_log(LOG64, "x.log")
        assert bl.kernel_version == "3.14.0-foo" and bl.version_tuple == (3, 14, 0)
        assert bl.arch == "x86_64" and bl.pae is None and bl.nx is True
        assert bl.command_line == "root=/dev/sda1 ro mem=3G nogbpages"
        assert bl.options.mem == 3 * G and bl.options.gbpages is False
        assert len(bl.e820) == 6 and bl.e820_who == "BIOS-e820"
        assert bl.e820_user is not None and len(bl.e820_user) == 5
        assert [(e.op, e.target, e.after_user_map) for e in bl.e820_edits] == [
            ("remove", "e820", False), ("update", "e820", True), ("remove", "e820", True),
            ("update", "saved", True), ("update", "e820", True)]
        first = bl.e820_edits[0]
        assert first.start == 3 * G and first.size == E.U64_MAX - 3 * G and first.old_type == E820_RAM
        assert bl.e820_edits[-1].new_type == E820_RESERVED_KERN          # "usable ==> usable"
        assert bl.last_pfn_lines == [(0xBFFE0, 0x400000000)] and bl.max_pfn == 0xBFFE0
        assert bl.max_arch_pfn == 0x400000000 and bl.last_pfn_linenos == [20]
        assert bl.brk_lines == [(0x1FDD000, 0x1FDDFFF), (0x1FDE000, 0x1FDEFFF)] and bl.brk_base == 0x1FDD000
        assert bl.ramdisk == (0x37A5E000, 0x37D26FFF)
        assert bl.trampoline == 0x99000 and bl.trampoline_size == 24576
        assert bl.page_offset == 0xFFFF880000000000
        assert bl.gb_pages is False and bl.initial_memory_mapped is None
        assert bl.pagetable_lines == [
            "init_memory_mapping: [mem 0x00000000-0x000fffff]", " [mem 0x00000000-0x000fffff] page 4k",
            "BRK [0x01fdd000, 0x01fddfff] PGTABLE", "BRK [0x01fde000, 0x01fdefff] PGTABLE",
            "init_memory_mapping: [mem 0xbfe00000-0xbfffffff]"]
        assert bl.pagetable_format == "a"

    def test_x86_64_edits_apply(self):
        bl = D.parse_boot_log(LOG64, "x.log")
        # the mem= removal applied to the BIOS map gives the printed user map
        t = E820Table(bl.e820)
        bl.e820_edits[0].apply(t)
        assert t.sanitize() == bl.e820_user
        # base = user map, edits after it (the e820_saved one is skipped)
        got = E.logged_table(bl, sanitize=True)
        assert [(e.addr, e.size, e.type) for e in got] == [
            (0, 0x1000, E820_RESERVED), (0x1000, 0x9EC00, E820_RAM), (0x9FC00, 0x400, E820_RESERVED),
            (0xF0000, 0x10000, E820_RESERVED), (0x100000, 0x7EF00000, E820_RAM), (0x7F000000, 0x1000, E820_RESERVED_KERN),
            (0x7F001000, 0x40FDF000, E820_RAM), (0xBFFE0000, 0x20000, E820_RESERVED)]
        assert E.logged_table(bl, bl.last_pfn_linenos[0], True).end_of_ram_pfn(bl.max_arch_pfn) == bl.max_pfn
        # explicit table: every main-table edit
        assert isinstance(E.apply_edits(bl.e820, bl.e820_edits), E820Table)
        assert len(E.apply_edits(bl.e820, [E820Edit("remove", 0, G, None, None)], sanitize=True)) == 3

    def test_i686_old_format_fields(self):
        bl = D.parse_boot_log(LOG32.encode(), "y.log")
        assert bl.arch == "i686" and bl.pae is True
        assert bl.version_tuple == (2, 6, 32)
        assert bl.command_line == "root=/dev/sda1 highmem=1G" and bl.options.highmem == G
        assert [(e.addr, e.size, e.type) for e in bl.e820] == [
            (0, 0x9EC00, 1), (0x9EC00, 0x1400, 2), (0x100000, 0xBFE80000, 1), (0x100000000, 0x40000000, 1)]
        assert [(e.op, e.start, e.size, e.old_type, e.new_type) for e in bl.e820_edits] == [
            ("update", 0, 0x10000, 1, 2), ("remove", 0xA0000, 0x60000, 1, None)]
        assert bl.initial_memory_mapped == (0, 0xDFFFFF)
        assert bl.ramdisk == (0x3736F000, 0x37FEF6CA)
        assert bl.lowmem_mb == 889 and bl.highmem_mb == 4230
        assert bl.pagetable_lines == [
            "init_memory_mapping: 0000000000000000-00000000379fe000", " 0000000000 - 0000200000 page 4k",
            " 0000200000 - 0037800000 page 2M", "kernel direct mapping tables up to 379fe000 @ 10000-16000"]
        assert bl.pagetable_format == "b"
        assert E.logged_table(bl, bl.last_pfn_linenos[0], True).end_of_ram_pfn(bl.max_arch_pfn) == 0x140000

    def test_detect_arch(self):
        assert D.detect_arch(["e820: last_pfn = 0xfffe max_arch_pfn = 0x100000"]) == "i686"
        assert D.detect_arch(["Base memory trampoline at [ffff880000099000] 99000 size 24576"]) == "x86_64"
        assert D.detect_arch(["891MB LOWMEM available."]) == "i686"
        assert D.detect_arch(["init_memory_mapping: [mem 0x100000000-0x13fffffff]"]) == "x86_64"
        assert D.detect_arch(["hello"], "Linux version 3.2.0-4-amd64 (debian)") == "x86_64"
        assert D.detect_arch(["hello"], "Linux version 3.2.0-4-686-pae (debian)") == "i686"
        assert D.detect_arch(["hello"]) is None

    def test_pae_detection(self):
        nonpae = LOG32.replace("max_arch_pfn = 0x1000000", "max_arch_pfn = 0x100000")
        assert D.parse_boot_log(nonpae).pae is False

    def test_xen_map_and_second_boot(self):
        text = ("[    0.000000] Linux version 3.13.0-48-generic (buildd@orlo) #80-Ubuntu SMP\n"
                "[    0.000000] Xen: [mem 0x0000000000000000-0x000000000009ffff] usable\n"
                "[    0.000000] Xen: [mem 0x0000000000100000-0x0000000026efffff] usable\n"
                "[    0.000000] e820: last_pfn = 0x26f00 max_arch_pfn = 0x400000000\n"
                "[    0.000000] Linux version 3.13.0-49-generic (buildd@orlo) #81-Ubuntu SMP\n"
                "[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009ffff] usable\n")
        bl = D.parse_boot_log(text, "xen.log")
        assert bl.e820_who == "Xen" and len(bl.e820) == 2 and bl.kernel_version == "3.13.0-48-generic"
        assert bl.warnings == ["second boot at line 5 ignored"]

    def test_panic_line_kept(self):
        text = LOG64 + "[    0.000000] Kernel panic - not syncing: alloc_low_page: ran out of memory\n"
        assert D.parse_boot_log(text).pagetable_lines[-1] == \
            "Kernel panic - not syncing: alloc_low_page: ran out of memory"

    def test_edits_after_first_mapping_ignored(self):
        bl = D.parse_boot_log(LOG64)
        assert all(e.start != 0x12340000 for e in bl.e820_edits)


class TestBootLogErrors:
    def test_no_e820(self):
        with pytest.raises(BootLogError, match=r"^x\.log: no BIOS-e820 lines \(is this a boot log\?\)$"):
            D.parse_boot_log("[    0.000000] Linux version 4.1.0\nhello\n", "x.log")

    def test_empty(self):
        with pytest.raises(BootLogError, match=r"^e\.log: no BIOS-e820 lines"):
            D.parse_boot_log(b"", "e.log")

    def test_binary(self):
        with pytest.raises(BootLogError, match=r"^b\.bin: binary data"):
            D.parse_boot_log(b"\x7fELF\x02\x01\x01\x00\x00\x00" * 20, "b.bin")

    def test_non_utf8(self):
        with pytest.raises(BootLogError, match=r"^z\.gz: not UTF-8 text"):
            D.parse_boot_log(bytes(range(0x80, 0x100)) * 10, "z.gz")

    def test_truncated_qp_strict(self):
        text = LOG64.replace("page 4k", "page =3D4k") + "[    0.000000] trunc=\n"
        bl = D.parse_boot_log(text, "q.log")
        assert bl.quoted_printable and bl.warnings
        with pytest.raises(BootLogError, match=r"^q\.log: truncated quoted-printable line at line \d+$"):
            D.parse_boot_log(text, "q.log", strict=True)

    def test_damaged_e820_line(self):
        text = LOG64.replace("[mem 0x0000000100000000-0x000000013fffffff] usable",
                             "[mem 0x0000000100000000-0x000000013fffffff] bananas")
        with pytest.raises(BootLogError, match=r"^x\.log: line 9: bad e820 line \(unknown e820 type 'bananas'\)"):
            D.parse_boot_log(text, "x.log")
        text = LOG64.replace("[mem 0x0000000100000000-0x000000013fffffff] usable", "[mem 0x00000001000")
        with pytest.raises(BootLogError, match=r"^x\.log: line 9: unparseable e820 line"):
            D.parse_boot_log(text, "x.log")

    def test_beyond_phys_limit(self):
        text = LOG64.replace("[mem 0x0000000100000000-0x000000013fffffff]", "[mem 0x0010000000000000-0x0010000000000fff]")
        with pytest.raises(BootLogError, match=r"^x\.log: line 9: e820 range .* beyond the 52-bit"):
            D.parse_boot_log(text, "x.log")

    def test_load_missing(self, tmp_path):
        with pytest.raises(BootLogError, match="cannot read"):
            D.load_boot_log(tmp_path / "nope.log")


# ---------------------------------------------------------------------------
# the real-log corpus
# ---------------------------------------------------------------------------
def _corpus_dir():
    env = os.environ.get("EMU_CORPUS")
    cands = []
    if env:
        cands += [Path(env) / "dmesg", Path(env)]
    cands.append(Path(__file__).resolve().parents[2] / "shared" / "corpus" / "dmesg")
    for c in cands:
        if c.is_dir() and list(c.glob("*.log")):
            return c
    return None


CORPUS = _corpus_dir()
LOGS = sorted(CORPUS.glob("*.log")) if CORPUS else []
INDEX = {}
if CORPUS and (CORPUS / "index.tsv").is_file():
    with open(CORPUS / "index.tsv", newline="") as fh:
        INDEX = {r["filename"]: r for r in csv.DictReader(fh, delimiter="\t")}

needs_corpus = pytest.mark.skipif(not LOGS, reason="dmesg corpus not found (set EMU_CORPUS)")


@needs_corpus
@pytest.mark.parametrize("path", LOGS, ids=[p.name for p in LOGS])
def test_corpus_log(path):
    bl = D.load_boot_log(path)
    row = INDEX.get(path.name)
    m = re.search(r"_(x86_64|i686)_[^_]+\.log$", path.name)
    assert m, "file name without arch field"
    want_arch = row["arch"] if row else m.group(1)
    assert bl.arch == want_arch == m.group(1)
    assert bl.kernel_version and bl.version_tuple and bl.version_tuple[0] in (2, 3, 4)
    assert path.name.startswith(bl.kernel_version[:20].rstrip("_"))
    assert len(bl.e820) > 0
    assert bl.pagetable_lines and all(D.is_pagetable_line(s) for s in bl.pagetable_lines)
    assert all(s == D.normalize_pagetable_line(s) for s in bl.pagetable_lines)
    assert bl.last_pfn_lines
    if bl.arch == "i686":
        assert bl.pae is not None and bl.max_arch_pfn == (1 << 24 if bl.pae else 1 << 20)
    else:
        assert bl.max_arch_pfn == 1 << 34
    if row:
        assert bl.kernel_version == row["kernel_version"]
        assert len(bl.init_memory_mapping_lines) == int(row["init_memory_mapping_lines"])
        assert bl.pagetable_format == row["format"]
        usable_end = max(e.end - 1 for e in bl.e820 if e.type == E820_RAM)
        assert usable_end == int(row["max_e820_addr"], 16)
        has_1g = any(s.endswith(" page 1G") for s in bl.pagetable_lines)
        assert (bl.gb_pages or has_1g) == (row["gb_pages"] == "yes")


@needs_corpus
@pytest.mark.parametrize("path", LOGS, ids=[p.name for p in LOGS])
def test_corpus_round_trips(path):
    """The parsed tables reproduce the kernel's own lines and numbers."""
    bl = D.load_boot_log(path)
    v = bl.version_tuple
    # BIOS-e820 / Xen lines re-printed byte for byte
    logged = [ln.text for ln in bl.lines if ln.text.lstrip().startswith(bl.e820_who + ":")]
    assert E820Table(bl.e820).print_lines(bl.e820_who, v) == logged
    # the printed BIOS map is already sanitized
    assert E820Table(bl.e820).sanitize(version=v) == bl.e820
    # the e820 text parser agrees with the boot-log reader
    assert I.parse_e820_text(path.read_bytes(), path.name) == bl.e820
    # each logged edit re-printed
    by_line = {}
    for ln in bl.lines:
        by_line.setdefault(ln.lineno, []).append(ln.text)
    for ed in bl.e820_edits:
        if ed.op == "update":
            s = E.format_update_line(ed.start, ed.size, ed.old_type, ed.new_type, v)
        else:
            s = E.format_remove_line(ed.start, ed.size, ed.old_type or 0, ed.old_type is not None, v)
        assert s in by_line[ed.lineno]
    # every last_pfn line recomputed from the edited table (e820_end_pfn)
    for k, ((last, maxarch), lno) in enumerate(zip(bl.last_pfn_lines, bl.last_pfn_linenos)):
        assert E.format_last_pfn_line(last, maxarch, v) in by_line[lno]
        t = E.logged_table(bl, lno, True)
        got = t.end_of_ram_pfn(maxarch) if k == 0 else t.end_of_low_ram_pfn(maxarch)
        assert got == last, "last_pfn line %d" % k
    # user-defined and modified maps follow from the edits
    if bl.e820_user is not None:
        t = E820Table(bl.e820)
        for ed in bl.e820_edits:
            if not ed.after_user_map and ed.target == "e820":
                ed.apply(t)
        assert t.sanitize() == bl.e820_user
        assert E820Table(bl.e820_user).print_lines("user", v) == [
            ln.text for ln in bl.lines if ln.text.startswith("user:")]
    if bl.e820_modified is not None:
        assert E.logged_table(bl, bl.e820_modified_lineno, True) == bl.e820_modified


@needs_corpus
def test_corpus_index_covers_logs():
    if not INDEX:
        pytest.skip("no index.tsv")
    missing = [n for n in INDEX if not (CORPUS / n).is_file()]
    assert not missing


# ---------------------------------------------------------------------------
# the line-kind table, options of the kernel's choosing, new fields
# ---------------------------------------------------------------------------
KIND_EXAMPLES = {
    "version": ["Linux version 6.1.0-57-amd64 (debian-kernel@lists.debian.org) (gcc-12) #1 SMP"],
    "command_line": ["Command line: console=ttyS0 memblock=debug"],
    "kernel_command_line": ["Kernel command line: console=ttyS0"],
    "e820_entry": ["BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable",
                   "BIOS-e820: 0000000000000000 - 000000000009f800 (usable)", "Xen: [mem 0x0-0xfff] usable",
                   "user: [mem 0x0000000000000000-0x000000000009fbff] usable",
                   "modified: [mem 0x0000000000000000-0x0000000000000fff] reserved",
                   "[mem 0x0000000000000000-0x000000000009fbff] usable"],
    "e820_user_header": ["e820: user-defined physical RAM map:"],
    "e820_modified_header": ["modified physical RAM map:"],
    "e820_edit": ["e820: update [mem 0x00000000-0x00000fff] usable ==> reserved",
                  "e820 remove range: 00000000000a0000 - 0000000000100000 (usable)"],
    "last_pfn": ["e820: last_pfn = 0x1ffe0 max_arch_pfn = 0x400000000", "last_pfn = 0x140000 max_arch_pfn = 0x1000000"],
    "pagetable": ["init_memory_mapping: [mem 0x00000000-0x000fffff]", " [mem 0x00000000-0x000fffff] page 4k",
                  " 0000000000 - 0000200000 page 4k", "BRK [0x01fdd000, 0x01fddfff] PGTABLE",
                  "kernel direct mapping tables up to 0x37bfdfff @ [mem 0x01ffa000-0x01ffffff]",
                  "calculate_table_space_size: x", "Using GB pages for direct mapping",
                  "Failed to release memory for alloc_low_pages()", "Kernel panic - not syncing: x"],
    "ramdisk": ["RAMDISK: [mem 0x1fedf000-0x1ffdffff]", "RAMDISK: 3736f000 - 37fef6cb"],
    "initial_memory_mapped": ["initial memory mapped: [mem 0x00000000-0x01ffffff]", "initial memory mapped : 0 - 20000000"],
    "trampoline": ["Base memory trampoline at [ffff880000099000] 99000 size 24576"],
    "nx": ["NX (Execute Disable) protection: active", "Notice: NX (Execute Disable) protection missing in CPU!",
           "Using x86 segment limits to approximate NX protection"],
    "memavail": ["889MB LOWMEM available.", "4230MB HIGHMEM available."],
    "memblock_call": ["memblock_reserve: [0x0000000004400000-0x0000000004410fff] setup_arch+0x797/0xd4f",
                      "memblock_phys_alloc_range: 28672 bytes align=0x1000 from=0x0 max_addr=0x100000 x+0x1/0x2"],
    "memblock_call_": ["__memblock_free_early: [0x0000000000001000-0x0000000000001fff] x+0x1/0x2"],
    "early_res": ["#2 [0001000000 - 0001b18e00]    TEXT DATA BSS ==> [0001000000 - 0001b18e00]"],
    "memblock_dump": ["MEMBLOCK configuration:"],
    "pti": ["Kernel/User page tables isolation: enabled"],
    "cpu0": ["smpboot: CPU0: Intel(R) Core(TM) i7 CPU (family: 0x6)", "CPU0: AMD Athlon(tm) 64 Processor"],
}


class TestLineKinds:
    def test_every_kind_named_and_documented(self):
        names = [k.name for k in D.LINE_KINDS]
        assert len(set(names)) == len(names) and all(k.doc for k in D.LINE_KINDS)
        assert set(KIND_EXAMPLES) | {"memblock_dump_region"} == set(names)

    @pytest.mark.parametrize("kind", sorted(KIND_EXAMPLES))
    def test_dispatch_reaches_each_kind(self, kind):
        """A line can only be taken by the kinds its first character selects: each kind's
        ``starts`` must admit its own lines (a wrong ``starts`` would lose them)."""
        k = next(x for x in D.LINE_KINDS if x.name == kind)
        for line in KIND_EXAMPLES[kind]:
            st = line.strip()
            assert k in D._BY_FIRST.get(st[0], D._ANY_KINDS), (kind, line)
            if kind not in ("e820_entry", "e820_edit"):
                assert k.match(st), (kind, line)

    def test_each_example_taken_by_its_kind(self):
        head = "Linux version 4.4.0 (a@b) (gcc) #1\nBIOS-e820: [mem 0x0000000000000000-0x000000001fffffff] usable\n"
        bl = D.parse_boot_log(head + "MEMBLOCK configuration:\n reserved[0x0]\t[0x0000000000000000-0x0000000000000fff], "
                              "0x0000000000001000 bytes flags: 0x0\nsmpboot: CPU0: AMD x\n"
                              "Kernel/User page tables isolation: disabled on command line.\n")
        assert len(bl.memblock_dumps) == 1 and bl.memblock_dumps[0].reserved[0].end == 0x1000
        assert bl.cpu.vendor == "amd" and bl.pti is False


class TestKernelChoices:
    def test_new_options(self):
        o = D.parse_command_line("no5lvl nokaslr memblock=debug clearcpuid=pdpe1gb,la57 mitigations=off "
                                 "nopti debug_pagealloc=on nogbpages noexec=off mem=2G memmap=exactmap movable_node")
        assert o.no5lvl and o.kaslr is False and o.memblock_debug and o.clearcpuid == ["pdpe1gb", "la57"]
        assert o.mitigations == "off" and o.pti == "off" and o.debug_pagealloc is True and o.gbpages is False
        j = o.to_json()
        assert j["mem"] == "0x80000000" and j["gbpages"] is False and j["kaslr"] is False and j["memmap"] == ["exactmap"]
        assert D.parse_command_line("kaslr").kaslr is True
        assert D.parse_command_line("").to_json() == {}

    def test_cpu_facts_apart_from_choices(self):
        """nogbpages is the kernel's choice: the log's CPU facts do not change with it."""
        text = ("Linux version 6.1.0 (a@b) (gcc) #1\nCommand line: nogbpages\n"
                "BIOS-e820: [mem 0x0000000000000000-0x000000001fffffff] usable\n")
        bl = D.parse_boot_log(text)
        assert bl.options.gbpages is False and bl.cpu.gbpages is None and bl.gb_pages is False
        assert bl.command_line_lineno == 2

    def test_version_record(self):
        bl = D.parse_boot_log(LOG64, "x.log")
        assert bl.version is not None and bl.version.release == "3.14.0-foo" and bl.version.version == "3.14.0"
        assert bl.version_lineno == 1
        bl = D.parse_boot_log(LOG32, "y.log")
        assert bl.version.distro == "ubuntu" and bl.version.pae_hint is True

    def test_load_names(self, tmp_path):
        p = tmp_path / "x.log"
        p.write_text(LOG64)
        bl = D.load_boot_log(p)
        assert bl.name == "x.log" and bl.path == str(p)
