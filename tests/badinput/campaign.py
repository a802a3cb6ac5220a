"""A bad-input campaign over every input channel of emu.

Channels: the options of every command (``run``, ``check``, ``translate``, ``dump``, ``diff``,
``replay``, ``profiles``, ``fuzz``, ``bench``, ``oracle``: read from the argument parser
itself, so a new option is covered the day it is added), ``--param NAME=VALUE``, e820 files
(JSON and text), boot logs (mutated corpus logs, for ``run --dmesg`` and ``replay``),
``.config`` and System.map files, special files (FIFOs, devices, directories, symlink
loops), and the Python API (``emulate`` and the readers with hostile values of every type).

Each case runs in a child forked from a process that has emu imported (a few ms per case),
with ``RLIMIT_AS`` (the parent's size + ``--mem``), ``RLIMIT_CPU`` and a wall-clock timeout;
a sample also runs as a real ``python -m emu.tools.cli`` process to check the fork is
faithful.  Outcomes:

* ``rejected``: exit 2 and exactly one ``emu: error: ...`` line on stderr (besides
  ``emu: assumed ...`` lines, which name defaulted inputs) -- the expected outcome;
* ``accepted``: exit 0 or 1 without a traceback (the generated input was valid after all);
* failures, which must all be 0: ``traceback``, ``signal`` (killed by a signal we did not
  send), ``hang`` (wall or CPU time exceeded), ``memory`` (MemoryError or "out of host
  memory"), ``multiline`` (exit 2 with more than one error line or none), ``internal``
  (exit 70: an exception that is not bad input), ``other`` (any other exit code);
* ``suspicious`` (counted, not a failure): a rejection whose text looks like an internal
  message (``list.remove``, ``object has no attribute``, ``invalid literal`` ...).

API cases pass when ``emulate`` returns a result or raises an ``emu.errors.EmuError`` whose
text is one line.

Usage::

    python tests/badinput/campaign.py --count 100000 --jobs 2 --json figures.json
    python tests/badinput/campaign.py --count 300 --seed 7 --show-failures

The figures of a run (counts per outcome and per channel, time, peak memory of a case) are
printed at the end; ``--json`` writes them too.  ``run_campaign`` is the same from Python
(tests/test_hostile_campaign.py runs a short one).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")       # no threads in a process that forks
os.environ.setdefault("OMP_NUM_THREADS", "1")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]         # the checkout (its data files); emu itself is the installed package

FAILURES = ("traceback", "signal", "hang", "memory", "multiline", "internal", "other")
OUTCOMES = ("rejected", "accepted") + FAILURES
SUSPICIOUS = re.compile(r"list\.remove|object has no attribute|invalid literal|not supported between|"
                        r"'NoneType' object|index out of range|unhashable|takes \d+ positional|unexpected keyword|"
                        r"Errno|can't multiply|must be real number|cannot convert|out of bounds|"
                        r"object is not|is not subscriptable|Traceback", re.I)


def corpus_dir() -> Path:
    env = os.environ.get("EMU_CORPUS")
    if env:
        return Path(env)
    for base in (REPO.parent, REPO.parents[1] if len(REPO.parents) > 1 else REPO.parent):
        d = base / "shared" / "corpus" / "dmesg"
        if d.is_dir():
            return d
    return REPO.parent / "shared" / "corpus" / "dmesg"


# ---------------------------------------------------------------------------
# hostile values
# ---------------------------------------------------------------------------
NUMBERS = [
    "-1", "-0", "0", "1", "-4096", "4096", "0x1000", "0x10000000000000000", "18446744073709551616",
    "18446744073709551615", "0xffffffffffffffff", "0xfffffffffffff000", "0x7fffffffffffffff", "16E", "17E",
    "15E", "1GG", "1 G", "0x", "0b101", "1e9", "nan", "inf", "-inf", "1.5", "1_000", "\u0663", "\uff11\uff12",
    "0x-1", "--1", "+5", "", " ", "9" * 400, "08", "0777", "1k", "1K", "1t", "4P", "64T", "0x1p3", "True",
    "None", "[]", "{}", "${HOME}", "`id`", "%s%s%n", "\n1", "1\n2", "0x100000000000000", "0x3fffffffffff",
    "0x400000000000", "0xfffffffffffff", "0x10000000000000", "1M", "16M", "0x100000", "0xfff", "0x1001",
    "4294967296", "0xffffffff", "0xc0000000", "0xffd00000", "1G", "2G", "3G", "896M", "-0x777fffefffff",
    "0x1ffff888000100000", "0xffff888000100000", "0xff11000000000000", "\udcff", "1" * 30 + "E",
]
PROFILES = ["", "0", "2.6.30", "2.6", "2.6.31", "3.0", "seed", "SEED", "3.8", "3.9", "4.20", "6.1", "6.18",
            "6.19", "99", "99.99.99", "v4.4", "4.4.0-999-generic", "x", "../../etc/passwd", "3.13.0-24-generic",
            "5.10.223", "1" * 300, "3.-1", "4.4.4.4.4", "\udcff", " 6.1", "6.1 ", "6.1\n"]
SPECIAL_PATHS = ["/dev/zero", "/dev/null", "/dev/urandom", "/dev/full", "/", "/proc/self/mem", "/etc",
                 "/nonexistent/file", "", "-", "/proc/self/status", "/sys/firmware/memmap"]


def number(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.45:
        return rng.choice(NUMBERS)
    if r < 0.65:
        v = rng.choice([rng.randrange(-(1 << 70), 1 << 70), rng.randrange(0, 1 << 64), rng.randrange(0, 1 << 47),
                        rng.randrange(0, 1 << 33), rng.randrange(0, 1 << 20) << 12])
        return rng.choice([str(v), hex(v) if v >= 0 else "-" + hex(-v)])
    if r < 0.85:
        return f"{rng.randrange(0, 5000)}{rng.choice('KMGTPEkmgtpe')}"
    return rng.choice(["0x%x" % (rng.randrange(0, 1 << 52) & ~0xFFF), "%d" % rng.randrange(1 << 20, 1 << 36)])


def rng_range(rng: random.Random) -> str:
    a, b = number(rng), number(rng)
    return rng.choice([f"{a}-{b}", f"{a}+{b}", f"{a}-", f"-{b}", f"{a}--{b}", f"{a}+-{b}", f"{a},{b}", a,
                       f"{a}-{b}-{number(rng)}"])


def memmap_spec(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return rng.choice(["exactmap", "exactmapx", "", "@", "1G@", "@1G", "1G%2G-1+2", "1G@2G,3G", "1G@2G@3G"])
    return f"{number(rng)}{rng.choice(['@', '#', '$', '!', '%', '', '&'])}{number(rng)}"


def text_garbage(rng: random.Random) -> str:
    n = rng.choice([0, 1, 5, 40, 300, 5000])
    alphabet = rng.choice([string_printable, "0123456789abcdefx-+,@=", "\x00\x01\xff\u2028\u0085\t\r\n ",
                           "éü漢字\udcff"])
    return "".join(rng.choice(alphabet) for _ in range(n))


string_printable = "".join(chr(c) for c in range(32, 127))


def param_value(rng: random.Random, field: str, hints: Dict[str, object]) -> str:
    r = rng.random()
    if r < 0.35:
        return number(rng)
    if r < 0.5:
        return ",".join(number(rng) for _ in range(rng.choice([0, 1, 2, 3, 50])))
    if r < 0.6:
        return ",".join(rng_range(rng) for _ in range(rng.choice([1, 2, 3])))
    if r < 0.7:
        return rng.choice(["true", "false", "on", "off", "none", "None", "null", "yes", "2", "maybe", "", "x86_64",
                           "i386", "arm", "pse,nx=off", "pse=maybe", "la57,gbpages", "nope", "{'a': 1}"])
    if r < 0.8:
        return memmap_spec(rng)
    if r < 0.9:
        return "1," * rng.choice([10, 1000, 5000])
    return text_garbage(rng)


# ---------------------------------------------------------------------------
# hostile files
# ---------------------------------------------------------------------------
def e820_json(rng: random.Random) -> bytes:
    def val():
        return rng.choice([rng.randrange(-(1 << 66), 1 << 66), rng.randrange(0, 1 << 40), number(rng), None, True,
                           1.5, float("1e300"), [], {}, "0x%x" % rng.randrange(0, 1 << 64), -1, 0, 1 << 64])
    r = rng.random()
    if r < 0.5:
        entries = []
        for _ in range(rng.choice([0, 1, 3, 10, 200, 3000])):
            e = {"addr": val(), "size": val(), "type": rng.choice([val(), 1, 2, "usable", "ram", 128, 0, -1, 2 ** 40])}
            if rng.random() < 0.2:
                e.pop(rng.choice(list(e)))
            if rng.random() < 0.1:
                e[rng.choice(["x", "start", "end", ""])] = val()
            entries.append(e)
        try:
            return json.dumps(entries).encode()
        except ValueError:
            return b"[]"
    if r < 0.6:
        depth = rng.choice([100, 5000, 100000])
        return ("[" * depth + "]" * depth).encode()
    if r < 0.7:
        return json.dumps({"addr": 0, "size": 1 << 30, "type": 1}).encode()
    if r < 0.8:
        base = [{"addr": 0, "size": 0x9F000, "type": 1},
                {"addr": 0x100000, "size": rng.choice([1 << 30, 1 << 40, 1 << 45, 1 << 50, (1 << 64) - 0x100000,
                                                       rng.randrange(0, 1 << 64)]), "type": 1}]
        return json.dumps(base).encode()
    return text_garbage(rng).encode("utf-8", "surrogateescape")


def e820_text(rng: random.Random) -> bytes:
    lines = []
    for _ in range(rng.choice([0, 1, 4, 20, 500])):
        a, b = rng.randrange(0, 1 << 64), rng.randrange(0, 1 << 64)
        if rng.random() < 0.5:
            a, b = rng.randrange(0, 1 << 36) & ~0xFFF, rng.randrange(0, 1 << 36) | 0xFFF
        t = rng.choice(["usable", "reserved", "ACPI data", "ACPI NVS", "unusable", "type 20", "persistent (type 12)",
                        "garbage", "", "reserved kern", "usable usable"])
        fmt = rng.choice(["BIOS-e820: [mem {a:#018x}-{b:#018x}] {t}", "BIOS-e820: {a:016x} - {b:016x} ({t})",
                          "[mem {a:#x}-{b:#x}] {t}", "e820: [mem {a}-{b}] {t}", "BIOS-e820: [mem -{a}-{b}] {t}"])
        lines.append(fmt.format(a=a, b=b, t=t))
    if rng.random() < 0.2:
        lines.append(text_garbage(rng))
    return ("\r\n" if rng.random() < 0.1 else "\n").join(lines).encode("utf-8", "surrogateescape")


_CORPUS: List[Path] = []


def corpus_logs() -> List[Path]:
    if not _CORPUS:
        d = corpus_dir()
        _CORPUS.extend(sorted(d.glob("*.log")) if d.is_dir() else [])
    return _CORPUS


_HEX = re.compile(r"0x[0-9a-fA-F]+|\b[0-9a-fA-F]{8,16}\b|\b\d+\b")
LOG_TEMPLATES = [
    "BIOS-e820: [mem {a:#018x}-{b:#018x}] usable", "e820: update [mem {a:#010x}-{b:#010x}] usable ==> reserved",
    "e820: remove [mem {a:#010x}-{b:#010x}] usable", "Linux version {v} (x@y) #1 SMP", "BRK [{a:#010x}, {b:#010x}] PGTABLE",
    "RAMDISK: [mem {a:#010x}-{b:#010x}]", "Command line: BOOT_IMAGE=/vmlinuz mem={n} memmap={m} highmem={n}",
    "Kernel command line: mem={n} memmap={m} vmalloc={n}", "e820: last_pfn = {a:#x} max_arch_pfn = {b:#x}",
    "init_memory_mapping: [mem {a:#010x}-{b:#010x}]", " [mem {a:#010x}-{b:#010x}] page {p}",
    "initial memory mapped: [mem 0x00000000-{a:#010x}]", "{n}MB HIGHMEM available.", "{n}MB LOWMEM available.",
    "Base memory trampoline at [{a:x}] {b:x} size 24576", "x86/PAT: Configuration [0-7]: WB  WC  UC- UC  ",
    "memblock_reserve: [{a:#018x}-{b:#018x}] setup_arch+0x{n}/0x{n}", "5-level paging enabled",
]


def mutated_log(rng: random.Random) -> bytes:
    logs = corpus_logs()
    lines = logs[rng.randrange(len(logs))].read_bytes().decode("utf-8", "replace").splitlines() if logs else []
    for _ in range(rng.choice([1, 2, 4, 10])):
        op = rng.random()
        if not lines or op < 0.1:
            lines.append(rng.choice(LOG_TEMPLATES).format(
                a=rng.randrange(0, 1 << 64), b=rng.randrange(0, 1 << 64), n=number(rng), m=memmap_spec(rng),
                v=rng.choice(PROFILES + ["3.13.0-24-generic"]), p=rng.choice(["4k", "2M", "1G", "4M", "8k"])))
            continue
        i = rng.randrange(len(lines))
        if op < 0.45:
            lines[i] = _HEX.sub(lambda m: number(rng) if rng.random() < 0.3 else m.group(0), lines[i], count=3)
        elif op < 0.55:
            del lines[i]
        elif op < 0.6:
            lines.insert(i, lines[i])
        elif op < 0.7:
            lines[i:] = lines[i: i + rng.randrange(0, 5)]
        elif op < 0.8:
            lines.insert(i, rng.choice(LOG_TEMPLATES).format(
                a=rng.randrange(0, 1 << 64), b=rng.randrange(0, 1 << 64), n=number(rng), m=memmap_spec(rng),
                v=rng.choice(PROFILES), p=rng.choice(["4k", "2M", "1G", "4M"])))
        elif op < 0.9:
            lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)] + text_garbage(rng)
        else:
            lines.insert(i, "x" * rng.choice([10_000, 200_000]))
    data = "\n".join(lines).encode("utf-8", "surrogateescape")
    if rng.random() < 0.03:
        data = data[: len(data) // 2] + bytes(rng.randrange(256) for _ in range(64)) + data[len(data) // 2:]
    return data


def kconfig_text(rng: random.Random) -> bytes:
    keys = ["CONFIG_X86_PAE", "CONFIG_HIGHMEM4G", "CONFIG_PAGE_OFFSET", "CONFIG_PHYSICAL_START", "CONFIG_X86_5LEVEL",
            "CONFIG_DEBUG_PAGEALLOC", "CONFIG_RANDOMIZE_MEMORY", "CONFIG_NR_CPUS", "CONFIG_VMSPLIT_3G", "X"]
    out = ["# Linux/x86 " + rng.choice(PROFILES) + " Kernel Configuration"]
    for _ in range(rng.choice([0, 3, 30])):
        quoted = '"' + text_garbage(rng) + '"'
        out.append(f"{rng.choice(keys)}={rng.choice(['y', 'n', 'm', number(rng), quoted])}")
    if rng.random() < 0.2:
        out.append(text_garbage(rng))
    return "\n".join(out).encode("utf-8", "surrogateescape")


def sysmap_text(rng: random.Random) -> bytes:
    syms = ["_text", "_end", "init_top_pgt", "swapper_pg_dir", "level3_kernel_pgt", "__brk_base", "_brk_end",
            "bm_pte", "initial_pg_pmd", "x"]
    out = []
    for _ in range(rng.choice([0, 3, 30, 2000])):
        a = rng.choice([rng.randrange(0, 1 << 64), 0xFFFFFFFF81000000 + rng.randrange(0, 1 << 30),
                        0xC1000000 + rng.randrange(0, 1 << 26)])
        out.append(f"{a:016x} {rng.choice('TtDdBbRrAW?')} {rng.choice(syms)}")
    if rng.random() < 0.2:
        out.append(text_garbage(rng))
    return "\n".join(out).encode("utf-8", "surrogateescape")


# ---------------------------------------------------------------------------
# the kernel's build and the CPU: --config, --system-map, --cpu (and their contradictions)
# ---------------------------------------------------------------------------
DATA = REPO / "tests" / "data"
_REAL: Dict[str, List[Tuple[str, bytes]]] = {}


def real_inputs() -> Dict[str, List[Tuple[str, bytes]]]:
    """Real artefacts of the test data (name, bytes): Debian configs (gzip and text),
    symbol lists and memblock=debug boot logs of amd64, 686 and 686-pae kernels -- the
    material of mutations and of contradicting combinations."""
    if not _REAL:
        import gzip
        cfg, sym, logs = [], [], []
        for f in sorted((DATA / "debian").glob("config-*.gz")):
            raw = f.read_bytes()
            cfg.append((f.name, raw))
            cfg.append((f.name[:-3], gzip.decompress(raw)))
        for f in sorted((DATA / "kconfig").glob("config-*")):
            cfg.append((f.name, f.read_bytes()))
        for f in sorted((DATA / "debian").glob("symbols-*")):
            sym.append((f.name, f.read_bytes()))
        for f in sorted((DATA / "memblock_logs").glob("*.log")):
            logs.append((f.name, f.read_bytes()))
        _REAL.update(config=cfg, sysmap=sym, log=logs)
    return _REAL


_BOMB: List[bytes] = []


def gzip_bomb() -> bytes:
    """A gzip stream of a few hundred KiB that inflates to 256 MiB of config lines."""
    if not _BOMB:
        import zlib
        c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        chunk = b"CONFIG_X86_PAE=y\n" * 65536
        parts = [c.compress(chunk) for _ in range((256 << 20) // len(chunk))]
        _BOMB.append(b"".join(parts) + c.flush())
    return _BOMB[0]


KCONFIG_KEYS = ["X86_32", "X86_64", "X86_PAE", "HIGHMEM4G", "HIGHMEM64G", "NOHIGHMEM", "PAGE_OFFSET",
                "PHYSICAL_START", "PHYSICAL_ALIGN", "RELOCATABLE", "RANDOMIZE_BASE", "X86_5LEVEL", "PGTABLE_LEVELS",
                "DEBUG_PAGEALLOC", "DEBUG_PAGEALLOC_ENABLE_DEFAULT", "RANDOMIZE_MEMORY", "PAGE_TABLE_ISOLATION",
                "MITIGATION_PAGE_TABLE_ISOLATION", "X86_DIRECT_GBPAGES", "NR_CPUS", "MAX_IO_APICS", "VMSPLIT_3G",
                "VMSPLIT_2G", "X86_VSYSCALL_EMULATION", "KASAN", "XEN_PV", "PARAVIRT", "X86_L1_CACHE_SHIFT",
                "ACPI_APEI_GHES", "PCI_MMCONFIG", "INTEL_TXT", "X86_INTEL_MID", "DEBUG_KMAP_LOCAL", "KMAP_LOCAL",
                "PROVIDE_OHCI1394_DMA_INIT", "X86_IO_APIC", "X86_LOCAL_APIC", "HIGHMEM", "VMALLOC_RESERVE",
                "RANDOMIZE_MEMORY_PHYSICAL_PADDING", "X86_RESERVE_LOW"]


def kconfig_value(rng: random.Random) -> str:
    return rng.choice(["y", "n", "m", "", '""', '"' + text_garbage(rng)[:40].replace("\n", " ") + '"', number(rng),
                       "0x" + "f" * rng.choice([1, 8, 16, 17, 40]), "-" + number(rng), "yes", "Y", "1", "0",
                       "0xC0000000", "0x80000000", "0x40000000", "0x1000000", "0x200000", "8192", "0", "-1",
                       "99999999999999999999999", "0xB0000000", "0x78000000"])


def mutated_config(rng: random.Random, base: bytes) -> bytes:
    lines = base.decode("utf-8", "replace").splitlines()
    for _ in range(rng.choice([1, 2, 4, 10, 40])):
        op = rng.random()
        key = "CONFIG_" + rng.choice(KCONFIG_KEYS)
        if op < 0.35 or not lines:
            lines.insert(rng.randrange(len(lines) + 1), f"{key}={kconfig_value(rng)}")
        elif op < 0.5:
            lines.insert(rng.randrange(len(lines) + 1), f"# {key} is not set")
        elif op < 0.65:
            i = rng.randrange(len(lines))
            if "=" in lines[i]:
                lines[i] = lines[i].split("=", 1)[0] + "=" + kconfig_value(rng)
        elif op < 0.75:
            del lines[rng.randrange(len(lines))]
        elif op < 0.85:
            i = rng.randrange(len(lines))
            lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)] + text_garbage(rng)
        elif op < 0.9:
            lines.insert(0, "# Linux/x86 " + rng.choice(PROFILES) + " Kernel Configuration")
        elif op < 0.95:
            lines.append(key + "=" + "y" * rng.choice([10_000, 300_000]))
        else:
            lines = lines + lines
    return "\n".join(lines).encode("utf-8", "surrogateescape")


def config_file(rng: random.Random) -> object:
    """A hostile .config: mutated real ones (text or gzip), synthetic, a gzip bomb, damaged
    gzip, binary data, a sparse file far beyond the cap, a huge line."""
    import gzip
    real = real_inputs()["config"]
    r = rng.random()
    name, base = rng.choice(real) if real else ("x", b"")
    if base[:2] == b"\x1f\x8b":
        base = gzip.decompress(base)
    if r < 0.3:
        return mutated_config(rng, base)
    if r < 0.4:
        return gzip.compress(mutated_config(rng, base), 1)
    if r < 0.5:
        return kconfig_text(rng)
    if r < 0.55:
        return gzip_bomb()
    if r < 0.62:
        g = gzip.compress(base, 1)
        return rng.choice([g[: rng.randrange(2, len(g))], g + text_garbage(rng).encode("utf-8", "replace"),
                           b"\x1f\x8b" + bytes(rng.randrange(256) for _ in range(200)), g[:10] + b"\x00" * 100])
    if r < 0.67:
        return bytes(rng.randrange(256) for _ in range(rng.choice([1, 100, 70000])))
    if r < 0.72:
        return rng.choice(["sparse", "sparse-small"])
    if r < 0.77:
        return base.replace(b"\n", b"\r\n") if rng.random() < 0.5 else base.replace(b"=", b"\x00", 3)
    if r < 0.82:
        return ("CONFIG_X86_64=y\n" + "CONFIG_X86_PAE=" + "y" * (1 << 20)).encode()
    return base


def sysmap_file(rng: random.Random) -> object:
    real = real_inputs()["sysmap"]
    r = rng.random()
    if r < 0.4 and real:
        lines = rng.choice(real)[1].decode().splitlines()
        for _ in range(rng.choice([1, 2, 5])):
            i = rng.randrange(len(lines))
            parts = lines[i].split()
            op = rng.random()
            if op < 0.4 and parts:
                a = rng.choice([rng.randrange(0, 1 << 64), rng.randrange(0, 1 << 32), 0, (1 << 64) - 1,
                                rng.randrange(0, 1 << 70)])
                parts[0] = rng.choice([f"{a:016x}", f"{a:x}", f"{a:#x}", str(a), "-" + f"{a:x}", "zz" + f"{a:x}"])
            elif op < 0.6 and len(parts) > 1:
                parts[1] = rng.choice(["?", "", "TT", "x", "\x00"])
            elif op < 0.8:
                parts.append(text_garbage(rng)[:30])
            else:
                lines.insert(i, lines[i])
            lines[i] = " ".join(parts)
        if rng.random() < 0.2:
            other = rng.choice(real)[1].decode().splitlines()
            lines += other           # two kernels' symbols in one file
        return "\n".join(lines).encode("utf-8", "surrogateescape")
    if r < 0.65:
        return sysmap_text(rng)
    if r < 0.72:
        return rng.choice(["sparse", "sparse-small"])
    if r < 0.8:
        return bytes(rng.randrange(256) for _ in range(rng.choice([1, 100, 70000])))
    if r < 0.85:
        return b"ffffffff81000000 T _text\n" * 2_000_000       # 50 MiB of one symbol
    return real_inputs()["config"][0][1] if real_inputs()["config"] else b""


CPU_WORDS = sorted(["pse", "pge", "gbpages", "pdpe1gb", "page1gb", "1gb", "nx", "xd", "la57", "intel", "amd", "hygon",
                    "centaur", "zhaoxin", "genuineintel", "authenticamd", "qemu64", "kvm64", "qemu32", "kvm32", "host",
                    "max", "base", "vendor=intel", "vendor=via", "pse=on", "pse=off", "nx=maybe", "la57=1",
                    "gbpages=0", "fpu", "sse2", "avx512f", "PSE", "Intel"])


def cpu_text(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.7:
        words = [rng.choice(CPU_WORDS) for _ in range(rng.choice([1, 2, 3, 5, 8]))]
        words = [rng.choice(["", "+", "-", "", "!", "~"]) + w if i else w for i, w in enumerate(words)]
        return ",".join(words)
    if r < 0.8:
        return rng.choice(["", ",", ",,", " ", "qemu64,", ",pse", "intel,amd", "qemu64,qemu32", "-pse,+pse",
                           "pse,-pse", "la57,-la57", "+", "-", "=", "vendor=", "qemu64,+la57,-pse,-pge,-nx"])
    if r < 0.9:
        return ",".join(rng.choice(CPU_WORDS) for _ in range(rng.choice([100, 5000])))
    return text_garbage(rng)[:300]


#: real (log, config, symbols, cpu, flags) combinations that contradict one another
def contradicting(rng: random.Random, files: Dict[str, object]) -> List[str]:
    """Real artefacts of different kernels or machines together: an amd64 log with a 686-pae
    config, a PAE log with a non-PAE config or symbols, a 5-level log with a CPU without LA57,
    a GB-pages log with -gbpages, a 32-bit config with --la57 ..."""
    R = real_inputs()
    argv: List[str] = []
    log_name, log = rng.choice(R["log"])
    files["boot.log"] = log if rng.random() < 0.8 else mutated_log(rng)
    use_log = rng.random() < 0.8
    if use_log:
        argv += ["--dmesg", "boot.log"]
    cfg_name, cfg = rng.choice(R["config"])
    if rng.random() < 0.5:
        cfg = re.sub(rb"CONFIG_X86_PAE=y", b"# CONFIG_X86_PAE is not set", cfg) if b"X86_PAE=y" in cfg else cfg + \
            b"\nCONFIG_X86_PAE=y\n"
    if rng.random() < 0.3:
        cfg = cfg + rng.choice([b"\nCONFIG_X86_32=y\n", b"\nCONFIG_X86_64=y\n", b"\n# CONFIG_X86_5LEVEL is not set\n",
                                b"\nCONFIG_DEBUG_PAGEALLOC=y\nCONFIG_DEBUG_PAGEALLOC_ENABLE_DEFAULT=y\n",
                                b"\nCONFIG_PAGE_OFFSET=0x80000000\n", b"\nCONFIG_PHYSICAL_START=0x40000000\n",
                                b"\n# CONFIG_X86_DIRECT_GBPAGES is not set\n", b"\nCONFIG_PGTABLE_LEVELS=5\n"])
    if rng.random() < 0.8:
        files["config"] = cfg
        argv += ["--config", "config"]
    if rng.random() < 0.7:
        files["System.map"] = rng.choice(R["sysmap"])[1]
        argv += ["--system-map", "System.map"]
    if rng.random() < 0.6:
        argv += ["--cpu", rng.choice(["qemu64", "qemu64,-la57", "intel,-gbpages", "amd,+la57", "qemu32", "kvm64,+pdpe1gb",
                                      "intel,pse,pge", "-pse", "qemu64,+la57,+pdpe1gb", "intel,-nx", cpu_text(rng)])]
    for _ in range(rng.choice([0, 1, 2])):
        argv += rng.choice([["--arch", rng.choice(["x86_64", "i386-pae", "i386"])], ["--la57"], ["--no-pse"],
                            ["--gbpages"], ["--no-gbpages"], ["--pti"], ["--debug-pagealloc"],
                            ["--profile", rng.choice(["6.1", "5.10", "3.13", "2.6.31", "6.12", "4.20"])],
                            ["--param", rng.choice(["pae=False", "la57=True", "arch=i386", "page_offset_32=0x80000000",
                                                    "x86_5level_config=False", "brk_end=0x1000",
                                                    "kernel_start=0x40000000", "randomize_memory=True"])]])
    if not use_log and rng.random() < 0.5:
        files["m.json"] = e820_json(rng)
        argv += ["--e820", "m.json"]
    return argv


#: a bad place for a picture or a dump
def bad_output(rng: random.Random, files: Dict[str, object]) -> str:
    r = rng.random()
    if r < 0.5:
        return rng.choice(["/dev/full", "/proc/self/x.png", "/nonexistent/dir/x.png", "/", ".", "", "dir.png",
                           "x.jpeg", "x", "x.PNG", "x.png/", "noperm/x.png", "/proc/version", "x" * 300 + ".png",
                           "-x.png", "x.svgz", "x.pdf", "x.eps", "fifo.png", "loop.png", "/dev/null", "~/x.png",
                           "x.png\x00y" if rng.random() < 0.1 else "x..png", "nl\nname.png"])
    if r < 0.7:
        files["dir.png"] = "dir"
        return "dir.png"
    if r < 0.8:
        files["noperm"] = "noperm-dir"
        return "noperm/x.png"
    if r < 0.9:
        files["fifo.png"] = "fifo"
        return "fifo.png"
    return "out.png"


def plot_case(rng: random.Random, index: int) -> Case:
    files: Dict[str, object] = {}
    kind = rng.choice(["run", "replay", "diff", "plot"])
    out = bad_output(rng, files)
    if kind == "run":
        argv = ["run", "--plot", out]
    elif kind == "replay":
        logs = corpus_logs()
        files["b.log"] = logs[rng.randrange(len(logs))].read_bytes() if logs else b""
        argv = ["replay", "b.log", "--plot", out] + (["b.log"] if rng.random() < 0.2 else [])
    elif kind == "diff":
        argv = ["diff", "--profile", "3.13", "--profile", "4.1", "--plot", out]
        if rng.random() < 0.5:
            argv += [rng.choice(["--context", "--width"]), number(rng)]
    else:
        argv = ["plot", out] + [x for _ in range(rng.choice([0, 1, 2, 3]))
                                for x in ("--profile", rng.choice(PROFILES + ["6.1", "3.13"]))]
    if rng.random() < 0.3:
        argv += ["--max-memory", rng.choice(["64M", "1M", number(rng)])]
    return Case(index, "plot", argv, files)


def artefact_case(rng: random.Random, index: int) -> Case:
    """--config / --system-map / --cpu on every command that takes them, alone (hostile
    contents and special files) or as real artefacts that contradict one another."""
    files: Dict[str, object] = {}
    cmd = rng.choice(["run", "run", "check", "dump", "translate", "diff", "replay", "plot"])
    argv = [cmd]
    if cmd == "replay":
        logs = real_inputs()["log"]
        files["r.log"] = rng.choice(logs)[1] if rng.random() < 0.7 else mutated_log(rng)
        argv.append("r.log")
    elif cmd == "translate":
        argv.append(rng.choice(["0xffff888000100000", "0xc0100000", "0xffffffff81000000"]))
    elif cmd == "dump":
        argv.append("outdir")
    elif cmd == "plot":
        argv.append("out.png")
    if rng.random() < 0.4:
        extra = contradicting(rng, files)
        if cmd == "replay":
            extra = [a for a in extra if a not in ("--dmesg", "boot.log", "--e820", "m.json")]
            extra = [a for i, a in enumerate(extra) if not (extra[i - 1:i] == ["--arch"] or a == "--arch")
                     and a not in ("--la57", "--no-pse", "--pti") and not (extra[i - 1:i] == ["--param"] and False)]
        argv += extra
    else:
        for opt in rng.sample(["--config", "--system-map", "--cpu"], rng.choice([1, 1, 2, 3])):
            if opt == "--cpu":
                argv += ["--cpu", cpu_text(rng)]
                continue
            r = rng.random()
            if r < 0.12:
                argv += [opt, rng.choice(SPECIAL_PATHS + ["/proc/config.gz", "/proc/kallsyms", "/boot"])]
                continue
            if r < 0.2:
                kind = rng.choice(["fifo", "dir", "loop", "dangling", "noperm"])
                files[kind] = kind
                argv += [opt, kind]
                continue
            name = "cfg" if opt == "--config" else "map"
            files[name] = config_file(rng) if opt == "--config" else sysmap_file(rng)
            argv += [opt, name]
    if cmd in ("run", "check", "translate", "dump") and rng.random() < 0.3:
        argv += ["--max-memory", "256M"]
    if cmd == "diff" and rng.random() < 0.5:
        argv += ["--profile", "3.13", "--profile", "6.1"]
    return Case(index, "artefacts", argv, files)


#: fuzz values that stay cheap when valid (at most a few maps, one or two workers)
def fuzz_case(rng: random.Random, index: int) -> Case:
    files: Dict[str, object] = {}
    argv = ["fuzz", "--out", rng.choice(["out", "out", "", "/proc/x", "/dev/null", "file", "dir", "noperm/sub"])]
    if argv[-1] == "file":
        files["file"] = b"x"
    elif argv[-1] == "dir":
        files["dir"] = "dir"
    elif argv[-1].startswith("noperm"):
        files["noperm"] = "noperm-dir"

    def h(sane: List[str], bad: List[str]) -> str:
        return rng.choice(sane) if rng.random() < 0.5 else rng.choice(bad)
    # (a valid --count or --seconds is asked for: a large one would run for as long as it says)
    bad_n = ["0", "-1", "nan", "inf", "-inf", "x", "", "0x", "1.5", "1_0", "\u0663", " 1", "0b1", "--1", "1e-400",
             "-0", "0x-1", "1e400"]
    limit = rng.random()
    if limit < 0.45:
        argv += ["--count", h(["1", "2", "0x2", "3"], bad_n + ["1e9"])]
    elif limit < 0.9:
        argv += ["--seconds", h(["0.5", "1", "1e-9", "0.001"], bad_n)]
    else:
        argv += ["--count", "1", "--seconds", "1"]          # mutually exclusive
    for _ in range(rng.choice([0, 1, 2, 3, 4])):
        opt = rng.choice(["--jobs", "--scheduler", "--backend", "--modes", "--bias", "--families", "--max-ram",
                          "--reference", "--profile", "--seed", "--resume", "--movable-node", "--json", "-j"])
        if opt in ("--jobs", "-j"):
            argv += [opt, h(["1", "2"], bad_n + ["4097", "4096000", "99999999999999999999"])]
        elif opt == "--scheduler":
            argv += [opt, rng.choice(["", "tcp://", "tcp://127.0.0.1:1", "x", "tcp://[::1", "tcp://host:99999",
                                      "inproc://x", text_garbage(rng)[:40]])]
        elif opt == "--backend":
            argv += [opt, rng.choice(["inline", "pool", "dask", "", "thread", "DASK", "inline "])]
        elif opt == "--modes":
            argv += [opt, rng.choice(["x86_64", "i386-pae", "i386", "x86_64,i386", "la57", "", ",", "x86_64,,i386",
                                      "nope", "x86_64-la57", "all", text_garbage(rng)[:20]])]
        elif opt == "--bias":
            argv += [opt, h(["0", "0.5", "1"], ["nan", "-0.1", "1.01", "inf", "x", "", "1e-400", "-0"])]
        elif opt == "--families":
            argv += [opt, rng.choice(["", ",", "nope", "random", "random,nope", text_garbage(rng)[:20]])]
        elif opt == "--max-ram":
            argv += [opt, h(["64M", "1G", "4G"], ["0", "-1", "63M", "1E", "16E", "17E", "1GG", "", "nan", "0x",
                                                  "99999999999999999999999999"])]
        elif opt == "--reference":
            argv += [opt, rng.choice(PROFILES + ["none", "auto", "6.1"])]
        elif opt == "--profile":
            argv += [opt, rng.choice(PROFILES + ["6.1", "3.13", "seed"])]
        elif opt == "--seed":
            argv += [opt, rng.choice(["0", "-1", "1" * 400, "x", "0x10", "1e3", str(1 << 64)])]
        else:
            argv.append(opt)
    if "--resume" in argv and rng.random() < 0.5:
        files["out"] = "dir"
        files["out/state.json"] = rng.choice([b"", b"{}", b"[]", b"{\"next_index\": -1}", b"\x00" * 10,
                                              b"{\"next_index\": \"x\", \"profile\": 5}", e820_json(rng),
                                              json.dumps({"next_index": 1 << 70, "seed": "a"}).encode()])
    return Case(index, "fuzz", argv, files)


def oracle_case(rng: random.Random, index: int) -> Case:
    """``emu oracle`` with hostile options; the child stubs out QEMU, the network and apt
    (see :func:`_stub_oracle`): what is validated before the boot is what is tried."""
    files: Dict[str, object] = {}
    sub = rng.choice(["run", "run", "matrix", "fetch"])
    argv = ["oracle", sub]
    opts = {"fetch": ["--release", "--flavour", "--package", "--refresh", "--json"],
            "run": ["--kernel", "--symbols", "--config", "--release", "--flavour", "--profile", "--set", "--inputs",
                    "--strict", "--timeout", "--e820", "--mem", "--cpu", "--append", "--serial", "--json"],
            "matrix": ["--kernel", "--symbols", "--config", "--release", "--flavour", "--profile", "--set",
                       "--inputs", "--strict", "--timeout", "--only", "--list", "--json", "-v", "-j", "--jobs",
                       "--scheduler"]}[sub]
    for opt in rng.sample(opts, min(len(opts), rng.choice([1, 2, 3, 4]))):
        if opt in ("--refresh", "--json", "--strict", "--list", "-v"):
            argv.append(opt)
        elif opt == "--release":
            argv += [opt, rng.choice(["5.10", "6.1", "6.12", "all", "", "7.0", "6.1,", "5.10,6.1,x", "bookworm"])]
        elif opt == "--flavour":
            argv += [opt, rng.choice(["amd64", "686-pae", "686", "cloud-amd64", "all", "", "arm64", "amd64,,686"])]
        elif opt == "--package":
            argv += [opt, rng.choice(["linux-image-6.1.0-57-amd64", "", "../../x", "x" * 300, "a;rm -rf /"])]
        elif opt in ("--kernel", "--symbols", "--config", "--e820", "--serial"):
            r = rng.random()
            if r < 0.3:
                argv += [opt, rng.choice(SPECIAL_PATHS)]
            elif opt == "--serial":
                argv += [opt, bad_output(rng, files)]
            else:
                name = opt.strip("-")
                files[name] = {"--kernel": lambda: bytes(rng.randrange(256) for _ in range(rng.choice([0, 512, 4096]))),
                               "--symbols": lambda: sysmap_file(rng), "--config": lambda: config_file(rng),
                               "--e820": lambda: e820_json(rng)}[opt]()
                argv += [opt, name]
        elif opt == "--profile":
            argv += [opt, rng.choice(PROFILES + ["auto", "6.1"])]
        elif opt == "--set":
            argv += [opt, rng.choice(["real_end_check_return=True", "nosuch=1", "x", "=", "scheme=5",
                                      "max_physmem_bits=-1", "name=[1,2]", "__class__=1", "pgt_buf_pages=1e400",
                                      "max_physmem_bits=" + "9" * 500, "la57_supported=" + "(" * 200 + ")" * 200])]
        elif opt == "--inputs":
            argv += [opt, rng.choice(["kernel", "log", "", "both"])]
        elif opt == "--timeout":
            argv += [opt, rng.choice(["nan", "inf", "-1", "0", "1e400", "x", "", "600", "1e-300"])]
        elif opt == "--mem":
            argv += [opt, rng.choice([number(rng), "512M", "0", "-1", "16E", "1GG"])]
        elif opt == "--cpu":
            argv += [opt, cpu_text(rng)]
        elif opt == "--append":
            argv += [opt, rng.choice(["", "mem=1G", "x" * 5000, "memmap=" + memmap_spec(rng), "\x00", "a\nb"])]
        elif opt == "--only":
            argv += [opt, rng.choice(["", ",", "512M", "nope", "512M,nope", "x" * 500])]
        elif opt in ("-j", "--jobs"):
            argv += [opt, rng.choice(["1", "2", "0", "-1", "257", "4096", "1e3", "", "x", "99999999999999999999"])]
        elif opt == "--scheduler":
            argv += [opt, rng.choice(["", "tcp://", "x", "tcp://[::1", "tcp://host:99999", "inproc://x",
                                      text_garbage(rng)[:40]])]
    return Case(index, "oracle", argv, files)


# ---------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------
@dataclass
class Case:
    index: int
    channel: str
    argv: List[str] = field(default_factory=list)
    #: files to create in the case's directory: name -> bytes, or a special kind
    files: Dict[str, object] = field(default_factory=dict)
    #: API cases: what the child calls (a JSON-able spec)
    api: Optional[dict] = None

    def describe(self) -> str:
        if self.api is not None:
            return f"[{self.channel}] api {json.dumps(self.api, default=repr)[:400]}"
        return f"[{self.channel}] emu " + " ".join(repr(a) if (" " in a or not a) else a for a in self.argv)[:400]


def cli_commands():
    """(command path, parser) for every command and subcommand, from emu's parser."""
    from emu.tools.cli import build_parser
    out = []

    def walk(path, p):
        subs = [a for a in p._actions if a.__class__.__name__ == "_SubParsersAction"]
        if not subs:
            out.append((path, p))
            return
        for name, sp in subs[0].choices.items():
            walk(path + [name], sp)
    walk([], build_parser())
    return out


