"""Batch runners: tasks in, results streamed out, on Dask, a local process pool, or inline.

A campaign (``emu fuzz``), a replay of many logs or the oracle's layout matrix hands
independent tasks to a :class:`Runner` and reads results as they complete::

    from emu.tools.batches import open_runner, map_unordered

    with open_runner(jobs=2) as runner:                      # or scheduler="tcp://host:8786"
        for i, res in map_unordered(runner, replay_one, logs, window=8):
            if res.ok: print(logs[i], res.value)
            else: print(logs[i], "failed:", res.error, "(worker killed)" if res.killed else "")

Backends:

``inline``   one task after another in this process (``jobs=1``): no start-up cost.
``pool``     ``jobs`` forked worker processes (``concurrent.futures.ProcessPoolExecutor``):
             starts in milliseconds; a worker that dies breaks the pool, which is rebuilt and
             the tasks it held are retried.
``dask``     ``dask.distributed``: an existing cluster (``scheduler="tcp://HOST:8786"``) or a
             ``LocalCluster`` of ``jobs`` single-threaded worker processes; Dask retries a
             task whose worker died (``distributed.scheduler.allowed-failures``, set to 1 for
             our LocalCluster: a task that kills two workers fails with ``KilledWorker``).

Every result is a :class:`Result`: ``ok`` and ``value``, or ``error`` (one line) and
``killed`` (its worker died, twice: the task itself is the likely cause).  The function and
its argument must be picklable (a module-level function; for Dask it must be importable on
the workers, e.g. ``emu`` installed there).
"""
from __future__ import annotations

import abc
import collections
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, Optional, Tuple

#: a task that loses its worker this many times is reported as ``killed``
KILLS_TO_BLAME = 2
#: what Dask's nanny sets for its workers and emu's LocalCluster leaves out (see DaskRunner)
MALLOC_TRIM_ENV = "MALLOC_TRIM_THRESHOLD_"


@dataclass
class Result:
    ok: bool
    value: Any = None
    error: str = ""
    killed: bool = False


class Runner(abc.ABC):
    """Submit ``fn(arg)`` tasks under integer ids; :meth:`next_done` returns ``(id, Result)``
    of a finished task (blocking up to ``timeout`` seconds; None when nothing finished)."""

    name = "?"
    workers = 1

    @abc.abstractmethod
    def submit(self, tid: int, fn: Callable[[Any], Any], arg: Any) -> None:
        """Start ``fn(arg)`` as task ``tid``."""

    @abc.abstractmethod
    def next_done(self, timeout: Optional[float] = None) -> Optional[Tuple[int, Result]]:
        """A finished task's ``(id, Result)``, waiting up to ``timeout`` seconds (None: nothing)."""

    def cancel_all(self) -> None:  # noqa: B027  (a default: a runner without queued work has nothing to forget)
        """Forget every task in flight (their results, if any, are never returned)."""

    @property
    @abc.abstractmethod
    def in_flight(self) -> int:
        """Tasks submitted and not yet returned by :meth:`next_done`."""

    def close(self) -> None:  # noqa: B027  (a default: a runner without processes has nothing to release)
        pass

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _one_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".strip()


class InlineRunner(Runner):
    """Runs each task in this process when its result is asked for."""

    name = "inline"

    def __init__(self) -> None:
        self._q: Deque[Tuple[int, Callable, Any]] = collections.deque()

    def submit(self, tid: int, fn: Callable[[Any], Any], arg: Any) -> None:
        self._q.append((tid, fn, arg))

    def next_done(self, timeout: Optional[float] = None) -> Optional[Tuple[int, Result]]:
        if not self._q:
            return None
        tid, fn, arg = self._q.popleft()
        try:
            return tid, Result(True, fn(arg))
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001 - the task's failure is its result
            return tid, Result(False, error=_one_line(e))

    def cancel_all(self) -> None:
        self._q.clear()

    @property
    def in_flight(self) -> int:
        return len(self._q)


_STOPPING = False


def _stop_task(signum: int, frame: Any) -> None:
    global _STOPPING
    _STOPPING = True
    raise SystemExit(128 + signum)


def _run_task(fn: Callable[[Any], Any], arg: Any) -> Any:
    """A pool worker runs every task through this: a worker told to stop (SIGTERM) ends once
    the task's finally blocks have run, instead of waiting for the next task."""
    try:
        return fn(arg)
    finally:
        if _STOPPING:
            os._exit(143)


