"""``emu/_fast.pyi`` (what mypy sees of the compiled loops) matches the compiled module."""
from __future__ import annotations

import ast
import enum
from pathlib import Path

import emu
from emu.machine import engine

STUB = Path(emu.__file__).parent / "_fast.pyi"


def test_stub_names_and_enum_values_are_the_modules():
    fast = engine._compiled()
    assert fast is not None, "the compiled module is not built"
    tree = ast.parse(STUB.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom):       # re-exports: ``from m import X as X``
            names.update(a.asname for a in node.names if a.asname == a.name)
        if isinstance(node, ast.ClassDef) and any(getattr(b, "id", "") == "IntEnum" for b in node.bases):
            stub = {t.targets[0].id: ast.literal_eval(t.value) for t in node.body if isinstance(t, ast.Assign)}
            real = getattr(fast, node.name)
            assert issubclass(real, enum.IntEnum)
            assert stub == {m.name: int(m.value) for m in real}, node.name
    public = {n for n in dir(fast) if not n.startswith("_")}
    assert names == public