_COMMANDS: list = []


def commands():
    if not _COMMANDS:
        _COMMANDS.extend(cli_commands())
    return _COMMANDS


#: commands that run for minutes or reach the network when their input is valid: every case
#: of theirs carries one value that is invalid by construction
ALWAYS_INVALID = {("bench",)}
#: commands whose cases are made by their own generator (bounded when valid, QEMU stubbed out)
OWN_GENERATOR = {("fuzz",): "fuzz_case", ("oracle", "fetch"): "oracle_case", ("oracle", "run"): "oracle_case",
                 ("oracle", "matrix"): "oracle_case"}


def file_arg(rng: random.Random, files: Dict[str, object], kind: str) -> str:
    """A path for a FILE/LOG/DIR option: a hostile file made in the case's directory, a
    special file, or a path that cannot be."""
    r = rng.random()
    if r < 0.12:
        return rng.choice(SPECIAL_PATHS)
    if r < 0.2:
        name = rng.choice(["fifo", "dir", "loop", "dangling", "long", "nl\nname", "noperm"])
        files[name] = {"fifo": "fifo", "dir": "dir", "loop": "loop", "dangling": "dangling", "long": "long",
                       "nl\nname": b"", "noperm": "noperm"}[name]
        if name == "long":
            return "x" * 5000
        return name
    name = f"in{len(files)}"
    if kind == "dmesg" or (kind == "any" and r < 0.6):
        files[name] = mutated_log(rng)
    elif kind == "config":
        files[name] = config_file(rng)
    elif kind == "sysmap":
        files[name] = sysmap_file(rng)
    else:
        files[name] = e820_json(rng) if rng.random() < 0.6 else e820_text(rng)
    return name


