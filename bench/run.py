"""python bench/run.py [--quick] [--json] [--only PART]: emu's performance table.

Run from anywhere with the emu under test installed (``pip install -e .`` or a wheel): the
harness (``bench/harness.py``, beside this file) imports the installed ``emu``.
"""
import sys

from harness import main

if __name__ == "__main__":
    sys.exit(main())
