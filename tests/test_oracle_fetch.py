"""``emu oracle fetch`` without the network: apt, dpkg and kallsyms-finder are fakes that
record their command lines and play their part in the cache folder."""
from __future__ import annotations

import json
import os

import pytest

from emu.tools.oracle import fetch as F
from emu.tools.oracle.qemu import OracleError

NAMES = """linux-image-6.1.0-9-amd64-unsigned
linux-image-6.1.0-57-amd64-unsigned
linux-image-6.1.0-56-amd64-unsigned
linux-image-6.1.0-57-amd64
linux-image-6.1.0-57-amd64-dbg
linux-image-6.1.0-57-cloud-amd64-unsigned
linux-image-6.1.0-57-rt-amd64-unsigned
linux-image-6.1.0-57-686-pae-unsigned
linux-image-6.1.0-56-686-pae-unsigned
linux-image-6.1.0-57-686-pae-dbg
linux-image-6.1.0-57-rt-686-pae-unsigned
linux-image-amd64
linux-image-6.12.118+deb13-amd64-unsigned
linux-image-6.12.9+deb13-amd64-unsigned
linux-image-5.10.0-46-amd64-unsigned"""


def _symbols(data: bool = True) -> str:
    lines = [f"ffffffff81{i:06x} t func_{i}" for i in range(1200)]
    if data:
        lines += ["ffffffff82c05500 D memblock", "ffffffff831cfc80 d pgt_buf_end"]
    return "\n".join(lines) + "\n"


class FakeTools:
    """apt-get / apt-cache / dpkg / kallsyms-finder as the fetch sees them."""

    def __init__(self, names=NAMES, missing=(), shipped_map=False, kallsyms_data=True, apt_down=False):
        self.names, self.missing, self.shipped_map = names, set(missing), shipped_map
        self.kallsyms_data, self.apt_down = kallsyms_data, apt_down
        self.calls = []

    def __call__(self, cmd, cwd=None):
        self.calls.append((list(cmd), cwd))
        tool = os.path.basename(cmd[0])
        words = [c for i, c in enumerate(cmd) if c != "-o" and (i == 0 or cmd[i - 1] != "-o")]
        if tool in ("apt-get", "apt-cache") and self.apt_down:
            raise OracleError("apt-get update failed: E: Could not resolve 'deb.debian.org'")
        if tool == "apt-get" and "update" in words:
            return ""
        if tool == "apt-cache" and "pkgnames" in words:
            prefix = words[-1]
            return "\n".join(n for n in self.names.split() if n.startswith(prefix)) + "\n"
        if tool == "apt-get" and "download" in words:
            pkg, arch = words[-1].split(":")
            if pkg in self.missing:
                raise OracleError(f"apt-get download {pkg} failed: E: Failed to fetch ... 404  Not Found")
            with open(os.path.join(cwd, f"{pkg}_1.2.3-4_{arch}.deb"), "w") as f:
                f.write("deb")
            return ""
        if tool == "dpkg" and cmd[1] == "-x":
            deb, tree = cmd[2], cmd[3]
            kver = os.path.basename(deb).split("_")[0][len("linux-image-"):].replace("-unsigned", "")
            os.makedirs(os.path.join(tree, "boot"), exist_ok=True)
            for name, text in ((f"vmlinuz-{kver}", "image"), (f"config-{kver}", "CONFIG_X86_64=y\n"),
                               (f"System.map-{kver}", _symbols() if self.shipped_map else
                                "ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n")):
                with open(os.path.join(tree, "boot", name), "w") as f:
                    f.write(text)
            return ""
        if tool == "kallsyms-finder":
            return _symbols(self.kallsyms_data)
        raise AssertionError(f"unexpected command {cmd}")

    def apt_calls(self):
        return [c for c, _ in self.calls if os.path.basename(c[0]) in ("apt-get", "apt-cache")]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EMU_ORACLE_CACHE", str(tmp_path))
    monkeypatch.setattr(F, "_kallsyms_finder", lambda: "kallsyms-finder")
    return tmp_path


