"""The ``emu`` command line: one module per command, each with ``register(subparsers)``.

Every subcommand prints kernel-style text by default and one JSON document
with ``--json``.  Bad input ends with one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import List, Optional, Sequence

from emu.tools.options import CliError

#: the commands, in the order ``emu --help`` lists them
COMMANDS: List[str] = [
    "emu.tools.run", "emu.tools.replay", "emu.tools.check", "emu.tools.translate", "emu.tools.dump",
    "emu.tools.diff", "emu.tools.plot", "emu.tools.profiles", "emu.tools.fuzz", "emu.tools.bench", "emu.tools.oracle.cli",
]

#: commands a wheel may leave out (they run from a checkout)
OPTIONAL_COMMANDS = {"emu.tools.bench"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="emu",
        description="Emulate the Linux x86 kernel's early direct-mapping (page-table) setup, "
                    "bit for bit, for a given e820 map and kernel version.",
        epilog="run 'emu COMMAND --help' for a command's options and examples",
    )
    from emu._version import __version__
    p.add_argument("--version", action="version", version=f"emu {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for mod in COMMANDS:
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if mod in OPTIONAL_COMMANDS and e.name == mod:
                continue    # not installed: wheels leave the benchmark harness out (setup.py)
            raise
        module.register(sub)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        args = parser.parse_args(["run"] + list(argv or []))
    try:
        return args.func(args)
    except BrokenPipeError:  # `emu ... | head`: the reader went away; not an error
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except CliError as e:
        print(f"emu: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, OSError, UnicodeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if isinstance(e, OSError) and e.filename:
            msg = f"{e.filename}: {e.strerror}"
        print(f"emu: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("emu: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
