"""Bounded reading of the files a user hands to emu.

Every reader of :mod:`emu.inputs` that opens a file (e820 files, boot logs, ``.config``,
``System.map``, the small files of ``/sys/firmware/memmap``) goes through
:func:`read_input` (bytes) or :func:`read_text_input` (text), so that no input can make emu
read without bound, block, or print more than one line:

* the path is checked *by type before it is opened*: a directory where a file is expected,
  a character or block device (``/dev/zero``, ``/dev/full``, ``/dev/urandom``, ``/dev/null``,
  a disk), a FIFO or a socket is refused; the file is then opened non-blocking and its type
  checked again on the open descriptor (a path swapped between the two checks cannot make
  emu block on a FIFO);
* a regular file larger than the cap (:data:`MAX_INPUT_BYTES`, 64 MiB: a real boot log,
  System.map or ``.config`` is a few MiB at most) is refused from its size alone, without
  reading it (a 6 GiB sparse file costs one ``stat``); a file whose size the kernel does not
  report (procfs) is read to at most the cap plus one byte;
* binary data is detected on the first block (NUL bytes, or undecodable UTF-8) before the
  rest is read; :func:`read_text_input` checks the whole text as well;
* every error is one :class:`InputFileError` line naming the full path of the file.
"""
from __future__ import annotations

import os
import stat
from typing import Optional, Union

from emu.errors import EmuError

__all__ = [
    "MAX_INPUT_BYTES", "MAX_SYSFS_BYTES", "FIRST_BLOCK", "InputFileError",
    "display_path", "check_input_path", "read_input", "read_text_input", "describe_size",
]

#: the size cap of a log, map, ``.config`` or System.map (larger than any real one)
MAX_INPUT_BYTES = 64 << 20
#: the size cap of one ``/sys/firmware/memmap/N/{start,end,type}`` file
MAX_SYSFS_BYTES = 4096
#: how much is read first to detect binary data before the rest is read
FIRST_BLOCK = 64 << 10

PathLike = Union[str, "os.PathLike[str]"]


class InputFileError(EmuError):
    """A file that cannot be used as an input: one line naming the full path."""


def display_path(path: PathLike) -> str:
    """The full path of ``path`` as errors name it (absolute, symlinks not resolved)."""
    p = os.fspath(path)
    try:
        return os.path.abspath(p)
    except (ValueError, OSError):  # e.g. an embedded NUL
        return repr(p)


