"""Fuzz campaigns: deterministic, resumable, on one core, a local pool or a Dask cluster,
steered by coverage of the kernel's decision points.

The work is the sequence of maps ``case_for(seed, i)`` of one profile (a *shard*), cut
into batches ``[start, end)`` that workers run (:func:`run_batch`: emulate, check, shrink
the first map of each new failure) and the client merges **in index order**:

* a batch's outcome counts, coverage and new corpus maps are merged only when every
  lower index is merged (results that arrive early wait), so counters, coverage and the
  corpus are the same function of the maps whatever the number of workers;
* a finding is written (and fsynced) as soon as its batch returns, before the index that
  covers it is merged; a later finding of the same signature at a lower index replaces
  it, so the file is the shrink of the *first* map that fails that way -- the same file
  for any worker count, batch size or interruption;
* the state (``state.json``: next index, outcomes, coverage, corpus, findings) is written
  by the client only, atomically (temporary file, fsync, rename); a killed client or a
  lost worker loses nothing that ``--resume`` (or a rerun with the same ``--out``) does not
  redo the same way.

Coverage steering: the maps are generated in *rounds* of ``ROUND`` indices.  Round ``r``
draws a share ``bias`` of its maps as mutations of the corpus (maps that first reached a
decision point), weighted towards the rarest points, as the corpus and the point counts
stood after round ``r - 2`` (so two rounds can be in flight and the choice is still the
same for every worker count).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from emu.tools import formats as F

G = 1 << 30
#: maps per coverage round (the corpus snapshot a map is drawn from changes per round)
ROUND = 2048
#: maps per batch handed to a worker: each task carries the round's corpus snapshot, so a
#: batch must be long enough for that to be small beside the maps (32 maps, ~0.1 s of an
#: every-mode campaign: 2 pool workers 1.88-1.90 x one worker, against 1.76-1.79 x with 16,
#: once the per-map cost had halved); the findings, corpus and state do not depend on it
BATCH = 32
#: fault injection for the tests (never set in normal use): "kill:I,J" makes a worker exit
#: abruptly before emulating map I or J
FAULT_ENV = "EMU_FUZZ_FAULT"


@dataclass
class Spec:
    """What a campaign is: the maps (seed, families, modes, RAM) and how they are judged."""

    profile: str
    seed: int = 0
    families: Optional[List[str]] = None
    modes: Optional[List[str]] = None          # None: the profile's modes (generators.modes_for)
    max_ram: int = 64 * G
    reference: Optional[str] = None
    shrink_budget: int = 2500
    bias: float = 0.5                          # share of mutated corpus maps once there is a corpus
    round_size: int = ROUND                    # maps per coverage round
    force: Optional[Dict[str, Any]] = None     # Case fields set on every map (e.g. movable_node)

    def key(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------
# the worker side
# ---------------------------------------------------------------------------
_SNAPSHOTS: Dict[Tuple[int, str], Any] = {}


def _snapshot_cases(snap: dict):
    """Decoded corpus snapshot (cached per worker process)."""
    from emu.tools.generators import Case
    key = (snap["at"], snap["digest"])
    got = _SNAPSHOTS.get(key)
    if got is None:
        got = ([(Case.from_json(c), w) for c, w in snap["corpus"]], set(snap["points"]))
        _SNAPSHOTS.clear()
        _SNAPSHOTS[key] = got
    return got


def _faults() -> set:
    v = os.environ.get(FAULT_ENV, "")
    if not v.startswith("kill:"):
        return set()
    return {int(x) for x in v[5:].split(",") if x.strip()}


def run_batch(task: dict) -> dict:
    """Run maps ``[start, end)`` of a campaign (in a worker).  Returns outcome counts, the
    maps reaching each coverage point, per map the points the snapshot did not know, and
    the shrunk findings whose signature has no finding below ``start``."""
    from emu.tools.fuzzcase import run_case, shrink
    from emu.tools.generators import case_for
    spec = Spec(**task["spec"])
    corpus, known_points = _snapshot_cases(task["snapshot"])
    known = task["known"]                           # signature -> index of its finding (< start)
    kill = _faults()
    outcomes: Dict[str, int] = {}
    counts: Dict[str, int] = {}
    new: List[list] = []
    findings: List[dict] = []
    done_sigs: set = set()
    bottom_up = task["bottom_up"]
    t0 = time.process_time()
    emulations = 0
    deadline = task.get("deadline")          # wall clock (time.time()): past it the batch is abandoned

    def late() -> bool:
        return deadline is not None and time.time() > deadline
    for i in range(task["start"], task["end"]):
        if i in kill:
            os._exit(86)
        if late():
            return {"start": task["start"], "end": task["end"], "aborted": True}
        case = case_for(spec.seed, i, max_ram=spec.max_ram, families=spec.families, modes=spec.modes,
                        bottom_up=bottom_up, corpus=corpus, bias=spec.bias, force=spec.force)
        out = run_case(case, spec.profile, spec.reference)
        emulations += 1
        outcomes[out.kind] = outcomes.get(out.kind, 0) + 1
        pts = out.points
        for p in pts:
            counts[p] = counts.get(p, 0) + 1
        fresh = sorted(p for p in pts if p not in known_points)
        if fresh:
            new.append([i, fresh, case.to_json()])
        if out.finding and out.signature not in known and out.signature not in done_sigs:
            done_sigs.add(out.signature)
            small, tries = shrink(case, spec.profile, out.signature, spec.reference, budget=spec.shrink_budget,
                                  stop=late)
            if late():
                return {"start": task["start"], "end": task["end"], "aborted": True}
            emulations += tries
            final = run_case(small, spec.profile, spec.reference)
            findings.append({"index": i, "signature": out.signature, "small": small.to_json(),
                             "original": case.to_json(), "detail": final.detail, "tries": tries})
    return {"start": task["start"], "end": task["end"], "outcomes": outcomes, "counts": counts, "new": new,
            "findings": findings, "cpu": time.process_time() - t0, "emulations": emulations}


def run_single_killer(task: dict) -> dict:
    """One map, alone in its task: used to find which map of a batch killed its worker."""
    return run_batch(task)


# ---------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` completely or not at all: a temporary file, fsynced, renamed."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    F.fsync_dir(os.path.dirname(os.path.abspath(path)))


def slug(profile: str, signature: str) -> str:
    h = hashlib.sha1(signature.encode()).hexdigest()[:8]
    words = re.sub(r"[^A-Za-z0-9.]+", "_", signature.replace("Kernel panic - not syncing:", ""))[:48].strip("_")
    return f"{profile}-{words}-{h}"


def write_finding(out_dir: str, profile: str, signature: str, small: dict, original: dict, detail: List[str],
                  seed: int, index: int, tries: int, reference: Optional[str]) -> str:
    """``<name>.e820.json`` (for ``--e820``) and ``<name>.json`` (everything), each written
    atomically and fsynced; the content depends on nothing but the finding (no time stamp),
    so a cluster run and a local run write the same bytes."""
    from emu.tools.generators import Case
    name = slug(profile, signature)
    case = Case.from_json(small)
    e820_path = os.path.join(out_dir, name + ".e820.json")
    write_atomic(e820_path, F.dumps(F.e820_document(small["e820"])) + "\n")
    cmd = " ".join(["emu", "check", "--profile", profile, "--e820", name + ".e820.json"] + case.cli_args())
    doc = {"profile": profile, "signature": signature, "kind": signature.split(":", 1)[0],
           "detail": detail, "command": cmd, "case": small, "original": original,
           "seed": seed, "index": index, "shrink_emulations": tries, "reference": reference}
    path = os.path.join(out_dir, name + ".json")
    write_atomic(path, F.dumps(F.fuzz_finding_document(doc)) + "\n")
    return path


# ---------------------------------------------------------------------------
# the client
# ---------------------------------------------------------------------------
@dataclass
class Summary:
    profile: str
    seed: int
    maps: int = 0                  # maps merged in this run
    seconds: float = 0.0
    next_index: int = 0
    outcomes: Dict[str, int] = field(default_factory=dict)   # whole campaign
    findings: Dict[str, str] = field(default_factory=dict)   # signature -> file
    new: List[str] = field(default_factory=list)             # signatures first found in this run
    coverage: Dict[str, int] = field(default_factory=dict)   # point -> maps that reached it (campaign)
    new_points: List[str] = field(default_factory=list)      # points first reached in this run
    corpus: int = 0
    runner: str = ""
    workers: int = 1
    cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.maps / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict:
        return {"profile": self.profile, "seed": self.seed, "maps": self.maps, "seconds": round(self.seconds, 3),
                "maps_per_s": round(self.rate, 1), "next_index": self.next_index, "outcomes": self.outcomes,
                "findings": self.findings, "new": self.new, "coverage_points": len(self.coverage),
                "coverage": self.coverage, "new_points": self.new_points, "corpus": self.corpus,
                "runner": self.runner, "workers": self.workers, "worker_cpu_s": round(self.cpu, 3)}


class StateError(ValueError):
    """The output folder holds another campaign's state."""