def test_newest_package_with_emus_own_apt_configuration(cache):
    tools = FakeTools()
    ki = F.fetch("amd64", release="6.1", run=tools)
    assert ki.package == "linux-image-6.1.0-57-amd64-unsigned" and ki.version == "6.1.0-57-amd64"
    assert ki.release == "6.1" and ki.arch == "amd64" and ki.debian_version == "1.2.3-4"
    assert ki.symbols_from == "kallsyms" and ki.config.endswith("config-6.1.0-57-amd64")
    apt_root = os.path.join(str(cache), "apt", "bookworm")
    for cmd in tools.apt_calls():
        assert f"Dir::Etc::sourcelist={apt_root}/sources.list" in cmd and "Dir::Etc::sourceparts=-" in cmd
        assert f"Dir::State::Lists={apt_root}/lists" in cmd and f"Dir::Cache={apt_root}/cache" in cmd
        assert not any("/etc/apt" in c or "/var/lib/apt" in c for c in cmd)
    sources = open(os.path.join(apt_root, "sources.list")).read()
    assert " bookworm main" in sources and " bookworm-security main" in sources and "bullseye" not in sources
    downloads = [c[-1] for c in tools.apt_calls() if "download" in c]
    assert downloads == ["linux-image-6.1.0-57-amd64-unsigned:amd64"]
    # a second fetch is a no-op
    tools2 = FakeTools()
    assert F.fetch("amd64", release="6.1", run=tools2) == ki and tools2.calls == []
    assert F.cached("amd64", "6.1") == ki and F.cached("amd64", "5.10") is None


def test_flavours_and_releases_resolve_their_own_packages(cache):
    tools = FakeTools()
    assert F.candidates(F.Apt(str(cache / "a"), F.RELEASES["6.1"], tools), "amd64") == [
        "linux-image-6.1.0-57-amd64-unsigned", "linux-image-6.1.0-56-amd64-unsigned",
        "linux-image-6.1.0-9-amd64-unsigned"]
    assert F.candidates(F.Apt(str(cache / "a"), F.RELEASES["6.1"], tools), "cloud-amd64") == [
        "linux-image-6.1.0-57-cloud-amd64-unsigned"]
    assert F.candidates(F.Apt(str(cache / "b"), F.RELEASES["6.12"], tools), "amd64") == [
        "linux-image-6.12.118+deb13-amd64-unsigned", "linux-image-6.12.9+deb13-amd64-unsigned"]
    ki = F.fetch("amd64", release="6.12", run=tools)
    assert ki.version == "6.12.118+deb13-amd64" and ki.release == "6.12"
    assert "trixie" in ki.bzimage and os.path.exists(os.path.join(str(cache), "apt", "trixie", "sources.list"))


def test_a_package_the_mirror_lacks_falls_back_to_an_older_one(cache):
    tools = FakeTools(missing={"linux-image-6.1.0-57-686-pae-unsigned"}, kallsyms_data=False)
    dbg_maps = []

    def fake_dbg(apt, package, arch, dest, out):
        dbg_maps.append((package, arch))
        with open(out, "w") as f:
            f.write(_symbols())
    F_dbg = F.fetch_dbg_system_map
    try:
        F.fetch_dbg_system_map = fake_dbg
        ki = F.fetch("686-pae", release="6.1", run=tools)
    finally:
        F.fetch_dbg_system_map = F_dbg
    assert ki.package == "linux-image-6.1.0-56-686-pae-unsigned" and ki.arch == "i386"
    assert any("6.1.0-57-686-pae-unsigned could not be downloaded" in n for n in ki.notes)
    # i386 kallsyms without data symbols: the System.map of the -dbg package
    assert ki.symbols_from == "dbg System.map" and dbg_maps == [("linux-image-6.1.0-56-686-pae-dbg", "i386")]
    assert any("no data symbols" in n for n in ki.notes)


