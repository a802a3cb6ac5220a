"""``emu oracle fetch``: Debian's kernels (5.10 bullseye, 6.1 bookworm, 6.12 trixie),
their ``.config`` and their symbols, cached.

apt runs with a sources list, package lists and package cache of emu's own, in the cache
folder (``$EMU_ORACLE_CACHE``, default ``~/.cache/emu-oracle``; ``apt/<codename>/``),
never the system's: ``apt-get -o Dir::Etc::sourcelist=FILE -o Dir::Etc::sourceparts=-
-o Dir::State::Lists=DIR -o Dir::Cache=DIR ...``.  The package is
``linux-image-<abi>-<flavour>-unsigned`` (the newest the lists name whose ``.deb`` the
mirror has), fetched with ``apt-get download`` and unpacked with ``dpkg -x`` into
``debian/<codename>/<flavour>/root``.  Its symbols: ``/boot/System.map-*`` where the
package ships a real one (amd64); otherwise the image's kallsyms table (PyPI
``vmlinux-to-elf``'s ``kallsyms-finder``), and where that lacks data symbols
(no ``CONFIG_KALLSYMS_ALL``: Debian's i386 builds) the System.map of the ``-dbg``
package (only the map is kept).  ``debian/<codename>/<flavour>/kernel.json`` records the
result: a second fetch reads it and runs nothing.
"""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from emu.tools.oracle.qemu import OracleError


@dataclass(frozen=True)
class Release:
    """A Debian release and how its kernel packages' ABI is spelled."""

    kernel: str      # the upstream series: "6.1"
    codename: str    # "bookworm"
    abi: str         # regex of the ABI part of the package name
    flavours: Tuple[str, ...]
    abi_text: str = ""   # the same, for people: 6.1.0-N

    def package_text(self, flavour: str) -> str:
        return f"linux-image-{self.abi_text}-{flavour}-unsigned"

    def package_regex(self, flavour: str) -> "re.Pattern[str]":
        return re.compile(rf"^linux-image-({self.abi})-{re.escape(flavour)}-unsigned$")


#: Debian stopped building i386 kernels with trixie (13)
RELEASES: Dict[str, Release] = {
    "5.10": Release("5.10", "bullseye", r"5\.10\.0-\d+", ("amd64", "cloud-amd64", "686-pae", "686"), "5.10.0-N"),
    "6.1": Release("6.1", "bookworm", r"6\.1\.0-\d+", ("amd64", "cloud-amd64", "686-pae", "686"), "6.1.0-N"),
    "6.12": Release("6.12", "trixie", r"6\.12\.\d+\+deb13", ("amd64", "cloud-amd64"), "6.12.N+deb13"),
}
#: flavour -> Debian architecture
FLAVOURS: Dict[str, str] = {"amd64": "amd64", "cloud-amd64": "amd64", "686-pae": "i386", "686": "i386"}
DEFAULT_RELEASE = "6.1"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SECURITY = "http://deb.debian.org/debian-security"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def cache_dir() -> str:
    d = os.environ.get("EMU_ORACLE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "emu-oracle")
    os.makedirs(d, exist_ok=True)
    return d


def release_of(name: str) -> Release:
    """A release by kernel series (``6.1``) or codename (``bookworm``)."""
    for r in RELEASES.values():
        if name in (r.kernel, r.codename):
            return r
    raise OracleError(f"unknown release {name!r} (one of {', '.join(RELEASES)})")


def parse_releases(text: str) -> List[Release]:
    """``all`` or a comma-separated list of releases."""
    if text.strip() == "all":
        return list(RELEASES.values())
    out = [release_of(t.strip()) for t in text.split(",") if t.strip()]
    if not out:
        raise OracleError(f"--release {text!r} names no release (5.10, 6.1, 6.12, a comma-separated list, or all)")
    return out


def parse_flavours(text: str, release: Release) -> List[str]:
    """``all`` (every flavour the release builds) or a comma-separated list."""
    if text.strip() == "all":
        return list(release.flavours)
    out = [t.strip() for t in text.split(",") if t.strip()]
    if not out:
        raise OracleError(f"--flavour {text!r} names no flavour (one of {', '.join(FLAVOURS)}, a list, or all)")
    for f in out:
        if f not in FLAVOURS:
            raise OracleError(f"unknown flavour {f!r} (one of {', '.join(FLAVOURS)})")
    return out


@dataclass
class KernelImage:
    flavour: str
    version: str                     # the kernel release: 6.1.0-57-amd64
    bzimage: str
    symbols: str
    config: Optional[str] = None
    release: str = DEFAULT_RELEASE   # 5.10, 6.1, 6.12
    package: str = ""
    debian_version: str = ""         # the package version: 6.1.192-3
    arch: str = "amd64"
    symbols_from: str = ""           # System.map, kallsyms, dbg System.map
    notes: List[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, d: dict) -> "KernelImage":
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in names})


