"""A boot described from artefacts (emu.boot.describe): every input derived, every guess said.

Real Debian boots (tests/data/memblock_logs: serial logs with memblock=debug), their
.configs (tests/data/debian, tests/data/i386) and their symbols (tests/data/debian:
System.map / kallsyms excerpts).  Each assumption appears when its input is missing and
disappears when it is given; artefacts that contradict each other are refused.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from emu.boot.describe import DescribeError, describe
from emu.boot.emulate import run
from emu.inputs.cpu import parse_cpu
from emu.inputs.dmesg import load_boot_log, parse_boot_log
from emu.inputs.kconfig import load_kconfig, parse_kconfig
from emu.inputs.sysmap import parse_system_map

DATA = Path(__file__).parent / "data"
LOGS = DATA / "memblock_logs"

#: log -> (config, symbols, --cpu as QEMU's -cpu was)
BOOTS = {
    "bullseye-amd64-512M-initrd.log": ("debian/config-5.10.0-46-amd64.gz", "5.10.0-46-amd64", "qemu64"),
    "bookworm-amd64-4G-gb-intel-pti.log": ("debian/config-6.1.0-57-amd64.gz", "6.1.0-57-amd64",
                                           "qemu64,vendor=GenuineIntel,+pdpe1gb"),
    "trixie-amd64-2G-la57-gb.log": ("debian/config-6.12.118+deb13-amd64.gz", "6.12.118+deb13-amd64",
                                    "qemu64,+pdpe1gb,+la57"),
    "bullseye-686-pae-512M-initrd.log": ("i386/config-5.10.0-32-686-pae.gz", "5.10.0-32-686-pae", "qemu64"),
    "bookworm-686-512M.log": ("i386/config-6.1.0-57-686.gz", "6.1.0-57-686", "qemu64"),
    "bookworm-686-pae-2G-intel-pti.log": ("i386/config-6.1.0-57-686-pae.gz", "6.1.0-57-686-pae",
                                          "qemu64,vendor=GenuineIntel"),
}


def artefacts(name):
    cfg, sym, cpu = BOOTS[name]
    sm = parse_system_map((DATA / "debian" / f"symbols-{sym}.txt").read_text(), f"symbols-{sym}.txt")
    return load_boot_log(LOGS / name), load_kconfig(DATA / cfg), sm, parse_cpu(cpu)


def fields(desc_or_result):
    return {a.field for a in desc_or_result.assumptions}


def strip(log_path, pattern):
    """The log without the lines matching ``pattern`` (an input taken away)."""
    text = "\n".join(ln for ln in Path(log_path).read_text().splitlines() if not re.search(pattern, ln))
    return parse_boot_log(text, Path(log_path).name)


@pytest.mark.parametrize("name", sorted(BOOTS))
def test_everything_given_nothing_assumed(name):
    """Log + config + symbols + the CPU as QEMU offered it: no input is assumed, and the
    emulation's own defaults are never needed."""
    log, cfg, sm, cpu = artefacts(name)
    d = describe(log, config=cfg, sysmap=sm, cpu=cpu)
    r = run(d)
    assert r.assumptions == [], [a.text() for a in r.assumptions]
    assert r.verify.ok and r.panic is None
    assert d.profile.name.count(".") == 2          # the log's upstream stable version, e.g. 6.1.192


def test_log_alone_says_what_it_lacks():
    """Without config, symbols or CPU description, each missing input is one assumption, and
    the run prints it (stderr) and lists it (--json)."""
    log = load_boot_log(LOGS / "bookworm-amd64-4G-gb-intel-pti.log")
    r = run(describe(log))
    got = fields(r)
    # the image's static tables and the root table need the symbols; the fixmap slot the config;
    # PSE/PGE are not in any log line
    assert {"swapper_pg_dir_addr", "image_tables", "kernel_link_start", "bm_pte_slot", "cpu.pse",
            "cpu.pge"} <= got, got
    # what the log shows is not assumed: BRK (reserve_brk), the image (MEMBLOCK dump), PTI (its
    # line), GB pages (its line), 4-level paging (max_arch_pfn), the version (6.1.192)
    assert not got & {"brk_base", "kernel_start", "pti", "gbpages", "la57", "profile", "kernel version"}, got


@pytest.mark.parametrize("field,remove", [
    # the BRK: reserve_brk's memblock line; without it __brk_base from the symbols plus an
    # assumed page of DMI data (only the log knows that)
    ("brk_base", r"memblock_reserve: \[0x0*4400000-"),
    # the image: the MEMBLOCK configuration dump (its reserved region below the BRK); the config
    # gives LOAD_PHYSICAL_ADDR too, as the command line has nokaslr
    ("kernel_start", r"reserved\[0x[0-9a-f]+\]\s+\[0x0*1000000-"),
    # PTI: its line, in a log that reaches mm_init; the config (PTI built in) and the CPU's
    # vendor decide it too
    ("pti", r"Kernel/User page tables isolation|\] (rcu: |NR_IRQS|Console: |Calibrating|pid_max|Dentry)"),
])
def test_each_assumption_follows_its_input(field, remove):
    path = LOGS / "bookworm-amd64-4G-gb-intel-pti.log"
    log, cfg, sm, cpu = artefacts("bookworm-amd64-4G-gb-intel-pti.log")
    full = run(describe(log, config=cfg, sysmap=sm, cpu=cpu))
    assert field not in fields(full)
    cut = strip(path, remove)
    r = run(describe(cut, sysmap=sm, cpu=cpu))
    assert field in fields(r), [a.text() for a in r.assumptions]
    r = run(describe(cut, config=cfg, sysmap=sm, cpu=cpu))
    assert getattr(r.kernel.params, field) == getattr(full.kernel.params, field)
    if field != "brk_base":
        assert field not in fields(r), [a.text() for a in r.assumptions]