def test_kallsyms_finder_failing_falls_back_to_the_dbg_system_map(cache, monkeypatch):
    tools = FakeTools()
    real = tools.__call__

    def run(cmd, cwd=None):
        if os.path.basename(cmd[0]) == "kallsyms-finder":
            raise OracleError("kallsyms-finder failed: ArchitectureGuessError")
        return real(cmd, cwd)

    def fake_dbg(apt, package, arch, dest, out):
        with open(out, "w") as f:
            f.write(_symbols())
    monkeypatch.setattr(F, "fetch_dbg_system_map", fake_dbg)
    ki = F.fetch("cloud-amd64", release="6.1", run=run)
    assert ki.symbols_from == "dbg System.map" and any("ArchitectureGuessError" in n for n in ki.notes)


def test_shipped_system_map_is_preferred(cache):
    tools = FakeTools(shipped_map=True)
    ki = F.fetch("amd64", release="6.1", run=tools)
    assert ki.symbols_from == "System.map" and ki.symbols.endswith("boot/System.map-6.1.0-57-amd64")
    assert not any(os.path.basename(c[0]) == "kallsyms-finder" for c, _ in tools.calls)


def test_apt_failing_is_not_fatal_when_the_cache_has_the_package(cache):
    F.fetch("amd64", release="6.1", run=FakeTools())
    os.unlink(os.path.join(F.kernel_dir(F.RELEASES["6.1"], "amd64"), "kernel.json"))
    ki = F.fetch("amd64", release="6.1", run=FakeTools(apt_down=True))
    assert ki.package == "linux-image-6.1.0-57-amd64-unsigned"
    assert any("using the cached linux-image-6.1.0-57-amd64-unsigned" in n for n in ki.notes)
    with pytest.raises(OracleError, match="Could not resolve"):
        F.fetch("amd64", release="5.10", run=FakeTools(apt_down=True))


def test_unknown_release_flavour_and_missing_kernels(cache):
    with pytest.raises(OracleError, match="unknown release '5.4'"):
        F.fetch("amd64", release="5.4", run=FakeTools())
    with pytest.raises(OracleError, match="unknown flavour 'arm64'"):
        F.fetch("arm64", release="6.1", run=FakeTools())
    with pytest.raises(OracleError, match=r"trixie has no linux-image-6.12.N\+deb13-686-pae-unsigned package "
                                          r"\(trixie builds amd64, cloud-amd64\)"):
        F.fetch("686-pae", release="6.12", run=FakeTools())
    assert [r.codename for r in F.parse_releases("all")] == ["bullseye", "bookworm", "trixie"]
    assert F.parse_flavours("all", F.release_of("trixie")) == ["amd64", "cloud-amd64"]


def test_refresh_updates_the_lists(cache):
    tools = FakeTools()
    F.fetch("amd64", release="6.1", run=tools)
    tools2 = FakeTools(names=NAMES + "\nlinux-image-6.1.0-58-amd64-unsigned")
    ki = F.fetch("amd64", release="6.1", refresh=True, run=tools2)
    assert any("update" in c for c in tools2.apt_calls()) and ki.package == "linux-image-6.1.0-58-amd64-unsigned"
    with open(os.path.join(F.kernel_dir(F.RELEASES["6.1"], "amd64"), "kernel.json")) as f:
        assert json.load(f)["version"] == "6.1.0-58-amd64"


def test_cli_fetch_lists(cache, monkeypatch, capsys):
    from emu.tools.cli import main
    tools = FakeTools()
    real = F.fetch
    monkeypatch.setattr(F, "fetch", lambda fl, pkg=None, refresh=False, release="6.1": real(fl, pkg, refresh, release,
                                                                                              run=tools))
    assert main(["oracle", "fetch", "--release", "6.1,6.12", "--flavour", "amd64"]) == 0
    out = capsys.readouterr().out
    assert "6.1 amd64: linux-image-6.1.0-57-amd64-unsigned" in out and "6.12 amd64:" in out
    assert main(["oracle", "fetch", "--release", "6.12", "--flavour", "686"]) == 2
    assert "trixie (6.12) builds no 686 kernel" in capsys.readouterr().err
