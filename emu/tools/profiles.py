"""``emu profiles``: the kernel-version profiles and what each changes."""
from __future__ import annotations

import argparse


def register(sub) -> None:
    pr = sub.add_parser("profiles", help="list the kernel-version profiles and what differs")
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(func=cmd_profiles)


def cmd_profiles(args: argparse.Namespace) -> int:
    from emu.kernel.profiles import PROFILES, profile_table
    if args.json:
        from emu.tools.formats import dumps, profiles_document
        print(dumps(profiles_document(PROFILES)))
        return 0
    for name, summary, diff in profile_table():
        print(f"{name:<8} {summary}")
        for field_name, (old, new) in diff.items():
            fmt = (lambda v: hex(v) if isinstance(v, int) and not isinstance(v, bool) and v > 4096 else repr(v))
            print(f"{'':<9}{field_name}: {fmt(old)} -> {fmt(new)}")
    return 0
