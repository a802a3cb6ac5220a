"""``emu replay``: emulate what a boot log's kernel had (:mod:`emu.boot.describe`) and diff
the emulated default-dmesg lines with the log's page-table lines."""
from __future__ import annotations

import argparse
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Union

from emu.boot.describe import (  # noqa: F401  (re-exported for the command's users)
    ReplayError,
    layout_from_log,
    read_log,
    stable_version,
    with_backports,
)
from emu.inputs.dmesg import BootLog, is_pagetable_line, normalize_pagetable_line
from emu.kernel.profiles import LEVEL_DEBUG, LEVEL_PR_DEBUG, ProfileError
from emu.errors import EmuError

_RE_LOWHIGH = re.compile(r"^\d+MB (LOWMEM|HIGHMEM) available\.")


def log_shows_kern_debug(log: BootLog) -> bool:
    """Did the capture keep ``KERN_DEBUG`` lines?  Every kernel emu emulates prints
    the ``e820: update``/``remove`` edits of ``trim_bios_range`` at that level,
    and 3.9-4.3 print the page and BRK lines at it."""
    if log.e820_edits:
        return True
    return any(s.startswith((" [mem", "BRK [", " 0")) for s in log.pagetable_lines)


def expected_lines(log: BootLog, full: bool = True) -> List[str]:
    """A log's page-table lines, setup_arch's ``initial memory mapped`` first (i386; x86-64
    before 3.9).  ``full``: for i686 logs also initmem_init's ``N MB HIGHMEM/LOWMEM
    available`` and native_pagetable_init's ``clearing pte ...`` lines, and the page-table
    lines after them (paging_init's pkmap table); else only the lines before them."""
    out = []
    imm = next((ln.text.strip() for ln in log.lines if ln.text.strip().startswith("initial memory mapped")), None)
    if imm is not None:
        out.append(imm)
    for ln in log.lines:
        t = ln.text.strip()
        if not full and _RE_LOWHIGH.match(t):
            break
        if is_pagetable_line(ln.text):
            out.append(normalize_pagetable_line(ln.text))
        elif full and (t.startswith("clearing pte for ram above max_low_pfn:") or _RE_LOWHIGH.match(t)):
            out.append(t)
    return out


@dataclass
class ReplayResult:
    name: str
    passed: bool
    profile: Optional[str] = None
    expected: List[str] = field(default_factory=list)
    got: List[str] = field(default_factory=list)
    first_diff: Optional[int] = None
    error: Optional[str] = None
    panic: Optional[str] = None
    verify_ok: Optional[bool] = None
    #: inputs the log did not give, set to defaults
    assumptions: List[str] = field(default_factory=list)
    #: the emulation (emu.boot.emulate.Result; not in to_json): for --plot
    result: Optional[object] = field(default=None, repr=False, compare=False)

    def line(self) -> str:
        if self.passed:
            return f"PASS {self.name} (profile {self.profile}, {len(self.expected)} lines)"
        if self.error:
            return f"FAIL {self.name}: {self.error}"
        i = self.first_diff or 0
        exp = self.expected[i] if i < len(self.expected) else "<end of log>"
        got = self.got[i] if i < len(self.got) else "<end of emu output>"
        line = f"FAIL {self.name} (profile {self.profile}) line {i + 1}: expected {exp!r}, emu {got!r}"
        if self.assumptions:
            # what the log did not give: the inputs that may explain the difference
            fields = [a.split(" = ", 1)[0].replace("assumed ", "", 1) for a in self.assumptions]
            line += "; inputs assumed: " + ", ".join(fields)
        return line

    def diff_text(self) -> str:
        return "\n".join(difflib.unified_diff(self.expected, self.got, "log", "emu", lineterm=""))

    def to_json(self) -> dict:
        return {"name": self.name, "passed": self.passed, "profile": self.profile, "error": self.error,
                "first_diff": self.first_diff, "expected": self.expected, "got": self.got,
                "panic": self.panic, "verify_ok": self.verify_ok, "assumptions": self.assumptions}