# ---------------------------------------------------------------------------
# apt with emu's own configuration
# ---------------------------------------------------------------------------
Runner = Callable[[List[str], Optional[str]], str]


def run_command(cmd: List[str], cwd: Optional[str] = None) -> str:
    """Run ``cmd``; its output, or an OracleError naming it and its last line."""
    try:
        p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=1800)
    except FileNotFoundError:
        raise OracleError(f"{cmd[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise OracleError(f"{' '.join(cmd[:3])} took more than 30 minutes") from None
    out = p.stdout.decode("utf-8", "replace")
    if p.returncode != 0:
        lines = [ln for ln in out.strip().splitlines() if ln.strip() and "unsandboxed" not in ln]
        words = [c for i, c in enumerate(cmd) if c != "-o" and (i == 0 or cmd[i - 1] != "-o")]
        raise OracleError(f"{' '.join(words[:3])} failed: "
                          f"{lines[-1] if lines else f'exit {p.returncode}'}")
    return out


class Apt:
    """``apt-get``/``apt-cache`` over one release's sources list, lists and package
    cache, all under ``root`` (never ``/etc/apt`` or ``/var/lib/apt``)."""

    def __init__(self, root: str, release: Release, run: Runner = run_command) -> None:
        self.root = root
        self.release = release
        self.run = run
        self.sources = os.path.join(root, "sources.list")
        self.lists = os.path.join(root, "lists")
        self.cache = os.path.join(root, "cache")

    def options(self) -> List[str]:
        opts = [f"Dir::Etc::sourcelist={self.sources}", "Dir::Etc::sourceparts=-",
                f"Dir::State::Lists={self.lists}", f"Dir::Cache={self.cache}",
                "APT::Architectures::=amd64", "APT::Architectures::=i386"]
        return [x for o in opts for x in ("-o", o)]

    def write_sources(self) -> None:
        os.makedirs(os.path.join(self.lists, "partial"), exist_ok=True)
        os.makedirs(os.path.join(self.cache, "archives", "partial"), exist_ok=True)
        signed = f" signed-by={KEYRING}" if os.path.exists(KEYRING) else ""
        c = self.release.codename
        text = (f"# emu oracle fetch: Debian {c} ({self.release.kernel}) kernels only\n"
                f"deb [arch=amd64,i386{signed}] {DEBIAN_MIRROR} {c} main\n"
                f"deb [arch=amd64,i386{signed}] {DEBIAN_SECURITY} {c}-security main\n")
        old = open(self.sources).read() if os.path.exists(self.sources) else None
        if old != text:
            with open(self.sources, "w") as f:
                f.write(text)

    def has_lists(self) -> bool:
        return bool(glob.glob(os.path.join(self.lists, "*Packages*")))

    def update(self) -> None:
        self.write_sources()
        self.run(["apt-get", *self.options(), "update", "-q"], None)

    def package_names(self, prefix: str) -> List[str]:
        self.write_sources()
        out = self.run(["apt-cache", *self.options(), "pkgnames", prefix], None)
        return [ln.strip() for ln in out.splitlines() if ln.strip()]

    def download(self, package: str, arch: str, dest: str) -> Optional[str]:
        """``apt-get download package:arch`` into ``dest``; the .deb's path."""
        self.write_sources()
        self.run(["apt-get", *self.options(), "download", "-q", f"{package}:{arch}"], dest)
        return _find_deb(dest, package)


def _find_deb(dest: str, package: str) -> Optional[str]:
    debs = sorted(glob.glob(os.path.join(dest, f"{package}_*.deb")))
    return debs[-1] if debs else None


def version_key(name: str) -> Tuple[int, ...]:
    """Orders package names by the numbers in them (``5.10.0-46`` after ``5.10.0-9``)."""
    return tuple(int(n) for n in re.findall(r"\d+", name))


def candidates(apt: Apt, flavour: str) -> List[str]:
    """Package names of ``flavour`` the lists know, newest first."""
    rx = apt.release.package_regex(flavour)
    names = [n for n in apt.package_names("linux-image-") if rx.match(n)]
    return sorted(set(names), key=version_key, reverse=True)


def download_newest(apt: Apt, flavour: str, dest: str, notes: List[str]) -> Tuple[str, str]:
    """(package, .deb path): the newest package whose .deb the mirror has (a list may
    name a package the mirror no longer serves: try the next older one)."""
    arch = FLAVOURS[flavour]
    names = candidates(apt, flavour)
    if not names:
        raise OracleError(f"Debian {apt.release.codename} has no {apt.release.package_text(flavour)} package"
                          + ("" if flavour in apt.release.flavours else
                             f" ({apt.release.codename} builds {', '.join(apt.release.flavours)})"))
    last = None
    for name in names:
        deb = _find_deb(dest, name)
        if deb:
            return name, deb
        try:
            deb = apt.download(name, arch, dest)
        except OracleError as e:
            last = e
            deb = None
        if deb:
            return name, deb
        notes.append(f"{name} could not be downloaded ({last}); trying an older one")
    raise OracleError(f"no {flavour} kernel of {apt.release.codename} could be downloaded: {last}")


# ---------------------------------------------------------------------------
# symbols
# ---------------------------------------------------------------------------
def _kallsyms_finder() -> Optional[str]:
    tool = shutil.which("kallsyms-finder")
    if tool:
        return tool
    here = os.path.join(os.path.dirname(sys.executable), "kallsyms-finder")
    return here if os.access(here, os.X_OK) else None


def write_symbols(bzimage: str, out: str, run: Runner = run_command) -> None:
    """kallsyms of ``bzimage`` as a System.map (``kallsyms-finder`` from vmlinux-to-elf)."""
    tool = _kallsyms_finder()
    if not tool:
        raise OracleError("kallsyms-finder not found (pip install vmlinux-to-elf)")
    text = run([tool, bzimage], None)
    lines = [ln for ln in text.splitlines() if re.match(r"^[0-9a-fA-F]{8,16} \S ", ln)]
    if len(lines) < 1000:
        raise OracleError(f"kallsyms-finder found only {len(lines)} symbols in {bzimage}")
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, out)


