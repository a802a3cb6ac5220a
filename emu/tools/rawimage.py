"""The raw physical image of an emulation's tables: files any filesystem can hold, complete
or absent.

``DIR/meta.json`` describes the dump (``cr3``, ``mode``, ``page_offset``, ``levels``,
``max_pfn``, ``image_size``, ``table_pages``, ``profile``, ``nx`` as before, and):

* ``format``: ``"emu-raw-2"``;
* ``files``: the flat image, ``[{"path", "phys_start", "size"}]`` (addresses and sizes as
  ``"0x..."`` strings): one sparse file ``memory.img`` holding physical ``[0,
  image_size)`` when that fits one chunk, else ``memory.img.NNNN`` files of ``chunk_size``
  bytes of physical address space each (the last shorter), only those that hold a table
  page -- physical memory outside every file reads as zero.  A byte at physical address
  ``pa`` lies at offset ``pa - phys_start`` of the file whose range holds it.  Table pages
  are written at their offsets; the rest of each file is a hole (no disk blocks);
* ``lime``: ``"memory.lime"`` or null: the table pages as a LiME image (segments of
  consecutive pages, each a 32-byte header ``<IIQQQ``: magic 0x4C694D45, version 1, start,
  inclusive end, 0, then the bytes), which volatility3's ``LimeLayer`` reads whatever the
  size of the physical address space; written when the flat image is chunked, or on request.

A chunk is 1 TiB by default: ext4 refuses files of 16 TiB and more (with 4 KiB blocks), so a
single ``memory.img`` of a 24 TiB layout cannot exist there.

Every file is written under a temporary name in ``DIR`` and fsynced; then the old
``meta.json`` (if any) is removed, the files are renamed into place, files of the old dump
that the new one does not have are removed, and ``meta.json`` is written last (the same
way).  A dump whose ``meta.json`` exists is complete; on any failure the temporary files
are removed and the error names the file (:class:`RawImageError`, one line).
"""
from __future__ import annotations

import contextlib
import json
import os
import struct
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from emu.errors import EmuError
from emu.tools.formats import dumps, fsync_dir, raw_meta_document

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
#: physical address space per file of a chunked image
DEFAULT_CHUNK = 1 << 40
LIME_MAGIC = 0x4C694D45
LIME_HEADER = struct.Struct("<IIQQQ")
FORMAT = "emu-raw-2"


class RawImageError(EmuError):
    """A dump that could not be written; the message names the file."""


def _kernel(obj):
    return obj.kernel if hasattr(obj, "kernel") else obj


def runs(pfns: Sequence[int]) -> List[Tuple[int, int]]:
    """Sorted pfns as maximal runs ``[first, end)``."""
    out: List[List[int]] = []
    for p in sorted(set(int(x) for x in pfns)):
        if out and out[-1][1] == p:
            out[-1][1] = p + 1
        else:
            out.append([p, p + 1])
    return [(a, b) for a, b in out]