def options_file(rng: random.Random, log_names: List[str]) -> bytes:
    """A hostile ``emu replay --options`` file (the format of tests/corpus_options.json)."""
    from emu.kernel.validate import param_types
    names = sorted(param_types())
    keys = ["profile", "debug_pagealloc", "gbpages", "params", "config", "cpu", "nosuch", "", "pure", "system_map"]

    def entry():
        opts = {rng.choice(keys): repr_value(api_value(rng)) for _ in range(rng.choice([0, 1, 2, 3]))}
        if rng.random() < 0.4:
            opts["params"] = {rng.choice(names + ["nosuch"]): repr_value(api_value(rng)) for _ in range(rng.choice([1, 2]))}
        if rng.random() < 0.3:
            opts[rng.choice(["profile", "cpu"])] = rng.choice(PROFILES + ["qemu64,-la57", cpu_text(rng)])
        return rng.choice([{"options": opts, "reason": "x"}, {"options": opts}, opts, [], None, "x", {"reason": 1}])
    r = rng.random()
    if r < 0.6:
        doc = {rng.choice(log_names + ["other.log", "", "_comment"]): entry() for _ in range(rng.choice([1, 2, 5]))}
        try:
            return json.dumps(doc, default=repr).encode()
        except (ValueError, TypeError):
            return b"{}"
    if r < 0.7:
        return ("{\"a\": " * 50000 + "1" + "}" * 50000).encode()
    if r < 0.8:
        return rng.choice([b"[]", b"null", b"1", b"", b"{", b"\x00\x01", b'{"a": {"options": {"params": {"brk_end": -1}}}}'])
    return text_garbage(rng).encode("utf-8", "surrogateescape")


