"""The pieces of ``run_guest`` (emu.tools.oracle.qemu) without QEMU: a fake gdbstub over a
real socket, a stand-in process for QEMU, and a guest's memory laid out as the kernel's."""
from __future__ import annotations

import os
import sys
import time

import pytest

from emu.tools.oracle import qemu as Q
from emu.tools.oracle.gdbstub import GdbRemote
from emu.tools.oracle.qemu import Guest, GuestError, OracleError, QemuLayout, QemuProcess
from emu.tools.oracle.symbols import Symbols
from oracle_fakes import CR3, E820, PAGE_OFFSET, RESERVED, FakeStub, fake_guest_x86_64


def _process(tmp_path, argv, serial_lines=()):
    d = tmp_path / "q"
    d.mkdir()
    (d / "serial.log").write_text("".join(f"{ln}\n" for ln in serial_lines))
    return QemuProcess(argv, 0, str(d), str(d / "serial.log"))


def test_qemu_process_is_killed_and_reaped(tmp_path):
    q = _process(tmp_path, ["sleep", "60"], ["Linux version 6.1.0"])
    assert not q.exited()
    q.close()
    assert q.returncode is not None and q.returncode < 0        # killed, and reaped
    assert q.serial == "Linux version 6.1.0\n" and not os.path.exists(q.tmpdir)
    q.close()                                                    # twice is harmless


def test_qemu_process_as_context_manager(tmp_path):
    with _process(tmp_path, ["sleep", "60"]) as q:
        pid = q.proc.pid
    assert q.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_connect_to_a_qemu_that_exited(tmp_path):
    q = _process(tmp_path, [sys.executable, "-c", "print('qemu-system-x86_64: unable to find CPU model'); "
                                                   "raise SystemExit(1)"])
    q.port = _closed_port()
    t0 = time.monotonic()
    with pytest.raises(OracleError, match="QEMU did not start: qemu-system-x86_64: unable to find CPU model"):
        Q.connect(q, timeout=20)
    assert time.monotonic() - t0 < 10          # gave up when the process exited, not at the timeout
    q.close()


def _closed_port() -> int:
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("how", ["exit", "close"])
def test_guest_dying_before_the_breakpoint(tmp_path, how):
    """QEMU exits (-no-reboot: the kernel could not decompress, or reset) before the stop:
    an error naming where, with the serial log's last lines."""
    stub = FakeStub({}, 0, on_cont=how)
    stub.start()
    lines = [f"line {i}" for i in range(15)] + ["Probing EDD (edd=off to disable)... ok"]
    q = _process(tmp_path, [sys.executable, "-c", "pass"], lines)
    gdb = GdbRemote("127.0.0.1", stub.port)
    try:
        with pytest.raises(GuestError) as ei:
            Q.run_to(gdb, q, 0xFFFFFFFF83000000, time.monotonic() + 10, "init_mem_mapping")
    finally:
        gdb.close()
        q.close()
    e = ei.value
    assert str(e).startswith("the guest died before init_mem_mapping: QEMU exited with status 0")
    assert "\n" not in str(e)
    assert e.details[-1] == "serial: Probing EDD (edd=off to disable)... ok"
    assert len([d for d in e.details if d.startswith("serial:")]) == Q.SERIAL_TAIL_LINES


def test_guest_not_reaching_the_breakpoint_in_time(tmp_path):
    stub = FakeStub({}, 0, on_cont="hang")
    stub.start()
    q = _process(tmp_path, ["sleep", "60"], ["KASLR disabled: 'nokaslr' on cmdline."])
    gdb = GdbRemote("127.0.0.1", stub.port)
    try:
        with pytest.raises(GuestError, match="did not reach init_mem_mapping within the timeout") as ei:
            Q.run_to(gdb, q, 0xFFFFFFFF83000000, time.monotonic() + 0.5, "init_mem_mapping")
    finally:
        gdb.close()
        q.close()
    assert ei.value.details == ["serial: KASLR disabled: 'nokaslr' on cmdline."]
    assert q.returncode < 0


def _stub_and_symbols(**kw):
    mem, pairs, ret = fake_guest_x86_64()
    syms = Symbols(pairs)
    stub = FakeStub(mem, 0, **kw)
    stub.start()
    return stub, syms, ret