class Campaign:
    """One shard (profile, seed): state in ``out_dir``; :meth:`run` advances it."""

    def __init__(self, spec: Spec, out_dir: str) -> None:
        from emu.kernel.profiles import get_profile
        self.spec = spec
        self.prof = get_profile(spec.profile)
        if spec.modes is None:
            from emu.tools.generators import modes_for
            spec.modes = modes_for(self.prof)
        self.bottom_up = bool(self.prof.bottom_up_supported)
        self.out = out_dir
        os.makedirs(out_dir, exist_ok=True)
        os.makedirs(os.path.join(out_dir, "corpus"), exist_ok=True)
        self.state_path = os.path.join(out_dir, "state.json")
        self.next_index = 0
        self.outcomes: Dict[str, int] = {}
        self.coverage: Dict[str, int] = {}
        self.corpus: List[dict] = []          # {"index", "points", "case"}
        self.findings: Dict[str, dict] = {}   # signature -> {"file", "index"}
        self.snapshots: Dict[int, Dict[str, int]] = {0: {}}   # round start -> coverage counts then
        self.cpu = 0.0
        self.maps_total = 0
        self._load()

    # -- state ---------------------------------------------------------------
    def _load(self) -> None:
        try:
            with open(self.state_path) as f:
                st = json.load(f)
        except FileNotFoundError:
            return
        except (OSError, ValueError) as e:
            raise StateError(f"{self.state_path}: unreadable campaign state ({e})") from None
        if not isinstance(st, dict):
            raise StateError(f"{self.state_path}: not a campaign state (a JSON object expected)")
        spec_v = st.get("spec")
        spec: dict = spec_v if isinstance(spec_v, dict) else {}
        if st.get("schema") != F.schema_id("fuzz-state") or st.get("spec") != F.json_safe(self.spec.key()):
            raise StateError(f"{self.state_path} belongs to another campaign (profile "
                             f"{spec.get('profile', st.get('profile'))}, seed {spec.get('seed', st.get('seed'))}); "
                             f"use another --out")
        try:
            self.next_index = int(st["next_index"])
            if self.next_index < 0:
                raise ValueError(f"next_index {self.next_index} < 0")
            self.outcomes = dict(st["outcomes"])
            self.coverage = dict(st["coverage"])
            self.corpus = list(st["corpus"])
            self.findings = dict(st["findings"])
            self.snapshots = {int(k): v for k, v in st["snapshots"].items()}
            self.cpu = float(st.get("worker_cpu_s", 0.0))
            self.maps_total = int(st.get("maps", self.next_index))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise StateError(f"{self.state_path}: damaged campaign state ({type(e).__name__}: {e})") from None

    def save(self) -> None:
        doc = {"spec": self.spec.key(), "profile": self.spec.profile, "seed": self.spec.seed,
               "next_index": self.next_index, "maps": self.maps_total, "outcomes": self.outcomes,
               "coverage": self.coverage, "corpus": self.corpus, "findings": self.findings,
               "snapshots": {str(k): v for k, v in self.snapshots.items()}, "worker_cpu_s": round(self.cpu, 3)}
        write_atomic(self.state_path, F.dumps(F.fuzz_state_document(doc), indent=None))

    # -- generation ------------------------------------------------------------
    def snapshot_for(self, index: int) -> Optional[dict]:
        """The corpus as round ``index // self.spec.round_size`` sees it (after round - 2), or None when the
        merged prefix has not reached it yet."""
        r = index // self.spec.round_size
        at = max(0, r - 1) * self.spec.round_size
        if at > self.next_index or at not in self.snapshots:
            return None
        counts = self.snapshots[at]
        corpus = []
        for e in self.corpus:
            if e["index"] >= at:
                break
            w = sum(1.0 / math.sqrt(max(1, counts.get(p, 1))) for p in e["points"])
            corpus.append((e["case"], round(w, 6)))
        digest = hashlib.sha1(f"{at}:{len(corpus)}".encode()).hexdigest()[:12]
        return {"at": at, "digest": digest, "corpus": corpus, "points": sorted(counts)}

    def task(self, start: int, end: int) -> Optional[dict]:
        snap = self.snapshot_for(start)
        if snap is None:
            return None
        known = {s: f["index"] for s, f in self.findings.items() if f["index"] < start}
        return {"spec": self.spec.key(), "start": start, "end": end, "snapshot": snap, "known": known,
                "bottom_up": self.bottom_up}

    # -- merging -----------------------------------------------------------------
    def take_findings(self, res: dict, summ: Summary, progress: bool) -> None:
        for f in res["findings"]:
            sig = f["signature"]
            cur = self.findings.get(sig)
            if cur is not None and cur["index"] <= f["index"]:
                continue
            path = write_finding(self.out, self.spec.profile, sig, f["small"], f["original"], f["detail"],
                                 self.spec.seed, f["index"], f["tries"], self.spec.reference)
            self.findings[sig] = {"file": os.path.basename(path), "index": f["index"]}
            if sig not in summ.findings and cur is None:
                summ.new.append(sig)
                if progress:
                    sys.stderr.write(f"\r\x1b[K[fuzz] new finding: {sig} -> {path}\n")
            summ.findings[sig] = os.path.basename(path)

    def merge(self, res: dict, summ: Summary) -> None:
        """Merge the batch that starts at ``next_index``."""
        assert res["start"] == self.next_index
        for k, v in res["outcomes"].items():
            self.outcomes[k] = self.outcomes.get(k, 0) + v
        # a map joins the corpus when it reaches a point no lower index reached
        have = set(self.coverage)
        for i, pts, case in res["new"]:
            fresh = [p for p in pts if p not in have]
            if fresh:
                have.update(fresh)
                e = {"index": i, "points": fresh, "case": case}
                self.corpus.append(e)
                write_atomic(os.path.join(self.out, "corpus", f"{i:09d}.json"),
                             F.dumps(F.fuzz_corpus_document(e)) + "\n")
        for p, n in res["counts"].items():
            if p not in self.coverage:
                summ.new_points.append(p)
            self.coverage[p] = self.coverage.get(p, 0) + n
        n = res["end"] - res["start"]
        summ.maps += n
        self.maps_total += n
        self.cpu += res.get("cpu", 0.0)
        summ.cpu += res.get("cpu", 0.0)
        self.next_index = res["end"]
        if self.next_index % self.spec.round_size == 0:
            b = self.next_index
            self.snapshots[b] = dict(self.coverage)
            for k in [k for k in self.snapshots if k < b - self.spec.round_size]:
                del self.snapshots[k]

    # -- the run -------------------------------------------------------------------
    def run(self, runner, seconds: Optional[float] = None, count: Optional[int] = None, progress: bool = False,
            batch: Optional[int] = None) -> Summary:
        from emu.tools.batches import Result  # noqa: F401
        summ = Summary(self.spec.profile, self.spec.seed, runner=runner.name, workers=runner.workers)
        summ.findings = {s: f["file"] for s, f in self.findings.items()}
        t0 = time.monotonic()
        deadline = t0 + seconds if seconds is not None else None
        end_index = self.next_index + count if count is not None else None
        sub = self.next_index                      # next index to hand out
        pending: Dict[int, dict] = {}              # results waiting for lower indices
        inflight: Dict[int, Tuple[int, int, bool]] = {}   # tid -> (start, end, single)
        splits: Dict[int, dict] = {}               # batch start -> {"end", "parts": {i: res}}
        tid = 0
        window = max(2, 2 * runner.workers)
        bsize = batch or BATCH
        rate_t, rate_n = time.monotonic(), 0
        last_save = last_draw = 0.0
        stopping = False
        try:
            while True:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    stopping = True
                # hand out work
                while not stopping and len(inflight) < window and (end_index is None or sub < end_index):
                    end = min(sub + bsize, (sub // self.spec.round_size + 1) * self.spec.round_size)
                    if end_index is not None:
                        end = min(end, end_index)
                    t = self.task(sub, end)
                    if t is None:
                        break
                    if deadline is not None:
                        # a batch still running a second after the deadline gives up (not merged)
                        t["deadline"] = time.time() + (deadline - time.monotonic()) + 1.0
                    runner.submit(tid, run_batch, t)
                    inflight[tid] = (sub, end, False)
                    tid += 1
                    sub = end
                if not inflight:
                    break
                got = runner.next_done(timeout=0.2 if not stopping else max(0.05, min(0.2, self._grace(deadline))))
                if got is None:
                    if stopping and self._grace(deadline) <= 0:
                        break
                    continue
                k, res = got
                start, end, single = inflight.pop(k)
                if not res.ok:
                    if res.killed and not single and end - start > 1:
                        # find the map that kills workers: each alone
                        splits[start] = {"end": end, "parts": {}}
                        for i in range(start, end):
                            t = self.task(i, i + 1)
                            runner.submit(tid, run_single_killer, t)
                            inflight[tid] = (i, i + 1, True)
                            tid += 1
                        continue
                    if res.killed:
                        value = self._killer_result(start, end)
                    else:
                        raise RuntimeError(f"batch [{start}, {end}) failed: {res.error}")
                else:
                    value = res.value
                if value.get("aborted"):
                    continue
                self.take_findings(value, summ, progress)
                if single and any(s <= start < sp["end"] for s, sp in splits.items()):
                    s0 = max(s for s in splits if s <= start)
                    splits[s0]["parts"][start] = value
                    if len(splits[s0]["parts"]) == splits[s0]["end"] - s0:
                        value = _combine(s0, splits.pop(s0))
                        start = s0
                    else:
                        continue
                pending[start] = value
                rate_n += value["end"] - value["start"]
                while self.next_index in pending:
                    self.merge(pending.pop(self.next_index), summ)
                # batches of about a quarter second per worker
                if batch is None and time.monotonic() - rate_t > 0.5 and rate_n:
                    per_s = rate_n / (time.monotonic() - rate_t) / max(1, runner.workers)
                    bsize = int(min(512, max(8, per_s * 0.25)))
                    rate_t, rate_n = time.monotonic(), 0
                now = time.monotonic()
                if now - last_save > 1.0:
                    self.save()
                    last_save = now
                if progress and now - last_draw > 0.25:
                    last_draw = now
                    el = now - t0
                    sys.stderr.write(f"\r\x1b[K[fuzz {self.spec.profile}] {summ.maps} maps, "
                                     f"{summ.maps / max(el, 1e-9):.0f} maps/s, {len(self.findings)} findings, "
                                     f"{len(self.coverage)} points, corpus {len(self.corpus)}, {el:.0f}s")
                    sys.stderr.flush()
        except KeyboardInterrupt:
            if progress:
                sys.stderr.write(f"\n[fuzz] interrupted; state saved, findings are in {self.out}\n")
        finally:
            runner.cancel_all()
            self.save()
            summ.seconds = time.monotonic() - t0
            summ.next_index = self.next_index
            summ.outcomes = dict(self.outcomes)
            summ.coverage = dict(self.coverage)
            summ.corpus = len(self.corpus)
            if progress:
                sys.stderr.write("\n")
        return summ

    @staticmethod
    def _grace(deadline: Optional[float]) -> float:
        """Seconds left to wait for batches in flight after the deadline."""
        if deadline is None:
            return 1.0
        return deadline + 1.0 - time.monotonic()

    def _killer_result(self, start: int, end: int) -> dict:
        """The result of a map that killed its worker twice: a finding (not shrunk: every try
        would cost a worker)."""
        from emu.tools.generators import case_for
        snap = self.snapshot_for(start)
        assert snap is not None, "a batch runs only once its round's corpus snapshot exists"
        corpus, _ = _snapshot_cases(snap)
        case = case_for(self.spec.seed, start, max_ram=self.spec.max_ram, families=self.spec.families,
                        modes=self.spec.modes, bottom_up=self.bottom_up, corpus=corpus, bias=self.spec.bias,
                        force=self.spec.force)
        sig = "crash:worker-killed"
        return {"start": start, "end": end, "outcomes": {"crash": 1}, "counts": {}, "new": [],
                "findings": [{"index": start, "signature": sig, "small": case.to_json(), "original": case.to_json(),
                              "detail": ["the worker process died twice running this map"], "tries": 0}],
                "cpu": 0.0, "emulations": 0}


def _combine(start: int, split: dict) -> dict:
    parts = [split["parts"][i] for i in sorted(split["parts"])]
    out: Dict[str, Any] = {"start": start, "end": split["end"], "outcomes": {}, "counts": {}, "new": [],
                           "findings": [], "cpu": 0.0, "emulations": 0}
    for p in parts:
        for k, v in p["outcomes"].items():
            out["outcomes"][k] = out["outcomes"].get(k, 0) + v
        for k, v in p["counts"].items():
            out["counts"][k] = out["counts"].get(k, 0) + v
        out["new"] += p["new"]
        out["findings"] += p["findings"]
        out["cpu"] += p["cpu"]
        out["emulations"] += p["emulations"]
    return out


def newest_profile() -> str:
    from emu.kernel.profiles import PROFILES
    return max((p for p in PROFILES.values() if p.by_version), key=lambda p: p.version).name


__all__ = ["Spec", "Campaign", "Summary", "StateError", "run_batch", "write_finding", "write_atomic", "slug",
           "newest_profile", "ROUND", "FAULT_ENV"]
