"""A minimal GDB remote-serial-protocol client for QEMU's gdbstub.

Only what the oracle needs: hardware breakpoints (``Z1``), continue with a
deadline, monitor commands (``qRcmd``), and memory reads in QEMU's virtual
(current CR3) or physical mode (``Qqemu.PhyMemMode``).
"""
from __future__ import annotations

import re
import socket
import time
from typing import Callable, Optional


class GdbError(RuntimeError):
    """The stub answered with an error, or the link broke."""


class GdbTimeout(GdbError):
    """The guest did not stop before the deadline."""


class GdbClosed(GdbError):
    """The stub went away: QEMU exited (the guest reset or shut down, or QEMU died)."""


class GdbExited(GdbClosed):
    """The stub reported that the guest exited (``W``/``X`` stop reply)."""


def _checksum(data: bytes) -> bytes:
    return b"%02x" % (sum(data) & 0xFF)


def _escape(data: bytes) -> bytes:
    out = bytearray()
    for b in data:
        if b in b"#$}*":
            out += bytes([0x7D, b ^ 0x20])
        else:
            out.append(b)
    return bytes(out)


def _unescape(data: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(data):
        b = data[i]
        if b == 0x7D and i + 1 < len(data):
            out.append(data[i + 1] ^ 0x20)
            i += 2
            continue
        if b == 0x2A and out and i + 1 < len(data):  # run-length encoding
            out += bytes([out[-1]]) * (data[i + 1] - 29)
            i += 2
            continue
        out.append(b)
        i += 1
    return bytes(out)


class GdbRemote:
    """One connection to a gdbstub (``host:port``)."""

    def __init__(self, host: str, port: int, connect_timeout: float = 30.0,
                 give_up: Optional[Callable[[], bool]] = None) -> None:
        """Connect (retrying while the stub is not listening yet, until
        ``connect_timeout`` or until ``give_up()`` says the other side is gone)."""
        deadline = time.monotonic() + connect_timeout
        last: Optional[Exception] = None
        while True:
            try:
                self.sock = socket.create_connection((host, port), timeout=5)
                break
            except OSError as e:  # QEMU not listening yet
                last = e
                if give_up is not None and give_up():
                    raise GdbClosed(f"cannot connect to gdbstub {host}:{port}: the process exited") from None
                if time.monotonic() > deadline:
                    raise GdbError(f"cannot connect to gdbstub {host}:{port}: {last}") from None
                time.sleep(0.1)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.phys_mode = False
        self.max_read = 1024
        self._sendall(b"+")
        sup = self.command("qSupported:multiprocess+;swbreak+;hwbreak+")
        m = re.search(r"PacketSize=([0-9a-fA-F]+)", sup)
        if m:
            # hex encoding doubles the bytes; keep room for framing
            self.max_read = max(256, min(4096, (int(m.group(1), 16) - 16) // 2))
        self.command("?")

    # -- framing ------------------------------------------------------------
    def _recv_byte(self, deadline: Optional[float]) -> int:
        while not self.buf:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise GdbTimeout("timed out waiting for the gdbstub")
                self.sock.settimeout(min(left, 1.0))
            else:
                self.sock.settimeout(None)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError as e:
                raise GdbClosed(f"gdbstub connection lost: {e}") from None
            if not chunk:
                raise GdbClosed("gdbstub closed the connection")
            self.buf += chunk
        b = self.buf[0]
        self.buf = self.buf[1:]
        return b

    def _read_packet(self, deadline: Optional[float]) -> bytes:
        while True:
            b = self._recv_byte(deadline)
            if b == ord("$"):
                break
            # '+' acks, stray '-' and noise are skipped
        data = bytearray()
        while True:
            b = self._recv_byte(deadline)
            if b == ord("#"):
                break
            data.append(b)
        cs = bytes([self._recv_byte(deadline), self._recv_byte(deadline)])
        if _checksum(bytes(data)) != cs.lower():
            self._sendall(b"-")
            return self._read_packet(deadline)
        self._sendall(b"+")
        return _unescape(bytes(data))

    def _sendall(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as e:   # BrokenPipeError, ConnectionResetError: the stub is gone
            raise GdbClosed(f"gdbstub connection lost: {e}") from None

    def send(self, payload: str) -> None:
        data = _escape(payload.encode("latin-1"))
        self._sendall(b"$" + data + b"#" + _checksum(data))

    def command(self, payload: str, timeout: float = 30.0) -> str:
        self.send(payload)
        return self._read_packet(time.monotonic() + timeout).decode("latin-1")

    # -- operations -----------------------------------------------------------
    def hbreak(self, addr: int) -> None:
        r = self.command(f"Z1,{addr:x},1")
        if r != "OK":
            raise GdbError(f"hardware breakpoint at {addr:#x} refused: {r!r}")

    def remove_hbreak(self, addr: int) -> None:
        self.command(f"z1,{addr:x},1")

    def cont(self, timeout: float) -> str:
        """Continue; wait for the stop reply (raises :class:`GdbTimeout`, or
        :class:`GdbExited` when the stub reports that the guest exited)."""
        self.send("c")
        while True:
            r = self._read_packet(time.monotonic() + timeout).decode("latin-1")
            if r.startswith("O") and not r.startswith("OK"):
                continue  # console output
            if r[:1] in ("W", "X"):
                how = "exited with status" if r[0] == "W" else "was killed by signal"
                code = r[1:3]
                raise GdbExited(f"the guest {how} {int(code, 16) if code else '?'}")
            return r

    def interrupt(self) -> None:
        self._sendall(b"\x03")

    def monitor(self, cmd: str, timeout: float = 60.0) -> str:
        """A QEMU monitor command through ``qRcmd``; returns its text output."""
        self.send("qRcmd," + cmd.encode().hex())
        out = []
        deadline = time.monotonic() + timeout
        while True:
            r = self._read_packet(deadline).decode("latin-1")
            if r.startswith("O") and r != "OK":
                out.append(bytes.fromhex(r[1:]).decode("utf-8", "replace"))
                continue
            if r.startswith("E"):
                raise GdbError(f"monitor {cmd!r}: {r}")
            if r and r != "OK":
                out.append(bytes.fromhex(r).decode("utf-8", "replace"))
            return "".join(out)

    def registers(self) -> dict:
        """Control registers from ``info registers`` (CR0, CR3, CR4, EFER, RIP ...)."""
        text = self.monitor("info registers")
        regs = {}
        for name, val in re.findall(r"\b(RIP|CR0|CR2|CR3|CR4|EFER|EIP)=([0-9a-fA-F]+)", text):
            regs[name.lower()] = int(val, 16)
        return regs

    def set_phys_mode(self, on: bool) -> None:
        if on == self.phys_mode:
            return
        r = self.command(f"Qqemu.PhyMemMode:{1 if on else 0}")
        if r != "OK":
            raise GdbError(f"this QEMU has no physical-memory mode (Qqemu.PhyMemMode): {r!r}")
        self.phys_mode = on

    def read(self, addr: int, size: int, phys: bool = False) -> bytes:
        """``size`` bytes at ``addr`` (guest-virtual through the current CR3, or physical)."""
        self.set_phys_mode(phys)
        out = bytearray()
        while size > 0:
            n = min(size, self.max_read)
            r = self.command(f"m{addr:x},{n:x}")
            if r.startswith("E") or len(r) != 2 * n:
                raise GdbError(f"cannot read {n} bytes at {'phys' if phys else 'virt'} {addr:#x}: {r[:20]!r}")
            out += bytes.fromhex(r)
            addr += n
            size -= n
        return bytes(out)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
