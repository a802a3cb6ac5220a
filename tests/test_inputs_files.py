"""Bounded reading of input files (emu.inputs.files) and every reader that opens a file."""
from __future__ import annotations

import os
import socket
import stat

import pytest

from emu.errors import EmuError
from emu.inputs import files as F
from emu.inputs.dmesg import BootLogError, load_boot_log
from emu.inputs.e820 import E820Error, load_e820, parse_sysfs_memmap
from emu.inputs.kconfig import KConfigError, load_kconfig
from emu.inputs.sysmap import SysmapError, load_system_map

LOADERS = [
    (load_boot_log, BootLogError, "boot log"),
    (load_e820, E820Error, "e820 map"),
    (load_kconfig, KConfigError, "kernel .config"),
    (lambda p: load_system_map(p, min_symbols=1), SysmapError, "System.map"),
]


def one_line(exc: BaseException) -> str:
    s = str(exc)
    assert "\n" not in s and s
    return s


@pytest.mark.parametrize("dev", ["/dev/zero", "/dev/urandom", "/dev/full", "/dev/null"])
@pytest.mark.parametrize("load,err,what", LOADERS, ids=[w for _, _, w in LOADERS])
def test_devices_refused_by_type(dev, load, err, what):
    if not os.path.exists(dev):
        pytest.skip(dev + " missing")
    with pytest.raises(err) as e:
        load(dev)
    msg = one_line(e.value)
    assert msg.startswith(dev + ": is a character device, not ")
    assert isinstance(e.value, EmuError)


@pytest.mark.parametrize("load,err,what", LOADERS[:1] + LOADERS[2:], ids=[w for _, _, w in LOADERS[:1] + LOADERS[2:]])
def test_directory_refused(tmp_path, load, err, what):
    with pytest.raises(err, match=r"^%s: is a directory, not an? %s file$" % (tmp_path, what.replace(".", r"\."))):
        load(tmp_path)


def test_e820_directory_is_sysfs(tmp_path):
    # load_e820 reads a directory as /sys/firmware/memmap; an empty one has no entries
    with pytest.raises(E820Error, match=r"^%s: no memmap entries$" % tmp_path):
        load_e820(tmp_path)


def test_fifo_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for load, err, _what in LOADERS:
        with pytest.raises(err, match=r"^%s: is a FIFO \(named pipe\), not " % fifo):
            load(fifo)      # no writer: opening it for reading would block


def test_socket_refused(tmp_path):
    path = tmp_path / "sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(str(path))
        with pytest.raises(BootLogError, match=r": is a socket, not a boot log file$"):
            load_boot_log(path)
    finally:
        s.close()


def test_sparse_6g_refused_from_its_size(tmp_path, monkeypatch):
    big = tmp_path / "big.log"
    with open(big, "wb") as f:
        f.truncate(6 << 30)           # sparse: no blocks
    assert os.stat(big).st_size == 6 << 30

    def no_read(*a, **k):
        raise AssertionError("read a file that is over the cap")
    monkeypatch.setattr(F.os, "read", no_read)
    monkeypatch.setattr(F.os, "open", lambda *a, **k: (_ for _ in ()).throw(AssertionError("opened it")))
    for load, err, what in LOADERS:
        with pytest.raises(err) as e:
            load(big)
        assert one_line(e.value) == "%s: %s is 6 GiB, larger than the 64 MiB limit for %s" % (
            big, what, F.a(what))


def test_cap_is_a_constant_quoted_in_messages(tmp_path):
    f = tmp_path / "x.log"
    f.write_bytes(b"a" * 2000)
    with pytest.raises(F.InputFileError, match=r"2\.0 KiB, larger than the 1000 bytes limit"):
        F.read_input(f, "boot log", limit=1000)
    assert F.MAX_INPUT_BYTES == 64 << 20
    assert F.describe_size(F.MAX_INPUT_BYTES) == "64 MiB"


def test_empty_file(tmp_path):
    f = tmp_path / "empty.log"
    f.write_bytes(b"")
    with pytest.raises(BootLogError, match=r"^%s: empty file, not a boot log$" % f):
        load_boot_log(f)
    with pytest.raises(E820Error, match=r"^%s: empty file: no e820 entries$" % f):
        load_e820(f)
    with pytest.raises(KConfigError, match=r"empty file"):
        load_kconfig(f)
    assert F.read_input(f, "x", empty_ok=True) == b""


def test_binary_detected_on_the_first_block(tmp_path, monkeypatch):
    f = tmp_path / "bin.log"
    f.write_bytes(b"\x7fELF\x02\x01\x01\x00" + b"\x00" * (4 << 20))
    reads = []
    real_read = os.read

    def counting_read(fd, n):
        reads.append(n)
        return real_read(fd, n)
    monkeypatch.setattr(F.os, "read", counting_read)
    with pytest.raises(BootLogError, match=r"^%s: binary data \(NUL bytes\), not a boot log$" % f):
        load_boot_log(f)
    assert reads == [F.FIRST_BLOCK]            # the rest was never read


def test_not_utf8(tmp_path):
    f = tmp_path / "latin.map"
    f.write_bytes(bytes(range(0x80, 0x100)) * 400)
    with pytest.raises(SysmapError, match=r"^%s: not UTF-8 text \(\d+ undecodable bytes in the first" % f):
        load_system_map(f)


def test_missing_and_unreadable(tmp_path):
    with pytest.raises(BootLogError, match=r"^%s: cannot read boot log: No such file or directory$" % (tmp_path / "nope")):
        load_boot_log(tmp_path / "nope")
    if os.geteuid() != 0:
        f = tmp_path / "secret"
        f.write_text("x")
        f.chmod(0)
        with pytest.raises(BootLogError, match="Permission denied"):
            load_boot_log(f)


def test_relative_path_named_in_full(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    with pytest.raises(BootLogError) as e:
        load_boot_log("sub/none.log")
    assert one_line(e.value).startswith(str(tmp_path / "sub" / "none.log") + ":")


def test_proc_file_without_size_is_read_bounded():
    # procfs reports size 0: the file is read, to at most the cap
    data = F.read_input("/proc/self/status", "status file")
    assert b"Name:" in data and os.stat("/proc/self/status").st_size == 0
    with pytest.raises(F.InputFileError, match="larger than the 16 bytes limit"):
        F.read_input("/proc/self/status", "status file", limit=16)


def test_sysfs_files_are_bounded(tmp_path):
    d = tmp_path / "0"
    d.mkdir()
    (d / "start").write_text("0x0\n")
    (d / "end").write_text("0xfff\n")
    os.mkfifo(d / "type")
    with pytest.raises(E820Error, match=r"type: is a FIFO"):
        parse_sysfs_memmap(tmp_path)
    os.unlink(d / "type")
    (d / "type").write_text("System RAM" + " " * 5000)
    with pytest.raises(E820Error, match=r"larger than the 4 KiB limit"):
        parse_sysfs_memmap(tmp_path)
    (d / "type").write_text("System RAM\n")
    assert len(parse_sysfs_memmap(tmp_path)) == 1


def test_kind_names():
    assert F._kind(stat.S_IFREG) is None
    assert F._kind(stat.S_IFBLK) == "a block device"
    assert F.a("e820 map") == "an e820 map" and F.a("boot log") == "a boot log"