def replay(log: BootLog, profile: Optional[str] = None, debug_pagealloc: bool = False,
           gbpages: Optional[bool] = None, params_override: Optional[dict] = None,
           engine: Optional[str] = None, config=None, sysmap=None, cpu=None) -> ReplayResult:
    """Emulate ``log``'s boot as ``emu run --dmesg`` does (:func:`emu.boot.describe.describe`,
    :func:`emu.boot.emulate.run`) and compare the page-table lines.  ``params_override``:
    BootParams fields a log cannot show (e.g. an i386 kernel's fixmap geometry)."""
    from emu.boot.describe import describe
    from emu.boot.emulate import run
    expected = expected_lines(log)
    over = dict(params_override or {})
    if debug_pagealloc:
        over["debug_pagealloc"] = True
    if gbpages is not None:
        over["gbpages"] = gbpages
    try:
        if not log.kernel_version and not profile:
            raise ReplayError(f"{log.name}: no 'Linux version' line; pass --profile")
        desc = describe(log, profile=profile, overrides=over, config=config, sysmap=sysmap, cpu=cpu)
        result = run(desc, engine=engine)
    except (EmuError, ProfileError) as e:
        return ReplayResult(log.name, False, expected=expected, error=str(e).splitlines()[0])
    got = result.log
    if desc.until != "paging_init":
        expected = expected_lines(log, full=False)
    if not log_shows_kern_debug(log):
        # the capture dropped KERN_DEBUG lines (console loglevel, syslog filter):
        # compare only the lines it could show
        got = [t for lvl, t in result.kernel.log.records if lvl not in (LEVEL_DEBUG, LEVEL_PR_DEBUG)]
    first = None
    for i in range(max(len(expected), len(got))):
        if i >= len(expected) or i >= len(got) or expected[i] != got[i]:
            first = i
            break
    return ReplayResult(log.name, first is None, desc.profile.name, expected, got, first, None, result.panic,
                        result.verify.ok if result.verify is not None else None,
                        [a.text() for a in result.assumptions], result)