def test_run_to_and_read_the_guest(tmp_path):
    stub, syms, ret = _stub_and_symbols(rsp=0xFFFFC90000003F00)
    q = _process(tmp_path, ["sleep", "60"])
    gdb = GdbRemote("127.0.0.1", stub.port)
    g = Guest("fake", "bz", "", [])
    try:
        regs = Q.run_to(gdb, q, syms["init_mem_mapping"], time.monotonic() + 10, "init_mem_mapping")
        assert regs["rip"] == syms["init_mem_mapping"] and not stub.breaks
        assert Q.read_entry_state(gdb, syms, g, regs) == ret
        assert g.next_call == "idt_setup_early_pf" and g.return_address == ret
        assert g.e820 == E820 and g.memblock_reserved == RESERVED
        assert g.memblock_memory == [(0x1000, 0x9F000), (0x100000, 0x80000000)]
        assert (g.pgt_buf_start, g.pgt_buf_top, g.max_pfn, g.page_offset) == (0x4401, 0x4411, 0x80000, PAGE_OFFSET)
        assert g.kernel_start == 0x1000000 and g.arch == "x86_64"
        g.initial_tree = Q.read_initial_tables(gdb, syms, g, regs, time.monotonic() + 10)
        regs = Q.run_to(gdb, q, ret, time.monotonic() + 10, "the return from init_mem_mapping")
        Q.read_exit_state(gdb, syms, g, regs)
        assert (g.cr3, g.levels, g.page_size_mask, g.direct_gbpages, g.direct_pages_count) == (CR3, 4, 0b1100, 1,
                                                                                               [0, 0, 0, 2])
        g.tree = Q.read_tables(gdb, g, g.cr3, g.levels, time.monotonic() + 10)
    finally:
        gdb.close()
        q.close()
    assert [(va, pa, size) for va, pa, size, _ in g.tree.leaves()] == \
        [(PAGE_OFFSET, 0, 1 << 30), (PAGE_OFFSET + (1 << 30), 1 << 30, 1 << 30)]
    assert g.tree.tables == {0x3000: (3, PAGE_OFFSET)} and g.initial_tree.entries == g.tree.entries


def test_read_entry_state_refuses_a_caller_other_than_setup_arch(tmp_path):
    stub, syms, ret = _stub_and_symbols()
    pairs = [(a, n) for n, a in syms.addr.items() if n != "setup_arch"] + [(syms["setup_arch"], "start_kernel")]
    gdb = GdbRemote("127.0.0.1", stub.port)
    try:
        with pytest.raises(OracleError, match="called from start_kernel, not setup_arch"):
            Q.read_entry_state(gdb, Symbols(pairs), Guest("f", "b", "", []), {"cr4": 0xB0})
    finally:
        gdb.close()


def test_run_guest_end_to_end_with_a_fake_qemu(tmp_path, monkeypatch):
    """run_guest strings the pieces together; the stand-in QEMU is killed and reaped."""
    stub, syms, ret = _stub_and_symbols()
    procs = []
    monkeypatch.setattr(Q, "_free_port", lambda: stub.port)
    # the stand-in prints no command line: the run-on after the stop gives up at once
    monkeypatch.setattr(Q, "LOG_AFTER_STOP_SECONDS", 0.2)
    monkeypatch.setattr(Q, "qemu_command", lambda layout, bz, port, serial: ["sleep", "60"])
    real_init = QemuProcess.__init__

    def init(self, *a, **k):
        real_init(self, *a, **k)
        procs.append(self)
    monkeypatch.setattr(QemuProcess, "__init__", init)
    g = Q.run_guest(QemuLayout("fake", mem=2 << 30), "bz", syms, timeout=20)
    assert g.next_call == "idt_setup_early_pf" and g.cr3 == CR3 and len(g.tree.leaves()) == 2
    assert g.initial_tree is not None
    (q,) = procs
    assert q.returncode is not None and q.returncode < 0 and not os.path.exists(q.tmpdir)


def test_run_guest_kills_qemu_when_reading_fails(tmp_path, monkeypatch):
    stub, syms, ret = _stub_and_symbols()
    procs = []
    monkeypatch.setattr(Q, "_free_port", lambda: stub.port)
    monkeypatch.setattr(Q, "qemu_command", lambda layout, bz, port, serial: ["sleep", "60"])
    real_init = QemuProcess.__init__

    def init(self, *a, **k):
        real_init(self, *a, **k)
        procs.append(self)
    monkeypatch.setattr(QemuProcess, "__init__", init)
    broken = Symbols([(a, n) for n, a in syms.addr.items() if n != "memblock"])
    with pytest.raises(KeyError):
        Q.run_guest(QemuLayout("fake", mem=2 << 30), "bz", broken, timeout=20)
    assert procs[0].returncode is not None and procs[0].returncode < 0