def option_value(rng: random.Random, action, files: Dict[str, object]) -> Optional[str]:
    """A value for ``action`` (None for a flag): sane half the time, hostile otherwise."""
    if action.nargs == 0:
        return None
    tname = getattr(action.type, "__name__", "")
    meta = str(action.metavar or action.dest).upper()
    hostile = rng.random() < 0.6
    if action.choices and not isinstance(action.choices, dict):
        if hostile:
            return rng.choice(["", "nonsense", "X86_64", "i386 ", "raw\n", text_garbage(rng)[:20]])
        return rng.choice(list(action.choices))
    if tname == "NAME=VALUE" or action.dest == "param":
        from emu.kernel.validate import param_types
        hints = param_types()
        names = sorted(hints)
        name = rng.choice(names + ["", "nosuch", "kernel-start", "CPU", "__class__", "cpu.pse"]) if hostile \
            else rng.choice(names)
        sep = rng.choice(["=", "=", "=", ":", ""]) if hostile else "="
        return f"{name}{sep}{param_value(rng, name, hints)}"
    if tname in ("range",):
        return rng_range(rng) if hostile else rng.choice(["0x2000000-0x3000000", "16M+4M", "0x40000000-0x40001000"])
    if tname == "memmap":
        return memmap_spec(rng) if hostile else rng.choice(["1G@4G", "exactmap", "2G", "64M$0x10000000"])
    if tname in ("address", "size", "width", "int", "float") or meta in ("SIZE", "ADDR", "VA", "N", "J", "X", "S",
                                                                         "SECONDS"):
        if not hostile:
            return rng.choice({"address": ["0x3000000", "0x4000000", "0xffff888000100000", "16M"],
                               "width": ["40", "80"], "int": ["1", "0", "3"], "float": ["0.5", "1"]}.get(
                tname, ["64M", "1G", "0x100000"]))
        return number(rng)
    if action.dest == "options":
        if hostile and rng.random() < 0.3:
            return file_arg(rng, files, "any")
        files["opts.json"] = options_file(rng, [n for n in files if n.endswith(".log")] + ["in0", "in1", "r.log"])
        return "opts.json"
    if action.dest == "cpu":
        return cpu_text(rng) if hostile else rng.choice(["qemu64", "intel,pse,pge,gbpages,nx", "amd,-gbpages"])
    if action.dest == "plot" or (action.dest == "output" and meta == "FILE"):
        return bad_output(rng, files) if hostile else "out.png"
    if "PROFILE" in meta or "VERSION" in meta or action.dest in ("profile", "reference", "version"):
        return rng.choice(PROFILES) if hostile else rng.choice(["3.13", "6.1", "4.20", "seed", "2.6.31"])
    if meta in ("FILE", "LOG", "DIR", "BZIMAGE", "SERIAL", "LOGS") or action.dest in (
            "e820", "dmesg", "logs", "dir", "out", "symbols", "config", "kernel", "serial", "inputs_file",
            "system_map"):
        kind = {"dmesg": "dmesg", "logs": "dmesg", "symbols": "sysmap", "config": "config",
                "system_map": "sysmap"}.get(action.dest, "any")
        if action.dest in ("dir", "out"):
            return rng.choice(["outdir", "in0/sub", "/proc/x", "/dev/null", "", "."]) if hostile else "outdir"
        return file_arg(rng, files, kind)
    if hostile:
        return rng.choice([number(rng), text_garbage(rng)[:200], ",".join(text_garbage(rng)[:5] for _ in range(3))])
    return rng.choice(["write", "a,b", "1", "512M,6G-gb"])


