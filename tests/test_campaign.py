"""Campaigns (emu.tools.campaign, emu.tools.batches): the same findings, corpus and coverage
whatever runs them -- inline, a forked pool, a Dask cluster of separate ``dask scheduler`` /
``dask worker`` processes on 127.0.0.1 -- and nothing lost when a worker or the client dies."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings

import pytest

from emu.tools.batches import InlineRunner, PoolRunner, map_unordered, open_runner
from emu.tools.campaign import newest_profile
from emu.tools.cli import main
from emu.tools.fuzz import fuzz

EMU = shutil.which("emu") or os.path.join(os.path.dirname(sys.executable), "emu")
DASK = shutil.which("dask") or os.path.join(os.path.dirname(sys.executable), "dask")
# a small campaign with findings (3.9 fails on mem=2G-like maps) and coverage rounds of 64 maps,
# so the corpus steers generation from the third round on
KW = dict(count=260, progress=False, shrink_budget=150, round_size=64, modes=["x86_64", "i386-pae"])
PROFILE = "3.9"


def fingerprint(out: str) -> dict:
    """Everything a campaign leaves that must not depend on how it ran."""
    files = {f: hashlib.sha1(open(os.path.join(out, f), "rb").read()).hexdigest()
             for f in sorted(os.listdir(out)) if f.endswith(".json") and f != "state.json"}
    corpus = {f: hashlib.sha1(open(os.path.join(out, "corpus", f), "rb").read()).hexdigest()
              for f in sorted(os.listdir(os.path.join(out, "corpus")))}
    st = json.load(open(os.path.join(out, "state.json")))
    return {"files": files, "corpus_files": corpus, "next_index": st["next_index"], "outcomes": st["outcomes"],
            "coverage": st["coverage"], "corpus": st["corpus"], "findings": st["findings"]}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("local") / "f")
    s = fuzz(PROFILE, out, jobs=1, **KW)
    assert s.maps == KW["count"] and s.findings, s.to_json()
    return fingerprint(out)


def square(x):
    return x * x


def die_on_three(x):
    if x == 3:
        os._exit(9)
    return x


def test_batch_runner_streams_results_and_reports_a_task_that_kills_its_worker():
    with InlineRunner() as r:
        assert sorted((i, v.value) for i, v in map_unordered(r, square, range(5))) == [(i, i * i) for i in range(5)]
    with PoolRunner(2) as r:
        got = dict(map_unordered(r, die_on_three, range(6), window=3))
    assert sorted(got) == list(range(6))
    assert got[3].killed and not got[3].ok
    assert all(got[i].ok and got[i].value == i for i in range(6) if i != 3)


def test_pool_and_inline_give_identical_campaigns(tmp_path, local_run):
    out = str(tmp_path / "pool")
    s = fuzz(PROFILE, out, jobs=2, **KW)
    assert s.runner == "pool" and s.workers == 2
    assert fingerprint(out) == local_run


def test_killed_client_resumes_to_the_same_campaign(tmp_path, local_run):
    out = str(tmp_path / "k")
    fuzz(PROFILE, out, **dict(KW, count=100))            # stopped early, as a kill would
    st = json.load(open(os.path.join(out, "state.json")))
    assert st["next_index"] == 100
    s = fuzz(PROFILE, out, jobs=2, **dict(KW, count=KW["count"] - 100))
    assert s.next_index == KW["count"]
    assert fingerprint(out) == local_run


def test_a_map_that_kills_its_worker_twice_is_a_finding(tmp_path, monkeypatch):
    monkeypatch.setenv("EMU_FUZZ_FAULT", "kill:37")
    out = str(tmp_path / "p")
    s = fuzz("6.1", out, jobs=2, count=80, progress=False, modes=["x86_64"], batch=16)
    assert "crash:worker-killed" in s.findings
    doc = json.load(open(os.path.join(out, s.findings["crash:worker-killed"])))
    assert doc["index"] == 37 and s.next_index == 80 and s.outcomes.get("crash") == 1


def test_cli_validates_and_defaults(tmp_path, capsys, monkeypatch):
    for bad in (["--seconds", "nan"], ["--seconds", "-1"], ["--count", "-1"], ["--count", "0"], ["--jobs", "-1"],
                ["--jobs", "0"], ["--seconds", "inf"], ["--bias", "2"]):
        with pytest.raises(SystemExit) as e:
            main(["fuzz", "--out", str(tmp_path / "x")] + bad)
        assert e.value.code == 2, bad
    assert main(["fuzz", "--profile", "4.19", "--modes", "la57", "--count", "1", "--out", str(tmp_path / "y")]) == 2
    assert "does not boot in mode la57" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    assert main(["fuzz", "--count", "5", "--modes", "x86_64"]) == 0
    err = capsys.readouterr().err
    newest = newest_profile()
    assert f"emu: assumed profile = {newest} (the newest" in err and f"fuzz-{newest}-seed0" in err
    assert json.load(open(tmp_path / f"fuzz-{newest}-seed0" / "state.json"))["next_index"] == 5
    assert main(["fuzz", "--profile", "6.1", "--count", "5", "--out", f"fuzz-{newest}-seed0"]) == 2
    assert "belongs to another campaign" in capsys.readouterr().err


def test_two_local_workers_stop_at_the_deadline(tmp_path):
    """Issue 12 item 5: no new work after the deadline, a bounded window in flight."""
    t = time.monotonic()
    r = subprocess.run([EMU, "fuzz", "--profile", "6.1", "--jobs", "2", "--seconds", "1", "--out", str(tmp_path / "d")],
                       capture_output=True, text=True, timeout=120)
    took = time.monotonic() - t
    assert r.returncode in (0, 1), r.stderr
    # the deadline is a behaviour, not a speed goal: 1 s of work, a 1 s grace for batches in
    # flight, start-up and shutdown; the old pool ran ~6x the time asked
    assert took < 8, took


# ---------------------------------------------------------------------------
# a real Dask cluster: separate scheduler and worker processes on 127.0.0.1
# ---------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker_pids(nanny_pid: int):
    import psutil
    return [c.pid for c in psutil.Process(nanny_pid).children(recursive=True) if "python" in c.name().lower()]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    pytest.importorskip("distributed")
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="1",
               DASK_DISTRIBUTED__WORKER__DAEMON="False")
    log = tmp_path_factory.mktemp("dask")
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              env=env, stdout=open(log / "s.log", "w"), stderr=subprocess.STDOUT)]
    for i in range(2):
        procs.append(subprocess.Popen([DASK, "worker", addr, "--nthreads", "1", "--nworkers", "1",
                                       "--no-dashboard", "--name", f"w{i}"],
                                      env=env, stdout=open(log / f"w{i}.log", "w"), stderr=subprocess.STDOUT))
    from distributed import Client
    c = None
    t = time.monotonic()
    try:
        while time.monotonic() - t < 90:
            try:
                c = Client(addr, timeout="5s")
                if len(c.scheduler_info()["workers"]) == 2:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert c is not None and len(c.scheduler_info()["workers"]) == 2, (log / "s.log").read_text()[-2000:]
        c.close()
        yield addr, procs
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()


def test_dask_cluster_gives_the_local_campaign(tmp_path, cluster, local_run):
    addr, _ = cluster
    out = str(tmp_path / "dask")
    s = fuzz(PROFILE, out, scheduler=addr, **KW)
    assert s.runner == "dask" and s.workers == 2
    assert fingerprint(out) == local_run


def test_dask_survives_a_worker_killed_mid_campaign(tmp_path, cluster, local_run):
    addr, procs = cluster
    out = str(tmp_path / "wk")
    cmd = [EMU, "fuzz", "--profile", PROFILE, "--scheduler", addr, "--count", str(KW["count"]), "--out", out,
           "--modes", ",".join(KW["modes"])]
    # the same campaign through the CLI needs the same spec: shrink budget and round size are API-only
    # knobs, so run the API in a child process instead
    code = ("import sys; from emu.tools.fuzz import fuzz; "
            f"fuzz({PROFILE!r}, {out!r}, scheduler={addr!r}, **{KW!r})")
    child = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path)  # not the checkout: it would shadow emu
    victim = None
    t = time.monotonic()
    while time.monotonic() - t < 120 and child.poll() is None:
        try:
            st = json.load(open(os.path.join(out, "state.json")))
        except (OSError, ValueError):
            st = {"next_index": 0}
        if st["next_index"] > 0:
            pids = _worker_pids(procs[1].pid)
            if pids:
                victim = pids[0]
                os.kill(victim, signal.SIGKILL)
                break
        time.sleep(0.05)
    assert child.wait(300) == 0
    assert victim is not None, "the campaign ended before a worker could be killed"
    assert cmd  # (documents the CLI equivalent)
    assert fingerprint(out) == local_run


def test_dask_client_killed_and_resumed(tmp_path, cluster, local_run):
    addr, _ = cluster
    out = str(tmp_path / "ck")
    code = ("from emu.tools.fuzz import fuzz; "
            f"fuzz({PROFILE!r}, {out!r}, scheduler={addr!r}, **{KW!r})")
    child = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path)  # not the checkout: it would shadow emu
    t = time.monotonic()
    while time.monotonic() - t < 120 and child.poll() is None:
        try:
            if json.load(open(os.path.join(out, "state.json")))["next_index"] >= 64:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    # (on a loaded host the kill may come before the first batch is merged: the resume then
    # starts at 0, which must give the same campaign too)
    st = json.load(open(os.path.join(out, "state.json"))) if os.path.exists(os.path.join(out, "state.json")) \
        else {"next_index": 0}
    done = st["next_index"]
    assert 0 <= done <= KW["count"]
    if done < KW["count"]:
        s = fuzz(PROFILE, out, scheduler=addr, **dict(KW, count=KW["count"] - done))
        assert s.next_index == KW["count"], (done, s.next_index)
    got = fingerprint(out)
    assert got == local_run, {"killed at": done, "differs": sorted(k for k in set(got) | set(local_run)
                                                                 if got.get(k) != local_run.get(k))}


def test_open_runner_choices():
    with open_runner(1) as r:
        assert r.name == "inline"
    with open_runner(2) as r:
        assert r.name == "pool" and r.workers == 2
    with pytest.raises(ValueError):
        open_runner(2, backend="nonsense")


def test_local_cluster_workers_start_without_the_malloc_trim_threshold():
    """Dask's nanny gives its workers MALLOC_TRIM_THRESHOLD_=65536; emu's LocalCluster leaves it
    out (each map's store arrays would be unmapped and faulted in again: 11 % of a campaign),
    and the other variables the nanny sets stay as they are.  It starts quietly when another
    cluster holds Dask's default HTTP port."""
    pytest.importorskip("distributed")
    import dask
    from emu.tools.batches import MALLOC_TRIM_ENV, DaskRunner
    default = dask.config.get("distributed.nanny.pre-spawn-environ")
    if not isinstance(default, dict) or MALLOC_TRIM_ENV not in default:
        pytest.skip("this Dask's configuration does not set MALLOC_TRIM_THRESHOLD_ for its workers")
    busy = socket.socket()            # Dask's default HTTP port taken, as by another cluster:
    try:                              # emu's LocalCluster does not warn about it (it never asks for it)
        busy.bind(("", 8787))
        busy.listen()
    except OSError:
        pass                          # (taken already)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            r = DaskRunner(jobs=1)
    finally:
        busy.close()
    assert not [w for w in caught if "8787" in str(w.message)], [str(w.message) for w in caught]
    with r:
        r.submit(0, os.getenv, MALLOC_TRIM_ENV)
        r.submit(1, os.getenv, "OMP_NUM_THREADS")
        got = {}
        while len(got) < 2:
            done = r.next_done(timeout=30)
            assert done is not None
            got[done[0]] = done[1]
    assert got[0].ok and got[0].value is None
    assert got[1].ok and got[1].value == str(default["OMP_NUM_THREADS"])
    assert dask.config.get("distributed.nanny.pre-spawn-environ") == default   # the caller's config untouched


def test_replay_on_a_pool_and_the_cluster_gives_the_inline_replay(cluster, corpus):
    """`emu replay --jobs N` / `--scheduler` run the logs on the campaigns' runners: the
    same results, in the order given (a PASS, a FAIL naming its input, i686 and x86-64)."""
    from emu.tools.replay import replay_file, replay_many
    addr, _ = cluster
    logs = sorted(corpus.glob("*.log"))[::6]
    tasks = [(str(p), {}) for p in logs]
    inline = [replay_file(p) for p, _ in tasks]
    assert any(r.passed for r in inline)
    for got in (replay_many(tasks, jobs=2), replay_many(tasks, scheduler=addr)):
        assert [r.name for r in got] == [p.name for p in logs]
        assert got == inline


def test_local_workers_are_bounded_and_never_more_than_the_tasks(tmp_path):
    """``-j 4096`` used to fork 4096 processes for two logs (a hang in the bad-input
    campaign): local workers are at most MAX_LOCAL_WORKERS, and no more than the tasks."""
    from emu.errors import EmuError
    from emu.tools.batches import MAX_LOCAL_WORKERS, open_runner
    with pytest.raises(EmuError, match="at most 256 local workers"):
        open_runner(MAX_LOCAL_WORKERS + 1)
    with open_runner(MAX_LOCAL_WORKERS, tasks=2) as runner:
        assert runner.workers == 2
    with open_runner(8, tasks=1) as runner:
        assert runner.name == "inline"
    with open_runner(4096, tasks=0) as runner:         # nothing to run: no worker process
        assert runner.name == "inline"
    with open_runner(4096, backend="inline") as runner:   # (an inline runner starts none)
        assert runner.name == "inline"


def test_a_terminated_pool_worker_runs_its_tasks_finally_blocks(tmp_path):
    """close() terminates a busy worker; its task's finally blocks still run (the oracle's
    QEMU guest is stopped and its folder removed, not left behind)."""
    from emu.tools.batches import open_runner
    mark = tmp_path / "cleaned"
    with open_runner(2) as runner:
        runner.submit(0, _sleep_then_mark, str(mark))
        t = time.monotonic()
        while not (tmp_path / "started").exists() and time.monotonic() - t < 30:
            time.sleep(0.02)
    t = time.monotonic()
    while not mark.exists() and time.monotonic() - t < 10:
        time.sleep(0.02)
    assert mark.exists()


def _sleep_then_mark(path: str) -> None:
    open(os.path.join(os.path.dirname(path), "started"), "w").close()
    try:
        time.sleep(60)
    finally:
        open(path, "w").close()
