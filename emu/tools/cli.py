"""The ``emu`` command line: one module per command, each with ``register(subparsers)``.

Every subcommand prints kernel-style text by default and one JSON document
with ``--json``.  Bad input ends with one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import List, NoReturn, Optional, Sequence

from emu.errors import EmuError, NotEmulated

#: the commands, in the order ``emu --help`` lists them
COMMANDS: List[str] = [
    "emu.tools.run", "emu.tools.replay", "emu.tools.check", "emu.tools.translate", "emu.tools.dump",
    "emu.tools.diff", "emu.tools.plot", "emu.tools.profiles", "emu.tools.fuzz", "emu.tools.oracle.cli",
]


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line usage errors: ``emu: error: argument --mem: ... (see emu run
    --help)``, exit code 2, never the usage block (subcommands' parsers are of this class
    too)."""

    def error(self, message: str) -> NoReturn:
        line = " ".join(str(message).split())
        sys.stderr.write(f"emu: error: {line} (see {self.prog} --help)\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="emu",
        description="Emulate the Linux x86 kernel's early direct-mapping (page-table) setup, "
                    "bit for bit, for a given e820 map and kernel version.",
        epilog="run 'emu COMMAND --help' for a command's options and examples",
    )
    from emu._version import __version__
    p.add_argument("--version", action="version", version=f"emu {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for mod in COMMANDS:
        importlib.import_module(mod).register(sub)
    return p


def error_line(e: BaseException) -> str:
    """The one line a failure prints (without the ``emu: error:`` prefix)."""
    from emu.kernel.validate import ParamError
    from emu.tools.options import FIELD_OPTIONS
    if isinstance(e, ParamError) and e.field in FIELD_OPTIONS:
        msg = e.named(FIELD_OPTIONS[e.field])
    elif isinstance(e, OSError) and (e.filename or e.strerror):
        where = os.fsdecode(e.filename) if e.filename is not None else ""
        msg = f"{where}: {e.strerror}" if where else str(e.strerror)
    else:
        msg = str(e)
    msg = " ".join(msg.split()) or type(e).__name__
    return msg


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one command; bad input is one ``emu: error:`` line on stderr and exit code 2.

    An :class:`emu.errors.EmuError` (bad input) or an ``OSError`` (a file: its path and the
    system's reason) print one line and return 2.  :class:`emu.errors.NotEmulated` (the
    kernel does what emu does not model, e.g. PTEs written into a large page's frame) prints
    one ``emu: not emulated:`` line and returns 3.  Anything else (a ``MemoryError`` past the
    memory guard included) is an emu bug: one ``emu: internal error:`` line (the traceback
    with ``EMU_TRACEBACK=1``) and exit code 70, so a test harness tells it from bad input.
    """
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
    except KeyboardInterrupt:
        print("emu: interrupted", file=sys.stderr)
        return 130
    except (EmuError, OSError) as e:
        print(f"emu: error: {error_line(e)}", file=sys.stderr)
        return 2
    except NotEmulated as e:
        print(f"emu: not emulated: {error_line(e)}", file=sys.stderr)
        return 3
    except MemoryError:
        print("emu: internal error: out of host memory (the memory estimate missed this layout; an emu "
              "bug: lower --max-memory and report it)", file=sys.stderr)
        return 70
    except Exception as e:
        if os.environ.get("EMU_TRACEBACK") == "1":
            raise
        print(f"emu: internal error: {type(e).__name__}: {error_line(e)} (an emu bug; "
              f"EMU_TRACEBACK=1 shows where)", file=sys.stderr)
        return 70


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