def cli_case(rng: random.Random, index: int, channel: str) -> Case:
    cmds = commands()
    weights = {"run": 6, "check": 3, "translate": 3, "dump": 3, "diff": 2, "replay": 4, "profiles": 1}
    if channel in ("param", "e820", "dmesg", "files"):
        pick = rng.choice(["run", "check", "translate", "replay"] if channel == "param"
                          else ["run", "check", "dump", "translate"])
        path, parser = next(c for c in cmds if c[0] == [pick])
    elif channel == "replay":
        path, parser = next(c for c in cmds if c[0] == ["replay"])
    else:
        path, parser = rng.choices(cmds, weights=[weights.get(c[0][0], 1) for c in cmds])[0]
        if tuple(path) in OWN_GENERATOR:
            case = globals()[OWN_GENERATOR[tuple(path)]](rng, index)
            case.channel = channel
            return case
    files: Dict[str, object] = {}
    argv = list(path)
    actions = [a for a in parser._actions if a.dest not in ("help", "version") and a.__class__.__name__ not in (
        "_HelpAction", "_VersionAction")]
    optional = [a for a in actions if a.option_strings]
    positional = [a for a in actions if not a.option_strings]
    chosen = rng.sample(optional, min(len(optional), rng.choice([0, 1, 1, 2, 3, 5])))
    if channel == "param":
        chosen = [a for a in optional if a.dest == "param"] * rng.choice([1, 2, 3])
    if channel == "e820":
        chosen = [a for a in optional if a.dest == "e820"] + chosen[:1]
    if channel == "dmesg":
        chosen = [a for a in optional if a.dest == "dmesg"] + chosen[:1]
    for a in chosen:
        v = option_value(rng, a, files)
        opt = rng.choice(a.option_strings)
        if v is None:
            argv.append(opt)
        elif rng.random() < 0.15 and opt.startswith("--"):
            argv.append(f"{opt}={v}")
        else:
            argv += [opt, v]
    if channel in ("e820", "dmesg") and "--max-memory" not in argv and rng.random() < 0.5:
        argv += ["--max-memory", rng.choice(["64M", "256M", "1G"])]
    for a in positional:
        if a.nargs in ("+", "*") or a.nargs is None or a.nargs == "?":
            n = {"+": rng.choice([1, 1, 2, 3]), "*": rng.choice([0, 1, 2]), "?": rng.choice([0, 1]), None: 1}[a.nargs]
            if channel == "replay" and a.dest == "logs":
                n = max(n, 1)
            for _ in range(n):
                argv.append(option_value(rng, a, files) or "x")
    if rng.random() < 0.05:
        argv.insert(rng.randrange(1, len(argv) + 1), rng.choice(["--nosuch", "-x", "--", "--json=1", "--e820"]))
    if tuple(path) in ALWAYS_INVALID:
        argv.insert(len(path), rng.choice(["--nosuch-option", "--only=nonsense" if path == ["bench"] else "--x"]))
    return Case(index, channel, argv, files)


