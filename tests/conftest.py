"""Shared fixtures: the boot-log corpus and small layouts.

The tests run against the installed ``emu`` (``pip install -e ".[test]"`` in a checkout):
the header pytest prints names the engine they get and the corpus they read.

The corpus of real boot logs is ``../shared/corpus/dmesg`` beside the checkout, or
``$EMU_CORPUS``; when it is missing the run stops with a usage error, unless
``EMU_CORPUS=none`` says to skip the corpus tests.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))  # helper modules (pt_random, layouts) next to the tests

#: ``EMU_CORPUS=none``: run without the boot-log corpus (its tests are skipped)
NO_CORPUS = "none"


def corpus_setting() -> Optional[Path]:
    """The corpus directory asked for, or None when ``EMU_CORPUS=none``."""
    env = os.environ.get("EMU_CORPUS")
    if env == NO_CORPUS:
        return None
    if env:
        return Path(env)
    return TESTS.parents[1] / "shared" / "corpus" / "dmesg"


def corpus_dir() -> Path:
    """The corpus directory (a path that does not exist with ``EMU_CORPUS=none``)."""
    d = corpus_setting()
    return d if d is not None else TESTS / "corpus-disabled-by-EMU_CORPUS=none"


def pytest_configure(config: pytest.Config) -> None:
    d = corpus_setting()
    if d is not None and not d.is_dir():
        raise pytest.UsageError(
            f"boot-log corpus not found at {d}: set EMU_CORPUS=DIR (the dmesg logs of shared/corpus/dmesg), "
            f"or EMU_CORPUS=none to run without the corpus tests")


def pytest_report_header(config: pytest.Config) -> str:
    import emu
    from emu.machine import engine
    d = corpus_setting()
    if d is None:
        corpus = "none (EMU_CORPUS=none: the corpus tests are skipped)"
    else:
        corpus = f"{d} ({len(list(d.glob('*.log')))} logs)"
    return (f"emu {emu.__version__} from {Path(emu.__file__).parent}; engine: {engine.describe()}\n"
            f"boot-log corpus: {corpus}")


@pytest.fixture(scope="session")
def corpus() -> Path:
    d = corpus_setting()
    if d is None:
        pytest.skip("EMU_CORPUS=none: no boot-log corpus")
    return d
