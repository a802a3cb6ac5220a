"""``emu oracle fetch``: Debian's 6.1 kernel and its symbol table, cached.

The image comes from ``apt-get download linux-image-6.1.0-N-amd64-unsigned``
(unpacked with ``dpkg -x``); its symbols from the image's own kallsyms table
(PyPI ``vmlinux-to-elf``'s ``kallsyms-finder``), written as a System.map.
Everything lives in the cache folder (``$EMU_ORACLE_CACHE``, default
``~/.cache/emu-oracle``): a second fetch is a no-op.
"""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import List, Optional

from emu.tools.oracle.qemu import OracleError

#: Debian flavours: (package-name pattern, arch, note)
FLAVOURS = {
    "amd64": ("linux-image-6.1.0-{abi}-amd64-unsigned", "amd64", "x86-64"),
    "686-pae": ("linux-image-6.1.0-{abi}-686-pae-unsigned", "i386", "i386 PAE"),
    "686": ("linux-image-6.1.0-{abi}-686-unsigned", "i386", "i386 non-PAE"),
}


def cache_dir() -> str:
    d = os.environ.get("EMU_ORACLE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "emu-oracle")
    os.makedirs(d, exist_ok=True)
    return d


@dataclass
class KernelImage:
    flavour: str
    version: str
    bzimage: str
    symbols: str
    config: Optional[str] = None

    def to_json(self) -> dict:
        return dict(self.__dict__)


def _run(cmd: List[str], cwd: Optional[str] = None) -> str:
    try:
        p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=1800)
    except FileNotFoundError:
        raise OracleError(f"{cmd[0]} not found") from None
    out = p.stdout.decode("utf-8", "replace")
    if p.returncode != 0:
        raise OracleError(f"{' '.join(cmd[:3])} failed: {out.strip().splitlines()[-1] if out.strip() else p.returncode}")
    return out


def newest_package(flavour: str) -> str:
    """The newest ``linux-image-6.1.0-N-<flavour>-unsigned`` apt knows."""
    pattern, arch, _ = FLAVOURS[flavour]
    rx = "^" + pattern.replace("{abi}", "[0-9]+").replace(".", "\\.") + "$"
    name_arch = f":{arch}" if arch != _dpkg_arch() else ""
    out = _run(["apt-cache", "search", "--names-only", rx])
    names = [ln.split()[0] for ln in out.splitlines() if ln.strip()]
    if not names:
        raise OracleError(f"apt knows no package matching {rx}"
                          + (f" (add the architecture: dpkg --add-architecture {arch}; apt-get update)"
                             if name_arch else " (run apt-get update)"))
    names.sort(key=lambda n: int(re.search(r"6\.1\.0-(\d+)-", n).group(1)))
    return names[-1] + name_arch


def _dpkg_arch() -> str:
    try:
        return subprocess.run(["dpkg", "--print-architecture"], stdout=subprocess.PIPE,
                              check=True).stdout.decode().strip()
    except (OSError, subprocess.CalledProcessError):
        return "amd64"


def write_symbols(bzimage: str, out: str) -> None:
    """kallsyms of ``bzimage`` as a System.map (``kallsyms-finder`` from vmlinux-to-elf)."""
    tool = shutil.which("kallsyms-finder")
    if not tool:
        raise OracleError("kallsyms-finder not found (pip install vmlinux-to-elf)")
    text = _run([tool, bzimage])
    lines = [ln for ln in text.splitlines() if re.match(r"^[0-9a-fA-F]{8,16} \S ", ln)]
    if len(lines) < 1000:
        raise OracleError(f"kallsyms-finder found only {len(lines)} symbols in {bzimage}")
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, out)


def _has_data_symbols(path: str) -> bool:
    with open(path, encoding="utf-8", errors="replace") as f:
        return any(line.rstrip().endswith(" memblock") for line in f)