def _count_symbols(path: str) -> int:
    n = 0
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if re.match(r"^[0-9a-fA-F]{8,16} \S \S", line):
                    n += 1
    except OSError:
        return 0
    return n


def _has_data_symbols(path: str) -> bool:
    with open(path, encoding="utf-8", errors="replace") as f:
        return any(line.rstrip().endswith(" memblock") for line in f)


def fetch_dbg_system_map(apt: Apt, package: str, arch: str, dest: str, out: str) -> None:
    """Download ``package`` (a ``-dbg`` package, hundreds of MB), keep only its System.map."""
    deb = apt.download(package, arch, dest)
    if not deb:
        raise OracleError(f"apt-get download {package} produced no .deb")
    tmp = out + ".tmp"
    try:
        with open(tmp, "wb") as f:
            p1 = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
            p2 = subprocess.run(["tar", "-x", "--wildcards", "-O", "*System.map*"], stdin=p1.stdout, stdout=f)
            if p1.stdout is not None:
                p1.stdout.close()
            p1.wait()
        if p2.returncode != 0 or _count_symbols(tmp) < 1000:
            raise OracleError(f"{deb} has no System.map")
        os.replace(tmp, out)
    finally:
        os.unlink(deb)
        if os.path.exists(tmp):
            os.unlink(tmp)


def choose_symbols(dest: str, bzimage: str, version: str, apt: Apt, package: str, arch: str,
                   run: Runner = run_command, notes: Optional[List[str]] = None) -> Tuple[str, str]:
    """(path, what) of the kernel's symbol table: the System.map it ships, else its
    kallsyms, else (kallsyms without data symbols, or kallsyms-finder failing on the
    image) the -dbg package's System.map."""
    shipped = os.path.join(dest, "root", "boot", f"System.map-{version}")
    if _count_symbols(shipped) >= 1000 and _has_data_symbols(shipped):
        return shipped, "System.map"
    kallsyms = os.path.join(dest, "System.map.kallsyms")
    try:
        if _count_symbols(kallsyms) < 1000:
            write_symbols(bzimage, kallsyms, run)
        if _has_data_symbols(kallsyms):
            return kallsyms, "kallsyms"
        why = "its kallsyms table has no data symbols (no CONFIG_KALLSYMS_ALL)"
    except OracleError as e:
        why = f"kallsyms-finder failed ({e})"
    if notes is not None:
        notes.append(f"symbols from the -dbg package's System.map: {why}")
    dbgmap = os.path.join(dest, "System.map.dbg")
    if _count_symbols(dbgmap) < 1000:
        fetch_dbg_system_map(apt, package.replace("-unsigned", "-dbg"), arch, dest, dbgmap)
    return dbgmap, "dbg System.map"


