"""The kernel's version line (``Linux version ...``), in the forms distributions print it.

The kernel prints ``linux_banner`` (init/version.c): ``Linux version <release>
(<builder>) (<compiler>) <build>``, where *release* is ``uname -r`` and *build* is
``uname -v`` (``#1 SMP PREEMPT_DYNAMIC ...``).  Before 5.8 the compiler group reads
``(gcc version 4.8.2 (Ubuntu 4.8.2-19ubuntu1) )``; since 5.8 ``(gcc-12 (Debian
12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40)``.

:func:`parse_version_line` reads the release and its parts (upstream x.y.z, ``-rcN``,
``-next-YYYYMMDD``, ``git describe`` suffixes, a local version, the ``+`` of a tree with
uncommitted changes), recognises the distribution from the release and the build
string, and finds the upstream stable release a distribution kernel is based on where
the line names it:

* Debian: ``#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)`` -> 6.1.192 (the release
  ``6.1.0-57-amd64`` carries an ABI number, its ``.0`` is not a sublevel); from 6.12 the
  release carries it (``6.12.48+deb13-amd64``); before 3.x the package version is a
  top-level group ``(Debian 2.6.32-48squeeze1)``;
* Ubuntu: the ``/proc/version_signature`` tail ``(Ubuntu 5.15.0-72.79-generic 5.15.98)``;
* Fedora, Arch, Void, WSL, Yocto, openSUSE Tumbleweed...: the release itself.

The compiler group is parsed as a group and never searched for a version: the ``12.2.0``
of ``(gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0`` is gcc's.  ``confidence`` (``high``,
``medium``, ``low``) and ``why`` say what the sublevel rests on.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from emu.errors import EmuError

__all__ = ["KernelVersion", "VersionError", "parse_version_line", "parse_release", "split_banner"]


class VersionError(EmuError):
    """Text that holds no kernel release (one line)."""


@dataclass(frozen=True)
class KernelVersion:
    """One kernel's version, as its ``Linux version`` line (or ``uname -rv``) shows it.

    * ``release``: ``uname -r`` (``6.1.0-57-amd64``);
    * ``release_numbers``: the numbers it starts with (``(6, 1, 0)``, ``(5, 15, 167, 4)``);
    * ``base``: ``(major, minor, sublevel)`` of the upstream kernel the build is based on
      (the stable base when the line names one, else the release's first three numbers);
    * ``sublevel_known``: the sublevel is stated (by the release or a distribution
      signature); False for an ABI-numbered release without its package version
      (Debian ``5.10.0-11-amd64``, Ubuntu ``5.15.0-72-generic`` alone), where 0 is assumed;
    * ``distro``: ``debian``, ``ubuntu``, ``ubuntu-mainline``, ``fedora``, ``rhel``,
      ``oracle-uek``, ``amazon``, ``suse``, ``arch``, ``manjaro``, ``void``, ``wsl``,
      ``yocto``, ``rosa``, ``gentoo``, ``cumulus``, ``kali``, ``proxmox`` or None (upstream
      or self-built);
    * ``package_version``: the distribution's package version when the line shows it
      (``6.1.192-3``, ``5.15.0-72.79``, ``200.fc40``, ``1127.el7``);
    * ``stable_base`` / ``stable_base_text``: the upstream stable release a distribution
      signature names (``(6, 1, 192)`` / ``"6.1.192"``; Ubuntu ``"2.6.32.11+drm33.2"``);
    * ``rc`` (``-rc6``), ``next_date`` (``-next-20230524``), ``git_commits``/``git_hash``
      (``-00397-gee17608``), ``local`` (the local version after the numbers, e.g.
      ``-poky-edison``, ``mmotmfix``), ``dirty`` (a trailing ``+``: built from a tree with
      changes or commits past the tag), ``flavour`` (``amd64``, ``686-pae``,
      ``generic``, ``default``), ``arch_hint`` (``x86_64``/``i686`` when the release names
      it), ``pae_hint`` (True when it names PAE);
    * ``builder``, ``compiler``, ``build``: the banner's parts (``build`` is ``uname -v``);
    * ``confidence`` / ``why``: what ``base``'s sublevel rests on.
    """

    release: str
    release_numbers: Tuple[int, ...]
    base: Tuple[int, int, int]
    sublevel_known: bool
    confidence: str
    why: str
    distro: Optional[str] = None
    package_version: Optional[str] = None
    stable_base: Optional[Tuple[int, int, int]] = None
    stable_base_text: Optional[str] = None
    rc: Optional[int] = None
    next_date: Optional[str] = None
    git_commits: Optional[int] = None
    git_hash: Optional[str] = None
    local: Optional[str] = None
    dirty: bool = False
    flavour: Optional[str] = None
    arch_hint: Optional[str] = None
    pae_hint: Optional[bool] = None
    builder: Optional[str] = None
    compiler: Optional[str] = None
    build: Optional[str] = None
    line: str = ""

    @property
    def major(self) -> int:
        return self.base[0]

    @property
    def minor(self) -> int:
        return self.base[1]

    @property
    def sublevel(self) -> int:
        return self.base[2]

    @property
    def version(self) -> str:
        """``base`` as ``"6.1.192"`` (what :func:`emu.kernel.profiles.get_profile` takes)."""
        return "%d.%d.%d" % self.base

    @property
    def prerelease(self) -> bool:
        """A mainline release candidate, linux-next, or commits past a tag: code between two
        releases (a stable ``x.y.z-rcN`` review candidate is not one)."""
        return (self.next_date is not None or self.git_commits is not None
                or (self.rc is not None and self.base[2] == 0))

    def to_json(self) -> Dict[str, Any]:
        d: Dict[str, Any] = {"release": self.release, "version": self.version,
                             "base": list(self.base), "sublevel_known": self.sublevel_known,
                             "confidence": self.confidence, "why": self.why}
        for k in ("distro", "package_version", "stable_base_text", "rc", "next_date", "git_commits",
                  "git_hash", "local", "flavour", "arch_hint", "pae_hint"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        if self.stable_base is not None:
            d["stable_base"] = list(self.stable_base)
        if self.dirty:
            d["dirty"] = True
        return d


# ---------------------------------------------------------------------------
# the banner's parts
# ---------------------------------------------------------------------------
_RE_RELEASE_START = re.compile(r"\d+\.\d+")


def _groups(s: str, i: int) -> Tuple[List[str], int]:
    """Top-level parenthesised groups starting at ``s[i]`` (blanks between them skipped),
    each without its outer parentheses; an unclosed group runs to the end of ``s``."""
    out: List[str] = []
    n = len(s)
    while True:
        while i < n and s[i] == " ":
            i += 1
        if i >= n or s[i] != "(":
            return out, i
        depth, j = 0, i
        while j < n:
            c = s[j]
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        out.append(s[i + 1:j].strip())
        i = j + 1


def split_banner(text: str) -> Tuple[str, List[str], str]:
    """``(release, top-level groups, build)`` of a ``Linux version ...`` line or of
    ``uname -r`` / ``uname -rv`` text.  VersionError when no release is found."""
    s = " ".join(text.split())
    k = s.find("Linux version ")
    if k >= 0:
        s = s[k + len("Linux version "):]
    if not s or not _RE_RELEASE_START.match(s):
        raise VersionError("no kernel release in %r" % text[:80])
    sp = s.find(" ")
    release = s if sp < 0 else s[:sp]
    groups, i = _groups(s, len(release))
    return release, groups, s[i:].strip()


# ---------------------------------------------------------------------------
# the release string
# ---------------------------------------------------------------------------
_RE_NUMBERS = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?(?:\.(\d+))?")
_RE_RC = re.compile(r"-rc(\d+)(?=$|[-+_.])")
_RE_NEXT = re.compile(r"-next-(\d{8})")
_RE_GIT = re.compile(r"-(\d+)-g([0-9a-f]{7,40})(?=$|[-+])")

_X86_64_WORDS = re.compile(r"(?:^|[-._])(?:amd64|x86_64)(?:$|[-._])")
_I686_WORDS = re.compile(r"(?:^|[-._])(?:i[3-6]86|[3-6]86|686-pae|pae|bigmem)(?:$|[-._])", re.I)


def _tuple3(nums: Tuple[int, ...]) -> Tuple[int, int, int]:
    return (nums[0], nums[1], nums[2] if len(nums) > 2 else 0)


def _numbers(text: str) -> Optional[Tuple[int, ...]]:
    m = _RE_NUMBERS.match(text)
    if not m:
        return None
    return tuple(int(g) for g in m.groups() if g is not None)


@dataclass
class _Parts:
    nums: Tuple[int, ...]
    rc: Optional[int] = None
    next_date: Optional[str] = None
    git_commits: Optional[int] = None
    git_hash: Optional[str] = None
    local: Optional[str] = None
    dirty: bool = False
    arch_hint: Optional[str] = None
    pae_hint: Optional[bool] = None


def _release_parts(release: str) -> _Parts:
    nums = _numbers(release)
    if nums is None:
        raise VersionError("not a kernel release: %r" % release[:80])
    m = _RE_NUMBERS.match(release)
    assert m is not None
    rest = release[m.end():]
    p = _Parts(nums)
    if rest.endswith("+"):
        p.dirty = True
        rest = rest[:-1]
    mr = _RE_RC.search(rest)
    if mr:
        p.rc = int(mr.group(1))
    mn = _RE_NEXT.search(rest)
    if mn:
        p.next_date = mn.group(1)
    mg = _RE_GIT.search(rest)
    if mg:
        p.git_commits = int(mg.group(1))
        p.git_hash = mg.group(2)
    local = _RE_GIT.sub("", _RE_NEXT.sub("", rest))
    local = _RE_RC.sub("", local)
    p.local = local or None
    if _X86_64_WORDS.search(release):
        p.arch_hint = "x86_64"
    elif _I686_WORDS.search(release):
        p.arch_hint = "i686"
    if re.search(r"(?:^|[-._])(?:686-)?pae(?:$|[-._])", release, re.I):
        p.pae_hint = True
    return p


def parse_release(release: str) -> KernelVersion:
    """A :class:`KernelVersion` from ``uname -r`` alone (no build string: a Debian or
    Ubuntu ABI release gets ``sublevel_known`` False)."""
    return parse_version_line(release)


# ---------------------------------------------------------------------------
# distributions
# ---------------------------------------------------------------------------
# Debian-style package signature in the build string: "Debian 6.1.192-3 (2026-11-26)";
# Raspberry Pi OS adds an epoch ("Debian 1:6.1.69-1+rpt1"); Cumulus, Kali and Proxmox
# ("PMX 6.8.12-4") use the same form.
_RE_DEB_SIG = re.compile(
    r"(?:^|\s)(?P<who>Debian|Cumulus|Kali|PMX)\s+(?P<pkg>(?:\d+:)?(?P<ver>\d+\.\d+(?:\.\d+)?)[-+~][^\s()]*)",
    re.I)
# the pre-3.x Debian package version, a top-level group before the builder
_RE_DEB_GROUP = re.compile(r"^Debian (?P<pkg>(?P<ver>\d+\.\d+(?:\.\d+)?)[-+~.][^\s()]*)$")
_RE_UBUNTU_SIG = re.compile(r"\(Ubuntu (?P<sig>\d[^\s()]*)(?: (?P<base>\d[^\s()]*))?\)")
_RE_UBUNTU_MAINLINE = re.compile(r"^\d+\.\d+\.\d+-0\d{5,7}(?:rc\d+)?-(?P<flavour>generic|lowlatency|generic-lpae)$")
_RE_UBUNTU_REL = re.compile(
    r"^\d+\.\d+\.\d+-\d+-(?P<flavour>generic(?:-pae|-lpae)?|lowlatency|server|virtual|aws|azure|gcp|gke|kvm|"
    r"oracle|oem|ibm|raspi2?|rt|realtime|nvidia(?:-[\w-]+)?|intel[\w-]*|hwe|fips|lts-\w+)$")
_RE_DEBIAN_REL = re.compile(
    r"^(?P<nums>\d+\.\d+(?:\.\d+)?)(?P<deb>\+deb\d+(?:[+.][\w.]+)?)?(?:-(?P<abi>\d+))?"
    r"-(?P<flavour>(?:cloud-|rt-)?(?:amd64|686(?:-pae|-bigmem)?|486|586|k7|xen-amd64|vserver-amd64|"
    r"openvz-amd64|unsigned-amd64|arm64|armmp(?:-lpae)?|marvell|powerpc64le|s390x))$")
_RE_FEDORA = re.compile(r"^(?P<nums>\d+\.\d+\.\d+)-(?P<rel>[\w.]+?)\.fc(?P<n>\d+)(?P<more>(?:\.\w+)*?)"
                        r"\.(?:x86_64|i686|noarch|aarch64)$")
_RE_RHEL = re.compile(r"^(?P<nums>\d+\.\d+\.\d+)-(?P<rel>[\w.]+?)\.el(?P<n>\d+)(?:_(?P<minor>\d+))?(?P<uek>uek)?"
                      r"(?:\.(?:x86_64|i686|aarch64))?$")
_RE_AMAZON = re.compile(r"^(?P<nums>\d+\.\d+\.\d+)-(?P<rel>[\w.]+?)\.amzn(?P<n>\d+)(?:\.(?:x86_64|aarch64))?$")
_RE_SLE = re.compile(r"^(?P<nums>\d+\.\d+\.\d+)-(?P<rel>1[5-6]\d{4}\.[\d.]+|\d+(?:\.\d+)*)"
                     r"-(?P<flavour>default|pae|desktop|xen|trace|rt|azure|preempt|kvmsmall|vanilla|ec2)$")
_RE_TUMBLEWEED = re.compile(r"^(?P<nums>\d+\.\d+\.\d+)-(?P<rel>\d+(?:\.g[0-9a-f]+|\.\d+)*)"
                           r"-(?P<flavour>default|pae|vanilla|preempt|longterm|kvmsmall)$")
_RE_ARCH = re.compile(r"-arch\d+-\d+(?:-ARCH)?$|-(?:lts|zen|hardened)\d*-?\d*$")
_RE_MANJARO = re.compile(r"-\d+-MANJARO$")
_RE_VOID = re.compile(r"^\d+\.\d+\.\d+_\d+$")
_RE_WSL = re.compile(r"-microsoft-standard(?:-WSL2)?\+?$")
_RE_YOCTO = re.compile(r"-(?:poky|yocto)(?:-|$)")
_RE_ROSA = re.compile(r"rosa")
_RE_GENTOO = re.compile(r"-gentoo(?:-|$)")
_RE_PVE = re.compile(r"^\d+\.\d+\.\d+-\d+-pve$")


def _base_from_text(text: str) -> Optional[Tuple[int, int, int]]:
    nums = _numbers(text)
    return _tuple3(nums) if nums and len(nums) >= 2 else None


def parse_version_line(text: str) -> KernelVersion:
    """Parse a ``Linux version ...`` line (kernel prefixes already stripped or not), or
    ``uname -r`` / ``uname -rv`` text, into a :class:`KernelVersion`.

    ``/proc/version_signature`` text (``Ubuntu 5.15.0-94.104-generic 5.15.136+``) is
    accepted too: its release is ``5.15.0-94-generic``.

    VersionError (one line) when the text holds no release (``x.y...``)."""
    msig = re.match(r"^\s*Ubuntu (\d+\.\d+\.\d+-\d+)\.[\w.~+]+?(-[a-z][\w-]*)? (\d[^\s()]*)\s*$", text)
    if msig:
        text = "%s%s #0-Ubuntu (%s)" % (msig.group(1), msig.group(2) or "", text.strip())
    release, groups, build = split_banner(text)
    p = _release_parts(release)
    builder = next((g for g in groups if "@" in g and " " not in g), None)
    compiler = next((g for g in groups if re.search(r"\b(?:gcc|clang|cc|GCC)\b|version \d", g)), None)
    kw: Dict[str, Any] = dict(
        release=release, release_numbers=p.nums, rc=p.rc, next_date=p.next_date,
        git_commits=p.git_commits, git_hash=p.git_hash, local=p.local, dirty=p.dirty,
        arch_hint=p.arch_hint, pae_hint=p.pae_hint, builder=builder, compiler=compiler,
        build=build or None, line=" ".join(text.split()))
    rel3 = _tuple3(p.nums)
    relstr = "%d.%d.%d" % rel3
    sub_stated = len(p.nums) >= 3

    # -- development trees -------------------------------------------------------
    def dev_why() -> Optional[str]:
        if p.next_date is not None:
            return ("linux-next of %s (based on %s%s): code newer than any release; %d.%d assumed"
                    % (p.next_date, relstr, "-rc%d" % p.rc if p.rc is not None else "", rel3[0], rel3[1]))
        if p.rc is not None and rel3[2] == 0:
            extra = " plus %d commits" % p.git_commits if p.git_commits else ""
            return ("mainline release candidate %d.%d-rc%d%s: the %d.%d release assumed; changes merged after it are missing"
                    % (rel3[0], rel3[1], p.rc, extra, rel3[0], rel3[1]))
        if p.git_commits is not None:
            return ("%d commits past v%s (git describe %s): changes of the next merge window may be present; %s assumed"
                    % (p.git_commits, relstr if rel3[2] else "%d.%d" % rel3[:2], p.git_hash, relstr))
        if p.rc is not None:
            return "stable review candidate %s-rc%d: the %s stable release assumed" % (relstr, p.rc, relstr)
        return None

    # -- distributions with a package signature ----------------------------------
    ms = _RE_DEB_SIG.search(build)
    mgroup = next((m for m in (_RE_DEB_GROUP.match(g) for g in groups) if m), None)
    mu = _RE_UBUNTU_SIG.search(build)
    if ms or mgroup:
        who = (ms.group("who") if ms else "Debian")
        pkg = (ms or mgroup).group("pkg")      # type: ignore[union-attr]
        ver = (ms or mgroup).group("ver")      # type: ignore[union-attr]
        sb = _base_from_text(ver)
        distro = {"debian": "debian", "cumulus": "cumulus", "kali": "kali", "pmx": "proxmox"}[who.lower()]
        mdeb = _RE_DEBIAN_REL.match(release)
        flavour = mdeb.group("flavour") if mdeb else None
        if ms and sb is not None and len(_numbers(ver) or ()) >= 3:
            why = ("sublevel %d from the %s package version %s in the build string"
                   % (sb[2], who, pkg))
            if rel3 != sb and rel3[2] == 0:
                why += " (the release's .0 is the ABI scheme)"
            return KernelVersion(base=sb, sublevel_known=True, confidence="high", why=dev_why() or why,
                                 distro=distro, package_version=pkg, stable_base=sb, stable_base_text=ver,
                                 flavour=flavour, **kw)
        # "(Debian 2.6.32-48squeeze1)": the package is 2.6.32's; its stable .y is not shown
        return KernelVersion(base=rel3, sublevel_known=sub_stated, confidence="medium",
                             why="Debian package %s: upstream %s with Debian's stable updates (the stable .y is not shown)"
                             % (pkg, relstr), distro=distro, package_version=pkg, flavour=flavour, **kw)
    if mu:
        sig, btxt = mu.group("sig"), mu.group("base")
        pkg, flavour = sig, None
        while True:
            mf = re.match(r"^(.*\d.*)-([a-z][a-z0-9]*)$", pkg)
            if not mf:
                break
            pkg, flavour = mf.group(1), mf.group(2) + ("-" + flavour if flavour else "")
        sb = _base_from_text(btxt) if btxt else None
        if sb is not None:
            return KernelVersion(base=sb, sublevel_known=True, confidence="high",
                                 why="upstream stable %s named by the Ubuntu signature (Ubuntu %s)" % (btxt, sig),
                                 distro="ubuntu", package_version=pkg, stable_base=sb, stable_base_text=btxt,
                                 flavour=flavour, **kw)
        return KernelVersion(base=rel3, sublevel_known=False, confidence="low",
                             why="Ubuntu %s names no upstream stable base: %s assumed" % (sig, relstr),
                             distro="ubuntu", package_version=pkg, flavour=flavour, **kw)

    # -- distributions recognised by the release ---------------------------------
    def rel(distro: Optional[str], confidence: str, why: str, known: bool = True, **more: Any) -> KernelVersion:
        dw = dev_why()
        if dw and confidence == "high":
            confidence, why = "medium", dw
        elif dw:
            why = dw + "; " + why
        return KernelVersion(base=rel3, sublevel_known=known and sub_stated, confidence=confidence,
                             why=why, distro=distro, **more, **kw)

    m = _RE_RHEL.match(release)
    if m:
        distro = "oracle-uek" if m.group("uek") else "rhel"
        pkg = "%s-%s.el%s%s" % (m.group("nums"), m.group("rel"), m.group("n"),
                                "_" + m.group("minor") if m.group("minor") else "")
        if m.group("uek"):
            return rel(distro, "medium", "Oracle UEK %s: based on upstream %s with Oracle's backports" % (pkg, relstr),
                       package_version=pkg + "uek")
        return rel(distro, "low", "RHEL-family kernel %s: %s is the branch point; Red Hat's backports make the code "
                   "newer than %s" % (pkg, relstr, relstr), package_version=pkg)
    m = _RE_AMAZON.match(release)
    if m:
        return rel("amazon", "medium", "Amazon Linux %s-%s: follows upstream stable %s with Amazon's patches"
                   % (m.group("nums"), m.group("rel"), relstr), package_version="%s-%s" % (m.group("nums"), m.group("rel")))
    m = _RE_FEDORA.match(release)
    if m:
        distro = "qubes" if "qubes" in (m.group("more") or "") else "fedora"
        return rel(distro, "high", "Fedora builds upstream stable releases: %s is upstream's" % relstr,
                   package_version="%s-%s.fc%s" % (m.group("nums"), m.group("rel"), m.group("n")))
    m = _RE_UBUNTU_MAINLINE.match(release)
    if m:
        return rel("ubuntu-mainline", "high", "Ubuntu mainline-PPA build of upstream %s (no Ubuntu patches)" % relstr,
                   flavour=m.group("flavour"))
    suse_text = (compiler or "") + " " + build
    m = _RE_SLE.match(release) or _RE_TUMBLEWEED.match(release)
    if m and (re.search(r"SUSE|openSUSE", suse_text) or re.match(r"1[5-6]\d{4}\.", m.group("rel"))):
        tumbleweed = "Tumbleweed" in suse_text or bool(re.match(r"\d+\.g[0-9a-f]+$", m.group("rel")))
        pkg = "%s-%s" % (m.group("nums"), m.group("rel"))
        if tumbleweed:
            return rel("suse", "high", "openSUSE Tumbleweed %s: upstream stable %s" % (pkg, relstr),
                       package_version=pkg, flavour=m.group("flavour"))
        return rel("suse", "low", "SUSE enterprise kernel %s: %s is the branch point; SUSE's backports make the code "
                   "newer" % (pkg, relstr), package_version=pkg, flavour=m.group("flavour"))
    m = _RE_UBUNTU_REL.match(release)
    if m or re.search(r"#\d+(?:~[\w.]+)?-Ubuntu\b", build):
        flavour = m.group("flavour") if m else None
        return rel("ubuntu", "low", "Ubuntu ABI release %s without its version signature: the upstream stable base is "
                   "not shown, %s assumed" % (release, relstr), known=False, flavour=flavour)
    m = _RE_DEBIAN_REL.match(release)
    if m:
        flavour = m.group("flavour")
        if m.group("deb") or (m.group("abi") is None and rel3[2] != 0):
            return rel("debian", "high", "Debian release %s carries its upstream sublevel" % release, flavour=flavour)
        return rel("debian", "low", "Debian ABI release %s without the package version (\"Debian x.y.z-n\" in the build "
                   "string): the sublevel is not shown, %s assumed" % (release, relstr), known=False, flavour=flavour)
    if _RE_PVE.match(release):
        return rel("proxmox", "high", "Proxmox release %s carries its upstream sublevel" % release, flavour="pve")
    if _RE_MANJARO.search(release):
        return rel("manjaro", "high", "Manjaro builds upstream stable %s" % relstr)
    if _RE_ARCH.search(release):
        return rel("arch", "high", "Arch Linux builds upstream stable %s (few patches)" % relstr)
    if _RE_VOID.match(release):
        return rel("void", "high", "Void Linux builds upstream stable %s" % relstr)
    if _RE_WSL.search(release):
        return rel("wsl", "high", "Microsoft's WSL2 kernel on upstream stable %s" % relstr)
    if _RE_YOCTO.search(release):
        return rel("yocto", "medium", "Yocto/Poky BSP kernel on upstream %s with the vendor's patches" % relstr)
    if _RE_GENTOO.search(release):
        return rel("gentoo", "high", "Gentoo sources of upstream stable %s" % relstr)
    if _RE_ROSA.search(release):
        return rel("rosa", "medium", "ROSA kernel on upstream %s with the distribution's patches" % relstr)
    why = "upstream or self-built release %s" % relstr
    if p.dirty:
        why += " (built from a tree with local changes: '+')"
    if not sub_stated:
        why += "; no sublevel in the release, 0 assumed"
    return rel(None, "high" if sub_stated else "medium", why)
