"""``emu fuzz``: random e820 maps through emulation and the checker; failures shrunk.

Every map comes from :func:`emu.tools.generators.case_for` (``seed``, index), in every
paging mode the profile boots (4- and 5-level x86-64, i386 PAE and non-PAE) with
bottom-up, ``mem=``/``memmap=``, PTI, no-PGE and 4k-only variants, so a run is
reproducible and resumable.  Each map is emulated under the profile and checked by the
independent checker of its mode.  An outcome is a *finding* when

* the checker reports violations (the signature is the set of broken rules),
* the kernel panics where it would not have for a reason the profile knows --
  decided by a reference profile (by default the newest other one): a map on which
  the reference kernel panics too simply has too little usable memory,
* emu itself crashes (an emu bug: the signature names the exception and where),
* a map kills the worker process that runs it, twice (``crash:worker-killed``).

A finding is shrunk (:func:`shrink`, a budget of emulations, no clock: the same minimal
map on every machine) to a minimal map that still fails the same way and written to
``DIR`` at once -- ``<name>.json`` (profile, signature, the kernel's text or the
violations, the minimal and the original case, the command that replays it) and
``<name>.e820.json`` for ``--e820`` -- fsynced before the campaign's index moves past it.
``DIR/state.json`` (next index, outcomes, coverage of the kernel's decision points, the
corpus) lets a rerun resume; ``DIR/corpus/`` keeps every map that first reached a point.
The campaign itself (batches, workers, Dask, coverage steering) is :mod:`emu.tools.campaign`.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from emu.tools.generators import FAMILIES, MODES
from emu.tools.values import argtype, positive_seconds

G = 1 << 30
M = 1 << 20
PAGE = 4096


from emu.tools.fuzzcase import Outcome, run_case, shrink  # noqa: E402,F401  (the per-map part)


# ---------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------
def default_reference(profile: str) -> Optional[str]:
    from emu.kernel.profiles import PROFILES
    merged = [p for p in PROFILES.values() if getattr(p, "by_version", True)
              and getattr(p, "scheme", "brk_top_down") == "brk_top_down"]
    merged.sort(key=lambda p: p.version)
    names = [p.name for p in merged if p.name != profile]
    return names[-1] if names else None


def fuzz(profile: str, out_dir: str, seconds: Optional[float] = None, count: Optional[int] = None, jobs: int = 1,
         seed: int = 0, families: Optional[Sequence[str]] = None, max_ram: int = 64 * G,
         reference: Optional[str] = "auto", progress: bool = True, shrink_budget: int = 2500,
         modes: Optional[Sequence[str]] = None, scheduler: Optional[str] = None, backend: Optional[str] = None,
         bias: float = 0.5, batch: Optional[int] = None, round_size: int = 2048, force: Optional[dict] = None):
    """Fuzz ``profile``; findings go to ``out_dir`` as they are found (see
    :class:`emu.tools.campaign.Campaign`).  ``jobs`` local workers (a forked pool), or the
    Dask cluster at ``scheduler``; ``backend`` forces ``inline``, ``pool`` or ``dask``
    (``dask`` without a scheduler: a LocalCluster of ``jobs`` workers)."""
    from emu.kernel.profiles import get_profile
    from emu.tools.batches import open_runner
    from emu.tools.campaign import Campaign, Spec
    name = get_profile(profile).name
    if reference == "auto":
        reference = default_reference(name)
    if seconds is None and count is None:
        seconds = 60.0
    spec = Spec(name, seed, list(families) if families else None, list(modes) if modes else None, max_ram,
                reference, shrink_budget, bias, round_size, dict(force) if force else None)
    camp = Campaign(spec, out_dir)
    if count is not None and scheduler is None:
        jobs = max(1, min(jobs, count))     # no more local workers than maps to run
    with open_runner(jobs, scheduler, backend) as runner:
        return camp.run(runner, seconds=seconds, count=count, progress=progress, batch=batch)


def write_finding(*args, **kw) -> str:
    from emu.tools.campaign import write_finding as wf
    return wf(*args, **kw)


# ---------------------------------------------------------------------------
# emu fuzz
# ---------------------------------------------------------------------------
EXAMPLES_FUZZ = """examples:
  emu fuzz --seconds 60                                   one minute on the newest profile, every mode
  emu fuzz --profile seed --count 20000 --jobs 2          the top-down patch as posted, two local workers
  emu fuzz --profile 6.1 --scheduler tcp://HOST:8786 --count 1000000   on a Dask cluster
  emu fuzz --profile 3.13 --modes i386-pae,i386 --out f/   only the 32-bit modes
  emu fuzz --profile 3.13 --modes i386-pae,i386 --resume --out f/   go on where f/ stopped (same options)
  emu fuzz --profile 3.9 --families tiny,boundary --count 5000   only tiny maps and maps at size boundaries
