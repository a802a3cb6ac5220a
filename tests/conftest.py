"""Shared fixtures: the boot-log corpus and small layouts."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))  # helper modules (pt_random, layouts) next to the tests


def corpus_dir() -> Path:
    env = os.environ.get("EMU_CORPUS")
    if env:
        return Path(env)
    return TESTS.parents[1] / "shared" / "corpus" / "dmesg"


@pytest.fixture(scope="session")
def corpus() -> Path:
    d = corpus_dir()
    if not d.is_dir():
        pytest.skip(f"boot-log corpus not found at {d} (set EMU_CORPUS)")
    return d
