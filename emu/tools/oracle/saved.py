"""Oracle cases kept offline: one real boot, saved so that emu can be compared with it
again without QEMU (``emu oracle run --save DIR``, ``emu oracle matrix --save DIR``;
``tests/test_oracle_offline.py`` replays the cases in ``tests/data/oracle/``).

A case is a folder:

* ``serial.log.gz`` -- the guest's console log (``memblock=debug``), as a user has it;
* ``config-*`` -- the lines of the kernel's ``.config`` the artefact derivation reads (the
  header, every option :func:`emu.boot.describe.describe` looked at, every option of
  :data:`emu.inputs.kconfig.TABLE_OPTIONS`): an excerpt, checked at save time to describe
  the boot exactly as the whole file does;
* ``System.map.*`` -- the same for the symbol table (the symbols describe looked at and
  :data:`emu.inputs.sysmap.KERNEL_SYMBOLS`);
* ``tree.npz`` -- the real kernel's tree when ``init_mem_mapping`` returned (every non-zero
  entry under CR3 in the compared slots: level, virtual address, raw value; every table
  page with its level; every leaf), and the same of the tables it started from;
* ``case.json`` -- what the oracle read from the guest besides the trees (its e820,
  memblock, BRK, counters, registers: the comparison's other checks), the artefacts'
  names, the CPU text and the comparison's outcome when it was saved.

:func:`load_case` gives back a :class:`~emu.tools.oracle.qemu.Guest` that
:func:`emu.tools.oracle.compare.compare` takes as it takes a live one.
"""
from __future__ import annotations

import gzip
import json
import os
from typing import Dict, Optional, Set, Tuple

import numpy as np

from emu.tools.oracle.qemu import Guest, OracleError
from emu.tools.oracle.tables import Tree, paging_mode, tree_mmu

#: the case folder's format
CASE_FORMAT = "emu.oracle-case/1"


class _Seen(dict):
    """A dict that records every key looked up (to cut an artefact down to what is read)."""

    def __init__(self, d) -> None:
        super().__init__(d)
        self.seen: Set[str] = set()

    def get(self, k, default=None):
        self.seen.add(k)
        return super().get(k, default)

    def __contains__(self, k) -> bool:
        self.seen.add(k)
        return super().__contains__(k)

    def __getitem__(self, k):
        self.seen.add(k)
        return super().__getitem__(k)


def _tree_arrays(t: Tree, prefix: str) -> Dict[str, np.ndarray]:
    keys = sorted(t.entries)
    tabs = sorted(t.tables.items())
    return {
        prefix + "meta": np.array([t.levels, t.cr3_pfn, t.slots[0], t.slots[1], int(bool(t.mmu.pse))], np.int64),
        prefix + "entry_level": np.array([k[0] for k in keys], np.uint8),
        prefix + "entry_va": np.array([k[1] for k in keys], np.uint64),
        prefix + "entry_raw": np.array([t.entries[k] for k in keys], np.uint64),
        prefix + "table_pfn": np.array([p for p, _ in tabs], np.uint64),
        prefix + "table_level": np.array([lv for _, (lv, _) in tabs], np.uint8),
        prefix + "table_va": np.array([va for _, (_, va) in tabs], np.uint64),
        prefix + "leaf": np.array(t.leaf_list, np.uint64).reshape(-1, 4),
    }


def _tree_from(z, prefix: str, arch: str) -> Optional[Tree]:
    if prefix + "meta" not in z:
        return None
    levels, cr3_pfn, s0, s1, pse = (int(v) for v in z[prefix + "meta"])
    mode = paging_mode(arch, levels)
    t = Tree(levels, cr3_pfn, (s0, s1), mode, tree_mmu(mode, cr3_pfn << 12, bool(pse)))
    t.entries = {(int(lv), int(va)): int(raw) for lv, va, raw in
                 zip(z[prefix + "entry_level"], z[prefix + "entry_va"], z[prefix + "entry_raw"])}
    t.tables = {int(p): (int(lv), int(va)) for p, lv, va in
                zip(z[prefix + "table_pfn"], z[prefix + "table_level"], z[prefix + "table_va"])}
    t.leaf_list = [(int(va), int(pa), int(size), int(raw)) for va, pa, size, raw in z[prefix + "leaf"]]
    return t


def _config_excerpt(path: str, keys: Set[str]) -> str:
    """The header and the lines of ``keys`` (and of TABLE_OPTIONS) of a .config."""
    from emu.inputs.kconfig import TABLE_OPTIONS
    want = set(keys) | {"CONFIG_" + n for n, _ in TABLE_OPTIONS}
    out, header = [], False
    with open(path, errors="replace") as f:
        for line in f:
            s = line.strip()
            if not header and s.startswith("# Linux/") and s.endswith("Kernel Configuration"):
                out.append(s)
                header = True
                continue
            if s.startswith("CONFIG_"):
                name = s.split("=", 1)[0]
            elif s.startswith("# CONFIG_") and s.endswith(" is not set"):
                name = s[2:].split()[0]
            else:
                continue
            if name in want:
                out.append(s)
    return "\n".join(out) + "\n"