def describe_size(n: int) -> str:
    """``n`` bytes in the largest binary unit that keeps one decimal: ``6.0 GiB``, ``64 MiB``."""
    for shift, unit in ((60, "EiB"), (50, "PiB"), (40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")):
        if n >= 1 << shift:
            v = n / (1 << shift)
            return ("%d %s" % (v, unit)) if v == int(v) else ("%.1f %s" % (v, unit))
    return "%d bytes" % n


def _kind(mode: int) -> Optional[str]:
    """What a non-regular file is, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def check_input_path(path: PathLike, what: str, limit: int = MAX_INPUT_BYTES,
                     error: type = InputFileError) -> os.stat_result:
    """``stat`` ``path`` and refuse what :func:`read_input` would refuse without opening it:
    a missing file, a directory, a device, a FIFO, a socket, a file over ``limit`` bytes."""
    name = display_path(path)
    try:
        st = os.stat(path)
    except (OSError, ValueError) as exc:
        raise error("%s: cannot read %s: %s" % (name, what, _reason(exc))) from None
    kind = _kind(st.st_mode)
    if kind is not None:
        raise error("%s: is %s, not %s file" % (name, kind, a(what)))
    if st.st_size > limit:
        size_text, limit_text = describe_size(st.st_size), describe_size(limit)
        if size_text.split()[0].rstrip("0").rstrip(".") == limit_text.split()[0]:     # "64.0 MiB" vs "64 MiB"
            size_text, limit_text = "%d bytes" % st.st_size, "%s (%d bytes)" % (limit_text, limit)
        raise error("%s: %s is %s, larger than the %s limit for %s"
                    % (name, what, size_text, limit_text, a(what)))
    return st


def a(what: str) -> str:
    """``what`` with its indefinite article: "a boot log", "an e820 map"."""
    return ("an " if what[:1].lower() in "aeiou" else "a ") + what


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _looks_binary(block: bytes) -> Optional[str]:
    """Why ``block`` (the start of a file) is not text, or None."""
    if b"\x00" in block:
        return "binary data (NUL bytes)"
    # a multi-byte UTF-8 character cut at the block's end is not an error
    text = block.decode("utf-8", errors="replace")
    if len(block) >= FIRST_BLOCK:
        text = text[:-4]
    bad = text.count("\ufffd")
    if bad > max(16, len(text) // 50):
        return "not UTF-8 text (%d undecodable bytes in the first %s)" % (bad, describe_size(len(block)))
    return None


def read_input(path: PathLike, what: str, limit: int = MAX_INPUT_BYTES, *,
               binary_ok: bool = False, empty_ok: bool = False,
               error: type = InputFileError) -> bytes:
    """The bytes of the regular file ``path`` (``what`` names it in errors: "boot log",
    "e820 map", "kernel .config", "System.map"), at most ``limit`` bytes.

    Raises ``error`` (an :class:`~emu.errors.EmuError` subclass; one line, the full path)
    for a missing or unreadable file, a directory, a device, a FIFO, a socket, a file over
    ``limit`` (checked on its size before reading), an empty file (unless ``empty_ok``)
    and, unless ``binary_ok``, binary data in the first :data:`FIRST_BLOCK` bytes.
    """
    name = display_path(path)
    check_input_path(path, what, limit, error)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except (OSError, ValueError) as exc:
        raise error("%s: cannot read %s: %s" % (name, what, _reason(exc))) from None
    try:
        st = os.fstat(fd)
        kind = _kind(st.st_mode)
        if kind is not None:  # swapped after the first check
            raise error("%s: is %s, not %s file" % (name, kind, a(what)))
        if st.st_size > limit:
            raise error("%s: %s is %s, larger than the %s limit for %s"
                        % (name, what, describe_size(st.st_size), describe_size(limit), a(what)))
        chunks = []
        got = 0
        first = True
        while got <= limit:
            want = min(FIRST_BLOCK if first else 1 << 20, limit + 1 - got)
            try:
                b = os.read(fd, want)
            except OSError as exc:
                raise error("%s: cannot read %s: %s" % (name, what, _reason(exc))) from None
            if not b:
                break
            if first and not binary_ok:
                why = _looks_binary(b)
                if why:
                    raise error("%s: %s, not %s" % (name, why, a(what)))
            first = False
            chunks.append(b)
            got += len(b)
        if got > limit:  # a file that grew, or one whose size procfs does not report
            raise error("%s: %s is larger than the %s limit for %s"
                        % (name, what, describe_size(limit), a(what)))
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if not data and not empty_ok:
        raise error("%s: empty file, not %s" % (name, a(what)))
    return data


def read_text_input(path: PathLike, what: str, limit: int = MAX_INPUT_BYTES, *,
                    empty_ok: bool = False, error: type = InputFileError) -> str:
    """:func:`read_input`, decoded as UTF-8; ``error`` if any NUL byte or more than 2 % of
    undecodable bytes appear anywhere in the file (not only in the first block)."""
    data = read_input(path, what, limit, empty_ok=empty_ok, error=error)
    name = display_path(path)
    if b"\x00" in data:
        raise error("%s: binary data (NUL bytes), not %s" % (name, a(what)))
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    if bad > max(16, len(text) // 50):
        raise error("%s: not UTF-8 text (%d undecodable bytes), not %s" % (name, bad, a(what)))
    return text