def replay_file(path: Union[str, Path], **kw) -> ReplayResult:
    name = Path(path).name
    try:
        log = read_log(path)
    except (ValueError, OSError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        return ReplayResult(name, False, error=msg)
    log.name = name
    return replay(log, **kw)


EXAMPLES_REPLAY = """examples:
  emu replay boot.log                       PASS/FAIL per log against its page-table lines
  emu replay logs/*.log --json
  emu replay -j 2 logs/*.log                two local workers (--scheduler tcp://HOST:8786: a Dask cluster)
  emu replay --debug-pagealloc rand.log     kernel built with CONFIG_DEBUG_PAGEALLOC (4k only)
  emu replay --options options.json rand/*.log
                                            each log with the build options a file names for it
                                            (the format of tests/corpus_options.json)
"""


def load_options_file(path: str) -> dict:
    """An options file (``tests/corpus_options.json``): ``{LOG-NAME: {"options": {...},
    "reason": "..."}}`` (keys starting with ``_`` are comments) -> ``{LOG-NAME: replay
    keyword arguments}``, every value typed (:func:`emu.tools.values.replay_options`)."""
    import json
    from emu.errors import EmuError
    from emu.inputs.files import display_path, read_text_input
    from emu.tools.values import replay_options
    where = display_path(path)
    try:
        doc = json.loads(read_text_input(path, "replay options file"))
    except (ValueError, RecursionError) as e:
        if isinstance(e, EmuError):
            raise
        raise EmuError(f"{where}: not a JSON options file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if not isinstance(doc, dict):
        raise EmuError(f"{where}: an object keyed by log name is needed, not {type(doc).__name__}")
    out = {}
    for name, entry in doc.items():
        if str(name).startswith("_"):
            continue
        if not isinstance(entry, dict) or "options" not in entry:
            raise EmuError(f"{where}: {name}: an object with \"options\" (and a \"reason\") is needed")
        out[str(name)] = replay_options(entry["options"], f"{where}: {name}")
    return out


def register(sub) -> None:
    from emu.tools.options import _param
    rp = sub.add_parser("replay", help="emulate boot logs and diff the page-table lines",
                        epilog=EXAMPLES_REPLAY, formatter_class=argparse.RawDescriptionHelpFormatter)
    rp.add_argument("logs", nargs="+", metavar="LOG")
    rp.add_argument("--profile", metavar="NAME|VERSION", help="override the log's version")
    rp.add_argument("--debug-pagealloc", action="store_true", help="the kernel had CONFIG_DEBUG_PAGEALLOC")
    gb = rp.add_mutually_exclusive_group()
    gb.add_argument("--gbpages", dest="gbpages", action="store_true", default=None)
    gb.add_argument("--no-gbpages", dest="gbpages", action="store_false")
    rp.add_argument("--param", type=_param, action="append", default=[], metavar="NAME=VALUE",
                    help="a boot parameter the log does not show (e.g. an i386 kernel's fixmap_bottom=0xffd00000)")
    rp.add_argument("--config", metavar="FILE", help="the kernel's .config (every log is of this kernel)")
    rp.add_argument("--system-map", metavar="FILE", help="its System.map or kallsyms list")
    rp.add_argument("--cpu", metavar="DESC", help="the CPU the logs booted on (see emu run --help)")
    rp.add_argument("--options", metavar="FILE",
                    help="build options per log name, with their reasons (JSON; the format of tests/corpus_options.json); "
                         "a log named there gets its options instead of the flags above")
    rp.add_argument("--json", action="store_true", help="one JSON document (schema emu.replay/1)")
    rp.add_argument("--plot", metavar="FILE", help="a picture of the (single) log's emulation")
    rp.add_argument("-v", "--verbose", action="store_true", help="show the diff of failing logs")
    rp.add_argument("--pure", action="store_true", help="use the pure-Python reference loops")
    from emu.tools.fuzz import _jobs, _scheduler
    rp.add_argument("--jobs", "-j", type=_jobs, default=1, metavar="J",
                    help="replay the logs on J local worker processes (the campaigns' engine; default 1)")
    rp.add_argument("--scheduler", type=_scheduler, metavar="tcp://HOST:PORT",
                    help="replay the logs on this Dask cluster (dask scheduler/worker)")
    rp.set_defaults(func=cmd_replay)


def _replay_task(arg) -> ReplayResult:
    """One log's replay in a worker (emu.tools.batches); the emulation stays there."""
    path, kw = arg
    r = replay_file(path, **kw)
    r.result = None
    return r


def replay_many(tasks, jobs: int = 1, scheduler: Optional[str] = None) -> List[ReplayResult]:
    """``(path, replay keyword arguments)`` tasks on the campaigns' runners
    (:func:`emu.tools.batches.open_runner`: inline, a forked pool or a Dask cluster), in
    the order given whatever the order they finish in."""
    from emu.tools.batches import map_unordered, open_runner
    out: List[Optional[ReplayResult]] = [None] * len(tasks)
    with open_runner(jobs, scheduler, tasks=len(tasks)) as runner:
        for i, res in map_unordered(runner, _replay_task, tasks):
            if res.ok:
                out[i] = res.value
            else:
                out[i] = ReplayResult(Path(tasks[i][0]).name, False,
                                      error=f"worker: {res.error}" + (" (the log kills its worker)" if res.killed else ""))
    return [r for r in out if r is not None]


def cmd_replay(args: argparse.Namespace) -> int:
    from emu.tools import formats
    from emu.tools.options import CliError, artefacts, engine_of
    config, sysmap, cpu = artefacts(args)
    if args.plot:
        from emu.tools import plot
        if len(args.logs) != 1:
            raise CliError("--plot draws one log's emulation: give one LOG")
        plot.check_output(args.plot)
    from emu.inputs.files import read_input
    for path in args.logs:              # bad input before anything runs: one line, exit 2
        read_input(path, "boot log")    # (type, size cap, empty, binary data: as run --dmesg refuses them)
    per_log = load_options_file(args.options) if args.options else {}
    tasks = []
    for path in args.logs:
        over = {n: (tuple(v) if n in ("kmap_range", "initrd") and isinstance(v, list) else v) for n, v in args.param}
        kw = dict(profile=args.profile, debug_pagealloc=args.debug_pagealloc, gbpages=args.gbpages,
                  params_override=over or None, engine=engine_of(args), config=config, sysmap=sysmap, cpu=cpu)
        kw.update(per_log.get(Path(path).name, {}))
        tasks.append((path, kw))
    if (args.jobs > 1 or args.scheduler) and not args.plot:
        results = replay_many(tasks, args.jobs, args.scheduler)
    else:
        results = [replay_file(path, **kw) for path, kw in tasks]
    passed = sum(1 for r in results if r.passed)
    failed = len(results) - passed
    if args.plot and results[0].result is not None:
        plot.plot_replay(results[0].result, args.plot)
    if args.json:
        print(formats.dumps(formats.replay_document(results, passed, failed)))
    else:
        for r in results:
            print(r.line())
            if args.verbose and not r.passed:
                print(r.diff_text())
        print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