def _pool_init() -> None:
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the client handles Ctrl-C and saves its state
    # close() terminates a busy worker: its task's finally blocks run (a QEMU guest is stopped,
    # its folder removed) instead of the process vanishing under them
    signal.signal(signal.SIGTERM, _stop_task)
    try:   # and so does the death of the client (Linux: PR_SET_PDEATHSIG; the pool is forked by
        # the client's thread that submits, so the signal comes when the client process ends)
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class PoolRunner(Runner):
    """``jobs`` forked processes.  A worker that dies breaks the pool: it is rebuilt and the
    tasks it held are retried one at a time, alone in the pool, so the next death names its
    task, which is returned as killed (it died twice: once with others, once alone)."""

    name = "pool"

    def __init__(self, jobs: int) -> None:
        self.workers = jobs
        self._pool = self._make()
        self._futs: Dict[Any, int] = {}
        self._tasks: Dict[int, Tuple[Callable, Any]] = {}
        self._solo: Deque[int] = collections.deque()     # suspects, retried one at a time
        self._held: Deque[int] = collections.deque()     # new tasks waiting for the suspects
        self._ready: Deque[Tuple[int, Result]] = collections.deque()

    def _make(self):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("fork"),
                                   initializer=_pool_init)

    def _start(self, tid: int) -> None:
        from concurrent.futures.process import BrokenProcessPool
        fn, arg = self._tasks[tid]
        try:
            f = self._pool.submit(_run_task, fn, arg)
        except BrokenProcessPool:          # a worker died since the last look: run it after the suspects
            self._held.appendleft(tid)
            self._rebuild()
            return
        self._futs[f] = tid

    def submit(self, tid: int, fn: Callable[[Any], Any], arg: Any) -> None:
        self._tasks[tid] = (fn, arg)
        if self._solo:
            self._held.append(tid)
        else:
            self._start(tid)

    def _rebuild(self) -> None:
        lost = sorted(self._futs.values())
        self._futs.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._make()
        was_solo = bool(self._solo) and len(lost) == 1 and lost[0] == self._solo[0]
        if was_solo:
            tid = self._solo.popleft()
            self._tasks.pop(tid, None)
            self._ready.append((tid, Result(False, error="worker process died running this task, twice "
                                            "(once alone)", killed=True)))
        else:
            self._solo.extend(t for t in lost if t not in self._solo)
        self._pump()

    def _pump(self) -> None:
        """Run the next suspect alone, or, when none is left, the held tasks."""
        if self._futs:
            return
        if self._solo:
            self._start(self._solo[0])
            return
        while self._held:
            self._start(self._held.popleft())

    def next_done(self, timeout: Optional[float] = None) -> Optional[Tuple[int, Result]]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool
        if self._ready:
            return self._ready.popleft()
        if not self._futs:
            self._pump()
            if not self._futs:
                return None
        done, _ = wait(list(self._futs), timeout=timeout, return_when=FIRST_COMPLETED)
        if not done:
            return None
        f = min(done, key=lambda x: self._futs[x])
        tid = self._futs[f]
        try:
            value = f.result()
        except BrokenProcessPool:
            self._rebuild()
            return self.next_done(timeout)
        except Exception as e:  # noqa: BLE001
            res = Result(False, error=_one_line(e))
        else:
            res = Result(True, value)
        self._futs.pop(f)
        self._tasks.pop(tid, None)
        if self._solo and self._solo[0] == tid:
            self._solo.popleft()
        self._pump()
        return tid, res

    def cancel_all(self) -> None:
        for f in self._futs:
            f.cancel()
        self._futs.clear()
        self._tasks.clear()
        self._ready.clear()
        self._solo.clear()
        self._held.clear()

    @property
    def in_flight(self) -> int:
        return len(self._futs) + len(self._ready) + len(self._solo) + len(self._held)

    def close(self) -> None:
        self.cancel_all()
        # a task still running keeps its worker busy: stop the workers instead of waiting
        procs = list((getattr(self._pool, "_processes", None) or {}).values())
        for p in procs:
            if p.is_alive():
                p.terminate()
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskRunner(Runner):
    """``dask.distributed``: a cluster at ``scheduler`` or a LocalCluster of ``jobs``
    single-threaded worker processes."""

    name = "dask"

    def __init__(self, jobs: int = 1, scheduler: Optional[str] = None) -> None:
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError as e:
            from emu.errors import EmuError
            raise EmuError(f"the dask backend (--backend dask, --scheduler) needs the dask and distributed "
                           f"packages ({e}; pip install dask distributed)") from None
        self._cluster = None
        if scheduler:
            try:
                self.client = Client(scheduler, timeout="20s")
            except (ValueError, OSError, TimeoutError) as e:
                from emu.errors import EmuError
                raise EmuError(f"cannot use the Dask scheduler {scheduler!r}: "
                               f"{' '.join(str(e).split()) or type(e).__name__}") from None
        else:
            # the nanny starts each worker with MALLOC_TRIM_THRESHOLD_=65536 (distributed's
            # default, so that freed memory goes back to the OS): glibc then hands each map's
            # store arrays back to the kernel and faults them in again for the next map, 11 %
            # of a campaign's time (bench/README.md); our workers start without it
            conf = {"distributed.scheduler.allowed-failures": KILLS_TO_BLAME - 1,
                    "distributed.worker.daemon": False,
                    "distributed.logging.distributed": "error"}
            env = dask.config.get("distributed.nanny.pre-spawn-environ", None)
            if isinstance(env, dict):        # (anything else is the user's configuration, left to Dask)
                conf["distributed.nanny.pre-spawn-environ"] = {k: v for k, v in env.items() if k != MALLOC_TRIM_ENV}
            with dask.config.set(conf):
                # no dashboard; the scheduler's HTTP endpoint on a free port (its default, 8787,
                # may be another cluster's: Dask would warn on stderr and move)
                self._cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                             dashboard_address=None, silence_logs=40,
                                             scheduler_kwargs={"dashboard_address": ":0"})
                self.client = Client(self._cluster)
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})) or jobs)
        from distributed import as_completed
        self._ac = as_completed([], with_results=False)
        self._futs: Dict[Any, int] = {}

    def submit(self, tid: int, fn: Callable[[Any], Any], arg: Any) -> None:
        f = self.client.submit(fn, arg, pure=False, key=f"emu-task-{os.getpid()}-{tid}-{time.monotonic_ns()}")
        self._futs[f.key] = tid
        self._ac.add(f)

    def next_done(self, timeout: Optional[float] = None) -> Optional[Tuple[int, Result]]:
        from distributed import KilledWorker
        t0 = time.monotonic()
        while self._futs:
            if self._ac.is_empty():
                return None
            if timeout is not None and not self._ac.has_ready():
                remaining = timeout - (time.monotonic() - t0)
                if remaining <= 0:
                    return None
                time.sleep(min(0.005, remaining))
                continue
            f = next(self._ac)
            tid = self._futs.pop(f.key, None)
            if tid is None:        # cancelled earlier
                continue
            try:
                value = f.result()
            except KilledWorker as e:
                return tid, Result(False, error=_one_line(e), killed=True)
            except Exception as e:  # noqa: BLE001
                return tid, Result(False, error=_one_line(e))
            finally:
                f.release()
            return tid, Result(True, value)
        return None

    def cancel_all(self) -> None:
        futs = list(self._ac.futures) if hasattr(self._ac, "futures") else []
        self._futs.clear()
        if futs:
            try:
                self.client.cancel(futs)
            except Exception:  # noqa: BLE001 - the cluster may be gone already
                pass
        self._ac.clear()

    @property
    def in_flight(self) -> int:
        return len(self._futs)

    def close(self) -> None:
        self.cancel_all()
        try:
            self.client.close(timeout=5)
        finally:
            if self._cluster is not None:
                self._cluster.close(timeout=5)


