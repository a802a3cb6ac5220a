"""The house rules, read from the code: layers import only downwards, no import circles,
and the checker shares nothing with the emulated kernel.

Every ``import`` statement counts, including those inside functions (a lazy import is
still a dependency).  The layers, bottom to top (``docs/architecture.md``):

==========  =====================================================================
machine     physical memory, entry bits, paging modes, the MMU walk, the compiled
            loops (``emu._fast``) and their pure-Python twin
inputs      readers of what a user has: e820 files, boot logs, sysfs, .config,
            System.map
kernel      the emulated kernel: arch/x86/{kernel,mm}, mm/memblock, state, printk,
            the version profiles
check       the independent checker: built on machine and inputs only
boot        a boot described from artefacts, emulated and checked (the Python API)
tools       the CLI, one module per command
==========  =====================================================================
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

import pytest

ROOT = Path(__file__).resolve().parent.parent / "emu"

#: layer -> the layers it may import (besides itself)
ALLOWED: Dict[str, Set[str]] = {
    "base": set(),
    "machine": {"base"},
    "inputs": {"base", "machine"},
    "kernel": {"base", "machine", "inputs"},
    "check": {"base", "machine", "inputs"},
    "boot": {"base", "machine", "inputs", "kernel", "check"},
    "tools": {"base", "machine", "inputs", "kernel", "check", "boot"},
    "api": {"base", "machine", "inputs", "kernel", "check", "boot", "tools"},
}


def layer_of(mod: str) -> str:
    parts = mod.split(".")
    if mod == "emu":
        return "api"
    if parts[1] in ("_fast",):
        return "machine"
    if parts[1] in ("errors", "_version"):
        return "base"
    if parts[1] in ALLOWED:
        return parts[1]
    raise AssertionError(f"{mod}: module outside every layer (put it in one of {sorted(ALLOWED)})")


def modules() -> Dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        rel = p.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    out["emu._fast"] = ROOT / "_fast.pyx"
    return out


def imports_of(mod: str, path: Path, known: Dict[str, Path]) -> Set[str]:
    if path.suffix != ".py":
        return set()
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    pkg = mod if is_pkg else mod.rsplit(".", 1)[0]
    found: Set[str] = set()
    for node in ast.walk(tree):
        names: List[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")
                if node.level > 1:
                    up = up[: -(node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                names.append(sub if sub in known else base)
        for n in names:
            if n == "emu" or n.startswith("emu."):
                while n not in known and "." in n:
                    n = n.rsplit(".", 1)[0]
                if n != mod:
                    found.add(n)
    return found


@pytest.fixture(scope="module")
def graph() -> Dict[str, Set[str]]:
    known = modules()
    return {m: imports_of(m, p, known) for m, p in known.items()}


def test_layers_import_only_downwards(graph):
    bad = []
    for mod, deps in sorted(graph.items()):
        lay = layer_of(mod)
        for d in sorted(deps):
            dl = layer_of(d)
            if dl != lay and dl not in ALLOWED[lay]:
                bad.append(f"{mod} ({lay}) imports {d} ({dl})")
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def test_checker_imports_nothing_of_the_emulated_kernel(graph):
    bad = [f"{m} imports {d}" for m, deps in graph.items() if m.startswith("emu.check")
           for d in deps if d.startswith(("emu.kernel", "emu.boot", "emu.tools"))]
    assert not bad, "\n".join(bad)


def strongly_connected(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Tarjan's algorithm: the components with more than one module (or a self-loop)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    out: List[List[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles(graph):
    circles = strongly_connected(graph)
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


def test_the_circle_finder_finds_circles():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(g) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_every_module_lies_in_a_layer(graph):
    for mod in graph:
        layer_of(mod)