#: BootParams fields and hostile Python values for them (API channel)
def api_value(rng: random.Random):
    return rng.choice([
        -1, 0, 1, 1 << 64, 1 << 70, -(1 << 64), 0x1000, 0x1000001, 1 << 46, (1 << 46) - 4096, 1 << 52, 2 ** 32,
        1.5, float("nan"), "0x1000", "", None, True, False, [], [1], [1, 2], [1, 2, 3], (1, 2), ((1, 2),), [(1, 0)],
        [(-1, 5)], {}, {"a": 1}, {"level3_kernel_pgt": 0x2000000}, {"bogus": 1}, object(), b"\x00", "x86_64", "i386",
        "arm", ["1G@4G"], ["16E@0"], ["-1"], ["exactmap"], 3 + 4j,
    ])


def api_case(rng: random.Random, index: int) -> Case:
    from emu.kernel.validate import param_types
    names = sorted(param_types())
    spec: dict = {"fn": rng.choice(["emulate"] * 6 + ["get_profile", "parse_e820_json", "parse_boot_log",
                                                       "parse_kconfig", "parse_system_map", "translate",
                                                       "replay_options", "parse_cpu"])}
    if spec["fn"] == "emulate":
        entries = [[rng.choice([0, 0x100000, rng.randrange(-(1 << 65), 1 << 65), rng.randrange(0, 1 << 47)]),
                    rng.choice([0x9F000, 1 << 30, rng.randrange(-(1 << 65), 1 << 66), 0, rng.randrange(1, 1 << 44)]),
                    rng.choice([1, 1, 2, 128, 0, -1, 1 << 33, 12])] for _ in range(rng.choice([0, 1, 2, 3, 8]))]
        spec["e820"] = rng.choice([entries] * 8 + ["list-of-dicts", "none", "string"])
        spec["profile"] = rng.choice(PROFILES + ["6.1", "3.13", "4.20"] * 3 + ["<int>", "<none>"])
        spec["params"] = {rng.choice(names): repr_value(api_value(rng)) for _ in range(rng.choice([0, 1, 2, 3]))}
        if rng.random() < 0.3:
            spec["params"].update({"arch": rng.choice(["i386", "x86_64"]), "pae": rng.choice([True, False])})
        spec["max_memory"] = rng.choice([None, None, 1 << 30, 0, -1, 1, 4096, 1 << 70, "1G", 1.5, True])
        spec["engine"] = rng.choice([None, None, "cython", "python", "fortran", 5])
        spec["until"] = rng.choice(["init_mem_mapping"] * 6 + ["paging_init", "nowhere", None])
        spec["check"] = rng.choice([True, False])
    elif spec["fn"] == "get_profile":
        spec["arg"] = rng.choice(PROFILES)
    elif spec["fn"] == "parse_e820_json":
        spec["arg"] = e820_json(rng).decode("utf-8", "surrogateescape")
    elif spec["fn"] == "parse_boot_log":
        spec["arg"] = mutated_log(rng).decode("utf-8", "surrogateescape")
    elif spec["fn"] == "parse_kconfig":
        spec["arg"] = kconfig_text(rng).decode("utf-8", "surrogateescape")
    elif spec["fn"] == "parse_system_map":
        spec["arg"] = sysmap_text(rng).decode("utf-8", "surrogateescape")
    elif spec["fn"] == "replay_options":
        keys = ["profile", "debug_pagealloc", "gbpages", "params", "why", "config", "cpu", "nosuch", "", "pure"]
        spec["arg"] = rng.choice([{rng.choice(keys): repr_value(api_value(rng)) for _ in range(rng.choice([0, 1, 2, 4]))},
                                  repr_value(api_value(rng)),
                                  {"params": {rng.choice(names + ["nosuch"]): repr_value(api_value(rng))}}])
    elif spec["fn"] == "parse_cpu":
        spec["arg"] = rng.choice([cpu_text(rng)] * 4 + [repr_value(api_value(rng))])
    else:
        spec["vas"] = rng.choice([[-1], [1 << 64], [0xFFFF888000100000], "x", [1.5], [], [0] * 5, None, [[1, 2]]])
        spec["access"] = rng.choice(["r", "w", "rwxu", "q", "", 7, -1, None])
    return Case(index, "api", api=spec)


def repr_value(v):
    """A JSON-able stand-in for a hostile Python value (rebuilt in the child)."""
    if isinstance(v, float) and v != v:
        return {"__": "nan"}
    if isinstance(v, complex):
        return {"__": "complex"}
    if isinstance(v, bytes):
        return {"__": "bytes"}
    if isinstance(v, tuple):
        return {"__": "tuple", "v": [repr_value(x) for x in v]}
    if isinstance(v, list):
        return [repr_value(x) for x in v]
    if isinstance(v, dict):
        return {"__": "dict", "v": {k: repr_value(x) for k, x in v.items()}}
    if type(v) is object:
        return {"__": "object"}
    return v


def unrepr(v):
    if isinstance(v, list):
        return [unrepr(x) for x in v]
    if isinstance(v, dict) and "__" in v:
        kind = v["__"]
        return {"nan": float("nan"), "complex": 3 + 4j, "bytes": b"\x00", "object": object()}.get(kind) if kind not in (
            "tuple", "dict") else (tuple(unrepr(x) for x in v["v"]) if kind == "tuple" else
                                   {k: unrepr(x) for k, x in v["v"].items()})
    return v


CHANNEL_WEIGHTS = {"cli": 24, "param": 12, "e820": 12, "dmesg": 8, "replay": 7, "files": 6, "api": 12,
                   "artefacts": 12, "plot": 4, "fuzz": 4, "oracle": 4}
#: channels with their own case generator
CHANNEL_CASES = {"artefacts": "artefact_case", "plot": "plot_case", "fuzz": "fuzz_case", "oracle": "oracle_case"}


def make_case(seed: int, index: int, channels: Optional[List[str]] = None) -> Case:
    rng = random.Random(f"{seed}:{index}")
    chans = channels or list(CHANNEL_WEIGHTS)
    channel = rng.choices(chans, weights=[CHANNEL_WEIGHTS[c] for c in chans])[0]
    if channel == "api":
        return api_case(rng, index)
    if channel in CHANNEL_CASES:
        return globals()[CHANNEL_CASES[channel]](rng, index)
    return cli_case(rng, index, channel)


# ---------------------------------------------------------------------------
# running a case
# ---------------------------------------------------------------------------
def materialize(case: Case, d: str) -> None:
    for name, content in case.files.items():
        p = os.path.join(d, name)
        try:
            if content == "fifo":
                os.mkfifo(p)
            elif content == "dir":
                os.mkdir(p)
            elif content == "loop":
                os.symlink(os.path.join(d, "loop"), p)
            elif content == "dangling":
                os.symlink(os.path.join(d, "nowhere"), p)
            elif content == "noperm-dir":
                os.mkdir(p)
                os.chmod(p, 0)
            elif content in ("sparse", "sparse-small"):       # 6 GiB, or just above the 64 MiB cap
                with open(p, "wb") as f:
                    f.truncate((6 << 30) if content == "sparse" else (64 << 20) + 1)
            elif content == "noperm":
                with open(p, "wb") as f:
                    f.write(b"BIOS-e820: [mem 0x0-0xfff] usable\n")
                os.chmod(p, 0)
            elif isinstance(content, bytes):
                with open(p, "wb") as f:
                    f.write(content)
        except OSError:
            pass


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) << 10 for ln in f if ln.startswith("VmSize:"))


def _child_limits(mem: int, cpu: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (_vm_size() + mem, _vm_size() + mem))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 42, 1 << 42))     # sparse raw dumps may be large


