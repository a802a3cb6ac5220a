"""The kernel version line in every common form (emu.inputs.version).

Every line is a real one; its source is given (``index:N`` = a read_file id of the search
tool's file index, as collected in /work/research/version_lines.md; URLs; the corpus
``shared/corpus/dmesg``; the Debian boots of tests/data/memblock_logs)."""
from __future__ import annotations

from pathlib import Path

import pytest

from emu.errors import EmuError
from emu.inputs.dmesg import load_boot_log
from emu.inputs.version import KernelVersion, VersionError, parse_release, parse_version_line, split_banner

DATA = Path(__file__).resolve().parent / "data" / "memblock_logs"

# (source, line, release, version, distro, confidence, sublevel_known, extra checks)
CASES = [
    # -- upstream / self-built
    ("https://github.com/1000001101000/Debian_on_Buffalo/issues/186",
     "Linux version 5.10.179 (root@0f8a322422df) (arm-linux-gnueabi-gcc (Debian 10.2.1-6) 10.2.1 20210110, GNU ld "
     "(GNU Binutils for Debian) 2.35.2) #17 Wed Jun 14 17:41:29 UTC 2023",
     "5.10.179", "5.10.179", None, "high", True, {}),
    ("https://github.com/void-linux/void-packages/pull/28075",
     "Linux version 5.10.9_1 (voidlinux@voidlinux) (gcc (GCC) 10.2.1 20201203, GNU ld (GNU Binutils) 2.35.1) #1 SMP 1611207649",
     "5.10.9_1", "5.10.9", "void", "high", True, {}),
    ("corpus 3.7.5_i686_id14904653179.log",
     "Linux version 3.7.5 (chris@laptop) (gcc version 4.7.3 20130126 (prerelease) (GCC) ) #23 SMP PREEMPT Fri Feb 1 10:06:14 GMT 2013",  # noqa: E501 (a real version line)
     "3.7.5", "3.7.5", None, "high", True, {"builder": "chris@laptop"}),
    # -- stable-rc
    ("index:6625429539 (LKFT)",
     "Linux version 5.10.168-rc1 (tuxmake@tuxmake) (aarch64-linux-gnu-gcc (Debian 11.3.0-11) 11.3.0, GNU ld (GNU Binutils "
     "for Debian) 2.40) #1 SMP PREEMPT @1676300748",
     "5.10.168-rc1", "5.10.168", None, "medium", True, {"rc": 1, "prerelease": False}),
    # -- mainline -rc with git describe
    ("index:34821109701 (corpus 3.10.0-rc6-00397-gee17608_i686)",
     "Linux version 3.10.0-rc6-00397-gee17608 (kbuild@roam) (gcc version 4.8.1 (Debian 4.8.1-3) ) #195 Sat Jun 22 03:43:37 CST 2013",  # noqa: E501 (a real version line)
     "3.10.0-rc6-00397-gee17608", "3.10.0", None, "medium", True,
     {"rc": 6, "git_commits": 397, "git_hash": "ee17608", "prerelease": True}),
    ("index:45509182612 (corpus 3.13.0-02621-g1738cc0_i686)",
     "Linux version 3.13.0-02621-g1738cc0 (kbuild@cairo) (gcc version 4.8.1 (Debian 4.8.1-5) ) #1 SMP Wed Jan 22 2014",
     "3.13.0-02621-g1738cc0", "3.13.0", None, "medium", True, {"git_commits": 2621, "rc": None, "prerelease": True}),
    # -- linux-next
    ("index:3414046839 (LKFT)",
     "Linux version 6.4.0-rc3-next-20230524 (tuxmake@tuxmake) (x86_64-linux-gnu-gcc (Debian 11.3.0-12) 11.3.0, GNU ld "
     "(GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC @1684908723",
     "6.4.0-rc3-next-20230524", "6.4.0", None, "medium", True, {"next_date": "20230524", "rc": 3}),
    ("index:45775797080 (corpus)",
     "Linux version 3.14.0-rc6-next-20140317 (kbuild@xian) (gcc version 4.8.2 (Debian 4.8.2-16) ) #1 SMP Mon Mar 17 20:01:18 CST 2014",  # noqa: E501 (a real version line)
     "3.14.0-rc6-next-20140317", "3.14.0", None, "medium", True, {"next_date": "20140317"}),
    # -- local "+" builds
    ("https://github.com/geerlingguy/sbc-reviews/issues/21",
     "Linux version 6.1.47-v8_16k+ (pi@pi5) (gcc (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP "
     "PREEMPT Thu Sep 21 21:07:03 CDT 2023",
     "6.1.47-v8_16k+", "6.1.47", None, "high", True, {"dirty": True, "local": "-v8_16k"}),
    ("index:13392484188 (corpus 3.9.0mmotmfix+)",
     "Linux version 3.9.0mmotmfix+ (mhocko@noe) (gcc version 4.3.4 [gcc-4_3-branch revision 152973] (SUSE Linux) ) #1493 SMP "
     "Thu Jul 4 10:20:10 CEST 2013",
     "3.9.0mmotmfix+", "3.9.0", None, "high", True, {"dirty": True, "local": "mmotmfix"}),
    # -- Debian
    ("index:5979215548 (Debian bullseye)",
     "Linux version 5.10.0-11-amd64 (debian-kernel@lists.debian.org) (gcc-10 (Debian 10.2.1-6) 10.2.1 20210110, GNU ld "
     "(GNU Binutils for Debian) 2.35.2) #1 SMP Debian 5.10.92-1 (2022-01-18)",
     "5.10.0-11-amd64", "5.10.92", "debian", "high", True,
     {"package_version": "5.10.92-1", "stable_base": (5, 10, 92), "flavour": "amd64", "arch_hint": "x86_64"}),
    ("index:70900616212 (Debian bookworm)",
     "Linux version 6.1.0-42-cloud-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, "
     "GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.159-1 (2025-12-30)",
     "6.1.0-42-cloud-amd64", "6.1.159", "debian", "high", True,
     {"package_version": "6.1.159-1", "flavour": "cloud-amd64",
      "compiler": "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40"}),
    ("index:57038677947 (Debian trixie)",
     "Linux version 6.12.48+deb13-amd64 (debian-kernel@lists.debian.org) (x86_64-linux-gnu-gcc-14 (Debian 14.2.0-19) "
     "14.2.0, GNU ld (GNU Binutils for Debian) 2.44) #1 SMP PREEMPT_DYNAMIC Debian 6.12.48-1 (2025-09-20)",
     "6.12.48+deb13-amd64", "6.12.48", "debian", "high", True, {"package_version": "6.12.48-1"}),
    ("index:55898524277 (uname -rv, Debian trixie ABI suffix)",
     "6.12.74+deb13+1-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.12.74-2 (2026-03-08)",
     "6.12.74+deb13+1-amd64", "6.12.74", "debian", "high", True, {"package_version": "6.12.74-2"}),
    ("index:7796596933 (uname -rv, lower case)",
     "5.10.0-33-cloud-amd64 #1 smp debian 5.10.226-1 (2024-10-03)",
     "5.10.0-33-cloud-amd64", "5.10.226", "debian", "high", True, {}),
    ("index:31121320200 (sid before +deb13)", "6.12.20-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.12.20-1 (2025-03-23)",
     "6.12.20-amd64", "6.12.20", "debian", "high", True, {}),
    # -- Ubuntu
    ("index:9109878201",
     "Linux version 5.15.0-72-generic (buildd@lcy02-amd64-035) (gcc (Ubuntu 11.3.0-1ubuntu1~22.04.1) 11.3.0, GNU ld "
     "(GNU Binutils for Ubuntu) 2.38) #79-Ubuntu SMP Wed Apr 19 08:22:18 UTC 2023 (Ubuntu 5.15.0-72.79-generic 5.15.98)",
     "5.15.0-72-generic", "5.15.98", "ubuntu", "high", True,
     {"package_version": "5.15.0-72.79", "flavour": "generic", "stable_base_text": "5.15.98"}),
    ("index:56855627904 (corpus 2.6.32-22-generic-pae_i686)",
     "Linux version 2.6.32-22-generic-pae (buildd@rothera) (gcc version 4.4.3 (Ubuntu 4.4.3-4ubuntu5) ) #33-Ubuntu SMP "
     "Wed Apr 28 14:57:29 UTC 2010 (Ubuntu 2.6.32-22.33-generic-pae 2.6.32.11+drm33.2)",
     "2.6.32-22-generic-pae", "2.6.32", "ubuntu", "high", True,
     {"flavour": "generic-pae", "stable_base_text": "2.6.32.11+drm33.2", "pae_hint": True, "arch_hint": "i686"}),
    ("index:48602492841 (corpus 3.13.0-48-generic)",
     "Linux version 3.13.0-48-generic (buildd@orlo) (gcc version 4.8.2 (Ubuntu 4.8.2-19ubuntu1) ) #80-Ubuntu SMP Thu Mar 12 "
     "11:16:15 UTC 2015 (Ubuntu 3.13.0-48.80-generic 3.13.11-ckt16)",
     "3.13.0-48-generic", "3.13.11", "ubuntu", "high", True, {"stable_base_text": "3.13.11-ckt16"}),
    ("corpus 2.6.31-11-rt_x86_64_id56721306684.log (signature without a base)",
     "Linux version 2.6.31-11-rt (buildd@crested) (gcc version 4.4.3 (Ubuntu 4.4.3-4ubuntu5) ) #154-Ubuntu SMP PREEMPT RT "
     "Wed Jun 9 13:40:34 UTC 2010 (Ubuntu 2.6.31-11.154-rt)",
     "2.6.31-11-rt", "2.6.31", "ubuntu", "low", False, {"flavour": "rt"}),
    ("index:41839687791 (/proc/version_signature)", "Ubuntu 5.15.0-94.104-generic 5.15.136+",
     "5.15.0-94-generic", "5.15.136", "ubuntu", "high", True, {"package_version": "5.15.0-94.104"}),
    ("index:56874645079 (corpus 4.1.0-040100-generic: mainline PPA)",
     "Linux version 4.1.0-040100-generic (kernel@gloin) (gcc version 4.8.4 (Ubuntu 4.8.4-2ubuntu1~14.04) ) #201507030940 SMP "
     "Fri Jul 3 09:41:47 UTC 2015",
     "4.1.0-040100-generic", "4.1.0", "ubuntu-mainline", "high", True, {}),
    # -- Fedora / RHEL family
    ("index:28135846081",
     "Linux version 6.9.7-200.fc40.x86_64 (mockbuild@8d858239ee7c403c892e8a84096b3ce3) (gcc (GCC) 14.1.1 20240620 "
     "(Red Hat 14.1.1-6), GNU ld version 2.41-37.fc40) #1 SMP PREEMPT_DYNAMIC Thu Jun 27 18:11:45 UTC 2024",
     "6.9.7-200.fc40.x86_64", "6.9.7", "fedora", "high", True, {"package_version": "6.9.7-200.fc40"}),
    ("https://github.com/QubesOS/qubes-issues/issues/1590",
     "Linux version 5.10.54-1.fc32.qubes.x86_64 (mockbuild@build-fedora4) (gcc (GCC) 10.3.1 20210422 (Red Hat 10.3.1-1), "
     "GNU ld version 2.34-6.fc32) #1 SMP Fri Jul 30 18:17:00 CEST 2021",
     "5.10.54-1.fc32.qubes.x86_64", "5.10.54", "qubes", "high", True, {}),
    ("index:1232998201 (CentOS 7)",
     "Linux version 3.10.0-1127.el7.x86_64 (mockbuild@kbuilder.bsys.centos.org) (gcc version 4.8.5 20150623 "
     "(Red Hat 4.8.5-39) (GCC) ) #1 SMP Tue Mar 31 23:36:51 UTC 2020",
     "3.10.0-1127.el7.x86_64", "3.10.0", "rhel", "low", True, {"package_version": "3.10.0-1127.el7"}),
    ("index:66789249256 (RHEL 8.9)",
     "Linux version 4.18.0-513.9.1.el8_9.x86_64 (mockbuild@x86-vm-09.build.eng.bos.redhat.com) (gcc version 8.5.0 20210514 "
     "(Red Hat 8.5.0-20) (GCC)) #1 SMP Thu Nov 16 10:29:04 EST 2023",
     "4.18.0-513.9.1.el8_9.x86_64", "4.18.0", "rhel", "low", True, {"package_version": "4.18.0-513.9.1.el8_9"}),
    ("index:4660141552 (Rocky 9.3, uname -rv)", "5.14.0-362.13.1.el9_3.x86_64 #1 SMP PREEMPT_DYNAMIC Wed Dec 13 14:07:45 UTC 2023",  # noqa: E501 (a real version line)
     "5.14.0-362.13.1.el9_3.x86_64", "5.14.0", "rhel", "low", True, {}),
    ("index:12159975331 (Amazon Linux 2)",
     "Linux version 4.14.123-111.109.amzn2.x86_64 (mockbuild@ip-10-0-1-12) (gcc version 7.3.1 20180303 (Red Hat 7.3.1-5) "
     "(GCC)) #1 SMP Mon Jun 10 19:37:57 UTC 2019",
     "4.14.123-111.109.amzn2.x86_64", "4.14.123", "amazon", "medium", True, {}),
    # -- SUSE
    ("index:66697056287 (SLES 15 SP4)",
     "Linux version 5.14.21-150400.24.103-default (geeko@buildhost) (gcc (SUSE Linux) 7.5.0, GNU ld (GNU Binutils; SUSE "
     "Linux Enterprise 15) 2.41.0.20230908-150100.7.46) #1 SMP PREEMPT_DYNAMIC Wed Jan 10 13:40:49 UTC 2024 (8afebed)",
     "5.14.21-150400.24.103-default", "5.14.21", "suse", "low", True, {"flavour": "default"}),
    ("index:13042936179 (SLES 11)",
     "Linux version 3.0.101-63-default (geeko@buildhost) (gcc version 4.3.4 [gcc-4_3-branch revision 152973] (SUSE Linux) ) "
     "#1 SMP Tue Jun 23 16:02:31 UTC 2015 (4b89d0c)",
     "3.0.101-63-default", "3.0.101", "suse", "low", True, {}),
    ("index:14229509500 (openSUSE Tumbleweed)",
     "Linux version 5.14.11-0.g6451538-default (geeko@buildhost) (gcc (SUSE Linux) 11.2.1 20210816, GNU ld (GNU Binutils; "
     "openSUSE Tumbleweed) 2.37.20210803-1) #1 SMP Wed Oct 13 12:57:23 UTC 2021 (6451538)",
     "5.14.11-0.g6451538-default", "5.14.11", "suse", "high", True, {}),
    # -- Arch and others
    ("index:25360334927 (util-linux test data)",
     "Linux version 6.6.4-arch1-1 (linux@archlinux) (gcc (GCC) 13.2.1 20230801, GNU ld (GNU Binutils) 2.41.0) #1 SMP "
     "PREEMPT_DYNAMIC Mon, 04 Dec 2023 00:29:19 +0000",
     "6.6.4-arch1-1", "6.6.4", "arch", "high", True, {}),
    ("index:31342472165",
     "Linux version 4.20.0-arch1-1-ARCH (builduser@heftig-29859) (gcc version 8.2.1 20181127 (GCC)) #1 SMP PREEMPT "
     "Mon Dec 24 03:00:40 UTC 2018",
     "4.20.0-arch1-1-ARCH", "4.20.0", "arch", "high", True, {}),
    ("https://github.com/stefanpartheym/archlinux-ipu6-webcam/pull/42",
     "Linux version 6.1.55-1-MANJARO (builduser@fv-az956-768) (gcc (GCC) 13.2.1 20230801, GNU ld (GNU Binutils) 2.41.0) "
     "#1 SMP PREEMPT_DYNAMIC Sat Sep 23 12:13:56 UTC 2023",
     "6.1.55-1-MANJARO", "6.1.55", "manjaro", "high", True, {}),
    ("index:70933712579 (WSL2)", "Linux version 5.15.167.4-microsoft-standard-WSL2 (root@f9c826d3017f)",
     "5.15.167.4-microsoft-standard-WSL2", "5.15.167", "wsl", "high", True, {}),
    ("index:8495680862 (corpus 3.10.98-poky-edison+: Yocto)",
     "Linux version 3.10.98-poky-edison+ (neck@flax) (gcc version 4.9.6 (GCC) ) #1 SMP PREEMPT Tue Jul 26 2016",
     "3.10.98-poky-edison+", "3.10.98", "yocto", "medium", True, {"dirty": True}),
    ("corpus 4.1.0-cl-6-amd64_x86_64_id20062492476.log (Cumulus, Debian-style signature)",
     "Linux version 4.1.0-cl-6-amd64 (dev-support@cumulusnetworks.com) (gcc version 4.9.2 (Debian 4.9.2-10) ) #1 SMP "
     "Cumulus 4.1.33-1+cl3u12 (2018-02-25)",
     "4.1.0-cl-6-amd64", "4.1.33", "cumulus", "high", True, {}),
    ("corpus 3.14.44-nrj-desktop-2rosa-i586 (ROSA)",
     "Linux version 3.14.44-nrj-desktop-2rosa-i586 (XXX@XXX) (gcc version 4.9.2 20140811 (ROSA) (Linaro GCC 4.9-2014.08) ) "
     "#1 SMP PREEMPT Thu Jun 11 15:04:26 UTC 2015",
     "3.14.44-nrj-desktop-2rosa-i586", "3.14.44", "rosa", "medium", True, {"arch_hint": "i686"}),
]


