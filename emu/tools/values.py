"""Typed value parsers: every value a user types goes through one of these before anything
runs.

Sizes and addresses are read as the kernel's ``memparse`` reads them (``0x`` hex, ``0``
octal, decimal, an optional ``K/M/G/T/P/E`` suffix; :func:`emu.inputs.dmesg.memparse` is the
one memparse of emu), all of the text, never wrapped: a negative value or one of 2^64 or
more is refused, not taken modulo 2^64.  Every parser raises :class:`emu.errors.EmuError`
with one line naming the value and the limit; :func:`argtype` turns a parser into an
argparse ``type=`` (argparse then prefixes the option: ``argument --mem: ...``).

``--param NAME=VALUE`` and options files (``tests/corpus_options.json``) set
:class:`emu.kernel.state.BootParams` fields: :func:`coerce_param` reads a value (text, or
what JSON gives) into the field's type from the dataclass' type hints -- ints in any
notation memparse takes, bools (``true/false``, ``on/off``, ``yes/no``, ``1/0``), ``none``
for an Optional, lists (``A,B,C``; one value is a list of one), ranges and pairs
(``START-END``, ``START+SIZE`` or ``A,B``), ``memmap=`` options, the CPU's features
(``pse,pge=off,nx``).  The limits of the paging mode (physical address width, the i386
direct-map window) are checked when the emulation starts
(:func:`emu.kernel.validate.check_boot_params`), the same for the CLI and the Python API.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import re
import typing
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from emu.errors import EmuError
from emu.kernel.validate import (
    ENUMS, U64, ParamError, check_type, describe_type, param_types, parse_memmap_one, parse_size_text,
    unwrap_optional,
)

#: a value that cannot be a real input (the largest e820 or boot log is far below)
MAX_TEXT = 4096


def _text(text: Any) -> str:
    if not isinstance(text, str):
        raise EmuError(f"{text!r} is not text")
    if len(text) > MAX_TEXT:
        raise EmuError(f"a value of {len(text)} characters (at most {MAX_TEXT})")
    return text


# ---------------------------------------------------------------------------
# numbers
# ---------------------------------------------------------------------------
def size(text: str) -> int:
    """A size or address, ``0 .. 2^64-1`` (memparse notation)."""
    return parse_size_text(_text(text))


address = size


def positive_size(text: str) -> int:
    v = size(text)
    if v == 0:
        raise EmuError(f"{text!r} is 0 (a positive size is needed)")
    return v


def mem_limit(text: str) -> int:
    """``mem=``: a non-zero size (the kernel's ``parse_memopt`` refuses ``mem=0``)."""
    v = size(text)
    if v == 0:
        raise EmuError("0 is refused by the kernel (mem=0: parse_memopt returns -EINVAL)")
    return v


_RE_WHOLE = re.compile(r"(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", re.ASCII)


def integer(text: str, lo: int = 0, hi: int = U64 - 1) -> int:
    """A whole number in ``[lo, hi]``: decimal, ``0x`` hex or ``0`` octal (a count, not a
    size: no suffix), ``-`` for a negative one."""
    t = _text(text).strip()
    neg = t[:1] == "-"
    m = _RE_WHOLE.fullmatch(t[1:] if neg else t)
    if not m:
        raise EmuError(f"{text!r} is not a whole number (decimal, 0x hex or 0 octal)")
    tok = m.group(1)
    v = int(tok, 16) if tok[:2].lower() == "0x" else int(tok, 8) if len(tok) > 1 and tok[0] == "0" else int(tok)
    v = -v if neg else v
    if not lo <= v <= hi:
        raise EmuError(f"{text!r} is outside [{lo}, {hi}]")
    return v


def bounded_int(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse type for a whole number in ``[lo, hi]``."""
    def parse(text: str) -> int:
        return integer(text, lo, hi)
    parse.__name__ = f"int[{lo},{hi}]"
    return parse


def positive_seconds(text: str) -> float:
    """A duration: a finite number of seconds above 0 (``--seconds``, ``--timeout``)."""
    t = _text(text).strip()
    try:
        v = float(t)
    except ValueError:
        raise EmuError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise EmuError(f"must be a positive finite number of seconds, not {text!r}")
    return v


def finite_float(lo: float, hi: float) -> Callable[[str], float]:
    """An argparse type for a finite number in ``[lo, hi]`` (no ``nan``/``inf``)."""
    def parse(text: str) -> float:
        t = _text(text).strip()
        try:
            v = float(t)
        except ValueError:
            raise EmuError(f"{text!r} is not a number") from None
        if not math.isfinite(v):
            raise EmuError(f"{text!r} is not a finite number")
        if not lo <= v <= hi:
            raise EmuError(f"{text!r} is outside [{lo:g}, {hi:g}]")
        return v
    parse.__name__ = f"float[{lo},{hi}]"
    return parse


def virtual_address(text: str) -> int:
    """A virtual address: ``0 .. 2^64-1`` (memparse notation; the paging mode's width is
    checked against the emulated kernel's mode)."""
    return size(text)


def address_array(vas: Any, width: int = 64, what: str = "vas"):
    """Virtual addresses handed to the Python API (an int, a sequence of ints, a 1-d numpy
    integer array) as a numpy uint64 array, each in ``[0, 2^width)``; :class:`EmuError`
    otherwise."""
    import numpy as np
    top = 1 << width
    if isinstance(vas, np.ndarray):
        if vas.ndim > 1 or vas.dtype.kind not in "ui":
            raise EmuError(f"{what}: a 1-d integer array is needed, not {vas.ndim}-d {vas.dtype}")
        arr = np.atleast_1d(vas)
        if arr.size and (arr.dtype.kind == "i" and int(arr.min()) < 0 or int(arr.max()) >= top):
            raise EmuError(f"{what}: addresses must lie in [0, {top - 1:#x}]")
        return arr.astype(np.uint64)
    items = [vas] if isinstance(vas, (int, np.integer)) and not isinstance(vas, bool) else vas
    if isinstance(items, (str, bytes)) or not hasattr(items, "__iter__"):
        raise EmuError(f"{what}: an int or a sequence of ints is needed, not {type(vas).__name__}")
    out = []
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise EmuError(f"{what}: {v!r} is not an integer address")
        if not 0 <= int(v) < top:
            raise EmuError(f"{what}: {int(v):#x} lies outside [0, {top - 1:#x}]")
        out.append(int(v))
    return np.array(out, dtype=np.uint64)


def _access_table() -> Dict[str, int]:
    from emu.machine.bits import ACCESS_FETCH, ACCESS_USER, ACCESS_WRITE
    return {"r": 0, "w": ACCESS_WRITE, "u": ACCESS_USER, "x": ACCESS_FETCH}


def access_bits(access: Any) -> int:
    """An access type: a string of ``r``/``w``/``x``/``u`` or an ``ACCESS_*`` combination."""
    table = _access_table()
    if isinstance(access, str):
        bad = sorted(set(access) - set(table))
        if bad or not access:
            raise EmuError(f"access {access!r}: a string of r (read), w (write), x (fetch), u (user) is needed")
        out = 0
        for ch in access:
            out |= table[ch]
        return out
    every = sum(table.values())
    if isinstance(access, bool) or not isinstance(access, int) or access < 0 or access & ~every:
        raise EmuError(f"access {access!r}: an ACCESS_* combination (0 .. {every}) or a string of r/w/x/u is needed")
    return access


# ---------------------------------------------------------------------------
# ranges and command-line memory options
# ---------------------------------------------------------------------------
def phys_range(text: str) -> Tuple[int, int]:
    """``START-END`` (END exclusive) or ``START+SIZE``: ``(start, end)`` with start < end,
    end at most 2^64."""
    t = _text(text).strip()
    body = t[1:] if t[:1] == "-" else t
    for sep in ("+", "-"):
        if sep in body:
            i = body.index(sep) + (len(t) - len(body))
            a, b = t[:i], t[i + 1:]
            break
    else:
        raise EmuError(f"{text!r} is not a range START-END or START+SIZE")
    try:
        s = size(a)
        v = size(b)
    except EmuError as e:
        raise EmuError(f"{e} in the range {text!r} (START-END or START+SIZE)") from None
    end = s + v if sep == "+" else v
    if end <= s:
        raise EmuError(f"{text!r} is an empty or inverted range (START < END expected)")
    if end > U64:
        raise EmuError(f"{text!r} ends at {end:#x}, beyond 2^64")
    return s, end


def memmap(text: str) -> str:
    """One ``memmap=`` option, checked in the grammar of ``parse_memmap_one``; returns it."""
    t = _text(text).strip()
    try:
        parse_memmap_one(t)
    except ParamError as e:
        raise EmuError(e.reason) from None
    return t


def choice(options: Sequence[str]) -> Callable[[str], str]:
    """An argparse type for one of ``options`` (the message lists them)."""
    def parse(text: str) -> str:
        if text not in options:
            raise EmuError(f"{text!r} is not one of {', '.join(options)}")
        return text
    parse.__name__ = "choice"
    return parse


# ---------------------------------------------------------------------------
# boot parameters (--param NAME=VALUE, options files)
# ---------------------------------------------------------------------------
_TRUE = ("true", "on", "yes", "y", "1")
_FALSE = ("false", "off", "no", "n", "0")
_NONE = ("none", "null")


def boolean(text: str) -> bool:
    t = _text(text).strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    raise EmuError(f"{text!r} is not a bool (true/false, on/off, yes/no, 1/0)")


def _split(text: str) -> List[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _from_text(field: str, text: str, hint: Any) -> Any:
    inner, opt = unwrap_optional(hint)
    t = _text(text).strip()
    if opt and t.lower() in _NONE:
        return None
    origin = typing.get_origin(inner)
    if inner is bool:
        return boolean(t)
    if inner is int:
        return size(t)
    if inner is str:
        if field in ENUMS:
            return choice(ENUMS[field])(t)
        if field == "memmap":
            return memmap(t)
        return t
    if origin in (list, List):
        (elem,) = typing.get_args(inner)
        if typing.get_origin(elem) in (tuple, Tuple):
            return [phys_range(x) for x in _split(t)]
        return [_from_text(field, x, elem) for x in _split(t)]
    if origin in (tuple, Tuple):
        args = typing.get_args(inner)
        if len(args) == 2 and all(a is int for a in args):
            if "," in t:
                parts = _split(t)
                if len(parts) != 2:
                    raise EmuError(f"{text!r} is not a pair A,B (or a range START-END, START+SIZE)")
                return (size(parts[0]), size(parts[1]))
            if "-" not in t.lstrip("-") and "+" not in t:
                raise EmuError(f"{text!r} is not a pair A,B (or a range START-END, START+SIZE)")
            return phys_range(t)
    if dataclasses.is_dataclass(inner):
        return _dataclass_from_text(inner, t)
    raise EmuError(f"cannot be set from text (it is {describe_type(hint)})")


def _dataclass_from_text(cls, text: str):
    """``NAME[=BOOL],...`` for a dataclass of bools (the CPU's features): named fields are
    set, others keep their default."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: Dict[str, Any] = {}
    for item in _split(text):
        name, sep, v = item.partition("=")
        name = name.strip().replace("-", "_")
        if name not in fields:
            raise EmuError(f"{name!r} is not one of {', '.join(fields)} (NAME or NAME=on|off, comma-separated)")
        values[name] = boolean(v) if sep else True
    if not values:
        raise EmuError(f"no feature named (NAME or NAME=on|off of {', '.join(fields)}, comma-separated)")
    return cls(**values)


def _from_json(field: str, value: Any, hint: Any) -> Any:
    """A JSON value (int, bool, str, list, dict, None) as the field's type; strings are read
    as text (``"0x1000"``)."""
    if isinstance(value, str):
        return _from_text(field, value, hint)
    inner, opt = unwrap_optional(hint)
    if value is None:
        return check_type(field, None, hint)
    origin = typing.get_origin(inner)
    if origin in (list, List) and isinstance(value, list):
        (elem,) = typing.get_args(inner)
        return [_from_json(field, v, elem) for v in value]
    if origin in (tuple, Tuple) and isinstance(value, list):
        args = typing.get_args(inner)
        if len(value) != len(args):
            raise ParamError(field, value, f"must be {describe_type(hint)}")
        return tuple(_from_json(field, v, a) for v, a in zip(value, args))
    if isinstance(inner, type) and dataclasses.is_dataclass(inner) and isinstance(value, dict):
        fields = {f.name for f in dataclasses.fields(inner)}
        unknown = sorted(set(value) - fields)
        if unknown:
            raise ParamError(field, unknown[0], f"is not one of {', '.join(sorted(fields))}")
        return inner(**{k: _from_json(f"{field}.{k}", v, bool) for k, v in value.items()})
    if inner is int and isinstance(value, float):
        raise ParamError(field, value, "must be an int")
    return check_type(field, value, hint)


def coerce_param(name: str, value: Any) -> Tuple[str, Any]:
    """``(field, value)`` for BootParams field ``name`` (``-`` may stand for ``_``) from text
    or a JSON value; :class:`EmuError` naming the field, the value and what it must be."""
    field = str(name).strip().replace("-", "_")
    hints = param_types()
    if field not in hints:
        raise EmuError(f"{name!r} is not a boot parameter (known: {', '.join(sorted(hints))})")
    try:
        v = _from_text(field, value, hints[field]) if isinstance(value, str) else _from_json(field, value, hints[field])
        return field, check_type(field, v, hints[field])
    except ParamError:
        raise
    except EmuError as e:
        raise ParamError(field, value, str(e), show_value=False) from None


def param_assignment(text: str) -> Tuple[str, Any]:
    """``NAME=VALUE`` (``--param``) as ``(field, value)``."""
    t = _text(text)
    name, sep, value = t.partition("=")
    if not sep:
        raise EmuError(f"{text!r} is not NAME=VALUE (NAME a boot parameter: {', '.join(sorted(param_types()))})")
    return coerce_param(name, value)


def coerce_params(mapping: Mapping[str, Any]) -> Dict[str, Any]:
    """Every ``NAME: VALUE`` of a mapping (an options file's ``params_override``)."""
    if not isinstance(mapping, Mapping):
        raise EmuError(f"boot parameters must be a mapping NAME: VALUE, not {type(mapping).__name__}")
    return dict(coerce_param(k, v) for k, v in mapping.items())


#: the keys of one log's entry in an options file (tests/corpus_options.json): replay's keyword
#: arguments and their types
REPLAY_OPTIONS: Dict[str, Union[type, Tuple[type, ...]]] = {
    "profile": str, "debug_pagealloc": bool, "gbpages": (bool, type(None)), "params_override": dict}


def replay_options(mapping: Any, name: str = "options") -> Dict[str, Any]:
    """One log's options from an options file (``{"profile": "3.9", "debug_pagealloc": true,
    "params_override": {"fixmap_bottom": 4291821568, "fixmap_static_pmds": [4290772992]}}``)
    as keyword arguments of :func:`emu.tools.replay.replay`, every value typed (boot
    parameters through :func:`coerce_params`); :class:`EmuError` naming the key otherwise."""
    if not isinstance(mapping, Mapping):
        raise EmuError(f"{name}: an object of replay options is needed, not {type(mapping).__name__}")
    out: Dict[str, Any] = {}
    for key, value in mapping.items():
        want = REPLAY_OPTIONS.get(key)
        if want is None:
            raise EmuError(f"{name}: unknown option {key!r} (known: {', '.join(REPLAY_OPTIONS)})")
        if key == "params_override":
            out[key] = coerce_params(value)
        elif key == "profile":
            if not isinstance(value, str) or not value.strip():
                raise EmuError(f"{name}: profile {value!r} is not a profile name or version")
            out[key] = value.strip()
        elif not isinstance(value, want) or (want is not bool and isinstance(value, int) and not isinstance(value, bool)):
            raise EmuError(f"{name}: {key} {value!r} is not a bool" + (" or null" if key == "gbpages" else ""))
        else:
            out[key] = value
    return out


def apply_params(params, assignments: Iterable[Tuple[str, Any]]):
    """Set coerced ``(field, value)`` pairs on a BootParams (later ones win)."""
    for name, value in assignments:
        setattr(params, name, value)
    return params


# ---------------------------------------------------------------------------
# argparse
# ---------------------------------------------------------------------------
def argtype(parse: Callable[[str], Any], name: Optional[str] = None) -> Callable[[str], Any]:
    """``parse`` as an argparse ``type=``: its :class:`EmuError` becomes the usage error's
    text (``argument --mem: '-1' is negative ...``)."""
    @functools.wraps(parse)
    def wrapped(text: str) -> Any:
        try:
            return parse(text)
        except EmuError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    if name:
        wrapped.__name__ = name
    return wrapped


__all__ = [
    "address_array", "access_bits", "replay_options", "size", "address", "positive_size", "mem_limit", "integer",
    "bounded_int", "finite_float", "positive_seconds", "virtual_address",
    "phys_range", "memmap", "choice", "boolean", "coerce_param", "coerce_params", "param_assignment",
    "apply_params", "argtype", "MAX_TEXT",
]