@pytest.mark.parametrize("field,given", [
    ("swapper_pg_dir_addr", "sysmap"), ("image_tables", "sysmap"), ("kernel_link_start", "sysmap"),
    ("bm_pte_slot", "config"), ("debug_pagealloc", "config"), ("cpu.pse", "cpu"), ("cpu.pge", "cpu"),
])
def test_assumed_without_artefact_gone_with_it(field, given):
    log, cfg, sm, cpu = artefacts("bookworm-amd64-4G-gb-intel-pti.log")
    full = dict(config=cfg, sysmap=sm, cpu=cpu)
    less = dict(full)
    less[given] = None
    assert field in fields(run(describe(log, **less)))
    assert field not in fields(run(describe(log, **full)))


def test_log_without_its_command_line_says_so():
    """A log cut before (or captured without) its command line tells nothing of nogbpages,
    nopti, no5lvl, debug_pagealloc=: the command line is an assumption, and the decisions
    that read it say so; the RAMDISK line still gives the initrd."""
    path = LOGS / "bookworm-amd64-4G-gb-intel-pti.log"
    log, cfg, sm, cpu = artefacts("bookworm-amd64-4G-gb-intel-pti.log")
    assert "command line" not in fields(describe(log, config=cfg, sysmap=sm, cpu=cpu))
    cut = strip(path, r"(Kernel )?[Cc]ommand line:")
    assert cut.command_line is None
    d = describe(cut, config=cfg, sysmap=sm, cpu=cpu)
    assert "command line" in fields(d) and "initrd" not in fields(d), [a.text() for a in d.assumptions]


def test_no_log_says_the_command_line_and_the_cpu():
    r = run(describe())
    got = fields(r)
    assert {"e820", "profile", "command line", "initrd", "cpu.pse", "cpu.pge", "gbpages", "kernel_start",
            "brk_base", "swapper_pg_dir_addr"} <= got, got


def test_i386_log_gives_pae_and_geometry():
    """An i686 log shows PAE (max_arch_pfn); the config gives the fixmap geometry and MAXMEM."""
    log, cfg, sm, cpu = artefacts("bookworm-686-pae-2G-intel-pti.log")
    r = run(describe(log))
    got = fields(r)
    assert "pae" not in got and "fixmap_bottom" in got
    d = describe(log, config=cfg, sysmap=sm, cpu=cpu)
    assert d.params.pae is True and "fixmap_bottom" not in fields(run(d))
    assert "config-6.1.0-57-686-pae" in d.sources["fixmap_bottom"]


def test_contradictions_are_refused():
    log, cfg, sm, cpu = artefacts("bookworm-amd64-4G-gb-intel-pti.log")
    # an i386 config for an x86-64 boot
    with pytest.raises(DescribeError, match="builds an i386 kernel"):
        describe(log, config=load_kconfig(DATA / "i386/config-6.1.0-57-686-pae.gz"))
    # another release's config
    with pytest.raises(DescribeError, match="configures 5.10"):
        describe(log, config=load_kconfig(DATA / "debian/config-5.10.0-46-amd64.gz"))
    # a CPU without 1 GiB pages, where the log says 'Using GB pages for direct mapping'
    with pytest.raises(DescribeError, match="gbpages"):
        describe(log, cpu=parse_cpu("qemu64,vendor=GenuineIntel"))
    # PTI not built in, where the log shows it enabled
    import gzip
    text = gzip.decompress((DATA / "debian/config-6.1.0-57-amd64.gz").read_bytes()).decode()
    no_pti = parse_kconfig(text.replace("CONFIG_PAGE_TABLE_ISOLATION=y", "# CONFIG_PAGE_TABLE_ISOLATION is not set"),
                           "config-no-pti")
    with pytest.raises(DescribeError, match="page-table isolation"):
        describe(log, config=no_pti)
    # no 'Using GB pages' line where the config, the command line and the CPU all allow them
    nogb = strip(LOGS / "bookworm-amd64-4G-gb-intel-pti.log", "Using GB pages")
    with pytest.raises(DescribeError, match="no 'Using GB pages"):
        describe(nogb, config=cfg, cpu=cpu)
    # nogbpages is the kernel's choice, apart from the CPU's 1 GiB pages
    text = "\n".join(ln.replace("memblock=debug", "memblock=debug nogbpages") for ln in
                     (LOGS / "bookworm-amd64-4G-gb-intel-pti.log").read_text().splitlines() if "Using GB pages" not in ln)
    d = describe(parse_boot_log(text, "nogbpages.log"), config=cfg, cpu=cpu)
    assert d.params.gbpages is False and d.params.cpu.gbpages is True
    assert "nogbpages" in d.sources["gbpages"]


def test_version_without_sublevel_is_said():
    text = (LOGS / "bookworm-amd64-4G-gb-intel-pti.log").read_text()
    text = re.sub(r"Linux version .*", "Linux version 6.1.0-57-amd64 (debian-kernel@lists.debian.org) "
                  "(gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP "
                  "PREEMPT_DYNAMIC", text, count=1)
    log = parse_boot_log(text, "no-sublevel.log")
    d = describe(log)
    assert "kernel version" in fields(d) and d.profile.name == "6.1"
    # the config's header names the sublevel
    d = describe(log, config=load_kconfig(DATA / "debian/config-6.1.0-57-amd64.gz"))
    assert "kernel version" not in fields(d) and d.profile.name == "6.1.192"