@pytest.mark.parametrize("source,line,release,version,distro,confidence,known,extra", CASES,
                         ids=[c[2] for c in CASES])
def test_forms(source, line, release, version, distro, confidence, known, extra):
    v = parse_version_line(line)
    assert v.release == release
    assert v.version == version and v.base == tuple(int(x) for x in version.split("."))
    assert v.distro == distro
    assert v.confidence == confidence and v.sublevel_known is known
    assert v.why
    for k, want in extra.items():
        assert getattr(v, k) == want, k


def test_compiler_version_never_taken_for_the_kernels():
    """The bug of emu.tools.oracle.compare.guest_profile_name: the first "Debian x.y.z" of the
    line is gcc's package ("(Debian 12.2.0-14+deb12u1)"), which picked profile 6.15 for
    every Debian kernel.  Real lines of the Debian boots in tests/data/memblock_logs."""
    want = {"bullseye-amd64-512M-initrd.log": ("5.10.0-46-amd64", "5.10.262"),
            "bookworm-amd64-4G-gb-intel-pti.log": ("6.1.0-57-amd64", "6.1.192"),
            "trixie-amd64-2G-la57-gb.log": ("6.12.118+deb13-amd64", "6.12.118"),
            "bullseye-686-pae-512M-initrd.log": ("5.10.0-32-686-pae", "5.10.223"),
            "bookworm-686-512M.log": ("6.1.0-57-686", "6.1.192")}
    for name, (rel, ver) in want.items():
        bl = load_boot_log(DATA / name)
        assert bl.version is not None
        assert (bl.version.release, bl.version.version) == (rel, ver)
        assert bl.version.compiler and "Debian 1" in bl.version.compiler     # the gcc package, parsed as such
        assert bl.version.major < 10
        assert bl.kernel_version == rel and bl.version_tuple == bl.version.release_numbers[:3]