def plan(pfns: Sequence[int], image_size: int, chunk_size: int = DEFAULT_CHUNK) -> List[Dict]:
    """The flat image's files: ``[{"path", "phys_start", "size", "pfns"}]``."""
    if chunk_size <= 0 or chunk_size % PAGE_SIZE:
        raise RawImageError(f"chunk size {chunk_size:#x} is not a positive multiple of 4 KiB")
    if image_size <= chunk_size:
        return [{"path": "memory.img", "phys_start": 0, "size": image_size, "pfns": sorted(int(p) for p in pfns)}]
    by_chunk: Dict[int, List[int]] = {}
    for p in sorted(int(p) for p in pfns):
        by_chunk.setdefault((p << PAGE_SHIFT) // chunk_size, []).append(p)
    width = max(4, len(str((image_size - 1) // chunk_size)))
    return [{"path": f"memory.img.{i:0{width}d}", "phys_start": i * chunk_size,
             "size": min(chunk_size, image_size - i * chunk_size), "pfns": ps}
            for i, ps in sorted(by_chunk.items())]


class _Writer:
    """Files written under temporary names, renamed into place together."""

    def __init__(self, directory: str) -> None:
        self.dir = directory
        self.tmp: Dict[str, str] = {}          # final name -> temporary path

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def open(self, name: str):
        tmp = self.path(f".{name}.tmp-{os.getpid()}")
        self.tmp[name] = tmp
        return _fail_path(tmp, lambda: open(tmp, "wb"))

    def discard(self) -> None:
        for tmp in self.tmp.values():
            try:
                os.unlink(tmp)
            except OSError:
                pass
        self.tmp.clear()


@contextlib.contextmanager
def _failing(path: str) -> Iterator[None]:
    """An OSError inside becomes a :class:`RawImageError` that names ``path``."""
    try:
        yield
    except OSError as e:
        raise RawImageError(f"{path}: {e.strerror or e}") from None


def _fail_path(path: str, fn):
    with _failing(path):
        return fn()


def _sync(f) -> None:
    f.flush()
    os.fsync(f.fileno())


def _old_files(directory: str) -> List[str]:
    """The files the dump now in ``directory`` consists of (from its meta.json)."""
    try:
        with open(os.path.join(directory, "meta.json")) as f:
            old = json.load(f)
    except (OSError, ValueError, RecursionError):
        return []
    if not isinstance(old, dict):
        return []
    names = [e.get("path") for e in old.get("files", []) if isinstance(e, dict)] if "files" in old else ["memory.img"]
    if old.get("lime"):
        names.append(old["lime"])
    return [n for n in names if isinstance(n, str) and os.path.basename(n) == n and n.startswith("memory.")]


def check_directory(directory: str) -> None:
    """Refuse, before an emulation runs, a dump directory that cannot be one: an existing
    non-directory, or a directory (or its nearest existing parent) not writable."""
    d = os.path.abspath(directory)
    if os.path.lexists(d) and not os.path.isdir(d):
        raise RawImageError(f"{directory}: exists and is not a directory")
    probe = d
    while not os.path.lexists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise RawImageError(f"{directory}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise RawImageError(f"{directory}: {probe} is not writable")


def write_raw(k, directory: str, pfns: Union[Sequence[int], np.ndarray, None] = None, chunk_size: int = DEFAULT_CHUNK,
              lime: Optional[bool] = None) -> dict:
    """Write the dump of ``k``'s table pages (``pfns``; default every backed frame) into
    ``directory``; returns the document written to ``meta.json``
    (:func:`emu.tools.formats.raw_meta_document`: ``cr3``, ``page_offset`` as ``"0x..."``).  ``lime``: write
    ``memory.lime`` too (default: when the image is chunked)."""
    k = _kernel(k)
    phys = k.phys
    pfns = np.unique(np.asarray(phys.backed_pfns() if pfns is None else pfns, dtype=np.uint64))
    size = max(k.max_pfn << PAGE_SHIFT, (int(pfns.max()) + 1) << PAGE_SHIFT if len(pfns) else 0)
    files = plan(pfns.tolist(), size, chunk_size)
    chunked = len(files) != 1 or files[0]["path"] != "memory.img"
    want_lime = chunked if lime is None else bool(lime)
    _fail_path(directory, lambda: os.makedirs(directory, exist_ok=True))
    if not os.path.isdir(directory):
        raise RawImageError(f"{directory}: not a directory")
    w = _Writer(directory)
    try:
        for entry in files:
            with w.open(entry["path"]) as f:
                tmp = w.path(entry["path"])       # errors name the file the user asked for
                base = entry["phys_start"]
                with _failing(tmp):
                    for p in entry["pfns"]:
                        f.seek((p << PAGE_SHIFT) - base)
                        f.write(phys.image_bytes(p))
                    f.truncate(entry["size"])
                    _sync(f)
        if want_lime:
            with w.open("memory.lime") as f, _failing(w.path("memory.lime")):
                for a, b in runs(pfns.tolist()):
                    f.write(LIME_HEADER.pack(LIME_MAGIC, 1, a << PAGE_SHIFT, (b << PAGE_SHIFT) - 1, 0))
                    for p in range(a, b):
                        f.write(phys.image_bytes(p))
                _sync(f)
        meta = raw_meta_document({
            "cr3": k.pgd_pfn << PAGE_SHIFT,
            "mode": k.mode.name,
            "page_offset": k.page_offset,
            "levels": k.paging_levels,
            "maxphyaddr": 52,
            "max_pfn": k.max_pfn,
            "image_size": size,
            "table_pages": int(len(pfns)),
            "profile": k.profile.name,
            "nx": bool(k.params.cpu.nx),
            "format": FORMAT,
            "chunk_size": f"{chunk_size:#x}",
            "files": [{"path": e["path"], "phys_start": f"{e['phys_start']:#x}", "size": f"{e['size']:#x}"}
                      for e in files],
            "lime": "memory.lime" if want_lime else None,
        })
        with w.open("meta.json") as f, _failing(w.path("meta.json")):
            f.write((dumps(meta) + "\n").encode())
            _sync(f)
        # commit: the old dump stops being one, the files take their names, meta.json last
        stale = [n for n in _old_files(directory) if n not in w.tmp]
        meta_path = w.path("meta.json")
        if os.path.lexists(meta_path):
            _fail_path(meta_path, lambda: os.unlink(meta_path))
        for name, tmp in list(w.tmp.items()):
            if name != "meta.json":
                with _failing(w.path(name)):
                    os.replace(tmp, w.path(name))
                del w.tmp[name]
        for name in stale:
            try:
                os.unlink(w.path(name))
            except FileNotFoundError:
                pass
            except OSError as e:
                raise RawImageError(f"{w.path(name)}: {e.strerror}") from None
        _fail_path(meta_path, lambda: os.replace(w.tmp["meta.json"], meta_path))
        del w.tmp["meta.json"]
        fsync_dir(directory)
    except BaseException:
        w.discard()
        raise
    return meta




def read_physical(directory: str, pa: int, n: int) -> bytes:
    """``n`` bytes of physical memory at ``pa`` from a dump (zeros outside its files): what a
    reader of the format does, for the tests and for other tools."""
    with open(os.path.join(directory, "meta.json")) as f:
        meta = json.load(f)
    out = bytearray(n)
    for e in meta.get("files", [{"path": "memory.img", "phys_start": "0x0", "size": hex(meta["image_size"])}]):
        s, size = int(e["phys_start"], 16), int(e["size"], 16)
        lo, hi = max(pa, s), min(pa + n, s + size)
        if lo < hi:
            with open(os.path.join(directory, e["path"]), "rb") as f:
                f.seek(lo - s)
                data = f.read(hi - lo)
            out[lo - pa: lo - pa + len(data)] = data
    return bytes(out)


__all__ = ["check_directory", "write_raw", "read_physical", "plan", "runs", "RawImageError", "DEFAULT_CHUNK", "FORMAT"]
