"""``emu fuzz``: random e820 maps through emulation and the checker; failures shrunk.

Every map comes from :func:`emu.tools.generators.case_for` (``seed``, index), so a run is
reproducible and resumable.  Each map is emulated under the profile and checked
with :func:`emu.check.x86_64.verify`.  An outcome is a *finding* when

* the checker reports violations (the signature is the set of broken rules),
* the kernel panics where it would not have for a reason the profile knows --
  decided by a reference profile (by default the newest other one): a map on which
  the reference kernel panics too simply has too little usable memory,
* emu itself crashes (an emu bug: the signature names the exception and where).

A finding is shrunk (:func:`shrink`) to a minimal map that still fails the same
way and written to ``DIR`` at once -- ``<name>.json`` (profile, signature, the
kernel's text or the violations, the minimal and the original case, the command
that replays it) and ``<name>.e820.json`` for ``--e820`` -- so a crash or Ctrl-C
loses nothing; ``DIR/state.json`` lets a rerun with the same seed resume.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Set, Tuple

from emu.tools.generators import ADVERSARIAL, FAMILIES, REALISTIC, Case, case_for

G = 1 << 30
M = 1 << 20
PAGE = 4096


# ---------------------------------------------------------------------------
# one map
# ---------------------------------------------------------------------------
@dataclass
class Outcome:
    kind: str                  # ok | rejected | expected-panic | panic | check | crash
    signature: str = ""
    detail: List[str] = field(default_factory=list)

    @property
    def finding(self) -> bool:
        return self.kind in ("panic", "check", "crash")


def _norm_panic(text: str) -> str:
    return re.sub(r"0x[0-9a-f]+", "ADDR", text.strip())


def _emulate(case: Case, profile: str):
    from emu.boot.emulate import emulate
    return emulate(case.table(), profile, case.boot_params(), max_memory=1 << 30)


def run_case(case: Case, profile: str, reference: Optional[str] = None) -> Outcome:
    """Emulate and check one case under ``profile``; classify the result."""
    from emu.kernel.arch.x86.kernel.setup import SetupError
    from emu.tools.generators import kernel_in_ram
    if not kernel_in_ram(case):
        return Outcome("rejected", "", ["the kernel image or its BRK buffer is not in RAM"])
    try:
        r = _emulate(case, profile)
    except SetupError as e:
        return Outcome("rejected", "", [str(e)])
    except Exception as e:  # an emu bug
        tb = traceback.extract_tb(e.__traceback__)
        where = f"{os.path.basename(tb[-1].filename)}:{tb[-1].lineno}" if tb else "?"
        return Outcome("crash", f"crash:{type(e).__name__}@{where}", [f"{type(e).__name__}: {e}"])
    if r.panic:
        if reference and reference != profile:
            try:
                ref = _emulate(case, reference)
                if ref.panic:
                    return Outcome("expected-panic", "", [r.panic, f"{reference}: {ref.panic}"])
            except Exception:
                pass
        return Outcome("panic", "panic:" + _norm_panic(r.panic), [r.panic])
    v = r.verify
    if v is not None and not v.ok:
        return Outcome("check", "check:" + ",".join(v.signature()), list(v.violations[:12]))
    return Outcome("ok")


# ---------------------------------------------------------------------------
# shrinking
# ---------------------------------------------------------------------------
def _round_candidates(x: int) -> List[int]:
    out = []
    for a in (1 << 40, 512 * G, 64 * G, 4 * G, G, 256 * M, 64 * M, 2 * M, PAGE):
        for y in (x // a * a, -(-x // a) * a):
            if y != x and y not in out:
                out.append(y)
    return out


def _variants(c: Case) -> Iterator[Case]:
    """Simpler neighbours of ``c``, most aggressive first."""
    e = c.e820
    n = len(e)

    def with_e820(new) -> Case:
        d = Case(list(new), c.family, c.gbpages, c.pse, c.nx, c.pge, c.debug_pagealloc, c.kernel_start,
                 c.brk_base, c.initrd, list(c.reserves))
        return d

    # drop entries (halves, then one at a time)
    if n > 2:
        yield with_e820(e[: n // 2] + [x for x in e[n // 2:] if x[2] == 1][:1])
    for i in range(n - 1, -1, -1):
        yield with_e820(e[:i] + e[i + 1:])
    # parameters back to defaults
    for name, default in (("initrd", None), ("brk_base", None), ("kernel_start", 0x1000000), ("gbpages", True),
                          ("debug_pagealloc", False), ("pse", True), ("nx", True), ("pge", True)):
        if getattr(c, name) != default:
            d = with_e820(e)
            setattr(d, name, default)
            yield d
    if c.reserves:
        d = with_e820(e)
        d.reserves = []
        yield d
    # entries: plain types, merge neighbours, round addresses and sizes
    for i, (a, s, t) in enumerate(e):
        if t not in (1, 2):
            yield with_e820(e[:i] + [(a, s, 2)] + e[i + 1:])
    srt = sorted(e)
    for i in range(len(srt) - 1):
        (a, s, t), (b, s2, t2) = srt[i], srt[i + 1]
        if t == t2 and a + s >= b:
            yield with_e820([x for x in e if x not in (srt[i], srt[i + 1])] + [(a, max(a + s, b + s2) - a, t)])
    for i, (a, s, t) in enumerate(e):
        end = a + s
        for na in _round_candidates(a):
            if 0 <= na < end:
                yield with_e820(e[:i] + [(na, end - na, t)] + e[i + 1:])
        for ne in _round_candidates(end):
            if ne > a:
                yield with_e820(e[:i] + [(a, ne - a, t)] + e[i + 1:])
        if s >= 2 * PAGE:
            yield with_e820(e[:i] + [(a, s // 2 // PAGE * PAGE or PAGE, t)] + e[i + 1:])


def _size_key(c: Case) -> Tuple[int, int, int]:
    """Smaller is simpler: fewer entries, fewer odd bits, less RAM."""
    bits = sum(bin(x).count("1") for a, s, t in c.e820 for x in (a, a + s))
    extra = sum(1 for v in (c.initrd, c.brk_base) if v is not None) + len(c.reserves) + \
        (c.kernel_start != 0x1000000) + (not c.gbpages) + c.debug_pagealloc + (not c.pse) + (not c.nx) + (not c.pge)
    return (len(c.e820) + extra, bits, c.ram())


def shrink(case: Case, profile: str, signature: str, reference: Optional[str] = None,
           budget: int = 2500, seconds: float = 30.0) -> Tuple[Case, int]:
    """A minimal case that fails with the same ``signature``; returns it and the
    number of emulations spent."""
    best = case
    tries = 0
    t0 = time.monotonic()
    improved = True
    while improved and tries < budget and time.monotonic() - t0 < seconds:
        improved = False
        for cand in _variants(best):
            if tries >= budget or time.monotonic() - t0 >= seconds:
                break
            if _size_key(cand) >= _size_key(best):
                continue
            tries += 1
            out = run_case(cand, profile, reference)
            if out.signature == signature:
                best = cand
                improved = True
                break
    return best, tries


# ---------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------
def _slug(profile: str, signature: str) -> str:
    h = hashlib.sha1(signature.encode()).hexdigest()[:8]
    words = re.sub(r"[^A-Za-z0-9.]+", "_", signature.replace("Kernel panic - not syncing:", ""))[:48].strip("_")
    return f"{profile}-{words}-{h}"


_W: Dict[str, object] = {}


def _worker_init(profile: str, reference: Optional[str], seed: int, families, max_ram: int, shrink_budget: int,
                 pool_worker: bool = False) -> None:
    if pool_worker:
        import signal
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # the parent handles Ctrl-C and saves the state
        sys.stderr = open(os.devnull, "w")              # no tracebacks from workers torn down on exit
    _W.update(profile=profile, reference=reference, seed=seed, families=families, max_ram=max_ram,
              shrink_budget=shrink_budget, seen=set())


def _work(index: int):
    p, ref = _W["profile"], _W["reference"]
    case = case_for(_W["seed"], index, max_ram=_W["max_ram"], families=_W["families"])
    out = run_case(case, p, ref)
    if not out.finding:
        return index, out.kind, None
    seen: Set[str] = _W["seen"]  # type: ignore[assignment]
    if out.signature in seen:
        return index, out.kind, (out.signature, None, None, None, 0)
    seen.add(out.signature)
    small, tries = shrink(case, p, out.signature, ref, budget=_W["shrink_budget"])  # type: ignore[arg-type]
    final = run_case(small, p, ref)
    return index, out.kind, (out.signature, small.to_json(), case.to_json(), final.detail, tries)


def _known(out_dir: str) -> Dict[str, str]:
    found = {}
    for name in os.listdir(out_dir):
        if name.endswith(".json") and not name.endswith(".e820.json") and name != "state.json":
            try:
                with open(os.path.join(out_dir, name)) as f:
                    d = json.load(f)
                found[d["signature"]] = name
            except (OSError, ValueError, KeyError):
                pass
    return found


def write_finding(out_dir: str, profile: str, signature: str, small: dict, original: dict, detail: List[str],
                  seed: int, index: int, tries: int, reference: Optional[str]) -> str:
    name = _slug(profile, signature)
    case = Case.from_json(small)
    e820_path = os.path.join(out_dir, name + ".e820.json")
    with open(e820_path + ".tmp", "w") as f:
        json.dump(small["e820"], f, indent=1)
    os.replace(e820_path + ".tmp", e820_path)
    cmd = " ".join(["emu", "check", "--profile", profile, "--e820", e820_path] + case.cli_args())
    doc = {"profile": profile, "signature": signature, "kind": signature.split(":", 1)[0],
           "detail": detail, "command": cmd, "case": small, "original": original,
           "seed": seed, "index": index, "shrink_emulations": tries, "reference": reference,
           "found_at": time.strftime("%Y-%m-%d %H:%M:%S")}
    path = os.path.join(out_dir, name + ".json")
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(path + ".tmp", path)
    return path


@dataclass
class FuzzSummary:
    profile: str
    seed: int
    maps: int = 0
    seconds: float = 0.0
    outcomes: Dict[str, int] = field(default_factory=dict)
    findings: Dict[str, str] = field(default_factory=dict)   # signature -> file
    new: List[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.maps / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict:
        return {"profile": self.profile, "seed": self.seed, "maps": self.maps, "seconds": round(self.seconds, 3),
                "maps_per_s": round(self.rate, 1), "outcomes": self.outcomes, "findings": self.findings,
                "new": self.new}


def default_reference(profile: str) -> Optional[str]:
    from emu.kernel.profiles import PROFILES
    merged = [p for p in PROFILES.values() if getattr(p, "by_version", True)
              and getattr(p, "scheme", "brk_top_down") == "brk_top_down"]
    merged.sort(key=lambda p: p.version)
    names = [p.name for p in merged if p.name != profile]
    return names[-1] if names else None


def fuzz(profile: str, out_dir: str, seconds: Optional[float] = None, count: Optional[int] = None, jobs: int = 1,
         seed: int = 0, families: Optional[Sequence[str]] = None, max_ram: int = 64 * G,
         reference: Optional[str] = "auto", progress: bool = True, shrink_budget: int = 2500) -> FuzzSummary:
    """Fuzz ``profile``; findings go to ``out_dir`` as they are found."""
    from emu.kernel.profiles import get_profile
    get_profile(profile)
    if reference == "auto":
        reference = default_reference(profile)
    os.makedirs(out_dir, exist_ok=True)
    state_path = os.path.join(out_dir, "state.json")
    start = 0
    summ = FuzzSummary(profile, seed)
    try:
        with open(state_path) as f:
            st = json.load(f)
        if st.get("profile") == profile and st.get("seed") == seed and st.get("families") == (list(families) if families else None):
            start = int(st.get("next_index", 0))
    except (OSError, ValueError):
        pass
    summ.findings = _known(out_dir)
    t0 = time.monotonic()
    end_index = start + count if count is not None else None
    if seconds is None and count is None:
        seconds = 60.0
    done: Set[int] = set()
    next_index = start
    last_draw = 0.0
    failing = 0

    def save_state() -> None:
        with open(state_path + ".tmp", "w") as f:
            json.dump({"profile": profile, "seed": seed, "next_index": next_index, "families":
                       list(families) if families else None, "reference": reference}, f)
        os.replace(state_path + ".tmp", state_path)

    def indices() -> Iterator[int]:
        i = start
        while end_index is None or i < end_index:
            if seconds is not None and time.monotonic() - t0 >= seconds:
                return
            yield i
            i += 1

    init = (profile, reference, seed, list(families) if families else None, max_ram, shrink_budget)
    pool = None
    try:
        if jobs > 1:
            ctx = multiprocessing.get_context("fork")
            pool = ctx.Pool(jobs, initializer=_worker_init, initargs=init + (True,))
            results = pool.imap_unordered(_work, indices(), chunksize=16)
        else:
            _worker_init(*init)
            results = (_work(i) for i in indices())
        for index, kind, finding in results:
            summ.maps += 1
            summ.outcomes[kind] = summ.outcomes.get(kind, 0) + 1
            done.add(index)
            while next_index in done:
                done.discard(next_index)
                next_index += 1
            if finding is not None:
                failing += 1
                sig, small, original, detail, tries = finding
                if small is not None and sig not in summ.findings:
                    path = write_finding(out_dir, profile, sig, small, original, detail, seed, index, tries, reference)
                    summ.findings[sig] = os.path.basename(path)
                    summ.new.append(sig)
                    if progress:
                        sys.stderr.write(f"\r\x1b[K[fuzz] new finding: {sig} -> {path}\n")
                save_state()
            now = time.monotonic()
            if progress and now - last_draw > 0.25:
                last_draw = now
                el = now - t0
                sys.stderr.write(f"\r\x1b[K[fuzz {profile}] {summ.maps} maps, {summ.maps / max(el, 1e-9):.0f} maps/s, "
                                 f"{failing} failing, {len(summ.findings)} distinct, {el:.0f}s")
                sys.stderr.flush()
            if summ.maps % 512 == 0:
                save_state()
    except KeyboardInterrupt:
        if progress:
            sys.stderr.write("\n[fuzz] interrupted; state saved, findings are in " + out_dir + "\n")
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        summ.seconds = time.monotonic() - t0
        save_state()
        if progress:
            sys.stderr.write("\n")
    return summ


# ---------------------------------------------------------------------------
# emu fuzz
# ---------------------------------------------------------------------------
EXAMPLES_FUZZ = """examples:
  emu fuzz --profile 6.1 --seconds 60 --out findings/        one minute on the newest merged behaviour
  emu fuzz --profile seed --count 20000 --jobs 8 --out seed/  the top-down patch as posted
  emu fuzz --profile 3.9 --families tiny,boundary --out f/    only some map families