def test_no_signature_is_said():
    v = parse_release("5.10.0-11-amd64")
    assert v.version == "5.10.0" and not v.sublevel_known and v.confidence == "low"
    assert "not shown" in v.why
    v = parse_release("5.15.0-72-generic")
    assert v.distro == "ubuntu" and not v.sublevel_known and "assumed" in v.why


def test_split_banner_nesting():
    rel, groups, build = split_banner(
        "Linux version 2.6.32-5-amd64 (Debian 2.6.32-48squeeze1) (dannf@debian.org) (gcc version 4.3.5 (Debian 4.3.5-4) ) "
        "#1 SMP Mon Feb 25 00:26:11 UTC 2013")
    assert rel == "2.6.32-5-amd64"
    assert groups == ["Debian 2.6.32-48squeeze1", "dannf@debian.org", "gcc version 4.3.5 (Debian 4.3.5-4)"]
    assert build.startswith("#1 SMP")
    v = parse_version_line("Linux version 2.6.32-5-amd64 (Debian 2.6.32-48squeeze1) (dannf@debian.org) "
                           "(gcc version 4.3.5 (Debian 4.3.5-4) ) #1 SMP Mon Feb 25 00:26:11 UTC 2013")
    assert v.distro == "debian" and v.package_version == "2.6.32-48squeeze1" and v.version == "2.6.32"


def test_truncated_line():
    # a quoted-printable mail cut the compiler group: the release still parses (corpus 3.12.0-rc1)
    v = parse_version_line("Linux version 3.12.0-rc1-00010-g5fbc0a6 (kbuild@roam) (gcc v")
    assert v.release == "3.12.0-rc1-00010-g5fbc0a6" and v.rc == 1 and v.build is None


@pytest.mark.parametrize("bad", ["", "Linux version", "Linux version (gcc)", "hello world", "#1 SMP"])
def test_not_a_version(bad):
    with pytest.raises(VersionError) as e:
        parse_version_line(bad)
    assert isinstance(e.value, EmuError) and "\n" not in str(e.value)


def test_to_json():
    v = parse_version_line("6.12.74+deb13+1-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.12.74-2 (2026-03-08)")
    j = v.to_json()
    assert j["version"] == "6.12.74" and j["distro"] == "debian" and j["stable_base"] == [6, 12, 74]
    assert isinstance(v, KernelVersion)