#: the most local worker processes a runner starts (each is a fork of the client: thousands
#: of them take minutes and gigabytes to start on one machine; a cluster has no such bound)
MAX_LOCAL_WORKERS = 256


def open_runner(jobs: int = 1, scheduler: Optional[str] = None, backend: Optional[str] = None,
                tasks: Optional[int] = None) -> Runner:
    """The runner for ``jobs`` local workers or a Dask cluster at ``scheduler``.  ``backend``:
    ``inline``, ``pool`` or ``dask`` (default: ``dask`` with a scheduler, ``inline`` for one
    job, else ``pool``: measured on one machine, a forked pool starts in milliseconds and
    runs faster than a LocalCluster, see bench/README.md).  Never more workers than ``tasks``
    when that number is known; local worker processes (a pool, a LocalCluster) at most
    :data:`MAX_LOCAL_WORKERS` (:class:`emu.errors.EmuError` beyond)."""
    if tasks is not None:
        jobs = max(1, min(jobs, tasks))
    if backend is None:
        backend = "dask" if scheduler else ("inline" if jobs <= 1 else "pool")
    if jobs > MAX_LOCAL_WORKERS and (backend == "pool" or (backend == "dask" and not scheduler)):
        from emu.errors import EmuError
        raise EmuError(f"at most {MAX_LOCAL_WORKERS} local workers, not {jobs}")
    if backend == "inline":
        return InlineRunner()
    if backend == "pool":
        return PoolRunner(max(1, jobs))
    if backend == "dask":
        return DaskRunner(max(1, jobs), scheduler)
    raise ValueError(f"unknown runner backend {backend!r} (inline, pool or dask)")


def map_unordered(runner: Runner, fn: Callable[[Any], Any], tasks: Iterable[Any], window: Optional[int] = None,
                  deadline: Optional[float] = None) -> Iterator[Tuple[int, Result]]:
    """``fn`` over ``tasks`` on ``runner``; yields ``(task index, Result)`` as they finish.
    At most ``window`` tasks are in flight (default: two per worker); none is submitted
    after ``deadline`` (a ``time.monotonic()`` value), and those in flight then are waited for."""
    window = window or 2 * runner.workers
    it = iter(enumerate(tasks))
    exhausted = False
    while True:
        while not exhausted and runner.in_flight < window and (deadline is None or time.monotonic() < deadline):
            try:
                i, arg = next(it)
            except StopIteration:
                exhausted = True
                break
            runner.submit(i, fn, arg)
        if runner.in_flight == 0:
            return
        got = runner.next_done(timeout=0.5)
        if got is not None:
            yield got


__all__ = ["Result", "Runner", "InlineRunner", "PoolRunner", "DaskRunner", "open_runner", "map_unordered",
           "KILLS_TO_BLAME", "MAX_LOCAL_WORKERS"]