def _run_api(spec: dict) -> None:
    """In the child: call the API as the spec says; print one JSON line with the outcome."""
    from emu.errors import EmuError
    out = {}
    try:
        fn = spec["fn"]
        if fn == "emulate":
            from emu import BootParams, emulate
            from emu.inputs.e820 import E820Map
            e = spec["e820"]
            if e == "list-of-dicts":
                e820 = [{"addr": 0, "size": 1 << 30, "type": 1}]
            elif e == "none":
                e820 = None
            elif e == "string":
                e820 = "BIOS-e820: [mem 0x0-0xfff] usable"
            else:
                e820 = E820Map([tuple(x) for x in e])
            prof = {"<int>": 5, "<none>": None}.get(spec["profile"], spec["profile"])
            params = BootParams()
            for k, v in spec["params"].items():
                setattr(params, k, unrepr(v))
            kw = {"max_memory": spec["max_memory"], "engine": spec["engine"], "check": spec["check"]}
            if spec["until"] is not None:
                kw["until"] = spec["until"]
            r = emulate(e820, prof, params, **kw)
            out = {"kind": "result", "panic": r.panic}
        elif fn == "get_profile":
            from emu import get_profile
            out = {"kind": "result", "name": get_profile(spec["arg"]).name}
        elif fn == "parse_e820_json":
            from emu.inputs.e820 import parse_e820_json
            parse_e820_json(spec["arg"])
            out = {"kind": "result"}
        elif fn == "parse_boot_log":
            from emu.inputs.dmesg import parse_boot_log
            parse_boot_log(spec["arg"])
            out = {"kind": "result"}
        elif fn == "parse_kconfig":
            from emu.inputs.kconfig import parse_kconfig
            parse_kconfig(spec["arg"])
            out = {"kind": "result"}
        elif fn == "replay_options":
            from emu.tools.values import replay_options
            arg = spec["arg"]
            replay_options(unrepr(arg) if not isinstance(arg, dict) or "__" in arg else
                           {k: unrepr(v) for k, v in arg.items()})
            out = {"kind": "result"}
        elif fn == "parse_cpu":
            from emu.inputs.cpu import parse_cpu
            parse_cpu(unrepr(spec["arg"]))
            out = {"kind": "result"}
        elif fn == "parse_system_map":
            from emu.inputs.sysmap import parse_system_map
            parse_system_map(spec["arg"])
            out = {"kind": "result"}
        else:
            from emu import emulate
            from emu.inputs.e820 import EMBEDDED_DEFAULT
            from emu.tools.dump import translate
            r = emulate(EMBEDDED_DEFAULT, "6.1", check=False)
            translate(r, spec["vas"], spec["access"])
            out = {"kind": "result"}
    except EmuError as e:
        out = {"kind": "emuerror", "msg": str(e), "type": type(e).__name__}
    except MemoryError:
        out = {"kind": "memory"}
    except Exception as e:
        out = {"kind": "exception", "type": type(e).__name__, "msg": str(e)[:300],
               "where": traceback.format_exc().strip().splitlines()[-3:]}
    sys.stdout.write(json.dumps(out) + "\n")


#: the parser the children use (built once in the parent)
_PARSER: list = []


class StubReached(BaseException):
    """An ``emu oracle`` case got as far as booting QEMU, fetching or running apt: its
    options were all accepted (the campaign never boots a kernel or reaches the network)."""


def _stub_oracle() -> None:
    """Replace what would boot QEMU, reach the network or run apt/kallsyms-finder by a
    function that stops the case (:class:`StubReached`)."""
    from emu.tools.oracle import fetch, qemu

    def stop(what):
        def f(*a, **k):
            raise StubReached(what)
        return f
    def cached(flavour: str = "amd64", release: str = "6.1"):
        """A cached kernel of the test data (its symbols and config are real; the image is
        never read: the boot is stubbed)."""
        deb = DATA / "debian"
        rel = {"5.10": "5.10.0-32", "6.1": "6.1.0-57"}.get(release, "6.1.0-57")
        sym = deb / f"symbols-{rel}-{flavour}.txt"
        if not sym.exists():
            sym = deb / "symbols-6.1.0-57-amd64.txt"
        cfg = deb / "config-6.1.0-57-amd64.gz" if "amd64" in flavour else DATA / "kconfig" / \
            "config-6.1.0-57-686-pae.excerpt"
        return fetch.KernelImage(flavour, f"{rel}-{flavour}", str(sym), str(sym), str(cfg), release)
    qemu.run_guest = stop("run_guest (QEMU boot)")
    fetch.fetch = stop("fetch (network)")
    fetch.cached = cached
    fetch.write_symbols = stop("write_symbols (kallsyms-finder)")
    fetch.run_command = stop("run_command (apt)")


def _child(case: Case, mem: int, cpu: int) -> int:
    _child_limits(mem, cpu)
    if case.api is not None:
        _run_api(case.api)
        return 0
    import emu.tools.cli
    from emu.tools.cli import main
    if _PARSER:
        emu.tools.cli.build_parser = lambda: _PARSER[0]
    if case.argv[:1] == ["oracle"]:
        _stub_oracle()
    try:
        rc = main(case.argv)
    except StubReached as e:
        sys.stderr.write(f"emu-campaign: stub reached: {e}\n")
        rc = 0
    except SystemExit as e:
        code = e.code
        if code is None:
            rc = 0
        elif isinstance(code, int):
            rc = code
        else:
            sys.stderr.write(f"{code}\n")
            rc = 1
    except MemoryError:
        sys.stderr.write("MemoryError\n")
        rc = 1
    except BaseException:
        traceback.print_exc()
        rc = 1
    return rc if isinstance(rc, int) else 0


@dataclass
class Outcome:
    case: Case
    outcome: str
    rc: Optional[int]
    seconds: float
    maxrss: int
    stderr: str
    detail: str = ""
    cpu: float = 0.0


