"""CPU descriptions (--cpu) and the CPU facts a boot log shows (emu.inputs.cpu)."""
from __future__ import annotations

from pathlib import Path

import pytest

from emu.errors import EmuError
from emu.inputs.cpu import CpuError, CpuFacts, parse_cpu, vendor_from_text
from emu.inputs.dmesg import load_boot_log, parse_boot_log
from emu.machine.cpu import CpuFeatures

DATA = Path(__file__).resolve().parent / "data" / "memblock_logs"


def feats(c: CpuFeatures):
    return (c.vendor, c.pse, c.pge, c.gbpages, c.nx, c.la57)


@pytest.mark.parametrize("desc,want", [
    ("intel,pse,pge,gbpages,nx,la57", ("intel", True, True, True, True, True)),
    ("intel,pse,pge", ("intel", True, True, False, False, False)),          # bare names: exactly these
    ("amd,-gbpages", ("amd", True, True, False, True, False)),              # changes to the defaults
    ("amd", ("amd", True, True, True, True, False)),
    ("AuthenticAMD,+la57", ("amd", True, True, True, True, True)),
    ("intel,pse,pge,nx,+la57,-nx", ("intel", True, True, False, False, True)),
    ("hygon,xd,pse,pge", ("hygon", True, True, False, True, False)),
    # QEMU's -cpu form (builtin_x86_defs of QEMU's target/i386/cpu.c)
    ("qemu64", ("amd", True, True, False, True, False)),
    ("qemu64,+pdpe1gb,+la57", ("amd", True, True, True, True, True)),
    ("qemu64,vendor=GenuineIntel,+pdpe1gb", ("intel", True, True, True, True, False)),
    ("kvm64,pdpe1gb=on", ("intel", True, True, True, True, False)),
    ("qemu32", ("intel", True, True, False, False, False)),
    ("kvm32,+nx", ("intel", True, True, False, True, False)),
    (" Intel , PSE , NX ", ("intel", True, False, False, True, False)),
])
def test_descriptions(desc, want):
    assert feats(parse_cpu(desc)) == want


@pytest.mark.parametrize("desc,needle", [
    ("intel,pdpe2gb", "unknown CPU feature 'pdpe2gb'"),
    ("qemu65", "unknown CPU vendor, model or feature 'qemu65'"),
    ("host", "depends on the machine QEMU runs on"),
    ("qemu64,vendor=Cyrix", "unknown CPU vendor 'Cyrix'"),
    ("intel,amd", "names a second vendor 'amd'"),
    ("intel,,nx", "has an empty item"),
    ("", "empty CPU description"),
    ("kvm64,nx=maybe", "value 'maybe' is not on/off"),
])
def test_errors(desc, needle):
    with pytest.raises(CpuError) as e:
        parse_cpu(desc)
    msg = str(e.value)
    assert needle in msg and "\n" not in msg and isinstance(e.value, EmuError)


def test_vendor_field_is_last_and_in_json():
    c = CpuFeatures(True, True, False, True)          # positional use keeps working
    assert c.vendor == "intel" and c.to_json()["vendor"] == "intel"
    assert CpuFeatures(vendor="amd").to_json() == {"pse": True, "pge": True, "gbpages": True, "nx": True,
                                                  "la57": False, "vendor": "amd"}


def test_vendor_from_print_cpu_info():
    assert vendor_from_text("AMD QEMU Virtual CPU version 2.5+ (family: 0xf, model: 0x6b, stepping: 0x1)") == "amd"
    assert vendor_from_text("Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz (family: 0x6, model: 0x8e)") == "intel"
    assert vendor_from_text("Hygon C86 3185  8-core Processor") == "hygon"
    assert vendor_from_text("QEMU Virtual CPU") is None