def fetch_dbg_system_map(pkg: str, dest: str, out: str) -> None:
    """Download ``pkg`` (a ``-dbg`` package), keep only its System.map."""
    _run(["apt-get", "download", pkg], cwd=dest)
    debs = glob.glob(os.path.join(dest, pkg.split(":")[0] + "_*.deb"))
    if not debs:
        raise OracleError(f"apt-get download {pkg} produced no .deb")
    tmp = out + ".tmp"
    try:
        with open(tmp, "wb") as f:
            p1 = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", debs[0]], stdout=subprocess.PIPE)
            p2 = subprocess.run(["tar", "-x", "--wildcards", "-O", "*System.map*"], stdin=p1.stdout, stdout=f)
            p1.stdout.close()
            p1.wait()
        if p2.returncode != 0 or os.path.getsize(tmp) < 100000:
            raise OracleError(f"{debs[0]} has no System.map")
        os.replace(tmp, out)
    finally:
        for d in debs:
            os.unlink(d)
        if os.path.exists(tmp):
            os.unlink(tmp)


def fetch(flavour: str = "amd64", package: Optional[str] = None, refresh: bool = False) -> KernelImage:
    """Download (once) and unpack the kernel; extract its symbols (once)."""
    if flavour not in FLAVOURS:
        raise OracleError(f"unknown flavour {flavour!r} (one of {', '.join(FLAVOURS)})")
    root = cache_dir()
    marker = os.path.join(root, f"current-{flavour}.json")
    if not refresh and package is None and os.path.exists(marker):
        with open(marker) as f:
            ki = KernelImage(**json.load(f))
        if os.path.exists(ki.bzimage) and os.path.exists(ki.symbols):
            return ki
    pkg = package or newest_package(flavour)
    base = pkg.split(":")[0]
    dest = os.path.join(root, base)
    os.makedirs(dest, exist_ok=True)
    debs = glob.glob(os.path.join(dest, f"{base}_*.deb"))
    if not debs:
        _run(["apt-get", "download", pkg], cwd=dest)
        debs = glob.glob(os.path.join(dest, f"{base}_*.deb"))
        if not debs:
            raise OracleError(f"apt-get download {pkg} produced no .deb")
    tree = os.path.join(dest, "root")
    images = glob.glob(os.path.join(tree, "boot", "vmlinuz-*"))
    if not images:
        _run(["dpkg", "-x", debs[0], tree])
        images = glob.glob(os.path.join(tree, "boot", "vmlinuz-*"))
        if not images:
            raise OracleError(f"{debs[0]} has no /boot/vmlinuz-*")
    bz = images[0]
    version = os.path.basename(bz)[len("vmlinuz-"):]
    sysmap = os.path.join(dest, f"System.map-{version}.kallsyms")
    if not os.path.exists(sysmap):
        write_symbols(bz, sysmap)
    if not _has_data_symbols(sysmap):
        # kallsyms without CONFIG_KALLSYMS_ALL (Debian's i386 kernels): the System.map of
        # the -dbg package (hundreds of MB; only the map is kept)
        dbgmap = os.path.join(dest, f"System.map-{version}.dbg")
        if not os.path.exists(dbgmap):
            fetch_dbg_system_map(pkg.split(":")[0].replace("-unsigned", "-dbg")
                                 + (":" + pkg.split(":")[1] if ":" in pkg else ""), dest, dbgmap)
        sysmap = dbgmap
    cfg = os.path.join(tree, "boot", f"config-{version}")
    ki = KernelImage(flavour, version, bz, sysmap, cfg if os.path.exists(cfg) else None)
    with open(marker, "w") as f:
        json.dump(ki.to_json(), f, indent=1)
    return ki


def cached(flavour: str = "amd64") -> Optional[KernelImage]:
    marker = os.path.join(cache_dir(), f"current-{flavour}.json")
    if not os.path.exists(marker):
        return None
    with open(marker) as f:
        ki = KernelImage(**json.load(f))
    return ki if os.path.exists(ki.bzimage) and os.path.exists(ki.symbols) else None