def classify(case: Case, rc: Optional[int], sig: Optional[int], timed_out: bool, stdout: str, stderr: str,
             secs: float, maxrss: int) -> Outcome:
    def out(kind: str, detail: str = "") -> Outcome:
        return Outcome(case, kind, rc, secs, maxrss, stderr[-2000:], detail)
    if timed_out or sig in (signal.SIGXCPU,):
        return out("hang")
    if sig is not None:
        return out("memory" if sig == signal.SIGKILL else "signal", f"signal {sig}")
    if case.api is not None:
        try:
            res = json.loads(stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return out("traceback", "no API outcome")
        if res["kind"] == "result":
            return out("accepted")
        if res["kind"] == "memory":
            return out("memory")
        if res["kind"] == "emuerror":
            msg = res["msg"]
            if "\n" in msg or not msg:
                return out("multiline", msg)
            return out("rejected", msg)
        return out("internal", f"{res['type']}: {res['msg']} {res.get('where')}")
    if "Traceback (most recent call last)" in stderr:
        return out("traceback", stderr.strip().splitlines()[-1][:300] if stderr.strip() else "")
    if "MemoryError" in stderr or "out of host memory" in stderr:
        return out("memory", stderr.strip()[-300:])
    if rc == 70:
        return out("internal", stderr.strip()[-400:])
    if rc == 2:
        lines = [ln for ln in stderr.splitlines() if not ln.startswith("emu: assumed ")]
        if len(lines) == 1 and lines[0].startswith("emu: error: "):
            return out("rejected", lines[0])
        return out("multiline", "\n".join(lines[:5]))
    if rc in (0, 1):
        return out("accepted")
    return out("other", f"rc {rc}: {stderr.strip()[-300:]}")


def run_cases(cases: List[Case], jobs: int = 2, timeout: float = 300.0, mem: int = 2 << 30,
              on_done: Optional[Callable[[Outcome], None]] = None, cpu: int = 60) -> List[Outcome]:
    """Run ``cases`` in forked children, ``jobs`` at a time: ``cpu`` seconds of CPU
    (``RLIMIT_CPU``; the machine may be shared, so CPU time, not wall time, bounds a case)
    and ``timeout`` seconds of wall time (a case blocked on something) make a hang."""
    import emu.tools.cli  # noqa: F401  (imported once, before the forks)
    import emu.boot.emulate  # noqa: F401
    import emu.inputs.kconfig  # noqa: F401
    import emu.inputs.sysmap  # noqa: F401
    import emu.tools.oracle.fetch  # noqa: F401
    import emu.tools.oracle.qemu  # noqa: F401
    try:
        import emu.tools.plot  # noqa: F401
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401
    except ImportError:
        pass
    commands()
    real_inputs()
    gzip_bomb()
    # every child parses its argv with one parser built here, before the forks (each child
    # uses its own copy; the parent's emu.tools.cli is left alone)
    from emu.tools.cli import build_parser
    _PARSER[:] = [build_parser()]
    results: List[Outcome] = []
    pending = list(reversed(cases))
    running: Dict[int, tuple] = {}
    base = tempfile.mkdtemp(prefix="emu-badinput-")
    try:
        while pending or running:
            while pending and len(running) < jobs:
                case = pending.pop()
                d = os.path.join(base, str(case.index))
                os.mkdir(d)
                materialize(case, d)
                out_f = tempfile.TemporaryFile(dir=base)
                err_f = tempfile.TemporaryFile(dir=base)
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:                                          # the child
                    code = 1
                    try:
                        os.chdir(d)
                        nul = os.open(os.devnull, os.O_RDONLY)
                        os.dup2(nul, 0)
                        os.dup2(out_f.fileno(), 1)
                        os.dup2(err_f.fileno(), 2)
                        # the parent's sys.stdout/err may not be fds 1 and 2 (pytest's capture)
                        sys.stdin = open(0, "r", closefd=False)
                        sys.stdout = open(1, "w", closefd=False, errors="backslashreplace")
                        sys.stderr = open(2, "w", closefd=False, errors="backslashreplace")
                        code = _child(case, mem, cpu)
                        sys.stdout.flush()
                        sys.stderr.flush()
                    except BaseException:
                        try:
                            traceback.print_exc()
                            sys.stderr.flush()
                        except BaseException:
                            pass
                    finally:
                        os._exit(code & 0xFF)
                running[pid] = (case, time.monotonic(), out_f, err_f, d, False)
            pid, status, ru = os.wait4(-1, os.WNOHANG)
            now = time.monotonic()
            if pid == 0:
                for p, (case, t0, o, e, d, killed) in list(running.items()):
                    if not killed and now - t0 > timeout:
                        try:
                            os.kill(p, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                        running[p] = (case, t0, o, e, d, True)
                time.sleep(0.002)
                continue
            case, t0, o, e, d, killed = running.pop(pid)
            o.seek(0)
            e.seek(0)
            stdout = o.read().decode("utf-8", "replace")
            stderr = e.read().decode("utf-8", "replace")
            o.close()
            e.close()
            sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
            rc = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
            res = classify(case, rc, sig, killed, stdout, stderr, now - t0, ru.ru_maxrss << 10)
            res.cpu = ru.ru_utime + ru.ru_stime
            results.append(res)
            _cleanup(d)
            if on_done:
                on_done(res)
    finally:
        for p in running:
            try:
                os.kill(p, signal.SIGKILL)
                os.waitpid(p, 0)
            except OSError:
                pass
        _cleanup(base)
    return results


def _cleanup(d: str) -> None:
    for root, dirs, files in os.walk(d):
        for n in dirs + files:
            try:
                os.chmod(os.path.join(root, n), 0o700, follow_symlinks=False)
            except (OSError, NotImplementedError):
                pass
    shutil.rmtree(d, ignore_errors=True)


def run_subprocess(case: Case, timeout: float = 300.0, mem: int = 2 << 30) -> Outcome:
    """The same case as a real ``python -m emu.tools.cli`` process (to check the fork's
    fidelity)."""
    d = tempfile.mkdtemp(prefix="emu-badinput-sp-")
    try:
        materialize(case, d)
        env = dict(os.environ)      # the installed emu (a checkout on the path would shadow it)
        t0 = time.monotonic()

        def limits():
            resource.setrlimit(resource.RLIMIT_AS, (mem + (512 << 20),) * 2)
            resource.setrlimit(resource.RLIMIT_CPU, (60, 65))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        try:
            p = subprocess.run([sys.executable, "-m", "emu.tools.cli"] + case.argv, cwd=d, env=env,
                               capture_output=True, timeout=timeout, preexec_fn=limits, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return classify(case, None, None, True, "", "", time.monotonic() - t0, 0)
        except (ValueError, OSError) as e:           # an argv the OS cannot pass (a NUL, surrogates)
            return Outcome(case, "skipped", None, 0.0, 0, str(e))
        sig = -p.returncode if p.returncode < 0 else None
        return classify(case, p.returncode if p.returncode >= 0 else None, sig, False,
                        p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"),
                        time.monotonic() - t0, 0)
    finally:
        _cleanup(d)


# ---------------------------------------------------------------------------
# the campaign
# ---------------------------------------------------------------------------
@dataclass
class Figures:
    count: int = 0
    seconds: float = 0.0
    outcomes: Dict[str, int] = field(default_factory=lambda: {k: 0 for k in OUTCOMES})
    by_channel: Dict[str, Dict[str, int]] = field(default_factory=dict)
    suspicious: int = 0
    assumed_lines: int = 0
    max_case_seconds: float = 0.0
    max_case_cpu: float = 0.0
    max_case_rss: int = 0
    subprocess_checked: int = 0
    subprocess_mismatches: int = 0
    #: oracle cases that reached the (stubbed) boot, fetch or apt: every option accepted
    stubbed: int = 0
    examples: Dict[str, List[str]] = field(default_factory=dict)

    @property
    def failures(self) -> int:
        return sum(self.outcomes[k] for k in FAILURES)

    def add(self, r: Outcome) -> None:
        self.count += 1
        self.outcomes[r.outcome] = self.outcomes.get(r.outcome, 0) + 1
        ch = self.by_channel.setdefault(r.case.channel, {})
        ch[r.outcome] = ch.get(r.outcome, 0) + 1
        self.max_case_seconds = max(self.max_case_seconds, r.seconds)
        self.max_case_cpu = max(self.max_case_cpu, r.cpu)
        self.max_case_rss = max(self.max_case_rss, r.maxrss)
        if "emu-campaign: stub reached" in r.stderr:
            self.stubbed += 1
            ex = self.examples.setdefault("stub-reached", [])
            if len(ex) < 25:
                ex.append(r.case.describe())
        if "emu: assumed " in r.stderr:
            self.assumed_lines += 1
        key = r.outcome
        if r.outcome == "rejected" and SUSPICIOUS.search(r.detail):
            self.suspicious += 1
            key = "suspicious"
        if key in FAILURES or key == "suspicious":
            ex = self.examples.setdefault(key, [])
            if len(ex) < 25:
                ex.append(f"{r.case.describe()}\n    -> {r.detail[:500]}")

    def to_json(self) -> dict:
        return {"count": self.count, "seconds": round(self.seconds, 1), "outcomes": self.outcomes,
                "failures": self.failures, "by_channel": self.by_channel, "suspicious": self.suspicious,
                "rejections_after_assumed_lines": self.assumed_lines,
                "max_case_seconds": round(self.max_case_seconds, 2), "max_case_cpu_seconds": round(self.max_case_cpu, 2),
                "max_case_rss_bytes": self.max_case_rss,
                "oracle_cases_reaching_the_stubbed_boot": self.stubbed,
                "subprocess_checked": self.subprocess_checked, "subprocess_mismatches": self.subprocess_mismatches,
                "examples": self.examples}

    def text(self) -> str:
        rate = self.count / self.seconds if self.seconds else 0
        out = [f"{self.count} generated bad inputs in {self.seconds:.0f} s ({rate:.0f}/s): "
               + ", ".join(f"{k} {self.outcomes.get(k, 0)}" for k in OUTCOMES),
               f"failures {self.failures} (tracebacks {self.outcomes['traceback']}, signals {self.outcomes['signal']}, "
               f"hangs {self.outcomes['hang']}, memory kills {self.outcomes['memory']}, multi-line errors "
               f"{self.outcomes['multiline']}, internal errors {self.outcomes['internal']}, other "
               f"{self.outcomes['other']}); suspicious texts {self.suspicious}",
               f"slowest case {self.max_case_seconds:.1f} s wall, {self.max_case_cpu:.1f} s CPU, "
               f"largest case RSS {self.max_case_rss >> 20} MiB; "
               f"real-process check: {self.subprocess_checked} cases, {self.subprocess_mismatches} mismatches; "
               f"oracle cases reaching the stubbed boot {self.stubbed}"]
        for ch, counts in sorted(self.by_channel.items()):
            out.append(f"  {ch:<8} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        return "\n".join(out)


def markdown(fig: dict) -> str:
    """The figures of a ``--json`` file as the Markdown table docs/hostile.md shows."""
    cols = ["rejected", "accepted"] + list(FAILURES)
    rows = ["| channel | cases | " + " | ".join(cols) + " |", "|---" * (len(cols) + 2) + "|"]
    for ch in sorted(fig["by_channel"], key=lambda c: -sum(fig["by_channel"][c].values())):
        counts = fig["by_channel"][ch]
        rows.append(f"| {ch} | {sum(counts.values())} | " + " | ".join(str(counts.get(k, 0)) for k in cols) + " |")
    o = fig["outcomes"]
    rows.append(f"| **all** | **{fig['count']}** | " + " | ".join(f"**{o.get(k, 0)}**" for k in cols) + " |")
    return "\n".join(rows)


def run_campaign(count: int, seed: int = 0, jobs: int = 2, timeout: float = 300.0, mem: int = 2 << 30,
                 channels: Optional[List[str]] = None, subprocess_every: int = 0, start: int = 0,
                 progress: bool = False, cpu: int = 60, json_path: Optional[str] = None) -> Figures:
    """``count`` cases from ``start``; with ``json_path`` the figures so far are rewritten
    there after every batch (a long run can be read while it goes, and survives a kill)."""
    fig = Figures()
    t0 = time.monotonic()
    batch = 2000
    for lo in range(start, start + count, batch):
        cases = [make_case(seed, i, channels) for i in range(lo, min(start + count, lo + batch))]

        def done(r: Outcome) -> None:
            fig.add(r)
            if progress and fig.count % 500 == 0:
                sys.stderr.write(f"\r{fig.count}/{count} cases, {fig.failures} failures, "
                                 f"{time.monotonic() - t0:.0f} s")
                sys.stderr.flush()
        results = run_cases(cases, jobs=jobs, timeout=timeout, mem=mem, on_done=done, cpu=cpu)
        if subprocess_every:
            for r in results:
                if r.case.api is None and r.case.argv[:1] != ["oracle"] and r.case.index % subprocess_every == 0:
                    s = run_subprocess(r.case, timeout, mem)
                    if s.outcome == "skipped":
                        continue
                    fig.subprocess_checked += 1
                    if s.outcome != r.outcome:
                        fig.subprocess_mismatches += 1
                        fig.examples.setdefault("subprocess-mismatch", []).append(
                            f"{r.case.describe()}\n    fork: {r.outcome} {r.detail[:200]}\n    process: {s.outcome} "
                            f"{s.detail[:200]}")
        if json_path:
            fig.seconds = time.monotonic() - t0
            tmp = json_path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(dict(fig.to_json(), done=False, next_start=min(start + count, lo + batch)), f, indent=1)
            os.replace(tmp, json_path)
    fig.seconds = time.monotonic() - t0
    if progress:
        sys.stderr.write("\n")
    return fig


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=int, default=0, help="first case index (cases are seed:index)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=300.0, help="wall seconds per case (a hang past it)")
    ap.add_argument("--cpu", type=int, default=60, help="CPU seconds per case (a hang past it)")
    ap.add_argument("--mem", type=int, default=2048, help="MiB of address space per case beyond the parent's")
    ap.add_argument("--channels", help="comma-separated: " + ", ".join(CHANNEL_WEIGHTS))
    ap.add_argument("--subprocess-every", type=int, default=200,
                    help="also run every Nth CLI case as a real process (0: never)")
    ap.add_argument("--json", metavar="FILE", help="write the figures here")
    ap.add_argument("--show-failures", action="store_true")
    ap.add_argument("--case", type=int, help="print one case (seed:index) and run it as a real process")
    ap.add_argument("--markdown", metavar="JSON", help="print the figures of a --json file as a Markdown table")
    a = ap.parse_args(argv)
    chans = a.channels.split(",") if a.channels else None
    if a.markdown:
        with open(a.markdown) as f:
            print(markdown(json.load(f)))
        return 0
    if a.case is not None:
        c = make_case(a.seed, a.case, chans)
        print(c.describe())
        if c.api is None:
            r = run_subprocess(c, a.timeout, a.mem << 20)
            print(r.outcome, r.rc, r.detail or r.stderr)
        return 0
    fig = run_campaign(a.count, a.seed, a.jobs, a.timeout, a.mem << 20, chans, a.subprocess_every, a.start,
                       progress=sys.stderr.isatty(), cpu=a.cpu, json_path=a.json)
    print(fig.text())
    if a.show_failures or fig.failures:
        for k, ex in fig.examples.items():
            print(f"--- {k}")
            for e in ex:
                print("  " + e)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(fig.to_json(), done=True, seed=a.seed, start=a.start, jobs=a.jobs), f, indent=1)
    return 1 if fig.failures else 0


if __name__ == "__main__":
    sys.exit(main())