def test_facts_from_real_logs():
    # qemu64,vendor=GenuineIntel,+pdpe1gb on Debian 6.1: PTI on by default (Meltdown-affected vendor)
    bl = load_boot_log(DATA / "bookworm-amd64-4G-gb-intel-pti.log")
    assert bl.cpu.vendor == "intel" and bl.cpu.nx is True and bl.cpu.gbpages is True and bl.cpu.meltdown is True
    assert bl.pti is True and bl.pti_line == "Kernel/User page tables isolation: enabled"
    assert bl.la57 is False and bl.cpu.la57 is None
    assert bl.cpu.evidence["vendor"].startswith("line ") and "smpboot: CPU0: Intel" in bl.cpu.evidence["vendor"]
    # qemu64,+pdpe1gb,+la57 on 6.12: 5-level paging from max_arch_pfn, AMD: no PTI line
    bl = load_boot_log(DATA / "trixie-amd64-2G-la57-gb.log")
    assert bl.la57 is True and bl.cpu.la57 is True and bl.cpu.vendor == "amd" and bl.pti is None
    assert "max_arch_pfn = 0x10000000000" in bl.cpu.evidence["la57"]
    # a non-PAE 686 kernel on a CPU with NX: the CPU has it, the kernel cannot use it
    bl = load_boot_log(DATA / "bookworm-686-512M.log")
    assert bl.nx is False and bl.cpu.nx is True and bl.la57 is None
    feats_, assumed = bl.cpu.resolve()
    assert feats_.vendor == "amd" and feats_.nx is True
    assert set(assumed) == {"pse", "pge", "gbpages", "la57"}


def test_nx_lines():
    base = "Linux version 4.4.0 (a@b) (gcc) #1\nBIOS-e820: [mem 0x0000000000000000-0x000000001fffffff] usable\n"
    cases = {
        "NX (Execute Disable) protection: active": (True, True),
        "NX (Execute Disable) protection: disabled by kernel command line option": (False, True),
        "Notice: NX (Execute Disable) protection missing in CPU!": (False, False),
        "Notice: NX (Execute Disable) protection cannot be enabled: non-PAE kernel!": (False, True),
        "Using x86 segment limits to approximate NX protection": (False, None),
    }
    for line, (kernel, cpu) in cases.items():
        bl = parse_boot_log(base + line + "\n")
        assert (bl.nx, bl.cpu.nx) == (kernel, cpu), line


def test_pti_lines():
    base = "Linux version 4.15.0 (a@b) (gcc) #1\nBIOS-e820: [mem 0x0000000000000000-0x000000001fffffff] usable\n"
    for line, pti, meltdown in [("Kernel/User page tables isolation: enabled", True, True),
                                ("Kernel/User page tables isolation: disabled on command line.", False, True),
                                ("Kernel/User page tables isolation: force enabled on command line.", True, False),
                                ("Kernel/User page tables isolation: disabled on XEN PV.", False, None)]:
        bl = parse_boot_log(base + line + "\n")
        assert (bl.pti, bl.cpu.meltdown) == (pti, meltdown), line


def test_supported_cpus_list_is_not_the_vendor():
    text = ("Linux version 3.0.0 (a@b) (gcc) #1\nKERNEL supported cpus:\n  Intel GenuineIntel\n  AMD AuthenticAMD\n"
            "BIOS-e820: [mem 0x0000000000000000-0x000000001fffffff] usable\n")
    assert parse_boot_log(text).cpu.vendor is None


def test_resolve_and_contradictions():
    facts = CpuFacts(vendor="amd", gbpages=True, evidence={"gbpages": "line 9: Using GB pages for direct mapping",
                                                           "vendor": "line 99: smpboot: CPU0: AMD x"})
    f, assumed = facts.resolve()
    assert (f.vendor, f.gbpages) == ("amd", True) and "vendor" not in assumed and "gbpages" not in assumed
    given = parse_cpu("intel,pse,pge,nx")
    f, assumed = facts.resolve(given)
    assert f == given and assumed == []
    c = facts.contradictions(given)
    assert len(c) == 2 and "gbpages present (line 9" in c[0] and "vendor amd" in c[1]
