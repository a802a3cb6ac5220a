"""python bench/run.py [--quick] [--json] [--only PART]: emu's performance table."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from emu.tools.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