def _sysmap_excerpt(sm, names: Set[str]) -> str:
    from emu.inputs.sysmap import KERNEL_SYMBOLS
    want = (set(names) | set(KERNEL_SYMBOLS)) & set(sm.addr)
    rows = sorted((sm.addr[n], n) for n in want)
    return "".join(f"{a:016x} {sm.types.get(n, 'D')} {n}\n" for a, n in rows)


def excerpts(g: Guest, profile=None) -> Tuple[str, str]:
    """(config excerpt, System.map excerpt) of the guest's artefacts: what the artefact
    derivation reads of them.  Checked: the excerpts describe the boot as the whole files
    do (else OracleError)."""
    from emu.inputs.kconfig import parse_kconfig
    from emu.inputs.sysmap import parse_system_map
    from emu.tools.oracle.compare import describe_artefacts, guest_artefacts
    a = guest_artefacts(g)
    config, sysmap = a.config, a.sysmap
    if g.config is None or config is None or sysmap is None:
        raise OracleError("saving a case needs the kernel's .config and System.map")
    # record what describe looks up (the dicts swapped for recording ones, then back)
    craw, saddr = _Seen(config.raw), _Seen(sysmap.addr)
    full_addr = sysmap.addr
    config.raw, sysmap.addr = craw, saddr
    try:
        full = describe_artefacts(a, profile)
        ckeys, snames = set(craw.seen), set(saddr.seen)
    finally:
        config.raw = dict(craw)
        sysmap.addr = full_addr
    ctext = _config_excerpt(g.config, ckeys)
    stext = _sysmap_excerpt(sysmap, snames)
    a.config = parse_kconfig(ctext, a.config_name or config.name)
    a.sysmap = parse_system_map(stext, a.sysmap_name or sysmap.name)
    cut = describe_artefacts(a, profile)
    if cut.params != full.params or cut.profile.name != full.profile.name or \
            [x.text() for x in cut.assumptions] != [x.text() for x in full.assumptions]:
        raise OracleError("the .config/System.map excerpts do not describe the boot as the whole files do")
    return ctext, stext


def save_case(g: Guest, comparison, directory: str, extra: Optional[dict] = None) -> str:
    """Write the case folder of one comparison (see the module doc); returns its path."""
    if g.tree is None:
        raise OracleError(f"layout {g.layout}: the guest's page tables were not read; nothing to save")
    tree = g.tree
    os.makedirs(directory, exist_ok=True)
    ctext, stext = excerpts(g)
    cname = os.path.basename(g.config or "") or "config"
    sname = os.path.basename(g.symbols_file or "") or "System.map"
    with gzip.open(os.path.join(directory, "serial.log.gz"), "wt") as f:
        f.write(g.serial or "")
    with open(os.path.join(directory, cname), "w") as f:
        f.write(ctext)
    with open(os.path.join(directory, sname), "w") as f:
        f.write(stext)
    arrays = _tree_arrays(tree, "")
    if g.initial_tree is not None:
        arrays.update(_tree_arrays(g.initial_tree, "initial_"))
    # the arrays' names are the npz members; numpy's stub checks **arrays against allow_pickle: bool
    np.savez_compressed(os.path.join(directory, "tree.npz"), **arrays)  # type: ignore[arg-type]
    meta = {"format": CASE_FORMAT, "layout": g.layout, "cpu": g.cpu, **(extra or {}),
            "artefacts": {"log": "serial.log.gz", "config": cname, "system_map": sname},
            "guest": g.to_json()}
    if comparison is not None:
        meta["saved_comparison"] = {"identical": comparison.identical, "profile": comparison.profile,
                                    "inputs": comparison.inputs, "differences": len(comparison.differences),
                                    "assumptions": [a["text"] for a in comparison.assumptions]}
    with open(os.path.join(directory, "case.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    return directory


def load_case(directory: str) -> Guest:
    """The Guest of a saved case: its state, console log, trees, and the excerpts as its
    .config (``g.config``) and System.map (``g.symbols``)."""
    from emu.inputs.sysmap import parse_system_map
    with open(os.path.join(directory, "case.json")) as f:
        meta = json.load(f)
    if meta.get("format") != CASE_FORMAT:
        raise OracleError(f"{directory}: not an oracle case ({CASE_FORMAT})")
    g = Guest.from_json(meta["guest"])
    with gzip.open(os.path.join(directory, "serial.log.gz"), "rt") as f:
        g.serial = f.read()
    names = meta["artefacts"]
    g.config = os.path.join(directory, names["config"])
    with open(os.path.join(directory, names["system_map"])) as f:
        g.symbols = parse_system_map(f.read(), names["system_map"])
    g.symbols_file = names["system_map"]
    with np.load(os.path.join(directory, "tree.npz")) as z:
        g.tree = _tree_from(z, "", g.arch)
        g.initial_tree = _tree_from(z, "initial_", g.arch)
    return g


__all__ = ["CASE_FORMAT", "save_case", "load_case", "excerpts"]