# ---------------------------------------------------------------------------
# fetch
# ---------------------------------------------------------------------------
def kernel_dir(release: Release, flavour: str) -> str:
    return os.path.join(cache_dir(), "debian", release.codename, flavour)


def _marker(release: Release, flavour: str) -> str:
    return os.path.join(kernel_dir(release, flavour), "kernel.json")


def cached(flavour: str = "amd64", release: str = DEFAULT_RELEASE) -> Optional[KernelImage]:
    """The fetched kernel of ``release``/``flavour``, or None."""
    rel = release_of(release)
    path = _marker(rel, flavour)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            ki = KernelImage.from_json(json.load(f))
    except (OSError, ValueError, TypeError):
        return None
    return ki if os.path.exists(ki.bzimage) and os.path.exists(ki.symbols) else None


def fetch(flavour: str = "amd64", package: Optional[str] = None, refresh: bool = False,
          release: str = DEFAULT_RELEASE, run: Runner = run_command) -> KernelImage:
    """Download (once) and unpack ``release``'s newest ``flavour`` kernel, find its
    symbols (once).  ``package``: an exact package name instead of the newest;
    ``refresh``: update the package lists and look for a newer package."""
    rel = release_of(release)
    if flavour not in FLAVOURS:
        raise OracleError(f"unknown flavour {flavour!r} (one of {', '.join(FLAVOURS)})")
    if not refresh and package is None:
        ki = cached(flavour, rel.kernel)
        if ki is not None:
            return ki
    arch = FLAVOURS[flavour]
    dest = kernel_dir(rel, flavour)
    os.makedirs(dest, exist_ok=True)
    apt = Apt(os.path.join(cache_dir(), "apt", rel.codename), rel, run)
    notes: List[str] = []
    if package:
        name = package.split(":")[0]
        deb = _find_deb(dest, name) or apt.download(name, arch, dest)
        if not deb:
            raise OracleError(f"apt-get download {name} produced no .deb")
    else:
        try:
            if refresh or not apt.has_lists():
                apt.update()
            name, deb = download_newest(apt, flavour, dest, notes)
        except OracleError as e:
            # apt failing (no network, a mirror mid-sync) is not fatal when a package is here
            debs = sorted(glob.glob(os.path.join(dest, "linux-image-*-unsigned_*.deb")), key=version_key)
            if not debs:
                raise
            deb = debs[-1]
            name = os.path.basename(deb).split("_")[0]
            notes.append(f"apt: {e}; using the cached {name}")
    tree = os.path.join(dest, "root")
    images = glob.glob(os.path.join(tree, "boot", "vmlinuz-*"))
    want = name.replace("linux-image-", "").replace("-unsigned", "")
    if not any(os.path.basename(i) == f"vmlinuz-{want}" for i in images):
        run(["dpkg", "-x", deb, tree], None)
        images = glob.glob(os.path.join(tree, "boot", f"vmlinuz-{want}")) or \
            glob.glob(os.path.join(tree, "boot", "vmlinuz-*"))
        if not images:
            raise OracleError(f"{deb} has no /boot/vmlinuz-*")
    else:
        images = [i for i in images if os.path.basename(i) == f"vmlinuz-{want}"]
    bz = images[0]
    version = os.path.basename(bz)[len("vmlinuz-"):]
    sym, sym_from = choose_symbols(dest, bz, version, apt, name, arch, run, notes)
    cfg = os.path.join(tree, "boot", f"config-{version}")
    m = re.match(r"[^_]+_([^_]+)_", os.path.basename(deb))
    ki = KernelImage(flavour, version, bz, sym, cfg if os.path.exists(cfg) else None, rel.kernel, name,
                     m.group(1).replace("%3a", ":") if m else "", arch, sym_from, notes)
    tmp = _marker(rel, flavour) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(ki.to_json(), f, indent=1)
    os.replace(tmp, _marker(rel, flavour))
    return ki