"""


def _count(text: str) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text!r}")
    return v


def _jobs(text: str) -> int:
    from emu.tools.batches import MAX_LOCAL_WORKERS
    v = _count(text)
    if v > MAX_LOCAL_WORKERS:
        raise argparse.ArgumentTypeError(f"at most {MAX_LOCAL_WORKERS} local workers, not {text!r} "
                                         "(more machines: --scheduler)")
    return v


def _scheduler(text: str) -> str:
    """A Dask scheduler address: ``[tcp|tls|ucx|ws|wss]://HOST:PORT`` (or ``HOST:PORT``),
    checked before anything connects (dask's own parser raises bare ValueErrors)."""
    import re
    m = re.fullmatch(r"(?:(tcp|tls|ucx|ws|wss)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})", text.strip())
    if not m or not 0 < int(m.group(3)) < 65536:
        raise argparse.ArgumentTypeError(f"not a scheduler address tcp://HOST:PORT: {text!r}")
    return text.strip()


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (0.0 <= v <= 1.0):
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], not {text!r}")
    return v


def register(sub) -> None:
    from emu.tools.campaign import newest_profile
    p = sub.add_parser("fuzz", help="random e820 maps in every mode through emulation + checker; failing maps shrunk "
                                    "and saved; coverage of the kernel's decision points",
                       epilog=EXAMPLES_FUZZ, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", metavar="NAME|VERSION", help=f"kernel profile (default: the newest, {newest_profile()})")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--seconds", type=argtype(positive_seconds, "seconds"), metavar="S",
                   help="run for S seconds (default 60 without --count)")
    g.add_argument("--count", type=_count, metavar="N", help="run N more maps")
    p.add_argument("--jobs", "-j", type=_jobs, default=1, metavar="J",
                   help="local worker processes (default 1; a forked pool, or --backend dask for a LocalCluster)")
    p.add_argument("--scheduler", type=_scheduler, metavar="tcp://HOST:PORT",
                   help="run on this Dask cluster (dask scheduler/worker)")
    p.add_argument("--backend", choices=("inline", "pool", "dask"), help="how local workers run (default: inline for "
                   "one job, pool for more; dask with --scheduler)")
    p.add_argument("--seed", type=int, default=0, metavar="X", help="the run's seed (maps are seed:index)")
    p.add_argument("--out", metavar="DIR", help="findings, corpus and resume state (default: fuzz-PROFILE-seedX)")
    p.add_argument("--resume", action="store_true", help="continue the campaign in DIR (an error if there is none); "
                   "a rerun with the same options resumes too")
    p.add_argument("--families", metavar="LIST",
                   help=f"comma-separated map families (default all): {', '.join(FAMILIES)}")
    p.add_argument("--modes", metavar="LIST", help=f"paging modes (default: all the profile boots): {', '.join(MODES)}")
    p.add_argument("--movable-node", action="store_true", help="every map boots bottom-up (movable_node; 3.13+)")
    p.add_argument("--bias", type=_fraction, default=0.5, metavar="F",
                   help="share of maps mutated from the coverage corpus (default 0.5; 0: no steering)")
    p.add_argument("--max-ram", default="64G", metavar="SIZE", help="largest RAM of random x86-64 maps (default 64G)")
    p.add_argument("--reference", default="auto", metavar="PROFILE",
                   help="a panic is expected when this profile panics on the map too (default: newest "
                        "merged profile; 'none' makes every panic a finding)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_fuzz)


def cmd_fuzz(args: argparse.Namespace) -> int:
    from emu.tools.options import CliError
    from emu.kernel.arch.x86.kernel.setup import parse_memparse
    from emu.kernel.profiles import get_profile
    from emu.tools.campaign import StateError, newest_profile
    profile = get_profile(args.profile).name if args.profile else newest_profile()
    fams = [f.strip() for f in args.families.split(",")] if args.families is not None else None
    for f in fams or []:
        if f not in FAMILIES:
            raise CliError(f"unknown map family {f!r} (known: {', '.join(FAMILIES)})")
    modes = [m.strip() for m in args.modes.split(",")] if args.modes is not None else None
    from emu.tools.generators import modes_for
    allowed = modes_for(get_profile(profile))
    for m in modes or []:
        if m not in MODES:
            raise CliError(f"unknown mode {m!r} (known: {', '.join(MODES)})")
        if m not in allowed:
            raise CliError(f"profile {profile} does not boot in mode {m} (its modes: {', '.join(allowed)})")
    if args.movable_node and not get_profile(profile).bottom_up_supported:
        raise CliError(f"profile {profile} has no bottom-up mapping (movable_node: 3.13+)")
    ref = None if args.reference == "none" else args.reference
    if ref not in (None, "auto"):
        ref = get_profile(ref).name
    max_ram = parse_memparse(args.max_ram)
    if max_ram < 64 * M:
        raise CliError(f"--max-ram {args.max_ram} is below 64M")
    out = args.out or f"fuzz-{profile}-seed{args.seed}"
    if args.resume and not os.path.exists(os.path.join(out, "state.json")):
        raise CliError(f"--resume: no campaign state in {out}/")
    # the defaults said once everything is checked ("emu: assumed" lines, as every command says them)
    if args.profile is None:
        sys.stderr.write(f"emu: assumed profile = {profile} (the newest; --profile to choose)\n")
    if args.out is None:
        sys.stderr.write(f"emu: assumed out = {out}/ (findings and state; --out to choose)\n")
    try:
        s = fuzz(profile, out, seconds=args.seconds, count=args.count, jobs=args.jobs, seed=args.seed,
                 families=fams, max_ram=max_ram, reference=ref, progress=sys.stderr.isatty(), modes=modes,
                 scheduler=args.scheduler, backend=args.backend, bias=args.bias,
                 force={"movable_node": True} if args.movable_node else None)
    except StateError as e:
        raise CliError(str(e)) from None
    if args.json:
        from emu.tools.formats import dumps, fuzz_summary_document
        print(dumps(fuzz_summary_document(s.to_json())))
    else:
        print(f"fuzz {s.profile}: {s.maps} maps in {s.seconds:.1f} s ({s.rate:.0f} maps/s, {s.runner} x{s.workers}); "
              f"next index {s.next_index}; outcomes " + ", ".join(f"{k} {v}" for k, v in sorted(s.outcomes.items())))
        print(f"  coverage: {len(s.coverage)} decision points ({len(s.new_points)} new in this run), "
              f"corpus {s.corpus} maps in {os.path.join(out, 'corpus')}")
        for sig, name in sorted(s.findings.items()):
            print(f"  {'NEW ' if sig in s.new else ''}{sig}: {os.path.join(out, name)}")
    return 1 if s.new else 0


__all__ = ["Outcome", "run_case", "shrink", "fuzz", "write_finding", "register", "default_reference"]
