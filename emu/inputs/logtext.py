"""Kernel log text as found in the wild, turned into kernel messages.

dmesg output, syslog/klogd files, serial and kexec captures, quoted-printable mail
attachments and forum copy-pastes: :func:`normalize_log` strips every prefix the kernel
did not print and splits glued lines; :func:`decode_text` refuses binary data.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional, Tuple, Union

from emu.errors import EmuError


# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class LogLine:
    """One kernel log line: ``text`` with prefixes and trailing blanks removed;
    ``lineno`` is the 1-based line of the input where it starts."""

    lineno: int
    text: str


_RE_QP_ESC = re.compile(r"(?:=[0-9A-Fa-f]{2})+")
_RE_TS_START = re.compile(r"^\[\s*\d+\.\d+\] ?")
_RE_TS_HUMAN = re.compile(r"^\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\] ?")
_RE_TS_INNER = re.compile(r"\[ *\d{1,10}\.\d{6}\]")
_RE_LEVEL = re.compile(r"^<\d{1,2}>")
_RE_SYSLOG = re.compile(
    r"^(?:[A-Z][a-z]{2}\s+\d{1,2}\s+\d\d:\d\d:\d\d"
    r"|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
    r"\s+(?P<host>\S+)\s+(?P<tag>[^\s:\[]+)(?:\[\d+\])?:(?: |$)")
_RE_DMESG_X = re.compile(
    r"^(?:kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp|local\d)\s*:"
    r"\s*(?:emerg|alert|crit|err|warn|notice|info|debug)\s*: ")


def looks_quoted_printable(text: str) -> bool:
    """True if ``text`` is a quoted-printable body: it has ``=3D`` escapes, or
    at least 3 (and 5 %) of its lines end in a soft-break ``=``."""
    if "=3D" in text:
        return True
    lines = text.split("\n")
    soft = sum(1 for ln in lines if ln.rstrip(" \t\r").endswith("=") and not ln.rstrip().endswith("=="))
    return soft >= 3 and soft * 20 >= len([ln for ln in lines if ln.strip()])


def _qp_decode_segment(seg: str) -> str:
    return _RE_QP_ESC.sub(
        lambda m: bytes.fromhex(m.group(0).replace("=", "")).decode("utf-8", errors="replace"), seg)


def _physical_to_logical(text: str, qp: bool, warnings: Optional[List[str]]) -> List[Tuple[int, str]]:
    phys = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if phys and phys[-1] == "":
        phys.pop()
    if not qp:
        return [(i + 1, ln) for i, ln in enumerate(phys)]
    out: List[Tuple[int, str]] = []
    buf: Optional[str] = None   # logical line being assembled
    start: Optional[int] = None  # physical line where its first character came from
    for i, ln in enumerate(phys, 1):
        t = ln.rstrip(" \t")
        soft = t.endswith("=")
        seg = t[:-1] if soft else ln
        for k, part in enumerate(_qp_decode_segment(seg).split("\n")):
            if k > 0:  # an =0A escape ends the logical line
                out.append((start or i, buf or ""))
                buf, start = None, None
            if buf is None:
                buf = ""
            if part and start is None:
                start = i
            buf += part
        if not soft:
            out.append((start or i, buf or ""))
            buf, start = None, None
    if buf:
        if warnings is not None:
            warnings.append("truncated quoted-printable line at line %d" % (start or len(phys)))
        out.append((start or len(phys), buf))
    return out


def _split_line(raw: str) -> Optional[List[str]]:
    """Strip syslog / level / timestamp prefixes; split glued lines.

    Returns the messages of the line (usually one) or None for a non-kernel
    syslog line.
    """
    s = raw.rstrip()
    t = s.lstrip()
    stripped = False
    m = _RE_LEVEL.match(t)
    if m:
        t = t[m.end():]
        stripped = True
    m = _RE_SYSLOG.match(t)
    if m:
        if m.group("tag") != "kernel":
            return None
        t = t[m.end():]
        stripped = True
        m = _RE_LEVEL.match(t)
        if m:
            t = t[m.end():]
    m = _RE_DMESG_X.match(t)
    if m:
        t = t[m.end():]
        stripped = True
    m = _RE_TS_START.match(t) or _RE_TS_HUMAN.match(t)
    had_ts = False
    if m:
        t = t[m.end():]
        stripped = had_ts = True
    msg = t if stripped else s
    pieces: List[str] = []
    pos = 0
    for mi in _RE_TS_INNER.finditer(msg):
        if mi.start() == 0:
            continue
        pieces.append(msg[pos:mi.start()])
        pos = mi.start()
    if not pieces:
        return [msg.rstrip()]
    pieces.append(msg[pos:])
    out = []
    for k, p in enumerate(pieces):
        if k > 0:
            p = _RE_TS_START.sub("", p, count=1)
        p = p.rstrip()
        if k == 0 and not had_ts and not p.strip():
            continue
        out.append(p)
    return out


def normalize_log(text: str, warnings: Optional[List[str]] = None,
                  qp: Optional[bool] = None) -> List[LogLine]:
    """Turn raw log text into kernel messages (:class:`LogLine` list).

    * quoted-printable bodies (see :func:`looks_quoted_printable`, or ``qp``)
      are decoded: soft breaks joined, ``=XX`` escapes (``=3D``, ``=20``,
      ``=0A`` ...) decoded as UTF-8;
    * ``<N>`` levels, syslog/klogd prefixes (``Mon DD hh:mm:ss host kernel: ``
      or ISO dates; lines of other programs are dropped), ``dmesg -x``
      facility prefixes and ``[   0.000000]`` / ``dmesg -T`` timestamps are
      removed together with the one blank the kernel puts after them;
    * a line with a timestamp in the middle (two lines glued by a copy-paste)
      is split there; text glued before the first timestamp becomes its own
      line;
    * trailing blanks are removed; leading blanks of the message itself are
      kept (the kernel's ``" [mem ...] page 4k"`` starts with one space).
    """
    if qp is None:
        qp = looks_quoted_printable(text)
    out: List[LogLine] = []
    for lineno, raw in _physical_to_logical(text, qp, warnings):
        msgs = _split_line(raw)
        if msgs is None:
            continue
        for msg in msgs:
            out.append(LogLine(lineno, msg))
    return out


def decode_text(data: Union[str, bytes], name: str, error: type = EmuError) -> str:
    """``data`` as text; ``error`` (one line naming ``name``) for binary or non-UTF-8 data."""
    if isinstance(data, bytes):
        if b"\x00" in data:
            raise error("%s: binary data (NUL bytes), not a text boot log" % name)
        text = data.decode("utf-8", errors="replace")
    else:
        text = data
        if "\x00" in text:
            raise error("%s: binary data (NUL characters), not a text boot log" % name)
    bad = text.count("\ufffd")
    if bad > max(16, len(text) // 50):
        raise error("%s: not UTF-8 text (%d undecodable bytes); is this a boot log?" % (name, bad))
    return text