"""


def register(sub) -> None:
    p = sub.add_parser("fuzz", help="random e820 maps through emulation + checker; failing maps shrunk and saved",
                       epilog=EXAMPLES_FUZZ, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", required=True, metavar="NAME|VERSION")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--seconds", type=float, metavar="S", help="run for S seconds (default 60 without --count)")
    g.add_argument("--count", type=int, metavar="N", help="run N maps")
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="J", help="worker processes")
    p.add_argument("--seed", type=int, default=0, metavar="X", help="the run's seed (maps are seed:index)")
    p.add_argument("--out", required=True, metavar="DIR", help="findings directory (also resume state)")
    p.add_argument("--families", metavar="LIST",
                   help=f"comma-separated map families (default all): {', '.join(REALISTIC + ADVERSARIAL)}")
    p.add_argument("--max-ram", default="64G", metavar="SIZE", help="largest RAM of random maps (default 64G)")
    p.add_argument("--reference", default="auto", metavar="PROFILE",
                   help="a panic is expected when this profile panics on the map too (default: newest "
                        "merged profile; 'none' makes every panic a finding)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_fuzz)


def cmd_fuzz(args: argparse.Namespace) -> int:
    from emu.tools.options import CliError
    from emu.kernel.arch.x86.kernel.setup import parse_memparse
    fams = [f.strip() for f in args.families.split(",")] if args.families else None
    for f in fams or []:
        if f not in FAMILIES:
            raise CliError(f"unknown map family {f!r} (known: {', '.join(FAMILIES)})")
    ref = None if args.reference == "none" else args.reference
    s = fuzz(args.profile, args.out, seconds=args.seconds, count=args.count, jobs=max(1, args.jobs), seed=args.seed,
             families=fams, max_ram=parse_memparse(args.max_ram), reference=ref, progress=sys.stderr.isatty())
    if args.json:
        print(json.dumps(s.to_json(), indent=1))
    else:
        print(f"fuzz {s.profile}: {s.maps} maps in {s.seconds:.1f} s ({s.rate:.0f} maps/s); outcomes "
              + ", ".join(f"{k} {v}" for k, v in sorted(s.outcomes.items())))
        for sig, name in sorted(s.findings.items()):
            print(f"  {'NEW ' if sig in s.new else ''}{sig}: {os.path.join(args.out, name)}")
    return 1 if s.new else 0


__all__ = ["Outcome", "run_case", "shrink", "fuzz", "FuzzSummary", "write_finding", "register"]
