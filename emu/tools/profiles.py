"""``emu profiles``: the behaviour changes emu knows, the named profiles, and what a kernel
version carries (``--version 5.10.223``: which changes, and why)."""
from __future__ import annotations

import argparse

EXAMPLES = """examples:
  emu profiles                       the named profiles and what each changes
  emu profiles --changes             every behaviour change: commit, release, stable backports, sources
  emu profiles --version 5.10.223    which changes a kernel version carries, and why
  emu profiles --version "6.1.0-26-amd64 ... Debian 6.1.112-1 (2024-09-30)" --json
"""


def register(sub) -> None:
    pr = sub.add_parser("profiles", help="the kernel-version profiles: behaviour changes keyed by commit",
                        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    pr.add_argument("--version", metavar="VERSION",
                    help="a kernel version or release string: show the changes it carries and why")
    pr.add_argument("--changes", action="store_true", help="list every behaviour change with its sources")
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(func=cmd_profiles)


def _fmt(v: object) -> str:
    return hex(v) if isinstance(v, int) and not isinstance(v, bool) and v > 4096 else repr(v)


def cmd_profiles(args: argparse.Namespace) -> int:
    from emu.kernel.profiles import CHANGES, PROFILES, explain, profile_table
    from emu.tools.formats import changes_document, dumps, explain_document, profiles_document
    if args.version:
        d = explain(args.version)
        if args.json:
            print(dumps(explain_document(d)))
            return 0
        print(f"{args.version}: kernel {'.'.join(map(str, d['resolved']))}, profile {d['profile']}")
        for c in d["changes"]:
            mark = "+" if c["carried"] else "-"
            print(f"  {mark} {c['id']:<34} {c['commit'][:12] or '(commit ?)':<13} {c['why']}")
        return 0
    if args.changes:
        if args.json:
            print(dumps(changes_document(CHANGES)))
            return 0
        for c in CHANGES:
            stable = ", ".join(f"{b}.y from {b}.{n}" for b, n in c.stable.items())
            print(f"{'.'.join(map(str, c.mainline)):<8} {c.id}  {c.commit[:12] or '(commit not identified)'}  "
                  f"[{c.confidence}]")
            print(f"{'':<9}{c.subject}")
            print(f"{'':<9}{c.summary}")
            if stable:
                print(f"{'':<9}stable: {stable}")
            for k, v in c.sets.items():
                print(f"{'':<9}sets {k} = {_fmt(v)}")
            for s in c.sources:
                print(f"{'':<9}source: {s}")
        return 0
    if args.json:
        print(dumps(profiles_document(PROFILES)))
        return 0
    for name, summary, diff in profile_table():
        print(f"{name:<8} {summary}")
        for field_name, (old, new) in diff.items():
            print(f"{'':<9}{field_name}: {_fmt(old)} -> {_fmt(new)}")
    return 0
